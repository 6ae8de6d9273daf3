"""How much of each method's intrinsic reward is a state-independent offset, at initialisation (issue 9).

For each game, a random agent plays ``--frames`` warm-up frames and then ``--frames`` measured frames (8
envs, the default protocol). Each method is built fresh from its config, fed the warm-up frames as the
trainer does before training (RND's pixel statistics; PreND's variants' feature or target statistics, and the
predictor's start at the target's mean output), and its untrained reward on the measured frames is split by
:func:`prend.intrinsic.base.reward_decomposition`:

- **offset share**: ``|m|^2/K`` over the mean raw reward, ``m`` the mean prediction error over states;
- **CV**: std over mean of the raw reward across the measured states;
- **target spread**: the regression target's spread across states over its mean's norm.

Nothing is trained: this is the reward the first rollout sees. ``lr=1x`` is not listed (a learning rate
changes nothing before the first update). Each row is the mean ± sd over ``--init-seeds`` network
initialisations on the same frames.

    python benchmarks/prend_reward_at_init.py --out docs/results/prend-reward/at_init
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from prend.config import EnvConfig, IntrinsicConfig
from prend.envs.vector import make_env
from prend.errors import PrendError
from prend.intrinsic.base import DistillationReward, reward_decomposition
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.pretrained import make_backbone

VARIANTS: dict[str, dict] = {
    "RND": {"method": "rnd"},
    "PreND (paper default)": {"method": "prend"},
    "PreND --feature-norm": {"method": "prend", "feature_norm": True},
    "PreND --target-norm center": {"method": "prend", "target_norm": "center"},
    "PreND --target-norm whiten": {"method": "prend", "target_norm": "whiten"},
    "PreND --predictor-init target-mean": {"method": "prend", "predictor_init": "target-mean"},
    "PreND --predictor-layers 1": {"method": "prend", "predictor_layers": 1},
    "PreND --predictor-spectral-norm": {"method": "prend", "predictor_spectral_norm": True},
    "PreND, random-init backbone (resnet18 w0.125)": {"method": "prend", "backbone": "resnet18",
                                                      "backbone_width": 0.125},
}
KEYS = ("offset_share", "raw_cv", "target_spread")


def random_frames(game: str, frames: int, num_envs: int, seed: int) -> torch.Tensor:
    """``frames`` observations (uint8, (frames, 4, 84, 84)) of a uniformly random agent."""
    env = make_env(EnvConfig(game=game, num_envs=num_envs, env_threads=1))
    rng = np.random.default_rng(seed)
    env.reset(seed)
    out = []
    for _ in range(-(-frames // num_envs)):
        out.append(env.step(rng.integers(0, env.num_actions, num_envs)).obs.copy())
    env.close()
    return torch.from_numpy(np.concatenate(out)[:frames])


def at_init(module: DistillationReward, warmup: torch.Tensor, measured: torch.Tensor) -> dict[str, float]:
    """Warm ``module`` up as the trainer does, then decompose its reward on ``measured``."""
    if module.needs_warmup:
        module.observe(warmup)
        module.end_warmup(warmup)
    out = module.reward(measured)
    return reward_decomposition(out.error, module.regression_target(out.target))


def check_backbones(names: list[str | None]) -> None:
    """Build each named backbone once, so that a bad name fails before any frame is collected.

    Raises:
        PrendError: If a name is no backbone PreND can take (its one-line message and fix).
    """
    for name in names:
        if name is not None:
            make_backbone(IntrinsicConfig(method="prend", backbone=name))


def main(argv: list[str] | None = None) -> int:
    """Measure every (game, variant, backbone) row; returns the exit code (2 with one line for a bad backbone)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", nargs="+", default=["Boxing", "Riverraid"])
    parser.add_argument("--frames", type=int, default=1600, help="warm-up frames, and as many measured frames")
    parser.add_argument("--init-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--backbones", nargs="+", default=[None],
                        help="PreND backbones (shipped names such as compact, stdim-boxing; architectures) each PreND "
                             "variant is measured on, rows labelled 'variant [backbone]'; default: the config's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        check_backbones(args.backbones)
    except PrendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = []
    for game in args.games:
        frames = random_frames(game, 2 * args.frames, num_envs=8, seed=0)
        warmup, measured = frames[:args.frames], frames[args.frames:]
        on_backbones = lambda name: VARIANTS[name]["method"] == "prend" and "backbone" not in VARIANTS[name]  # noqa: E731
        runs = [(name, b) for name in args.variants for b in (args.backbones if on_backbones(name) else [None])]
        for name, backbone in runs:
            cfg = IntrinsicConfig(**VARIANTS[name], **({"backbone": backbone} if backbone else {}))
            label = name if backbone is None else f"{name} [{backbone}]"
            values = []
            for seed in args.init_seeds:
                torch.manual_seed(seed)
                module = make_intrinsic(cfg, num_envs=8, gamma=0.99, rom=game.lower())
                values.append(at_init(module, warmup, measured))
            row = {"game": game, "variant": label, "config": dataclasses.asdict(cfg), "seeds": args.init_seeds}
            for key in KEYS:
                v = np.array([x[key] for x in values])
                row[key], row[key + "_sd"] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
            rows.append(row)
            print(f"{game:10s} {label:48s} " + "  ".join(f"{k} {row[k]:.3f}±{row[k + '_sd']:.3f}" for k in KEYS),
                  flush=True)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    meta = {"frames": args.frames, "init_seeds": args.init_seeds, "torch": torch.__version__, "cpu": cpu,
            "seconds": round(time.perf_counter() - start, 1)}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        lines = ["| game | method | offset share of the raw reward | CV of r over states "
                 "| target spread / mean norm |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['game']} | {r['variant']} | " + " | ".join(
                f"{r[k]:.3f} ± {r[k + '_sd']:.3f}" for k in KEYS) + " |")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
