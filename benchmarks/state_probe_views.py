"""Which vector does the state probe read? The map, a random projection of it, or its global average pool.

``prend probe --state`` probes each encoder's whole output (the *map* probe) and a 256-feature vector of it
(the *vector* probe, AtariARI's size). This script measures the candidate reductions side by side on one
RAM-labelled frame set, for a probed backbone, its random twin and raw pixels, over 3 probe seeds:

    python benchmarks/state_probe_views.py --data data/boxing_ram16 --stride 4 --views project pool \\
        --out docs/results/state-probe-views/compact_boxing.json

(``data/boxing_ram16``: ``prend collect --out data/boxing_ram16 --ram --games boxing --frames-per-game 36000
--num-envs 16 --seed 1``.) ``--views map`` adds the map probe (2,304 features: ~9x the classifiers' cost).

``--stride k`` keeps every k-th frame of each episode (t = 0, k, 2k, ...): consecutive frames at 15 Hz are
near-duplicates, and the stride cuts the classifiers' cost k-fold on a shared 2-core machine. The stacks are
still the full 4-stacks of consecutive frames. Figures from a strided set are comparable with each other,
not with a probe of every frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from prend.pretrain.dataset import FrameData
from prend.pretrain.probe import ProbeConfig, extract_features, load_probed_backbone
from prend.pretrain.state_probe import StateProbeSettings, pixel_features, state_probe
from prend.pretrain.state_report import format_state_probe


class StridedFrames(FrameData):
    """Every ``stride``-th frame of each episode of ``data``, with the stacks of the full set."""

    def __init__(self, data: FrameData, stride: int):
        self.rows = np.flatnonzero(data.t % stride == 0)
        self.full = data
        super().__init__(data.frames[self.rows], data.actions[self.rows], data.rewards[self.rows],
                         data.game_ids[self.rows], data.episode[self.rows], data.t[self.rows] // stride,
                         data.left[self.rows] // stride, data.games,
                         None if data.ram is None else data.ram[self.rows])

    def stacks(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The full set's stacks ending at the kept frames ``idx``."""
        return self.full.stacks(self.rows[np.asarray(idx)], out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--encoder", default="compact", help="what `prend probe` takes as CHECKPOINT")
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--views", nargs="+", choices=("project", "pool", "map"), default=["project", "pool"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="features file (default: beside --out); reused when it exists")
    args = parser.parse_args()

    started = time.perf_counter()
    full = FrameData.load(args.data)
    data = StridedFrames(full, args.stride)
    backbone, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=args.encoder))
    cache = args.cache or args.out.with_suffix(".features.npz")
    if cache.exists():
        with np.load(cache) as z:
            feats = {k: z[k] for k in z.files}
    else:
        feats = {key: extract_features(net, full, data.rows, desc=key, log=print)
                 for key, net in (("pretrained", backbone), ("random_init", twin))}
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **feats)
    feats["pixels"] = pixel_features(data, np.arange(len(data)))
    print(f"{len(data):,} of {len(full):,} frames (stride {args.stride}), features in "
          f"{time.perf_counter() - started:.0f} s")
    base = StateProbeSettings(repeats=args.repeats, max_epochs=args.max_epochs)
    results = {}
    runs = {"project": dataclasses.replace(base, map=False),
            "pool": dataclasses.replace(base, map=False, vector="pool"),
            "map": dataclasses.replace(base, vector="off")}
    for name in args.views:
        settings = runs[name]
        tick = time.perf_counter()
        results[name] = state_probe(feats, data, settings, log=print)
        results[name]["seconds"] = time.perf_counter() - tick
        print("\n".join(format_state_probe(results[name], ("pretrained", "random_init", "pixels"),
                                           {"pretrained": args.encoder})))
        args.out.write_text(json.dumps({"facts": {**facts, "data": str(args.data), "stride": args.stride,
                                                  "frames": len(data)}, **results}, indent=1))


if __name__ == "__main__":
    main()
