"""Statistics of the reports: IQM with stratified bootstrap CIs, seed CIs, curve areas, matrix correlations.

The aggregate statistics follow rliable (Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice"): a method's scores form a (runs x games) matrix; the interquartile mean (IQM) is the mean of the
middle 50% of all its entries (``scipy.stats.trim_mean(..., 0.25)``, as rliable computes it); its 95% CI
comes from a *stratified* bootstrap, which resamples runs with replacement independently within each game
(so every resample keeps every game) and takes the 2.5 and 97.5 percentiles of the statistic over the
resamples (rliable's default ``method='percentile'``). rliable itself pulls in pandas, statsmodels, seaborn and
arch (~150 MB), and its arch 7.2 fails to import with pandas 3; so the few lines below are prend's, tested
against a hand-worked example and against rliable 1.2.0, which the tests get through the ``rliable`` extra
(with pandas < 3; scripts/test.sh installs it): same point estimates, CI ends within 0.005 at 50,000 resamples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from prend.bootstrap import percentile_interval, stratified_resamples


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all entries: ``trim_mean`` cutting 25% from each end (NaNs dropped).

    Example:
        >>> iqm(np.array([[1.0, 100.0], [2.0, 3.0]]))  # sorted 1,2,3,100: mean of the middle two
        2.5
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(stats.trim_mean(values, 0.25)) if len(values) else float("nan")


def mean_score(scores: np.ndarray) -> float:
    """Mean of all finite entries."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def median_score(scores: np.ndarray) -> float:
    """Median of all finite entries."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {"IQM": iqm, "mean": mean_score, "median": median_score}
"""The aggregate statistics reported across games."""


def stratified_bootstrap(per_game: Sequence[np.ndarray], statistic: Callable[[np.ndarray], float],
                         reps: int = 50_000, seed: int = 0) -> np.ndarray:
    """The statistic on ``reps`` stratified resamples.

    Args:
        per_game: one 1-D array of run scores per game (games may have different numbers of runs).
        statistic: maps the pooled scores of one resample (a 1-D array) to a number.
        reps: number of bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        (reps,) the statistic of each resample, where each game's runs were drawn with replacement, as many
        as it has, independently of the other games.
    """
    pooled = np.concatenate(stratified_resamples(per_game, reps, seed), axis=1)  # (reps, total runs)
    if statistic is iqm:
        # trim_mean along an axis is the same statistic, vectorised over the resamples.
        return stats.trim_mean(pooled, 0.25, axis=1)
    return np.array([statistic(row) for row in pooled])


def interval_estimate(per_game: Sequence[np.ndarray], statistic: Callable[[np.ndarray], float],
                      reps: int = 50_000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(point estimate, CI low, CI high): the statistic and its stratified-bootstrap percentile interval.

    Example:
        >>> point, low, high = interval_estimate([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])], iqm, reps=2000)
        >>> point, low <= point <= high
        (3.5, True)
    """
    per_game = [np.asarray(g, dtype=np.float64)[np.isfinite(g)] for g in per_game]
    per_game = [g for g in per_game if len(g)]
    if not per_game:
        return float("nan"), float("nan"), float("nan")
    point = statistic(np.concatenate(per_game))
    low, high = percentile_interval(stratified_bootstrap(per_game, statistic, reps, seed), confidence)
    return float(point), low, high


MIN_SEEDS_FOR_INTERVAL = 5
"""Fewest seeds for which figures shade, and tables print, a confidence interval of the seed mean.

Below it the Student-t interval is too wide to read (``t(0.975, n - 1)`` is 12.7 at n = 2, 4.3 at 3, 3.2 at 4
standard errors: at 2 seeds it spans the panel and hides the curves), so figures draw every seed's curve and
tables list every seed's value instead: the data themselves, which a reader can judge."""


def seed_interval(values: np.ndarray, confidence: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds and the half-width of its Student-t confidence interval (NaN half-width for one seed).

    With few seeds (the paper runs 2) the t interval is wide; figures and tables show it only from
    :data:`MIN_SEEDS_FOR_INTERVAL` seeds and every seed below that.

    Example:
        >>> mean, half = seed_interval(np.array([[1.0], [3.0]]))
        >>> float(mean[0]), round(float(half[0]), 2)  # t(0.975, 1) = 12.706, standard error 1
        (2.0, 12.71)
    """
    values = np.asarray(values, dtype=np.float64)
    n = np.sum(np.isfinite(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no episode has ended yet)
        mean = np.nanmean(values, axis=axis)
        sd = np.nanstd(values, axis=axis, ddof=1)
        t = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, t * sd / np.sqrt(n), np.nan)
    return mean, half


def normalized_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under y(x) divided by the x-span it covers: the curve's average height (NaN points skipped).

    Example:
        >>> normalized_auc(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 2.0]))  # (1 + 2) / 2
        1.5
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return float("nan")
    if len(x) == 1 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def upper_triangle_correlation(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlations of two square matrices' strict upper triangles.

    Both matrices are symmetric with a zero diagonal (pairwise differences, distances), so the strict upper
    triangle holds each pair once. NaN when there are fewer than 3 pairs or a triangle is constant.

    Example:
        >>> d = np.abs(np.subtract.outer(np.arange(4.0), np.arange(4.0)))
        >>> round(upper_triangle_correlation(d, 2 * d + 1)["pearson"], 9)
        1.0
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rows, cols = np.triu_indices(len(a), k=1)
    x, y = a[rows, cols], b[rows, cols]
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "pairs": int(len(x))}
    return {"pearson": float(stats.pearsonr(x, y)[0]), "spearman": float(stats.spearmanr(x, y)[0]),
            "pairs": int(len(x))}


def align_curves(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Put several runs' curves on one x grid: the grid of the run with the shortest reach.

    Each curve is linearly interpolated on its finite points; grid points outside a curve's finite range
    (e.g. before its first finished episode) are NaN for that curve.

    Returns:
        (grid, values) with values of shape (runs, len(grid)).

    Example:
        >>> grid, values = align_curves([np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5])],
        ...                             [np.array([0.0, 1.0, 2.0]), np.array([2.0, 4.0])])
        >>> grid.tolist(), values.tolist()
        ([1.0, 2.5], [[0.0, 1.5], [2.0, 4.0]])
    """
    reach = [np.nanmax(x) if len(x) else -np.inf for x in xs]
    grid = np.asarray(xs[int(np.argmin(reach))], dtype=np.float64)
    rows = []
    for x, y in zip(xs, ys, strict=True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        row = np.full(len(grid), np.nan)
        if keep.any():
            inside = (grid >= x[keep].min()) & (grid <= x[keep].max())
            row[inside] = np.interp(grid[inside], x[keep], y[keep])
        rows.append(row)
    return grid, np.array(rows)
