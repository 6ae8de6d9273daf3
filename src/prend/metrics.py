"""Per-iteration metrics: one JSON line per iteration in ``metrics.jsonl``, mirrored to TensorBoard.

Metric names live in fixed namespaces: ``charts/`` (progress and scores), ``losses/`` (the update),
``intrinsic/`` (the intrinsic reward), ``time/`` (where the seconds went).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prend.checkpoint import atomic_write
from prend.errors import PrendError

ITERATION = "iteration"
"""The record's iteration (1, 2, ...): the one key outside the namespaces."""
GLOBAL_STEP = "charts/global_step"
"""Agent steps so far, summed over envs."""
FRAMES = "charts/frames"
"""Emulator frames so far (agent steps x frame skip)."""
SCORE = "charts/score_mean_100"
"""Mean raw game score of the last 100 finished games (absent until a game has ended)."""
STEPS_PER_SECOND = "charts/steps_per_second"
"""Agent steps per second of the iteration."""
RAW_MEAN = "intrinsic/raw_mean"
"""Mean raw (unnormalised) intrinsic reward of the rollout."""
RAW_STD = "intrinsic/raw_std"
"""Its standard deviation within the rollout."""
OFFSET_SHARE = "intrinsic/offset_share"
"""Share of the rollout's mean raw reward that is the same for all its states."""
TARGET_SPREAD = "intrinsic/target_spread"
"""The target's spread across the rollout's states over its mean's norm."""


def _split_records(text: str) -> tuple[list[str], str | None]:
    """Complete lines of a ``metrics.jsonl`` and its torn last line (one cut short by a crash), if any.

    A record is complete when its line ends with a newline and parses; only the last line can be torn,
    because each record is written whole and flushed before the next.
    """
    lines = text.split("\n")
    tail = lines.pop()  # text after the last newline: empty, or a record cut short
    torn = tail if tail.strip() else None
    if torn is None and lines and lines[-1].strip():
        try:
            json.loads(lines[-1])
        except ValueError:  # cut short right before its newline
            torn = lines.pop()
    return [line for line in lines if line.strip()], torn


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a ``metrics.jsonl`` (``null`` comes back as NaN).

    A torn last line (a crash mid-write, or a record being written right now) is left out; a broken line
    anywhere else raises ``ValueError``.
    """
    lines, _ = _split_records(Path(path).read_text())
    records = []
    for line in lines:
        record = json.loads(line)
        records.append({k: (math.nan if v is None else v) for k, v in record.items()})
    return records


@dataclass
class MetricsRepair:
    """What :func:`truncate_metrics` did to a ``metrics.jsonl`` before a resume."""

    kept: int
    """Records up to the checkpoint's iteration, kept."""
    dropped: int
    """Records past the checkpoint's iteration, dropped (the resumed run writes them again)."""
    torn: bool
    """Whether a torn last line was dropped."""

    def message(self, path: Path) -> str | None:
        """A one-line note for the user when anything was dropped."""
        parts = ([f"{self.dropped} record(s) past the checkpoint (they are trained again)"] if self.dropped else []) \
            + (["a torn last line (a write cut short by a crash)"] if self.torn else [])
        return f"note: dropped {' and '.join(parts)} from '{path}'" if parts else None


def truncate_metrics(path: Path, iteration: int) -> MetricsRepair:
    """Keep the records of ``metrics.jsonl`` up to ``iteration`` (a checkpoint's), for a resume to append to.

    The file is never rewritten in place: when records must go, the kept ones are written to a new file
    that replaces the old one atomically; when none must go, the file is left untouched. Raises
    :class:`PrendError` (touching nothing) when a line other than the last is broken.
    """
    if not path.exists():
        return MetricsRepair(0, 0, False)
    try:
        lines, torn = _split_records(path.read_text())
        kept = [line for line in lines if json.loads(line)[ITERATION] <= iteration]
    except (ValueError, KeyError, TypeError) as err:
        raise PrendError(f"'{path}' is corrupt before its last line ({type(err).__name__}: {err})",
                         "restore it from a copy, or move it aside to resume without the history") from None
    repair = MetricsRepair(len(kept), len(lines) - len(kept), torn is not None)
    if repair.dropped or repair.torn:
        atomic_write(path, lambda handle: handle.write("".join(line + "\n" for line in kept).encode()))
    return repair


class MetricsLogger:
    """Appends iteration records to ``metrics.jsonl`` (``path``) and TensorBoard scalars (to ``tensorboard_dir``).

    Each record is one ``write`` of a whole line, flushed at once, so a crash loses at most the record
    being written (a torn last line, which :func:`truncate_metrics` drops on resume). On resume, pass
    the checkpoint's iteration and step: the caller has already cut the file to that iteration with
    :func:`truncate_metrics`, and TensorBoard is told to purge events past the resumed step.
    """

    def __init__(self, path: Path, tensorboard_dir: Path | None = None, resume_iteration: int | None = None,
                 resume_step: int = 0):
        self.path = Path(path)
        self._file = self.path.open("a")
        self._writer = None
        if tensorboard_dir is not None:
            # Imported only when wanted: TensorBoard's writer takes ~100 ms to import and --no-tensorboard skips it.
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(tensorboard_dir), purge_step=resume_step if resume_iteration else None)

    def log(self, record: dict[str, Any]) -> None:
        """Write one iteration's record (must hold :data:`ITERATION` and :data:`GLOBAL_STEP`)."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        if self._writer is not None:
            step = int(record[GLOBAL_STEP])
            for key, value in record.items():
                if "/" in key and isinstance(value, int | float) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)

    def sync(self) -> None:
        """Force the records written so far to disk (before a checkpoint, so none it counts can be lost)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def add_text(self, tag: str, text: str) -> None:
        """Record a text blob in TensorBoard (e.g. the resolved config)."""
        if self._writer is not None:
            self._writer.add_text(tag, text)

    def close(self) -> None:
        """Flush and close both outputs."""
        self._file.close()
        if self._writer is not None:
            self._writer.close()
