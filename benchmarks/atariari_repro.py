"""Reproduce AtariARI's Boxing result (Anand et al. 2019, Table 2): ST-DIM 0.58 against a random CNN's 0.19.

Usage (each stage resumes where it stopped; ``all`` runs them in order):
    .venv/bin/python benchmarks/atariari_repro.py all --out /work/exp/atariari [--frame full|stack84]
    .venv/bin/python benchmarks/atariari_repro.py probe --out /work/exp/atariari --encoders epoch000,last

Stages:

- ``collect``: AtariARI's random-agent frames with RAM (:func:`prend.pretrain.atariari.collect_episodes`):
  ``--pretrain-steps`` (100k) frames for the encoder (seed ``--seed``) and ``--probe-steps`` (50k) for the
  probe (seed ``--seed + 1``, so the probe never sees a pre-training frame);
- ``pretrain``: ST-DIM, AtariARI's schedule (:class:`prend.pretrain.atariari.STDIMTrainer`), checkpointed
  every 100 batches; SIGINT/SIGTERM stop it at the next batch with a checkpoint; ``--max-epochs`` caps it
  below AtariARI's 100 (the cap is part of the settings a resume checks, so raise it only in a new --out);
- ``probe``: AtariARI's probe of each encoder's 256-d vector (:mod:`prend.pretrain.atariari_probe`): the
  untrained encoder (``init``: the random-init twin), the one after each finished epoch (``epochNNN``), the
  latest (``last``) and the best-validation one (``best``), over ``--probe-seeds`` splits; writes
  ``NAME.json`` and ``NAME.md`` (``--name``, default ``probe``: per variable, per category and the category
  mean beside AtariARI's).

Everything goes under ``--out/<frame>/``: ``data/`` (the collections), ``stdim/`` (the run), the probe files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from prend.agent.perf import cpu_summary
from prend.errors import PrendError
from prend.pretrain.atariari import STDIMSettings, STDIMTrainer, collect_episodes, load_episodes, split_train_val
from prend.pretrain.atariari_probe import CLASSIFIERS, format_probe, probe_encoders, run_encoders
from prend.signals import StopFlag


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("collect", "pretrain", "probe", "all"))
    parser.add_argument("--out", type=Path, required=True, help="where data, run and results go")
    parser.add_argument("--game", default="boxing")
    parser.add_argument("--frame", choices=("full", "stack84"), default="full",
                        help="full: 210x160 single frames (AtariARI's); stack84: prend's 84x84 4-stacks")
    parser.add_argument("--pretrain-steps", type=int, default=100_000, help="AtariARI: 100k")
    parser.add_argument("--probe-steps", type=int, default=50_000, help="AtariARI: 50k")
    parser.add_argument("--seed", type=int, default=42, help="AtariARI's default seed: 42")
    parser.add_argument("--max-epochs", type=int, default=100, help="AtariARI: 100 (with patience 15)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--encoders", default="all",
                        help="probe: comma-separated init, last, best, epochNNN, or all of them")
    parser.add_argument("--probe-seeds", default="0,1,2", help="probe: the splits' seeds")
    parser.add_argument("--classifiers", default="atariari,prend",
                        help="probe: atariari (their classifiers on raw features), prend (standardised), or both")
    parser.add_argument("--name", default="probe", help="probe: the results' file stem (NAME.json, NAME.md)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stage(s); returns the exit code."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    root = args.out / args.frame
    data = root / "data"
    say = lambda line: print(line, flush=True)  # noqa: E731 - a one-line logger
    try:
        if args.stage in ("collect", "all", "pretrain"):
            pre = collect_episodes(args.game, args.pretrain_steps, args.seed, data, args.frame, say)
        if args.stage in ("collect", "all", "probe"):
            probe_dir = collect_episodes(args.game, args.probe_steps, args.seed + 1, data, args.frame, say)
        if args.stage in ("pretrain", "all"):
            train, val = split_train_val(load_episodes(pre), args.seed)
            say(f"pretrain: {len(train)} training episodes ({train.steps:,} frames), {len(val)} validation "
                f"({val.steps:,}); {cpu_summary()}; {torch.get_num_threads()} thread(s)")
            settings = STDIMSettings(max_epochs=args.max_epochs, seed=args.seed)
            with StopFlag("stopping after this batch (saving)...") as stop:
                summary = STDIMTrainer(train, val, root / "stdim", settings, say).fit(lambda: stop.raised is not None)
            say(json.dumps(summary))
            if not summary["finished"]:
                return 0 if stop.raised is None else 128 + stop.raised
        if args.stage in ("probe", "all"):
            start = time.time()
            encoders = run_encoders(root / "stdim", args.encoders)
            seeds = [int(s) for s in args.probe_seeds.split(",")]
            classifiers = [c.strip() for c in args.classifiers.split(",")]
            if not set(classifiers) <= set(CLASSIFIERS):
                raise PrendError(f"unknown classifiers in --classifiers {args.classifiers}",
                                 f"choose from {', '.join(CLASSIFIERS)}")
            result = probe_encoders(encoders, load_episodes(probe_dir), seeds, say, classifiers)
            result.update(cpu=cpu_summary(), seconds=round(time.time() - start, 1), frame=args.frame,
                          command=" ".join(["benchmarks/atariari_repro.py", *(argv or sys.argv[1:])]))
            (root / f"{args.name}.json").write_text(json.dumps(result, indent=1))
            (root / f"{args.name}.md").write_text("\n".join(format_probe(result)) + "\n")
            say("\n".join(format_probe(result)))
    except PrendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
