"""Agent steps per second of the whole training loop (rollout, intrinsic reward, GAE, PPO + predictor
update), with the environments' own stepping rate measured in the same run.

Usage:
    .venv/bin/python benchmarks/throughput.py                       # rnd at 8x128 and 128x128
    .venv/bin/python benchmarks/throughput.py --methods rnd rnd-lr prend --configs 8x128
    .venv/bin/python benchmarks/throughput.py --methods rnd snd-v snd-std snd-vic --configs 8x128   # SND beside RND
    .venv/bin/python benchmarks/throughput.py --methods rnd snd-std --update-proportions 0.25 0.125   # rows per share
    .venv/bin/python benchmarks/throughput.py --configs 8x128 --torch-threads 1 2 --rounds 2   # A B A B
    .venv/bin/python benchmarks/throughput.py --iterations 3 --device cuda --bf16 off on
    .venv/bin/python benchmarks/throughput.py --methods rnd snd-vic --configs 8x128 --bf16 off reward all
    .venv/bin/python benchmarks/throughput.py --table results.jsonl  # a --jsonl file as a Markdown table

Each figure is the median over ``--iterations`` timed iterations after one untimed warm-up iteration.
One agent step = one environment step of one env = 4 emulator frames. Every row names the CPU (model and
vector extensions) or GPU it ran on, and the threads and memory format the trainer chose
(``prend.agent.perf``). Compare figures only within one invocation: list the variants to compare in one
command, with ``--rounds`` to interleave them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prend.agent.perf import cpu_summary, resolve_device
from prend.agent.trainer import Trainer
from prend.config import TrainConfig
from prend.envs import make_env
from prend.errors import PrendError
from prend.intrinsic.methods import BUILTIN_METHODS
from prend.intrinsic.pretrained import make_backbone

COLUMNS = ("method", "envs x steps", "threads", "format", "micro", "bf16", "loop steps/s", "env-only steps/s",
           "rollout s", "intrinsic s", "update s", "backbone frames/s", "device")
"""The columns of the printed and the Markdown table."""


def env_only_rate(cfg: TrainConfig, seconds: float) -> float:
    """Agent steps/s of the vector env alone, under random actions, for ``seconds`` (NaN when 0)."""
    if seconds <= 0:
        return float("nan")
    env = make_env(cfg.env)
    env.reset(0)
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, env.num_actions, env.num_envs))
        steps += env.num_envs
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def backbone_rate(trainer: Trainer, batch: int = 512) -> float:
    """Frames/s of the frozen encoder alone (PreND's backbone), on random frame stacks."""
    obs = torch.randint(0, 256, (batch, *trainer.env.obs_shape), dtype=torch.uint8, device=trainer.device)
    trainer.intrinsic.encoder.compact(obs)
    _sync(trainer.device)
    start = time.perf_counter()
    trainer.intrinsic.encoder.compact(obs)
    _sync(trainer.device)
    return batch / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loop_rate(cfg: TrainConfig, iterations: int) -> tuple[float, dict[str, Any]]:
    """Median agent steps/s of ``iterations`` training iterations, the per-phase split and the perf choice."""
    trainer = Trainer(cfg)
    backbone_fps = backbone_rate(trainer) if cfg.intrinsic.method == "prend" else float("nan")
    trainer.start()
    trainer.train_iteration()  # untimed: allocator and oneDNN warm-up
    records = [trainer.train_iteration() for _ in range(iterations)]
    trainer.close()
    sps = statistics.median(r["charts/steps_per_second"] for r in records)
    phases = ("time/rollout_s", "time/intrinsic_s", "time/update_s")
    split: dict[str, Any] = {k: statistics.median(r[k] for r in records) for k in phases}
    split["backbone_fps"] = backbone_fps
    split["perf"] = trainer.perf
    return sps, split


def device_label(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and vector extensions."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return cpu_summary()


def build_config(args: argparse.Namespace, method: str, backbone: str | None, envs: int, steps: int,
                 threads: int, memory_format: str, bf16: str, micro_batch: int = 0,
                 update_proportion: float | None = None) -> TrainConfig:
    """The benchmark's config for one row: defaults, except what the row varies."""
    cfg = TrainConfig()
    cfg.env.game, cfg.env.num_envs, cfg.ppo.num_steps = args.game, envs, steps
    cfg.intrinsic.method, cfg.intrinsic.obs_norm_init_iters = method, 1
    cfg.run.device, cfg.run.probe_size = args.device, 0
    cfg.run.torch_threads, cfg.run.memory_format, cfg.run.micro_batch = threads, memory_format, micro_batch
    cfg.ppo.bf16 = cfg.intrinsic.backbone_bf16 = bf16 in ("on", "all")
    cfg.intrinsic.reward_bf16 = bf16 in ("reward", "all")
    if update_proportion is not None:
        cfg.intrinsic.update_proportion = update_proportion
    if backbone:
        cfg.intrinsic.backbone, cfg.intrinsic.backbone_width = backbone, args.backbone_width
    return cfg


def _bf16_cell(value: bool | str) -> str:
    """The bf16 setting of a record: a string, or a bool in records written before 'reward' and 'all' existed."""
    return value if isinstance(value, str) else ("on" if value else "off")


def _cell(value: Any, digits: int = 0) -> str:
    if isinstance(value, float):
        return "—" if value != value else f"{value:,.{digits}f}"
    return str(value)


def row_cells(record: dict[str, Any]) -> list[str]:
    """A JSONL record's cells, in :data:`COLUMNS` order."""
    return [record["method"], record["config"], _cell(record["threads"]), record["memory_format"],
            _cell(record.get("micro_batch", "—")), _bf16_cell(record["bf16"]), _cell(record["steps_per_s"]),
            _cell(record["env_steps_per_s"]),
            _cell(record["rollout_s"], 2), _cell(record["intrinsic_s"], 2), _cell(record["update_s"], 2),
            _cell(record["backbone_fps"]), record["device"]]


def markdown_table(records: list[dict[str, Any]]) -> str:
    """Records (as written by ``--jsonl``) as a Markdown table.

    Example:
        >>> rec = {"method": "rnd", "config": "8x128", "threads": 1, "memory_format": "channels-last",
        ...        "bf16": False, "steps_per_s": 412.3, "env_steps_per_s": float("nan"), "rollout_s": 0.5,
        ...        "intrinsic_s": 0.1, "update_s": 1.25, "backbone_fps": float("nan"), "device": "cpu X"}
        >>> print(markdown_table([rec]).splitlines()[2])  # a record from before micro-batches: "—"
        | rnd | 8x128 | 1 | channels-last | — | off | 412 | — | 0.50 | 0.10 | 1.25 | — | cpu X |
    """
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in records]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["rnd"], choices=list(BUILTIN_METHODS))
    parser.add_argument("--configs", nargs="+", default=["8x128", "128x128"], help="ENVSxSTEPS")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--env-seconds", type=float, default=10.0, help="emulator-only timing (0: skip)")
    parser.add_argument("--game", default="Boxing")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--torch-threads", nargs="+", type=int, default=[0], help="0: chosen at start-up")
    parser.add_argument("--memory-formats", nargs="+", default=["auto"],
                        choices=["auto", "channels-last", "contiguous"])
    parser.add_argument("--micro-batches", nargs="+", type=int, default=[0],
                        help="samples per forward/backward pass in the update (0: chosen at start-up; a size "
                             "at or above the minibatch runs it whole)")
    parser.add_argument("--bf16", nargs="+", default=["off"], choices=["off", "on", "reward", "all"],
                        help="bfloat16 autocast (changes the numbers): 'on' for the policy and PreND's backbone "
                             "(--bf16 --backbone-bf16), 'reward' for the reward's target and predictor "
                             "(--reward-bf16), 'all' for both")
    parser.add_argument("--update-proportions", nargs="+", type=float, default=[None],
                        help="the intrinsic update's share of each minibatch (default: the config's, 0.25); a row "
                             "that is not the default is labelled method@share (changes what is computed)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole grid, interleaved (A B A B)")
    parser.add_argument("--backbones", nargs="+", default=[None],
                        help="PreND backbones to measure (e.g. compact resnet18 resnet50; default: the config's)")
    parser.add_argument("--backbone-width", type=float, default=1.0, help="width of backbones named by architecture")
    parser.add_argument("--jsonl", type=Path, help="also append one JSON record per row to this file")
    parser.add_argument("--table", type=Path, help="print the records of this --jsonl file as Markdown; no runs")
    args = parser.parse_args(argv)
    for config in args.configs:
        parts = config.split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            parser.error(f"--configs: '{config}' is not ENVSxSTEPS, e.g. 8x128")
    if args.iterations < 1 or args.rounds < 1:
        parser.error("--iterations and --rounds must be >= 1")
    if any(size < 0 for size in args.micro_batches):
        parser.error("--micro-batches must be >= 0 (0: chosen at start-up)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the grid (or print a table); returns the exit code."""
    args = parse_args(argv)
    if args.table is not None:
        print(markdown_table([json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]))
        return 0
    try:
        device = resolve_device(args.device)
        if "prend" in args.methods:  # a bad --backbones name fails here, in one line, before any row is timed
            for backbone in args.backbones:
                if backbone is not None:
                    cfg = TrainConfig().intrinsic
                    cfg.method, cfg.backbone, cfg.backbone_width = "prend", backbone, args.backbone_width
                    make_backbone(cfg)
    except PrendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    label = device_label(device)
    print(f"torch {torch.__version__}, game {args.game}, device: {label}")
    print(f"{'method':<16} {'envs x steps':>12} {'thr':>3} {'format':>13} {'micro':>5} {'bf16':>6} {'loop steps/s':>12}"
          f" {'env-only':>8} {'rollout s':>9} {'intrinsic s':>11} {'update s':>8} {'backbone f/s':>12}  device")
    grid = [(config, method, backbone, threads, fmt, micro, bf16, share)
            for config in args.configs
            for method in args.methods for backbone in (args.backbones if method == "prend" else [None])
            for threads, fmt, micro, bf16, share in itertools.product(args.torch_threads, args.memory_formats,
                                                                      args.micro_batches, args.bf16,
                                                                      args.update_proportions)]
    for _, (config, method, backbone, threads, fmt, micro, bf16, share) in itertools.product(range(args.rounds),
                                                                                              grid):
        envs, steps = (int(x) for x in config.split("x"))
        cfg = build_config(args, method, backbone, envs, steps, threads, fmt, bf16, micro, share)
        env_rate = env_only_rate(cfg, args.env_seconds)
        sps, split = loop_rate(cfg, args.iterations)
        name = f"{method}:{backbone}" if backbone else method
        if cfg.intrinsic.update_proportion != TrainConfig().intrinsic.update_proportion:
            name += f"@{cfg.intrinsic.update_proportion:g}"
        record = {"method": name, "config": config, "update_proportion": cfg.intrinsic.update_proportion,
                  "threads": split["perf"]["threads"], "memory_format": split["perf"]["memory_format"],
                  "micro_batch": split["perf"]["micro_batch"],
                  "bf16": bf16, "steps_per_s": sps, "env_steps_per_s": env_rate,
                  "rollout_s": split["time/rollout_s"], "intrinsic_s": split["time/intrinsic_s"],
                  "update_s": split["time/update_s"], "backbone_fps": split["backbone_fps"], "device": label,
                  "torch": torch.__version__, "perf": split["perf"]}
        print(f"{record['method']:<16} {config:>12} {record['threads']:>3} {record['memory_format']:>13}"
              f" {record['micro_batch']:>5} {bf16:>6}"
              f" {sps:>12.0f} {env_rate:>8.0f} {record['rollout_s']:>9.2f} {record['intrinsic_s']:>11.2f}"
              f" {record['update_s']:>8.2f} {split['backbone_fps']:>12.0f}  {label}", flush=True)
        if args.jsonl is not None:
            with args.jsonl.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
