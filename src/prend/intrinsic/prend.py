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
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from prend.config import IntrinsicConfig
from prend.envs.games import atari_pb_game_id
from prend.errors import PrendError
from prend.intrinsic.base import DistillationReward, Encoder
from prend.nets.atari_pb import ARCHS, AtariPBNeck, ResNetGN, load_atari_pb_backbone


class FrozenBackbone(Encoder):
    """A frozen backbone on the frame stack in [0, 1]; its feature maps are the compact form.

    Args:
        backbone: maps float (N, 4, 84, 84) in [0, 1] to (N, C, H, W); frozen and put in eval mode here.
        bf16: run it under bfloat16 autocast (features are returned, and stored, in float32).
    """

    def __init__(self, backbone: nn.Module, bf16: bool = False):
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.bf16 = bf16

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Keep the backbone in eval mode whatever the parent module does."""
        super().train(mode)
        self.backbone.eval()
        return self

    @torch.no_grad()
    def compact(self, obs: torch.Tensor) -> torch.Tensor:
        """Backbone features of uint8 frame stacks."""
        x = obs.float() / 255.0  # convs run in their weights' memory format, so x needs no conversion
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            features = self.backbone(x)
        return features.float().contiguous()

    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """The stored features are the target's input as they are."""
        return compact


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
    if cfg.backbone == "compact":
        from prend.pretrain import shipped_backbone

        return Path(cfg.backbone_weights or shipped_backbone()[0])
    return None if cfg.backbone_weights is None else Path(cfg.backbone_weights)


def make_backbone(cfg: IntrinsicConfig) -> nn.Module:
    """The frozen backbone ``cfg.backbone`` names, with its weights (see :class:`IntrinsicConfig`)."""
    name, weights = cfg.backbone, cfg.backbone_weights
    if name == "compact":
        from prend.pretrain import shipped_backbone

        path, arch, width = shipped_backbone()
        return load_atari_pb_backbone(weights or path, arch=arch, width=width)
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
    raise PrendError(f"unknown backbone '{name}'",
                     f"choose compact, atari-pb-resnet50 or an architecture ({', '.join(ARCHS)})")


def make_prend(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None,
               backbone: nn.Module | None = None) -> DistillationReward:
    """The PreND reward module: frozen backbone -> random frozen neck (target) / trained neck (predictor)."""
    backbone = backbone if backbone is not None else make_backbone(cfg)
    with torch.no_grad():
        channels, height, width = backbone(torch.zeros(1, 4, 84, 84)).shape[1:]
    game_id = cfg.game_id if cfg.game_id is not None else atari_pb_game_id(rom or "")

    def neck() -> GameNeck:
        return GameNeck(AtariPBNeck(channels, spatial=(height, width), hidden_dims=(1024, cfg.feature_dim)), game_id)

    return DistillationReward(FrozenBackbone(backbone, bf16=cfg.backbone_bf16), target=neck(), predictor=neck(),
                              num_envs=num_envs, gamma=gamma)

