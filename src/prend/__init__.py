"""prend: prediction-based intrinsic motivation for RL (RND, RND+LR, PreND) with PPO on Atari."""

import importlib

from prend.envs.deep_sea import register as _register_envs

__version__ = "0.1.0"

# Public names resolved on first use (PEP 562), so ``import prend`` and the CLI's startup stay free of torch.
_LAZY_EXPORTS = {
    "AtariPBNeck": "prend.nets.atari_pb",
    "DeepSeaEnv": "prend.envs.deep_sea",
    "ResNetGN": "prend.nets.atari_pb",
    "load_atari_pb_backbone": "prend.nets.atari_pb_io",
}


def __getattr__(name: str):
    """Import a lazily exported name from its module on first access."""
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'prend' has no attribute {name!r}")


# prend's gymnasium envs (``prend/DeepSea-v0``): ``gym.make`` finds them after ``import prend``.
_register_envs()
