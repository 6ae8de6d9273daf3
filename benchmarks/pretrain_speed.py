"""Speed of the pieces that size the shipped backbone and its pre-training recipe.

1. Backbone inference (what PreND pays per observation): frames/s of ``ResNetGN`` forwards at one batch size,
   in fp32 / bf16 autocast, contiguous / channels_last.
2. SiamMAE training (what pre-training pays): samples/s of full optimizer steps (backbone + neck + head +
   AdamW) for the CPU recipe's sizes and for Atari-PB's.

    python benchmarks/pretrain_speed.py                       # both, 2 threads
    python benchmarks/pretrain_speed.py --threads 1 --skip-inference

Each figure is the best of ``--reps`` timed runs after one warm-up (the machine is shared, so the best run is
the least disturbed one); the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from prend.nets.atari_pb import ResNetGN
from prend.pretrain.trainer import PretrainConfig, build_model, build_optimizer

RECIPES = {
    "cpu-recipe (dim 128, mlp 512, hidden 256)": dict(neck_hidden=256, dim=128, mlp_dim=512),
    "atari-pb sizes (dim 512, mlp 2048, hidden 1024)": dict(neck_hidden=1024, dim=512, mlp_dim=2048),
}


def best_of(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def inference(models: list[str], batch: int, reps: int) -> None:
    x = torch.rand(batch, 4, 84, 84)
    print(f"backbone inference, batch {batch}, frames/s (best of {reps})")
    for spec in models:
        arch, width = spec.split(":")
        model = ResNetGN(arch, float(width)).eval()
        row = []
        for channels_last in (False, True):
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            m, xx = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)
            for bf16 in (False, True):
                def run(m=m, xx=xx, bf16=bf16):
                    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                        m(xx)
                row.append(f"{'bf16' if bf16 else 'fp32'}{'+cl' if channels_last else ''} "
                           f"{batch / best_of(run, reps):7.0f}")
        print(f"  {spec:<16}", " | ".join(row), f"(load {os.getloadavg()[0]:.1f})", flush=True)


def training(arch: str, width: float, batch: int, reps: int) -> None:
    print(f"SiamMAE training steps, {arch} w{width}, batch {batch}, samples/s (best of {reps})")
    obs, fut = torch.rand(batch, 4, 84, 84), torch.rand(batch, 4, 84, 84)
    gid = torch.randint(0, 12, (batch,))
    for name, sizes in RECIPES.items():
        cfg = PretrainConfig(arch=arch, width=width, steps=100, **sizes)
        model = build_model(cfg)
        optimizer, _ = build_optimizer(model, cfg)
        params = {part: sum(p.numel() for p in getattr(model, part).parameters())
                  for part in ("backbone", "neck", "head")}

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", torch.bfloat16):
                loss, _ = model(obs, fut, gid)
            loss.backward()
            optimizer.step()

        seconds = best_of(step, reps)
        sizes_m = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in params.items())
        print(f"  {name:<48} {batch / seconds:6.1f} samples/s ({seconds:.2f} s/step; {sizes_m}; "
              f"load {os.getloadavg()[0]:.1f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["resnet18:0.25", "resnet18:0.125"])
    parser.add_argument("--batch", type=int, default=512, help="inference batch")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    if not args.skip_inference:
        inference(args.models, args.batch, args.reps)
    if not args.skip_training:
        arch, width = args.models[0].split(":")
        training(arch, float(width), args.train_batch, args.reps)


if __name__ == "__main__":
    main()
