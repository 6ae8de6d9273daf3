"""Where does a trained Deep Sea agent's bonus point? The raw intrinsic reward of every cell, from checkpoints.

Usage:
    .venv/bin/python benchmarks/deepsea_novelty.py RUN_OR_SWEEP_DIR [...] --out DIR

Every run directory given (or found anywhere below a given folder, such as ``deepsea.py``'s
``OUT/size14``) whose method has an intrinsic reward and which still has its ``checkpoint.pt`` is loaded as the
trainer left it (:func:`prend.train.load_agent`: predictor, target and normalisers), and its reward module
scores the agent standing in each reachable cell ``(row, column <= row)``. It writes to ``--out``:

- ``novelty.png``: one heatmap per run (log colour scale), the diagonal that leads to the treasure outlined;
- ``novelty.json``: per run, the map (``null`` for unreachable cells) and the summary below;
- ``novelty.md``: the summary table, per run:
  *common*, the mean raw reward of the two left columns, which a near-random policy visits every episode;
  *rare*, the mean over the deeper half's cells at or next to the diagonal (``row >= N/2``, ``column >=
  row - 1``), which a random walk reaches with probability about ``2**-row``;
  *diagonal*, the mean over the deeper half of the treasure's path; and *rare / common*.

A predictor that generalises from the visited cells to the unvisited ones leaves *rare / common* near 1, and the
bonus has nothing to point at; a large ratio means the bonus still marks the unexplored corner, so whatever
stops the agent lies in following it, not in the bonus. Where it stops, the table's last columns say: the run's
policy walks two fixed paths in the run's own environment (its frame stacks, its action mapping), the
treasure's diagonal (always right) and the left wall (always left), and at each step it records the policy's
probability of the right move and both value heads. *P(right) on the diagonal* (min-max) shows whether the
policy leans toward the corner; *v_int* (the diagonal's largest against the left wall's mean) shows whether
the intrinsic value head has learned that the diagonal leads to novelty.

RND and RND+LR read only the last frame of the stack, so their map is exact. PreND's encoder reads the whole
stack; there four copies of the cell's frame stand in for the path that led to it, an approximation.
The frame is ``DeepSeaEnv.cell_image``'s first channel: prend's grayscale and 84x84 resize leave a white
block on black unchanged (``tests/test_deep_sea.py`` checks that against the env's own wrappers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from prend.agent.perf import cpu_summary
from prend.envs import DeepSeaEnv, make_env
from prend.errors import PrendError
from prend.experiments.runs import find_runs
from prend.intrinsic.methods import resolve_method
from prend.train import TrainedAgent, load_agent

NAMES = {"rnd": "RND", "rnd-lr": "RND+LR", "prend": "PreND"}


def cell_frames(size: int) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """The reachable cells of Deep Sea ``size`` in row order and their uint8 84x84 frames, shape (cells, 84, 84).

    Example:
        >>> cells, frames = cell_frames(3)
        >>> cells
        [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
        >>> tuple(frames.shape), int(frames[2].sum() // 255)  # cell (1, 1): a 28x28 white block
        ((6, 84, 84), 784)
    """
    env = DeepSeaEnv(size=size)
    cells = [(row, column) for row in range(size) for column in range(row + 1)]
    frames = np.stack([env.cell_image(row, column)[..., 0] for row, column in cells])
    return cells, torch.from_numpy(frames)


def novelty_map(run_dir: str | Path) -> tuple[np.ndarray, dict]:
    """The raw intrinsic reward of every reachable cell of a run's Deep Sea (NaN above the diagonal) and facts
    about the run (method, seed, size, iteration of the checkpoint, and :func:`walk`'s two paths);
    :class:`PrendError` for a run without a checkpoint or without an intrinsic reward."""
    agent = load_agent(run_dir, intrinsic=True)
    cfg = agent.config
    if agent.intrinsic is None:
        raise PrendError(f"run '{run_dir}' ({cfg.intrinsic.method}) has no intrinsic reward to map",
                         "pass runs of rnd, rnd-lr or prend")
    size = int(cfg.env.game_kwargs.get("size", 10))
    cells, frames = cell_frames(size)
    stacks = frames[:, None].expand(-1, cfg.env.frame_stack, -1, -1).contiguous()
    with torch.no_grad():
        raw = agent.intrinsic.reward(stacks).raw.double().numpy()
    grid = np.full((size, size), np.nan)
    for (row, column), value in zip(cells, raw, strict=True):
        grid[row, column] = value
    return grid, {"method": cfg.intrinsic.method, "seed": cfg.run.seed, "size": size, "iteration": agent.iteration,
                  "agent_steps": agent.global_step,
                  "walks": {"diagonal": walk(agent, right=True), "left": walk(agent, right=False)}}


def walk(agent: TrainedAgent, right: bool) -> dict:
    """One episode of the run's Deep Sea moving always right (the treasure's path) or always left: per step, the
    policy's probability of the move that goes right, both values, and the episode's raw return.

    The environment is the run's own (``num_envs`` 1, its protocol and ``--game-kwargs``), so the policy sees the
    frame stacks it would see on that path; the moves come from the action mapping of a ``DeepSeaEnv`` made with
    the same keyword arguments (the diagonal walk's return is 0.99 exactly when the two agree).
    """
    cfg = agent.config
    mapping = DeepSeaEnv(**cfg.env.game_kwargs).right_action
    env = make_env(dataclasses.replace(cfg.env, num_envs=1))
    obs = torch.as_tensor(env.reset(cfg.run.seed))
    state, first = agent.policy.initial_state(1), torch.ones(1, 1, dtype=torch.bool)
    out: dict = {"p_right": [], "value_int": [], "value_ext": [], "return": 0.0}
    column = 0
    with torch.no_grad():
        for row in range(len(mapping)):
            right_action = int(mapping[row, column])
            step_out = agent.policy(obs[None], state, first)
            state, first = step_out.state, torch.zeros(1, 1, dtype=torch.bool)
            out["p_right"].append(step_out.distribution().probs[0, 0, right_action].item())
            out["value_int"].append(step_out.value_int.item())
            out["value_ext"].append(step_out.value_ext.item())
            step = env.step(np.array([right_action if right else 1 - right_action]))
            out["return"] += float(step.raw_reward[0])
            obs = torch.as_tensor(step.obs)
            column = min(column + 1, len(mapping) - 1) if right else max(column - 1, 0)
    env.close()
    return out


def summarize_map(grid: np.ndarray) -> dict[str, float]:
    """Mean raw reward of the common cells, the rare cells, the deep diagonal, and rare / common (module docstring).

    Example (a map that is 1 everywhere but 9 in the deep half at the diagonal):
        >>> grid = np.where(np.tril(np.ones((6, 6))) > 0, 1.0, np.nan)
        >>> grid[[3, 3, 4, 4, 5, 5], [2, 3, 3, 4, 4, 5]] = 9.0
        >>> summarize_map(grid)
        {'common': 1.0, 'rare': 9.0, 'diagonal': 9.0, 'rare_over_common': 9.0}
    """
    size = grid.shape[0]
    rows, columns = np.indices(grid.shape)
    reachable = columns <= rows
    common = grid[reachable & (columns <= 1)]
    rare = grid[reachable & (rows >= size // 2) & (columns >= rows - 1)]
    diagonal = grid[(rows >= size // 2) & (columns == rows)]
    out = {"common": float(common.mean()), "rare": float(rare.mean()), "diagonal": float(diagonal.mean())}
    out["rare_over_common"] = out["rare"] / out["common"] if out["common"] > 0 else math.inf
    return out


def plot(maps: list[tuple[np.ndarray, dict]], path: Path) -> None:
    """One log-scale heatmap per run, in rows of five; the treasure's diagonal outlined."""
    import matplotlib
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    columns = min(5, len(maps))
    rows = math.ceil(len(maps) / columns)
    fig = Figure(figsize=(2.4 * columns + 1.2, 2.5 * rows + 0.9), dpi=110, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    values = np.concatenate([grid[np.isfinite(grid)] for grid, _ in maps])
    norm = LogNorm(vmin=max(values[values > 0].min(), 1e-6), vmax=values.max())
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # unreachable cells stay blank
    image = None
    for index, (ax, (grid, facts)) in enumerate(zip(axes, maps, strict=False)):
        image = ax.imshow(np.where(np.isnan(grid) | (grid > 0), grid, norm.vmin), norm=norm, cmap=cmap)
        for k in range(grid.shape[0]):
            ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=0.6))
        summary = summarize_map(grid)
        ax.set_title(f"{NAMES.get(facts['method'], facts['method'])} seed {facts['seed']}, it {facts['iteration']}\n"
                     f"rare/common {summary['rare_over_common']:.3g}x", fontsize=8)
        ax.set(xlabel="column", ylabel="row" if index % columns == 0 else None)
        ax.set(xticks=range(0, grid.shape[0], 4), yticks=range(0, grid.shape[0], 4))
        ax.tick_params(labelsize=7)
    for ax in axes[len(maps):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="raw intrinsic reward (log)")
    fig.suptitle(f"Deep Sea N={maps[0][1]['size']}: raw intrinsic reward of each cell at the run's last "
                 "checkpoint (white outline: the path to the treasure)\n"
                 f"prend, benchmarks/deepsea_novelty.py; CPU: {cpu_summary()}", fontsize=9)
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", type=Path, nargs="+", help="run directories, or sweep folders that hold them")
    parser.add_argument("--out", type=Path, required=True, help="folder for novelty.png, .json and .md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    maps, skipped = [], []
    try:
        runs = find_runs(args.paths, allow_empty=True)
    except PrendError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for run in runs:
        if not resolve_method(run.config["intrinsic"]["method"], strict=False).intrinsic_head:
            continue
        try:
            maps.append(novelty_map(run.path))
        except PrendError as error:
            skipped.append(f"{run.path.name}: {error}")
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if not maps:
        print("error: no run with an intrinsic reward and a checkpoint under the given paths; pass run "
              "directories of rnd, rnd-lr or prend that still hold checkpoint.pt", file=sys.stderr)
        return 2
    maps.sort(key=lambda m: (list(NAMES).index(m[1]["method"]) if m[1]["method"] in NAMES else 9, m[1]["seed"]))
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["| run | iteration | common (columns 0-1) | rare (deep half, at the diagonal) | deep diagonal | "
             "rare / common | P(right) on the diagonal, min-max | v_int: diagonal max / left mean |",
             "|---|---|---|---|---|---|---|---|"]
    records = []
    for grid, facts in maps:
        summary = summarize_map(grid)
        diagonal, left = facts["walks"]["diagonal"], facts["walks"]["left"]
        lines.append(f"| {NAMES.get(facts['method'], facts['method'])} seed {facts['seed']} | {facts['iteration']} | "
                     f"{summary['common']:.2g} | {summary['rare']:.2g} | {summary['diagonal']:.2g} | "
                     f"{summary['rare_over_common']:.3g} | {min(diagonal['p_right']):.2f}-"
                     f"{max(diagonal['p_right']):.2f} | {max(diagonal['value_int']):.3f} / "
                     f"{np.mean(left['value_int']):.3f} |")
        records.append({**facts, **summary, "map": [[None if math.isnan(v) else v for v in row] for row in grid]})
    (args.out / "novelty.md").write_text("\n".join(lines) + f"\n\nCPU: {cpu_summary()}\n")
    (args.out / "novelty.json").write_text(json.dumps(records, indent=1) + "\n")
    plot(maps, args.out / "novelty.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
