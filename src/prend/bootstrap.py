"""The percentile bootstrap shared by ``prend report`` (IQM over games) and ``prend probe`` (paired differences).

Both resample *within* groups (a game's runs, a game's episodes), each group independently and as many
draws as it has members, and read a percentile interval off the resampled statistic.
:func:`stratified_resamples` draws the groups in order from one generator, so a caller's figures depend
only on its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_resamples(groups: Sequence[np.ndarray], reps: int, seed: int = 0) -> list[np.ndarray]:
    """``reps`` resamples of every group: one (reps, len(group)) float64 array per group, drawn with replacement.

    Example:
        >>> [r.shape for r in stratified_resamples([np.array([1.0, 2.0]), np.array([5.0, 6.0, 7.0])], reps=4)]
        [(4, 2), (4, 3)]
    """
    rng = np.random.default_rng(seed)
    draws = []
    for group in groups:
        group = np.asarray(group, dtype=np.float64)
        draws.append(group[rng.integers(0, len(group), size=(reps, len(group)))])
    return draws


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap values (percentiles at the two tails).

    Example:
        >>> percentile_interval(np.array([0.0, 10.0]), 0.5)
        (2.5, 7.5)
    """
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
