"""Temporal coherence of a feature space along trajectories: measure (a) of ``prend probe``.

Within an episode, do states close in time get features close in space? The Spearman rank correlation
between feature distances and time distances, per episode, averaged; a short-range variant; and a paired
bootstrap interval for the difference between two backbones scored on the same frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from prend.bootstrap import percentile_interval, stratified_resamples


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either side is constant.

    Example:
        >>> spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 25, 100]))
        1.0
    """
    from scipy.stats import rankdata  # here, not at the top: scipy.stats takes ~0.7 s to import, only this needs it

    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def episode_spearman(features: np.ndarray, times: np.ndarray) -> float:
    """Spearman correlation between pairwise feature distances and time distances of one episode's frames.

    Args:
        features: (n, D) features of n frames.
        times: (n,) their time steps.
    """
    f = torch.as_tensor(features, dtype=torch.float64)
    dist = torch.cdist(f, f).numpy()
    iu = np.triu_indices(len(times), k=1)
    dt = np.abs(times[:, None] - times[None, :])[iu]
    return spearman(dist[iu], dt)


def episode_coherences(features: np.ndarray, episode: np.ndarray, t: np.ndarray, frames_per_episode: int = 200,
                       min_frames: int = 10, seed: int = 0) -> dict[int, float]:
    """:func:`episode_spearman` of each episode on up to ``frames_per_episode`` random frames of it.

    The frames drawn depend only on ``seed`` and the episodes, so two backbones probed on the same data are
    compared on the same frames. Episodes shorter than ``min_frames`` (or with a constant side) are left out.
    """
    rng = np.random.default_rng(seed)
    values = {}
    for ep in np.unique(episode):
        rows = np.flatnonzero(episode == ep)
        if len(rows) < min_frames:
            continue
        if len(rows) > frames_per_episode:
            rows = np.sort(rng.choice(rows, frames_per_episode, replace=False))
        value = episode_spearman(features[rows], t[rows])
        if np.isfinite(value):
            values[int(ep)] = value
    return values


def temporal_coherence(features: np.ndarray, episode: np.ndarray, t: np.ndarray, frames_per_episode: int = 200,
                       min_frames: int = 10, seed: int = 0) -> tuple[float, int]:
    """Mean over episodes of :func:`episode_spearman` on up to ``frames_per_episode`` random frames each.

    Returns:
        ``(mean correlation, episodes used)``; episodes shorter than ``min_frames`` are skipped.

    Example:
        >>> steps = np.arange(50.0)
        >>> temporal_coherence(steps[:, None], np.zeros(50, int), steps.astype(int))   # features = time
        (1.0, 1)
    """
    return mean_and_count(episode_coherences(features, episode, t, frames_per_episode, min_frames, seed))


def mean_and_count(per_episode: dict[int, float]) -> tuple[float, int]:
    """Mean of per-episode values and how many there are (NaN and 0 for none)."""
    if not per_episode:
        return float("nan"), 0
    return float(np.mean(list(per_episode.values()))), len(per_episode)


def paired_difference_ci(differences: Sequence[np.ndarray], resamples: int = 10_000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float, float]:
    """Mean over groups of the per-group mean difference, with a percentile bootstrap interval.

    Each group (a game) holds paired per-episode differences (pre-trained minus random init, same frames);
    the bootstrap resamples episodes with replacement within each group, as the figure averages per game
    first. An interval that contains 0 means the episodes cannot tell the two backbones apart.

    Returns:
        ``(mean, low, high)``.

    Example (two episodes at -1 and +1: resampled means are -1, 0, +1 with odds 1:2:1):
        >>> paired_difference_ci([np.array([-1.0, 1.0])])
        (0.0, -1.0, 1.0)
    """
    groups = [np.asarray(d, dtype=np.float64) for d in differences if len(d)]
    if not groups:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean([g.mean() for g in groups]))
    draws = np.mean([draw.mean(1) for draw in stratified_resamples(groups, resamples, seed)], axis=0)
    return (mean, *percentile_interval(draws, level))


def local_temporal_coherence(features: np.ndarray, episode: np.ndarray, t: np.ndarray, max_gap: int = 16,
                             min_frames: int = 10) -> tuple[float, int]:
    """Short-range variant of :func:`temporal_coherence`: every pair of frames at most ``max_gap`` steps apart.

    For each episode, the Spearman correlation over all pairs ``(i, i + d)``, ``1 <= d <= max_gap``, between
    their feature distance and ``d``; the mean over episodes. It asks whether nearby states map to nearby
    features, leaving out the long-range pairs whose order mostly reflects slow monotone screen elements
    (clocks, scores) rather than the game's state.

    Example:
        >>> steps = np.arange(40.0)
        >>> local_temporal_coherence(0.5 * steps[:, None], np.zeros(40, int), steps.astype(int), 4)
        (1.0, 1)
    """
    values = []
    for ep in np.unique(episode):
        rows = np.flatnonzero(episode == ep)
        rows = rows[np.argsort(t[rows])]
        if len(rows) < max(min_frames, max_gap + 1):
            continue
        f = torch.as_tensor(features[rows], dtype=torch.float64)
        dist, gap = [], []
        for d in range(1, max_gap + 1):
            dist.append((f[d:] - f[:-d]).norm(dim=1).numpy())
            gap.append(np.full(len(rows) - d, d))
        value = spearman(np.concatenate(dist), np.concatenate(gap))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), 0
    return float(np.mean(values)), len(values)
