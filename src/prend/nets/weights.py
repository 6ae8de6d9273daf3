"""The pre-trained backbones shipped inside the package, by their ``--backbone`` names.

Each is a backbone-only Atari-PB-format checkpoint in ``prend/weights/`` made by this package's own pipeline
(``prend collect`` + ``prend pretrain``, recipes in docs/pretraining.md), with a ``.json`` beside it that
records its architecture, width, sha256, the exact commands that made it and its probe figures. A name, once
shipped, keeps its file: a run records the name it used, so resuming or re-running an old run finds the same
weights. The locator lives with the networks so that PreND's reward finds its backbone without the
pre-training package (:func:`prend.pretrain.shipped.export_backbone` writes such pairs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prend.errors import PrendError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ShippedBackbone:
    """One backbone shipped as package data."""

    file: str
    """File stem in ``prend/weights/`` (``.pt`` weights, ``.json`` record)."""
    arch: str
    """Atari-PB architecture."""
    width: float
    """Width multiplier."""
    summary: str
    """One line for ``--help`` and the docs."""


SHIPPED_BACKBONES: dict[str, ShippedBackbone] = {
    "compact": ShippedBackbone(
        "siammae_resnet18_w0125", "resnet18", 0.125,
        "SiamMAE, ResNet-18 w0.125, 12 games of random play, 46 CPU-minutes: carries no more of the game's "
        "state than its random twin (the first shipped; kept for runs that name it)"),
}
"""``--backbone`` name -> shipped file. Names are never re-pointed at other weights."""

DEFAULT_BACKBONE = "compact"
"""The backbone PreND uses unless told otherwise (``IntrinsicConfig.backbone``)."""

SHIPPED_NAME = SHIPPED_BACKBONES[DEFAULT_BACKBONE].file
SHIPPED_ARCH = SHIPPED_BACKBONES[DEFAULT_BACKBONE].arch
SHIPPED_WIDTH = SHIPPED_BACKBONES[DEFAULT_BACKBONE].width


def _entry(name: str) -> ShippedBackbone:
    if name not in SHIPPED_BACKBONES:
        raise PrendError(f"no shipped backbone is named '{name}'", f"choose one of {', '.join(SHIPPED_BACKBONES)}")
    return SHIPPED_BACKBONES[name]


def shipped_backbone_path(check: bool = True, name: str = DEFAULT_BACKBONE) -> Path:
    """Path of a shipped backbone's checkpoint (by default PreND's default backbone).

    Args:
        check: Raise when the file is missing (e.g. a source checkout without package data).
        name: Its ``--backbone`` name.

    Raises:
        PrendError: If the name is unknown, or ``check`` and the file does not exist.
    """
    path = WEIGHTS_DIR / f"{_entry(name).file}.pt"
    if check and not path.is_file():
        raise PrendError(f"the shipped backbone {path} is missing",
                         "reinstall prend, or make one (docs/pretraining.md) and pass --backbone-weights PATH")
    return path


def shipped_backbone(name: str = DEFAULT_BACKBONE) -> tuple[Path, str, float]:
    """``(path, arch, width)`` of a shipped backbone, for ``load_atari_pb_backbone(path, arch, width)``."""
    entry = _entry(name)
    return shipped_backbone_path(name=name), entry.arch, entry.width


def shipped_backbone_info(name: str = DEFAULT_BACKBONE) -> dict[str, Any]:
    """A shipped backbone's record (arch, width, sha256, recipe, probe figures), from its ``.json``."""
    return json.loads(shipped_backbone_path(name=name).with_suffix(".json").read_text())
