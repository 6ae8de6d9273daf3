"""Agent steps per second of the whole training loop (rollout, intrinsic reward, GAE, PPO + predictor
update), with the environments' own stepping rate measured in the same run.

Usage:
    .venv/bin/python benchmarks/throughput.py                       # rnd at 8x128 and 128x128
    .venv/bin/python benchmarks/throughput.py --methods rnd rnd-lr prend --configs 8x128
    .venv/bin/python benchmarks/throughput.py --iterations 3 --device cuda

Each figure is the median over ``--iterations`` timed iterations after one untimed warm-up iteration.
One agent step = one environment step of one env = 4 emulator frames.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from prend.agent.trainer import Trainer
from prend.config import TrainConfig
from prend.envs import make_env


def env_only_rate(cfg: TrainConfig, seconds: float) -> float:
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
    start = time.perf_counter()
    trainer.intrinsic.encoder.compact(obs)
    return batch / (time.perf_counter() - start)


def loop_rate(cfg: TrainConfig, iterations: int) -> tuple[float, dict[str, float]]:
    trainer = Trainer(cfg)
    backbone_fps = backbone_rate(trainer) if cfg.intrinsic.method == "prend" else float("nan")
    trainer.start()
    trainer.train_iteration()  # untimed: allocator and oneDNN warm-up
    records = [trainer.train_iteration() for _ in range(iterations)]
    trainer.close()
    sps = statistics.median(r["charts/steps_per_second"] for r in records)
    phases = ("time/rollout_s", "time/intrinsic_s", "time/update_s")
    split = {k: statistics.median(r[k] for r in records) for k in phases}
    split["backbone_fps"] = backbone_fps
    return sps, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["rnd"])
    parser.add_argument("--configs", nargs="+", default=["8x128", "128x128"], help="ENVSxSTEPS")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--env-seconds", type=float, default=10.0)
    parser.add_argument("--game", default="Boxing")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the policy")
    parser.add_argument("--backbones", nargs="+", default=[None],
                        help="PreND backbones to measure (e.g. compact resnet18 resnet50; default: the config's)")
    parser.add_argument("--backbone-width", type=float, default=1.0, help="width of backbones named by architecture")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, game {args.game}")
    print(f"{'method':<16} {'envs x steps':>12} {'loop steps/s':>13} {'env-only steps/s':>17} {'ratio':>6}"
          f"  {'rollout s':>9} {'intrinsic s':>11} {'update s':>8} {'backbone frames/s':>17}")
    for config in args.configs:
        envs, steps = (int(x) for x in config.split("x"))
        runs = [(m, b) for m in args.methods for b in (args.backbones if m == "prend" else [None])]
        for method, backbone in runs:
            cfg = TrainConfig()
            cfg.env.game, cfg.env.num_envs, cfg.ppo.num_steps = args.game, envs, steps
            cfg.intrinsic.method, cfg.intrinsic.obs_norm_init_iters = method, 1
            cfg.run.device, cfg.run.probe_size, cfg.ppo.bf16 = args.device, 0, args.bf16
            if backbone:
                cfg.intrinsic.backbone, cfg.intrinsic.backbone_width = backbone, args.backbone_width
            env_rate = env_only_rate(cfg, args.env_seconds)
            sps, split = loop_rate(cfg, args.iterations)
            label = f"{method}:{backbone}" if backbone else method
            print(f"{label:<16} {config:>12} {sps:>13.0f} {env_rate:>17.0f} {sps / env_rate:>6.2f}"
                  f"  {split['time/rollout_s']:>9.2f} {split['time/intrinsic_s']:>11.2f} {split['time/update_s']:>8.2f}"
                  f" {split['backbone_fps']:>17.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
