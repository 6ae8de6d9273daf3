"""Write prend's table of Dopamine's published Atari learning curves from a google/dopamine checkout.

Usage: python scripts/import_dopamine_curves.py DOPAMINE_CHECKOUT [--iterations 50]

Reads ``baselines/atari/data/<game>.json`` (one record per agent, seed and 1M-frame training iteration: the
mean return of the training games of that iteration) and writes, per ale-py ROM id and agent, the mean over
seeds of each of the first ``--iterations`` iterations to ``src/prend/experiments/data/dopamine_atari.json``,
which ``prend report --published dopamine`` reads. Only DQN, Rainbow and IQN are kept (Dopamine's default
agents, all trained with sticky actions 0.25); the commit the numbers come from is recorded in the file.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
from pathlib import Path

import ale_py.roms

AGENTS = ("DQN", "Rainbow", "IQN")
OUT = Path(__file__).resolve().parents[1] / "src/prend/experiments/data/dopamine_atari.json"


def main() -> None:
    """Read the checkout, average over seeds, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    roms = {rom.replace("_", ""): rom for rom in ale_py.roms.get_all_rom_ids()}
    games: dict[str, dict[str, dict]] = {}
    for path in sorted((args.checkout / "baselines/atari/data").glob("*.json")):
        if path.stem not in roms:  # e.g. boxing_CNN.json, boxing.vg.json: other networks, other plots
            continue
        by_agent: dict[str, dict[int, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
        for record in json.loads(path.read_text()):
            by_agent[record["Agent"]][int(record["Iteration"])].append(float(record["Value"]))
        curves: dict[str, dict] = {}
        for agent in AGENTS:
            iterations = by_agent.get(agent, {})
            n = 0
            while n < args.iterations and iterations.get(n):
                n += 1
            if n:
                curves[agent] = {"seeds": min(len(iterations[i]) for i in range(n)),
                                 "scores": [round(sum(iterations[i]) / len(iterations[i]), 2) for i in range(n)]}
        if curves:
            games[roms[path.stem]] = curves
    table = {
        "source": f"google/dopamine baselines/atari/data/<game>.json at commit {commit}",
        "what": "mean over seeds of the mean return of each 1M-frame training iteration (250k agent steps), "
                "sticky actions 0.25; agents as configured in Dopamine's baselines/atari/README.md",
        "frames_per_iteration": 1_000_000,
        "games": games,
    }
    OUT.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"written: {OUT} ({len(games)} games, {OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
