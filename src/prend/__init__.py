"""prend: prediction-based intrinsic motivation for RL (RND, RND+LR, PreND) with PPO on Atari."""

__version__ = "0.1.0"

# Public names resolved on first use (PEP 562), so ``import prend`` and the CLI's startup stay free of torch.
_LAZY_EXPORTS = {
    "AtariPBNeck": "prend.nets.atari_pb",
    "DeepSeaEnv": "prend.envs.deep_sea",
    "ResNetGN": "prend.nets.atari_pb",
    "load_atari_pb_backbone": "prend.nets.atari_pb",
}


def __getattr__(name: str):
    """Import a lazily exported name from its module on first access."""
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'prend' has no attribute {name!r}")


def _register_envs() -> None:
    """Register prend's gymnasium envs (``prend/DeepSea-v0``), so ``gym.make`` finds them after ``import prend``."""
    from prend.envs.deep_sea import register

    register()


_register_envs()
