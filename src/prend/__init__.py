"""prend: prediction-based intrinsic motivation for RL (RND, RND+LR, PreND) with PPO on Atari."""

__version__ = "0.1.0"
