"""``prend diagnose``: the paper's intrinsic-reward analyses (Fig. 1 and Fig. 3) of finished or running runs.

Fig. 1 (trend and oscillation of the intrinsic reward): per run, the mean raw intrinsic reward of each
rollout over training, and on the fixed probe set; summarised as

- **decay**: mean of the last ``early_fraction`` of iterations / mean of the first ``early_fraction``
  (small: the reward collapsed);
- **oscillation**: coefficient of variation of the rollout-mean reward around its moving average, over the
  second half of training (``std(r - movavg(r)) / mean(r)``; the trend itself is removed);
- **spread**: median over the second half of ``raw_std / raw_mean`` within a rollout (how much the
  reward distinguishes the states of one rollout);
- **offset share**: the share of a rollout's mean raw reward that is the same for all its states
  (``intrinsic/offset_share``, :func:`prend.intrinsic.base.reward_decomposition`), at the first iteration and
  its median over the second half; **target spread** likewise (the target's spread across states over its
  mean's norm).

Fig. 3 (does the reward follow the observations?): for the frames kept once per iteration, the matrices
``|r_int(i) - r_int(j)|`` and ``d(o_i, o_j)`` over pairs of iterations, and the Pearson (and Spearman)
correlation of their strict upper triangles. Distances: ``pixels`` (Euclidean distance of the 84x84 frames in
[0, 1]) and ``reference`` (Euclidean distance of a fixed reference embedding, the same for every run: see
:func:`reference_embedding`). The per-state version does the same over the fixed probe states at every probe
evaluation, where the predictor is the same for all pairs.

A correlation is undefined where one side has no spread: a reward that is the same for every frame compared
(a reward with nothing to tell apart), frames the distance cannot tell apart, or fewer than 3 pairs. It is
then NaN here, ``null`` in ``summary.json`` with ``fig3_undefined_<distance>`` saying why (``null`` where it
is defined), "–" in ``summary.md`` with the reason below its table, and "n/a (why)" in ``prend diagnose``'s
output (:func:`fig3_text`).

See ``docs/analysis.md`` for the exact definitions.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d
from scipy.spatial.distance import pdist, squareform

from prend.errors import PrendError
from prend.experiments.cells import SEED_RULE, fmt, nan_to_none, seed_cell
from prend.experiments.fig3_result import Fig3
from prend.experiments.figures import plot_fig1, plot_fig1_summary, plot_fig3, plot_fig3_summary
from prend.experiments.runs import Run, find_runs
from prend.experiments.stats import upper_triangle_correlation
from prend.nets.rnd import rnd_target
from prend.rundir import OFFSET_SHARE, RAW_MEAN, RAW_STD, TARGET_SPREAD

REFERENCE_SEED = 20240601
"""Torch seed of the reference embedding network (fixed forever, so numbers stay comparable)."""


# ------------------------------------------------------------------------------------------ Fig. 1
def _window(n: int, fraction: float) -> int:
    return max(1, int(round(fraction * n)))


def decay_ratio(values: np.ndarray, fraction: float = 0.1) -> float:
    """Mean of the last ``fraction`` of the series over the mean of its first ``fraction`` (NaNs skipped).

    Example:
        >>> decay_ratio(np.array([10.0, 8, 6, 4, 2, 1, 1, 1, 1, 1]), 0.2)  # (1 + 1) / (10 + 8)
        0.1111111111111111
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan
    w = _window(len(values), fraction)
    early = values[:w].mean()
    return float(values[-w:].mean() / early) if early else math.nan


def oscillation_cv(values: np.ndarray, window_fraction: float = 0.1) -> float:
    """Coefficient of variation around the moving average, over the second half of the series.

    The moving average (centred, ``window_fraction`` of the series long, at least 3 points) removes the trend,
    so a smooth decay scores 0 and a reward that jumps between iterations scores high.

    Example:
        >>> round(oscillation_cv(np.array([1.0, 3.0] * 20)), 2), oscillation_cv(np.full(40, 2.0))
        (0.4, 0.0)
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 4:
        return math.nan
    size = max(3, _window(len(values), window_fraction) | 1)
    trend = uniform_filter1d(values, size=size, mode="nearest")
    half = len(values) // 2
    late, residual = values[half:], (values - trend)[half:]
    mean = late.mean()
    return float(residual.std() / mean) if mean else math.nan


def spread_cv(raw_mean: np.ndarray, raw_std: np.ndarray) -> float:
    """Median over the second half of training of the within-rollout coefficient of variation.

    Example:
        >>> spread_cv(np.array([1.0, 1.0, 2.0, 2.0]), np.array([9.0, 9.0, 1.0, 1.0]))
        0.5
    """
    cv = np.asarray(raw_std, dtype=np.float64) / np.asarray(raw_mean, dtype=np.float64)
    cv = cv[len(cv) // 2:]
    cv = cv[np.isfinite(cv)]
    return float(np.median(cv)) if len(cv) else math.nan


def late_median(values: np.ndarray) -> float:
    """Median over the second half of a series (NaNs dropped; NaN if none is left).

    Example:
        >>> late_median(np.array([9.0, 9.0, 1.0, np.nan, 2.0, 4.0]))   # median of 2 and 4
        3.0
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[len(values) // 2:]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan


def _first(values: np.ndarray) -> float:
    """The value at the first iteration; NaN when that iteration did not log it.

    A run started before prend logged a metric and resumed after has it only from the resume on: its first
    logged value is not the run's first iteration's, so it is not reported as such.

    Example:
        >>> _first(np.array([0.5, 0.4])), _first(np.array([np.nan, 0.4]))
        (0.5, nan)
    """
    return float(values[0]) if len(values) and np.isfinite(values[0]) else math.nan


def fig1_metrics(run: Run, early_fraction: float = 0.1) -> dict[str, float]:
    """Decay, oscillation, spread and offset share of one run's intrinsic reward, per rollout and on the probe set.

    The offset share and target spread are NaN for runs made before prend logged them.
    """
    raw = run.series(RAW_MEAN)
    offset_share = run.series(OFFSET_SHARE)
    out = {
        "decay": decay_ratio(raw, early_fraction),
        "oscillation": oscillation_cv(raw),
        "spread": spread_cv(raw, run.series(RAW_STD)),
        "offset_share_first": _first(offset_share),
        "offset_share": late_median(offset_share),
        "target_spread": late_median(run.series(TARGET_SPREAD)),
        "raw_first": float(raw[np.isfinite(raw)][0]) if np.isfinite(raw).any() else math.nan,
        "raw_last": float(raw[np.isfinite(raw)][-1]) if np.isfinite(raw).any() else math.nan,
        "probe_decay": math.nan, "probe_oscillation": math.nan,
    }
    diag = run.diagnostics
    if diag is not None and diag.probe_rewards.size:
        probe_mean = diag.probe_rewards.mean(axis=1)
        out["probe_decay"] = decay_ratio(probe_mean, early_fraction)
        out["probe_oscillation"] = oscillation_cv(probe_mean)
    return out


# ------------------------------------------------------------------------------------------ Fig. 3
@lru_cache(maxsize=1)
def _reference_network():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(REFERENCE_SEED)
        return rnd_target(1, 512).eval()


def reference_embedding(frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """A fixed embedding of 84x84 uint8 frames, the same for every run and method: (N, 512) float64.

    The network is the RND target architecture (3 convolutions with leaky ReLU and a linear layer to 512,
    orthogonal initialisation) drawn once from torch seed :data:`REFERENCE_SEED`, applied to the frame scaled
    to [0, 1] without running statistics, so it does not depend on any run. A random convolutional
    embedding rather than a random projection of the pixels: a linear random projection keeps Euclidean
    distances (Johnson-Lindenstrauss) and would repeat the pixel distance; the convolutions and
    nonlinearities weigh local structure instead. It is *not* the embedding any method rewards on (RND's target
    sees whitened frames from other weights; PreND's a pre-trained backbone), so no method is favoured.
    """
    net = _reference_network()
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (N, H, W), got {frames.shape}")
    outs = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[start:start + batch])).float().div_(255).unsqueeze(1)
            outs.append(net(x).double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 512))


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of the rows of ``points`` (flattened), (N, N)."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    return squareform(pdist(points)) if len(points) > 1 else np.zeros((len(points), len(points)))


def reward_differences(rewards: np.ndarray) -> np.ndarray:
    """``|r_i - r_j|`` for all pairs, (N, N)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return np.abs(np.subtract.outer(rewards, rewards))


def subsample(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices of ``range(n)``, evenly spaced, first and last included.

    Example:
        >>> subsample(10, 4).tolist(), subsample(3, 4).tolist()
        ([0, 3, 6, 9], [0, 1, 2])
    """
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def fig3_analysis(run: Run, max_points: int = 400, skip_first: int = 0) -> Fig3 | None:
    """The Fig. 3 matrices and correlations of one run, or ``None`` if it has no diagnostics.

    Args:
        run: the run.
        max_points: at most this many training iterations, evenly spaced.
        skip_first: leave out iterations up to this one (the untrained predictor's first rewards are large,
            and every pair with them then differs mostly by training time, not by state).
    """
    diag = run.diagnostics
    if diag is None or not (diag.iteration > skip_first).any():
        return None
    kept = np.flatnonzero(diag.iteration > skip_first)
    idx = kept[subsample(len(kept), max_points)]
    frames = diag.frame[idx]
    diff = reward_differences(diag.frame_reward[idx])
    distances = {"pixels": pairwise_distances(frames.astype(np.float64) / 255),
                 "reference": pairwise_distances(reference_embedding(frames))}
    correlations = {name: upper_triangle_correlation(diff, d) for name, d in distances.items()}

    probe_rewards = diag.probe_rewards
    probe_distances: dict[str, np.ndarray] = {}
    probe_correlations: dict[str, np.ndarray] = {}
    probe_diff = None
    if probe_rewards.size and len(diag.probe_obs) > 2:
        newest = diag.probe_obs[:, -1]
        probe_distances = {"pixels": pairwise_distances(newest.astype(np.float64) / 255),
                           "reference": pairwise_distances(reference_embedding(newest))}
        for name, d in probe_distances.items():
            probe_correlations[name] = np.array(
                [upper_triangle_correlation(reward_differences(r), d)["pearson"] for r in probe_rewards])
        probe_diff = reward_differences(probe_rewards[-1])
    return Fig3(diag.iteration[idx], diff, distances, correlations, diag.probe_iteration, probe_diff,
                probe_distances, probe_correlations)


def fig3_undefined(result: Fig3 | None, name: str) -> str | None:
    """Why a run's Fig. 3 r against distance ``name`` is undefined (NaN), or ``None`` where it is defined.

    Example:
        >>> flat = Fig3(np.arange(3), np.zeros((3, 3)), {"pixels": np.ones((3, 3))}, {"pixels": {"pearson": np.nan,
        ...             "pairs": 3}}, np.arange(0), None, {}, {})
        >>> fig3_undefined(flat, "pixels")
        'the reward is constant over the frames compared'
    """
    if result is None:
        return "the run has no frames kept per iteration (diagnostics.npz) after --skip-first"
    correlation = result.correlations[name]
    if np.isfinite(correlation["pearson"]):
        return None
    if correlation["pairs"] < 3:
        return f"{len(result.iterations)} iterations give fewer than 3 pairs"
    rows, cols = np.triu_indices(len(result.reward_diff), k=1)
    if np.ptp(result.reward_diff[rows, cols]) == 0:
        return "the reward is constant over the frames compared"
    return f"the frames compared are all equally far apart by {name} distance"


def fig3_text(row: dict[str, Any]) -> str:
    """One line of a run's or group's Fig. 3 r, saying why where it is undefined.

    Example:
        >>> fig3_text({"fig3_pearson_pixels": 0.5, "fig3_pearson_reference": float("nan"),
        ...            "fig3_undefined_reference": "the reward is constant over the frames compared"})
        'Fig. 3 r: pixels 0.50, reference n/a (the reward is constant over the frames compared)'
    """
    parts, reasons = [], []
    for name in ("pixels", "reference"):
        value = row.get(f"fig3_pearson_{name}")
        if value is not None and np.isfinite(value):
            parts.append(f"{name} {value:.2f}")
        else:
            parts.append(f"{name} n/a")
            reasons.append(row.get(f"fig3_undefined_{name}") or "no run of the group has it")
    reasons = list(dict.fromkeys(reasons))
    return "Fig. 3 r: " + ", ".join(parts) + (f" ({'; '.join(reasons)})" if reasons else "")


# ----------------------------------------------------------------------------------------- summary
def diagnose(paths: list[Path], out: Path | None = None, max_points: int = 400,
             early_fraction: float = 0.1, skip_first: int = 0) -> dict[str, Any]:
    """Run the Fig. 1 and Fig. 3 analyses of the runs under ``paths``; write PNGs and a summary to ``out``.

    Returns:
        The summary written to ``out/summary.json``.
    """
    if not 0 < early_fraction <= 0.5:
        raise PrendError(f"--early-fraction must be in (0, 0.5], got {early_fraction}", "pass e.g. 0.1")
    if max_points < 3:
        raise PrendError(f"--max-points must be >= 3, got {max_points}", "pass e.g. 400")
    runs = find_runs(paths)
    runs = [r for r in runs if r.declaration.intrinsic_head]
    if not runs:
        raise PrendError("none of the runs has an intrinsic reward (all use --method none)",
                         "diagnose runs of a method with one (rnd, rnd-lr, prend or your own)")
    out = Path(out) if out else default_out(paths)
    out.mkdir(parents=True, exist_ok=True)
    rows, results, figures = [], {}, ["fig1_decay_oscillation.png", "fig1_intrinsic.png"]
    for run in runs:
        row: dict[str, Any] = {"run": run.name, "path": str(run.path), "game": run.game_key, "label": run.label,
                               "method": run.method, "seed": run.seed,
                               "predictor_lr_scale": run.config["intrinsic"]["predictor_lr_scale"],
                               "iterations": len(run.metrics),
                               "frames": run.frames}
        row.update(fig1_metrics(run, early_fraction))
        result = fig3_analysis(run, max_points, skip_first)
        for name in ("pixels", "reference"):
            row[f"fig3_pearson_{name}"] = result.correlations[name]["pearson"] if result else math.nan
            row[f"fig3_spearman_{name}"] = result.correlations[name]["spearman"] if result else math.nan
            row[f"fig3_undefined_{name}"] = fig3_undefined(result, name)
            probe = result.probe_correlations.get(name) if result else None
            row[f"probe_pearson_{name}_last"] = float(probe[-1]) if probe is not None and len(probe) else math.nan
            row[f"probe_pearson_{name}_mean"] = float(np.nanmean(probe)) if probe is not None and len(probe) \
                and np.isfinite(probe).any() else math.nan
        row["fig3_points"] = len(result.iterations) if result else 0
        if result is not None:
            results[run.name] = result
            plot_fig3(run, result, out / f"fig3_{run.name}.png")
            figures.append(f"fig3_{run.name}.png")
        rows.append(row)
    plot_fig1(runs, out / "fig1_intrinsic.png")
    plot_fig1_summary(rows, out / "fig1_decay_oscillation.png")
    if results:
        plot_fig3_summary(runs, results, rows, out / "fig3_correlations.png")
        figures.append("fig3_correlations.png")
    summary = {"runs": rows, "groups": _group_rows(rows), "early_fraction": early_fraction,
               "max_points": max_points, "skip_first": skip_first, "reference_seed": REFERENCE_SEED}
    (out / "summary.json").write_text(json.dumps(nan_to_none(summary), indent=2) + "\n")
    # only this analysis's figures: an earlier diagnose into the same folder may have left others
    (out / "summary.md").write_text(summary_markdown(summary, sorted(figures)))
    return summary


GROUP_KEYS = ("decay", "oscillation", "spread", "offset_share_first", "offset_share", "target_spread",
              "probe_decay", "fig3_pearson_pixels", "fig3_pearson_reference",
              "probe_pearson_pixels_last", "probe_pearson_reference_last", "probe_pearson_reference_mean")


def _group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["game"], row["label"]), []).append(row)
    out = []
    for (game, label), members in groups.items():
        entry: dict[str, Any] = {"game": game, "label": label, "seeds": [m["seed"] for m in members]}
        for key in GROUP_KEYS:
            per_seed = np.array([m[key] for m in members], dtype=np.float64)
            values = per_seed[np.isfinite(per_seed)]
            entry[key] = float(values.mean()) if len(values) else math.nan
            entry[key + "_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            entry[key + "_per_seed"] = per_seed.tolist()  # in seed order, NaN where a seed has none
        for name in ("pixels", "reference"):  # undefined for the group when it is for every seed
            reasons = [m[f"fig3_undefined_{name}"] for m in members]
            entry[f"fig3_undefined_{name}"] = reasons[0] if all(reasons) else None
        out.append(entry)
    return out


def measures_header(summary: dict[str, Any]) -> list[str]:
    """The two paragraphs at the top of ``summary.md`` that define every measure its tables show.

    The windows are the summary's own: decay's ``early_fraction``, Fig. 3's ``max_points`` and ``skip_first``.
    Oscillation's moving average is 10% of the iterations whatever ``--early-fraction`` is
    (:func:`oscillation_cv`'s default), and the late values are medians over the second half of training.

    Example:
        >>> header = measures_header({"early_fraction": 0.2, "max_points": 50, "skip_first": 2})
        >>> "mean r over the last 20% of iterations / over the first 20%" in header[0]
        True
        >>> "up to 50 evenly spaced iterations after iteration 2" in header[-1]
        True
    """
    window = f"{summary['early_fraction']:.0%}"
    after = f" after iteration {summary['skip_first']}" if summary["skip_first"] else ""
    return [
        "Measures of r, the mean raw intrinsic reward of each iteration's rollout: **decay** = mean r over the last "
        f"{window} of iterations / over the first {window}; **oscillation** = sd of r around its centred moving "
        "average (10% of the iterations long) / mean r, over the second half of training; **spread** = median over "
        "the second half of the within-rollout sd / mean; **offset share** = the share of a rollout's mean reward "
        "that is one constant, the same for all its states (`intrinsic/offset_share`), at the first iteration → its "
        "median over the second half of training; **target spread** = the target's spread across states over its "
        "mean's norm, median over the second half; **probe decay** = decay of the mean reward on the fixed probe "
        "states.",
        "",
        "**Fig. 3 r** = Pearson r (Spearman in brackets) between how far apart the intrinsic rewards of the frames "
        "kept at iterations i and j are and how far apart the frames are (pixels, or a fixed random reference "
        "embedding), over the pairs of up to "
        f"{summary['max_points']} evenly spaced iterations{after}; **probe r** = the same over the probe states at "
        "the last probe evaluation. Definitions: docs/analysis.md.",
    ]


def summary_markdown(summary: dict[str, Any], figures: list[str]) -> str:
    """The markdown version of a diagnose summary."""
    lines = ["# Intrinsic-reward diagnostics (`prend diagnose`)", "", *measures_header(summary),
             "", "## Groups (every seed's value and their mean below 5 seeds; mean ± sd from 5)", "", SEED_RULE, "",
             "| game | group | seeds | decay | oscillation | spread | offset share (first → late) | target spread "
             "| probe decay | Fig. 3 r (pixels) | Fig. 3 r (reference) | probe r (reference, last) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in summary["groups"]:
        def cell(key: str, g: dict[str, Any] = g) -> str:
            per_seed = g.get(key + "_per_seed")
            if per_seed is None:  # a summary.json written before the per-seed values were kept
                sd = g.get(key + "_sd")
                return fmt(g[key]) + (f" ± {fmt(sd, 2)}" if sd is not None and np.isfinite(sd) else "")
            return seed_cell([math.nan if v is None else v for v in per_seed])
        lines.append(f"| {g['game']} | {g['label']} | {len(g['seeds'])} | {cell('decay')} | {cell('oscillation')} "
                     f"| {cell('spread')} | {cell('offset_share_first')} → {cell('offset_share')} "
                     f"| {cell('target_spread')} | {cell('probe_decay')} | {cell('fig3_pearson_pixels')} "
                     f"| {cell('fig3_pearson_reference')} | {cell('probe_pearson_reference_last')} |")
    lines += ["", "## Runs", "",
              "| run | iterations | frames | first r_int | last r_int | decay | oscillation | spread | offset share "
              "| Fig. 3 r pixels (Spearman) | Fig. 3 r reference (Spearman) | probe r pixels / reference (last) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["runs"]:
        lines.append(
            f"| {r['run']} | {r['iterations']} | {r['frames']} | {fmt(r['raw_first'])} | {fmt(r['raw_last'])} "
            f"| {fmt(r['decay'])} | {fmt(r['oscillation'])} | {fmt(r['spread'])} "
            f"| {fmt(r['offset_share_first'])} → {fmt(r['offset_share'])} "
            f"| {fmt(r['fig3_pearson_pixels'], 2)} ({fmt(r['fig3_spearman_pixels'], 2)}) "
            f"| {fmt(r['fig3_pearson_reference'], 2)} ({fmt(r['fig3_spearman_reference'], 2)}) "
            f"| {fmt(r['probe_pearson_pixels_last'], 2)} / {fmt(r['probe_pearson_reference_last'], 2)} |")
    undefined = [f"- {r['run']}: {fig3_text(r)}" for r in summary["runs"]
                 if r.get("fig3_undefined_pixels") or r.get("fig3_undefined_reference")]
    if undefined:
        lines += ["", "Fig. 3 r is undefined (–; null in summary.json) for:", ""] + undefined
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def default_out(paths: list[Path]) -> Path:
    """Where ``prend diagnose`` writes by default: RUN_DIR/diagnose, or <common parent>/diagnose."""
    if len(paths) == 1:
        return Path(paths[0]) / "diagnose"
    return Path(os.path.commonpath([Path(p).resolve().parent for p in paths])) / "diagnose"
