"""Table cells shared by ``prend report`` and ``prend diagnose``: numbers, and a group's seeds by the seed rule.

The seed rule (:data:`SEED_RULE`): below :data:`~prend.experiments.stats.MIN_SEEDS_FOR_INTERVAL` seeds a cell lists
every seed's value and their mean and gives no interval; from there on it is mean ± sd (or an interval).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from prend.experiments.stats import MIN_SEEDS_FOR_INTERVAL, seed_interval


def fmt(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, without scientific notation for large numbers (game scores).

    Example:
        >>> fmt(1291.4), fmt(0.002851), fmt(300.2, 2), fmt(float("nan"))
        ('1,291', '0.00285', '300', '–')
    """
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 10 ** (digits - 1) else f"{value:.{digits}g}"


def nan_to_none(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts and lists too) as None, which JSON can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_to_none(v) for v in value]
    return value


def separation_p(n: int, m: int) -> float:
    """Two-sided permutation p-value of the most extreme outcome: every one of n seeds above every one of m.

    Under "the method makes no difference" each of the C(n+m, n) ways to split the pooled runs is equally
    likely, and two of them (all above, all below) are that extreme; so it is the smallest p-value n and m
    seeds can give at all, however far apart their values.

    Example:
        >>> separation_p(2, 2), separation_p(3, 3), round(separation_p(5, 5), 4)
        (0.3333333333333333, 0.1, 0.0079)
    """
    return min(1.0, 2 / math.comb(n + m, n))


SEED_RULE = (f"Below {MIN_SEEDS_FOR_INTERVAL} seeds a cell lists every seed's value in seed order and their mean, "
             "`s1 / s2 (mean m)`, and no interval is given: a Student-t interval of 2 seeds spans ±12.7 standard "
             f"errors and says nothing the values do not. From {MIN_SEEDS_FOR_INTERVAL} seeds a cell is mean ± sd. "
             "Few seeds cannot separate two groups either: even when every seed of one is above every seed of the "
             f"other, a permutation test gives p = {separation_p(2, 2):.2f} for 2 seeds against 2 and "
             f"{separation_p(3, 3):.2f} for 3 against 3 (p < 0.05 needs 4 against 4: {separation_p(4, 4):.3f}).")
"""How the tables summarise a group's seeds; printed once at the top of ``report.md`` and ``summary.md``."""


def seed_cell(values: list[float], digits: int = 3) -> str:
    """A table cell for one group's per-seed values: every seed and their mean below 5 seeds, mean ± sd from 5.

    A seed without a value (no game ended yet) is shown as – and left out of the mean.

    Example:
        >>> seed_cell([9.0, 18.0]), seed_cell([float("nan"), 4.0]), seed_cell([2.0]), seed_cell([1, 2, 3, 4, 5.0])
        ('9 / 18 (mean 13.5)', '– / 4 (mean 4)', '2', '3 ± 1.6')
    """
    v = np.array(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if not len(finite):
        return "–"
    mean = float(finite.mean())
    if len(v) >= MIN_SEEDS_FOR_INTERVAL:
        return fmt(mean, digits) + (f" ± {fmt(float(finite.std(ddof=1)), 2)}" if len(finite) > 1 else "")
    if len(v) == 1:
        return fmt(mean, digits)
    return " / ".join(fmt(float(x), digits) for x in v) + f" (mean {fmt(mean, digits)})"


def mean_sd_cell(values: list[float]) -> str:
    """The final-score cell beside its own per-seed column: the mean, with ± sd from 5 seeds."""
    v = np.array(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if not len(finite):
        return "–"
    sd = f" ± {fmt(float(finite.std(ddof=1)), 2)}" if len(v) >= MIN_SEEDS_FOR_INTERVAL and len(finite) > 1 else ""
    return fmt(float(finite.mean())) + sd


def t_interval_cell(values: list[float]) -> str:
    """The 95% t-interval of the seed mean, from 5 seeds (below: the per-seed column is the answer)."""
    if len(values) < MIN_SEEDS_FOR_INTERVAL:
        return f"– (n < {MIN_SEEDS_FOR_INTERVAL})"
    mean, half = seed_interval(np.array(values, dtype=np.float64)[:, None])
    return "–" if not np.isfinite(half[0]) else f"[{fmt(mean[0] - half[0])}, {fmt(mean[0] + half[0])}]"


def estimate_cell(estimate: dict[str, float], n: int) -> str:
    """``value [low, high]`` of a bootstrap estimate, or the value alone with fewer than 5 seeds.

    Example:
        >>> estimate_cell({"value": 0.5, "low": 0.1, "high": 0.9}, 5), estimate_cell({"value": 0.5}, 2)
        ('0.5 [0.1, 0.9]', '0.5 (n < 5: no CI)')
    """
    if n < MIN_SEEDS_FOR_INTERVAL:
        return f"{fmt(estimate['value'])} (n < {MIN_SEEDS_FOR_INTERVAL}: no CI)"
    return f"{fmt(estimate['value'])} [{fmt(estimate['low'])}, {fmt(estimate['high'])}]"
