"""``prend report SWEEP_DIR``: score curves, tables and aggregate statistics of a sweep, as markdown and PNGs.

Writes into the sweep directory:

- ``fig2_scores.png``: per game, the score (mean of the last 100 finished games, ``charts/score_mean_100``)
  against emulator frames, one colour per group: the mean over seeds, with every seed's curve drawn thin below
  5 seeds and a Student-t 95% CI band of the mean from 5 (Fig. 2, :mod:`~prend.experiments.report_figures`);
- ``hns_aggregates.png``: IQM, mean and median of the final human-normalised score across games, with 95%
  stratified-bootstrap CIs (rliable's protocol);
- ``intrinsic_reward.png``: the rollout-mean and probe-set raw intrinsic reward (Fig. 1, see ``prend diagnose``);
- ``report.md`` (tables, with every seed's value below 5 seeds: runs, final score, area under the curve, score
  at fixed frame budgets, human-normalised scores, aggregates, intrinsic-reward decay and oscillation, and the
  ``prend eval`` scores of runs that have them) and ``report.json`` (the same numbers).

Definitions are in ``docs/analysis.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prend.errors import PrendError
from prend.experiments.cells import SEED_RULE, estimate_cell, fmt, mean_sd_cell, nan_to_none, seed_cell, t_interval_cell
from prend.experiments.diagnose import fig1_metrics
from prend.experiments.evaluate import EVAL_FILES, random_play, read_eval
from prend.experiments.figures import plot_fig1
from prend.experiments.published import published_at, published_curves, published_source
from prend.experiments.report_figures import plot_aggregates, plot_final_scores, plot_scores
from prend.experiments.runs import Run, final_score, find_runs, group_runs, method_order, repeated_seeds
from prend.experiments.scores import SCORE_SOURCE, human_normalized, reference_scores
from prend.experiments.stats import (
    AGGREGATES,
    MIN_SEEDS_FOR_INTERVAL,
    interval_estimate,
    iqm,
    normalized_auc,
)
from prend.rundir import FRAMES, GLOBAL_STEP, SCORE, RunDir, read_sweep_manifest


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
    """Per group label: IQM, mean and median of the final HNS across games, with stratified-bootstrap CIs.

    Each row also keeps every run's HNS (``points``) and the fewest seeds any of its games has (``min_seeds``):
    below 5 the interval is not shown (the seed rule), the points are.
    """
    rows = []
    for label in method_order([s.label for s in scores]):
        members = [s for s in scores if s.label == label]
        per_game = {s.game: np.array(s.hns, dtype=np.float64) for s in members}
        usable = {g: v[np.isfinite(v)] for g, v in per_game.items() if np.isfinite(v).any()}
        points = [{"game": s.game, "seed": seed, "hns": float(h)} for s in members if s.game in usable
                  for seed, h in zip(s.seeds, s.hns, strict=True) if np.isfinite(h)]
        row: dict[str, Any] = {"label": label, "games": sorted(usable),
                               "runs": int(sum(len(v) for v in usable.values())),
                               "min_seeds": min((len(v) for v in usable.values()), default=0),
                               "points": points,
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


def not_evaluated(runs: list[Run]) -> list[dict[str, Any]]:
    """The runs without a complete evaluation under the default setting, and whether each still can have one.

    A run whose checkpoint was not kept (results committed without them) cannot be evaluated any more; the
    report says so instead of leaving the reader to wonder why a method has no evaluation row.
    """
    default = EVAL_FILES[0]
    return [{"run": r.name, "path": str(r.path), "checkpoint": RunDir(r.path).checkpoint_path.is_file()}
            for r in runs if not ((rec := read_eval(r.path, default)) and rec.get("complete"))]


def _eval_markdown(rows: list[dict[str, Any]], reps: int, missing: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["", "## Evaluation scores (`prend eval`)", "",
             "Each seed's score is the mean over its evaluation games; across seeds: the seeds' values as in the "
             f"tables above, and the IQM with a 95% percentile-bootstrap CI ({reps} resamples; from "
             f"{MIN_SEEDS_FOR_INTERVAL} seeds). HNS as above; – for a game without reference scores.",
             "", "| setting | game | group | seeds | games per seed | score | IQM [95% CI] | per seed "
             "| HNS IQM [95% CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        per_seed = ", ".join(f"s{seed}: {fmt(v)}" for seed, v in zip(row["seeds"], row["scores"], strict=True))
        n = len(row["seeds"])
        hq = row["hns_iqm"]
        hns = estimate_cell(hq, n) if np.isfinite(hq["value"]) else "–"
        lines.append(f"| {row['setting']} | {row['game']} | {row['label']} | {n} "
                     f"| {min(row['games'])} | {seed_cell(row['scores'])} "
                     f"| {estimate_cell(row['iqm'], n)} | {per_seed} | {hns} |")
    if missing:
        can = [m["run"] for m in missing if m["checkpoint"]]
        cannot = [m["run"] for m in missing if not m["checkpoint"]]
        lines += ["", f"Not evaluated ({EVAL_FILES[0]}): {len(missing)} of the runs."]
        if can:
            lines.append(f"- with a checkpoint (`prend eval RUN_DIR` evaluates them): {', '.join(can)}")
        if cannot:
            lines.append(f"- without one (not kept), so they cannot be evaluated: {', '.join(cannot)}")
    return lines


# ------------------------------------------------------------------------------------------- report
def _status(run: Run) -> str:
    if run.metrics[-1].get(GLOBAL_STEP, 0) >= run.total_steps:
        return "finished"
    state = (run.rundir.sweep_status() or {}).get("state")
    if state == "running" and run.rundir.holder() is None:
        return "stopped (partial)"  # its sweep was killed outright (a machine's shutdown): nothing trains it
    return {"running": "running", "failed": "failed (partial)", "interrupted": "interrupted (partial)"}.get(
        state, "partial")


def write_report(sweep_dir: Path | list[Path], reps: int = 50_000, seed: int = 0, at_frames: list[int] | None = None,
                 published: str = "none", out: Path | None = None, echo: Callable[[str], None] = print) -> Path:
    """Write ``report.md``, ``report.json`` and the PNGs; returns the markdown's path.

    ``sweep_dir``: a sweep directory (or any directory holding run directories, or one run directory), or a
    list of them, whose runs are reported together, e.g. a new sweep beside committed runs of other methods.
    ``out``: where the report goes (default: ``sweep_dir`` when it is one directory; required for a list).
    ``at_frames``: the frame budgets of the "score at budgets" table (default: :data:`BUDGET_FRACTIONS` of each
    game's shortest run). ``published``: ``dopamine`` adds Dopamine's published learning curves to Fig. 2 and
    the budget table (:mod:`prend.experiments.published`). ``echo`` gets a note for each seed that two runs of
    one group trained (each counts as a sample).
    """
    paths = [Path(p) for p in sweep_dir] if isinstance(sweep_dir, (list, tuple)) else [Path(sweep_dir)]
    if not paths:
        raise PrendError("no directories given", "pass a sweep directory, e.g. prend report runs/my-sweep")
    for path in paths:
        if not path.is_dir():
            raise PrendError(f"'{path}' is not a directory", "pass the --out directory of `prend sweep`")
    if out is None:
        if len(paths) > 1:
            raise PrendError(f"{len(paths)} directories given and no --out",
                             "pass --out DIR: where the report of their runs together goes")
        out = paths[0]
    out = Path(out)
    if reps < 100:
        raise PrendError(f"--reps must be >= 100, got {reps}", "pass e.g. --reps 50000")
    if at_frames is not None and any(f <= 0 for f in at_frames):
        raise PrendError(f"--at-frames must be positive frame counts, got {list(at_frames)}",
                         "pass e.g. --at-frames 400000 2000000")
    citation = published_source(published)  # checks the value before any work
    runs = find_runs(paths, allow_empty=True)
    out.mkdir(parents=True, exist_ok=True)
    scores = group_scores(runs)
    agg = aggregates(scores, reps=reps, seed=seed)
    evaluation = evaluation_scores(runs, reps=reps, seed=seed)
    plot_scores(runs, out / "fig2_scores.png", published)
    plot_final_scores(runs, evaluation, out / "final_scores.png")
    figures = ["fig2_scores.png", "final_scores.png"]
    if any(np.isfinite(r[name]["value"]) for r in agg for name in AGGREGATES):
        plot_aggregates(agg, out / "hns_aggregates.png")
        figures.append("hns_aggregates.png")
    intrinsic_runs = [r for r in runs if r.declaration.intrinsic_head]
    fig1 = []
    if intrinsic_runs:
        plot_fig1(intrinsic_runs, out / "intrinsic_reward.png")
        figures.append("intrinsic_reward.png")
        for (game, label), members in group_runs(intrinsic_runs).items():
            metrics = [fig1_metrics(r) for r in members]
            fig1.append({"game": game, "label": label,
                         **{k: [m[k] for m in metrics] for k in ("decay", "oscillation", "spread", "probe_decay")}})
    seen = {str(r.path.resolve()) for r in runs}
    failed = [row for path in paths for row in _failed_from_manifest(path, seen)]
    data = {
        "sweep": ", ".join(str(p) for p in paths), "sources": [str(p) for p in paths],
        "score": SCORE, "reference_scores": SCORE_SOURCE, "bootstrap_reps": reps,
        "seed_rule": {"min_seeds_for_interval": MIN_SEEDS_FOR_INTERVAL, "below": "every seed's value and their mean",
                      "from": "mean ± sd; Student-t 95% interval of the mean"},
        "runs": [{"run": r.name, "path": str(r.path), "game": r.game_key, "label": r.label, "seed": r.seed,
                  "frames": r.frames, "status": _status(r),
                  "final": final_score(r), "auc": run_auc(r), "hns": human_normalized(r.game_key, final_score(r))}
                 for r in runs],
        "groups": [vars(s) for s in scores], "at_frames": budget_scores(runs, at_frames, published),
        "published": citation,
        "aggregates": agg, "intrinsic": fig1, "failed": failed,
        "evaluation": evaluation, "not_evaluated": not_evaluated(runs),
        "random_play": random_play([(r.game_key, r.path) for r in runs]),
        "repeated_seeds": repeated_seeds(runs),
    }
    for repeat in data["repeated_seeds"]:
        echo(f"note: {repeat['game']} {repeat['label']}: seed {repeat['seed']} is trained by {len(repeat['paths'])} "
             f"runs ({', '.join(repeat['paths'])}); each counts as a sample of the group")
    (out / "report.json").write_text(json.dumps(nan_to_none(data), indent=2) + "\n")
    path = out / "report.md"
    path.write_text(_markdown(data, scores, agg, fig1, figures))
    return path


def _failed_from_manifest(sweep_dir: Path, seen: set[str]) -> list[dict[str, Any]]:
    """Runs the sweep manifest lists as failed that have no metrics (so no other table shows them)."""
    manifest = read_sweep_manifest(sweep_dir) or {}
    return [{"name": r["name"], "state": r.get("state"), "log": r.get("log"), "error": r.get("error")}
            for r in manifest.get("runs", [])
            if r.get("state") in ("failed", "conflict") and str(Path(r["run_dir"]).resolve()) not in seen]


def _directories(sources: list[str]) -> str:
    """The report's source directories, those in one parent named once: ``under `a/b`: `x`, `y```.

    Example:
        >>> _directories(["runs/new", "results/cpu/Boxing-rnd-s1", "results/cpu/Boxing-none-s1"])
        '`runs/new`; under `results/cpu`: `Boxing-rnd-s1`, `Boxing-none-s1`'
    """
    by_parent: dict[str, list[str]] = {}
    for source in sources:
        if not Path(source).name:  # "." or "/": no parent to name
            by_parent.setdefault(source, []).append("")
            continue
        by_parent.setdefault(str(Path(source).parent), []).append(Path(source).name)
    return "; ".join(f"`{Path(parent, names[0])}`" if len(names) == 1 else
                     f"under `{parent}`: " + ", ".join(f"`{name}`" for name in names)
                     for parent, names in by_parent.items())


def _markdown(data: dict[str, Any], scores: list[GroupScores], agg: list[dict[str, Any]], fig1: list[dict[str, Any]],
              figures: list[str]) -> str:
    runs = data["runs"]
    sources = data["sources"]
    title = f"# Sweep report: `{sources[0]}`" if len(sources) == 1 else (
        f"# Report of runs from {len(sources)} directories\n\n" + _directories(sources))
    lines = [title, "",
             f"{len(runs)} runs, {len({r['game'] for r in runs})} games, groups: "
             f"{', '.join(method_order([r['label'] for r in runs]))}. Score: `{SCORE}` (mean raw game score of "
             "the last 100 finished games). Definitions: docs/analysis.md.", "", SEED_RULE, ""]
    for repeat in data["repeated_seeds"]:
        lines += [f"**Seed {repeat['seed']} counted {len(repeat['paths'])} times** in {repeat['game']} "
                  f"{repeat['label']}: " + ", ".join(f"`{p}`" for p in repeat["paths"]) + ". Each run counts as a "
                  "sample of the group; pass one run per seed to count seeds.", ""]
    lines += [f"## Final score (per seed and their mean; from {MIN_SEEDS_FOR_INTERVAL} seeds ± sd and the 95% "
              "t-interval of the mean)", "",
              "| game | group | seeds | frames | final score | 95% CI | per seed | AUC (mean score over training) |",
              "|---|---|---|---|---|---|---|---|"]
    for s in scores:
        per_seed = ", ".join(f"s{seed}: {fmt(v)}" for seed, v in zip(s.seeds, s.final, strict=True))
        lines.append(f"| {s.game} | {s.label} | {len(s.seeds)} | {min(s.frames)} | {mean_sd_cell(s.final)} "
                     f"| {t_interval_cell(s.final)} | {per_seed} | {seed_cell(s.auc)} |")
    lines += ["", "## Score at fixed frame budgets (per seed and mean, or mean ± sd: see above)", "",
              "The running score (mean of the last 100 games) at the first iteration at or past each budget; "
              "– where a run had not got there or no game had ended.", ""]
    for table in data["at_frames"]:
        lines += [f"| {table['game']} | seeds | " + " | ".join(f"{mark:,} frames" for mark in table["frames"]) + " |",
                  "|---|---|" + "---|" * len(table["frames"])]
        for group in table["groups"]:
            lines.append(f"| {group['label']} | {len(group['seeds'])} | "
                         + " | ".join(seed_cell(values) for values in group["scores"]) + " |")
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
            cells.append(seed_cell(match[0].hns) if match else "–")
        lines.append(f"| {game} | {ref[0] if ref else '–'} | {ref[1] if ref else '–'} | " + " | ".join(cells) + " |")
    lines += ["", f"## Aggregates across games (final HNS; 95% stratified-bootstrap CI, {data['bootstrap_reps']} "
              f"resamples, where every game has {MIN_SEEDS_FOR_INTERVAL} seeds or more)", "",
              "| group | games | runs | IQM | mean | median | every run's HNS |", "|---|---|---|---|---|---|---|"]
    for row in agg:
        cells = [estimate_cell(row[n], row["min_seeds"]) for n in AGGREGATES]
        cells.append(", ".join(f"{p['game']} s{p['seed']}: {fmt(p['hns'])}" for p in row["points"])
                     if row["min_seeds"] < MIN_SEEDS_FOR_INTERVAL else "(HNS table above)")
        note = "".join(f" ({what}: {', '.join(row[key])})" for key, what in
                       (("no_reference", "no reference scores"), ("no_score", "no finished game yet")) if row[key])
        lines.append(f"| {row['label']} | {', '.join(row['games']) or '–'}{note} | {row['runs']} | " + " | ".join(cells)
                     + " |")
    if any(row["min_seeds"] < MIN_SEEDS_FOR_INTERVAL for row in agg):
        lines += ["", f"With fewer than {MIN_SEEDS_FOR_INTERVAL} seeds of a game the bootstrap would resample a "
                  "handful of runs, and its interval would be no more than the range of their HNS: such a group "
                  "shows the point estimate and every run's HNS instead (report.json keeps the interval; "
                  "`hns_aggregates.png` draws the runs as points)."]
    if fig1:
        lines += ["", "## Intrinsic reward (Fig. 1 statistics; Fig. 3: `prend diagnose`)", "",
                  "| game | group | decay (late/early) | oscillation (detrended CV) | spread (within-rollout CV) "
                  "| probe-set decay |", "|---|---|---|---|---|---|"]
        for row in fig1:
            lines.append(f"| {row['game']} | {row['label']} | {seed_cell(row['decay'])} "
                         f"| {seed_cell(row['oscillation'])} | {seed_cell(row['spread'])} "
                         f"| {seed_cell(row['probe_decay'])} |")
    lines += _eval_markdown(data["evaluation"], data["bootstrap_reps"], data["not_evaluated"])
    if data["random_play"]:
        lines += ["", "## Random play under the runs' protocol (`prend eval --policy random`)", "",
                  "Uniformly random actions, the runs' environment protocol; the published random score (DQN Zoo) "
                  "was played with no-op starts and no sticky actions.", "",
                  "| game | setting | sticky actions | games | score mean ± sd (median) | published random |",
                  "|---|---|---|---|---|---|"]
        for row in data["random_play"]:
            lines.append(f"| {row['game']} | {row['setting']} | {row['sticky_action_prob']} | {row['games']} "
                         f"| {fmt(row['mean'])} ± {fmt(row['sd'])} ({fmt(row['median'])}) "
                         f"| {fmt(row['published_random'])} |")
    lines += ["", "## Runs", "", "| run | status | frames | final score | AUC | HNS |", "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['status']} | {r['frames']} | {fmt(r['final'])} | {fmt(r['auc'])} "
                     f"| {fmt(r['hns'])} |")
    for f in data["failed"]:
        lines.append(f"| {f['name']} | {f['state']} (log: `{f['log']}`) | – | – | – | – |")
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"
