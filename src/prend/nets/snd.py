"""SND's target and predictor networks (Pecháč, Chovanec, Farkaš 2024; Iskandor/SND at commit 2f2c348).

Both read one frame, (N, 1, H, W) in [0, 1]. Four 3x3 convolutions with padding 1 and strides 2, 2, 2, 1
(84x84 -> 42 -> 21 -> 11 -> 11), then linear layers to 512 features:

============  ====================  ==========  ======================================  ===================
variant       conv channels         activation  target head                             init (gain)
============  ====================  ==========  ======================================  ===================
``v``         16, 32, 64, 64        ELU         FC 512                                  orthogonal sqrt(2)
``std``       32, 64, 64, 128       ReLU        FC 512 (ST-DIM's encoder; no final act.) orthogonal 0.5
============  ====================  ==========  ======================================  ===================

SND-VIC uses the ``std`` networks. Every predictor is the variant's convolutions, then FC 512, ELU, FC 512,
ELU, FC 512, orthogonal with the gain its official model class gives it: 0.5 for SND-STD (``STDModelAtari``),
sqrt(2) for SND-V (``SNDVModelAtari``) and SND-VIC (``VICRegModelAtari``), so the gain is the method's, not the
network family's. The official code sizes the flatten layer as ``C x (H//8) x (W//8)``, right
at its 96x96 but not at prend's 84x84 (the convolutions give 11x11, not 10x10): here it is computed from the
input size.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from prend.nets.layers import orthogonal_init

SNDKind = Literal["v", "std"]
"""Which SND network family: ``v`` (SND-V's) or ``std`` (SND-STD's and SND-VIC's, after ST-DIM's encoder)."""

_SPECS: dict[str, tuple[tuple[int, ...], type[nn.Module], float]] = {
    "v": ((16, 32, 64, 64), nn.ELU, math.sqrt(2)),   # SNDVEncoderAtari
    "std": ((32, 64, 64, 128), nn.ReLU, 0.5),        # ST_DIM_CNN
}
"""Per kind: conv channels, activation, and the target's orthogonal gain."""

STRIDES = (2, 2, 2, 1)
"""The four convolutions' strides (kernel 3, padding 1)."""


def conv_output_shape(frame: tuple[int, int]) -> tuple[int, int]:
    """The spatial size after the four convolutions.

    Example:
        >>> conv_output_shape((84, 84)), conv_output_shape((96, 96))
        ((11, 11), (12, 12))
    """
    height, width = frame
    for stride in STRIDES:
        height, width = (height - 1) // stride + 1, (width - 1) // stride + 1
    return height, width


class SNDConvNet(nn.Module):
    """SND's convolutions, flattened, then ``head``; :meth:`local_features` exposes the third conv's map.

    Args:
        kind: The network family (:data:`SNDKind`).
        head: The layers after the flatten (the flatten size is :attr:`flat_size`).
        gain: Orthogonal gain of the convolutions.
        frame: Input height and width.
    """

    def __init__(self, kind: SNDKind, head: nn.Module, gain: float, frame: tuple[int, int] = (84, 84)):
        super().__init__()
        channels, activation, _ = _SPECS[kind]
        layers: list[nn.Module] = []
        for c_in, c_out, stride in zip((1, *channels[:-1]), channels, STRIDES, strict=True):
            layers += [orthogonal_init(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), gain), activation()]
        self.convs = nn.Sequential(*layers)
        self.local_channels = channels[2]
        self.flat_size = channels[-1] * math.prod(conv_output_shape(frame))
        self.head = head

    def local_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w): the third convolution's activated map (ST-DIM's local features, 64 channels)."""
        return self.convs[:6](x)

    def head_from_local(self, local: torch.Tensor) -> torch.Tensor:
        """The output from :meth:`local_features`' map (the fourth convolution and the head)."""
        return self.head(self.convs[6:](local).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) frames in [0, 1] -> (N, feature_dim)."""
        return self.head(self.convs(x).flatten(1))


def snd_target(kind: SNDKind, feature_dim: int = 512, frame: tuple[int, int] = (84, 84)) -> SNDConvNet:
    """The trained target: convolutions and one linear layer (no final activation).

    Example:
        >>> net = snd_target("std")
        >>> net(torch.zeros(2, 1, 84, 84)).shape, net.local_features(torch.zeros(2, 1, 84, 84)).shape
        (torch.Size([2, 512]), torch.Size([2, 64, 11, 11]))
    """
    channels, _, gain = _SPECS[kind]
    flat = channels[-1] * math.prod(conv_output_shape(frame))
    return SNDConvNet(kind, orthogonal_init(nn.Linear(flat, feature_dim), gain), gain, frame)


def snd_predictor(kind: SNDKind, feature_dim: int = 512, frame: tuple[int, int] = (84, 84),
                  gain: float = math.sqrt(2)) -> SNDConvNet:
    """The predictor: the variant's convolutions, then FC 512, ELU, FC 512, ELU, FC ``feature_dim``.

    ``gain`` is the orthogonal gain of every layer: sqrt(2) in ``SNDVModelAtari`` and ``VICRegModelAtari``, 0.5 in
    ``STDModelAtari`` (Iskandor/SND, ``modules/rnd_models/RNDModelAtari.py``).

    Example:
        >>> snd_predictor("v")(torch.zeros(3, 1, 84, 84)).shape
        torch.Size([3, 512])
    """
    channels, _, _ = _SPECS[kind]
    flat = channels[-1] * math.prod(conv_output_shape(frame))
    head = nn.Sequential(orthogonal_init(nn.Linear(flat, 512), gain), nn.ELU(),
                         orthogonal_init(nn.Linear(512, 512), gain), nn.ELU(),
                         orthogonal_init(nn.Linear(512, feature_dim), gain))
    return SNDConvNet(kind, head, gain, frame)
