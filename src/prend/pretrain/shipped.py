"""The pre-trained backbone shipped inside the package (PreND's default ``--backbone compact``).

``prend/weights/siammae_resnet18_w0125.pt`` is a backbone-only Atari-PB-format checkpoint made by this
package's own pipeline (``prend collect`` + ``prend pretrain``, recipe in docs/pretraining.md);
``siammae_resnet18_w0125.json`` beside it records its architecture, width, sha256, the exact commands that
made it and its probe figures. :func:`export_backbone` writes such a pair from any run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prend.checkpoint import sha256_file
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


def export_backbone(checkpoint: str | os.PathLike[str], dest: str | os.PathLike[str],
                    record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the backbone of a pre-training checkpoint alone, in Atari-PB format, plus a JSON record.

    The ``.pt`` holds ``backbone`` (float32), empty ``neck``/``head``/optimizer entries, ``epoch``, ``step``
    and an ``extra`` entry with the run config, so ``load_atari_pb_backbone`` (and Atari-PB's loader) read
    it. The ``.json`` beside it gets ``arch``, ``width``, ``sha256``, ``bytes``, ``step`` and ``record``'s
    entries (e.g. the recipe commands and probe figures).

    Args:
        checkpoint: An Atari-PB-format checkpoint (e.g. a run's ``latest.pth``).
        dest: Destination ``.pt`` path; the record goes to the same path with ``.json``.
        record: More entries for the JSON record.

    Returns:
        The JSON record written.
    """
    from prend.nets.atari_pb import infer_arch, read_atari_pb_checkpoint, save_atari_pb_checkpoint

    ckpt = read_atari_pb_checkpoint(checkpoint)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["backbone"].items()}
    arch, width = infer_arch(state)
    prend_extra = dict(ckpt.get("extra", {}).get("prend", {}))
    keep = {k: prend_extra[k] for k in ("config", "objective", "loss_ema") if k in prend_extra}
    dest = Path(dest)
    save_atari_pb_checkpoint(dest, backbone=state, epoch=int(ckpt.get("epoch", 0)), step=int(ckpt.get("step", 0)),
                             extra={"prend": keep})
    dest.chmod(0o644)  # package data: readable by everyone (the atomic writer creates files 0600)
    info: dict[str, Any] = {"file": dest.name, "format": "Atari-PB checkpoint (backbone only, float32)",
                            "arch": arch, "width": width, "sha256": sha256_file(dest),
                            "bytes": dest.stat().st_size, "step": int(ckpt.get("step", 0)),
                            "loss_ema": keep.get("loss_ema")}
    info.update(record or {})
    dest.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return info
