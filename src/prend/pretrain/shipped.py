"""Exporting a pre-trained backbone as package data, like the one shipped (PreND's ``--backbone compact``).

:func:`export_backbone` writes a backbone-only Atari-PB-format checkpoint and its JSON record from any run;
:func:`export_atariari_backbone` the encoder of an ST-DIM run (:mod:`prend.pretrain.atariari`) alone, for a
``family="atariari"`` entry of :data:`prend.nets.weights.SHIPPED_BACKBONES`;
:mod:`prend.nets.weights` locates the shipped pair (its names are re-exported here and in :mod:`prend.pretrain`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prend.checkpoint import FORMAT as CHECKPOINT_FORMAT
from prend.checkpoint import atomic_torch_save, load_checkpoint, sha256_file
from prend.errors import PrendError
from prend.nets.atari_pb_io import infer_arch, read_atari_pb_checkpoint, save_atari_pb_checkpoint
from prend.nets.atariari import check_prend_input, load_atariari_encoder
from prend.nets.weights import (
    SHIPPED_ARCH,
    SHIPPED_NAME,
    SHIPPED_WIDTH,
    WEIGHTS_DIR,
    shipped_backbone,
    shipped_backbone_info,
    shipped_backbone_path,
)

__all__ = ["SHIPPED_ARCH", "SHIPPED_NAME", "SHIPPED_WIDTH", "WEIGHTS_DIR", "atariari_seed", "export_atariari_backbone",
           "export_backbone", "sha256_file", "shipped_backbone", "shipped_backbone_info", "shipped_backbone_path"]


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


def _recorded_seed(entries: Any) -> int | None:
    if not isinstance(entries, Mapping):
        return None
    settings = entries.get("settings")
    seed = entries.get("seed", settings.get("seed") if isinstance(settings, Mapping) else None)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def atariari_seed(path: str | os.PathLike[str], state: Mapping[str, Any] | None = None) -> int | None:
    """The seed an AtariARI encoder file's run was trained with, where it is recorded; ``None`` elsewhere.

    Looked up in the file itself (``seed``, or ``settings`` as ``checkpoint.pt`` holds them), then in the
    ``checkpoint.pt`` of the run directory it lies in (``init.pt``, ``epochNNN.pt``, ``best.pt``), then in the
    ``.json`` beside an exported file. With it, ``torch.manual_seed(seed)`` and a fresh encoder give the run's
    ``init.pt`` (STDIMTrainer seeds torch right before building its encoder).

    Args:
        path: The encoder file.
        state: Its contents, when already read.
    """
    path = Path(path)
    seed = _recorded_seed(state if state is not None else load_checkpoint(path))
    run_checkpoint = path.with_name("checkpoint.pt")
    if seed is None and run_checkpoint.is_file() and run_checkpoint != path:
        try:
            seed = _recorded_seed(load_checkpoint(run_checkpoint))
        except PrendError:  # an unreadable neighbour says nothing about this file's seed
            seed = None
    record = path.with_suffix(".json")
    if seed is None and record.is_file():
        try:
            seed = _recorded_seed(json.loads(record.read_text()))
        except (OSError, ValueError):
            seed = None
    return seed


def export_atariari_backbone(run_file: str | os.PathLike[str], dest: str | os.PathLike[str],
                             record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the AtariARI encoder of an ST-DIM run file alone, as a PreND backbone, plus a JSON record.

    The ``.pt`` holds ``{"format", "encoder" (float32), "frame", "size"}``: no score maps, no optimizer, no
    pickled objects, so :func:`prend.nets.atariari.load_atariari_encoder` reads it with ``weights_only``. The
    ``.json`` beside it gets ``family`` ("atariari"), ``arch``, ``width``, ``frame``, ``size``,
    ``feature_dim``, ``sha256``, ``bytes``, ``epoch`` and ``seed`` where the run recorded them, and
    ``record``'s entries (e.g. the recipe commands and probe figures).

    Args:
        run_file: ``init.pt``, ``epochNNN.pt``, ``best.pt`` or ``checkpoint.pt`` of an
            :class:`prend.pretrain.atariari.STDIMTrainer` run (or a file this function wrote).
        dest: Destination ``.pt`` path; the record goes to the same path with ``.json``.
        record: More entries for the JSON record.

    Returns:
        The JSON record written.

    Raises:
        PrendError: If the file is no AtariARI encoder, or its encoder reads anything but 84x84 4-stacks
            (PreND's backbone sees those; a ``frame="full"`` encoder cannot be one).
    """
    encoder = check_prend_input(load_atariari_encoder(run_file), f"{run_file}")
    state = load_checkpoint(run_file)
    dest = Path(dest)
    weights = {k: v.float() for k, v in encoder.state_dict().items()}
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "encoder": weights, "frame": encoder.frame,
                       "size": list(encoder.size)}, dest)
    dest.chmod(0o644)  # package data: readable by everyone (the atomic writer creates files 0600)
    info: dict[str, Any] = {"file": dest.name, "format": "prend AtariARI encoder (encoder only, float32)",
                            "family": "atariari", "arch": encoder.arch, "width": 1.0, "frame": encoder.frame,
                            "size": list(encoder.size), "feature_dim": encoder.feature_dim,
                            "sha256": sha256_file(dest), "bytes": dest.stat().st_size}
    if isinstance(state.get("epoch"), int):
        info["epoch"] = state["epoch"]
    seed = atariari_seed(run_file, state)
    if seed is not None:
        info["seed"] = seed
    info.update(record or {})
    dest.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return info
