"""The Atari-PB model family: ResNet-GN backbone, game-wise neck and checkpoint I/O in Atari-PB's format.

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
* ``src/trainers/base.py::save_checkpoint`` and ``src/common/logger.py::load_model``: the checkpoint layout
  and the ``_orig_mod.`` / ``_orig_mod.module.`` key prefixes left by ``torch.compile`` and DDP.

Example:
    >>> import torch
    >>> backbone = ResNetGN("resnet18", width=0.25)
    >>> neck = AtariPBNeck(backbone.out_channels, spatial=backbone.out_spatial)
    >>> neck(backbone(torch.rand(2, 4, 84, 84)), game_id=12).shape
    torch.Size([2, 512])
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from prend.checkpoint import atomic_torch_save
from prend.errors import PrendError

__all__ = [
    "ARCHS",
    "CHECKPOINT_KEYS",
    "AtariPBNeck",
    "Arch",
    "BasicBlock",
    "Bottleneck",
    "ResNetGN",
    "check_backbone_state_dict",
    "infer_arch",
    "load_atari_pb_backbone",
    "read_atari_pb_checkpoint",
    "save_atari_pb_checkpoint",
    "strip_prefixes",
]

Arch = Literal["resnet18", "resnet34", "resnet50"]
ARCHS: tuple[str, ...] = get_args(Arch)

CHECKPOINT_KEYS = ("backbone", "neck", "head", "optimizer", "lr_scheduler", "scaler", "epoch", "step")
"""Top-level keys of an Atari-PB checkpoint (``src/trainers/base.py::save_checkpoint``)."""

ARCH_FLAGS = "--backbone/--backbone-width"
"""How the CLI names the backbone architecture and width; quoted in the loader's error messages."""

_PREFIXES = ("_orig_mod.", "module.")
# torch.compile wraps a module as ``_orig_mod``, DDP as ``module``; Atari-PB compiles a DDP-wrapped model,
# giving ``_orig_mod.module.``, and the other nesting order gives ``module._orig_mod.``. Stripping any run of
# the two from the front of a key covers every combination.

_STAGE_PLANES = (64, 128, 256, 512)
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


_LAYOUT: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def stage_planes(width: float) -> tuple[int, int, int, int]:
    """Inner channels of the four stages for a width multiplier, truncated with ``int`` like Atari-PB.

    Example:
        >>> stage_planes(1.0), stage_planes(0.3)
        ((64, 128, 256, 512), (19, 38, 76, 153))
    """
    return tuple(int(p * width) for p in _STAGE_PLANES)  # type: ignore[return-value]


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
        if arch not in _LAYOUT:
            raise PrendError(f"unknown Atari-PB backbone architecture {arch!r}", fix=f"choose one of {ARCHS}")
        planes = stage_planes(width)
        block, num_blocks = _LAYOUT[arch]
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


# ----------------------------------------------------------------------------------------------------------
# Checkpoints


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``_orig_mod.`` (torch.compile) and ``module.`` (DDP) wrappers from the front of every key.

    Example:
        >>> list(strip_prefixes({"_orig_mod.module.conv1.weight": 0, "stem.0.weight": 1}))
        ['conv1.weight', 'stem.0.weight']
    """
    out = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        out[key] = value
    return out


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _describe(err: BaseException) -> str:
    message = _one_line(err, 80)
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def read_atari_pb_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an Atari-PB-format checkpoint onto the CPU, without running any pickled code.

    The file is loaded with ``torch.load(weights_only=True)``, so it may hold only tensors and plain Python
    containers/scalars (Atari-PB's and :func:`save_atari_pb_checkpoint`'s files do). The ``backbone``,
    ``neck`` and ``head`` state_dicts come back with ``_orig_mod.``/``module.`` prefixes stripped.

    Args:
        path: The ``.pth`` file.

    Returns:
        The checkpoint dict (``backbone``, and usually ``neck``, ``head``, ``optimizer``, ``lr_scheduler``,
        ``scaler``, ``epoch``, ``step``).

    Raises:
        PrendError: If the file is missing, is not a torch file, is corrupt, holds non-tensor objects, or has
            no ``backbone`` state_dict.
    """
    path = Path(path)
    if not path.is_file():
        raise PrendError(f"checkpoint {path} not found", fix="check the path to the Atari-PB .pth file")
    try:
        ckpt = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        # weights_only refuses pickled classes; name the refused one rather than calling the file corrupt.
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            raise PrendError(f"checkpoint {path} holds a pickled {found.group(1)} object, which safe "
                             "(weights_only) loading refuses",
                             fix="re-save it with only state_dicts and numbers, as save_atari_pb_checkpoint "
                                 "does") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        reason = detail.group(1) if detail else str(err)
        raise PrendError(f"cannot read checkpoint {path}: not a torch file or corrupt "
                         f"({_one_line(reason, 80)})", fix="re-download or re-save the checkpoint") from None
    except Exception as err:  # noqa: BLE001 - a damaged file can fail in any of torch's readers
        raise PrendError(f"cannot read checkpoint {path}: not a torch file or corrupt "
                         f"({_describe(err)})",
                         fix="re-download or re-save the checkpoint") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("backbone"), Mapping):
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise PrendError(f"checkpoint {path} is not in Atari-PB format (no 'backbone' state_dict; "
                         f"found {found})",
                         fix="pass a checkpoint saved by Atari-PB or by prend's pre-training")
    for name in ("backbone", "neck", "head"):
        if isinstance(ckpt.get(name), Mapping):
            ckpt[name] = strip_prefixes(ckpt[name])
    return ckpt


def _first(keys: Sequence[str], n: int = 3) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def infer_arch(state_dict: Mapping[str, Any]) -> tuple[Arch, float]:
    """Recognise the architecture and width multiplier of an Atari-PB backbone state_dict.

    The block type comes from the key names (``conv3`` only exists in bottlenecks), the depth from the
    number of blocks per stage, and the width from the stages' channel counts. Of the widths that
    ``int()``-truncate to those counts, the smallest is returned when it has at most four decimals (every
    power-of-two width down to 1/16: ``0.0625``, not ``0.063``), else the one with the fewest decimals.

    Args:
        state_dict: Backbone parameters, prefixed or not.

    Returns:
        ``(arch, width)`` such that ``ResNetGN(arch, width)`` has exactly these keys and shapes (when the
        state_dict is a well-formed Atari-PB backbone).

    Raises:
        ValueError: If the keys do not describe a ResNet-18/34/50.

    Example:
        >>> [infer_arch(ResNetGN("resnet18", width).state_dict()) for width in (0.5, 0.0625)]
        [('resnet18', 0.5), ('resnet18', 0.0625)]
    """
    sd = strip_prefixes(state_dict)
    counts = [0, 0, 0, 0]
    for key in sd:
        parts = key.split(".")
        if len(parts) > 2 and parts[0] in ("layer1", "layer2", "layer3", "layer4") and parts[1].isdigit():
            stage = int(parts[0][-1]) - 1
            counts[stage] = max(counts[stage], int(parts[1]) + 1)
    bottleneck = any(key.endswith(".conv3.weight") for key in sd)
    layout = ((Bottleneck if bottleneck else BasicBlock), tuple(counts))
    arch = next((name for name, value in _LAYOUT.items() if value == layout), None)
    if arch is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise ValueError(f"not an Atari-PB ResNet-18/34/50: {kind} blocks per stage {counts}")
    try:
        planes = tuple(int(sd[f"layer{k}.0.conv1.weight"].shape[0]) for k in range(1, 5))
    except (KeyError, AttributeError, IndexError) as err:
        raise ValueError(f"cannot read the stage widths: {err}") from None
    # int(base * w) == p  <=>  p / base <= w < (p + 1) / base; bases are powers of two, so these are exact.
    lo = max(p / b for p, b in zip(planes, _STAGE_PLANES, strict=True))
    hi = min((p + 1) / b for p, b in zip(planes, _STAGE_PLANES, strict=True))
    if lo >= hi:
        raise ValueError(f"stage channels {planes} match no single width multiplier")
    if lo * 10**4 == round(lo * 10**4):  # an exact short decimal: the width as it was most likely written
        return arch, lo  # type: ignore[return-value]
    for digits in range(1, 7):
        candidate = math.ceil(lo * 10**digits) / 10**digits
        if lo <= candidate < hi and stage_planes(candidate) == planes:
            return arch, candidate  # type: ignore[return-value]
    return arch, lo  # type: ignore[return-value]


def check_backbone_state_dict(model: nn.Module, state_dict: Mapping[str, Any], *, source: str,
                              expected: str) -> None:
    """Compare a checkpoint's keys and shapes with ``model``'s and raise on any difference.

    This is the explicit check nanoGPT's ``from_pretrained`` makes before copying: every missing key,
    unexpected key and shape mismatch is collected, and the first few of each are named in one
    :class:`PrendError`. The duplicated stem weight must be present under both names and be equal, and every
    tensor must be finite (a NaN in a frozen target would silently poison every intrinsic reward).

    Args:
        model: The module the weights are meant for.
        state_dict: Prefix-stripped checkpoint weights.
        source: What the weights are, for the message (e.g. ``"checkpoint runs/x.pth"``).
        expected: What ``model`` is, for the message (e.g. ``"resnet50 (width 1.0)"``).

    Raises:
        PrendError: On any mismatch, naming the offending keys and, when recognisable, the checkpoint's own
            architecture.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = []
    for key, ref in own.items():
        value = state_dict.get(key)
        if key in state_dict and (not isinstance(value, torch.Tensor) or value.shape != ref.shape):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            shapes.append(f"{key} {got} vs {tuple(ref.shape)}")
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f"missing {_first(missing)}")
        if unexpected:
            problems.append(f"unexpected {_first(unexpected)}")
        if shapes:
            problems.append(f"shape mismatch (checkpoint vs model) {_first(shapes, 2)}")
        try:
            arch, width = infer_arch(state_dict)
            fix = f"the checkpoint looks like {arch} (width {width}); pass {ARCH_FLAGS} matching it"
        except ValueError:
            fix = f"pass {ARCH_FLAGS} matching the checkpoint"
        raise PrendError(f"{source} does not match {expected}: {'; '.join(problems)}", fix=fix)

    stem, conv1 = state_dict.get("stem.0.weight"), state_dict.get("conv1.weight")
    if stem is not None and conv1 is not None and not torch.equal(stem, conv1):
        raise PrendError(f"{source} is inconsistent: stem.0.weight and conv1.weight differ (they are one "
                         "tensor in Atari-PB's ResNet)", fix="re-export the checkpoint from the model")
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PrendError(f"{source} has non-finite values in {_first(bad)}",
                         fix="use an earlier checkpoint of the run")


def load_atari_pb_backbone(path: str | os.PathLike[str], arch: Arch | None = "resnet50",
                           width: float | None = 1.0, in_channels: int = 4) -> ResNetGN:
    """Build a :class:`ResNetGN` from the ``backbone`` entry of an Atari-PB checkpoint, frozen, in eval mode.

    The checkpoint is checked key by key against the requested architecture before anything is copied
    (:func:`check_backbone_state_dict`); on a mismatch the error names the offending keys and, when it can
    tell, the architecture the checkpoint actually holds.

    Args:
        path: Atari-PB-format ``.pth`` file (Atari-PB's own or from :func:`save_atari_pb_checkpoint`).
        arch: Expected architecture, or ``None`` to take it from the checkpoint (:func:`infer_arch`).
        width: Expected width multiplier, or ``None`` to take it from the checkpoint.
        in_channels: Input channels the backbone expects.

    Returns:
        The backbone with ``requires_grad=False`` on every parameter, in eval mode (GroupNorm has no running
        statistics, so eval mode changes nothing numerically; it is set for clarity).

    Raises:
        PrendError: If the file is missing, unreadable or not Atari-PB format, or its weights do not match.
    """
    ckpt = read_atari_pb_checkpoint(path)
    state_dict = ckpt["backbone"]
    if arch is None or width is None:
        try:
            found_arch, found_width = infer_arch(state_dict)
        except ValueError as err:
            raise PrendError(f"checkpoint {path}: cannot tell the backbone architecture ({err})",
                             fix=f"pass {ARCH_FLAGS} explicitly") from None
        arch = arch or found_arch
        width = found_width if width is None else width
    model = ResNetGN(arch, width, in_channels)
    check_backbone_state_dict(model, state_dict, source=f"checkpoint {path}",
                              expected=f"{arch} (width {width})")
    model.load_state_dict(state_dict, strict=True)
    return model.requires_grad_(False).eval()


_SAFE_SCALARS = (str, int, float, bool, type(None), torch.dtype, torch.Size)


def _portable(value: Any, where: str) -> Any:
    """Copy ``value`` with tensors detached on the CPU; refuse anything ``weights_only`` loading rejects."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {k: _portable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_portable(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, _SAFE_SCALARS):
        return value
    raise TypeError(f"{where} is a {type(value).__name__}; an Atari-PB checkpoint may hold only tensors, "
                    "containers, strings and numbers (so weights_only=True can load it)")


def _state(obj: Any, where: str, *, strip: bool = False) -> dict[str, Any]:
    if obj is None:
        # Atari-PB's loader strips prefixes from backbone, neck and head unconditionally, so an absent part
        # is stored as an empty dict rather than None to keep the file loadable there too.
        return {}
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(state, Mapping):
        raise TypeError(f"{where} must be a module/optimizer or a state_dict, got {type(obj).__name__}")
    state = _portable(state, where)
    return strip_prefixes(state) if strip else state


def save_atari_pb_checkpoint(path: str | os.PathLike[str], *, backbone: nn.Module | Mapping[str, Any],
                             neck: nn.Module | Mapping[str, Any] | None = None,
                             head: nn.Module | Mapping[str, Any] | None = None, optimizer: Any = None,
                             lr_scheduler: Any = None, scaler: Any = None, epoch: int = 0, step: int = 0,
                             extra: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint in Atari-PB's layout, atomically.

    The dict has Atari-PB's keys (``backbone``, ``neck``, ``head``, ``optimizer``, ``lr_scheduler``,
    ``scaler``, ``epoch``, ``step``) plus ``extra`` when given. Module weights are stored without
    ``_orig_mod.``/``module.`` prefixes and on the CPU; parts not given are stored as empty dicts. Only
    tensors, containers, strings and numbers are written, so :func:`read_atari_pb_checkpoint` (and
    Atari-PB's own ``load_model``) can read it. The file is written next to ``path`` and renamed over it, so
    a crash never leaves a truncated checkpoint behind.

    Args:
        path: Destination ``.pth`` file; missing parent directories are created.
        backbone: Backbone module (possibly compiled/DDP-wrapped) or its state_dict.
        neck: Neck module or state_dict.
        head: Head module or state_dict.
        optimizer: Optimizer or its state_dict.
        lr_scheduler: LR scheduler or its state_dict.
        scaler: ``torch.amp.GradScaler`` or its state_dict.
        epoch: Epochs completed.
        step: Optimizer steps completed.
        extra: Further plain data (e.g. the run's config), stored under ``extra``.

    Returns:
        The path written.

    Raises:
        TypeError: If any part holds an object ``weights_only`` loading would reject (nothing is written).
    """
    path = Path(path)
    payload: dict[str, Any] = {
        "backbone": _state(backbone, "backbone", strip=True),
        "neck": _state(neck, "neck", strip=True),
        "head": _state(head, "head", strip=True),
        "optimizer": _state(optimizer, "optimizer"),
        "lr_scheduler": _state(lr_scheduler, "lr_scheduler"),
        "scaler": _state(scaler, "scaler"),
        "epoch": int(epoch),
        "step": int(step),
    }
    if extra is not None:
        payload["extra"] = _portable(dict(extra), "extra")
    return atomic_torch_save(payload, path)
