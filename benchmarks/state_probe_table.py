"""Part 1's state probe (``prend probe --state``) of several backbones at once, on one frame set.

``prend probe PATH --state`` probes one backbone beside its random twin and raw pixels; comparing several
backbones that way fits the pixels and any shared twin once per backbone. This script builds every backbone
named (anything ``prend probe`` takes: a file, a shipped name, an architecture), adds each one's random twin
(identical twins, e.g. two ST-DIM runs of one architecture and seed, are probed once), and runs the same state
probe, with the same settings and splits, over all of them and the pixels in one call::

    .venv/bin/python benchmarks/state_probe_table.py --data /work/data/riverraid_ram16 \\
        --backbones stdim-boxing=src/prend/weights/stdim_boxing.pt compact --out riverraid.json

Writes ``--out`` (the state probe's figures, the backbones' facts and the twin each one was given) and the
same path with ``.md`` (``prend probe``'s state table). ``--classifiers atariari`` fits AtariARI's own
classifiers instead of prend's (``prend probe --state-settings.classifiers``); the JSON's ``settings`` records which.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from prend.agent.perf import cpu_summary
from prend.errors import PrendError
from prend.pretrain.dataset import FrameData
from prend.pretrain.probe import ProbeConfig, extract_features, load_probed_backbone
from prend.pretrain.state_probe import StateProbeSettings, state_probe
from prend.pretrain.state_report import format_state_probe


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules have the same architecture and exactly the same parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return type(a) is type(b) and sa.keys() == sb.keys() and all(
        sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


def main(argv: list[str] | None = None) -> int:
    """Probe every backbone of ``--backbones`` and their twins; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="frames collected with prend collect --ram")
    parser.add_argument("--backbones", nargs="+", required=True,
                        help="NAME=SPEC or SPEC (anything prend probe takes as PATH)")
    parser.add_argument("--repeats", type=int, default=3, help="probe seeds (part 1's default: 3)")
    parser.add_argument("--max-epochs", type=int, default=100, help="classifier epochs at most (part 1's: 100)")
    parser.add_argument("--classifiers", choices=("prend", "atariari"), default="prend",
                        help="prend's classifiers (prend probe --state's default) or AtariARI's own")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    say = lambda line: print(line, flush=True)  # noqa: E731 - a one-line logger
    start = time.time()
    try:
        data = FrameData.load(args.data)
        rows = np.arange(len(data))
        feats: dict[str, np.ndarray] = {}
        facts: dict[str, dict] = {}
        twins: list[tuple[str, torch.nn.Module]] = []
        for item in args.backbones:
            name, _, spec = item.rpartition("=")
            name = name or Path(spec).stem
            backbone, twin, fact = load_probed_backbone(ProbeConfig(checkpoint=Path(spec), data=args.data))
            twin_name = next((n for n, t in twins if same_weights(t, twin)), None)
            if twin_name is None:
                twin_name = f"twin of {name}"
                twins.append((twin_name, twin))
                feats[twin_name] = extract_features(twin, data, rows, desc=twin_name, log=say)
            feats[name] = extract_features(backbone, data, rows, desc=name, log=say)
            facts[name] = {**{k: (str(v) if isinstance(v, Path) else v) for k, v in fact.items()},
                           "twin": twin_name}
        settings = StateProbeSettings(repeats=args.repeats, max_epochs=args.max_epochs, classifiers=args.classifiers)
        result = state_probe(feats, data, settings, log=say)
    except PrendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result.update(backbones=facts, data=str(args.data), cpu=cpu_summary(), seconds=round(time.time() - start, 1),
                  command=" ".join(["benchmarks/state_probe_table.py", *(argv or sys.argv[1:])]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    table = format_state_probe(result, [*feats, "pixels"])
    args.out.with_suffix(".md").write_text("```\n" + "\n".join(table) + "\n```\n")
    say("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
