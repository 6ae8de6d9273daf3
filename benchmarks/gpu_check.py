"""The Python half of ``benchmarks/gpu_check.sh``: 2-iteration trainings on cuda, throughput, one table.

Run it through the shell script, which first checks that there is a GPU and that torch sees it. On its own:
``python benchmarks/gpu_check.py --out DIR`` (``--plan`` prints the commands without running them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from throughput import COLUMNS, row_cells

from prend.rundir import RunDir

METHODS = ("rnd", "rnd-lr", "prend", "none")
"""Every method gets a 2-iteration training run on cuda."""

TRAIN_FLAGS = ("--device", "cuda", "--num-envs", "8", "--num-steps", "128", "--total-steps", "2048",
               "--obs-norm-init-iters", "1", "--probe-size", "8", "--probe-every", "1", "--no-progress",
               "--no-tensorboard")
"""Two iterations at the paper's 8 x 128, with every diagnostic on."""

TRAIN_TIMEOUT_S = 60
"""A 2-iteration run takes ~15 s on a GPU machine (process start, emulators, two iterations)."""

BUDGET_S = 480
"""The whole check, set-up included, stops within 8 minutes: the throughput step gets what is left."""


def plan(out: Path, iterations: int, throughput: bool) -> list[tuple[str, list[str], int]]:
    """(name, command, timeout) of each step, in order.

    Example:
        >>> [name for name, _, _ in plan(Path("o"), 2, True)]
        ['train rnd', 'train rnd-lr', 'train prend', 'train none', 'throughput']
    """
    steps = [(f"train {method}",
              [sys.executable, "-m", "prend.cli", "train", "--method", method, *TRAIN_FLAGS,
               "--out", str(out / f"train-{method}")], TRAIN_TIMEOUT_S)
             for method in METHODS]
    if throughput:
        script = str(Path(__file__).with_name("throughput.py"))
        steps.append(("throughput", [sys.executable, script, "--device", "cuda", "--methods", "rnd", "prend",
                                     "--backbones", "compact", "resnet50", "--configs", "8x128", "128x128",
                                     "--bf16", "off", "on", "--iterations", str(iterations), "--env-seconds", "0",
                                     "--jsonl", str(out / "throughput.jsonl")], BUDGET_S))
    return steps


def step_timeout(cap: float, deadline: float, now: float) -> float:
    """Seconds a step may take: its cap, cut to what is left before the deadline (at least 1).

    Example:
        >>> step_timeout(60, deadline=100.0, now=70.0), step_timeout(480, deadline=100.0, now=30.0)
        (30.0, 70.0)
    """
    return max(1.0, min(cap, deadline - now))


def train_record(run_dir: Path, name: str, result: str) -> dict[str, Any]:
    """A table record for one training check, from its run directory (whatever of it exists)."""
    # RunDir's readers, not json.loads: a run stopped by the time budget can leave a torn last metrics line.
    run = RunDir(run_dir)
    metrics = run.metrics() if run.metrics_path.exists() else []
    perf = ((run.run_info() or {}).get("started") or {}).get("perf", {})
    if result == "ok" and len(metrics) != 2:
        result = f"FAILED: {len(metrics)} iterations logged, not 2"

    def median(key: str) -> float:
        return statistics.median(r[key] for r in metrics) if metrics else float("nan")

    return {"check": name, "result": result, "method": name.split()[-1], "config": "8x128",
            "threads": perf.get("threads", "—"), "memory_format": perf.get("memory_format", "—"),
            "micro_batch": perf.get("micro_batch", "—"), "bf16": False,
            "steps_per_s": median("charts/steps_per_second"), "env_steps_per_s": float("nan"),
            "rollout_s": median("time/rollout_s"), "intrinsic_s": median("time/intrinsic_s"),
            "update_s": median("time/update_s"), "backbone_fps": float("nan"), "device": "cuda"}


def table(records: list[dict[str, Any]]) -> str:
    """One Markdown table: a check and its result, then :func:`throughput.row_cells`.

    Example:
        >>> rec = {"check": "train rnd", "result": "ok", "method": "rnd", "config": "8x128", "threads": 16,
        ...        "memory_format": "channels-last", "micro_batch": 256, "bf16": False, "steps_per_s": 2000.0,
        ...        "env_steps_per_s": float("nan"), "rollout_s": 0.4, "intrinsic_s": 0.02, "update_s": 0.1,
        ...        "backbone_fps": float("nan"), "device": "cuda"}
        >>> print(table([rec]).splitlines()[2])
        | train rnd | ok | rnd | 8x128 | 16 | channels-last | 256 | off | 2,000 | — | 0.40 | 0.02 | 0.10 | — | cuda |
    """
    header = ("check", "result", *COLUMNS)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([r["check"], r["result"], *row_cells(r)]) + " |" for r in records]
    return "\n".join(lines)


def run(out: Path, iterations: int, throughput: bool, budget_s: float) -> int:
    """Run every step within ``budget_s``, print and write the table; 0 when every check passed, 1 otherwise.

    Throughput rows are written as they are measured, so a step cut by the budget still shows what it did.
    """
    out.mkdir(parents=True, exist_ok=True)
    records, failed = [], False
    deadline = time.monotonic() + budget_s
    for name, command, cap in plan(out, iterations, throughput):
        timeout = step_timeout(cap, deadline, time.monotonic())
        print(f"gpu_check: {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        log = out / f"{name.replace(' ', '-')}.log"
        with log.open("w") as handle:
            try:
                code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout).returncode
                result = "ok" if code == 0 else f"FAILED: exit {code}, see {log}"
            except subprocess.TimeoutExpired:
                result = f"FAILED: stopped after {timeout:.0f} s (time budget), see {log}"
        print(f"gpu_check: {name}: {result} ({time.perf_counter() - start:.0f} s)", flush=True)
        if name.startswith("train"):
            records.append(train_record(out / f"train-{name.split()[-1]}", name, result))
        else:
            rows_file = out / "throughput.jsonl"
            rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
            records += [{"check": "throughput", "result": "ok", **row} for row in rows]
            if result != "ok" or not rows:
                records.append({"check": "throughput", "result": result if result != "ok" else "FAILED: no rows",
                                "method": "—", "config": "—", "threads": "—", "memory_format": "—",
                                "micro_batch": "—", "bf16": False,
                                **dict.fromkeys(("steps_per_s", "env_steps_per_s", "rollout_s", "intrinsic_s",
                                                 "update_s", "backbone_fps"), float("nan")), "device": "cuda"})
        failed |= records[-1]["result"] != "ok"
    text = table(records)
    (out / "gpu_check.md").write_text(text + "\n")
    print(text)
    print(f"gpu_check: {'FAILED' if failed else 'all checks passed'}; table in {out / 'gpu_check.md'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run (or print the plan)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="seconds left for all steps")
    parser.add_argument("--plan", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)
    if args.plan:
        for name, command, timeout in plan(args.out, args.iterations, not args.skip_throughput):
            print(f"{name} (at most {timeout} s): {' '.join(command)}")
        return 0
    return run(args.out, args.iterations, not args.skip_throughput, args.budget_s)


if __name__ == "__main__":
    sys.exit(main())
