"""The figures of ``prend diagnose`` and the figure helpers ``prend report`` shares.

Fig. 1 shows the intrinsic reward's trend, Fig. 3 its heatmaps; the helpers give one colour per method, panels
and legends.

Everything here draws on matplotlib's object-oriented API (no pyplot), so no global backend state is touched.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from prend.experiments.runs import Run, group_runs, method_order
from prend.experiments.stats import align_curves
from prend.rundir import FRAMES, RAW_MEAN

if TYPE_CHECKING:
    from prend.experiments.diagnose import Fig3


def method_colors(labels: list[str]) -> dict[str, Any]:
    """One tab10 colour per group label, in prend's method order (the same label, the same colour, in every figure)."""
    cmap = colormaps["tab10"]
    return {label: cmap(i % 10) for i, label in enumerate(method_order(labels))}


def add_legend(ax, fontsize: int = 8, below: bool = False) -> None:
    """A legend only where something is labelled (matplotlib warns otherwise).

    ``below`` puts it under the panel's x label, where it cannot cover a curve (the constrained layout makes room).
    """
    if not ax.get_legend_handles_labels()[0]:
        return
    if below:
        ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0)
    else:
        ax.legend(fontsize=fontsize)


def new_figure(rows: int, cols: int, width: float = 5.0, height: float = 3.6):
    """A constrained-layout figure of ``rows`` x ``cols`` panels, each ``width`` x ``height`` inches: (fig, axes)."""
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def plot_fig1(runs: list[Run], path: Path) -> None:
    """Rollout-mean and probe-set-mean raw intrinsic reward against frames; one line per group (seed mean)."""
    groups = group_runs(runs)
    games = sorted({game for game, _ in groups})
    colors = method_colors([label for _, label in groups])
    fig, axes = new_figure(len(games), 2)
    for row, game in enumerate(games):
        for (g, label), members in groups.items():
            if g != game:
                continue
            xs = [r.series(FRAMES) for r in members]
            ys = [r.series(RAW_MEAN) for r in members]
            plot_group(axes[row, 0], xs, ys, label, colors[label])
            probes = [None if r.diagnostics is None else r.diagnostics.probe_rewards for r in members]
            if all(p is not None and p.size for p in probes):
                batch = [r.config["env"]["num_envs"] * r.config["ppo"]["num_steps"] * r.config["env"]["frame_skip"]
                         for r in members]
                pxs = [r.diagnostics.probe_iteration * b for r, b in zip(members, batch, strict=True)]
                plot_group(axes[row, 1], pxs, [p.mean(axis=1) for p in probes], label, colors[label])
        axes[row, 0].set_title(f"{game}: raw intrinsic reward, rollout mean")
        axes[row, 1].set_title(f"{game}: raw intrinsic reward on the fixed probe set")
        for ax in axes[row]:
            ax.set_xlabel("frames")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            add_legend(ax, fontsize=8)
    fig.savefig(path, dpi=110)


def plot_group(ax, xs, ys, label, color) -> None:
    """Each seed's curve thin, and their mean over a common x grid bold, labelled with the seed count."""
    for x, y in zip(xs, ys, strict=True):
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
    grid, values = align_curves(xs, ys)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)
    ax.plot(grid, mean, color=color, linewidth=1.8, label=f"{label} (n={len(xs)})")


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
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:  # below the panels: with many groups a legend inside one covers its bars
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4), fontsize=8)
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
    ax.set_title("Pearson r of |delta r_int| vs observation distance\n(pairs of training iterations)", fontsize=9)
    add_legend(ax, fontsize=8)
    ax = axes[0, 1]
    for run in runs:
        result = results.get(run.name)
        if result is None or "reference" not in result.probe_correlations:
            continue
        ax.plot(result.probe_iterations, result.probe_correlations["reference"], color=colors[run.label],
                alpha=0.8, linewidth=1, label=f"{run.game_key} {run.label} s{run.seed}")
    ax.set_ylim(-1, 1)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("iteration")
    ax.set_title("probe set: Pearson r of |delta r_int| vs reference distance", fontsize=9)
    add_legend(ax, fontsize=7)
    fig.savefig(path, dpi=110)
