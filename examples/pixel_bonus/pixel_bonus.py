"""A fourth intrinsic reward, outside prend: RND whose target is a fixed random projection of 21x21 pixels.

``prend train --method pixel_bonus:PIXEL_RND`` with this folder on ``PYTHONPATH``, or ``--method pixel-rnd``
once it is installed (``pip install -e examples/pixel_bonus``: the entry point in its ``pyproject.toml``).
"""

import torch
from torch import nn

from prend.config import IntrinsicConfig
from prend.intrinsic import DistillationReward, IntrinsicMethod, LastFrameNormalizer
from prend.nets.rnd import rnd_predictor


class PixelProjection(nn.Module):
    """The target: the whitened last frame averaged to 21x21, times a fixed random (441, dim) matrix."""

    def __init__(self, dim: int):
        super().__init__()
        self.pool = nn.AvgPool2d(4)
        # A buffer, not a parameter: nothing trains it, and checkpoints save it, so a resume keeps it.
        self.register_buffer("projection", torch.randn(21 * 21, dim) / 21)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        """(N, 1, 84, 84) whitened frames -> (N, dim)."""
        return self.pool(frame).flatten(1) @ self.projection


def make_pixel_rnd(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None) -> DistillationReward:
    """RND's whitened last frame and CNN predictor, with the pixel projection as the target."""
    return DistillationReward(LastFrameNormalizer(), PixelProjection(cfg.feature_dim),
                              rnd_predictor(1, cfg.feature_dim), num_envs=num_envs, gamma=gamma)


PIXEL_RND = IntrinsicMethod(
    name="pixel-rnd",  # what run directories and reports call it
    build=make_pixel_rnd,
    own_optimizer=False,  # its predictor steps with the policy's Adam, as RND's does
    fields=("feature_dim", "obs_norm_init_iters"),  # the config fields it reads: labels leave out the rest
)
