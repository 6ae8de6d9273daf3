"""The output folder of ``benchmarks/pretrain_gpu.py``: the exported backbone (split into parts over the device
tool's file limit), its ``backbone.json`` record, ``probe.md``, the ``finish`` of a pre-training run, ``ship``
into package weights, and the TensorBoard scalars they read.

Part of ``benchmarks/pretrain_gpu.py`` (the entry point), split out by concept.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from pretrain_gpu_budget import thin

FILE_LIMIT = 16 * 2**20
"""The device tool brings back files of at most 16 MiB; a larger backbone file is split into parts."""
PART_BYTES = 15 * 2**20


# ------------------------------------------------------------------------------------------------ outputs
def scalar_events(tb_dir: Path, tag: str) -> list[tuple[int, float, float]]:
    """``(step, wall time, value)`` of one scalar in a TensorBoard log directory, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not tb_dir.is_dir():
        return []
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return []
    return sorted((e.step, e.wall_time, e.value) for e in acc.Scalars(tag))


def export(checkpoint: Path, out: Path, work: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``out/backbone.pt`` (backbone only, Atari-PB format) and ``out/backbone.json`` from a checkpoint.

    A file over the device tool's 16 MiB limit is moved to ``work/backbone.pt`` and split into
    ``out/backbone.pt.part0``, ``.part1``, ... (``cat backbone.pt.part* > backbone.pt`` joins them).

    Returns:
        The JSON record (``export_backbone``'s, plus ``parts`` when split).
    """
    from prend.pretrain.shipped import export_backbone

    dest = out / "backbone.pt"
    info = export_backbone(checkpoint, dest, record)
    for old in out.glob("backbone.pt.part*"):
        old.unlink()
    if dest.stat().st_size > FILE_LIMIT:
        whole = work / "backbone.pt"
        work.mkdir(parents=True, exist_ok=True)
        shutil.move(dest, whole)
        data = whole.read_bytes()
        parts = []
        for i in range(math.ceil(len(data) / PART_BYTES)):
            part = out / f"backbone.pt.part{i}"
            part.write_bytes(data[i * PART_BYTES:(i + 1) * PART_BYTES])
            parts.append(part.name)
        info["parts"] = parts
        info["join"] = "cat " + " ".join(parts) + " > backbone.pt"
        (out / "backbone.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def backbone_file(out: Path, work: Path) -> Path:
    """The whole exported backbone: ``out/backbone.pt``, or ``work/backbone.pt`` when it was split."""
    return out / "backbone.pt" if (out / "backbone.pt").exists() else work / "backbone.pt"


def probe_markdown(table: str, facts: dict[str, Any]) -> str:
    """``probe.md``: the run's facts, then ``prend probe``'s printed table as it was printed.

    Example:
        >>> print(probe_markdown("measure  pretrained", {"GPU": "H200"}))
        # Probe of the GPU-pre-trained backbone
        <BLANKLINE>
        | | |
        |---|---|
        | GPU | H200 |
        <BLANKLINE>
        ```text
        measure  pretrained
        ```
        <BLANKLINE>
    """
    lines = ["# Probe of the GPU-pre-trained backbone", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in facts.items()]
    return "\n".join([*lines, "", "```text", table.rstrip("\n"), "```", ""])


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The probe figures without their per-game details (what ``backbone.json`` and the summary keep)."""
    return {k: v for k, v in figures.items() if k != "details"}


def finish(run_dir: Path, out: Path, work: Path, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export a pre-training run's backbone and describe the run (what ``run`` does after training).

    Takes ``run_dir/backbone.pth`` when the run finished, else its last ``latest.pth`` (a run stopped by the
    budget). Returns the ``pretrain`` part of the summary: checkpoint used, step reached of the planned
    steps, loss, the loss curve (at most 100 points of ``loss/mse_ema``) and the backbone record.

    Raises:
        FileNotFoundError: When the run directory holds no checkpoint.
    """
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    source = run_dir / "backbone.pth"
    if not source.exists():
        source = run_dir / "latest.pth"
    if not source.exists():
        raise FileNotFoundError(f"{run_dir} holds no backbone.pth or latest.pth")
    planned = config.get("steps")
    curve = [[step, value] for step, _, value in scalar_events(run_dir / "tb", "loss/mse_ema")]
    rates = scalar_events(run_dir / "tb", "perf/samples_per_s")
    info = export(source, out, work, {**(record or {}), "config": config})
    step = int(info["step"])
    completed = planned is not None and step >= int(planned)
    part = {"checkpoint": str(source), "step": step, "steps": planned, "completed": completed,
            "samples": step * int(config.get("batch_size", 0)), "loss_ema": info.get("loss_ema"),
            "samples_per_s": rates[-1][2] if rates else None, "loss_curve": thin(curve), "backbone": info}
    status = (f"finished its {planned} steps" if completed else
              f"stopped by the time budget at step {step} of {planned} (the LR schedule did not finish)")
    info["status"] = status
    (out / "backbone.json").write_text(json.dumps(info, indent=1) + "\n")
    return part


def add_probe_to_record(out: Path, figures: dict[str, Any]) -> None:
    """Put the probe's headline figures into ``backbone.json`` (as the shipped backbone's record has them)."""
    path = out / "backbone.json"
    info = json.loads(path.read_text())
    info["probe"] = headline(figures)
    info["probe_setup"] = {k: figures.get("details", {}).get(k) for k in ("data", "games", "frames", "init_seed")}
    path.write_text(json.dumps(info, indent=1) + "\n")


RECOMPUTED = ("file", "format", "arch", "width", "sha256", "bytes", "step", "loss_ema", "parts", "join")
"""``backbone.json`` entries :func:`ship` leaves to ``export_backbone`` (they describe the new file)."""


def ship(folder: Path, dest: Path) -> dict[str, Any]:
    """Turn a brought-back folder into package weights: ``dest`` (``.pt``) and its ``.json`` record.

    The backbone (joined from its parts when it was split) goes through ``export_backbone`` again, so arch,
    width, sha256 and size describe ``dest``; the folder's record (status, recipe, GPU, plan, probe figures)
    is carried over.
    """
    from prend.pretrain.shipped import export_backbone

    record = json.loads((folder / "backbone.json").read_text())
    source = folder / "backbone.pt"
    if not source.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = dest.with_name(dest.stem + ".joined.pt")
        source.write_bytes(b"".join((folder / part).read_bytes() for part in record["parts"]))
    try:
        return export_backbone(source, dest, {k: v for k, v in record.items() if k not in RECOMPUTED})
    finally:
        if source.parent != folder:
            source.unlink()
