"""Cost of the NaN/inf guard (``prend.agent.ppo.first_nonfinite``) in the PPO update.

The guard checks every minibatch's gradients before the optimizer step (one fused ``torch._foreach_norm``
and one synchronisation) and the parameters once after the update. This script times ``ppo_update`` on one
real rollout with the guard and with it replaced by a no-op, alternating, and prints the medians and their
ratio, plus the guard's own time per call. Times are this process's CPU time (``time.process_time``), so
other jobs on a shared machine disturb them less than wall-clock time.

Usage:
    .venv/bin/python benchmarks/nan_guard.py                 # rnd, 8 envs x 128 steps (the defaults)
    .venv/bin/python benchmarks/nan_guard.py --method prend --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

import prend.agent.ppo as ppo
from prend.agent.trainer import Trainer
from prend.config import TrainConfig


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="rnd")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig()
    cfg.intrinsic.method = args.method
    cfg.env.num_envs, cfg.ppo.num_steps = args.num_envs, args.num_steps
    cfg.intrinsic.obs_norm_init_iters, cfg.run.probe_size, cfg.run.progress = 1, 0, False
    trainer = Trainer(cfg)
    trainer.start()
    trainer.collect_rollout()
    trainer.compute_intrinsic_rewards()
    trainer.compute_advantages()
    start_state = copy.deepcopy((trainer.policy.state_dict(), [o.state_dict() for o in trainer.optimizers],
                                 None if trainer.intrinsic is None else trainer.intrinsic.state_dict()))
    guard = ppo.first_nonfinite

    def update(check) -> float:
        trainer.policy.load_state_dict(start_state[0])
        for opt, state in zip(trainer.optimizers, start_state[1], strict=True):
            opt.load_state_dict(state)
        if trainer.intrinsic is not None:
            trainer.intrinsic.load_state_dict(start_state[2])
        ppo.first_nonfinite = check
        t0 = time.process_time()
        ppo.ppo_update(trainer.policy, trainer.intrinsic, trainer.storage, trainer.optimizers, cfg.ppo,
                       cfg.intrinsic.update_proportion, torch.Generator().manual_seed(0))
        return time.process_time() - t0

    timings: dict[str, list[float]] = {"guard": [], "none": []}
    update(guard)  # warm-up
    for _ in range(args.repeats):
        timings["guard"].append(update(guard))
        timings["none"].append(update(lambda named: None))
    ppo.first_nonfinite = guard
    params = [p for opt in trainer.optimizers for group in opt.param_groups for p in group["params"]]
    for p in params:
        p.grad = torch.randn_like(p)
    calls, t0 = 20, time.process_time()
    for _ in range(calls):
        guard((str(i), p.grad) for i, p in enumerate(params))
    per_call = (time.process_time() - t0) / calls
    with_guard, without = statistics.median(timings["guard"]), statistics.median(timings["none"])
    n_params = sum(p.numel() for p in params)
    checks = cfg.ppo.update_epochs * cfg.ppo.num_minibatches + 1
    print(f"CPU: {_cpu_name()}, {args.threads} torch threads; "
          f"{args.method} {args.num_envs}x{args.num_steps}, {n_params / 1e6:.2f} M trained parameters")
    print(f"ppo_update with the guard:    {with_guard:.3f} CPU s (median of {args.repeats})")
    print(f"ppo_update without the guard: {without:.3f} CPU s")
    print(f"ratio: {with_guard / without:.3f}; the guard alone: {per_call * 1e3:.2f} CPU ms per call x {checks} calls "
          f"= {per_call * checks / without:.2%} of the update")
    trainer.close()


if __name__ == "__main__":
    main()
