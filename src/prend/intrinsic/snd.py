"""SND, Self-supervised Network Distillation (Pecháč, Chovanec, Farkaš, Neurocomputing 2024).

A target trained online, on the agent's own frames, by a self-supervised loss; the predictor distils it as
RND's does.

Three variants share one reward module (:class:`~prend.intrinsic.base.DistillationReward` with a
:class:`~prend.intrinsic.base.TargetObjective`) and differ only in the values of :data:`SND_VARIANTS`:

- ``snd-v``: a contrastive loss on augmented pairs, half one state with itself (label 0), half two random
  states (label 1): :func:`contrastive_loss` after :func:`augment` (:class:`ContrastiveObjective`);
- ``snd-std``: spatio-temporal DeepInfoMax on consecutive states: :func:`stdim_terms` (:class:`STDIMObjective`);
- ``snd-vic``: VICReg on consecutive states, no augmentation: :func:`vicreg_terms` (:class:`VICRegObjective`).

As in the official code (Iskandor/SND, commit 2f2c348): the networks read the newest frame only, raw in
[0, 1], with no observation normalisation (:class:`NewestFrame`); the reward rates the state the agent acts
from (s_t) and is ``clip(eta x mean_j (T_j - P_j)^2, 0, 1)``. How the joint update maps onto prend's
trainer, and every deviation, is in docs/hyperparameters.md ("SND").
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from prend.config import IntrinsicConfig
from prend.intrinsic.base import DistillationReward, Encoder, TargetObjective, TargetOutputs, float32_losses
from prend.nets.snd import SNDConvNet, SNDKind, snd_predictor, snd_target


class NewestFrame(Encoder):
    """The newest frame of the stack, raw: stored as uint8 (B, 1, H, W), expanded to float in [0, 1]."""

    def compact(self, obs: torch.Tensor) -> torch.Tensor:
        """The newest (last) frame, uint8 (B, 1, H, W)."""
        return obs[:, -1:]

    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """Float frames in [0, 1]."""
        return compact.float() / 255.0


# ----------------------------------------------------------------------------------------------- the losses
def vicreg_terms(za: torch.Tensor, zb: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, ...]:
    """VICReg's invariance, variance and covariance terms of two views' features (B, D), before SND-VIC's weights.

    SND-VIC weighs them 1, 1 and 1/25.

    invariance = mean((za - zb)^2); variance = sum over views of mean_d relu(1 - sqrt(var_d + eps)) (var with
    Bessel's correction); covariance = sum over views of (sum of the squared off-diagonal entries of the
    covariance matrix, divided by B - 1) / D.

    Example:
        >>> za, zb = torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.tensor([[1.0, 0.0], [1.0, 2.0]])
        >>> [round(t.item(), 4) for t in vicreg_terms(za, zb, eps=0.0)]   # var: a (2, 2), b (0, 2): relu 0, 0 and 1, 0
        [0.5, 0.5, 4.0]
    """
    invariance = F.mse_loss(za, zb)
    variance = za.new_zeros(())
    covariance = za.new_zeros(())
    n, d = za.shape
    off_diagonal = ~torch.eye(d, dtype=torch.bool, device=za.device)
    for z in (za, zb):
        variance = variance + F.relu(1 - (z.var(dim=0) + eps).sqrt()).mean()
        centred = z - z.mean(dim=0)
        cov = centred.T @ centred / (n - 1)
        covariance = covariance + cov[off_diagonal].square().sum() / d
    return invariance, variance, covariance


def stdim_terms(global_next: torch.Tensor, local_t: torch.Tensor, local_next: torch.Tensor,
                classifier1: nn.Module, classifier2: nn.Module) -> tuple[torch.Tensor, ...]:
    """ST-DIM's global-local and local-local cross-entropies with in-batch negatives, and the logits' norm.

    For every spatial cell k of s_t's local map (B, C, h, w), ``logits[k, i, j]`` scores sample i's s_t+1
    (its global features through ``classifier1``, or its own cell k through ``classifier2``) against sample
    j's cell k at s_t. As in the official call (``cross_entropy`` of a (cells, B, B) tensor: the class is
    dimension 1), each s_t patch j picks its s_t+1 partner among the batch: the loss is the mean over cells
    and j of ``-log softmax_i(logits[k, :, j])[j]``. The norm term is the mean over cells of each logit
    matrix's Frobenius norm, summed over the two.

    Returns:
        ``global_local``, ``local_local`` and ``logit_norm``.
    """
    cells_t = local_t.flatten(2).permute(2, 0, 1)         # (cells, B, C)
    cells_next = local_next.flatten(2).permute(2, 0, 1)
    logits1 = torch.einsum("ic,kjc->kij", classifier1(global_next), cells_t)
    logits2 = torch.einsum("kic,kjc->kij", classifier2(cells_next), cells_t)

    def cross_entropy(logits: torch.Tensor) -> torch.Tensor:
        return -logits.log_softmax(dim=1).diagonal(dim1=1, dim2=2).mean()

    def norm(logits: torch.Tensor) -> torch.Tensor:
        # The official torch.norm: its gradient at an all-zero logit matrix is 0. sqrt(sum of squares) written
        # out has an infinite one there, and a cell whose ReLU features are all 0 in the whole batch (black
        # regions, as most of Deep Sea's frame) made the first update's gradient NaN.
        return torch.linalg.vector_norm(logits, dim=(1, 2)).mean()

    return cross_entropy(logits1), cross_entropy(logits2), norm(logits1) + norm(logits2)


def contrastive_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor,
                     magnitude_limit: float = 200.0) -> torch.Tensor:
    """SND-V's loss: mean((label - mean_d (za - zb)^2)^2) + relu(mean(za^2) + mean(zb^2) - limit).

    Example:
        >>> za, zb = torch.tensor([[1.0, 1.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [2.0, 2.0]])
        >>> contrastive_loss(za, zb, torch.tensor([0.0, 1.0]))   # distances 0 and 2: ((0-0)^2 + (1-2)^2) / 2
        tensor(0.5000)
    """
    distance = (za - zb).square().mean(dim=1)
    magnitude = za.square().mean() + zb.square().mean()
    return (labels - distance).square().mean() + F.relu(magnitude - magnitude_limit)


TILE_SIZES = (1, 2, 4, 8, 12, 16)
"""SND-V's tile sizes for masking at 96x96; at 84x84 the edge tiles are cut (84 is no multiple of 8 or 16)."""


def mask_tiles(x: torch.Tensor, tile: int, drop: float = 0.1) -> torch.Tensor:
    """Zero each ``tile`` x ``tile`` square of each frame with probability ``drop`` (edge tiles cut to fit)."""
    n, _, height, width = x.shape
    keep = torch.rand(n, 1, math.ceil(height / tile), math.ceil(width / tile), device=x.device) >= drop
    keep = keep.repeat_interleave(tile, dim=2).repeat_interleave(tile, dim=3)[:, :, :height, :width]
    return x * keep


def augment(x: torch.Tensor, p: float = 0.5, noise: float = 0.2) -> torch.Tensor:
    """SND-V's augmentation: tile masking, then uniform noise, each on a frame with probability ``p``.

    Tile masking takes one tile size per batch, from :data:`TILE_SIZES`; the noise is uniform in
    [-noise, noise]. Draws from torch's global generator of ``x``'s device (the CPU's, or the GPU's on a GPU),
    which checkpoints save, so a resumed run draws the same augmentations.
    """

    def apply(y: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        chosen = (torch.rand(y.shape[0], 1, 1, 1, device=y.device) < p).to(y.dtype)
        return (1 - chosen) * y + chosen * changed

    tile = TILE_SIZES[int(torch.randint(len(TILE_SIZES), ()))]
    x = apply(x, mask_tiles(x, tile))
    return apply(x, x + noise * (2 * torch.rand_like(x) - 1))


# ------------------------------------------------------------------------------------------- the objectives
class ContrastiveObjective(TargetObjective):
    """SND-V: B pairs drawn from the batch's B states, each augmented independently (:func:`contrastive_loss`)."""

    pairs = False

    def forward(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss on B pairs: b is a itself with probability 1/2 (label 0), else a random state (label 1)."""
        n = x.shape[0]
        a = torch.randint(n, (n,), device=x.device)
        labels = torch.rand(n, device=x.device) > 0.5
        b = torch.where(labels, torch.randint(n, (n,), device=x.device), a)
        z = target(torch.cat([augment(x[a]), augment(x[b])])).float()
        with float32_losses(z):
            return contrastive_loss(z[:n], z[n:], labels.to(z.dtype)), {}


class VICRegObjective(TargetObjective):
    """SND-VIC: VICReg between the target's features of s_t and s_t+1 (:func:`vicreg_terms`), weights 1, 1, 1/25."""

    pairs = True

    def __init__(self, weights: tuple[float, float, float] = (1.0, 1.0, 1 / 25)):
        super().__init__()
        self.weights = weights

    def forward(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted sum of the three terms (each also logged)."""
        return self.loss_and_outputs(target, x, x_next, ends)[:2]

    def loss_and_outputs(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                         ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float], TargetOutputs]:
        """:meth:`forward`, with the target's outputs on s_t and s_t+1 (the predictor's regression target)."""
        assert x_next is not None
        z = target(torch.cat([x, x_next])).float()
        with float32_losses(z):
            terms = vicreg_terms(z[: len(x)], z[len(x):])
            loss = sum(w * t for w, t in zip(self.weights, terms, strict=True))
        names = ("losses/target_invariance", "losses/target_variance", "losses/target_covariance")
        return loss, {name: t.item() for name, t in zip(names, terms, strict=True)}, (z[: len(x)], z[len(x):])


class STDIMObjective(TargetObjective):
    """SND-STD: :func:`stdim_terms` on (s_t, s_t+1), with two small regularisers.

    The regularisers: 1e-4 x the logits' norm, and 1e-4 x minus the mean per-sample std (over features) of
    the target's features of s_t. Its two classifiers (global 512 -> 64 channels, local
    64 -> 64, PyTorch's default init as the official) train with the target.
    """

    pairs = True

    def __init__(self, feature_dim: int, local_channels: int, norm_weight: float = 1e-4, std_weight: float = 1e-4):
        super().__init__()
        self.classifier1 = nn.Linear(feature_dim, local_channels)
        self.classifier2 = nn.Linear(local_channels, local_channels)
        self.norm_weight, self.std_weight = norm_weight, std_weight

    def forward(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """The two cross-entropies and the two small regularisers (each also logged)."""
        return self.loss_and_outputs(target, x, x_next, ends)[:2]

    def loss_and_outputs(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                         ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float], TargetOutputs]:
        """:meth:`forward`, with the target's outputs on s_t and s_t+1 (the predictor's regression target)."""
        assert x_next is not None and isinstance(target, SNDConvNet)
        local = target.local_features(torch.cat([x, x_next]))
        out = target.head_from_local(local).float()
        local, n = local.float(), len(x)
        with float32_losses(out):  # the classifiers too: their logits are a softmax over the batch
            global_local, local_local, logit_norm = stdim_terms(out[n:], local[:n], local[n:], self.classifier1,
                                                                self.classifier2)
            spread = out[:n].std(dim=1).mean()
            loss = global_local + local_local + self.norm_weight * logit_norm - self.std_weight * spread
        return loss, {"losses/target_global_local": global_local.item(),
                      "losses/target_local_local": local_local.item(),
                      "losses/target_logit_norm": logit_norm.item()}, (out[:n], out[n:])


# ------------------------------------------------------------------------------------------------ the methods
class SNDVariant(NamedTuple):
    """What one SND variant is: its network family, its target's loss and its reward scale."""

    kind: SNDKind
    objective: str
    """``contrastive``, ``stdim`` or ``vicreg``."""
    eta: float
    """The reward scale of ``clip(eta x error, 0, 1)``: Iskandor/SND's ``motivation_eta`` for Montezuma."""
    predictor_gain: float
    """The predictor's orthogonal gain in the variant's official model class (``STDModelAtari`` uses 0.5)."""


SND_VARIANTS: dict[str, SNDVariant] = {
    "snd-v": SNDVariant("v", "contrastive", 0.5, math.sqrt(2)),     # SNDVModelAtari
    "snd-std": SNDVariant("std", "stdim", 1.0, 0.5),                # STDModelAtari
    "snd-vic": SNDVariant("std", "vicreg", 0.25, math.sqrt(2)),     # VICRegModelAtari
}
"""The three variants by method name (eta from config/ppo.config.json, Montezuma entries 49, 42, 44; the gains
from modules/rnd_models/RNDModelAtari.py)."""


def make_snd(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None, variant: str = "snd-vic"
             ) -> DistillationReward:
    """The reward module of an SND variant (the builder of methods ``snd-v``, ``snd-std``, ``snd-vic``).

    Of ``cfg`` it reads ``feature_dim`` (512, SND's); it is the same for every game (``rom``).

    Example:
        >>> snd = make_snd(IntrinsicConfig(feature_dim=16), num_envs=2, gamma=0.99, rom=None, variant="snd-std")
        >>> snd.trains_target, snd.target_pairs, snd.rates, snd.reward_norm, snd.reward_scale
        (True, True, 'current', 'clip', 1.0)
    """
    spec = SND_VARIANTS[variant]
    target = snd_target(spec.kind, cfg.feature_dim)
    predictor = snd_predictor(spec.kind, cfg.feature_dim, gain=spec.predictor_gain)
    objectives = {"contrastive": ContrastiveObjective, "vicreg": VICRegObjective,
                  "stdim": functools.partial(STDIMObjective, cfg.feature_dim, target.local_channels)}
    return DistillationReward(NewestFrame(), target, predictor, num_envs=num_envs, gamma=gamma,
                              target_objective=objectives[spec.objective](), rates="current", reward_norm="clip",
                              reward_scale=spec.eta)
