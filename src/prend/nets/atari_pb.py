"""The Atari-PB model family: the ResNet-GN backbone and the game-wise neck (checkpoints: :mod:`.atari_pb_io`).

The models follow dojeon-ai/Atari-PB (Kim et al. 2024, "Investigating Pre-Training Objectives for
Generalization in Vision-Based Reinforcement Learning").

PreND's target is a frozen Atari-PB backbone followed by a randomly initialised ``mh_spatial_mlp`` neck. Both
modules here reproduce Atari-PB's layer structure *and parameter names*, so a ``state_dict`` moves between
the two codebases unchanged (``benchmarks/verify_atari_pb.py`` checks this against a clone of Atari-PB).
Sources, all at commit ``e989dfa`` of dojeon-ai/Atari-PB:

* ``src/models/backbones/resnet.py``: :class:`ResNetGN` and its blocks.
* ``src/models/layers.py::init_normalization``: ``'gn'`` = ``GroupNorm(4, C, affine=False)``,
  ``'ln'`` (2-D) = ``GroupNorm(1, C, affine=True)``.
* ``src/models/necks/mh_spatial_mlp.py``: :class:`AtariPBNeck`.

Example:
    >>> import torch
    >>> backbone = ResNetGN("resnet18", width=0.25)
    >>> neck = AtariPBNeck(backbone.out_channels, spatial=backbone.out_spatial)
    >>> neck(backbone(torch.rand(2, 4, 84, 84)), game_id=12).shape
    torch.Size([2, 512])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from prend.errors import PrendError

__all__ = ["ARCHS", "LAYOUT", "STAGE_PLANES", "AtariPBNeck", "Arch", "BasicBlock", "Bottleneck", "ResNetGN",
           "stage_planes"]

Arch = Literal["resnet18", "resnet34", "resnet50"]
ARCHS: tuple[str, ...] = get_args(Arch)

STAGE_PLANES = (64, 128, 256, 512)
"""Output channels of the four stages at width 1 (times 4 for ResNet-50's bottlenecks)."""
_STEM_CHANNELS = 64
_GN_GROUPS = 4
_INPUT_SIZE = 84


def _gn(channels: int) -> nn.GroupNorm:
    # Atari-PB's 'gn' norm: 4 groups, no affine parameters, so it adds no entries to the state_dict.
    return nn.GroupNorm(_GN_GROUPS, channels, affine=False)


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    # An empty Sequential is the identity and, like Atari-PB's, contributes no state_dict keys.
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                         _gn(out_planes))


class BasicBlock(nn.Module):
    """Two 3x3 convs with GroupNorm and a residual connection (ResNet-18/34).

    Args:
        in_planes: Input channels.
        planes: Channels of both convs (and of the output: ``expansion`` is 1).
        stride: Stride of the first conv and of the projection shortcut.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm1 = _gn(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.norm2 = _gn(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block: ``relu(norm2(conv2(relu(norm1(conv1(x))))) + shortcut(x))``."""
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 bottleneck with GroupNorm and a residual connection (ResNet-50).

    The stride sits on the 3x3 conv ("ResNet v1.5"), as in Atari-PB.

    Args:
        in_planes: Input channels.
        planes: Channels of the two inner convs; the output has ``4 * planes``.
        stride: Stride of the 3x3 conv and of the projection shortcut.
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.norm1 = _gn(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm2 = _gn(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.norm3 = _gn(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block: three conv-norm layers (ReLU between them) plus the shortcut, then ReLU."""
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)


LAYOUT: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}
"""Each architecture's block and blocks per stage (Atari-PB's ``resnet.py``)."""


def stage_planes(width: float) -> tuple[int, int, int, int]:
    """Inner channels of the four stages for a width multiplier, truncated with ``int`` like Atari-PB.

    Example:
        >>> stage_planes(1.0), stage_planes(0.3)
        ((64, 128, 256, 512), (19, 38, 76, 153))
    """
    return tuple(int(p * width) for p in STAGE_PLANES)  # type: ignore[return-value]


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class ResNetGN(nn.Module):
    """Atari-PB's ResNet backbone with GroupNorm: (N, 4, 84, 84) in [0, 1] -> (N, C, 6, 6).

    The differences from torchvision's ResNet all come from Atari-PB: the input has 4 channels (stacked
    grayscale frames); there is no max-pool after the 7x7/2 stem and no global pooling or FC at the end (the
    neck pools); every norm is ``GroupNorm(4, C, affine=False)``; no conv has a bias.

    The width multiplier scales the four stages' inner channels with ``int(64 * width)`` etc., but not the
    64-channel stem, exactly as Atari-PB does; so at width < 1 the first block of ``layer1`` gets a projection
    shortcut even in ResNet-18. Every conv, norm and stage count otherwise follows
    ``src/models/backbones/resnet.py``.

    ``stem`` is a Sequential that *reuses* ``conv1`` and ``norm1`` (Atari-PB builds it that way), so the
    state_dict holds the stem's weight twice, as ``conv1.weight`` and ``stem.0.weight``. They are the same
    tensor; keeping both names is what makes Atari-PB's checkpoints load with ``strict=True``.

    Args:
        arch: ``resnet18`` / ``resnet34`` (basic blocks [2,2,2,2] / [3,4,6,3]) or ``resnet50`` (bottleneck
            blocks [3,4,6,3], expansion 4).
        width: Width multiplier of the four stages; each stage's channel count must stay a positive multiple
            of 4 (the GroupNorm groups).
        in_channels: Input channels (Atari-PB: 4 frames x 1 grayscale channel).

    Attributes:
        out_channels: Channels of the output map (2048 for ResNet-50 at width 1, 512 for ResNet-18).
        out_spatial: Height and width of the output map for 84x84 input, ``(6, 6)``.

    Raises:
        PrendError: For an unknown ``arch`` or a width giving channel counts GroupNorm cannot split.
    """

    def __init__(self, arch: Arch = "resnet50", width: float = 1.0, in_channels: int = 4):
        super().__init__()
        if arch not in LAYOUT:
            raise PrendError(f"unknown Atari-PB backbone architecture {arch!r}", fix=f"choose one of {ARCHS}")
        planes = stage_planes(width)
        block, num_blocks = LAYOUT[arch]
        if not all(p > 0 and p % _GN_GROUPS == 0 for p in planes):
            raise PrendError(f"backbone width {width} gives stage channels {planes}",
                             fix=f"choose a width whose channels are positive multiples of {_GN_GROUPS} "
                                 "(e.g. 0.25, 0.5, 1.0)")
        self.arch, self.width, self.in_channels = arch, float(width), in_channels

        self.conv1 = nn.Conv2d(in_channels, _STEM_CHANNELS, kernel_size=7, stride=2, padding=3, bias=False)
        self.norm1 = _gn(_STEM_CHANNELS)
        self.stem = nn.Sequential(self.conv1, self.norm1, nn.ReLU(inplace=True))

        in_planes = _STEM_CHANNELS
        stages = []
        for stage_planes_, n, stride in zip(planes, num_blocks, (1, 2, 2, 2), strict=True):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(block(in_planes, stage_planes_, s))
                in_planes = stage_planes_ * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

        self.out_channels: int = in_planes
        size = _conv_out(_INPUT_SIZE, 7, 2, 3)
        for _ in range(3):  # the three stride-2 stages (3x3 conv, padding 1)
            size = _conv_out(size, 3, 2, 1)
        self.out_spatial: tuple[int, int] = (size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map float frames ``(N, in_channels, H, W)`` in [0, 1] to features ``(N, out_channels, H', W')``."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def extra_repr(self) -> str:
        """Architecture summary shown by ``print(model)``."""
        return f"arch={self.arch!r}, width={self.width}, in_channels={self.in_channels}"


class AtariPBNeck(nn.Module):
    """Atari-PB's ``mh_spatial_mlp`` neck: game-wise spatial weighting, average pool, norm, 2-layer MLP.

    For game ``g`` and feature map ``x`` of shape (N, C, H, W)::

        x = x * spatial_embed[g].view(C, H, W)   # multiplicative, one learned map per game
        x = avgpool_HxW(x)                        # (N, C)
        x = GroupNorm(1, C, affine=True)(x)       # per-sample layer norm over channels
        x = relu(Linear(C, 1024)(x)); x = relu(Linear(1024, 512)(x))

    The PreND paper calls the norm "instance normalization"; Atari-PB's code (``norm_type: 'ln'``, not
    ``one_d``) makes it ``GroupNorm(1, C)`` on the pooled vector, which is what this is. The output passes
    through a final ReLU, so it is non-negative. Initialisation is PyTorch's default everywhere (Atari-PB
    applies no custom init to this neck), so the embedding starts N(0, 1).

    Args:
        in_channels: Channels ``C`` of the backbone's map.
        num_games: Rows of the per-game embedding (Atari-PB's 60-game list; game ids index it).
        spatial: ``(H, W)`` of the backbone's map.
        hidden_dims: Widths of the linear layers (Atari-PB's: two); the output size is the last.
        output_relu: End with a ReLU, as Atari-PB's neck does (``False``: the last layer is linear).

    Attributes:
        out_dim: Size of the output vector.
    """

    def __init__(self, in_channels: int = 2048, num_games: int = 60, spatial: tuple[int, int] = (6, 6),
                 hidden_dims: Sequence[int] = (1024, 512), output_relu: bool = True):
        super().__init__()
        if not hidden_dims:
            raise ValueError("the neck needs at least one linear layer (hidden_dims is empty)")
        h, w = spatial
        self.in_channels, self.spatial, self.num_games = in_channels, (h, w), num_games
        self.spatial_embed = nn.Embedding(num_games, in_channels * h * w)
        self.pool = nn.AvgPool2d((h, w))
        self.norm = nn.GroupNorm(1, in_channels, affine=True)
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip([in_channels, *hidden_dims[:-1]], hidden_dims, strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*(layers if output_relu else layers[:-1]))
        self.out_dim: int = hidden_dims[-1]

    def forward(self, features: torch.Tensor, game_id: int | torch.Tensor) -> torch.Tensor:
        """Reduce backbone features to one vector per sample.

        Args:
            features: Backbone output ``(N, C, H, W)``.
            game_id: One game id for the whole batch (an ``int`` or 0-d tensor) or one per sample, a
                ``LongTensor`` of shape ``(N,)``.

        Returns:
            ``(N, out_dim)``, non-negative.
        """
        n, c, h, w = features.shape
        if isinstance(game_id, int) or (isinstance(game_id, torch.Tensor) and game_id.dim() == 0):
            # One row broadcast over the batch: the Embedding lookup's numbers without an (N, C*H*W) copy.
            embed = self.spatial_embed.weight[game_id].view(1, c, h, w)
        else:
            embed = self.spatial_embed(game_id).view(n, c, h, w)
        x = self.pool(features * embed).flatten(1)
        return self.mlp(self.norm(x))
