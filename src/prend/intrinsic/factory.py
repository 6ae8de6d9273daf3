"""Building the intrinsic reward a config asks for."""

from __future__ import annotations

from prend.config import IntrinsicConfig
from prend.errors import PrendError
from prend.intrinsic.base import DistillationReward
from prend.intrinsic.methods import resolve_method


def make_intrinsic(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None) -> DistillationReward | None:
    """The reward module of ``cfg.method`` (``None`` for plain PPO), checked to be a :class:`DistillationReward`.

    The method's builder (:mod:`prend.intrinsic.methods`) makes it; a plug-in's that returns anything else is
    reported in one line here, before training starts. ``cfg.reward_norm`` and ``cfg.reward_scale``, when set,
    replace the normalisation the builder chose (``auto`` and ``None`` keep it); ``cfg.reward_bf16`` sets its
    networks' autocast.
    """
    method = resolve_method(cfg.method)
    if method.build is None:
        return None
    module = method.build(cfg, num_envs, gamma, rom)
    if not isinstance(module, DistillationReward):
        raise PrendError(f"--method {cfg.method}: its builder returned a {type(module).__name__}, not a "
                         "DistillationReward", "return prend.intrinsic.DistillationReward(encoder, target, "
                         "predictor, num_envs=num_envs, gamma=gamma)")
    if cfg.reward_norm != "auto":
        module.reward_norm = cfg.reward_norm
    if cfg.reward_scale is not None:
        module.reward_scale = cfg.reward_scale
    module.bf16 = cfg.reward_bf16
    return module
