"""What an Atari-PB checkpoint file holds, checked before a run: its backbone and the objective that trained it.

``prend check-backbone PATH`` prints :func:`check_atari_pb_file`'s answer. The objective is told from the
checkpoint's own record (``prend pretrain`` writes ``extra.prend.objective``) or else from the keys of the neck
and head that Atari-PB saves beside the backbone (``src/trainers/base.py::save_checkpoint`` at dojeon-ai/Atari-PB
commit ``e989dfa``): each pre-training script (``scripts/pretrain/*.sh``) pairs the backbone with its own neck
and head (``src/models/necks/``, ``src/models/heads/``), and their parameter names differ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prend.errors import PrendError
from prend.nets.atari_pb import Arch, ResNetGN
from prend.nets.atari_pb_io import check_backbone_state_dict, infer_arch, read_atari_pb_checkpoint

SIAMMAE = "SiamMAE"
"""The objective of the backbone the PreND paper distils (Atari-PB's ``scripts/pretrain/siammae.sh``)."""


@dataclass(frozen=True)
class CheckpointCheck:
    """What :func:`check_atari_pb_file` found: a backbone whose keys and shapes all match ``ResNetGN(arch, width)``."""

    path: Path
    arch: Arch
    width: float
    keys: list[tuple[str, tuple[int, ...]]]
    """Every backbone key and its shape, in the file's order (prefixes stripped)."""
    parameters: int
    """Distinct parameters (the stem conv, stored twice, counted once)."""
    output: tuple[int, int, int]
    """The feature map for 84x84 frames: (channels, height, width)."""
    objective: str | None
    """Which pre-training objective wrote the file (``None``: it cannot be told)."""
    told_by: str
    """How the objective was told, or why it cannot be."""
    epoch: Any
    step: Any


def checkpoint_objective(ckpt: Mapping[str, Any]) -> tuple[str | None, str]:
    """The pre-training objective of an Atari-PB-format checkpoint, and how it was told.

    Example:
        >>> checkpoint_objective({"extra": {"prend": {"objective": "siammae"}}})
        ('siammae', "prend pretrain's record")
        >>> checkpoint_objective({"neck": {}, "head": {"recon_w.weight": 0}})
        ('MAE', 'its head, mae_head: recon_w and no cross-attention')
        >>> checkpoint_objective({"neck": {}, "head": {}})[0] is None
        True
    """
    record = ckpt.get("extra", {})
    record = record.get("prend", {}) if isinstance(record, Mapping) else {}
    if isinstance(record, Mapping) and record.get("objective"):
        return str(record["objective"]), "prend pretrain's record"
    neck = ckpt.get("neck") if isinstance(ckpt.get("neck"), Mapping) else {}
    head = ckpt.get("head") if isinstance(ckpt.get("head"), Mapping) else {}
    if "recon_w.weight" in head:
        # siammae_head decodes with a CrossAttentionTransformer (q_embed, k_embed, v_embed); mae_head with a
        # plain Transformer (to_qkv) (src/models/layers.py).
        if any(".q_embed." in key for key in head):
            return SIAMMAE, "its head, siammae_head: recon_w and a cross-attention decoder, q_embed"
        return "MAE", "its head, mae_head: recon_w and no cross-attention"
    if any(key.startswith("transition.") for key in head):
        return "SPR or SPR+IDM", "its head, spr_head: a transition RNN"
    if "rtg_embedder.weight" in neck:
        return "DT", "its neck, dt_neck: a return-to-go embedder"
    if "weights.weight" in head:
        return ("BC, CQL, ATC, CURL, IDM or R3M", "its head, mh_linear or mh_distributional: game-wise "
                "linear weights, which these objectives share")
    if not neck and not head:
        return None, "the file holds the backbone alone (no neck or head to tell it by)"
    return None, "its neck and head match no Atari-PB pre-training script"


def check_atari_pb_file(path: str | os.PathLike[str], arch: Arch | None = "resnet50",
                        width: float | None = 1.0) -> CheckpointCheck:
    """Read an Atari-PB-format checkpoint safely and check its backbone key by key against ``ResNetGN(arch, width)``.

    This is the check ``prend train --backbone-weights`` runs before it copies a weight (the same
    :func:`~prend.nets.atari_pb_io.check_backbone_state_dict`), done alone so that a downloaded file can be
    checked before a run, plus what the file can say about its objective.

    Args:
        path: The ``.pth`` file.
        arch: The architecture the run will build (``resnet50`` for ``--backbone atari-pb-resnet50``), or ``None``
            to take it from the file.
        width: Its width multiplier (1.0 for the paper's), or ``None`` to take it from the file.

    Raises:
        PrendError: The file is missing, unreadable, not Atari-PB format, holds pickled code, is no Atari-PB
            ResNet, or differs from ``ResNetGN(arch, width)`` in a key, a shape or a non-finite value.
    """
    ckpt = read_atari_pb_checkpoint(path)
    state = ckpt["backbone"]
    try:
        found_arch, found_width = infer_arch(state)
    except ValueError as err:
        raise PrendError(f"checkpoint {path}: its backbone is no Atari-PB ResNet-18/34/50 ({err})",
                         fix="pass the backbone file of an Atari-PB run (its .pth holds 'backbone')") from None
    arch, width = arch or found_arch, found_width if width is None else width
    model = ResNetGN(arch, width)
    check_backbone_state_dict(model, state, source=f"checkpoint {path}", expected=f"{arch} (width {width})")
    objective, told_by = checkpoint_objective(ckpt)
    return CheckpointCheck(Path(path), arch, width, [(k, tuple(v.shape)) for k, v in state.items()],
                           sum(p.numel() for p in model.parameters()), (model.out_channels, *model.out_spatial),
                           objective, told_by, ckpt.get("epoch"), ckpt.get("step"))


def check_report(check: CheckpointCheck, keys: bool = False) -> str:
    """The lines ``prend check-backbone`` prints: the backbone, the objective, and (``keys``) every key and shape."""
    size = check.path.stat().st_size / 2**20
    lines = [f"{check.path} ({size:,.1f} MiB; epoch {check.epoch}, step {check.step})",
             f"backbone: {check.arch}, width {check.width}: all {len(check.keys)} keys and shapes match, every "
             f"value finite; {check.parameters:,} parameters; output {'x'.join(map(str, check.output))} for 84x84 "
             "frames",
             f"objective: {check.objective or 'cannot be told'} ({check.told_by})"]
    if check.objective is not None and check.objective.lower() != SIAMMAE.lower():
        lines.append(f"note: the PreND paper distils Atari-PB's {SIAMMAE} backbone; this file is another objective's")
    flags = ("--backbone atari-pb-resnet50" if (check.arch, check.width) == ("resnet50", 1.0)
             else f"--backbone {check.arch} --backbone-width {check.width}")
    lines.append(f"use: prend train --method prend {flags} --backbone-weights {check.path}")
    if keys:
        lines += [f"  {key} {tuple(shape)}" for key, shape in check.keys]
    return "\n".join(lines)


__all__ = ["SIAMMAE", "CheckpointCheck", "check_atari_pb_file", "check_report", "checkpoint_objective"]
