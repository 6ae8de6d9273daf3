"""The figures of ``prend report``: Fig. 2 (score against frames) and the aggregate human-normalised scores.

Fig. 2 draws each group's seeds by the rule of :func:`~prend.experiments.figures.plot_group`: below
:data:`~prend.experiments.stats.MIN_SEEDS_FOR_INTERVAL` seeds every seed's curve thin with their mean, from
there the mean with its Student-t 95% interval; the legend and the caption on the figure say which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from prend.config import EnvConfig, RunConfig
from prend.experiments.evaluate import EVAL_FILES
from prend.experiments.figures import (
    add_legend,
    caption,
    describe_spread,
    figure_legend,
    frame_ticks,
    method_colors,
    new_figure,
    plot_group,
    spread_caption,
)
from prend.experiments.published import published_curves
from prend.experiments.runs import Run, final_score, group_runs
from prend.experiments.scores import reference_scores
from prend.experiments.stats import AGGREGATES, MIN_SEEDS_FOR_INTERVAL
from prend.rundir import FRAMES, SCORE

PUBLISHED_STYLES = ("--", "-.", (0, (4, 1, 1, 1, 1, 1)))
"""Line styles of the published agents' curves (grey, so prend's groups keep the colours)."""

PANEL_WIDTH = 5.2
"""Inches per game panel of Fig. 2."""

CROWDED_LEGEND = 4
"""Fig. 2 panels with more groups than this get one legend below the panels instead of one inside each."""


def plot_scores(runs: list[Run], path: Path, published: str = "none") -> Figure:
    """Fig. 2: score against frames per game; per group the seed mean and how the seeds spread.

    ``published="dopamine"`` draws Dopamine's published agents on the same axes, in grey, at the iterations
    that end within the longest run's frames.

    The figure says on itself what the thin lines or the band are and, when the runs are shorter than the
    default budget, that they are short (with their frame budget), so a copied PNG still explains itself.
    """
    groups = group_runs(runs)
    games = sorted({g for g, _ in groups})
    colors = method_colors([label for _, label in groups])
    cols = min(len(games), 3)
    rows = -(-len(games) // cols)
    # With published curves the legend goes below the panel: room for its entries (groups, published agents,
    # random play and the two spread entries), at ~0.17 inch per line of 8-point text.
    entries = max(sum(g == game for g, _ in groups) + len(published_curves(game, published)) + 3 for game in games)
    height = 3.8 if published == "none" else 4.0 + 0.17 * entries
    fig, axes = new_figure(rows, cols, width=PANEL_WIDTH, height=height)
    crowded = max(sum(g == game for g, _ in groups) for game in games) > CROWDED_LEGEND
    for i, game in enumerate(games):
        ax = axes[i // cols, i % cols]
        drawn, counts = set(), []
        for (g, label), members in groups.items():
            if g != game:
                continue
            drawn.add(plot_group(ax, [r.series(FRAMES) for r in members], [r.series(SCORE) for r in members],
                                 label, colors[label]))
            counts.append(len(members))
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
        describe_spread(ax, drawn, counts)
        ax.set_title(game)
        ax.set_xlabel("emulator frames")
        ax.set_ylabel("score (mean of last 100 games)")
        frame_ticks(ax)
        ax.grid(alpha=0.3)
        if curves or not crowded:
            add_legend(ax, fontsize=8, below=bool(curves))  # inside, a legend can sit on a published curve
    if crowded and published == "none":
        figure_legend(fig, axes)  # below the panels: inside one, many groups' entries cover its curves
    for j in range(len(games), rows * cols):
        axes[j // cols, j % cols].set_visible(False)
    counts = [len(members) for members in groups.values()]
    fig.suptitle(caption(fig2_caption(runs, counts), PANEL_WIDTH * cols), fontsize=9)
    fig.savefig(path, dpi=110)
    return fig


def fig2_caption(runs: list[Run], counts: list[int]) -> str:
    """What Fig. 2 shows, on the figure: lines, thin lines or band, and, for short runs, their frame budget.

    ``counts`` are the groups' seed counts (:func:`~prend.experiments.figures.spread_caption`).

    Example:
        >>> from types import SimpleNamespace
        >>> short = SimpleNamespace(metrics=[{FRAMES: 196_608}])
        >>> print(fig2_caption([short], [2]).splitlines()[1])
        Short CPU-scale runs: up to 196,608 frames (0.49% of the default 40,000,000 frames = 10M agent steps).
        >>> "Short" in fig2_caption([SimpleNamespace(metrics=[{FRAMES: 40_000_000}])], [6])
        False
    """
    text = "Score vs emulator frames: " + spread_caption(counts)
    default_frames = RunConfig().total_steps * EnvConfig().frame_skip
    frames = max((int(r.metrics[-1].get(FRAMES, 0)) for r in runs if r.metrics), default=0)
    if 0 < frames < default_frames:
        text += (f"\nShort CPU-scale runs: up to {frames:,} frames ({100 * frames / default_frames:.2g}% of the "
                 f"default {default_frames:,} frames = {RunConfig().total_steps // 1_000_000}M agent steps).")
    return text


def plot_final_scores(runs: list[Run], evaluations: list[dict[str, Any]], path: Path) -> Figure:
    """Every seed's final score as a point, per game and group: the figure to read when seeds are few.

    Filled points are the final running score (``charts/score_mean_100``) of each seed, labelled with its seed;
    a bar marks their mean. Where ``prend eval`` scored the final policy (``evaluations``: the report's
    evaluation rows of the default setting), a hollow diamond at the same place shows that seed's evaluation
    mean. The random-play score is dotted. No interval is drawn: with few seeds the points are the information.
    """
    groups = group_runs(runs)
    games = sorted({g for g, _ in groups})
    colors = method_colors([label for _, label in groups])
    evaluated = {(row["game"], row["label"]): dict(zip(row["seeds"], row["scores"], strict=True))
                 for row in evaluations if row["setting"] == EVAL_FILES[0]}
    cols = min(len(games), 3)
    rows = -(-len(games) // cols)
    labels_per_game = {game: [label for g, label in groups if g == game] for game in games}
    width = max(PANEL_WIDTH, 0.55 * max(len(v) for v in labels_per_game.values()) + 1.5)
    fig, axes = new_figure(rows, cols, width=width, height=4.2)
    for i, game in enumerate(games):
        ax = axes[i // cols, i % cols]
        for x, label in enumerate(labels_per_game[game]):
            members = groups[(game, label)]
            finals = [final_score(r) for r in members]
            offsets = np.linspace(-0.12, 0.12, len(members)) if len(members) > 1 else [0.0]
            ax.scatter([x + o for o in offsets], finals, color=colors[label], s=28, zorder=3)
            for o, run, value in zip(offsets, members, finals, strict=True):
                ax.annotate(f"s{run.seed}", (x + o, value), xytext=(4, 0), textcoords="offset points",
                            fontsize=7, va="center")
            if np.isfinite(finals).any():
                ax.plot([x - 0.25, x + 0.25], [np.nanmean(finals)] * 2, color=colors[label], linewidth=2)
            scores = evaluated.get((game, label), {})
            shown = [(x + o, scores[r.seed]) for o, r in zip(offsets, members, strict=True) if r.seed in scores]
            if shown:
                ax.scatter(*zip(*shown, strict=True), marker="D", facecolors="none", edgecolors=colors[label], s=30,
                           zorder=3)
        ref = reference_scores(game)
        if ref is not None:
            ax.axhline(ref[0], color="grey", linestyle=":", linewidth=1, label="random play")
        ax.scatter([], [], color="grey", s=28, label="final running score, one seed (bar: their mean)")
        if any((game, label) in evaluated for label in labels_per_game[game]):
            ax.scatter([], [], marker="D", facecolors="none", edgecolors="grey", s=30,
                       label="evaluation mean of the same seed's final policy (prend eval)")
        ax.set_xticks(range(len(labels_per_game[game])), labels_per_game[game], rotation=30, ha="right", fontsize=8)
        ax.set_title(game)
        ax.set_ylabel("score")
        ax.grid(alpha=0.3, axis="y")
    for j in range(len(games), rows * cols):
        axes[j // cols, j % cols].set_visible(False)
    figure_legend(fig, axes)  # below the rotated group names, whatever their length
    fig.suptitle("Final score of every seed (no interval: with few seeds the points are the information)",
                 fontsize=9)
    fig.savefig(path, dpi=110)
    return fig


def plot_aggregates(rows: list[dict[str, Any]], path: Path) -> Figure:
    """rliable-style interval plot: one panel per aggregate (IQM, mean, median of the final HNS), a row per group.

    A group whose games all have :data:`~prend.experiments.stats.MIN_SEEDS_FOR_INTERVAL` seeds or more gets a bar
    from its stratified-bootstrap CI's low to high; below that the bar would only span its few runs' range, so
    every run's HNS is drawn as a point instead (one marker per game). The black tick is the estimate.
    """
    colors = method_colors([r["label"] for r in rows])
    games = sorted({p["game"] for r in rows for p in r.get("points", [])})
    markers = dict(zip(games, "osD^vP*X", strict=False))
    fig, axes = new_figure(1, len(AGGREGATES), width=3.6, height=1.0 + 0.45 * max(2, len(rows)))
    few = [r for r in rows if r.get("min_seeds", 0) < MIN_SEEDS_FOR_INTERVAL]
    for ax, name in zip(axes[0], AGGREGATES, strict=True):
        for i, row in enumerate(rows):
            est = row[name]
            if not np.isfinite(est["value"]):
                continue
            if row in few:
                for k, point in enumerate(row["points"]):
                    jitter = 0.25 * ((k % 5) - 2) / 2
                    ax.scatter(point["hns"], i + jitter, marker=markers.get(point["game"], "o"), s=16,
                               color=colors[row["label"]], alpha=0.8, zorder=2)
            else:
                ax.barh(i, est["high"] - est["low"], left=est["low"], height=0.6, color=colors[row["label"]],
                        alpha=0.6)
            ax.plot([est["value"]] * 2, [i - 0.3, i + 0.3], color="black", linewidth=1.5, zorder=3)
        ax.set_yticks(range(len(rows)), [r["label"] for r in rows] if name == "IQM" else [""] * len(rows))
        ax.set_title(name)
        ax.set_xlabel("human-normalised score")
        ax.grid(alpha=0.3, axis="x")
    if few:
        for game in games:
            axes[0, 0].scatter([], [], marker=markers[game], color="grey", s=16, label=f"{game}: one run's HNS")
        figure_legend(fig, axes)
    shown = ["black tick: the estimate"]
    if len(few) < len(rows):
        shown.append("bar: its 95% stratified-bootstrap CI")
    if few:
        shown.append(f"points: every run (a game with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds: no interval)")
    fig.suptitle("Final human-normalised score across games\n" + "; ".join(shown), fontsize=8)
    fig.savefig(path, dpi=110)
    return fig
