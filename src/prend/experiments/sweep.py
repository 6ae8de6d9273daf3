"""``prend sweep``: methods x games x seeds (x any config field) as ``prend train`` runs, locally or on Ray.

Every run is a ``prend train`` process writing its own run directory
``OUT/<game>-<method>[-<field><value>...]-s<seed>/``. The sweep hands it the config it chose as config
fields, not flags: method, game, seed, output directory, thread counts and ``--grid`` values go into
``sweep_config.json`` there, merged over the fields of a ``--config`` file among the train flags, and the
run is ``python -P -m prend.cli train --config RUN/sweep_config.json [the other train flags]``, resolved
exactly as the sweep resolved it when it planned the run (:func:`prend.train.parse_train_args`). Its stdout
and stderr go to ``train.log`` there and its sweep state to ``sweep_status.json`` (all of it through
:class:`prend.rundir.RunDir`). Running the same sweep again skips finished runs, resumes
unfinished ones from their checkpoint (``prend train --resume``; a larger ``--total-steps`` extends finished
ones) and starts the rest. A failed run is reported with its log and does not stop the others. A run
directory another ``prend train`` holds (its lock, see :mod:`prend.rundir`) is reported busy and left alone.

Backends:

``local`` (default)
    a pool of ``--workers`` concurrent runs (default: one per core), each limited to its share of the cores
    (``--env-threads`` and ``OMP_NUM_THREADS``); a run with more than one core times its torch threads at
    start-up as ``prend train`` does, held to its own cores when others run beside it, and ``--threads-per-run``
    fixes them (:func:`prend.experiments.execution.thread_plan`).
``ray``
    one Ray task per run on the cluster at ``--ray-address`` (``auto``: the running cluster; unset: a
    local instance), reserving ``--threads-per-run`` CPUs (and ``--gpus-per-run`` GPUs) each. The output
    directory must be on a filesystem every node sees.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from prend.checkpoint import sha256_file
from prend.clihelp import default_hint, pop_flag
from prend.config import config_from_dict, config_to_dict, read_config_file
from prend.errors import PrendError
from prend.experiments.evaluate import eval_complete, eval_in_subprocess
from prend.experiments.execution import ThreadPlan, child_pythonpath, run_local, thread_plan
from prend.experiments.grid import (
    SWEEP_OWNED_FLAGS,
    GridAxis,
    field_value,
    flag_name,
    merged_fields,
    nested_field,
    parse_grid,
)
from prend.experiments.preflight import check_builders, check_game, plugin_modules
from prend.intrinsic.methods import resolve_method
from prend.intrinsic.pretrained import backbone_weights_file
from prend.rundir import BOOKKEEPING_FIELDS, RunDir, flatten, write_sweep_manifest
from prend.train import parse_train_args


@dataclass
class SweepConfig:
    """A sweep: every combination of methods, games, grid values and seeds, as ``prend train`` runs."""

    out: Annotated[Path | None, tyro.conf.arg(metavar="PATH", help_behavior_hint=default_hint(
        "none; required here or as `out` in the sweep file"))] = None
    """Sweep directory; each run gets a subdirectory."""
    methods: str = "rnd,rnd-lr,prend"
    """Comma-separated methods: built-in ones, installed plug-ins' names, or ``module.path:attribute`` (as
    ``prend train --method`` takes them)."""
    games: str = "Boxing,Riverraid"
    """Comma-separated games."""
    seeds: str = "1,2"
    """Comma-separated seeds."""
    eval_episodes: int = 0
    """Evaluate each run when it finishes with `prend eval --episodes N` (RUN/eval.json; its output goes to
    train.log), and runs finished before this sweep that lack a complete evaluation; 0: no evaluation."""
    grid: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """A config field and its values, e.g. ``--grid predictor-lr-scale=0.01,0.1``; repeat for a product."""
    grid_mode: Literal["product", "each"] = "product"
    """``product``: a run for every combination of the ``--grid`` values; ``each``: one run per ``--grid`` value
    with every other field as given, plus the run with no ``--grid`` value (one factor at a time, an ablation);
    a value that the run's method ignores (``IntrinsicMethod.unused_fields``) is then not run."""
    backend: Literal["local", "ray"] = "local"
    """``local``: a process pool on this machine; ``ray``: tasks on a Ray cluster."""
    ray_address: str | None = None
    """Ray cluster address (``auto``: the cluster this machine belongs to; unset: start a local instance)."""
    workers: int = 0
    """Concurrent runs of the local backend (0: one per core, at most one per run)."""
    threads_per_run: int = 0
    """CPU threads (and, on Ray, reserved CPUs) per run (0: cores / workers, and a run with several times 1 torch
    thread against them at start-up, as ``prend train`` does)."""
    gpus_per_run: float = 0.0
    """GPUs each Ray task reserves (the ray backend only)."""
    max_retries: int = 3
    """Ray backend: times a run whose node or worker died is resubmitted (from its checkpoint if it has one)."""
    progress_every: float = 30.0
    """Ray backend: seconds between progress lines (runs done, running, failed, retried; agent steps/s)."""
    dry_run: bool = False
    """Print what would run and exit."""


@dataclass
class RunSpec:
    """One run of a sweep."""

    name: str
    run_dir: Path
    train_args: list[str]
    """The sweep's train flags as the user gave them, a ``--config FILE`` taken out (its fields are in
    :attr:`fields`)."""
    total_steps: int
    config: dict[str, Any] = field(repr=False)
    """The resolved config the run trains with (:func:`prend.config.config_to_dict`)."""
    state: str = "start"
    """``start``, ``resume``, ``finished`` (skipped), ``conflict`` (the directory holds another run) or
    ``busy`` (another process is training in it)."""
    message: str = ""
    fields: dict[str, Any] = field(default_factory=dict, repr=False)
    """The config fields a fresh start reads from ``sweep_config.json`` (under :attr:`train_args`)."""

    @property
    def log(self) -> Path:
        """The run's log file."""
        return RunDir(self.run_dir).train_log_path

    def command_args(self) -> list[str]:
        """The ``prend train`` arguments for this run's state."""
        if self.state == "resume":
            return ["--resume", str(self.run_dir), "--total-steps", str(self.total_steps)]
        return ["--config", str(RunDir(self.run_dir).sweep_config_path), *self.train_args]


# -------------------------------------------------------------------------------------------- plan
def _split(text: str | list | tuple, what: str) -> list[str]:
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    if not items:
        raise PrendError(f"--{what} is empty", f"pass e.g. --{what} " + {"methods": "rnd,prend", "games": "Boxing",
                                                                         "seeds": "1,2"}.get(what, "a,b"))
    return items


def _has_flag(args: list[str], flag: str) -> bool:
    negated = "--no-" + flag[2:]
    return any(a == flag or a.startswith(flag + "=") or a == negated for a in args)


def threads_of(cfg: SweepConfig, specs: list[RunSpec]) -> ThreadPlan:
    """How the runs of ``specs`` to start or resume share the cores (:func:`thread_plan`)."""
    todo = sum(s.state in ("start", "resume") for s in specs)
    return thread_plan(max(1, todo), cfg.workers, cfg.threads_per_run, pin=cfg.backend == "local")


def plan(cfg: SweepConfig, train_args: list[str]) -> list[RunSpec]:
    """Every run of the sweep with its config and its state on disk; raises :class:`PrendError` on bad input.

    A run's config is resolved as its ``prend train --config sweep_config.json [train flags]`` will resolve
    it: the fields the sweep chose for it (over those of a ``--config`` file among ``train_args``) beneath the
    other train flags.
    """
    if cfg.out is None:
        raise PrendError("prend sweep needs --out", "pass the sweep directory, e.g. --out sweeps/paper")
    if cfg.max_retries < 0 or not cfg.progress_every > 0:
        raise PrendError("--max-retries must be >= 0 and --progress-every > 0", "pass e.g. --max-retries 3")
    for flag in SWEEP_OWNED_FLAGS:
        if _has_flag(train_args, flag):
            raise PrendError(f"{flag} cannot be given to a sweep's runs",
                             "use --methods, --games, --seeds and --out; finished runs are resumed by themselves")
    methods, games = _split(cfg.methods, "methods"), _split(cfg.games, "games")
    names = {method: resolve_method(method).name for method in methods}  # an unknown one: one line, here
    seeds = []
    for seed in _split(cfg.seeds, "seeds"):
        if not seed.lstrip("-").isdigit():
            raise PrendError(f"seed '{seed}' is not an integer", "pass e.g. --seeds 1,2")
        seeds.append(int(seed))
    grid = parse_grid(cfg.grid)
    for axis in grid:
        if _has_flag(train_args, axis.flag):
            raise PrendError(f"{axis.flag} is both a --grid field and a train flag", "give it in one place")
    for game in games:
        check_game(game)
    if cfg.grid_mode == "each":
        combos: list[tuple[tuple[GridAxis, str], ...]] = [()] + [((axis, v),) for axis in grid for v in axis.values]
    else:
        combos = list(itertools.product(*[[(axis, v) for v in axis.values] for axis in grid])) or [()]
    flags = list(train_args)
    config_file = pop_flag(flags, "--config")
    shared = read_config_file(config_file) if config_file else {}
    shared = merged_fields(shared, {"run": {"progress": False}})
    values = {(axis, v): field_value(axis.field, v) for axis in grid for v in axis.values}
    out = Path(cfg.out).resolve()
    specs = []
    for game, method, combo, seed in itertools.product(games, methods, combos, seeds):
        suffix = "".join(f"-{axis.name}{value}" for axis, value in combo)
        name = _safe(f"{game}-{names[method]}{suffix}-s{seed}")
        run_dir = out / name
        fields = merged_fields(shared, {"intrinsic": {"method": method}, "env": {"game": game},
                                  "run": {"seed": seed, "out": str(run_dir)}})
        for axis, value in combo:
            fields = merged_fields(fields, nested_field(axis.field, values[axis, value]))
        try:
            config, _ = parse_train_args(flags, prog="prend train", fields=fields)
        except PrendError as err:
            raise PrendError(f"the train flags of run '{name}': {err}") from None
        if cfg.grid_mode == "each" and combo and combo[0][0].field.startswith("intrinsic.") and \
                not resolve_method(method).reads(combo[0][0].field.split(".")[-1], config.intrinsic):
            continue  # the same run as the one without this --grid value
        spec = RunSpec(name, run_dir, flags, config.run.total_steps, config_to_dict(config), fields=fields)
        classify(spec)
        specs.append(spec)
    # Threads depend on how many runs there are to run, known now; they are bookkeeping to classify.
    threads = threads_of(cfg, specs)
    for flag, path, value in (("--torch-threads", "run.torch_threads", threads.torch_threads),
                              ("--env-threads", "env.env_threads", threads.threads)):
        if not _has_flag(flags, flag):
            for spec in specs:
                spec.fields = merged_fields(spec.fields, nested_field(path, value))
                section, key = path.split(".")
                spec.config[section][key] = value
    check_builders(s.config for s in specs if s.state in ("start", "resume"))
    return specs


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def classify(spec: RunSpec) -> None:
    """Set ``spec.state`` from the run directory: finished, resume, start, conflict or busy.

    The run's config is its checkpoint's (``config.json`` may have been edited); a run directory locked by a
    live ``prend train`` is ``busy`` and left alone.
    """
    run_dir, run = spec.run_dir, RunDir(spec.run_dir)
    busy = run.holder()
    if busy is not None:
        spec.state = "busy"
        spec.message = f"'{run_dir}' is being trained by {busy}; run the sweep again when it has finished"
        return
    if not run.has_checkpoint():
        spec.state = "start"
        return
    try:
        saved = run.config()  # with the fields added since it was written at their (old-behaviour) defaults
    except (OSError, ValueError):
        saved = None
    if saved is not None:
        ours, theirs = flatten(spec.config), flatten(saved)
        differ = sorted(k for k in (set(ours) | set(theirs)) - BOOKKEEPING_FIELDS if ours.get(k) != theirs.get(k))
        if differ:
            spec.state = "conflict"
            spec.message = (f"'{run_dir}' holds a run with a different config ({', '.join(differ[:4])}); "
                            "pass another --out or delete that directory")
            return
    changed = _backbone_change(spec)
    if changed:
        spec.state = "conflict"
        spec.message = (f"'{run_dir}' was trained with another PreND backbone ({changed}); "
                        "pass another --out or delete that directory")
        return
    if run.finished_steps() >= spec.total_steps:
        spec.state = "finished"
    else:
        spec.state = "resume"


def _backbone_change(spec: RunSpec) -> str | None:
    """For a run that reads a backbone (PreND), 'sha256 <recorded> != <current>' when its weights file has changed.

    The config names the backbone (e.g. ``compact``), not its weights; the run's ``run_info.json`` records
    their sha256, so a sweep re-run after the shipped backbone is replaced does not mix the two.
    """
    intrinsic = config_from_dict(spec.config).intrinsic
    if not resolve_method(intrinsic.method).reads("backbone", intrinsic):
        return None
    recorded = RunDir(spec.run_dir).backbone()
    if recorded is None:
        return None  # a run from before run_info.json: nothing to compare
    weights = backbone_weights_file(intrinsic)
    current = None
    if weights is not None and weights.is_file():
        stat = weights.stat()
        current = _sha256_of(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    if recorded.sha256 == current:
        return None
    return f"sha256 {str(recorded.sha256)[:12]} != {str(current)[:12]}"


@functools.lru_cache(maxsize=8)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a weights file, computed once per (path, size, mtime): every PreND run of a sweep shares it."""
    return sha256_file(path)


# ---------------------------------------------------------------------------------------- execution
def _task(spec: RunSpec, threads: int, cwd: str, pythonpath: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """The arguments of :func:`execute_run` for ``spec``."""
    return (spec.command_args(), str(spec.run_dir), spec.total_steps, threads, cwd,
            spec.fields if spec.state == "start" else None, pythonpath)




def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def run_sweep(cfg: SweepConfig, train_args: list[str], echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Plan and run a sweep; returns one result per run.

    A result's ``state`` is finished, skipped, failed, conflict, busy, or interrupted (stopped by a signal to the
    sweep, named in ``signal``; the same command resumes it).
    """
    specs = plan(cfg, train_args)
    todo = [s for s in specs if s.state in ("start", "resume")]
    shares = threads_of(cfg, specs)
    workers, threads = shares.workers, shares.threads
    counts = {state: sum(s.state == state for s in specs)
              for state in ("finished", "resume", "start", "conflict", "busy")}
    where = f"{workers} concurrent x {threads} threads" + (" (each times its torch threads at start-up)"
                                                           if shares.torch_threads == 0 else "") \
        if cfg.backend == "local" else f"ray at {cfg.ray_address or 'a local instance'}, {threads} CPUs per run"
    echo(f"sweep {cfg.out}: {len(specs)} runs: {counts['finished']} finished (skipped), {counts['resume']} to resume, "
         f"{counts['start']} to start" + (f", {counts['conflict']} in conflict" if counts["conflict"] else "")
         + (f", {counts['busy']} busy (being trained by another process)" if counts["busy"] else "")
         + f"; {cfg.backend} backend, {where}")
    out = Path(cfg.out).resolve()
    if cfg.dry_run:
        for s in specs:
            echo(f"  [{s.state}] {s.name}: prend train {shlex.join(s.command_args())}" if s.state in ("start", "resume")
                 else f"  [{s.state}] {s.name}" + (f": {s.message}" if s.message else ""))
            if s.state == "start":
                echo(f"      {RunDir(s.run_dir).sweep_config_path.name}: {json.dumps(s.fields)}")
        return [{"name": s.name, "state": s.state} for s in specs]
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for s in specs:
        if s.state == "finished":
            results[s.name] = {"state": "skipped"}
        elif s.state in ("conflict", "busy"):
            results[s.name] = {"state": s.state, "error": s.message}
            echo(f"  {s.state.upper()} {s.name}: {s.message}")
    _write_manifest(out, cfg, train_args, specs, results)
    progress = {"done": 0}
    # Runs (and their evaluations) find each plug-in where this process found it, not in their working directory.
    pythonpath = child_pythonpath(plugin_modules(_split(cfg.methods, "methods")))

    def on_done(spec: RunSpec, result: dict[str, Any]) -> None:
        progress["done"] += 1
        results[spec.name] = result
        head = f"  [{progress['done']}/{len(todo)}]"
        if result.get("state") == "finished":
            echo(f"{head} done {spec.name} ({result.get('seconds', 0):.0f} s)")
        elif result.get("state") == "busy":
            echo(f"{head} BUSY {spec.name}: {result['error']}")
        elif result.get("state") == "interrupted":
            echo(f"{head} INTERRUPTED {spec.name} by {result['signal']}"
                 + (f" at step {result['global_step']:,}" if result.get("global_step") else f" ({result['error']})")
                 + "; the same command resumes it")
        else:
            reason = result.get("error") or f"exit code {result.get('returncode')}"
            echo(f"{head} FAILED {spec.name} ({reason}); log: {spec.log}"
                 + (f"\n      last line: {_last_line(spec.log)}" if spec.log.exists() else ""))
        if result.get("state") == "finished" and cfg.eval_episodes > 0:
            result |= eval_in_subprocess(spec.run_dir, cfg.eval_episodes, threads, spec.log, pythonpath)
            echo(f"      {result['eval']} {spec.name} ({cfg.eval_episodes} games; eval.json, log: {spec.log})")
        _write_manifest(out, cfg, train_args, specs, results)

    if todo:
        if cfg.backend == "ray":
            from prend.experiments import ray_backend

            started = ray_backend.connect(cfg.ray_address)
            try:
                cwd = os.getcwd()
                ray_backend.run_ray(todo, threads, cfg.gpus_per_run, on_done, out=out,
                                    task_args=lambda spec: _task(spec, threads, cwd, pythonpath), reclassify=classify,
                                    max_retries=cfg.max_retries, progress_every=cfg.progress_every, echo=echo)
            finally:
                if started:
                    import ray

                    ray.shutdown()
        else:
            run_local([(s, _task(s, threads, os.getcwd(), pythonpath)) for s in todo], workers, on_done,
                      shares.cpu_sets)
    for s in specs:  # finished before this sweep: evaluated if not yet (an interrupted prend eval continues)
        if cfg.eval_episodes > 0 and s.state == "finished" and not eval_complete(s.run_dir, cfg.eval_episodes):
            results[s.name] |= eval_in_subprocess(s.run_dir, cfg.eval_episodes, threads, s.log, pythonpath)
            echo(f"  {results[s.name]['eval']} {s.name} ({cfg.eval_episodes} games; eval.json, log: {s.log})")
            _write_manifest(out, cfg, train_args, specs, results)
    failed = [s for s in specs if results.get(s.name, {}).get("state") in ("failed", "conflict")]
    # a run another process trains (a second sweep over the same directory, a lone prend train) has not failed
    busy = [s for s in specs if results.get(s.name, {}).get("state") == "busy"]
    interrupted = [s.name for s in specs if results.get(s.name, {}).get("state") == "interrupted"]
    echo(f"sweep {cfg.out}: {sum(r.get('state') in ('finished', 'skipped') for r in results.values())} of "
         f"{len(specs)} runs finished" + (f", {len(failed)} failed" if failed else "")
         + (f", {len(busy)} being trained by another process" if busy else "") + (":" if failed or busy else ""))
    for s in failed:
        echo(f"  {s.name}: " + (s.message if s.state == "conflict" else f"log {s.log}"))
    for s in busy:
        echo(f"  busy {s.name}: {results[s.name]['error']}")
    for s in specs:
        for lost in results.get(s.name, {}).get("retries", []):
            echo(f"  retried {s.name}: lost {lost['node']} ({lost['error']}) at step {lost['at_step']:,}, then "
                 f"{lost.get('then', 'not retried')}" + (f"; finished on {results[s.name]['node']}"
                                                         if results[s.name].get("node") else ""))
    if interrupted:
        echo(f"  interrupted: {', '.join(interrupted)}; run the same command again to resume")
    echo(f"report: prend report {cfg.out}")
    return [{"name": s.name, "run_dir": str(s.run_dir), "log": str(s.log), **results.get(s.name, {})} for s in specs]


def _write_manifest(out: Path, cfg: SweepConfig, train_args: list[str], specs: list[RunSpec],
                    results: dict[str, dict[str, Any]]) -> None:
    manifest = {
        "sweep": config_to_dict(cfg),
        "train_args": train_args,
        "runs": [{"name": s.name, "run_dir": str(s.run_dir), "log": str(s.log), "planned": s.state,
                  "command": ["prend", "train", *s.command_args()],
                  **{k: v for k, v in results.get(s.name, {}).items() if k != "command"}} for s in specs],
    }
    write_sweep_manifest(out, manifest)


# ---------------------------------------------------------------------------------------------- file
def load_sweep_file(path: str | Path) -> tuple[SweepConfig, list[str]]:
    """Read a TOML/JSON sweep file into a config and the flags every run gets.

    The file holds :class:`SweepConfig` fields, ``grid`` as a table of value lists, and ``train`` as a list
    of ``prend train`` flags or a table of config fields.

    Example file (TOML)::

        methods = ["rnd", "rnd-lr", "prend"]
        games = ["Boxing", "Riverraid"]
        seeds = [1, 2]
        out = "sweeps/paper"
        [grid]
        predictor-lr-scale = [0.01, 0.1]
        [train]
        num-envs = 8
        total-steps = 300000
    """
    path = Path(path)
    data = {k.replace("-", "_"): v for k, v in read_config_file(path, "sweep file").items()}
    names = {f.name for f in dataclasses.fields(SweepConfig)}
    unknown = sorted(set(data) - names - {"train"})
    if unknown:
        raise PrendError(f"unknown key(s) in sweep file '{path}': {', '.join(unknown)}",
                         f"valid keys: {', '.join(sorted(names | {'train'}))}")
    train = data.pop("train", [])
    if isinstance(train, dict):
        train_args = []
        for key, value in train.items():
            flag = flag_name(key)
            if isinstance(value, bool):
                train_args.append(flag if value else "--no-" + flag[2:])
            else:
                train_args += [flag, str(value)]
    elif isinstance(train, list):
        train_args = [str(a) for a in train]
    else:
        raise PrendError(f"'train' in sweep file '{path}' must be a list of flags or a table of fields")
    grid = data.pop("grid", {})
    if isinstance(grid, dict):
        data["grid"] = tuple(f"{k}={','.join(str(v) for v in (vs if isinstance(vs, list) else [vs]))}"
                             for k, vs in grid.items())
    else:
        data["grid"] = tuple(grid)
    for key in ("methods", "games", "seeds"):
        if isinstance(data.get(key), list):
            data[key] = ",".join(str(v) for v in data[key])
    if data.get("out") is not None:
        data["out"] = Path(data["out"])  # relative to the working directory, like --out
    return SweepConfig(**data), train_args
