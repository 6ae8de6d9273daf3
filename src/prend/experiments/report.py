"""``prend report SWEEP_DIR``: score curves, tables and aggregate statistics of a sweep, as markdown and PNGs.

Writes into the sweep directory:

- ``fig2_scores.png``: per game, the score (mean of the last 100 finished games, ``charts/score_mean_100``)
  against emulator frames, mean over seeds with a Student-t 95% CI band, one line per group (Fig. 2);
- ``hns_aggregates.png``: IQM, mean and median of the final human-normalised score across games, with 95%
  stratified-bootstrap CIs (rliable's protocol);
- ``intrinsic_reward.png``: the rollout-mean and probe-set raw intrinsic reward (Fig. 1, see ``prend diagnose``);
- ``report.md`` (tables: runs, final score, area under the curve, score at fixed frame budgets,
  human-normalised scores, aggregates, intrinsic-reward decay and oscillation, and the ``prend eval`` scores of
  runs that have them) and ``report.json`` (the same
  numbers).

Definitions are in ``docs/analysis.md``.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from prend.config import EnvConfig, RunConfig
from prend.errors import PrendError
from prend.experiments.diagnose import fig1_metrics, fmt, nan_to_none
from prend.experiments.evaluate import EVAL_FILES, read_eval
from prend.experiments.figures import add_legend, method_colors, new_figure, plot_fig1
from prend.experiments.published import published_at, published_curves, published_source
from prend.experiments.runs import Run, find_runs, group_runs, method_order
from prend.experiments.scores import SCORE_SOURCE, human_normalized, reference_scores
from prend.experiments.stats import AGGREGATES, align_curves, interval_estimate, iqm, normalized_auc, seed_interval
from prend.rundir import FRAMES, GLOBAL_STEP, SCORE, read_sweep_manifest


@dataclass
class GroupScores:
    """The score numbers of one (game, group)."""

    game: str
    label: str
    seeds: list[int]
    frames: list[int]
    final: list[float]
    """Per seed: the score at the run's last iteration."""
    auc: list[float]
    """Per seed: area under score-vs-frames divided by the frame span (the average score over training)."""
    hns: list[float]
    """Per seed: the final score, human-normalised."""


def final_score(run: Run) -> float:
    """The score at a run's last iteration (NaN if no game has ended yet)."""
    return float(run.series(SCORE)[-1])


def run_auc(run: Run) -> float:
    """Normalised area under a run's score curve (see :func:`~prend.experiments.stats.normalized_auc`)."""
    return normalized_auc(run.series(FRAMES), run.series(SCORE))


BUDGET_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
"""Default frame budgets of the budget table, as fractions of the shortest run of a game (rounded down)."""


def score_at(run: Run, frames: int) -> float:
    """The score of the first record at or past ``frames`` emulator frames.

    NaN if the run has not got there, or no game had ended by then.

    Example:
        >>> from types import SimpleNamespace
        >>> run = SimpleNamespace(metrics=[{FRAMES: 100, SCORE: math.nan}, {FRAMES: 200, SCORE: 3.0},
        ...                                {FRAMES: 300, SCORE: 5.0}])
        >>> score_at(run, 100), score_at(run, 150), score_at(run, 300), score_at(run, 301)
        (nan, 3.0, 5.0, nan)
    """
    for record in run.metrics:
        if record.get(FRAMES, 0) >= frames:
            return float(record.get(SCORE, math.nan))
    return math.nan


def budget_marks(final_frames: list[int], fractions: tuple[float, ...] = BUDGET_FRACTIONS) -> list[int]:
    """Frame budgets at ``fractions`` of the shortest run, each rounded down to three significant digits.

    Rounding down keeps every mark within every run (the shortest run's last record reaches it) and gives
    the round numbers papers quote.

    Example:
        >>> budget_marks([2_002_944, 2_002_944])
        [200000, 500000, 1000000, 2000000]
        >>> budget_marks([196_608, 400_000])
        [19600, 49100, 98300, 196000]
    """
    shortest = min((f for f in final_frames if f > 0), default=0)  # a run yet to log frames sets no budget
    marks = []
    for fraction in fractions:
        value = int(fraction * shortest)
        if value <= 0:
            continue
        unit = 10 ** max(0, len(str(value)) - 3)
        marks.append(value // unit * unit)
    return sorted(set(marks))


def budget_scores(runs: list[Run], at_frames: list[int] | None = None,
                  published: str = "none") -> list[dict[str, Any]]:
    """Per game: the frame budgets, and per group the seeds' scores at each (the table "score at budgets").

    ``at_frames`` fixes the budgets for every game; by default they are :func:`budget_marks` of the game's runs.
    ``published="dopamine"`` adds Dopamine's published agents at the same budgets
    (:func:`~prend.experiments.published.published_at`).
    """
    out = []
    groups = group_runs(runs)
    for game in sorted({g for g, _ in groups}):
        members_by_label = {label: members for (g, label), members in groups.items() if g == game}
        marks = sorted(at_frames) if at_frames else budget_marks([r.frames for ms in members_by_label.values()
                                                                  for r in ms])
        out.append({"game": game, "frames": marks, "groups": [
            {"label": label, "seeds": [r.seed for r in members],
             "scores": [[score_at(r, mark) for r in members] for mark in marks]}
            for label, members in members_by_label.items()],
            "published": [{"agent": c.agent, "seeds": c.seeds, "scores": [published_at(c, mark) for mark in marks]}
                          for c in published_curves(game, published)]})
    return out


def group_scores(runs: list[Run]) -> list[GroupScores]:
    """Per (game, group): the seeds' final scores, areas and human-normalised final scores."""
    out = []
    for (game, label), members in group_runs(runs).items():
        finals = [final_score(r) for r in members]
        out.append(GroupScores(game, label, [r.seed for r in members],
                               [r.frames for r in members], finals,
                               [run_auc(r) for r in members], [human_normalized(game, f) for f in finals]))
    return out


def aggregates(scores: list[GroupScores], reps: int = 50_000, seed: int = 0) -> list[dict[str, Any]]:
    """Per group label: IQM, mean and median of the final HNS across games, with stratified-bootstrap CIs."""
    rows = []
    for label in method_order([s.label for s in scores]):
        per_game = {s.game: np.array(s.hns, dtype=np.float64) for s in scores if s.label == label}
        usable = {g: v[np.isfinite(v)] for g, v in per_game.items() if np.isfinite(v).any()}
        row: dict[str, Any] = {"label": label, "games": sorted(usable),
                               "runs": int(sum(len(v) for v in usable.values())),
                               "no_reference": sorted(g for g in per_game if reference_scores(g) is None),
                               "no_score": sorted(g for g in set(per_game) - set(usable)
                                                  if reference_scores(g) is not None)}
        for name, statistic in AGGREGATES.items():
            point, low, high = interval_estimate(list(usable.values()), statistic, reps=reps, seed=seed) \
                if usable else (math.nan, math.nan, math.nan)
            row[name] = {"value": point, "low": low, "high": high}
        rows.append(row)
    return rows


def evaluation_scores(runs: list[Run], reps: int = 50_000, seed: int = 0) -> list[dict[str, Any]]:
    """Per evaluation setting and (game, group): the seeds' ``prend eval`` scores, their IQM and bootstrap CI.

    A seed's score is the mean of its evaluation games; the IQM over seeds has a 95% percentile-bootstrap CI,
    and so has the IQM of their human-normalised scores (NaN for a game without reference scores). Only
    complete evaluations count (an interrupted ``prend eval`` is left out until it is finished).
    """
    rows = []
    for name in EVAL_FILES:
        for (game, label), members in group_runs(runs).items():
            done = [(r, rec) for r in members if (rec := read_eval(r.path, name)) and rec.get("complete")]
            if not done:
                continue
            means = np.array([rec["statistics"]["mean"] for _, rec in done], dtype=np.float64)
            hns = np.array([human_normalized(game, m) for m in means])
            point, low, high = interval_estimate([means], iqm, reps=reps, seed=seed)
            h_point, h_low, h_high = interval_estimate([hns], iqm, reps=reps, seed=seed)
            rows.append({"setting": name, "game": game, "label": label, "seeds": [r.seed for r, _ in done],
                         "scores": means.tolist(), "games": [rec["statistics"]["games"] for _, rec in done],
                         "checkpoint_steps": [rec["checkpoint_step"] for _, rec in done],
                         "iqm": {"value": point, "low": low, "high": high},
                         "hns": hns.tolist(), "hns_iqm": {"value": h_point, "low": h_low, "high": h_high}})
    return rows


def _eval_markdown(rows: list[dict[str, Any]], reps: int) -> list[str]:
    if not rows:
        return []
    lines = ["", "## Evaluation scores (`prend eval`)", "",
             "Each seed's score is the mean over its evaluation games; across seeds: mean ± sd, and the IQM with a "
             f"95% percentile-bootstrap CI ({reps} resamples). HNS as above; – for a game without reference scores.",
             "", "| setting | game | group | seeds | games per seed | score (mean ± sd) | IQM [95% CI] | per seed "
             "| HNS IQM [95% CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        per_seed = ", ".join(f"s{seed}: {fmt(v)}" for seed, v in zip(row["seeds"], row["scores"], strict=True))
        iq, hq = row["iqm"], row["hns_iqm"]
        hns = f"{fmt(hq['value'])} [{fmt(hq['low'])}, {fmt(hq['high'])}]" if np.isfinite(hq["value"]) else "–"
        lines.append(f"| {row['setting']} | {row['game']} | {row['label']} | {len(row['seeds'])} "
                     f"| {min(row['games'])} | {_mean_sd(row['scores'])} "
                     f"| {fmt(iq['value'])} [{fmt(iq['low'])}, {fmt(iq['high'])}] | {per_seed} | {hns} |")
    return lines


# -------------------------------------------------------------------------------------------- plots
PUBLISHED_STYLES = ("--", "-.", (0, (4, 1, 1, 1, 1, 1)))
"""Line styles of the published agents' curves (grey, so prend's groups keep the colours)."""


def plot_scores(runs: list[Run], path: Path, published: str = "none") -> Figure:
    """Fig. 2: score against frames per game; seed mean with a 95% t-interval band per group.

    ``published="dopamine"`` draws Dopamine's published agents on the same axes, in grey, at the iterations
    that end within the longest run's frames.

    The figure says on itself what the band is and, when the runs are shorter than the default budget, that
    they are short (with their frame budget), so a copied PNG still explains itself.
    """
    groups = group_runs(runs)
    games = sorted({g for g, _ in groups})
    colors = method_colors([label for _, label in groups])
    cols = min(len(games), 3)
    rows = -(-len(games) // cols)
    fig, axes = new_figure(rows, cols, width=5.2, height=3.8 if published == "none" else 6.0)  # room: legend below
    for i, game in enumerate(games):
        ax = axes[i // cols, i % cols]
        banded = False
        for (g, label), members in groups.items():
            if g != game:
                continue
            grid, values = align_curves([r.series(FRAMES) for r in members],
                                        [r.series(SCORE) for r in members])
            mean, half = seed_interval(values)
            ax.plot(grid, mean, color=colors[label], linewidth=1.8, label=f"{label} (n={len(members)})")
            if np.isfinite(half).any():
                ax.fill_between(grid, mean - half, mean + half, color=colors[label], alpha=0.18, linewidth=0)
                banded = True
        longest = max(r.frames for (g, _), members in groups.items() if g == game for r in members)
        curves = published_curves(game, published)
        for style, curve in zip(PUBLISHED_STYLES, curves, strict=False):
            shown = [i for i, end in enumerate(curve.frames) if end <= 1.05 * longest]  # within the runs' span
            ax.plot([curve.frames[i] for i in shown], [curve.scores[i] for i in shown], color="dimgrey",
                    linestyle=style, marker=".", markersize=4, linewidth=1.1,
                    label=f"{curve.agent} (published, {curve.seeds} seeds)")
        ref = reference_scores(game)
        if ref is not None:
            ax.axhline(ref[0], color="grey", linestyle=":", linewidth=1, label="random play")
        if banded:  # an entry of the one legend: a second legend box can land on top of the first
            ax.fill_between([], [], [], color="grey", alpha=0.3, linewidth=0, label="shaded: 95% CI of the seed mean")
        ax.set_title(game)
        ax.set_xlabel("emulator frames")
        ax.set_ylabel("score (mean of last 100 games)")
        # "150000175000200000": plain tick labels run together on a narrow panel; 50k, 100k, ... do not.
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        add_legend(ax, fontsize=8, below=bool(curves))  # inside, a legend can sit on a published curve
    for j in range(len(games), rows * cols):
        axes[j // cols, j % cols].set_visible(False)
    # ~13 characters of 9-point text per inch: wrapped to the figure, the caption is never cut off at its sides.
    chars = int(13 * 5.2 * cols)
    fig.suptitle("\n".join(textwrap.fill(line, chars) for line in fig2_caption(runs).splitlines()), fontsize=9)
    fig.savefig(path, dpi=110)
    return fig


def fig2_caption(runs: list[Run]) -> str:
    """What Fig. 2 shows, on the figure: lines, band and, for short runs, their frame budget.

    Example:
        >>> from types import SimpleNamespace
        >>> short = SimpleNamespace(metrics=[{FRAMES: 196_608}])
        >>> print(fig2_caption([short]))
        Score vs emulator frames: line = mean over seeds, shaded = Student-t 95% CI of that mean.
        Short CPU-scale runs: up to 196,608 frames (0.49% of the default 40,000,000 frames = 10M agent steps).
        >>> "Short" in fig2_caption([SimpleNamespace(metrics=[{FRAMES: 40_000_000}])])
        False
    """
    text = "Score vs emulator frames: line = mean over seeds, shaded = Student-t 95% CI of that mean."
    default_frames = RunConfig().total_steps * EnvConfig().frame_skip
    frames = max((int(r.metrics[-1].get(FRAMES, 0)) for r in runs if r.metrics), default=0)
    if 0 < frames < default_frames:
        text += (f"\nShort CPU-scale runs: up to {frames:,} frames ({100 * frames / default_frames:.2g}% of the "
                 f"default {default_frames:,} frames = {RunConfig().total_steps // 1_000_000}M agent steps).")
    return text


def plot_aggregates(rows: list[dict[str, Any]], path: Path) -> None:
    """rliable-style interval plot: one panel per aggregate, a bar per group from CI low to high."""
    colors = method_colors([r["label"] for r in rows])
    fig, axes = new_figure(1, len(AGGREGATES), width=3.6, height=0.5 + 0.45 * max(2, len(rows)))
    for ax, name in zip(axes[0], AGGREGATES, strict=True):
        for i, row in enumerate(rows):
            est = row[name]
            if not np.isfinite(est["value"]):
                continue
            ax.barh(i, est["high"] - est["low"], left=est["low"], height=0.6, color=colors[row["label"]], alpha=0.6)
            ax.plot([est["value"]] * 2, [i - 0.3, i + 0.3], color="black", linewidth=1.5)
        ax.set_yticks(range(len(rows)), [r["label"] for r in rows] if name == "IQM" else [""] * len(rows))
        ax.set_title(name)
        ax.set_xlabel("human-normalised score")
        ax.grid(alpha=0.3, axis="x")
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------------------------------- report
def _mean_sd(values: list[float], digits: int = 3) -> str:
    v = np.array(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return "–"
    return fmt(float(v.mean()), digits) + (f" ± {fmt(float(v.std(ddof=1)), 2)}" if len(v) > 1 else "")


def _ci(values: list[float]) -> str:
    mean, half = seed_interval(np.array(values, dtype=np.float64)[:, None])
    return "–" if not np.isfinite(half[0]) else f"[{fmt(mean[0] - half[0])}, {fmt(mean[0] + half[0])}]"


def _status(run: Run) -> str:
    if run.metrics[-1].get(GLOBAL_STEP, 0) >= run.total_steps:
        return "finished"
    state = (run.rundir.sweep_status() or {}).get("state")
    if state == "running" and run.rundir.holder() is None:
        return "stopped (partial)"  # its sweep was killed outright (a machine's shutdown): nothing trains it
    return {"running": "running", "failed": "failed (partial)", "interrupted": "interrupted (partial)"}.get(
        state, "partial")


def write_report(sweep_dir: Path, reps: int = 50_000, seed: int = 0, at_frames: list[int] | None = None,
                 published: str = "none") -> Path:
    """Write ``report.md``, ``report.json`` and the PNGs into ``sweep_dir``; returns the markdown's path.

    ``at_frames``: the frame budgets of the "score at budgets" table (default: :data:`BUDGET_FRACTIONS` of each
    game's shortest run). ``published``: ``dopamine`` adds Dopamine's published learning curves to Fig. 2 and
    the budget table (:mod:`prend.experiments.published`).
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise PrendError(f"'{sweep_dir}' is not a directory", "pass the --out directory of `prend sweep`")
    if reps < 100:
        raise PrendError(f"--reps must be >= 100, got {reps}", "pass e.g. --reps 50000")
    if at_frames is not None and any(f <= 0 for f in at_frames):
        raise PrendError(f"--at-frames must be positive frame counts, got {list(at_frames)}",
                         "pass e.g. --at-frames 400000 2000000")
    citation = published_source(published)  # checks the value before any work
    runs = find_runs([sweep_dir], allow_empty=True)
    scores = group_scores(runs)
    agg = aggregates(scores, reps=reps, seed=seed)
    plot_scores(runs, sweep_dir / "fig2_scores.png", published)
    figures = ["fig2_scores.png"]
    if any(np.isfinite(r[name]["value"]) for r in agg for name in AGGREGATES):
        plot_aggregates(agg, sweep_dir / "hns_aggregates.png")
        figures.append("hns_aggregates.png")
    intrinsic_runs = [r for r in runs if r.declaration.intrinsic_head]
    fig1 = []
    if intrinsic_runs:
        plot_fig1(intrinsic_runs, sweep_dir / "intrinsic_reward.png")
        figures.append("intrinsic_reward.png")
        for (game, label), members in group_runs(intrinsic_runs).items():
            metrics = [fig1_metrics(r) for r in members]
            fig1.append({"game": game, "label": label,
                         **{k: [m[k] for m in metrics] for k in ("decay", "oscillation", "spread", "probe_decay")}})
    failed = _failed_from_manifest(sweep_dir, {str(r.path.resolve()) for r in runs})
    data = {
        "sweep": str(sweep_dir), "score": SCORE, "reference_scores": SCORE_SOURCE, "bootstrap_reps": reps,
        "runs": [{"run": r.name, "path": str(r.path), "game": r.game_key, "label": r.label, "seed": r.seed,
                  "frames": r.frames, "status": _status(r),
                  "final": final_score(r), "auc": run_auc(r), "hns": human_normalized(r.game_key, final_score(r))}
                 for r in runs],
        "groups": [vars(s) for s in scores], "at_frames": budget_scores(runs, at_frames, published),
        "published": citation,
        "aggregates": agg, "intrinsic": fig1, "failed": failed,
        "evaluation": evaluation_scores(runs, reps=reps, seed=seed),
    }
    (sweep_dir / "report.json").write_text(json.dumps(nan_to_none(data), indent=2) + "\n")
    path = sweep_dir / "report.md"
    path.write_text(_markdown(data, scores, agg, fig1, figures))
    return path


def _failed_from_manifest(sweep_dir: Path, seen: set[str]) -> list[dict[str, Any]]:
    """Runs the sweep manifest lists as failed that have no metrics (so no other table shows them)."""
    manifest = read_sweep_manifest(sweep_dir) or {}
    return [{"name": r["name"], "state": r.get("state"), "log": r.get("log"), "error": r.get("error")}
            for r in manifest.get("runs", [])
            if r.get("state") in ("failed", "conflict") and str(Path(r["run_dir"]).resolve()) not in seen]


def _markdown(data: dict[str, Any], scores: list[GroupScores], agg: list[dict[str, Any]], fig1: list[dict[str, Any]],
              figures: list[str]) -> str:
    runs = data["runs"]
    lines = [f"# Sweep report: `{data['sweep']}`", "",
             f"{len(runs)} runs, {len({r['game'] for r in runs})} games, groups: "
             f"{', '.join(method_order([r['label'] for r in runs]))}. Score: `{SCORE}` (mean raw game score of "
             "the last 100 finished games). Definitions: docs/analysis.md.", ""]
    lines += ["## Final score (mean ± sd over seeds; 95% t-interval of the mean)", "",
              "| game | group | seeds | frames | final score | 95% CI | per seed | AUC (mean score over training) |",
              "|---|---|---|---|---|---|---|---|"]
    for s in scores:
        per_seed = ", ".join(f"s{seed}: {fmt(v)}" for seed, v in zip(s.seeds, s.final, strict=True))
        lines.append(f"| {s.game} | {s.label} | {len(s.seeds)} | {min(s.frames)} | {_mean_sd(s.final)} "
                     f"| {_ci(s.final)} | {per_seed} | {_mean_sd(s.auc)} |")
    lines += ["", "## Score at fixed frame budgets (mean ± sd over seeds)", "",
              "The running score (mean of the last 100 games) at the first iteration at or past each budget; "
              "– where a run had not got there or no game had ended.", ""]
    for table in data["at_frames"]:
        lines += [f"| {table['game']} | seeds | " + " | ".join(f"{mark:,} frames" for mark in table["frames"]) + " |",
                  "|---|---|" + "---|" * len(table["frames"])]
        for group in table["groups"]:
            lines.append(f"| {group['label']} | {len(group['seeds'])} | "
                         + " | ".join(_mean_sd(values) for values in group["scores"]) + " |")
        for curve in table.get("published", []):
            lines.append(f"| {curve['agent']} (published, mean of seeds) | {curve['seeds']} | "
                         + " | ".join(fmt(value) for value in curve["scores"]) + " |")
        lines.append("")
    if data.get("published"):
        lines += [f"Published rows: {data['published']}; each is the mean training return of the 1M-frame "
                  "iteration that ends at or past the budget (sticky actions 0.25; value-based agents).", ""]
    lines += ["## Human-normalised final score", "",
              f"HNS = (score - random) / (human - random); reference scores: {SCORE_SOURCE}.", "",
              "| game | random | human | " + " | ".join(method_order([s.label for s in scores])) + " |",
              "|---|---|---|" + "---|" * len(method_order([s.label for s in scores]))]
    labels = method_order([s.label for s in scores])
    for game in sorted({s.game for s in scores}):
        ref = reference_scores(game)
        cells = []
        for label in labels:
            match = [s for s in scores if s.game == game and s.label == label]
            cells.append(_mean_sd(match[0].hns) if match else "–")
        lines.append(f"| {game} | {ref[0] if ref else '–'} | {ref[1] if ref else '–'} | " + " | ".join(cells) + " |")
    lines += ["", f"## Aggregates across games (final HNS; 95% stratified-bootstrap CI, {data['bootstrap_reps']} "
              "resamples)", "", "| group | games | runs | IQM | mean | median |", "|---|---|---|---|---|---|"]
    for row in agg:
        cells = [f"{fmt(row[n]['value'])} [{fmt(row[n]['low'])}, {fmt(row[n]['high'])}]" for n in AGGREGATES]
        note = "".join(f" ({what}: {', '.join(row[key])})" for key, what in
                       (("no_reference", "no reference scores"), ("no_score", "no finished game yet")) if row[key])
        lines.append(f"| {row['label']} | {', '.join(row['games']) or '–'}{note} | {row['runs']} | " + " | ".join(cells)
                     + " |")
    if fig1:
        lines += ["", "## Intrinsic reward (Fig. 1 statistics; Fig. 3: `prend diagnose`)", "",
                  "| game | group | decay (late/early) | oscillation (detrended CV) | spread (within-rollout CV) "
                  "| probe-set decay |", "|---|---|---|---|---|---|"]
        for row in fig1:
            lines.append(f"| {row['game']} | {row['label']} | {_mean_sd(row['decay'])} "
                         f"| {_mean_sd(row['oscillation'])} | {_mean_sd(row['spread'])} "
                         f"| {_mean_sd(row['probe_decay'])} |")
    lines += _eval_markdown(data["evaluation"], data["bootstrap_reps"])
    lines += ["", "## Runs", "", "| run | status | frames | final score | AUC | HNS |", "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['status']} | {r['frames']} | {fmt(r['final'])} | {fmt(r['auc'])} "
                     f"| {fmt(r['hns'])} |")
    for f in data["failed"]:
        lines.append(f"| {f['name']} | {f['state']} (log: `{f['log']}`) | – | – | – | – |")
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"
