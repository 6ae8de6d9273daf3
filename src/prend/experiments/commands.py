"""The ``prend diagnose``, ``prend sweep`` and ``prend report`` commands (flags parsed by tyro)."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from prend.clihelp import cli, default_hint, pop_flag
from prend.errors import PrendError


@dataclass
class DiagnoseArgs:
    """The paper's intrinsic-reward analyses of training runs: Fig. 1 and Fig. 3.

    Fig. 1: the intrinsic reward's trend, decay and oscillation; Fig. 3: pairwise reward differences against
    observation distances, with their correlation. Writes PNGs, summary.json and summary.md.
    """

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional,
                    tyro.conf.arg(metavar="RUN_DIR ...", help_behavior_hint="(required, one or more)")]
    """Run directories, or directories holding them (e.g. a sweep directory)."""
    out: Annotated[Path | None, tyro.conf.arg(
        metavar="PATH", help_behavior_hint=default_hint("RUN_DIR/diagnose for one run, else <common parent>/diagnose"))
    ] = None
    """Output directory."""
    max_points: int = 400
    """Fig. 3 uses at most this many training iterations, evenly spaced (the matrices are N x N)."""
    early_fraction: float = 0.1
    """Fraction of iterations in the early and late windows of the decay ratio."""
    skip_first: int = 0
    """Fig. 3 leaves out iterations up to this one (e.g. the untrained predictor's first ones)."""


def diagnose_command(argv: list[str], prog: str = "prend diagnose") -> int:
    """``prend diagnose RUN_DIR...``."""
    from prend.experiments.diagnose import default_out, diagnose, fig3_text

    args = cli(DiagnoseArgs, argv, prog)
    if not args.runs:
        raise PrendError("no run directories given", "pass one or more, e.g. prend diagnose runs/Boxing-rnd-s1")
    out = args.out or default_out(list(args.runs))
    summary = diagnose(list(args.runs), out, args.max_points, args.early_fraction, args.skip_first)
    for row in summary["groups"]:
        print(f"{row['game']:<12} {row['label']:<24} decay {row['decay']:.3g}  oscillation {row['oscillation']:.3g}  "
              + fig3_text(row))
    print(f"written: {out}/summary.md (and its PNG figures)")
    return 0


SWEEP_DESCRIPTION = """Run methods x games x seeds (x --grid fields) as `prend train` runs, on a local process pool
or a Ray cluster.

Flags other than the ones below go to every `prend train` run, for example `--num-envs 8 --total-steps 300000`.
With `--file FILE` a TOML/JSON sweep file is read first; flags given override it.

Running a sweep again skips finished runs and resumes unfinished ones. A failed run is reported with its
log (OUT/<run>/train.log) and does not stop the others; the exit code is 1 if any run failed. SIGINT or SIGTERM
(Ctrl-C, kill) stops the sweep cleanly: its running runs checkpoint and stop, no other starts, and it exits with
128 + the signal; run the same command again to resume."""


def sweep_command(argv: list[str], prog: str = "prend sweep") -> int:
    """``prend sweep [--file FILE] [sweep flags] [prend train flags...]``."""
    from prend.experiments.sweep import SweepConfig, load_sweep_file, run_sweep

    argv = list(argv)
    sweep_file = pop_flag(argv, "--file")
    base, file_train_args = load_sweep_file(sweep_file) if sweep_file else (SweepConfig(), [])
    cfg, train_args = cli(SweepConfig, argv, prog, default=base, description=SWEEP_DESCRIPTION,
                          return_unknown_args=True)
    results = run_sweep(cfg, [*file_train_args, *train_args])
    if any(r.get("state") in ("failed", "conflict") for r in results):
        return 1
    stopped = [r["signal"] for r in results if r.get("state") == "interrupted"]
    return 128 + signal.Signals[stopped[0]] if stopped else 0


@dataclass
class ReportArgs:
    """A sweep's results: SWEEP_DIR/report.md with PNG figures.

    Score curves (Fig. 2), final-score and AUC tables, scores at fixed frame budgets, human-normalised scores,
    and IQM across games with stratified-bootstrap CIs. Several directories are reported together (a new sweep
    beside committed runs of other methods) into --out. Each run counts as one sample of its group: a run
    directory reached twice is read once, and a seed trained by two runs of one group is named in a note.
    """

    paths: Annotated[tuple[Path, ...], tyro.conf.Positional,
                     tyro.conf.arg(metavar="SWEEP_DIR ...", help_behavior_hint="(required, one or more)")]
    """The sweep directory (or any directory holding run directories, or a run directory); several are
    reported together."""
    out: Annotated[Path | None, tyro.conf.arg(
        metavar="PATH", help_behavior_hint=default_hint("SWEEP_DIR when one is given; required for several"))
    ] = None
    """Where report.md, report.json and the figures go."""
    reps: int = 50_000
    """Bootstrap resamples of the aggregate CIs."""
    seed: int = 0
    """Seed of the bootstrap."""
    at_frames: Annotated[tuple[int, ...] | None, tyro.conf.arg(
        metavar="FRAMES ...", help_behavior_hint=default_hint("10%, 25%, 50% and 100% of each game's shortest run"))
    ] = None
    """Emulator-frame budgets of the "score at fixed frame budgets" table."""
    published: Literal["none", "dopamine"] = "none"
    """``dopamine``: draw Dopamine's published DQN, Rainbow and IQN training curves (60 games, sticky actions) in
    Fig. 2 and add them to the budget table, for the games that have them."""


def report_command(argv: list[str], prog: str = "prend report") -> int:
    """``prend report SWEEP_DIR... [--out DIR]``."""
    from prend.experiments.report import write_report

    args = cli(ReportArgs, argv, prog)
    path = write_report(list(args.paths), reps=args.reps, seed=args.seed, out=args.out,
                        at_frames=list(args.at_frames) if args.at_frames else None, published=args.published,
                        echo=lambda line: print(line, file=sys.stderr))
    print(f"written: {path} (and its PNG figures)")
    return 0


@dataclass
class EvalArgs:
    """Play trained runs' checkpoints for N games each and write their scores to RUN/eval.json.

    Prints and writes, per run: mean ± sd, median, min/max and games played, and the human-normalised score of
    the mean (random and human scores from DQN Zoo's Atari-57 table; games without one say so). Resumable:
    run it again to continue an interrupted evaluation. A run still training is evaluated at its latest
    checkpoint. Other settings write their own file: eval-greedy.json, eval-standard.json, eval-standard-greedy.json;
    --policy random plays uniformly random actions under the same protocol instead (eval-random.json,
    eval-standard-random.json), random play's own score where the runs are played; it needs only the run's config.
    """

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional,
                    tyro.conf.arg(metavar="RUN_DIR ...", help_behavior_hint="(required, one or more)")]
    """Run directories, or directories holding them (e.g. a sweep directory)."""
    episodes: int = 30
    """Games to play per run."""
    protocol: Literal["run", "standard"] = "run"
    """``run``: the run's own environment protocol; ``standard``: Machado et al. (2018)'s for Atari (sticky actions
    0.25, no no-op starts, full games up to 108,000 frames), on the run's action set, frame skip and stack."""
    greedy: bool = False
    """Take the most probable action instead of sampling from the policy."""
    policy: Literal["trained", "random"] = "trained"
    """``trained``: the run's checkpoint; ``random``: uniformly random actions over the run's action set (a
    baseline under the same protocol; needs no checkpoint)."""
    num_envs: int = 8
    """Environments played in parallel per run (each plays a fixed share of the games)."""
    seed: int = 0
    """Seed of the evaluation's environments and action sampling (the same for every run)."""
    torch_threads: int = 0
    """Threads torch may use (0: torch's default)."""


def eval_command(argv: list[str], prog: str = "prend eval") -> int:
    """``prend eval RUN_DIR...``."""
    from prend.experiments.evaluate import EvalSettings, evaluate

    args = cli(EvalArgs, argv, prog)
    if not args.runs:
        raise PrendError("no run directories given", "pass one or more, e.g. prend eval runs/Boxing-rnd-s1")
    settings = EvalSettings(args.episodes, args.protocol, args.greedy, args.num_envs, args.seed, args.policy)
    try:
        evaluate(list(args.runs), settings, args.torch_threads)
    except KeyboardInterrupt:
        print("\nstopped; the games finished so far are saved: run the same command again to continue",
              file=sys.stderr)
        return 130
    return 0


@dataclass
class VideoArgs:
    """A video of a trained run's agent playing, with its intrinsic reward, game reward and values beneath.

    The game in colour (upscaled), over a strip that draws, on the video's time axis, the intrinsic reward
    (raw and normalised, from the run's own reward module), the game's reward and both value heads; plain PPO
    runs have no intrinsic-reward row. One frame per agent step; H.264 MP4 (or a GIF) through imageio-ffmpeg's
    bundled ffmpeg.
    """

    run: tyro.conf.Positional[Path]
    """The run directory (its checkpoint is played)."""
    out: Annotated[Path | None, tyro.conf.arg(metavar="PATH", help_behavior_hint=default_hint(
        "RUN_DIR/agent.mp4, or RUN_DIR/agent.gif with --gif"))] = None
    """The video file to write (.mp4, or .gif with --gif)."""
    seconds: float = 20.0
    """Length of the video; it plays seconds x fps agent steps."""
    fps: int = 15
    """Frames (agent steps) per second: 15 is real time for Atari at frame skip 4."""
    gif: bool = False
    """Write a GIF instead of an MP4."""
    greedy: bool = False
    """Take the most probable action instead of sampling from the policy."""
    seed: int = 0
    """Seed of the game's reset and the action sampling."""


def video_command(argv: list[str], prog: str = "prend video") -> int:
    """``prend video RUN_DIR --out agent.mp4``."""
    from prend.experiments.video import make_video

    args = cli(VideoArgs, argv, prog)
    out = args.out or args.run / ("agent.gif" if args.gif else "agent.mp4")
    path, trace = make_video(args.run, out, args.seconds, args.fps, args.gif, args.greedy, args.seed)
    games = int(trace.episode_end.sum())
    print(f"written: {path} ({len(trace.actions)} frames at {args.fps} fps, one per agent step; {games} games ended; "
          f"game score in the video {trace.reward_ext.sum():.4g})")
    return 0
