"""Atari-PB checkpoints: reading, writing and loading them into :mod:`.atari_pb`'s models through Atari-PB's keys.

Sources, at commit ``e989dfa`` of dojeon-ai/Atari-PB: ``src/trainers/base.py::save_checkpoint`` and
``src/common/logger.py::load_model``, the checkpoint layout and the ``_orig_mod.`` / ``_orig_mod.module.`` key
prefixes left by ``torch.compile`` and DDP. Loading checks every key and shape against the model
(:func:`check_backbone_state_dict`), as nanoGPT's ``from_pretrained`` does, and never runs pickled code.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prend.checkpoint import atomic_torch_save
from prend.errors import PrendError
from prend.nets.atari_pb import LAYOUT, STAGE_PLANES, Arch, BasicBlock, Bottleneck, ResNetGN, stage_planes

__all__ = [
    "CHECKPOINT_KEYS",
    "check_backbone_state_dict",
    "infer_arch",
    "load_atari_pb_backbone",
    "read_atari_pb_checkpoint",
    "save_atari_pb_checkpoint",
    "strip_prefixes",
]

CHECKPOINT_KEYS = ("backbone", "neck", "head", "optimizer", "lr_scheduler", "scaler", "epoch", "step")
"""Top-level keys of an Atari-PB checkpoint (``src/trainers/base.py::save_checkpoint``)."""

ARCH_FLAGS = "--backbone/--backbone-width"
"""How the CLI names the backbone architecture and width; quoted in the loader's error messages."""

_PREFIXES = ("_orig_mod.", "module.")
# torch.compile wraps a module as ``_orig_mod``, DDP as ``module``; Atari-PB compiles a DDP-wrapped model,
# giving ``_orig_mod.module.``, and the other nesting order gives ``module._orig_mod.``. Stripping any run of
# the two from the front of a key covers every combination.

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


def key_and_shape_problems(model: nn.Module, state_dict: Mapping[str, Any], sides: str) -> list[str]:
    """The differences of ``state_dict`` from ``model``'s keys and shapes, as phrases for one error line.

    Missing keys, unexpected keys and shape mismatches, the first few of each named; ``sides`` labels the
    mismatch (e.g. ``"checkpoint vs model"``). Empty when every key and shape matches.

    Example:
        >>> key_and_shape_problems(nn.Linear(2, 3), {"weight": torch.zeros(3, 3), "b": 0}, "file vs model")
        ['missing bias', 'unexpected b', 'shape mismatch (file vs model) weight (3, 3) vs (3, 2)']
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
    return ([f"missing {_first(missing)}"] if missing else []) + \
           ([f"unexpected {_first(unexpected)}"] if unexpected else []) + \
           ([f"shape mismatch ({sides}) {_first(shapes, 2)}"] if shapes else [])


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
    arch = next((name for name, value in LAYOUT.items() if value == layout), None)
    if arch is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise ValueError(f"not an Atari-PB ResNet-18/34/50: {kind} blocks per stage {counts}")
    try:
        planes = tuple(int(sd[f"layer{k}.0.conv1.weight"].shape[0]) for k in range(1, 5))
    except (KeyError, AttributeError, IndexError) as err:
        raise ValueError(f"cannot read the stage widths: {err}") from None
    # int(base * w) == p  <=>  p / base <= w < (p + 1) / base; bases are powers of two, so these are exact.
    lo = max(p / b for p, b in zip(planes, STAGE_PLANES, strict=True))
    hi = min((p + 1) / b for p, b in zip(planes, STAGE_PLANES, strict=True))
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
    problems = key_and_shape_problems(model, state_dict, "checkpoint vs model")
    if problems:
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
