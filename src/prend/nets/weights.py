"""Where the pre-trained backbone shipped inside the package is (PreND's default ``--backbone compact``).

``prend/weights/siammae_resnet18_w0125.pt`` is a backbone-only Atari-PB-format checkpoint made by this
package's own pipeline (``prend collect`` + ``prend pretrain``, recipe in docs/pretraining.md);
``siammae_resnet18_w0125.json`` beside it records its architecture, width, sha256, the exact commands that
made it and its probe figures. The locator lives with the networks so that PreND's reward finds its
backbone without the pre-training package (:func:`prend.pretrain.shipped.export_backbone` writes such pairs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prend.errors import PrendError

SHIPPED_NAME = "siammae_resnet18_w0125"
SHIPPED_ARCH = "resnet18"
SHIPPED_WIDTH = 0.125
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def shipped_backbone_path(check: bool = True) -> Path:
    """Path of the shipped backbone checkpoint (``prend/weights/siammae_resnet18_w0125.pt``).

    Args:
        check: Raise when the file is missing (e.g. a source checkout without package data).

    Raises:
        PrendError: If ``check`` and the file does not exist.
    """
    path = WEIGHTS_DIR / f"{SHIPPED_NAME}.pt"
    if check and not path.is_file():
        raise PrendError(f"the shipped backbone {path} is missing",
                         "reinstall prend, or make one (docs/pretraining.md) and pass --backbone-weights PATH")
    return path


def shipped_backbone() -> tuple[Path, str, float]:
    """``(path, arch, width)`` of the shipped backbone, for ``load_atari_pb_backbone(path, arch, width)``."""
    return shipped_backbone_path(), SHIPPED_ARCH, SHIPPED_WIDTH


def shipped_backbone_info() -> dict[str, Any]:
    """The shipped backbone's record (arch, width, sha256, recipe, probe figures), from its ``.json``."""
    path = shipped_backbone_path().with_suffix(".json")
    return json.loads(path.read_text())
