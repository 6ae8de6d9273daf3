"""prend's RND against CleanRL's ``ppo_rnd_envpool.py``, side by side, at identical hyperparameters.

Agent steps/s of the whole training loop of each, measured in one invocation and interleaved (round 1:
prend, CleanRL; round 2: prend, CleanRL; ...) so that both see the same machine state. Each figure is the
median over ``--iterations`` timed iterations, after start-up and one untimed warm-up iteration on each side.
One agent step = one environment step of one env = 4 emulator frames.

CleanRL is not part of prend and is never copied into it: bring your own checkout and virtual environment.
Pin torch to prend's (``constraints.txt``) so both sides run the same kernels; an unpinned ``pip install
torch`` pulls a multi-GB CUDA build. A set-up that works (torch 2.13.0 CPU, envpool 0.8.4, gym 0.23.1, as
CleanRL's envpool scripts need gym's old step API; gym 0.26 fails in ``envs.reset()``)::

    git clone https://github.com/vwxyzjn/cleanrl ~/cleanrl
    python3 -m venv ~/cleanrl-venv
    ~/cleanrl-venv/bin/pip install -c constraints.txt torch==2.13.0 envpool==0.8.4 gym==0.23.1 tyro \\
        tensorboard "numpy<2"          # add --index-url https://download.pytorch.org/whl/cpu if pip picks CUDA
    .venv/bin/python benchmarks/cleanrl_compare.py --cleanrl-script ~/cleanrl/cleanrl/ppo_rnd_envpool.py \\
        --cleanrl-python ~/cleanrl-venv/bin/python --configs 128x128 8x128 --rounds 2

**How each side is timed.** prend: its :class:`~prend.agent.trainer.Trainer` in this process, the wall time
of each ``train_iteration()`` call. CleanRL: its script in a subprocess (unbuffered, in a temporary working
directory that takes its TensorBoard files), run for ``--iterations`` + 1 updates; it prints ``SPS: N``
after every update, where N is its *cumulative* rate since start-up (random-agent warm-up included), so N is
not used: each ``SPS:`` line is time-stamped as it arrives, and the time between two consecutive lines is
one iteration (rollout, intrinsic reward, GAE, update, logging). The first update, from ``End to
initialize...`` to the first ``SPS:``, is the warm-up and is dropped, as prend's first iteration is.

**Identical**: envs x steps, 4 epochs x 4 minibatches, learning rate 1e-4 (annealed), Adam eps 1e-5,
gamma 0.999 / 0.99, GAE lambda 0.95, clip 0.1 with value clipping, entropy 0.001, value coefficient 0.5,
gradient clip 0.5, advantage normalisation, ext/int coefficients 2 / 1, predictor on 25% of each minibatch,
one random-agent rollout for the observation statistics (start-up only), the original RND's networks (the
same layer sizes), and the Atari protocol as far as the two envs allow: the game's ``-v5`` in envpool
(``Boxing-v5``) against prend's ALE vector env, both with sticky actions 0.25, frame skip 4 with
max-pooling, 84x84 grayscale x 4, up to 30 no-ops, life loss as episode end, reward clipping, a 27,000-step
cap. Hyperparameters are passed to both explicitly (:data:`SHARED`, :data:`PREND_ONLY`), not left to
either's defaults.

**Different** (each side's own implementation, kept as it is): envpool presses FIRE after every lost life
as well as at game start (prend's native ALE vector env, which it keeps here, presses it at game start only:
the same in games without lives, such as Boxing) and runs one emulator thread per env by default (prend:
one per core); CleanRL stores frames as float32 (prend: uint8), runs the target and predictor on every
sample of a minibatch and masks 75% of the loss (prend runs the predictor on the 25% it learns from and
reuses the target's rollout outputs: the same expected gradient), and clips only the extrinsic value loss
(prend clips both heads). Threads: ``--torch-threads N`` gives both N (CleanRL through
``OMP_NUM_THREADS``); 0 leaves each its default (prend: chosen at start-up, see docs/performance.md;
CleanRL: torch's, one per physical core).

Usage:
    .venv/bin/python benchmarks/cleanrl_compare.py --cleanrl-script PATH --cleanrl-python PATH
    .venv/bin/python benchmarks/cleanrl_compare.py ... --configs 8x128 --iterations 2 --rounds 1  # smoke test
    .venv/bin/python benchmarks/cleanrl_compare.py ... --methods rnd prend     # also PreND (shipped backbone)
    .venv/bin/python benchmarks/cleanrl_compare.py ... --methods rnd my_pkg.bonus:METHOD   # your own reward

``--methods`` takes whatever ``prend train --method`` takes: a built-in, an installed plug-in's name, or
``module.path:attribute`` (docs/architecture.md, "Adding an intrinsic reward"); each is timed with CleanRL's
hyperparameters beside CleanRL's RND.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from prend.agent.perf import cpu_summary
from prend.agent.trainer import Trainer
from prend.config import TrainConfig
from prend.errors import PrendError
from prend.intrinsic.methods import resolve_method

SHARED: tuple[tuple[str, float | int | bool, str, str], ...] = (
    ("learning-rate", 1e-4, "ppo", "learning_rate"),
    ("anneal-lr", True, "ppo", "anneal_lr"),
    ("update-epochs", 4, "ppo", "update_epochs"),
    ("num-minibatches", 4, "ppo", "num_minibatches"),
    ("gamma", 0.999, "ppo", "gamma_ext"),
    ("int-gamma", 0.99, "ppo", "gamma_int"),
    ("gae-lambda", 0.95, "ppo", "gae_lambda"),
    ("clip-coef", 0.1, "ppo", "clip_coef"),
    ("clip-vloss", True, "ppo", "clip_vloss"),
    ("ent-coef", 0.001, "ppo", "ent_coef"),
    ("vf-coef", 0.5, "ppo", "vf_coef"),
    ("max-grad-norm", 0.5, "ppo", "max_grad_norm"),
    ("norm-adv", True, "ppo", "norm_adv"),
    ("ext-coef", 2.0, "ppo", "ext_coef"),
    ("int-coef", 1.0, "ppo", "int_coef"),
    ("update-proportion", 0.25, "intrinsic", "update_proportion"),
    ("num-iterations-obs-norm-init", 1, "intrinsic", "obs_norm_init_iters"),
)
"""Hyperparameters given to both sides: CleanRL's flag, the value, prend's config section and field."""

PREND_ONLY = {"ppo": {"adam_eps": 1e-5},
              "env": {"sticky_action_prob": 0.25, "life_loss_done": True, "noop_max": 30,
                      "max_episode_steps": 27_000, "frame_skip": 4, "frame_stack": 4, "clip_reward": True,
                      "full_action_space": False, "fire_reset": True, "backend": "ale"}}
"""prend settings that CleanRL's script hard-codes or takes from envpool's ``-v5`` defaults."""

DIFFERENCES = (
    "envpool presses FIRE at game start and after every lost life (prend: at game start only; the same in "
    "games without lives, such as Boxing) and runs one emulator thread per env (prend: one per core)",
    "CleanRL runs target + predictor on every minibatch sample and masks 75% of the loss; prend runs the "
    "predictor on the 25% it learns from and reuses the rollout's target outputs",
    "CleanRL stores frames as float32 (prend: uint8) and clips only the extrinsic value loss (prend: both)",
)
"""What differs between the two sides, printed with the figures."""

SIDES = {"rnd": "prend RND", "rnd-lr": "prend RND+LR", "prend": "prend PreND"}
"""Table labels of prend's methods."""
CLEANRL, PREND_RND = "CleanRL RND", SIDES["rnd"]

SPS_LINE = re.compile(r"^SPS:\s*(\d+)\s*$")


class SetupError(Exception):
    """A missing or broken CleanRL checkout or interpreter (exit code 2)."""


class RunFailed(Exception):
    """One side's run failed or printed too few iterations (exit code 1)."""


@dataclass
class Row:
    """One measurement of one side: round, config, which side, the agent steps/s and its threads."""

    round: int
    config: str
    side: str
    steps_per_s: float
    threads: str


def parse_config(text: str) -> tuple[int, int]:
    """``ENVSxSTEPS`` as (envs, steps); ``ValueError`` when malformed.

    Example:
        >>> parse_config("128x128"), parse_config("8x128")
        ((128, 128), (8, 128))
    """
    parts = text.split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"'{text}' is not ENVSxSTEPS, e.g. 8x128")
    return int(parts[0]), int(parts[1])


def cleanrl_command(python: str, script: str, envs: int, steps: int, iterations: int, game: str, seed: int,
                    device: str) -> list[str]:
    """The command line that runs CleanRL's script for ``iterations`` timed updates plus one warm-up."""
    cmd = [python, "-u", script, "--env-id", f"{game}-v5", "--num-envs", str(envs), "--num-steps", str(steps),
           "--total-timesteps", str((iterations + 1) * envs * steps), "--seed", str(seed),
           "--cuda" if device == "cuda" else "--no-cuda"]
    for flag, value, _, _ in SHARED:
        if isinstance(value, bool):
            cmd.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            cmd += [f"--{flag}", str(value)]
    return cmd


def prend_config(envs: int, steps: int, iterations: int, game: str, seed: int, device: str, threads: int,
                 method: str = "rnd") -> TrainConfig:
    """prend's config with CleanRL's hyperparameters (:data:`SHARED`, :data:`PREND_ONLY`)."""
    cfg = TrainConfig()
    cfg.env.game, cfg.env.num_envs, cfg.ppo.num_steps = game, envs, steps
    cfg.intrinsic.method = method
    cfg.run.total_steps = (iterations + 1) * envs * steps  # the annealing schedule CleanRL's run has
    cfg.run.seed, cfg.run.device, cfg.run.torch_threads = seed, device, threads
    cfg.run.probe_size, cfg.run.probe_every, cfg.run.progress = 0, 0, False
    for _, value, section, name in SHARED:
        setattr(getattr(cfg, section), name, value)
    for section, values in PREND_ONLY.items():
        for name, value in values.items():
            setattr(getattr(cfg, section), name, value)
    return cfg.validate()


def cleanrl_rates(lines: Iterable[tuple[float, str]], batch: int) -> list[float]:
    """Agent steps/s of each timed CleanRL iteration, from its time-stamped stdout lines.

    Iteration k ends with the k-th ``SPS:`` line; the first (the warm-up, which starts at ``End to
    initialize...``) is dropped, each later one took the time since the line before it. The cumulative
    figure printed after ``SPS:`` is not used (it includes start-up). Lines less than 1 ms apart mean the
    output was buffered: :class:`RunFailed`.

    Example:
        >>> log = [(0.0, "End to initialize..."), (9.0, "SPS: 50"), (11.0, "global_step=2048, ..."),
        ...        (13.0, "SPS: 80"), (17.0, "SPS: 90")]
        >>> cleanrl_rates(log, 1024)
        [256.0, 256.0]
    """
    stamps = [t for t, line in lines if SPS_LINE.match(line.strip())]
    if any(b - a < 1e-3 for a, b in itertools.pairwise(stamps)):
        raise RunFailed("CleanRL's SPS lines arrived together (its output was buffered), so they cannot be timed")
    return [batch / (b - a) for a, b in itertools.pairwise(stamps)]


def run_cleanrl(cmd: list[str], batch: int, iterations: int, threads: int) -> list[float]:
    """Run CleanRL's script (``cmd``), time-stamping its stdout; the rates of its timed iterations."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryDirectory(prefix="cleanrl-compare-") as work, \
            open(Path(work) / "stderr.txt", "w+") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        assert proc.stdout is not None
        lines = [(time.perf_counter(), line.rstrip("\n")) for line in proc.stdout]
        code = proc.wait()
        err.seek(0)
        tail = err.read().strip().splitlines()[-3:]
    rates = cleanrl_rates(lines, batch)
    if code != 0 or len(rates) < iterations:
        why = f"exit code {code}" if code != 0 else f"{len(rates)} timed iterations printed, {iterations} wanted"
        raise RunFailed(f"CleanRL's run failed ({why}): {' | '.join(tail) or 'no stderr'}")
    return rates


def run_prend(cfg: TrainConfig, iterations: int) -> tuple[list[float], int]:
    """prend's agent steps/s of each timed iteration (after one untimed one) and the threads it used."""
    trainer = Trainer(cfg)
    try:
        trainer.start()
        trainer.train_iteration()  # untimed: allocator and oneDNN warm-up
        rates = []
        for _ in range(iterations):
            start = time.perf_counter()
            trainer.train_iteration()
            rates.append(cfg.batch_size / (time.perf_counter() - start))
    finally:
        trainer.close()
    return rates, trainer.perf["threads"]


def summary_rows(rows: list[Row]) -> list[list[str]]:
    """Table rows: each round's figures and, per config and side, the medians over rounds.

    Each side's ``x CleanRL RND`` is its rate over CleanRL's RND in the same round and config, ``x prend
    RND`` over prend's RND (a prend side only). In a ``median`` row the rate is the median over rounds and
    each ratio is the median of the rounds' ratios (each round's sides ran back to back).

    Example:
        >>> rows = [Row(1, "8x128", PREND_RND, 300.0, "1"), Row(1, "8x128", CLEANRL, 100.0, "2"),
        ...         Row(2, "8x128", PREND_RND, 200.0, "1"), Row(2, "8x128", CLEANRL, 80.0, "2")]
        >>> for r in summary_rows(rows): print(r)
        ['1', '8x128', 'prend RND', '1', '300', '3.00', '1.00']
        ['1', '8x128', 'CleanRL RND', '2', '100', '1.00', '—']
        ['2', '8x128', 'prend RND', '1', '200', '2.50', '1.00']
        ['2', '8x128', 'CleanRL RND', '2', '80', '1.00', '—']
        ['median', '8x128', 'prend RND', '1', '250', '2.75', '1.00']
        ['median', '8x128', 'CleanRL RND', '2', '90', '1.00', '—']
    """
    nan = float("nan")
    rate = {(r.round, r.config, r.side): r.steps_per_s for r in rows}
    ratios = {(r.round, r.config, r.side): (
        r.steps_per_s / rate.get((r.round, r.config, CLEANRL), nan),
        nan if r.side == CLEANRL else r.steps_per_s / rate.get((r.round, r.config, PREND_RND), nan))
        for r in rows}
    out = [[str(r.round), r.config, r.side, r.threads, _num(r.steps_per_s),
            *map(_ratio, ratios[r.round, r.config, r.side])] for r in rows]
    for config in dict.fromkeys(r.config for r in rows):
        for side in dict.fromkeys(r.side for r in rows):
            mine = [r for r in rows if (r.config, r.side) == (config, side)]
            if mine:
                keys = [(r.round, config, side) for r in mine]
                out.append(["median", config, side, "/".join(dict.fromkeys(r.threads for r in mine)),
                            _num(statistics.median(r.steps_per_s for r in mine)),
                            *(_ratio(statistics.median(ratios[k][i] for k in keys)) for i in (0, 1))])
    return out


def _num(value: float) -> str:
    return "—" if value != value else f"{value:,.0f}"


def _ratio(value: float) -> str:
    return "—" if value != value else f"{value:.2f}"


HEADER = ("round", "envs x steps", "side", "threads", "agent steps/s", "x CleanRL RND", "x prend RND")


def format_table(table: list[list[str]]) -> str:
    """The rows as a Markdown table (also readable as printed)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in table])


def check_setup(script: Path, python: Path) -> str:
    """Check CleanRL's script and interpreter; return the interpreter's torch/envpool/gym versions."""
    if not script.is_file():
        raise SetupError(f"--cleanrl-script {script} is not a file: pass the path of ppo_rnd_envpool.py in your "
                         "CleanRL checkout (git clone https://github.com/vwxyzjn/cleanrl; see this script's docstring)")
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise SetupError(f"--cleanrl-python {python} is not an executable: pass the python of a venv with "
                         "CleanRL's dependencies (see this script's docstring)")
    probe = "import torch, envpool, gym, tyro; print(torch.__version__, envpool.__version__, gym.__version__)"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SetupError(f"--cleanrl-python {python} cannot import CleanRL's dependencies ({last}): install "
                         "torch==2.13.0 envpool gym==0.23.1 tyro tensorboard there")
    torch_v, envpool_v, gym_v = done.stdout.split()
    return f"torch {torch_v}, envpool {envpool_v}, gym {gym_v}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cleanrl-script", type=Path, required=True, help="your CleanRL's ppo_rnd_envpool.py")
    parser.add_argument("--cleanrl-python", type=Path, required=True, help="a python with CleanRL's dependencies")
    parser.add_argument("--configs", nargs="+", default=["8x128", "128x128"], help="ENVSxSTEPS")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per side and round")
    parser.add_argument("--rounds", type=int, default=2, help="prend, CleanRL, prend, CleanRL, ...")
    parser.add_argument("--game", default="Boxing", help="an Atari game name (CleanRL runs its '-v5' in envpool)")
    parser.add_argument("--methods", nargs="+", default=["rnd"],
                        help="prend's methods to run in each round: rnd, rnd-lr, prend (the shipped compact "
                             "backbone), an installed plug-in's name or module.path:attribute")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="threads for both sides (0: each its default: prend's start-up choice, torch's)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for config in args.configs:
        try:
            envs, steps = parse_config(config)
        except ValueError as err:
            parser.error(f"--configs: {err}")
        if envs * steps % 4:
            parser.error(f"--configs: {config} has {envs * steps} samples, not divisible into 4 minibatches")
    if args.iterations < 1 or args.rounds < 1 or args.torch_threads < 0:
        parser.error("--iterations and --rounds must be >= 1, --torch-threads >= 0")
    if not args.game.isalnum():
        parser.error(f"--game: '{args.game}' is not a plain Atari game name such as Boxing")
    for method in args.methods:
        try:
            declared = resolve_method(method)
        except PrendError as err:
            parser.error(f"--methods: {err}")
        if not declared.intrinsic_head:
            parser.error(f"--methods: '{method}' has no intrinsic reward to time against CleanRL's RND; "
                         "choose rnd, rnd-lr, prend or your own reward")
    return args


def side_label(method: str) -> str:
    """The table label of one of prend's methods: a built-in's, or the declared name of the user's.

    Example (a plug-in gets ``prend`` and its declared name, ``prend pixel-rnd`` say):
        >>> side_label("rnd-lr")
        'prend RND+LR'
    """
    name = resolve_method(method).name
    return SIDES.get(name, f"prend {name}")


def main(argv: list[str] | None = None) -> int:
    """Measure both sides in interleaved rounds and print the table; returns the exit code."""
    args = parse_args(argv)
    try:
        versions = check_setup(args.cleanrl_script, args.cleanrl_python)
    except SetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = cpu_summary() if args.device == "cpu" else torch.cuda.get_device_name()
    print(f"device: {device}\nprend: torch {torch.__version__}; CleanRL ({args.cleanrl_script}): {versions}")
    print(f"game: {args.game} (CleanRL: {args.game}-v5 in envpool); identical: "
          + ", ".join(f"{flag} {value}" for flag, value, _, _ in SHARED))
    for line in DIFFERENCES:
        print(f"differs: {line}")
    rows: list[Row] = []
    threads = str(args.torch_threads) if args.torch_threads else "default"
    for round_ in range(1, args.rounds + 1):
        for config in args.configs:
            envs, steps = parse_config(config)
            try:
                for method in args.methods:
                    cfg = prend_config(envs, steps, args.iterations, args.game, args.seed, args.device,
                                       args.torch_threads, method)
                    rates, used = run_prend(cfg, args.iterations)
                    rows.append(Row(round_, config, side_label(method), statistics.median(rates), str(used)))
                    print(f"round {round_} {config} {side_label(method)}: {rows[-1].steps_per_s:,.0f} agent steps/s "
                          f"(iterations: {', '.join(f'{r:.0f}' for r in rates)})", flush=True)
                cmd = cleanrl_command(str(args.cleanrl_python), str(args.cleanrl_script), envs, steps,
                                      args.iterations, args.game, args.seed, args.device)
                rates = run_cleanrl(cmd, envs * steps, args.iterations, args.torch_threads)
            except PrendError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            except RunFailed as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            rows.append(Row(round_, config, CLEANRL, statistics.median(rates), threads))
            print(f"round {round_} {config} {CLEANRL}: {rows[-1].steps_per_s:,.0f} agent steps/s "
                  f"(iterations: {', '.join(f'{r:.0f}' for r in rates)})", flush=True)
    print()
    print(format_table(summary_rows(rows)))
    print(f"\n{device}; median of {args.iterations} timed iterations per side and round, after one warm-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
