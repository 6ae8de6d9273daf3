"""PreND (Davoodabadi et al. 2024): RND's distillation on top of a frozen pre-trained backbone.

The whole idea, in terms of :mod:`prend.intrinsic.base`:

- the **encoder** is a frozen Atari-PB ResNet (pre-trained; Atari-PB's ResNet-50 in the paper) that sees the
  4-frame stack scaled to [0, 1], not RND's whitened last frame;
- the **target** is a randomly initialised Atari-PB neck, frozen; the **predictor** an independently
  initialised neck, trained. Both read the backbone's feature map with the game's Atari-PB id;
- the reward is the mean squared error over the necks' 512 outputs, normalised exactly as RND's;
- the predictor has its own, slower optimizer (``predictor_lr_scale``, 0.01 in the paper), set up by the
  trainer like RND+LR's.

The backbone runs once per observation, at collection time; its feature maps are what the rollout keeps
for the predictor's update.

Variants beyond the paper, each one config field with the paper's choice as default (reasons in
docs/hyperparameters.md): ``feature_norm`` whitens the backbone's features per element as RND whitens
pixels; ``target_norm`` centres or whitens the target's outputs; ``predictor_init="target-mean"`` starts the
predictor at the target's mean output; ``predictor_layers=1`` and ``predictor_spectral_norm`` are the paper's
two ablations of the predictor. The backbone may also be AtariARI's encoder (``backbone="atariari-stack84"``,
random or from an ST-DIM run's file, or a shipped name of the ``atariari`` family: its 256-d vector reaches the
necks as a 256x1x1 map) or any torch module (``backbone="pkg.mod:factory"``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch
from torch import nn

from prend.config import IntrinsicConfig
from prend.envs.games import atari_pb_game_id
from prend.errors import PrendError
from prend.intrinsic.base import DistillationReward, Encoder, OutputBias
from prend.intrinsic.normalizers import OutputNormalizer
from prend.nets.atari_pb import ARCHS, AtariPBNeck, ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone
from prend.nets.atariari import PREND_ARCHS as ATARIARI_ARCHS
from prend.nets.atariari import AtariARIEncoder, load_atariari_backbone
from prend.nets.weights import SHIPPED_BACKBONES, build_shipped_backbone, shipped_backbone


def as_feature_map(features: torch.Tensor) -> torch.Tensor:
    """A backbone's output as (N, C, H, W): maps as they are, tokens (N, T, D) as (N, D, T, 1), vectors as (N, D, 1, 1).

    Example:
        >>> as_feature_map(torch.zeros(2, 10, 16)).shape, as_feature_map(torch.zeros(2, 8)).shape
        (torch.Size([2, 16, 10, 1]), torch.Size([2, 8, 1, 1]))
    """
    if features.dim() == 4:
        return features
    if features.dim() == 3:
        return features.transpose(1, 2).unsqueeze(-1)
    if features.dim() == 2:
        return features[:, :, None, None]
    raise ValueError(f"features of shape {tuple(features.shape)}: expected (N, C, H, W), (N, tokens, D) or (N, D)")


class FrozenBackbone(Encoder):
    """A frozen backbone on the frame stack in [0, 1]; its feature maps are the compact form.

    Args:
        backbone: maps float (N, 4, 84, 84) in [0, 1] to features (see :func:`as_feature_map`); frozen and
            put in eval mode here.
        bf16: run it under bfloat16 autocast (features are returned, and stored, in float32).
        feature_norm: the (C, H, W) shape of its feature map to whiten features per element by running
            statistics and clip them to [-5, 5] in :meth:`expand`, as RND does for pixels; ``None``: as they are.
        channels_last: lay its conv weights out channels-last (faster convolutions). ``False`` (modules of
            unknown code, which may ``.view`` a conv's output) keeps them contiguous, even when the whole reward
            module is later moved to another memory format.
    """

    def __init__(self, backbone: nn.Module, bf16: bool = False, feature_norm: tuple[int, ...] | None = None,
                 channels_last: bool = True):
        super().__init__()
        self.channels_last = channels_last
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.backbone = backbone.eval().requires_grad_(False).to(memory_format=memory_format)
        self.bf16 = bf16
        self.feature_norm = None if feature_norm is None else OutputNormalizer(feature_norm, "whiten")
        self.needs_warmup = feature_norm is not None

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - nn.Module's signature
        """Moves and casts as any module, but a ``channels_last=False`` backbone's tensors stay contiguous."""
        super()._apply(fn, recurse)
        if not self.channels_last:
            for tensor in [*self.backbone.parameters(), *self.backbone.buffers()]:
                tensor.data = tensor.data.contiguous()
        return self

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Keep the backbone in eval mode whatever the parent module does."""
        super().train(mode)
        self.backbone.eval()
        return self

    @torch.no_grad()
    def compact(self, obs: torch.Tensor) -> torch.Tensor:
        """Backbone features of uint8 frame stacks, as (N, C, H, W)."""
        x = obs.float() / 255.0  # convs run in their weights' memory format, so x needs no conversion
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            features = self.backbone(x)
        return as_feature_map(features).float().contiguous()

    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """The stored features, whitened when ``feature_norm`` (statistics change only in :meth:`observe`)."""
        return compact if self.feature_norm is None else self.feature_norm(compact)

    @torch.no_grad()
    def observe(self, obs: torch.Tensor, compact: torch.Tensor | None = None) -> None:
        """Fold the features into the whitening statistics (from ``compact`` when given: no backbone pass)."""
        if self.feature_norm is not None:
            self.feature_norm.update(compact if compact is not None else
                                     torch.cat([self.compact(chunk) for chunk in obs.split(2048)]))


class GameNeck(nn.Module):
    """An :class:`AtariPBNeck` bound to one game id, so it maps features to outputs like any network."""

    game_id: torch.Tensor

    def __init__(self, neck: AtariPBNeck, game_id: int):
        super().__init__()
        self.neck = neck
        self.register_buffer("game_id", torch.tensor(game_id, dtype=torch.long))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The neck's (N, 512) output for this game."""
        return self.neck(features, self.game_id)


def backbone_weights_file(cfg: IntrinsicConfig) -> Path | None:
    """The weights file :func:`make_backbone` reads for ``cfg`` (None: a randomly initialised backbone).

    Runs record its sha256 (``run_info.json``), so a result names the exact backbone it was trained with.
    """
    if cfg.backbone in SHIPPED_BACKBONES:
        return Path(cfg.backbone_weights or shipped_backbone(cfg.backbone)[0])
    return None if cfg.backbone_weights is None else Path(cfg.backbone_weights)


def make_backbone(cfg: IntrinsicConfig) -> nn.Module:
    """The frozen backbone ``cfg.backbone`` names, with its weights (see :class:`IntrinsicConfig`)."""
    name, weights = cfg.backbone, cfg.backbone_weights
    if name in SHIPPED_BACKBONES:  # either family (nets/weights.py): an Atari-PB ResNet or an AtariARI encoder
        return build_shipped_backbone(name, weights)
    if name in ATARIARI_ARCHS:
        if weights is None:  # "PreND without pre-training" for AtariARI's encoder
            return AtariARIEncoder(name.removeprefix("atariari-"))  # type: ignore[arg-type]
        encoder = load_atariari_backbone(weights)  # any ST-DIM run file (init.pt, epochNNN.pt, best.pt), exported
        if encoder.arch != name:
            raise PrendError(f"--backbone-weights {weights} holds an {encoder.arch} encoder, not {name}",
                             f"pass --backbone {encoder.arch}")
        return encoder
    if name == "atari-pb-resnet50":
        if weights is None:
            raise PrendError("--backbone atari-pb-resnet50 needs --backbone-weights PATH",
                             "download an Atari-PB checkpoint (see docs/atari_pb.md) or make one with "
                             "`prend pretrain --arch resnet50`; or use the shipped `--backbone compact`")
        return load_atari_pb_backbone(weights, arch="resnet50", width=1.0)
    if name in ARCHS:
        if weights is not None:
            return load_atari_pb_backbone(weights, arch=name, width=cfg.backbone_width)
        return ResNetGN(name, width=cfg.backbone_width)  # "PreND without pre-training" ablation
    if ":" in name:
        return backbone_from_factory(name)
    raise PrendError(f"unknown backbone '{name}'",
                     f"choose a shipped one ({', '.join(SHIPPED_BACKBONES)}), atari-pb-resnet50, an architecture "
                     f"({', '.join((*ARCHS, *ATARIARI_ARCHS))}) "
                     "or module.path:factory")


def backbone_from_factory(spec: str) -> nn.Module:
    """Bring your own encoder: import ``module.path:factory``, call it, check what it returns on Atari input."""
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as err:
        raise PrendError(f"--backbone {spec}: cannot import '{module_name}' ({type(err).__name__}: {err})",
                         "install it, or put its directory on PYTHONPATH") from None
    except AttributeError:
        raise PrendError(f"--backbone {spec}: module '{module_name}' has no '{attr}'",
                         "name a function of that module after the colon") from None
    try:
        backbone = factory()
    except Exception as err:  # noqa: BLE001 - a user's factory can fail in any way; report it in one line
        raise PrendError(f"--backbone {spec}: the factory failed ({type(err).__name__}: {err})") from None
    if not isinstance(backbone, nn.Module):
        raise PrendError(f"--backbone {spec}: the factory returned a {type(backbone).__name__}, not a torch module",
                         "return an nn.Module mapping float (N, 4, 84, 84) in [0, 1] to features")
    x = torch.rand(2, 4, 84, 84)
    try:
        with torch.no_grad():
            features = backbone.eval()(x)
    except Exception as err:  # noqa: BLE001
        raise PrendError(f"--backbone {spec}: the module fails on float (2, 4, 84, 84) input "
                         f"({type(err).__name__}: {err})", "it must take 4 stacked 84x84 frames in [0, 1]") from None
    if not isinstance(features, torch.Tensor) or features.dim() not in (2, 3, 4) or features.shape[0] != 2 \
            or not features.is_floating_point():
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise PrendError(f"--backbone {spec}: the module maps (2, 4, 84, 84) to {got}",
                         "return one float tensor (N, C, H, W), (N, tokens, D) or (N, D) per batch of N")
    return backbone


def ignored_fields(cfg: IntrinsicConfig) -> set[str]:
    """PreND's fields that ``cfg`` leaves without effect (its declaration's ``ignored``; run labels leave them out).

    A user's backbone takes no weights file or width; a shipped one, or ``atari-pb-resnet50``, has its width
    fixed by its weights; the paper's PreND plays no random-agent warm-up (its variants do).

    Example:
        >>> sorted(ignored_fields(IntrinsicConfig(method="prend", backbone="compact")))
        ['backbone_width', 'obs_norm_init_iters']
        >>> sorted(ignored_fields(IntrinsicConfig(method="prend", backbone="resnet18", target_norm="center")))
        []
    """
    ignored = set()
    if ":" in cfg.backbone:
        ignored |= {"backbone_weights", "backbone_width"}
    elif not re.fullmatch(r"resnet\d+", cfg.backbone):
        ignored.add("backbone_width")
    if not (cfg.feature_norm or cfg.target_norm != "none" or cfg.predictor_init != "random"):
        ignored.add("obs_norm_init_iters")
    return ignored


def make_prend(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None,
               backbone: nn.Module | None = None) -> DistillationReward:
    """The PreND reward module: frozen backbone -> random frozen neck (target) / trained neck (predictor).

    The builder of method ``prend`` (:data:`prend.intrinsic.methods.PREND`); ``backbone`` (tests, benchmarks)
    replaces the one ``cfg`` names.
    """
    backbone = backbone if backbone is not None else make_backbone(cfg)
    with torch.no_grad():
        channels, height, width = as_feature_map(backbone.eval()(torch.zeros(1, 4, 84, 84))).shape[1:]
    game_id = cfg.game_id if cfg.game_id is not None else atari_pb_game_id(rom)
    k = cfg.feature_dim
    target = GameNeck(AtariPBNeck(channels, spatial=(height, width), hidden_dims=(1024, k)), game_id)
    # A normalised target is partly negative, which a final ReLU could never output.
    hidden = (1024,) * (cfg.predictor_layers - 1) + (k,)
    predictor: nn.Module = GameNeck(AtariPBNeck(channels, spatial=(height, width), hidden_dims=hidden,
                                                output_relu=cfg.target_norm == "none"), game_id)
    if cfg.predictor_spectral_norm:
        for i, layer in enumerate(predictor.neck.mlp):
            if isinstance(layer, nn.Linear):
                predictor.neck.mlp[i] = nn.utils.parametrizations.spectral_norm(layer)
    if cfg.predictor_init == "target-mean":
        predictor = nn.Sequential(predictor, OutputBias(k))
    encoder = FrozenBackbone(backbone, bf16=cfg.backbone_bf16, channels_last=":" not in cfg.backbone,
                             feature_norm=(channels, height, width) if cfg.feature_norm else None)
    target_norm = None if cfg.target_norm == "none" else OutputNormalizer((k,), cfg.target_norm)
    return DistillationReward(encoder, target=target, predictor=predictor, num_envs=num_envs, gamma=gamma,
                              target_norm=target_norm, start_at_target_mean=cfg.predictor_init == "target-mean")
