"""Frames per second of the frozen Atari-PB backbone's forward pass, and the bf16 error it brings.

PreND runs the frozen backbone on every observation the agent sees (and on each minibatch the predictor
trains on), so its inference speed bounds the whole run. This times ``ResNetGN`` under ``torch.no_grad`` at
one batch size in four modes: fp32, fp32 channels_last, bf16 autocast, and bf16 autocast + channels_last;
and it reports how far the bf16 features are from the fp32 ones on the same random frames.

    python benchmarks/backbone.py                       # resnet50 w1.0, resnet18 w1.0/0.5/0.25, batch 256
    python benchmarks/backbone.py --models resnet18:0.25 --batch 64 --reps 5

Timings are the median of ``--reps`` forwards after ``--warmup`` untimed ones. Random weights are used:
speed does not depend on the values, and the bf16 error is of the same order for trained weights only if
their activation scale is similar (check with a real checkpoint via ``--weights``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone

MODES = ("fp32", "fp32+channels_last", "bf16", "bf16+channels_last")


def run(model: torch.nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
        return model(x).float()


def time_mode(model, x, mode, warmup, reps) -> tuple[float, torch.Tensor]:
    channels_last = mode.endswith("channels_last")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = x.contiguous(memory_format=memory_format)
    for _ in range(warmup):
        out = run(model, x, mode)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = run(model, x, mode)
        times.append(time.perf_counter() - start)
    model.to(memory_format=torch.contiguous_format)
    return statistics.median(times), out.contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50:1.0", "resnet18:1.0", "resnet18:0.5",
                                                        "resnet18:0.25"], help="arch:width pairs")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--weights", default=None, help="Atari-PB checkpoint for the (single) model")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"load average {os.getloadavg()[0]:.1f}, batch {args.batch}, warmup {args.warmup}, reps {args.reps}")
    # Frames in [0, 1] like Atari-PB's inputs (uint8 / 255).
    x = torch.randint(0, 256, (args.batch, 4, 84, 84), dtype=torch.uint8).float() / 255
    header = f"{'model':<16}" + "".join(f"{m + ' f/s':>24}" for m in args.modes)
    print(header + f"{'bf16 max|diff|':>16}{'max|fp32|':>11}{'rel L2':>9}")
    for spec in args.models:
        arch, width = spec.split(":")[0], float(spec.split(":")[1]) if ":" in spec else 1.0
        if args.weights:
            model = load_atari_pb_backbone(args.weights, arch, width)
        else:
            model = ResNetGN(arch, width).eval().requires_grad_(False)
        outputs, cells = {}, []
        for mode in args.modes:
            seconds, outputs[mode] = time_mode(model, x, mode, args.warmup, args.reps)
            cells.append(f"{args.batch / seconds:>16.1f} ({seconds:5.2f}s)")
        line = f"{spec:<16}" + "".join(f"{c:>24}" for c in cells)
        if "fp32" in outputs and "bf16" in outputs:
            ref, diff = outputs["fp32"], outputs["bf16"] - outputs["fp32"]
            line += (f"{diff.abs().max().item():>16.3e}{ref.abs().max().item():>11.3f}"
                     f"{(diff.norm() / ref.norm()).item():>9.2e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
