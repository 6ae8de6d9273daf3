"""Per-iteration metrics: one JSON line per iteration in ``metrics.jsonl``, mirrored to TensorBoard.

Metric names live in fixed namespaces: ``charts/`` (progress and scores), ``losses/`` (the update),
``intrinsic/`` (the intrinsic reward), ``time/`` (where the seconds went).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (``null`` comes back as NaN)."""
    records = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records.append({k: (math.nan if v is None else v) for k, v in record.items()})
    return records


class MetricsLogger:
    """Appends iteration records to ``metrics.jsonl`` and TensorBoard scalars under ``tb/``.

    On resume, records after the checkpoint's iteration are dropped (they will be produced again) and
    TensorBoard is told to purge events past the resumed step.
    """

    def __init__(self, run_dir: Path, resume_iteration: int | None = None, resume_step: int = 0,
                 tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        if resume_iteration is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["iteration"] <= resume_iteration]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step if resume_iteration else None)

    def log(self, record: dict[str, Any]) -> None:
        """Write one iteration's record (must hold ``iteration`` and ``charts/global_step``)."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        if self._writer is not None:
            step = int(record["charts/global_step"])
            for key, value in record.items():
                if "/" in key and isinstance(value, int | float) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)

    def add_text(self, tag: str, text: str) -> None:
        """Record a text blob in TensorBoard (e.g. the resolved config)."""
        if self._writer is not None:
            self._writer.add_text(tag, text)

    def close(self) -> None:
        """Flush and close both outputs."""
        self._file.close()
        if self._writer is not None:
            self._writer.close()
