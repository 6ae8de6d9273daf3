"""Deep Sea exploration benchmark: plain PPO vs RND, RND+LR, PreND and SND on ``prend/DeepSea-v0``.

Usage:
    .venv/bin/python benchmarks/deepsea.py                            # sizes 12, seeds 1-5, 4 methods
    .venv/bin/python benchmarks/deepsea.py --sizes 10 20 --seeds 1,2,3,4,5,6 --workers 2
    .venv/bin/python benchmarks/deepsea.py --summarize-only           # tables of what has run
    .venv/bin/python benchmarks/deepsea.py --methods prend --out OUT -- --feature-norm   # train flags after --

Each size is one ``prend sweep`` into ``OUT/size<N>/``: running the script again skips finished runs and
resumes interrupted ones from their checkpoints. Then it writes ``OUT/results.md`` and
``OUT/results.json``, per size and method:

- *episodes to first reward*: episodes played up to the end of the first iteration in which an episode
  reached the +1 corner (iteration granularity: an upper bound, within one iteration's episodes of the
  truth); "-" for a seed that never reached it;
- *final return*: the mean episode return over the last ``--final-iterations`` iterations (optimal 0.99,
  random play about ``-0.005``, always-left 0);
- *solved*: seeds whose final return is above 0.5.

Only finished runs (their ``sweep_status.json``) enter the tables. With ``--eval-episodes N`` the sweep also
evaluates every run (``prend eval``: N games of the final policy, sampled actions) and the table adds its mean
return and how many games found the treasure; ``--figure PATH`` draws each run's training returns against
episodes with its first find marked, beside those evaluation scores (``scripts/main.sh`` uses both).

The PPO settings of every run are the flags in :data:`TRAIN_FLAGS` (shared by all methods); flags after ``--``
are added to every run (a PreND variant, say). Give such a run its own ``--out``: its runs are named like the
plain ones. The tables name a PreND run's variant fields and backbone where they differ from the defaults here.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from prend.agent.perf import cpu_summary
from prend.config import PREND_VARIANT_FIELDS, IntrinsicConfig
from prend.experiments.evaluate import read_eval
from prend.rundir import RunDir

TRAIN_FLAGS = [
    "--num-envs", "8", "--num-steps", "128",
    "--update-epochs", "1", "--learning-rate", "5e-4",  # one epoch: a quarter of the update cost (CPU budget)
    "--obs-norm-init-iters", "1",  # 50 warm-up rollouts would be longer than these runs' training
    "--probe-every", "0", "--no-tensorboard", "--checkpoint-every", "5",
    "--backbone", "resnet18", "--backbone-width", "0.125",  # PreND: random-init compact ResNet-18
]
"""Train flags of every run (on top of ``--game prend/DeepSea-v0``'s protocol defaults)."""


def sweep(out: Path, size: int, methods: str, seeds: str, iterations: int, workers: int,
          extra: list[str] = (), eval_episodes: int = 0) -> int:
    """Run (or resume) the sweep of one size, ``extra`` train flags added to every run; returns its exit code."""
    command = [sys.executable, "-m", "prend.cli", "sweep", "--out", str(out / f"size{size}"), "--methods", methods,
               "--games", "prend/DeepSea-v0", "--seeds", seeds, "--workers", str(workers), "--threads-per-run", "1",
               "--eval-episodes", str(eval_episodes),
               *TRAIN_FLAGS, "--game-kwargs", "size", str(size), "--total-steps", str(iterations * 8 * 128), *extra]
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def run_summary(run_dir: Path, final_iterations: int) -> dict | None:
    """First-reward episode count, final return and budget of one run directory (``None`` if it has no metrics)."""
    run = RunDir(run_dir)
    if (run.sweep_status() or {}).get("state") != "finished" or not run.is_run():
        return None
    records = run.metrics()  # null -> NaN; a torn last line left out
    if not records:
        return None
    config = run.config_file()
    first = next((r["charts/episodes"] for r in records if r.get("charts/episode_score_max", -1) > 0.5), None)
    tail = [r["charts/episode_score_mean"] for r in records[-final_iterations:]
            if math.isfinite(r.get("charts/episode_score_mean", math.nan))]
    evaluation = read_eval(run_dir) or {}
    scores = evaluation.get("scores", []) if evaluation.get("complete") else []
    return {"method": config["intrinsic"]["method"], "variant": variant(config["intrinsic"]),
            "path": str(run_dir), "eval_return": float(np.mean(scores)) if scores else None,
            "eval_found": sum(score > 0.5 for score in scores), "eval_games": len(scores),
            "seed": config["run"]["seed"],
            "size": config["env"]["game_kwargs"].get("size", 10), "iterations": len(records),
            "agent_steps": records[-1]["charts/global_step"], "episodes": records[-1]["charts/episodes"],
            "first_reward_episodes": first, "final_return": float(np.mean(tail)) if tail else math.nan}


def variant(intrinsic: dict) -> str:
    """A PreND run's variant fields and backbone that differ from this benchmark's defaults, as flags ("" if none).

    Example:
        >>> variant({"method": "prend", "backbone": "resnet18", "feature_norm": True, "target_norm": "none"})
        '--feature-norm'
        >>> variant({"method": "prend", "backbone": "compact", "target_norm": "whiten"})
        '--backbone compact --target-norm whiten'
        >>> variant({"method": "rnd", "feature_norm": True})
        ''
    """
    if intrinsic.get("method") != "prend":
        return ""
    defaults = IntrinsicConfig()
    flags = [] if intrinsic.get("backbone", "resnet18") == "resnet18" else [f"--backbone {intrinsic['backbone']}"]
    for name in PREND_VARIANT_FIELDS:
        value = intrinsic.get(name, getattr(defaults, name))
        if value != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            flags.append(flag if value is True else f"{flag} {value}")
    return " ".join(flags)


def summarize(out: Path, final_iterations: int) -> list[dict]:
    """Every finished run under ``out``; writes ``results.json`` and ``results.md`` there."""
    dirs = [d for d in sorted(out.glob("size*/*")) if d.is_dir()]
    runs = [s for d in dirs if (s := run_summary(d, final_iterations))]
    unfinished = len(dirs) - len(runs)
    order = {"none": 0, "rnd": 1, "rnd-lr": 2, "prend": 3, "snd-v": 4, "snd-std": 5, "snd-vic": 6}
    runs.sort(key=lambda r: (r["size"], order.get(r["method"], 9), r.get("variant", ""), r["seed"]))
    (out / "results.json").write_text(json.dumps(runs, indent=2) + "\n")
    lines = ["| N | method | seeds | agent steps (episodes) per run | episodes to first reward, per seed | "
             "found | final return, mean (per seed) | solved |", "|---|---|---|---|---|---|---|---|"]
    evaluated = any(r["eval_games"] for r in runs)
    if evaluated:
        lines[0] += " evaluation: mean return (games that found the treasure), per seed |"
        lines[1] += "---|"
    for key in sorted({(r["size"], r["method"], r["variant"]) for r in runs},
                      key=lambda k: (k[0], order.get(k[1], 9), k[2])):
        group = [r for r in runs if (r["size"], r["method"], r["variant"]) == key]
        firsts = ", ".join("-" if r["first_reward_episodes"] is None else str(r["first_reward_episodes"])
                           for r in group)
        found = sum(r["first_reward_episodes"] is not None for r in group)
        finals = [r["final_return"] for r in group]
        solved = sum(f > 0.5 for f in finals)
        budgets = sorted({f"{r['agent_steps']} ({r['episodes']})" for r in group})
        name = " ".join(filter(None, (NAMES.get(key[1], key[1]), key[2] and f"`{key[2]}`")))
        lines.append(f"| {key[0]} | {name} | {len(group)} | {', '.join(budgets)} | {firsts} | "
                     f"{found}/{len(group)} | {np.mean(finals):.3f} ({', '.join(f'{f:.2f}' for f in finals)}) | "
                     f"{solved}/{len(group)} |" + (f" {_eval_cell(group)} |" if evaluated else ""))
    if unfinished:
        lines.append(f"\n{unfinished} more run(s) not finished yet; rerun the same command to resume them.")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return runs


def _eval_cell(group: list[dict]) -> str:
    return ", ".join("-" if not r["eval_games"] else f"{r['eval_return']:.2f} ({r['eval_found']}/{r['eval_games']})"
                     for r in group)


NAMES = {"none": "PPO", "rnd": "RND", "rnd-lr": "RND+LR", "prend": "PreND", "snd-v": "SND-V", "snd-std": "SND-STD",
         "snd-vic": "SND-VIC"}


def plot_first_run(runs: list[dict], path: Path) -> None:
    """Each run's mean training return per iteration against episodes played, its first find starred; beside
    it the evaluation return of each run (when evaluated). The title states who found the treasure, when."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=110)
    has_eval = any(r["eval_games"] for r in runs)
    axes = fig.subplots(1, 2, width_ratios=(2.2, 1)) if has_eval else [fig.subplots()]
    colors = {"rnd": ["#1f4e9c", "#4f86d9", "#8fb5ee"], "none": ["#b04a1a", "#e07b3c", "#f0ae7e"]}
    headline = []
    for method in sorted({r["method"] for r in runs}, key=lambda m: {"rnd": 0}.get(m, 1)):
        group = [r for r in runs if r["method"] == method]
        finds = [r["first_reward_episodes"] for r in group]
        when = ", ".join(f"{f:,}" for f in finds if f is not None)
        name = "plain PPO" if method == "none" else NAMES.get(method, method)
        headline.append(f"{name} found it in {sum(f is not None for f in finds)}/{len(group)} "
                        f"seeds" + (f" (by episode {when})" if when else ""))
        for i, r in enumerate(group):
            records = RunDir(r["path"]).metrics()
            x = [rec["charts/episodes"] for rec in records]
            y = [rec["charts/episode_score_mean"] for rec in records]
            color = colors.get(method, ["grey"] * 3)[i % 3]
            axes[0].plot(x, y, color=color, linewidth=1.6, label=f"{NAMES.get(method, method)} seed {r['seed']}")
            if r["first_reward_episodes"] is not None:
                axes[0].plot([r["first_reward_episodes"]], [1.05], marker="*", markersize=13, color=color,
                             linestyle="none")
    axes[0].axhline(0.99, color="grey", linestyle=":", linewidth=1)
    axes[0].text(0, 0.93, " optimal 0.99; ★ first treasure (end of that iteration)", fontsize=8, color="dimgrey")
    axes[0].set(xlabel="training episodes played", ylabel="mean return of the iteration's episodes",
                ylim=(-0.08, 1.12))
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="center right")
    if has_eval:
        names = [f"{NAMES.get(r['method'], r['method'])} s{r['seed']}" for r in runs]
        values = [r["eval_return"] if r["eval_return"] is not None else np.nan for r in runs]
        bars = axes[1].bar(names, values, color=[colors.get(r["method"], ["grey"])[0] for r in runs])
        for bar, r in zip(bars, runs, strict=True):
            axes[1].text(bar.get_x() + bar.get_width() / 2, max(bar.get_height(), 0) + 0.03,
                         f"{r['eval_found']}/{r['eval_games']}", ha="center", fontsize=8)
        axes[1].set(ylim=(-0.08, 1.12), ylabel="evaluation: mean return", title="after training: games that "
                    "found the treasure")
        axes[1].title.set_fontsize(9)
        axes[1].tick_params(axis="x", labelsize=8)
    size, steps = runs[0]["size"], runs[0]["agent_steps"]
    fig.suptitle(f"Deep Sea N={size} (a random policy finds the treasure once in {2 ** size:,} episodes), "
                 f"{steps:,} agent steps per run:\n" + "; ".join(headline), fontsize=10)
    fig.text(0.01, 0.01, f"prend, scripts/main.sh; CPU: {cpu_summary()}", fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/results/deepsea"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[12])
    parser.add_argument("--methods", default="none,rnd,rnd-lr,prend")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--iterations", type=int, default=30, help="PPO iterations of 8 x 128 agent steps per run")
    parser.add_argument("--workers", type=int, default=2, help="concurrent runs (one thread each)")
    parser.add_argument("--final-iterations", type=int, default=3, help="iterations the final return averages")
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--eval-episodes", type=int, default=0, help="evaluate each finished run over N games")
    parser.add_argument("--figure", type=Path, help="write the training-returns and evaluation figure here")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER,
                        help="after --: flags added to every run's prend train (e.g. -- --feature-norm)")
    args = parser.parse_args(argv)
    extra = args.train_flags[1:] if args.train_flags[:1] == ["--"] else args.train_flags
    code = 0
    if not args.summarize_only:
        for size in args.sizes:
            code = max(code, sweep(args.out, size, args.methods, args.seeds, args.iterations, args.workers, extra,
                                   args.eval_episodes))
    runs = summarize(args.out, args.final_iterations)
    if args.figure and runs:
        plot_first_run(runs, args.figure)
    print((args.out / "results.md").read_text())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
