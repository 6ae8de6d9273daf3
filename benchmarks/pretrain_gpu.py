"""The Python half of ``benchmarks/pretrain_gpu.sh``: frames, a timed warm-up, pre-training to a budget, probe.

Run it through the shell script, which first checks that there is a GPU, that torch sees it and that the
interpreter has prend's dependencies. Subcommands:

* ``run``: the whole recipe within ``--budget-s`` seconds (see :class:`Pipeline`);
* ``plan``: print the phases, their deadlines and commands for a budget, without running anything;
* ``finish``: export and summarise an existing pre-training run directory (what ``run`` does after training);
* ``ship``: make package weights (``src/prend/weights/NAME.pt`` and ``.json``) of a brought-back folder;
* ``wheels``: download, here, the wheels of the packages a bare GPU machine lacks (``pip download``).

The output folder holds at most 8 flat files (what the device tool brings back): ``backbone.pt`` (or its parts),
``backbone.json``, ``probe.json``, ``probe.md``, ``summary.json`` and ``log.txt``. Everything else (frames,
checkpoints, TensorBoard logs) goes to the work folder.

Its helpers live beside it, split out by concept: ``pretrain_gpu_budget.py`` (the time budget's arithmetic),
``pretrain_gpu_commands.py`` (options, ``prend`` commands) and ``pretrain_gpu_outputs.py`` (export, records, ship).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pretrain_gpu_budget import (
    BUDGET_S,
    LOAD_FRAMES_PER_S,
    MIN_TRAIN_S,
    PROBE_S,
    WARMUP_CAP_S,
    WARMUP_FRAMES_PER_GAME,
    WARMUP_LOG_EVERY,
    WARMUP_STEPS,
    deadlines,
    save_every,
    startup_seconds,
    steps_for_budget,
    steps_per_second,
)
from pretrain_gpu_commands import (
    Options,
    collect_command,
    frames_in,
    merge_figures,
    prend_features,
    pretrain_command,
    pretrain_games,
    probe_collect_command,
    probe_plan,
    shown,
)
from pretrain_gpu_outputs import (
    add_probe_to_record,
    backbone_file,
    finish,
    headline,
    probe_markdown,
    scalar_events,
    ship,
)

GRACE_S = 30
"""After SIGTERM (the trainer finishes its step and saves ``latest.pth``) this long before SIGKILL."""
WHEEL_PACKAGES = ("ale-py", "gymnasium", "farama-notifications", "tyro", "docstring-parser", "typeguard",
                  "typing-extensions")
"""prend's dependencies that the GPU machine's python3 lacks (it has torch, numpy, scipy, tensorboard, tqdm,
matplotlib, opencv); typing-extensions travels too, as typeguard needs >= 4.14."""
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                   "manylinux2014_x86_64", "manylinux1_x86_64")


# --------------------------------------------------------------------------------------------- processes
@dataclasses.dataclass
class Outcome:
    """How a command ended."""

    code: int | None
    timed_out: bool
    seconds: float
    launched: float
    """Wall-clock time (``time.time()``) it was started."""

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.timed_out


class Job:
    """A command running with its output in files; :meth:`wait` stops it at a deadline (SIGTERM, then SIGKILL)."""

    def __init__(self, command: Sequence[str], log: Path, stdout: Path | None = None,
                 env: dict[str, str] | None = None):
        log.parent.mkdir(parents=True, exist_ok=True)
        self.files = [log.open("w")]
        out = self.files[0] if stdout is None else open(stdout, "w")
        if stdout is not None:
            self.files.append(out)
        self.launched, self.start, self.ended = time.time(), time.monotonic(), None
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", **(env or {})}
        self.proc = subprocess.Popen(list(command), stdout=out, stderr=self.files[0], env=full_env)

    def done(self) -> bool:
        """Whether the command has ended (its end time is noted, for :meth:`wait`'s seconds)."""
        if self.ended is None and self.proc.poll() is not None:
            self.ended = time.monotonic()
        return self.ended is not None

    def wait(self, timeout_s: float) -> Outcome:
        timed_out = False
        try:
            code: int | None = self.proc.wait(timeout=max(1.0, timeout_s))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        for handle in self.files:
            handle.close()
        self.done()
        return Outcome(code, timed_out, (self.ended or time.monotonic()) - self.start, self.launched)


def launch(command: Sequence[str], log: Path, stdout: Path | None = None, env: dict[str, str] | None = None) -> Job:
    """Start ``command`` (module-level so the tests can substitute a scripted one)."""
    return Job(command, log, stdout, env)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a text file ('' when it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ----------------------------------------------------------------------------------------------- pipeline
class Pipeline:
    """Frames, warm-up, pre-training, export, probe, each within its deadline; the summary after every phase.

    Phases and their limits (seconds after the helper's start; :func:`deadlines`):

    1. probe frames (``prend collect --ram``, in the background) and pre-training frames (``prend collect``,
       the default games plus Boxing, ``--num-envs`` copies), unless ``--probe-data`` / ``--data`` are given;
       the pre-training frames must be there by ``collect``;
    2. warm-up: a :data:`WARMUP_STEPS`-step ``prend pretrain`` of the same model on a few frames per game; its
       TensorBoard wall times give the steps per second and the start-up cost;
    3. pre-training: ``--steps`` = :func:`steps_for_budget` of the time to ``train``; SIGTERM at ``train`` if
       it runs over (the trainer saves ``latest.pth`` and stops);
    4. export: ``backbone.pt`` + ``backbone.json`` from the finished run or its last checkpoint;
    5. probe: the classic probe and ``prend probe --state --no-classic`` side by side (:func:`probe_plan`)
       until ``end``; ``probe.json`` and ``probe.md`` hold what finished.
    """

    def __init__(self, opts: Options, clock: Any = time.monotonic):
        self.opts, self.clock = opts, clock
        self.start = clock()
        self.limits = deadlines(opts.budget_s, opts.probe_s)
        self.logs = opts.work / "logs"
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.summary: dict[str, Any] = {
            "result": "running", "problems": self.problems, "notes": self.notes, "gpu": opts.gpu,
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()},
            "budget": {"left_s": opts.budget_s, **dataclasses.asdict(self.limits)}, "phases": {}}

    # ---------------------------------------------------------------------------------------------- helpers
    def now(self) -> float:
        return self.clock() - self.start

    def say(self, message: str) -> None:
        print(f"pretrain_gpu [{self.now():5.0f} s]: {message}", flush=True)

    def record(self, name: str, command: Sequence[str], outcome: Outcome) -> None:
        self.summary["phases"][name] = {"command": shown(command), "exit": outcome.code,
                                        "timed_out": outcome.timed_out, "seconds": round(outcome.seconds, 1)}
        state = "ok" if outcome.ok else ("stopped by the time budget" if outcome.timed_out
                                         else f"FAILED (exit {outcome.code})")
        self.say(f"{name}: {state} after {outcome.seconds:.0f} s")
        if not outcome.ok and not outcome.timed_out:
            log = self.logs / f"{name}.log"
            print(tail(log, 15), flush=True)

    def write(self) -> None:
        """``summary.json`` and ``log.txt`` as they stand (so a run killed from outside leaves both)."""
        out = self.opts.out
        self.summary["used_s"] = round(self.now(), 1)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=1, default=str) + "\n")
        parts = []
        for log in sorted(self.logs.glob("*.log"), key=lambda p: p.stat().st_mtime):
            parts.append(f"===== {log.stem} =====\n{tail(log, 200)}\n")
        (out / "log.txt").write_text("".join(parts))

    def fail(self, problem: str) -> None:
        self.problems.append(problem)
        self.say(problem)

    def note(self, note: str) -> None:
        self.notes.append(note)
        self.say(note)

    def run_phase(self, name: str, command: Sequence[str], deadline: float, stdout: Path | None = None) -> Outcome:
        self.say(f"{name}: {shown(command)} (at most {max(1.0, deadline - self.now()):.0f} s)")
        outcome = launch(command, self.logs / f"{name}.log", stdout).wait(deadline - self.now())
        self.record(name, command, outcome)
        return outcome

    # ----------------------------------------------------------------------------------------------- phases
    def run(self) -> int:
        opts = self.opts
        features = prend_features()
        if features["objectives"] is not None and opts.objective not in features["objectives"]:
            print(f"pretrain_gpu: --objective {opts.objective!r} is not one prend pretrain knows "
                  f"({', '.join(features['objectives'])})", file=sys.stderr)
            return 2
        opts.out.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.summary["prend_features"] = features
        if not features["collect_ram"] and opts.probe_data is None:
            self.note("this prend has no `prend collect --ram`: the probe frames are collected without the RAM")
        if not features["probe_state"]:
            self.note("this prend has no `prend probe --state`: the probe runs without the state probe")
        self.write()

        probe_job = None
        if opts.probe_data is None:
            command = probe_collect_command(opts, features)
            self.say(f"probe frames (background): {shown(command)}")
            probe_job = (command, launch(command, self.logs / "collect-probe.log"))
        if opts.data is None:
            outcome = self.run_phase("collect", collect_command(opts, features), self.limits.collect)
            if not outcome.ok:
                self.fail(f"the pre-training frames were not collected within {self.limits.collect:.0f} s "
                          "(pass a smaller --frames-per-game, or --data)" if outcome.timed_out else
                          "collecting the pre-training frames failed (see log.txt)")
                return self.done(probe_job)
        self.summary["frames"] = {"data": str(opts.frames_dir()), "frames": frames_in(opts.frames_dir())}
        self.write()

        run_dir = self.train()
        if run_dir is not None:
            try:
                self.summary["pretrain"] = finish(run_dir, opts.out, opts.work, self.backbone_record())
                self.say(f"export: {opts.out / 'backbone.pt'} ({self.summary['pretrain']['backbone']['status']})")
            except Exception as err:  # a missing or unreadable checkpoint: say so, keep the summary
                self.fail(f"nothing exported: {type(err).__name__}: {err}")
            self.write()
        return self.done(probe_job, exported=run_dir is not None and "pretrain" in self.summary)

    def train(self) -> Path | None:
        """Warm-up, then the budgeted run; its directory (``None`` when nothing ran)."""
        opts = self.opts
        warm_dir = opts.work / "warmup"
        shutil.rmtree(warm_dir, ignore_errors=True)
        warm_cmd = pretrain_command(opts, warm_dir, WARMUP_STEPS, WARMUP_STEPS, WARMUP_LOG_EVERY,
                                    WARMUP_FRAMES_PER_GAME)
        outcome = self.run_phase("warmup", warm_cmd,
                                 min(self.now() + WARMUP_CAP_S, self.limits.train - MIN_TRAIN_S / 2))
        ended = outcome.launched + outcome.seconds
        events = [(s, w) for s, w, _ in scalar_events(warm_dir / "tb", "loss/mse")]
        try:
            rate = steps_per_second(events)
        except ValueError:
            self.fail("the warm-up run logged too few steps to time (see log.txt)" if outcome.ok else
                      "the warm-up run failed, so the pre-training run would too (see log.txt)")
            return None
        startup = startup_seconds(outcome.launched, events, rate)
        save_s = max(0.0, ended - max(w for _, w in events))
        frames = self.summary["frames"]["frames"]
        warm_frames = min(opts.frames_per_game, WARMUP_FRAMES_PER_GAME) * len(pretrain_games())
        main_startup = startup + max(0, frames - warm_frames) / LOAD_FRAMES_PER_S
        left = self.limits.train - self.now()
        steps = steps_for_budget(left, rate, main_startup, save_s)
        self.summary["warmup"] = {"steps_per_s": rate, "samples_per_s": rate * opts.batch_size,
                                  "startup_s": startup, "save_s": save_s}
        self.summary["plan"] = {"seconds": left, "startup_s": main_startup, "steps": steps,
                                "save_every": save_every(steps), "samples": steps * opts.batch_size}
        self.say(f"warm-up: {rate:.2f} steps/s ({rate * opts.batch_size:,.0f} samples/s), start-up {startup:.0f} s, "
                 f"save {save_s:.0f} s; planned {steps} steps for the {left:.0f} s left before the probe")
        self.write()
        if steps < 1:
            self.fail(f"no pre-training step fits in the {left:.0f} s left (start-up {main_startup:.0f} s)")
            return None
        run_dir = opts.work / ("run-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        outcome = self.run_phase("pretrain", pretrain_command(opts, run_dir, steps, save_every(steps)),
                                 self.limits.train)
        if outcome.timed_out:
            self.fail(f"the pre-training run was stopped at the budget's probe time ({self.limits.train:.0f} s); "
                      "its last checkpoint is kept")
        elif not outcome.ok:
            self.fail(f"the pre-training run failed (exit {outcome.code}); its last checkpoint, if any, is kept")
        return run_dir

    def backbone_record(self) -> dict[str, Any]:
        recipe = [phase["command"] for phase in self.summary["phases"].values()]
        return {"recipe": recipe, "gpu": self.opts.gpu, "made_by": "benchmarks/pretrain_gpu.sh",
                "frames": self.summary.get("frames"), "warmup": self.summary.get("warmup"),
                "plan": self.summary.get("plan")}

    def done(self, probe_job: tuple[list[str], Job] | None, exported: bool = False) -> int:
        """Wait for the probe frames, probe the exported backbone, write the summary; the exit code."""
        opts = self.opts
        if probe_job is not None:
            command, job = probe_job
            # Past the pre-training it may use the probe's time, less the minute the probe needs at least.
            outcome = job.wait(self.limits.end - 60 - self.now() if exported else 1.0)
            self.record("collect-probe", command, outcome)
            if not outcome.ok and exported:
                self.fail("the probe frames were not collected (see log.txt)")
        if exported and (opts.probe_dir() / "manifest.json").exists():
            self.probe()
        elif exported:
            self.fail(f"no probe frames at {opts.probe_dir()}: no probe")
        self.summary["result"] = "ok" if not self.problems and exported else ("partial" if exported else "failed")
        self.summary["files"] = sorted(p.name for p in opts.out.iterdir() if p.is_file())
        self.write()
        self.say(f"result: {self.summary['result']}; {len(self.problems)} problem(s); "
                 f"files in {opts.out}: {', '.join(self.summary['files'])}")
        for problem in self.problems:
            print(f"  - {problem}")
        return 0 if self.summary["result"] == "ok" else 1

    def probe(self) -> None:
        """The probes side by side until the end deadline; ``probe.json`` and ``probe.md`` from what finished."""
        opts = self.opts
        checkpoint = backbone_file(opts.out, opts.work)
        plan = probe_plan(opts, checkpoint, self.summary["prend_features"])
        threads = str(max(1, (os.cpu_count() or 2) // len(plan)))  # the cores shared, not oversubscribed
        jobs = []
        for name, command, out_json in plan:
            out_json.unlink(missing_ok=True)
            self.say(f"{name}: {shown(command)} (at most {max(1.0, self.limits.end - self.now()):.0f} s, "
                     f"{threads} threads)")
            jobs.append(launch(command, self.logs / f"{name}.log", opts.work / f"{name}.txt",
                               env={"OMP_NUM_THREADS": threads}))
        while not all([job.done() for job in jobs]) and self.now() < self.limits.end:  # a list: poll every job
            time.sleep(0.5)  # each probe's own end time is noted; then they are collected in order
        finished, tables = [], []
        for (name, command, out_json), job in zip(plan, jobs, strict=True):
            outcome = job.wait(self.limits.end - self.now())
            self.record(name, command, outcome)
            if outcome.ok and out_json.exists():
                finished.append(json.loads(out_json.read_text()))
                tables.append((opts.work / f"{name}.txt").read_text())
            elif outcome.timed_out:
                self.fail(f"{name} did not finish within the budget; it runs on any machine that has the probe "
                          f"frames: {shown(command)}")
            else:
                self.fail(f"{name} failed (exit {outcome.code}; see log.txt)")
        if not finished:
            return
        figures = merge_figures(finished)
        (opts.out / "probe.json").write_text(json.dumps(figures, indent=1) + "\n")
        add_probe_to_record(opts.out, figures)
        pre = self.summary.get("pretrain", {})
        backbone = pre.get("backbone", {})
        facts = {"backbone": f"{backbone.get('arch')} width {backbone.get('width')}, objective {opts.objective}",
                 "pre-training": f"{pre.get('step')} of {pre.get('steps')} steps x {opts.batch_size} pairs"
                                 f" ({'finished' if pre.get('completed') else 'stopped by the budget'})",
                 "frames": f"{self.summary['frames']['frames']:,} in {self.summary['frames']['data']}",
                 "GPU": opts.gpu, "sha256": backbone.get("sha256"),
                 "probe commands": "; ".join(shown(command) for _, command, _ in plan)}
        text = "\n".join(tables)
        (opts.out / "probe.md").write_text(probe_markdown(text, facts))
        self.summary["probe"] = headline(figures)
        print(text, flush=True)


# -------------------------------------------------------------------------------------------------- wheels
def wheel_command(dest: Path, versions: dict[str, str], python: str = sys.executable) -> list[str]:
    """``pip download`` of pinned wheels for the GPU machine's Python 3.12 on x86-64 Linux (no dependencies).

    Example:
        >>> " ".join(wheel_command(Path(".whl"), {"tyro": "1.0.17"}, "py")[:10])
        'py -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp'
    """
    platforms = [arg for name in WHEEL_PLATFORMS for arg in ("--platform", name)]
    return [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
            "--implementation", "cp", *platforms, "-d", str(dest), *(f"{n}=={v}" for n, v in versions.items())]


def local_versions(packages: Sequence[str] = WHEEL_PACKAGES) -> dict[str, str]:
    """The versions installed here (so the GPU machine runs what the tests ran)."""
    return {name: importlib.metadata.version(name) for name in packages}


# ----------------------------------------------------------------------------------------------------- cli
def default_work(out: Path) -> Path:
    """The work folder beside the output folder: ``OUT.work`` (outside it, so only the results travel back).

    Example:
        >>> default_work(Path("/tmp/x/out/"))
        PosixPath('/tmp/x/out.work')
    """
    out = out.resolve()
    return out.parent / f"{out.name}.work"


def options_from(args: argparse.Namespace) -> Options:
    return Options(out=args.out.resolve(), work=(args.work or default_work(args.out)).resolve(),
                   budget_s=args.budget_s, objective=args.objective, arch=args.arch, width=args.width,
                   batch_size=args.batch_size, frames_per_game=args.frames_per_game, num_envs=args.num_envs,
                   data=args.data.resolve() if args.data else None,
                   probe_data=args.probe_data.resolve() if args.probe_data else None, probe_s=args.probe_s,
                   seed=args.seed, device=args.device, gpu=args.gpu, pretrain_args=list(args.pretrain_args))


def plan_text(opts: Options) -> str:
    """The phases ``run`` would go through, with their deadlines and commands (``--steps`` left as STEPS)."""
    limits = deadlines(opts.budget_s, opts.probe_s)
    features = {"collect_ram": True, "probe_state": True, "probe_classic_flag": True}
    lines = [f"budget: {opts.budget_s:.0f} s after set-up; frames by {limits.collect:.0f} s, pre-training stops "
             f"by {limits.train:.0f} s, probe by {limits.end:.0f} s"]
    if opts.probe_data is None:
        lines.append(f"probe frames (background): {shown(probe_collect_command(opts, features))}")
    if opts.data is None:
        lines.append(f"frames (by {limits.collect:.0f} s): {shown(collect_command(opts, features))}")
    warm = pretrain_command(opts, opts.work / "warmup", WARMUP_STEPS, WARMUP_STEPS, WARMUP_LOG_EVERY,
                            WARMUP_FRAMES_PER_GAME)
    lines.append(f"warm-up (at most {WARMUP_CAP_S} s): {shown(warm)}")
    main = shown(pretrain_command(opts, opts.work / "run-TIME", 0, 0)).replace("--steps 0 --save-every 0",
                                                                                "--steps STEPS --save-every STEPS/3")
    lines.append(f"pre-training (by {limits.train:.0f} s): {main}")
    lines.append(f"export: {opts.out / 'backbone.pt'} and backbone.json")
    for name, command, _ in probe_plan(opts, opts.out / "backbone.pt", features):
        lines.append(f"{name} (side by side, by {limits.end:.0f} s): {shown(command)}")
    lines.append(f"probe.json, probe.md, summary.json and log.txt in {opts.out}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "plan"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--work", type=Path, default=None, help="default: OUT.work beside OUT")
        p.add_argument("--budget-s", type=float, default=BUDGET_S, help="seconds left for everything")
        p.add_argument("--objective", default="siammae")
        p.add_argument("--arch", choices=("resnet18", "resnet34", "resnet50"), default="resnet18")
        p.add_argument("--width", type=float, default=0.5)
        p.add_argument("--batch-size", type=int, default=512)
        p.add_argument("--frames-per-game", type=int, default=15_000)
        p.add_argument("--num-envs", type=int, default=16)
        p.add_argument("--data", type=Path, default=None)
        p.add_argument("--probe-data", type=Path, default=None)
        p.add_argument("--probe-s", type=float, default=PROBE_S)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="cuda", help="cuda (the shell script never passes another)")
        p.add_argument("--gpu", default="?", help="the GPU's name, for the records")
        p.add_argument("pretrain_args", nargs=argparse.REMAINDER, help="after --: more prend pretrain flags")
    p = sub.add_parser("finish")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, default=None)
    p = sub.add_parser("ship")
    p.add_argument("folder", type=Path, help="the folder the run brought back")
    p.add_argument("dest", type=Path, help="e.g. src/prend/weights/siammae_resnet18_w05.pt")
    p = sub.add_parser("wheels")
    p.add_argument("--dest", type=Path, default=Path(".whl"))
    p.add_argument("--print", action="store_true", help="print the pip command instead of running it")
    args = parser.parse_args(argv)
    if getattr(args, "pretrain_args", None) and args.pretrain_args[0] == "--":
        args.pretrain_args = args.pretrain_args[1:]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "wheels":
        command = wheel_command(args.dest, local_versions())
        if args.print:
            print(shlex.join(command))
            return 0
        code = subprocess.run(command).returncode
        if code == 0:
            print(f"wheels in {args.dest}: carry it (\"carry\": [\"{args.dest}\"]) and pass --wheels {args.dest}")
        return code
    if args.command == "ship":
        info = ship(args.folder, args.dest)
        print(f"{args.dest}: {info['arch']} width {info['width']}, sha256 {info['sha256']}, {info['bytes']:,} bytes")
        return 0
    if args.command == "finish":
        out = args.out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        part = finish(args.run_dir, out, (args.work or default_work(out)).resolve())
        print(json.dumps({k: v for k, v in part.items() if k != "loss_curve"}, indent=1, default=str))
        return 0
    opts = options_from(args)
    if args.command == "plan":
        print(plan_text(opts))
        return 0
    return Pipeline(opts).run()


if __name__ == "__main__":
    sys.exit(main())
