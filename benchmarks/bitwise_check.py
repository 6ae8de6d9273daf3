"""Do the built-in methods still compute the same numbers as at an earlier commit? Bit for bit, on the CPU.

Trains the same tiny deterministic runs with the working tree's ``src`` and with a git ref's (checked out by
``git worktree add`` into a temporary folder, put first on ``PYTHONPATH``), then compares every value of
``metrics.jsonl`` (timings aside) and every entry of the final ``checkpoint.pt`` (networks, normalisers,
optimizer moments, RNG states; the config string aside, since new versions add fields) exactly.

Each run: ``--game Boxing``, 2 envs x 16 steps, one warm-up rollout, seed 1, one torch thread, channels-last,
micro-batch 16, 2 iterations, then ``--resume`` to 3 (so the checkpoint's round trip is in the comparison).

Usage:
    .venv/bin/python benchmarks/bitwise_check.py 74a464b^                    # rnd, rnd-lr, prend, none
    .venv/bin/python benchmarks/bitwise_check.py HEAD~5 --methods rnd prend --bf16-off
    .venv/bin/python benchmarks/bitwise_check.py 74a464b^ --keep runs/bitwise  # keep the run directories

``--bf16-off`` adds, per method, a run of the working tree with ``--no-reward-bf16`` given explicitly,
compared with the ref's default run (the ref gets the flag too when its config has the field). Exit code 0
when every comparison is identical, 1 otherwise. About 20-40 s per run on a 2-core machine (mostly start-up):
a few minutes for the defaults.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from prend.agent.perf import cpu_summary
from prend.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--game", "Boxing", "--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--seed", "1",
        "--torch-threads", "1", "--memory-format", "channels-last", "--micro-batch", "16", "--probe-size", "8",
        "--probe-every", "1", "--no-progress", "--no-tensorboard"]
"""The pinned flags of every run (those a resume reads back from the checkpoint's config)."""
TIMING = ("time/", "charts/steps_per_second")
"""Metric keys that are wall-clock timings, not computed values: left out of the comparison."""
SKIPPED = {"config"}
"""Checkpoint entries not compared: the config's JSON string gains fields between versions."""


def git(*args: str) -> str:
    """A git command's stdout in the repository."""
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def train(src: Path, out: Path, flags: list[str], log: Path) -> str | None:
    """Train 2 iterations then resume to 3 with prend from ``src``, in a separate process (``python -P``).

    Returns ``None``, or why it failed (the exit code and the last line of its output, all of it in ``log``).
    """
    env = os.environ | {"PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    for argv in ([*TINY, *flags, "--total-steps", "64", "--out", str(out)],
                 ["--resume", str(out), "--total-steps", "96"]):
        done = subprocess.run([sys.executable, "-P", "-m", "prend.cli", "train", *argv], env=env, cwd=log.parent,
                              capture_output=True, text=True)
        with open(log, "a") as handle:
            handle.write(f"$ PYTHONPATH={src} prend train {' '.join(argv)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            return f"exit {done.returncode}: {last}"
    return None


def metric_records(run: Path) -> list[dict[str, Any]]:
    """``metrics.jsonl`` without the timing keys."""
    records = read_metrics(run / "metrics.jsonl")
    return [{k: v for k, v in record.items() if not k.startswith(TIMING)} for record in records]


def same_value(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (a metric with nothing to average)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def compare_metrics(new: Path, old: Path) -> tuple[str, list[str], set[str]]:
    """(``values`` compared, the differing ``record:key`` names, keys logged by only one side)."""
    a, b = metric_records(new), metric_records(old)
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} records", [f"{len(a)} vs {len(b)} records"], set()
    differ, one_side, count = [], set(), 0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        one_side |= x.keys() ^ y.keys()
        for key in x.keys() & y.keys():
            count += 1
            if not same_value(x[key], y[key]):
                differ.append(f"{i + 1}:{key}")
    return f"{count} values in {len(a)} records", differ, one_side


def leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A nested checkpoint as ``path -> leaf`` (tensors, numbers, strings)."""
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items() for k, v in leaves(value, f"{prefix}{key}/").items()}
    if isinstance(obj, list | tuple):
        return {k: v for i, value in enumerate(obj) for k, v in leaves(value, f"{prefix}{i}/").items()}
    return {prefix.rstrip("/"): obj}


def compare_checkpoints(new: Path, old: Path) -> tuple[str, list[str], set[str]]:
    """(``tensors`` compared, the differing entries, entries held by only one side)."""
    a, b = (leaves({k: v for k, v in torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True).items()
                    if k not in SKIPPED}) for run in (new, old))
    differ, tensors = [], 0
    for key in sorted(a.keys() & b.keys()):
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            tensors += 1
            if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x, y):
                differ.append(key)
        elif not same_value(x, y):
            differ.append(key)
    return f"{tensors} tensors, {len(a.keys() & b.keys()) - tensors} other", differ, a.keys() ^ b.keys()


def main(argv: list[str] | None = None) -> int:
    """Train, compare, print one row per run and a line per difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ref", help="the git ref to compare with (e.g. 74a464b^, HEAD~3)")
    parser.add_argument("--methods", nargs="+", default=["rnd", "rnd-lr", "prend", "none"])
    parser.add_argument("--bf16-off", action="store_true", help="also the working tree with --no-reward-bf16")
    parser.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary folder)")
    args = parser.parse_args(argv)
    sha = git("rev-parse", "--verify", f"{args.ref}^{{commit}}")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    work = Path(tempfile.mkdtemp(prefix="prend-bitwise-"))
    tree = work / "ref"
    git("worktree", "add", "--detach", str(tree), sha)
    try:
        ref_has_bf16 = "reward_bf16" in (tree / "src" / "prend" / "config.py").read_text()
        runs = work / "runs"
        runs.mkdir()
        variants = [(m, [], []) for m in args.methods]
        if args.bf16_off:
            off = ["--no-reward-bf16"]
            variants += [(m, off, off if ref_has_bf16 else []) for m in args.methods if m != "none"]
        print(f"working tree {git('rev-parse', '--short', 'HEAD')}{' + uncommitted src changes' if dirty else ''} "
              f"vs {args.ref} ({sha[:7]}); torch {torch.__version__}; CPU: {cpu_summary()}")
        rows, failed = [], False
        ref_runs: dict[tuple[str, ...], Path] = {}
        for method, new_flags, old_flags in variants:
            label = method + (" " + " ".join(new_flags) if new_flags else "")
            name = label.replace(" ", "_")
            new = runs / f"{name}-new"
            # The ref's run with the same flags is trained once (--bf16-off against a ref without the flag).
            old = ref_runs.get((method, *old_flags)) or runs / f"{name}-ref"
            print(f"training {label} ...", flush=True)
            sides = [("working tree", ROOT / "src", new, new_flags)]
            sides += [(args.ref, tree / "src", old, old_flags)] * (not old.exists())
            problems = [(side, why) for side, src, out, flags in sides
                        if (why := train(src, out, ["--method", method, *flags], runs / "train.log"))]
            ref_runs[(method, *old_flags)] = old
            if problems:
                failed = True
                rows.append((label, "-", "-", "TRAINING FAILED"))
                for side, why in problems:
                    print(f"  {label}: prend train failed at the {side}: {why}")
                continue
            m_what, m_diff, m_one = compare_metrics(new, old)
            c_what, c_diff, c_one = compare_checkpoints(new, old)
            same = not m_diff and not c_diff
            failed |= not same
            rows.append((label, m_what, c_what, "identical" if same else "DIFFERENT"))
            for what, names in (("metric", m_diff), ("checkpoint entry", c_diff)):
                if names:
                    print(f"  {label}: {len(names)} {what}s differ: {', '.join(names[:8])}")
            for what, names in (("metric keys", m_one), ("checkpoint entries", c_one)):
                if names:
                    print(f"  {label}: {what} on one side only (not compared): {', '.join(sorted(names)[:8])}")
        print()
        print("| run | metrics.jsonl | checkpoint.pt | result |")
        print("|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return 1 if failed else 0
    finally:
        if args.keep and (work / "runs").exists():
            shutil.copytree(work / "runs", args.keep, dirs_exist_ok=True)
        git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
