"""The time budget's arithmetic for ``benchmarks/pretrain_gpu.py``: phase deadlines, the rate and start-up cost read
from the warm-up run, the step count that fits, checkpoint spacing, and the constants they are planned on.

Part of ``benchmarks/pretrain_gpu.py`` (the entry point), split out by concept; it imports nothing of prend's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

BUDGET_S = 540
"""The whole recipe, set-up included, ends within 9 minutes (the device tool allows 10 per command)."""
PROBE_S = 180
"""Seconds kept for ``prend probe`` at the end (its classifiers are fitted on the CPU)."""
MARGIN_S = 15
"""Seconds kept after the probe for the export, the summary and slack."""
WARMUP_STEPS = 40
"""Optimizer steps of the timing run; the first :data:`WARMUP_SKIP` are left out of the rate."""
WARMUP_SKIP = 10
WARMUP_LOG_EVERY = 5
WARMUP_FRAMES_PER_GAME = 2000
"""The timing run loads only this many frames of each game (the step cost does not depend on the data size)."""
WARMUP_CAP_S = 90
"""Longest the timing run may take (process start, CUDA start, 40 steps, the final save)."""
MIN_TRAIN_S = 60
"""Collection must leave at least this long for the pre-training run itself."""
SAFETY = 0.9
"""Share of the measured rate the step count is planned on."""
SAVES = 3
"""Checkpoints the pre-training run writes (every third of its steps), each costing about one warm-up save."""
LOAD_FRAMES_PER_S = 10_000
"""Frames per second ``FrameData.load`` decompresses (measured 13.7k/s on a 2-core CPU; kept conservative)."""


# ---------------------------------------------------------------------------------------------- arithmetic
@dataclasses.dataclass(frozen=True)
class Deadlines:
    """Seconds after the helper's start by which each phase must end."""

    collect: float
    """The pre-training frames are collected (leaving the warm-up and a minimal training run)."""
    train: float
    """The pre-training run stops (SIGTERM) and the probe starts, at the latest."""
    end: float
    """The probe stops; export and summary follow in the margin."""


def deadlines(left_s: float, probe_s: float = PROBE_S, margin_s: float = MARGIN_S) -> Deadlines:
    """Split the seconds left after set-up into phase deadlines.

    Example:
        >>> deadlines(525)
        Deadlines(collect=180, train=330, end=510)
    """
    end = left_s - margin_s
    train = end - probe_s
    return Deadlines(collect=train - WARMUP_CAP_S - MIN_TRAIN_S, train=train, end=end)


def steps_per_second(events: Sequence[tuple[int, float]], skip_steps: int = WARMUP_SKIP) -> float:
    """Optimizer steps per second between the first logged step at or after ``skip_steps`` and the last one.

    ``events`` are ``(step, wall time)`` of the trainer's TensorBoard scalars; the first steps (CUDA start,
    kernel loading, allocator growth) are left out.

    Example:
        >>> steps_per_second([(5, 100.0), (10, 101.0), (20, 103.0), (40, 107.0)])
        5.0

    Raises:
        ValueError: With fewer than two logged steps past ``skip_steps``.
    """
    kept = sorted((s, w) for s, w in events if s >= skip_steps)
    if len(kept) < 2 or kept[-1][1] <= kept[0][1]:
        raise ValueError(f"need two logged steps at or after step {skip_steps}, got {sorted(events)}")
    (s0, w0), (s1, w1) = kept[0], kept[-1]
    return (s1 - s0) / (w1 - w0)


def startup_seconds(launched: float, events: Sequence[tuple[int, float]], rate: float) -> float:
    """Seconds a trainer spends before its first step: the first logged step's time, less the steps before it.

    Example:
        >>> startup_seconds(90.0, [(5, 100.0), (10, 101.0)], rate=5.0)
        9.0
    """
    step, wall = min(events)
    return max(0.0, wall - launched - step / rate)


def steps_for_budget(seconds: float, rate: float, startup_s: float = 0.0, save_s: float = 0.0,
                     saves: int = SAVES, safety: float = SAFETY) -> int:
    """Optimizer steps that fit in ``seconds``: what is left after start-up and saves, times the rate, times safety.

    Example (300 s at 5 steps/s, 20 s start-up, 3 saves of 2 s: 274 s x 5 x 0.9):
        >>> steps_for_budget(300, 5.0, startup_s=20, save_s=2)
        1233
        >>> steps_for_budget(10, 5.0, startup_s=20)
        0
    """
    usable = seconds - startup_s - saves * save_s
    return max(0, math.floor(usable * rate * safety + 1e-9))


def save_every(steps: int, saves: int = SAVES) -> int:
    """Checkpoint interval giving ``saves`` checkpoints over the run (the last at its end).

    Example:
        >>> save_every(1233), save_every(2)
        (411, 1)
    """
    return max(1, math.ceil(steps / saves))


def thin(points: Sequence[Any], most: int = 100) -> list[Any]:
    """At most ``most`` evenly spaced entries of ``points``, the first and last included.

    Example:
        >>> thin(list(range(10)), 4)
        [0, 3, 6, 9]
    """
    if len(points) <= most:
        return list(points)
    return [points[round(i * (len(points) - 1) / (most - 1))] for i in range(most)]
