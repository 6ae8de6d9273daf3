"""Building the intrinsic reward a config asks for."""

from __future__ import annotations

from prend.config import IntrinsicConfig
from prend.intrinsic.base import DistillationReward
from prend.intrinsic.prend import make_prend
from prend.intrinsic.rnd import make_rnd


def make_intrinsic(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None) -> DistillationReward | None:
    """The reward module of ``cfg.method`` (``None`` for plain PPO).

    RND and RND+LR build the same module; they differ only in the predictor's optimizer, which the
    trainer sets up from :meth:`IntrinsicConfig.uses_separate_optimizer`.
    """
    if cfg.method == "none":
        return None
    if cfg.method == "prend":
        return make_prend(cfg, num_envs=num_envs, gamma=gamma, rom=rom)
    return make_rnd(num_envs=num_envs, gamma=gamma, feature_dim=cfg.feature_dim)
