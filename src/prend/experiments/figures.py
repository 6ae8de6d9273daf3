"""The figures of ``prend diagnose`` and the figure helpers ``prend report`` shares.

Fig. 1 shows the intrinsic reward's trend, Fig. 3 its heatmaps; the helpers give one colour per method, panels
and legends.

Everything here draws on matplotlib's object-oriented API (no pyplot), so no global backend state is touched.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from prend.experiments.fig3_result import Fig3
from prend.experiments.runs import Run, group_runs, method_order
from prend.experiments.stats import MIN_SEEDS_FOR_INTERVAL, align_curves, seed_interval
from prend.rundir import FRAMES, RAW_MEAN


def method_colors(labels: list[str]) -> dict[str, Any]:
    """One distinct colour per group label, in prend's method order (the same labels, the same colours).

    tab10 up to 10 groups, tab20 up to 20, then evenly spaced hues of ``hsv``: a diagnosis of 11 groups
    (a grid of backbones x settings) must not give two of them one colour.

    Example:
        >>> len(set(method_colors([f"prend variant {i}" for i in range(11)]).values()))
        11
    """
    ordered = method_order(labels)
    n = len(ordered)
    if n <= 10:
        cmap, positions = colormaps["tab10"], range(n)
    elif n <= 20:
        cmap, positions = colormaps["tab20"], range(n)
    else:
        cmap, positions = colormaps["hsv"], [i / n for i in range(n)]
    return {label: cmap(pos) for label, pos in zip(ordered, positions, strict=True)}


def caption(text: str, width: float) -> str:
    """``text`` wrapped to a figure ``width`` inches wide (~13 characters of 9-point text per inch), line by line.

    A suptitle is not wrapped by matplotlib, and one wider than the figure is cut off at its sides.
    """
    return "\n".join(textwrap.fill(line, int(13 * width)) for line in text.splitlines())


def add_legend(ax, fontsize: int = 8, below: bool = False) -> None:
    """A legend only where something is labelled (matplotlib warns otherwise).

    ``below`` puts it under the panel's x label, where it cannot cover a curve (the constrained layout makes room).
    """
    if not ax.get_legend_handles_labels()[0]:
        return
    if below:
        # A fixed gap in points (4.5 font sizes: the tick labels and the x label), not a fraction of the panel's
        # height: the constrained layout then sizes the panel so that the whole legend fits in the figure.
        ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, 0), borderaxespad=4.5)
    else:
        ax.legend(fontsize=fontsize)


def figure_legend(fig: Figure, axes, fontsize: int = 8) -> None:
    """One legend for the whole figure, below its panels, each label once: it covers no panel however many groups.

    Its columns fit the figure's width (about 15 characters of 8-point text per inch, for the longest label), and
    the figure grows by the legend's height, so that the panels keep theirs.
    """
    entries: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return
    longest = max(len(label) for label in entries)
    columns = max(1, min(4, len(entries), int(fig.get_figwidth() * 15 * 8 / fontsize) // (longest + 4)))
    rows = -(-len(entries) // columns)
    fig.set_figheight(fig.get_figheight() + (rows + 1) * 1.4 * fontsize / 72)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=columns, fontsize=fontsize)


def frame_ticks(ax) -> None:
    """Frame counts as 500k, 1M, ... on at most 5 ticks (plain labels run together; 1e6 offsets are easy to miss)."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def new_figure(rows: int, cols: int, width: float = 5.0, height: float = 3.6):
    """A constrained-layout figure of ``rows`` x ``cols`` panels, each ``width`` x ``height`` inches: (fig, axes)."""
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def plot_fig1(runs: list[Run], path: Path) -> Figure:
    """Rollout-mean and probe-set-mean raw intrinsic reward against frames; per group the seed mean and spread.

    The spread follows :func:`plot_group` (each seed thin below 5 seeds, a t-interval band from 5); the legend
    and the caption say which. Returns the figure.
    """
    groups = group_runs(runs)
    games = sorted({game for game, _ in groups})
    colors = method_colors([label for _, label in groups])
    fig, axes = new_figure(len(games), 2)
    for row, game in enumerate(games):
        drawn: list[set[str]] = [set(), set()]
        counts: list[list[int]] = [[], []]
        for (g, label), members in groups.items():
            if g != game:
                continue
            xs = [r.series(FRAMES) for r in members]
            ys = [r.series(RAW_MEAN) for r in members]
            drawn[0].add(plot_group(axes[row, 0], xs, ys, label, colors[label]))
            counts[0].append(len(members))
            probes = [None if r.diagnostics is None else r.diagnostics.probe_rewards for r in members]
            if all(p is not None and p.size for p in probes):
                batch = [r.config["env"]["num_envs"] * r.config["ppo"]["num_steps"] * r.config["env"]["frame_skip"]
                         for r in members]
                pxs = [r.diagnostics.probe_iteration * b for r, b in zip(members, batch, strict=True)]
                drawn[1].add(plot_group(axes[row, 1], pxs, [p.mean(axis=1) for p in probes], label, colors[label]))
                counts[1].append(len(members))
        axes[row, 0].set_title(f"{game}: rollout mean")
        axes[row, 1].set_title(f"{game}: fixed probe set")
        axes[row, 0].set_ylabel("raw intrinsic reward")  # the figure's caption says it too; one label per row
        for col, ax in enumerate(axes[row]):
            if not counts[col]:  # e.g. runs with --probe-every 0: say so rather than draw empty 0..1 axes
                ax.text(0.5, 0.5, "not logged by these runs\n(no probe set: --probe-every 0)", ha="center",
                        va="center", transform=ax.transAxes, color="0.4")
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            describe_spread(ax, drawn[col], counts[col])
            ax.set_xlabel("emulator frames")
            frame_ticks(ax)
            if has_positive_data(ax):  # an empty panel (no intrinsic series) cannot be log-scaled
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    figure_legend(fig, axes)  # below the panels: with many groups a legend inside one covers its curves
    counts_all = [len(members) for members in groups.values()]
    fig.suptitle(caption("Raw intrinsic reward vs frames: " + spread_caption(counts_all), 2 * 5.0), fontsize=9)
    fig.savefig(path, dpi=110)
    return fig


SEEDS = "seeds"
BAND = "band"
"""What :func:`plot_group` drew for a group's spread: every seed's curve, or a confidence band of the mean."""

SEED_LINE = {"alpha": 0.35, "linewidth": 0.8}
BAND_ALPHA = 0.18


def plot_group(ax, xs, ys, label, color) -> str:
    """A group's seeds on one panel: their mean over a common x grid (bold) and how the seeds spread.

    With fewer than :data:`~prend.experiments.stats.MIN_SEEDS_FOR_INTERVAL` seeds every seed's curve is drawn
    thin, on its own x values, and no interval (at 2 seeds a Student-t band is +-12.7 standard errors and hides
    the curves); with more, the Student-t 95% interval of the mean is shaded and the seeds are left out. One
    seed is one line. :func:`describe_spread` adds the legend entry that says which a panel shows.

    Returns:
        :data:`SEEDS` or :data:`BAND`: what shows the spread.
    """
    n = len(xs)
    grid, values = align_curves(xs, ys)
    mean, half = seed_interval(values)  # NaN half-widths where fewer than 2 seeds have a value
    if n == 1:
        ax.plot(grid, mean, color=color, linewidth=1.8, label=f"{label} (1 seed)")
        return SEEDS
    if n < MIN_SEEDS_FOR_INTERVAL:
        for x, y in zip(xs, ys, strict=True):
            ax.plot(x, y, color=color, **SEED_LINE)
        ax.plot(grid, mean, color=color, linewidth=1.8, label=f"{label}: mean of {n} seeds")
        return SEEDS
    ax.plot(grid, mean, color=color, linewidth=1.8, label=f"{label}: mean of {n} seeds")
    ax.fill_between(grid, mean - half, mean + half, color=color, alpha=BAND_ALPHA, linewidth=0)
    return BAND


def has_positive_data(ax) -> bool:
    """Whether any line of ``ax`` has a finite positive y value (what a log scale needs).

    Example:
        >>> import matplotlib.pyplot as plt
        >>> ax = plt.figure().add_subplot()
        >>> _ = ax.plot([], [])
        >>> has_positive_data(ax), (ax.plot([0, 1], [0.0, 2.0]) and has_positive_data(ax))
        (False, True)
    """
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if np.any(np.isfinite(y) & (y > 0)):
            return True
    return False


def describe_spread(ax, drawn: set[str], counts: list[int]) -> None:
    """Legend entries (grey proxies) that say what the thin lines and the shading of a panel are.

    ``drawn`` holds what :func:`plot_group` returned for the panel's groups, ``counts`` their seed counts.
    """
    if SEEDS in drawn and any(n > 1 for n in counts):
        ax.plot([], [], color="grey", **SEED_LINE, label="thin: each seed")
    if BAND in drawn:  # an entry of the one legend: a second legend box can land on top of the first
        ax.fill_between([], [], [], color="grey", alpha=0.3, linewidth=0, label="shaded: 95% t-interval of the mean")


def spread_caption(counts: list[int]) -> str:
    """One sentence for a figure's caption: what the lines and the shading are, for these groups' seed counts.

    Example:
        >>> print(spread_caption([2, 2, 1])[:72])
        line = mean over seeds, thin lines = each seed (fewer than 5 seeds: no i
        >>> spread_caption([6])
        'line = mean over seeds, shaded = Student-t 95% CI of that mean.'
    """
    small = [n for n in counts if n < MIN_SEEDS_FOR_INTERVAL]
    large = [n for n in counts if n >= MIN_SEEDS_FOR_INTERVAL]
    if not large:
        if all(n == 1 for n in small):
            return "line = the one seed's curve."
        return ("line = mean over seeds, thin lines = each seed (fewer than 5 seeds: no interval; a t-interval of "
                "2 seeds spans +-12.7 standard errors).")
    if not small:
        return "line = mean over seeds, shaded = Student-t 95% CI of that mean."
    return ("line = mean over seeds; groups of fewer than 5 seeds: thin lines = each seed; of 5 or more: "
            "shaded = Student-t 95% CI of the mean.")


def plot_fig1_summary(rows: list[dict[str, Any]], path: Path) -> Figure:
    """Bars of decay, oscillation and spread per game and group (bar: seed mean; dots: seeds); returns the figure."""
    metrics = [("decay", "decay (late/early mean reward)", True), ("oscillation", "oscillation (detrended CV)", False),
               ("spread", "spread (within-rollout CV)", False)]
    games = sorted({r["game"] for r in rows})
    labels = method_order([r["label"] for r in rows])
    colors = method_colors(labels)
    fig, axes = new_figure(1, len(metrics), width=4.6)
    width = 0.8 / max(1, len(labels))
    for ax, (key, title, log) in zip(axes[0], metrics, strict=True):
        for j, label in enumerate(labels):
            for i, game in enumerate(games):
                values = [r[key] for r in rows if r["game"] == game and r["label"] == label and np.isfinite(r[key])]
                if not values:
                    continue
                x = i + (j - (len(labels) - 1) / 2) * width
                ax.bar(x, np.mean(values), width, color=colors[label], label=label if i == 0 else None)
                ax.scatter([x] * len(values), values, color="black", s=8, zorder=3)
        ax.set_xticks(range(len(games)), games)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, axis="y")
    figure_legend(fig, axes)  # below the panels: with many groups a legend inside one covers its bars
    fig.savefig(path, dpi=110)
    return fig


def plot_fig3(run: Run, result: Fig3, path: Path) -> None:
    """Heatmaps of one run: over training iterations (top) and over probe states (bottom)."""
    rows = 2 if result.probe_reward_diff is not None else 1
    fig, axes = new_figure(rows, 3, width=4.2, height=3.8)
    it = result.iterations.astype(np.float64)
    half = (it[-1] - it[0]) / (len(it) - 1) / 2 if len(it) > 1 else 0.5  # cell centres on the iterations
    extent = [it[0] - half, it[-1] + half, it[-1] + half, it[0] - half]
    panels = [("|r_int(i) - r_int(j)|", result.reward_diff, None),
              ("pixel distance", result.distances["pixels"], result.correlations["pixels"]),
              ("reference-embedding distance", result.distances["reference"], result.correlations["reference"])]
    for ax, (title, matrix, corr) in zip(axes[0], panels, strict=True):
        image = ax.imshow(matrix, extent=extent, cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(title + (f"\nPearson r = {corr['pearson']:.2f}" if corr else "\n(training iterations)"),
                     fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("iteration")
    if rows == 2:
        last = int(result.probe_iterations[-1])
        probe_panels = [(f"probe |r_i - r_j| at iteration {last}", result.probe_reward_diff, None),
                        ("probe pixel distance", result.probe_distances["pixels"],
                         result.probe_correlations["pixels"][-1]),
                        ("probe reference distance", result.probe_distances["reference"],
                         result.probe_correlations["reference"][-1])]
        for ax, (title, matrix, corr) in zip(axes[1], probe_panels, strict=True):
            image = ax.imshow(matrix, cmap="viridis", interpolation="nearest")
            fig.colorbar(image, ax=ax, shrink=0.8)
            ax.set_title(title + (f"\nPearson r = {corr:.2f}" if corr is not None else ""), fontsize=9)
            ax.set_xlabel("probe state")
            ax.set_ylabel("probe state")
    fig.suptitle(f"{run.game} {run.label} seed {run.seed}", fontsize=10)
    fig.savefig(path, dpi=100)


def plot_fig3_summary(runs: list[Run], results: dict[str, Fig3], rows: list[dict[str, Any]], path: Path) -> None:
    """Fig. 3 correlations of every group (left) and the probe-set correlation over training (right)."""
    games = sorted({r["game"] for r in rows})
    labels = method_order([r["label"] for r in rows])
    colors = method_colors(labels)
    fig, axes = new_figure(1, 2, width=5.5)
    ax = axes[0, 0]
    names = ["fig3_pearson_pixels", "fig3_pearson_reference"]
    width = 0.8 / max(1, len(labels))
    ticks = []
    for i, (game, name) in enumerate((g, n) for g in games for n in names):
        ticks.append(f"{game}\n{name.rsplit('_', 1)[-1]}")
        for j, label in enumerate(labels):
            values = [r[name] for r in rows if r["game"] == game and r["label"] == label and np.isfinite(r[name])]
            if values:
                x = i + (j - (len(labels) - 1) / 2) * width
                ax.bar(x, np.mean(values), width, color=colors[label], label=label if i == 0 else None)
                ax.scatter([x] * len(values), values, color="black", s=8, zorder=3)
    ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylim(-1, 1)
    ax.set_title("Pearson r of |delta r_int| vs observation distance\n(bar: seed mean, dots: seeds)", fontsize=9)
    ax = axes[0, 1]
    styles = {game: style for game, style in zip(games, ("-", "--", ":", "-."), strict=False)}
    for run in runs:
        result = results.get(run.name)
        if result is None or "reference" not in result.probe_correlations:
            continue
        ax.plot(result.probe_iterations, result.probe_correlations["reference"], color=colors[run.label],
                linestyle=styles.get(run.game_key, "-"), alpha=0.8, linewidth=1, label=run.label)
    ax.set_ylim(-1, 1)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("iteration")
    ax.set_title("probe set: Pearson r of |delta r_int| vs reference distance\n(one line per run; "
                 + ", ".join(f"{style} {game}" for game, style in styles.items()) + ")", fontsize=9)
    figure_legend(fig, axes)
    fig.savefig(path, dpi=110)
