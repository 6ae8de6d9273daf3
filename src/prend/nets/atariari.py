"""AtariARI's encoder (Anand et al. 2019; mila-iqia/atari-representation-learning, ``atariari/methods/encoders.py``).

Their Nature-CNN-like stack to a 256-d vector, with the local map their ST-DIM reads; trained by
:mod:`prend.pretrain.atariari`. It lives with the networks so that a trained one can be loaded where the
pre-training package is not (a frozen backbone under PreND reads 84x84 4-stacks: ``frame="stack84"``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Frame = Literal["full", "stack84"]
FRAME_SHAPES: dict[str, tuple[int, int]] = {"full": (210, 160), "stack84": (84, 84)}
"""Frame (height, width) per input kind: AtariARI's full 210x160 single frames, prend's 84x84 4-stacks."""


class AtariARIEncoder(nn.Module):
    """AtariARI's Nature-CNN-like encoder to a ``feature_dim`` vector, with the local map ST-DIM reads.

    Args:
        frame: ``"full"``: one 210x160 frame in; ``"stack84"``: an 84x84 4-stack in.
        feature_dim: Width of the output vector (AtariARI: 256).
        size: The frames' (height, width) when not the kind's own (small frames keep tests fast).

    Example:
        >>> enc = AtariARIEncoder("full")
        >>> out, local = enc(torch.zeros(2, 1, 210, 160), local=True)
        >>> tuple(out.shape), tuple(local.shape)
        ((2, 256), (2, 128, 11, 8))
        >>> tuple(AtariARIEncoder("stack84")(torch.zeros(2, 4, 84, 84), local=True)[1].shape)
        (2, 32, 7, 7)
    """

    def __init__(self, frame: Frame = "full", feature_dim: int = 256, size: tuple[int, int] | None = None):
        super().__init__()
        if frame == "full":
            convs = [(1, 32, 8, 4), (32, 64, 4, 2), (64, 128, 4, 2), (128, 64, 3, 1)]
        else:
            convs = [(4, 32, 8, 4), (32, 64, 4, 2), (64, 32, 3, 1)]
        # Local features: the 128-channel third layer at full resolution (AtariARI's f5); their downsampled
        # stack has three layers, so there the last map is the local one.
        self.local_layers = 3
        layers: list[nn.Module] = []
        for cin, cout, k, s in convs:
            layers += [nn.Conv2d(cin, cout, k, stride=s), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.size = size or FRAME_SHAPES[frame]
        with torch.no_grad():  # the flattened width follows from the frame size (64x9x6 at 210x160)
            flat = self.convs(torch.zeros(1, convs[0][0], *self.size)).numel()
        self.head = nn.Linear(flat, feature_dim)
        self.local_channels = convs[self.local_layers - 1][1]
        self.frame, self.feature_dim = frame, feature_dim
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.weight, nn.init.calculate_gain("relu"))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, local: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Float inputs in [0, 1] (N, C, H, W) -> the vector (N, feature_dim), and the local map if asked."""
        split = 2 * self.local_layers
        local_map = self.convs[:split](x)
        out = self.head(self.convs[split:](local_map).flatten(1))
        return (out, local_map) if local else out
