"""Small building blocks shared by the networks."""

from __future__ import annotations

import math

from torch import nn


def orthogonal_init(layer: nn.Module, gain: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights with ``gain`` and constant bias, as in openai/baselines; returns ``layer``."""
    nn.init.orthogonal_(layer.weight, gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.constant_(layer.bias, bias)
    return layer


def nature_convs(in_channels: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """The DQN/RND conv stack: 32x8x8/4, 64x4x4/2, 64x3x3/1, flattened to 3136 for 84x84 input."""
    return nn.Sequential(
        orthogonal_init(nn.Conv2d(in_channels, 32, 8, stride=4)), activation(),
        orthogonal_init(nn.Conv2d(32, 64, 4, stride=2)), activation(),
        orthogonal_init(nn.Conv2d(64, 64, 3, stride=1)), activation(),
        nn.Flatten(),
    )


NATURE_FLAT = 64 * 7 * 7
"""Flattened size of :func:`nature_convs` on 84x84 input."""
