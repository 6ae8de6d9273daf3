"""Atari-PB's SiamMAE objective: reconstruct a heavily masked future frame stack from the current one.

The backbone (:class:`~prend.nets.atari_pb.ResNetGN`) encodes both the current stack ``x`` and the stack
``k ~ U{1..3}`` steps later; :class:`SiamMAENeck` turns each 6x6 feature map into 36 tokens, keeps one random
token of the future stack (mask ratio 0.95) and runs a transformer encoder; :class:`SiamMAEHead` decodes the
future tokens by cross-attending to the current ones and predicts, per token, the 14x14x4 pixel patch it
covers. Everything mirrors dojeon-ai/Atari-PB (commit ``e989dfa``); each class names the file it follows.
This is an independent implementation (the per-game output layer is applied game by game instead of
through a per-sample weight copy), with the same parameterisation, initialisation and arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PATCH = 14
"""Patch side in pixels: the 84x84 frame over the 6x6 token grid."""


# ---------------------------------------------------------------------------------------------- geometry
def sincos_pos_embed_2d(dim: int, grid: int, cls_row: bool = True) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (MAE's), ``(grid*grid [+1], dim)``.

    Half of the channels encode the column, half the row, each as ``[sin(p w), cos(p w)]`` over the
    frequencies ``w_i = 10000^(-i/(dim/4))``; tokens are row-major. With ``cls_row`` a zero row is prepended
    for the CLS token (Atari-PB's ``get_2d_sincos_pos_embed(cls_token=True)``).

    Example:
        >>> e = sincos_pos_embed_2d(8, 2)
        >>> tuple(e.shape), e[0].abs().sum().item(), e[1, :4].tolist()   # token (0,0): sin 0, cos 0
        ((5, 8), 0.0, [0.0, 0.0, 1.0, 1.0])
    """
    if dim % 4:
        raise ValueError(f"the sin-cos embedding needs a dimension divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")

    def encode(pos: np.ndarray) -> np.ndarray:
        angles = pos.reshape(-1, 1) * omega[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    # MAE (and Atari-PB) put the x coordinate (column) in the first half of the channels.
    emb = np.concatenate([encode(cols), encode(rows)], axis=1)
    if cls_row:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.tensor(emb, dtype=torch.float32)


def patchify(x: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """Cut (N, F, H, W) images into row-major patches ``(N, (H/p)*(W/p), F*p*p)``, each ordered (f, y, x).

    This is the layout of Atari-PB's SiamMAE head output (``'n p (f c ph pw)'``), so predictions and
    targets compare element for element.
    """
    n, f, h, w = x.shape
    gh, gw = h // patch, w // patch
    x = x.reshape(n, f, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, gh * gw, f * patch * patch)


def unpatchify(patches: torch.Tensor, channels: int = 4, patch: int = PATCH) -> torch.Tensor:
    """Inverse of :func:`patchify` for a square grid: ``(N, L, F*p*p) -> (N, F, sqrt(L)*p, sqrt(L)*p)``."""
    n, length, _ = patches.shape
    g = math.isqrt(length)
    x = patches.reshape(n, g, g, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, channels, g * patch, g * patch)


def num_kept_tokens(num_tokens: int, mask_ratio: float) -> int:
    """Tokens left after masking, Atari-PB's ``int(L * (1 - mask_ratio))``.

    Example:
        >>> num_kept_tokens(36, 0.95), num_kept_tokens(36, 0.75), num_kept_tokens(36, 0.0)
        (1, 9, 36)
    """
    return int(num_tokens * (1.0 - mask_ratio))


def random_keep(n: int, length: int, keep: int, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random per-sample token subsets: ``keep_idx`` (n, keep) and ``restore_idx`` (n, length).

    A random permutation per sample puts the kept tokens first; ``restore_idx`` is its inverse, so
    appending ``length - keep`` mask tokens to the kept ones and gathering with ``restore_idx`` puts every
    token back in its place (Atari-PB's ``mask_token`` / ``nekot_ksam`` pair).
    """
    shuffle = torch.rand(n, length, device=device, generator=generator).argsort(dim=1)
    if keep == length:
        # Nothing masked: keep the natural order so that no un-shuffling is needed (Atari-PB does the same).
        shuffle = torch.arange(length, device=device).expand(n, length)
    return shuffle[:, :keep], shuffle.argsort(dim=1)


# ------------------------------------------------------------------------------------------- transformer
def _transformer_init(module: nn.Module) -> None:
    # Atari-PB's ``transformer_init``: xavier-uniform linear weights, zero biases, unit LayerNorms.
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with Atari-PB's parameterisation (``src/models/layers.py``).

    Self-attention (``cross=False``) projects queries, keys and values with one bias-free ``to_qkv``;
    cross-attention uses three bias-free ``q_embed``/``k_embed``/``v_embed``. Both end in a biased linear
    ``to_out``. Scores are scaled by ``head_dim ** -0.5``; there is no dropout (Atari-PB's is 0).
    """

    def __init__(self, dim: int, heads: int, cross: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads, self.cross = heads, cross
        if cross:
            self.q_embed = nn.Linear(dim, dim, bias=False)
            self.k_embed = nn.Linear(dim, dim, bias=False)
            self.v_embed = nn.Linear(dim, dim, bias=False)
        else:
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim))

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        n, length, d = t.shape
        return t.view(n, length, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """Attend from ``x`` (N, L, D) to itself, or to ``memory`` (N, M, D) for cross-attention."""
        if self.cross:
            assert memory is not None
            q, k, v = self.q_embed(x), self.k_embed(memory), self.v_embed(memory)
        else:
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        # Explicit softmax(q k^T / sqrt(d)) v, as Atari-PB computes it: with 37 tokens per sequence this is
        # several times faster on CPUs than the fused kernel's backward pass (measured here).
        attn = torch.softmax((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5, dim=-1)
        out = attn @ v
        n, _, length, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(n, length, -1))


class FeedForward(nn.Module):
    """``Linear(dim, mlp_dim) -> GELU -> Linear(mlp_dim, dim)`` (Atari-PB's ``FeedForward``)."""

    def __init__(self, dim: int, mlp_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token-wise MLP."""
        return self.net(x)


class TransformerEncoder(nn.Module):
    """Pre-norm transformer: ``x += attn(LN(x)); x += ffn(LN(x))`` per layer (Atari-PB's ``Transformer``).

    There is no final norm here; the neck applies its own ``LayerNorm`` after the encoder.
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleDict({
            "norm1": nn.LayerNorm(dim), "attn": MultiHeadAttention(dim, heads),
            "norm2": nn.LayerNorm(dim), "ff": FeedForward(dim, mlp_dim),
        }) for _ in range(depth))
        self.apply(_transformer_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode tokens (N, L, D)."""
        for layer in self.layers:
            x = x + layer["attn"](layer["norm1"](x))
            x = x + layer["ff"](layer["norm2"](x))
        return x


class CrossAttentionDecoder(nn.Module):
    """SiamMAE's decoder (Atari-PB's ``CrossAttentionTransformer``).

    Per layer, with pre-norm residuals: cross-attention to the current frame's tokens, then
    self-attention, then the feed-forward net.

    Only the query stream is normalised before the cross-attention; the memory (keys and values) enters as
    the neck left it, as in Atari-PB (its ``PreNorm`` normalises the first argument only).
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleDict({
            "norm1": nn.LayerNorm(dim), "xattn": MultiHeadAttention(dim, heads, cross=True),
            "norm2": nn.LayerNorm(dim), "attn": MultiHeadAttention(dim, heads),
            "norm3": nn.LayerNorm(dim), "ff": FeedForward(dim, mlp_dim),
        }) for _ in range(depth))
        self.apply(_transformer_init)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Decode query tokens ``x`` (N, L, D) against ``memory`` (N, M, D)."""
        for layer in self.layers:
            x = x + layer["xattn"](layer["norm1"](x), memory)
            x = x + layer["attn"](layer["norm2"](x))
            x = x + layer["ff"](layer["norm3"](x))
        return x


# --------------------------------------------------------------------------------------------- neck/head
class SiamMAENeck(nn.Module):
    """Atari-PB's ``siammae_neck`` (``src/models/necks/siammae_neck.py``).

    For a feature map (N, C, 6, 6) and game ids: multiply by the game's learned spatial map (an
    ``Embedding(num_games, C*36)``, N(0, 1) init, as in the ``mh_spatial_mlp`` neck); flatten to 36 tokens
    of C channels; token-wise ``Linear(C, hidden) -> ReLU -> Linear(hidden, dim) -> ReLU``; add the fixed
    sin-cos position embedding; for the target stream keep ``int(36 * (1 - mask_ratio))`` random tokens;
    prepend a learned CLS token (initialised to the zero CLS row of the position embedding); run the pre-norm
    encoder; ``LayerNorm(dim)``.

    Args:
        in_channels: Backbone output channels ``C``.
        spatial: Backbone output grid (6, 6).
        num_games: Rows of the game-wise embedding (Atari-PB's 60 games).
        hidden_dim: Width of the token MLP's first layer (Atari-PB: 1024).
        dim: Token width (Atari-PB: 512).
        depth: Encoder layers (Atari-PB: 4).
        heads: Attention heads (Atari-PB: 4).
        mlp_dim: Encoder feed-forward width (Atari-PB: 2048).
        mask_ratio: Fraction of the target's tokens dropped (Atari-PB: 0.95).
    """

    def __init__(self, in_channels: int, spatial: tuple[int, int] = (6, 6), num_games: int = 60,
                 hidden_dim: int = 1024, dim: int = 512, depth: int = 4, heads: int = 4, mlp_dim: int = 2048,
                 mask_ratio: float = 0.95):
        super().__init__()
        h, w = spatial
        if h != w:
            raise ValueError(f"SiamMAE's position embedding needs a square grid, got {spatial}")
        self.in_channels, self.spatial, self.mask_ratio, self.dim = in_channels, (h, w), mask_ratio, dim
        self.num_tokens = h * w
        self.spatial_embed = nn.Embedding(num_games, in_channels * h * w)
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, dim), nn.ReLU())
        pos = sincos_pos_embed_2d(dim, h, cls_row=True)
        # A persistent buffer: saved with the weights like Atari-PB's frozen nn.Parameter, never trained.
        self.register_buffer("pos_embed", pos[1:].clone())
        self.cls_token = nn.Parameter(pos[0].clone().view(1, 1, dim))
        self.transformer_encoder = TransformerEncoder(dim, depth, heads, mlp_dim)
        self.norm = nn.LayerNorm(dim)

    @property
    def num_kept(self) -> int:
        """Target tokens kept after masking."""
        return num_kept_tokens(self.num_tokens, self.mask_ratio)

    def forward(self, features: torch.Tensor, game_id: torch.Tensor, mask: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens of a feature map.

        Args:
            features: Backbone output (N, C, H, W).
            game_id: Long (N,) Atari-PB game ids.
            mask: Keep only :attr:`num_kept` random tokens (the target stream).
            generator: Random source for the mask.

        Returns:
            ``(tokens, restore_idx)``: tokens (N, 1 + L, dim) with the CLS token first (L = 36, or
            :attr:`num_kept` when masking), and the un-shuffling index (N, 36) when masking, else ``None``.
        """
        n, c, h, w = features.shape
        x = features * self.spatial_embed(game_id).view(n, c, h, w)
        x = x.flatten(2).transpose(1, 2)                       # (N, 36, C), row-major like the patches
        x = self.mlp(x) + self.pos_embed
        restore_idx = None
        if mask:
            keep_idx, restore_idx = random_keep(n, self.num_tokens, self.num_kept, x.device, generator)
            x = torch.gather(x, 1, keep_idx[..., None].expand(-1, -1, x.shape[-1]))
        x = torch.cat([self.cls_token.expand(n, -1, -1).to(x.dtype), x], dim=1)
        return self.norm(self.transformer_encoder(x)), restore_idx


class SiamMAEHead(nn.Module):
    """Atari-PB's ``siammae_head`` (``src/models/heads/siammae_head.py``).

    Both token streams pass through ``Linear(neck_dim, dim) -> ReLU``; the masked future stream gets a
    learned mask token (zero init) in every dropped position, is un-shuffled, and both streams get the fixed
    sin-cos position embedding (with its zero CLS row). The cross-attention decoder reconstructs the future
    tokens from the current ones; after ``LayerNorm(dim)`` a *game-wise* linear layer (weights
    ``Embedding(num_games, dim * 784)`` drawn from N(0, (2/sqrt(dim + 784))^2), zero biases) maps each token
    to its 14x14x4 patch, and a sigmoid gives pixels in [0, 1]. The CLS token's prediction is dropped.

    Args:
        neck_dim: Width of the neck's tokens.
        dim: Decoder width (Atari-PB: 512).
        depth: Decoder layers (Atari-PB: 3).
        heads: Attention heads (Atari-PB: 4).
        mlp_dim: Decoder feed-forward width (Atari-PB: 2048).
        num_games: Rows of the game-wise output layer.
        num_tokens: Tokens per frame (36).
        patch_dim: Pixels per patch (14*14*4 = 784, Atari-PB's ``action_size``).
    """

    def __init__(self, neck_dim: int, dim: int = 512, depth: int = 3, heads: int = 4, mlp_dim: int = 2048,
                 num_games: int = 60, num_tokens: int = 36, patch_dim: int = PATCH * PATCH * 4):
        super().__init__()
        self.num_tokens, self.patch_dim, self.dim = num_tokens, patch_dim, dim
        self.embed_linear = nn.Sequential(nn.Linear(neck_dim, dim), nn.ReLU())
        self.register_buffer("pos_embed", sincos_pos_embed_2d(dim, math.isqrt(num_tokens), cls_row=True))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.transformer_decoder = CrossAttentionDecoder(dim, depth, heads, mlp_dim)
        self.norm = nn.LayerNorm(dim)
        self.recon_w = nn.Embedding(num_games, dim * patch_dim)
        self.recon_b = nn.Embedding(num_games, patch_dim)
        nn.init.normal_(self.recon_w.weight, std=2.0 / math.sqrt(dim + patch_dim))
        nn.init.zeros_(self.recon_b.weight)

    def _unmask(self, tokens: torch.Tensor, restore_idx: torch.Tensor) -> torch.Tensor:
        # Kept tokens + mask tokens for the dropped ones, then put every token back at its grid position.
        cls, kept = tokens[:, :1], tokens[:, 1:]
        n, k, d = kept.shape
        filler = self.mask_token.to(kept.dtype).expand(n, self.num_tokens - k, d)
        full = torch.cat([kept, filler], dim=1)
        full = torch.gather(full, 1, restore_idx[..., None].expand(-1, -1, d))
        return torch.cat([cls, full], dim=1)

    def game_linear(self, x: torch.Tensor, game_id: torch.Tensor) -> torch.Tensor:
        """Apply each sample's game-specific ``(dim, patch_dim)`` linear layer to its tokens (N, L, dim).

        Grouping by game makes one matmul per game in the batch; Atari-PB's ``bmm`` over per-sample weight
        copies gives the same numbers but materialises ``N * dim * 784`` weights. The rows of the games
        present are looked up once, so the backward pass scatters into the (large) weight table once rather
        than once per game.
        """
        games, inverse = torch.unique(game_id, return_inverse=True)
        weights = self.recon_w(games).view(len(games), self.dim, self.patch_dim).to(x.dtype)
        biases = self.recon_b(games).to(x.dtype)
        out = x.new_empty(*x.shape[:2], self.patch_dim)
        for j in range(len(games)):
            rows = (inverse == j).nonzero(as_tuple=True)[0]
            out[rows] = x[rows] @ weights[j] + biases[j]
        return out

    def forward(self, current: torch.Tensor, target: torch.Tensor, game_id: torch.Tensor,
                restore_idx: torch.Tensor) -> torch.Tensor:
        """Predicted future patches (N, 36, patch_dim) in [0, 1].

        Args:
            current: Neck tokens of the current stacks (N, 37, neck_dim).
            target: Neck tokens of the masked future stacks (N, 1 + kept, neck_dim).
            game_id: Long (N,) game ids.
            restore_idx: The neck's un-shuffling index (N, 36).
        """
        memory = self.embed_linear(current) + self.pos_embed
        query = self._unmask(self.embed_linear(target), restore_idx) + self.pos_embed
        x = self.norm(self.transformer_decoder(query, memory))
        return torch.sigmoid(self.game_linear(x, game_id)[:, 1:])


# ------------------------------------------------------------------------------------------ augmentation
def random_shift(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's random shift (Atari-PB's ``RandomShiftsAug``).

    Replicate-pad by ``pad`` and crop back at a random integer offset, one offset per sample shared by its
    channels.

    Atari-PB samples the shift through ``grid_sample`` at integer-pixel offsets; cropping the padded image is
    the same translation without interpolation.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])           # (N, H)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])           # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def intensity(x: torch.Tensor, scale: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Atari-PB's ``Intensity`` augmentation: ``x * (1 + scale * clamp(N(0, 1), -2, 2))``, one draw per sample."""
    noise = torch.randn(x.shape[0], 1, 1, 1, device=x.device, generator=generator).clamp_(-2.0, 2.0)
    return x * (1.0 + scale * noise)


def augment(x: torch.Tensor, pad: int = 4, scale: float = 0.05,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Random shift then intensity (Atari-PB's ``aug_types: [random_shift, intensity]``)."""
    if pad > 0:
        x = random_shift(x, pad, generator)
    if scale > 0:
        x = intensity(x, scale, generator)
    return x


# ------------------------------------------------------------------------------------------------ model
class SiamMAE(nn.Module):
    """Backbone, neck and head with the SiamMAE loss (Atari-PB's ``SiamMAETrainer.compute_loss``).

    Args:
        backbone: An Atari-PB backbone ((N, 4, 84, 84) -> (N, C, 6, 6)), e.g. ``ResNetGN``.
        neck: A :class:`SiamMAENeck` for it.
        head: A :class:`SiamMAEHead` for the neck.
        aug_pad: Random-shift padding (Atari-PB: 4; 0 disables).
        aug_intensity: Intensity scale (Atari-PB: 0.05; 0 disables).
        backbone_amp: Let an enclosing ``torch.autocast`` reach the backbone. When ``False`` the backbone runs
            in float32 and only the neck and head are autocast (for hardware whose reduced-precision
            convolution backward passes are slow).
    """

    def __init__(self, backbone: nn.Module, neck: SiamMAENeck, head: SiamMAEHead, aug_pad: int = 4,
                 aug_intensity: float = 0.05, backbone_amp: bool = True):
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.aug_pad, self.aug_intensity, self.backbone_amp = aug_pad, aug_intensity, backbone_amp

    def forward(self, obs: torch.Tensor, future: torch.Tensor, game_id: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and prediction for a batch.

        Args:
            obs: Current stacks (N, 4, 84, 84), float in [0, 1].
            future: Stacks ``k`` steps later (N, 4, 84, 84), float in [0, 1].
            game_id: Long (N,) game ids.
            generator: Random source of the augmentations and the mask.

        Returns:
            ``(loss, prediction)``: the pixel MSE (float32 scalar) against the *un-augmented* future stack, and
            the predicted patches (N, 36, 784).
        """
        x = augment(obs, self.aug_pad, self.aug_intensity, generator)
        y = augment(future, self.aug_pad, self.aug_intensity, generator)
        # One backbone pass over both streams, as Atari-PB does (same weights, one batch).
        both = torch.cat([x, y])
        if self.backbone_amp:
            feats = self.backbone(both)
        else:
            with torch.autocast(both.device.type, enabled=False):
                feats = self.backbone(both.float())
        fx, fy = feats.chunk(2)
        cur, _ = self.neck(fx, game_id)
        tgt, restore_idx = self.neck(fy, game_id, mask=True, generator=generator)
        assert restore_idx is not None
        pred = self.head(cur, tgt, game_id, restore_idx)
        loss = F.mse_loss(pred.float(), patchify(future.float()))
        return loss, pred
