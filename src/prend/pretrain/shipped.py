"""Exporting a pre-trained backbone as package data, like the one shipped (PreND's ``--backbone compact``).

:func:`export_backbone` writes a backbone-only Atari-PB-format checkpoint and its JSON record from any run;
:mod:`prend.nets.weights` locates the shipped pair (its names are re-exported here and in :mod:`prend.pretrain`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prend.checkpoint import sha256_file
from prend.nets.atari_pb_io import infer_arch, read_atari_pb_checkpoint, save_atari_pb_checkpoint
from prend.nets.weights import (
    SHIPPED_ARCH,
    SHIPPED_NAME,
    SHIPPED_WIDTH,
    WEIGHTS_DIR,
    shipped_backbone,
    shipped_backbone_info,
    shipped_backbone_path,
)

__all__ = ["SHIPPED_ARCH", "SHIPPED_NAME", "SHIPPED_WIDTH", "WEIGHTS_DIR", "export_backbone", "sha256_file",
           "shipped_backbone", "shipped_backbone_info", "shipped_backbone_path"]

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
