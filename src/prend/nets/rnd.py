"""The original RND's target and predictor networks.

Source: openai/random-network-distillation, ``cnn_policy_param_matched.py``, ``policy_size='normal'``.
"""

from __future__ import annotations

import math

from torch import nn

from prend.nets.layers import NATURE_FLAT, nature_convs, orthogonal_init


def rnd_target(in_channels: int = 1, feature_dim: int = 512) -> nn.Sequential:
    """Random, frozen target: 3 convs (leaky ReLU) + a linear layer; orthogonal init with gain sqrt(2)."""
    net = nn.Sequential(nature_convs(in_channels, nn.LeakyReLU),
                        orthogonal_init(nn.Linear(NATURE_FLAT, feature_dim)))
    return net.requires_grad_(False)


def rnd_predictor(in_channels: int = 1, feature_dim: int = 512) -> nn.Sequential:
    """Trained predictor: the same convs, then FC512-ReLU, FC512-ReLU and a linear output layer."""
    gain = math.sqrt(2)
    return nn.Sequential(
        nature_convs(in_channels, nn.LeakyReLU),
        orthogonal_init(nn.Linear(NATURE_FLAT, 512), gain), nn.ReLU(),
        orthogonal_init(nn.Linear(512, 512), gain), nn.ReLU(),
        orthogonal_init(nn.Linear(512, feature_dim), gain),
    )
