"""Which of the state probe's two factors moves an encoder's gain over its random twin: the classifiers or the frames.

``prend probe --state`` and AtariARI's probe (``benchmarks/atariari_repro.py probe``) differ in two ways at
once, and on the shipped ``stdim-boxing`` encoder they disagree (AtariARI's probe: +0.16 over the twin,
prend's: +0.018). This script crosses them on one encoder and its random-init twin, with everything else held:

- **classifiers**: ``atariari`` (AtariARI's own: raw features, 256 outputs, learning-rate plateaus and early
  stopping on validation accuracy, the last weights; :func:`prend.pretrain.atariari_probe.atariari_probe_variables`)
  or ``prend`` (``prend probe --state``'s: standardised features, the classes seen in training, early stopping
  on validation loss with its default patience 10, the best epoch's weights;
  :func:`prend.pretrain.state_probe.probe_variables`);
- **frames**: ``atariari`` (AtariARI's protocol: uniform random agent without NOOP, no sticky actions, noop
  reset, episodic life; 50k frames, seed 43, a collection of ``collect_episodes``; their split: episodes of
  more than 64 steps 70/10/20, test frames whose exact pixels occur in train or validation removed) or
  ``prend`` (a ``prend collect --ram`` set: prend's environments, sticky-random policy, ALE sticky actions,
  16 streams; ``prend probe --state``'s split: whole stream fragments 70/10/20, fragments of at most 64 frames
  left out, test 4-stacks seen in train or validation removed).

Each frame set keeps its own split (it is part of the protocol), and each (classifiers, frames) cell is run
for the backbone and its twin over the same splits and seeds; the category mean (AtariARI's figure) is
reported per cell with the backbone's gain over its twin::

    .venv/bin/python benchmarks/atariari_probe.py --backbone stdim-boxing \\
        --atariari-data runs/atariari/stack84/data --prend-data data/boxing_ram16 \\
        --seeds 0 --out docs/results/atariari-repro/factors-stdim-boxing

``--atariari-data`` is the root a ``collect_episodes`` collection lives under (``<root>/boxing-stack84-s43``),
collected there first when missing (~2.5 min for 50k frames); ``--prend-data`` must already hold
``prend collect --out DIR --ram --games boxing --frames-per-game 36000 --num-envs 16 --seed 1`` (30-60 s).
Writes ``OUT.json`` (every figure, per variable and per seed, the splits' sizes, the command, the CPU, the
time) and ``OUT.md`` (the 2x2 table).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prend.agent.perf import cpu_summary
from prend.envs.games import atari_pb_game_id
from prend.errors import PrendError
from prend.pretrain.atariari import MIN_EPISODE_LENGTH, collect_episodes, encode, load_episodes
from prend.pretrain.atariari_probe import (
    PROBE_SETTINGS,
    duplicate_test_frames,
    probe_features,
    probe_split,
)
from prend.pretrain.dataset import FrameData
from prend.pretrain.probe import ProbeConfig, extract_features, load_probed_backbone
from prend.pretrain.state_probe import StateProbeSettings, duplicate_test_rows, stack_hashes, three_way_split

CLASSIFIERS = ("atariari", "prend")
FRAMES = ("atariari", "prend")
SETTINGS = {"atariari": PROBE_SETTINGS, "prend": StateProbeSettings()}
"""Each classifier protocol's schedule: AtariARI's (patience 15 on validation accuracy) and ``prend probe
--state``'s default (patience 10 on validation loss); both lr 3e-4, batch 64, up to 100 epochs."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="stdim-boxing",
                        help="an AtariARI encoder file or a shipped name that prend probe takes (its twin: the "
                             "same architecture at the run's recorded seed)")
    parser.add_argument("--game", default="boxing")
    parser.add_argument("--atariari-data", type=Path, default=None,
                        help="root of the AtariARI-protocol probe collection (<root>/<rom>-stack84-s<seed>); "
                             "collected there when missing")
    parser.add_argument("--atariari-steps", type=int, default=50_000, help="AtariARI: 50k probe frames")
    parser.add_argument("--atariari-seed", type=int, default=43,
                        help="the collection's seed (43: atariari_repro.py's probe set, pre-training seed + 1)")
    parser.add_argument("--prend-data", type=Path, default=None, help="a prend collect --ram directory")
    parser.add_argument("--frames", default="atariari,prend", help="which frame sets: atariari, prend or both")
    parser.add_argument("--classifiers", default="atariari,prend", help="atariari, prend or both")
    parser.add_argument("--seeds", default="0", help="split and classifier seeds, comma-separated")
    parser.add_argument("--max-epochs", type=int, default=100, help="classifier epochs at most (both protocols: 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--combine", type=Path, nargs="+", default=None,
                        help="no probing: merge the cells of these OUT.json files (one backbone, game and seeds) "
                             "into one OUT.json and OUT.md, e.g. cells run as separate jobs")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    return parser.parse_args(argv)


def combine(paths: list[Path]) -> dict[str, Any]:
    """One result holding the cells of several, each run's command, time and CPU kept beside its cells.

    Raises:
        PrendError: If a file is unreadable, or the files differ in backbone, game or seeds, or repeat a cell.
    """
    results = []
    for path in paths:
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise PrendError(f"cannot read {path} ({type(err).__name__})",
                             "pass OUT.json files this script wrote") from None
    first = results[0]
    cells: dict[str, Any] = {}
    frame_sets: dict[str, Any] = {}
    for path, result in zip(paths, results, strict=True):
        if any(result.get(k) != first.get(k) for k in ("backbone", "game", "seeds")):
            raise PrendError(f"{path} probes another backbone, game or seeds than {paths[0]}",
                             "combine runs of one backbone, game and seed list")
        for name, cell in result["cells"].items():
            if name in cells:
                raise PrendError(f"the cell {name} is in two files", "pass each cell once")
            cells[name] = {**cell, "run": {k: result[k] for k in ("command", "seconds", "cpu")}}
        frame_sets.update(result["frame_sets"])
    order = [f"{c}/{f}" for c in CLASSIFIERS for f in FRAMES]
    return {**{k: first[k] for k in ("game", "backbone", "facts", "seeds", "settings")}, "frame_sets": frame_sets,
            "cells": {n: cells[n] for n in order if n in cells}, "cpu": first["cpu"],
            "seconds": sum(r["seconds"] for r in results), "combined_from": [str(p) for p in paths]}


def _choices(value: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    if not chosen or not set(chosen) <= set(allowed) or len(set(chosen)) < len(chosen):
        raise PrendError(f"{flag} {value}: choose each of {', '.join(allowed)} at most once", f"e.g. {flag} "
                         + ",".join(allowed))
    return chosen


def atariari_parts(episodes: Any, seeds: list[int]) -> dict[int, np.ndarray]:
    """Per seed, AtariARI's split of a ``collect_episodes`` set (0/1/2 train/val/test, -1 dropped or duplicate)."""
    lengths = [len(f) for f in episodes.frames]
    parts = {}
    for seed in seeds:
        part = probe_split(lengths, seed)
        part[duplicate_test_frames(episodes.frames, part)] = -1
        parts[seed] = part
    return parts


def prend_rows_and_parts(data: FrameData, game: str, seeds: list[int],
                         settings: StateProbeSettings) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The rows ``prend probe --state`` probes for ``game`` and, per seed, its split of them as parts.

    The same selection as :func:`prend.pretrain.state_probe.state_probe`: the game's frames, stream fragments of
    at most ``settings.short_episode`` frames left out, every ``settings.stride``-th step; per seed
    :func:`three_way_split` with test 4-stacks seen in train or validation removed.
    """
    rows = np.flatnonzero(data.game_ids == atari_pb_game_id(game))
    if not len(rows):
        raise PrendError(f"{game} has no frames in the prend probe set",
                         f"collect it: prend collect --ram --games {game}")
    episode_ids, lengths = np.unique(data.episode[rows], return_counts=True)
    short = episode_ids[lengths <= settings.short_episode]
    rows = rows[~np.isin(data.episode[rows], short) & (data.t[rows] % settings.stride == 0)]
    hashes = stack_hashes(data, rows)
    parts = {}
    for seed in seeds:
        train, val, test = three_way_split(data.episode[rows], dataclasses.replace(settings, seed=seed))
        test = test & ~duplicate_test_rows(data, rows, (train, val, test), hashes)
        part = np.full(len(rows), -1)
        part[train], part[val], part[test] = 0, 1, 2
        parts[seed] = part
    return rows, parts


def gain_table(result: dict[str, Any]) -> list[str]:
    """Markdown: the category mean of backbone and twin, and the gain, per (classifiers, frames) cell."""
    cells = result["cells"]
    frames = [f for f in FRAMES if any(c["frames"] == f for c in cells.values())]
    classifiers = [c for c in CLASSIFIERS if any(v["classifiers"] == c for v in cells.values())]
    lines = [f"Category mean (AtariARI's figure) on {result['game']}: backbone / random twin (**gain**), mean over "
             f"split seeds {result['seeds']}", "",
             "| classifiers \\ frames | " + " | ".join(f"{f}'s frames" for f in frames) + " |",
             "|---|" + "---|" * len(frames)]
    for clf in classifiers:
        row = []
        for fr in frames:
            cell = cells.get(f"{clf}/{fr}")
            row.append("—" if cell is None else f"{cell['backbone']['category_mean']:.3f} / "
                       f"{cell['twin']['category_mean']:.3f} (**{cell['gain']:+.3f}**)")
        lines.append(f"| {clf}'s classifiers | " + " | ".join(row) + " |")
    variables = next(iter(cells.values()))["backbone"]["variables"]
    lines += ["", "Per variable, weighted F1 backbone / twin:", "",
              "| variable | " + " | ".join(cells) + " |", "|---|" + "---|" * len(cells)]
    for var in variables:
        lines.append(f"| {var} | " + " | ".join(f"{c['backbone']['variables'][var]:.3f} / "
                                                 f"{c['twin']['variables'][var]:.3f}" for c in cells.values()) + " |")
    lines += ["", "Frames per cell: " + "; ".join(
        f"{name}: {info['frames']:,} frames, {info['episodes']} episodes"
        for name, info in result["frame_sets"].items())
        + f". {result['backbone']} ({result['facts'].get('arch')}, twin seed {result['facts'].get('init_seed')}); "
        f"{result['cpu']}; {result['seconds']:.0f} s."]
    return lines


def _mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"category_mean": float(np.mean([r["across_categories"] for r in runs])),
            "per_seed": [float(r["across_categories"]) for r in runs],
            "mean": float(np.mean([r["mean"] for r in runs])),
            "variables": {v: float(np.mean([r["variables"][v] for r in runs])) for v in runs[0]["variables"]},
            "variables_per_seed": [r["variables"] for r in runs], "dropped": runs[0]["dropped"]}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cells; returns the exit code (2 with one line for bad input)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    say = lambda line: print(line, flush=True)  # noqa: E731 - a one-line logger
    start = time.time()
    if args.combine:
        try:
            result = combine(args.combine)
        except PrendError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return write(result, args.out, say)
    try:
        frames = _choices(args.frames, FRAMES, "--frames")
        classifiers = _choices(args.classifiers, CLASSIFIERS, "--classifiers")
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise PrendError(f"--seeds {args.seeds} is not a list of integers", "e.g. --seeds 0,1,2") from None
        for name, path in (("atariari", args.atariari_data), ("prend", args.prend_data)):
            if name in frames and path is None:
                raise PrendError(f"--frames {name} needs --{name}-data",
                                 f"pass --{name}-data DIR, or drop it from --frames")
        backbone, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=Path(args.backbone)))
        encoders = {"backbone": backbone.eval(), "twin": twin.eval()}
        inputs: dict[str, tuple[dict[str, np.ndarray], np.ndarray, dict[int, np.ndarray]]] = {}
        frame_sets: dict[str, Any] = {}
        if "atariari" in frames:
            root = collect_episodes(args.game, args.atariari_steps, args.atariari_seed, args.atariari_data,
                                    "stack84", say)
            episodes = load_episodes(root)
            say(f"atariari frames: {episodes.steps:,} in {len(episodes)} episodes ({root}); encoding ...")
            with torch.no_grad():
                feats = {n: np.concatenate(encode(e, episodes)) for n, e in encoders.items()}
            parts = atariari_parts(episodes, seeds)
            inputs["atariari"] = (feats, np.concatenate(episodes.ram), parts)
            frame_sets["atariari"] = {
                "source": str(root), "frames": episodes.steps, "episodes": len(episodes),
                "episodes_probed": sum(len(f) > MIN_EPISODE_LENGTH for f in episodes.frames),
                "split": {str(s): {k: int((p == i).sum()) for i, k in enumerate(("train", "val", "test"))}
                          for s, p in parts.items()}}
        if "prend" in frames:
            data = FrameData.load(args.prend_data, [args.game])
            if data.ram is None:
                raise PrendError(f"{args.prend_data} holds no RAM", "collect it with prend collect --ram")
            rows, parts = prend_rows_and_parts(data, args.game, seeds, SETTINGS["prend"])
            say(f"prend frames: {len(rows):,} probed of {len(data):,} ({args.prend_data}); encoding ...")
            feats = {n: extract_features(e, data, rows, desc=n) for n, e in encoders.items()}
            inputs["prend"] = (feats, data.ram[rows], parts)
            frame_sets["prend"] = {
                "source": str(args.prend_data), "frames": int(len(rows)),
                "episodes": int(len(np.unique(data.episode[rows]))),
                "split": {str(s): {k: int((p == i).sum()) for i, k in enumerate(("train", "val", "test"))}
                          for s, p in parts.items()}}
        cells: dict[str, Any] = {}
        for clf in classifiers:
            settings = dataclasses.replace(SETTINGS[clf], max_epochs=args.max_epochs)
            for fr in frames:
                feats, ram, parts = inputs[fr]
                cell: dict[str, Any] = {"classifiers": clf, "frames": fr}
                for name in encoders:
                    tick = time.time()
                    runs = [probe_features(feats[name], ram, args.game, parts[s], s, clf, settings) for s in seeds]
                    cell[name] = {**_mean(runs), "seconds": round(time.time() - tick, 1)}
                    say(f"{clf} classifiers on {fr}'s frames, {name}: category mean "
                        f"{cell[name]['category_mean']:.3f} ({cell[name]['seconds']:.0f} s)")
                cell["gain"] = cell["backbone"]["category_mean"] - cell["twin"]["category_mean"]
                cells[f"{clf}/{fr}"] = cell
    except PrendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = {"game": args.game, "backbone": args.backbone,
              "facts": {k: (str(v) if isinstance(v, Path) else v) for k, v in facts.items()},
              "seeds": seeds, "settings": {k: dataclasses.asdict(dataclasses.replace(v, max_epochs=args.max_epochs))
                                           for k, v in SETTINGS.items()},
              "frame_sets": frame_sets, "cells": cells, "cpu": cpu_summary(), "threads": torch.get_num_threads(),
              "seconds": round(time.time() - start, 1),
              "command": " ".join(["benchmarks/atariari_probe.py", *(argv if argv is not None else sys.argv[1:])])}
    return write(result, args.out, say)


def write(result: dict[str, Any], out: Path, say: Any) -> int:
    """Write ``out.json`` and ``out.md`` (the gain table), print the table; returns 0."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    table = gain_table(result)
    out.with_suffix(".md").write_text("\n".join(table) + "\n")
    say("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
