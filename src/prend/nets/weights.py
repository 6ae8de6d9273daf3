"""The pre-trained backbones shipped inside the package, by their ``--backbone`` names.

Each is a backbone-only Atari-PB-format checkpoint in ``prend/weights/`` made by this package's own pipeline
(``prend collect`` + ``prend pretrain``, recipes in docs/pretraining.md), with a ``.json`` beside it that
records its architecture, width, sha256, the exact commands that made it and its probe figures. A name, once
shipped, keeps its file: a run records the name it used, so resuming or re-running an old run finds the same
weights. The locator lives with the networks so that PreND's reward finds its backbone without the
pre-training package (:func:`prend.pretrain.shipped.export_backbone` writes such pairs).

A backbone is of one of two families: ``atari-pb`` (an Atari-PB ResNet in Atari-PB's checkpoint format) or
``atariari`` (AtariARI's encoder on 84x84 4-stacks, :mod:`prend.nets.atariari`'s file format, written by
:func:`prend.pretrain.shipped.export_atariari_backbone`). :func:`build_shipped_backbone` is the one place that
turns a name into a network for either.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from prend.errors import PrendError
from prend.nets.atari_pb_io import load_atari_pb_backbone
from prend.nets.atariari import load_atariari_backbone

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
    family: Literal["atari-pb", "atariari"] = "atari-pb"
    """``atari-pb``: an Atari-PB ResNet (``arch``, ``width``); ``atariari``: an AtariARI encoder file at 84x84
    4-stacks (``arch`` ``atariari-stack84``, ``width`` 1.0)."""


SHIPPED_BACKBONES: dict[str, ShippedBackbone] = {
    "compact": ShippedBackbone(
        "siammae_resnet18_w0125", "resnet18", 0.125,
        "SiamMAE, ResNet-18 w0.125, 12 games of random play, 46 CPU-minutes: carries no more of the game's "
        "state than its random twin (the first shipped; kept for runs that name it)"),
    "stdim-boxing": ShippedBackbone(
        "stdim_last84_boxing", "atariari-last84", 1.0,
        "AtariARI's ST-DIM on 100k random-play Boxing frames (the newest 84x84 frame of each stack), 12 epochs: "
        "Boxing state probe 0.296 against its twin's 0.278, Riverraid 0.486 against 0.519",
        family="atariari"),
    "stdim-20games": ShippedBackbone(
        "stdim_last84_20games", "atariari-last84", 1.0,
        "ST-DIM on 20 AtariARI-annotated Atari-PB games, 20k frames each, Riverraid held out, 5 epochs: Boxing "
        "state probe 0.292 against its twin's 0.278, Riverraid 0.500 against 0.519",
        family="atariari"),
    "supervised-ram-boxing": ShippedBackbone(
        "supervised_ram_stack84_boxing", "atariari-stack84", 1.0,
        "SUPERVISED CONTROL, not self-supervised: trained on Boxing's RAM state variables themselves (the upper "
        "bound of a target that reads the state): Boxing state probe 0.711 against its twin's 0.181",
        family="atariari"),
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


def build_shipped_backbone(name: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """The network of shipped backbone ``name``, frozen and in eval mode, whichever its family.

    Args:
        name: Its ``--backbone`` name.
        weights: A file to load instead of the shipped one (``--backbone-weights``), of the same family and
            architecture.

    Raises:
        PrendError: If the name is unknown, the shipped file is missing, or the weights do not match.
    """
    path, arch, width = shipped_backbone(name)
    if _entry(name).family == "atariari":
        return load_atariari_backbone(weights or path).requires_grad_(False)
    return load_atari_pb_backbone(weights or path, arch=arch, width=width)
