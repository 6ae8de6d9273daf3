"""``prend sweep``: methods x games x seeds (x any config field) as ``prend train`` runs, locally or on Ray.

Every run is a ``prend train`` process (``python -m prend.cli train ...``) writing its own run directory
``OUT/<game>-<method>[-<field><value>...]-s<seed>/``, with its stdout and stderr in ``train.log`` there and
its sweep state in ``sweep_status.json``. Running the same sweep again skips finished runs, resumes
unfinished ones from their checkpoint (``prend train --resume``; a larger ``--total-steps`` extends finished
ones) and starts the rest. A failed run is reported with its log and does not stop the others. A run
directory another ``prend train`` holds (its lock, see :mod:`prend.rundir`) is reported busy and left alone.

Backends:

``local`` (default)
    a pool of ``--workers`` concurrent runs (default: one per core), each limited to its share of the cores
    (``--torch-threads``, ``--env-threads`` and ``OMP_NUM_THREADS``).
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
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from prend.clihelp import default_hint
from prend.errors import PrendError

STATUS = "sweep_status.json"
LOG = "train.log"
MANIFEST = "sweep.json"

SWEEP_OWNED_FLAGS = ("--method", "--game", "--seed", "--out", "--resume")
"""Train flags the sweep sets itself for every run."""

CONFLICT_IGNORED = frozenset({"run.total_steps", "run.out", "run.progress", "run.tensorboard", "run.torch_threads",
                              "run.memory_format", "env.env_threads", "run.device", "run.checkpoint_every"})
"""Config fields that may differ between a run directory and the sweep asking for it (budget, bookkeeping)."""


@dataclass
class SweepConfig:
    """A sweep: every combination of methods, games, grid values and seeds, as ``prend train`` runs."""

    out: Annotated[Path | None, tyro.conf.arg(metavar="PATH", help_behavior_hint=default_hint(
        "none; required here or as `out` in the sweep file"))] = None
    """Sweep directory; each run gets a subdirectory."""
    methods: str = "rnd,rnd-lr,prend"
    """Comma-separated methods."""
    games: str = "Boxing,Riverraid"
    """Comma-separated games."""
    seeds: str = "1,2"
    """Comma-separated seeds."""
    grid: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """A config field and its values, e.g. ``--grid predictor-lr-scale=0.01,0.1``; repeat for a product."""
    grid_mode: Literal["product", "each"] = "product"
    """``product``: a run for every combination of the ``--grid`` values; ``each``: one run per ``--grid`` value
    with every other field as given, plus the run with no ``--grid`` value (one factor at a time, an ablation);
    a value that the run's method ignores (``IntrinsicConfig.unused_fields``) is then not run."""
    backend: Literal["local", "ray"] = "local"
    """``local``: a process pool on this machine; ``ray``: tasks on a Ray cluster."""
    ray_address: str | None = None
    """Ray cluster address (``auto``: the cluster this machine belongs to; unset: start a local instance)."""
    workers: int = 0
    """Concurrent runs of the local backend (0: one per core, at most one per run)."""
    threads_per_run: int = 0
    """CPU threads (and, on Ray, reserved CPUs) per run (0: cores / workers)."""
    gpus_per_run: float = 0.0
    """GPUs each Ray task reserves (the ray backend only)."""
    dry_run: bool = False
    """Print what would run and exit."""


@dataclass
class RunSpec:
    """One run of a sweep."""

    name: str
    run_dir: Path
    train_args: list[str]
    """Flags of a fresh ``prend train`` (without the ``train`` word)."""
    total_steps: int
    config: dict[str, Any] = field(repr=False)
    state: str = "start"
    """``start``, ``resume``, ``finished`` (skipped), ``conflict`` (the directory holds another run) or
    ``busy`` (another process is training in it)."""
    message: str = ""

    @property
    def log(self) -> Path:
        """The run's log file."""
        return self.run_dir / LOG

    def command_args(self) -> list[str]:
        """The ``prend train`` flags for this run's state."""
        if self.state == "resume":
            return ["--resume", str(self.run_dir), "--total-steps", str(self.total_steps)]
        return list(self.train_args)


# -------------------------------------------------------------------------------------------- plan
def _split(text: str | list | tuple, what: str) -> list[str]:
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    if not items:
        raise PrendError(f"--{what} is empty", f"pass e.g. --{what} " + {"methods": "rnd,prend", "games": "Boxing",
                                                                         "seeds": "1,2"}.get(what, "a,b"))
    return items


def _flag_name(key: str) -> str:
    """The train flag of a field: ``intrinsic.predictor_lr_scale`` -> ``--predictor-lr-scale``."""
    return "--" + key.split(".")[-1].strip().lstrip("-").replace("_", "-")


def _value_flags(flag: str, value: str) -> list[str]:
    if value.lower() in ("true", "false"):
        return [flag if value.lower() == "true" else "--no-" + flag[2:]]
    return [flag, value]


def parse_grid(entries: tuple[str, ...] | list[str]) -> list[tuple[str, list[str]]]:
    """``["predictor-lr-scale=0.01,0.1"]`` -> ``[("--predictor-lr-scale", ["0.01", "0.1"])]``.

    Example:
        >>> parse_grid(["intrinsic.predictor_lr_scale=0.01,0.1", "norm-adv=true,false"])
        [('--predictor-lr-scale', ['0.01', '0.1']), ('--norm-adv', ['true', 'false'])]
    """
    grid = []
    for entry in entries:
        key, sep, values = entry.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise PrendError(f"bad --grid entry '{entry}'",
                             "write FIELD=V1,V2, e.g. --grid predictor-lr-scale=0.01,0.1")
        flag = _flag_name(key)
        if flag in SWEEP_OWNED_FLAGS:
            raise PrendError(f"--grid cannot vary {flag[2:]}", "use --methods, --games and --seeds")
        grid.append((flag, [v.strip() for v in values.split(",") if v.strip()]))
    return grid


def _has_flag(args: list[str], flag: str) -> bool:
    negated = "--no-" + flag[2:]
    return any(a == flag or a.startswith(flag + "=") or a == negated for a in args)


def _check_game(game: str) -> None:
    from prend.envs.games import resolve_atari_game, unknown_game_error

    if resolve_atari_game(game) is None:
        import gymnasium as gym

        if game not in gym.registry:
            raise unknown_game_error(game)


def default_threads(runs: int, workers: int = 0, threads: int = 0) -> tuple[int, int]:
    """(concurrent runs, threads per run) on this machine's cores.

    Example:
        >>> cores = len(os.sched_getaffinity(0))
        >>> default_threads(runs=1, workers=0, threads=0) == (1, cores)
        True
    """
    cores = len(os.sched_getaffinity(0))
    workers = workers if workers > 0 else max(1, min(cores, runs))
    threads = threads if threads > 0 else max(1, cores // workers)
    return workers, threads


def plan(cfg: SweepConfig, train_args: list[str]) -> list[RunSpec]:
    """Every run of the sweep with its flags and its state on disk; raises :class:`PrendError` on bad input."""
    from prend.config import config_to_dict
    from prend.train import parse_train_args

    if cfg.out is None:
        raise PrendError("prend sweep needs --out", "pass the sweep directory, e.g. --out sweeps/paper")
    for flag in SWEEP_OWNED_FLAGS:
        if _has_flag(train_args, flag):
            raise PrendError(f"{flag} cannot be given to a sweep's runs",
                             "use --methods, --games, --seeds and --out; finished runs are resumed by themselves")
    methods, games = _split(cfg.methods, "methods"), _split(cfg.games, "games")
    seeds = []
    for seed in _split(cfg.seeds, "seeds"):
        if not seed.lstrip("-").isdigit():
            raise PrendError(f"seed '{seed}' is not an integer", "pass e.g. --seeds 1,2")
        seeds.append(int(seed))
    grid = parse_grid(cfg.grid)
    for flag, _ in grid:
        if _has_flag(train_args, flag):
            raise PrendError(f"{flag} is both a --grid field and a train flag", "give it in one place")
    for game in games:
        _check_game(game)
    if cfg.grid_mode == "each":
        combos: list[tuple[tuple[str, str], ...]] = [()] + [((flag, v),) for flag, values in grid for v in values]
    else:
        combos = list(itertools.product(*[[(flag, v) for v in values] for flag, values in grid])) or [()]
    total = len(methods) * len(games) * len(seeds) * len(combos)
    _, threads = default_threads(total, cfg.workers, cfg.threads_per_run)
    defaults = ["--no-progress"]
    for flag in ("--torch-threads", "--env-threads"):
        if not _has_flag(train_args, flag):
            defaults += [flag, str(threads)]
    out = Path(cfg.out).resolve()
    specs = []
    for game, method, combo, seed in itertools.product(games, methods, combos, seeds):
        suffix = "".join(f"-{flag[2:]}{value}" for flag, value in combo)
        name = _safe(f"{game}-{method}{suffix}-s{seed}")
        run_dir = out / name
        grid_flags = [a for flag, value in combo for a in _value_flags(flag, value)]
        args = [*defaults, *train_args, *grid_flags, "--method", method, "--game", game, "--seed", str(seed),
                "--out", str(run_dir)]
        try:
            config, _ = parse_train_args(args, prog="prend train")
        except SystemExit:
            raise PrendError(f"the train flags of run '{name}' do not parse (tyro's message is above)",
                             "fix the flags after the sweep's own; see `prend train --help`") from None
        if cfg.grid_mode == "each" and combo and combo[0][0][2:].replace("-", "_") in config.intrinsic.unused_fields():
            continue  # the same run as the one without this --grid value
        spec = RunSpec(name, run_dir, args, config.run.total_steps, config_to_dict(config))
        classify(spec)
        specs.append(spec)
    return specs


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    from prend.experiments.runs import flatten

    return flatten(config, prefix)


def classify(spec: RunSpec) -> None:
    """Set ``spec.state`` from the run directory: finished, resume, start, conflict or busy.

    The run's config is its checkpoint's (``config.json`` may have been edited); a run directory locked by a
    live ``prend train`` is ``busy`` and left alone.
    """
    from prend.experiments.runs import run_config
    from prend.rundir import describe_holder

    run_dir = spec.run_dir
    busy = describe_holder(run_dir)
    if busy is not None:
        spec.state = "busy"
        spec.message = f"'{run_dir}' is being trained by {busy}; run the sweep again when it has finished"
        return
    if not (run_dir / "checkpoint.pt").exists():
        spec.state = "start"
        return
    try:
        saved = run_config(run_dir)
    except (OSError, ValueError):
        saved = None
    if saved is not None:
        ours, theirs = _flatten(spec.config), _flatten(_with_defaults(saved))
        differ = sorted(k for k in (set(ours) | set(theirs)) - CONFLICT_IGNORED if ours.get(k) != theirs.get(k))
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
    if _finished_steps(run_dir) >= spec.total_steps:
        spec.state = "finished"
    else:
        spec.state = "resume"


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the fields added to prend since it was written filled in with their defaults.

    New fields default to the old behaviour, so a run from before them is the same run; an unparsable
    config (a field since removed) is compared as it is.
    """
    from prend.config import config_from_dict, config_to_dict

    try:
        return config_to_dict(config_from_dict(saved))
    except PrendError:
        return saved


def _backbone_change(spec: RunSpec) -> str | None:
    """For a PreND run, 'sha256 <recorded> != <current>' when its backbone weights file has changed since.

    The config names the backbone (e.g. ``compact``), not its weights; the run's ``run_info.json`` records
    their sha256, so a sweep re-run after the shipped backbone is replaced does not mix the two.
    """
    from prend.config import config_from_dict
    from prend.intrinsic.prend import backbone_weights_file
    from prend.train import RUN_INFO

    if spec.config.get("intrinsic", {}).get("method") != "prend":
        return None
    try:
        recorded = json.loads((spec.run_dir / RUN_INFO).read_text())["started"]["backbone"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a run from before run_info.json: nothing to compare
    weights = backbone_weights_file(config_from_dict(spec.config).intrinsic)
    current = None
    if weights is not None and weights.is_file():
        stat = weights.stat()
        current = _sha256_of(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    if recorded == current:
        return None
    return f"sha256 {str(recorded)[:12]} != {str(current)[:12]}"


@functools.lru_cache(maxsize=8)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a weights file, computed once per (path, size, mtime): every PreND run of a sweep shares it."""
    from prend.checkpoint import sha256_file

    return sha256_file(path)


def _finished_steps(run_dir: Path) -> int:
    """Agent steps a run has completed for sure: from its sweep status, or else from its metrics."""
    try:
        status = json.loads((run_dir / STATUS).read_text())
        if status.get("state") == "finished":
            return int(status.get("global_step", status.get("total_steps", 0)))
        return 0
    except (OSError, ValueError):
        pass
    # A run trained by hand: its metrics reached the budget and a checkpoint was written after them.
    metrics, checkpoint = run_dir / "metrics.jsonl", run_dir / "checkpoint.pt"
    try:
        lines = [line for line in metrics.read_text().splitlines() if line.strip()]
        if lines and checkpoint.stat().st_mtime >= metrics.stat().st_mtime:
            return int(json.loads(lines[-1])["charts/global_step"])
    except (OSError, ValueError, KeyError):
        pass
    return 0


# ---------------------------------------------------------------------------------------- execution
def execute_run(train_args: list[str], run_dir: str, total_steps: int, threads: int,
                cwd: str | None = None) -> dict[str, Any]:
    """Run one ``prend train`` process to completion, logging to ``run_dir/train.log``; never raises.

    This is what a pool worker or a Ray task runs. Returns the run's final status.
    """
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "prend.cli", "train", *train_args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    started = time.time()
    _write_status(path, {"state": "running", "total_steps": total_steps, "started": started,
                         "host": os.uname().nodename, "command": command})
    with (path / LOG).open("a") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} on {os.uname().nodename}: {shlex.join(command)}\n")
        log.flush()
        try:
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
                                        cwd=cwd if cwd and Path(cwd).is_dir() else None).returncode
        except OSError as err:
            log.write(f"could not start prend train: {err}\n")
            returncode = 127
    status = {"state": "finished" if returncode == 0 else "failed", "returncode": returncode,
              "total_steps": total_steps, "global_step": total_steps if returncode == 0 else 0,
              "started": started, "seconds": round(time.time() - started, 1), "host": os.uname().nodename,
              "command": command}
    _write_status(path, status)
    return status


def _write_status(run_dir: Path, status: dict[str, Any]) -> None:
    tmp = run_dir / (STATUS + ".tmp")
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(tmp, run_dir / STATUS)


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


Done = Callable[[RunSpec, dict[str, Any]], None]


def _run_local(specs: list[RunSpec], workers: int, threads: int, on_done: Done) -> None:
    # Threads only wait on child processes, so a thread pool is a process pool here without pickling.
    cwd = os.getcwd()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_run, s.command_args(), str(s.run_dir), s.total_steps, threads, cwd): s
                   for s in specs}
        for future in as_completed(futures):
            on_done(futures[future], future.result())


def _run_ray(specs: list[RunSpec], address: str | None, threads: int, gpus: float, on_done: Done) -> None:
    try:
        import ray
    except ImportError:
        raise PrendError("the ray backend needs Ray installed",
                         "pip install -c constraints.txt 'prend[ray]', or use --backend local") from None
    started = False
    if not ray.is_initialized():
        cores = len(os.sched_getaffinity(0))
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise PrendError(f"cannot connect to Ray at '{address}' ({err})",
                             "start the cluster (`ray start --head`) or pass the right --ray-address") from None
        started = True
    try:
        task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(execute_run)
        cwd = os.getcwd()
        pending = {task.remote(s.command_args(), str(s.run_dir), s.total_steps, threads, cwd): s for s in specs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as err:  # noqa: BLE001 - a lost node or worker must not stop the other runs
                result = {"state": "failed", "returncode": None, "error": f"{type(err).__name__}: {err}"}
            on_done(spec, result)
    finally:
        if started:
            ray.shutdown()


def run_sweep(cfg: SweepConfig, train_args: list[str], echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Plan and run a sweep; returns one result per run (``state``: finished, skipped, failed, conflict, busy)."""
    specs = plan(cfg, train_args)
    todo = [s for s in specs if s.state in ("start", "resume")]
    workers, threads = default_threads(max(1, len(todo)), cfg.workers, cfg.threads_per_run)
    counts = {state: sum(s.state == state for s in specs)
              for state in ("finished", "resume", "start", "conflict", "busy")}
    where = f"{workers} concurrent x {threads} threads" if cfg.backend == "local" else \
        f"ray at {cfg.ray_address or 'a local instance'}, {threads} CPUs per run"
    echo(f"sweep {cfg.out}: {len(specs)} runs: {counts['finished']} finished (skipped), {counts['resume']} to resume, "
         f"{counts['start']} to start" + (f", {counts['conflict']} in conflict" if counts["conflict"] else "")
         + (f", {counts['busy']} busy (being trained by another process)" if counts["busy"] else "")
         + f"; {cfg.backend} backend, {where}")
    out = Path(cfg.out).resolve()
    if cfg.dry_run:
        for s in specs:
            echo(f"  [{s.state}] {s.name}: prend train {shlex.join(s.command_args())}" if s.state in ("start", "resume")
                 else f"  [{s.state}] {s.name}" + (f": {s.message}" if s.message else ""))
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

    def on_done(spec: RunSpec, result: dict[str, Any]) -> None:
        progress["done"] += 1
        results[spec.name] = result
        head = f"  [{progress['done']}/{len(todo)}]"
        if result.get("state") == "finished":
            echo(f"{head} done {spec.name} ({result.get('seconds', 0):.0f} s)")
        else:
            reason = result.get("error") or f"exit code {result.get('returncode')}"
            echo(f"{head} FAILED {spec.name} ({reason}); log: {spec.log}"
                 + (f"\n      last line: {_last_line(spec.log)}" if spec.log.exists() else ""))
        _write_manifest(out, cfg, train_args, specs, results)

    if todo:
        if cfg.backend == "ray":
            _run_ray(todo, cfg.ray_address, threads, cfg.gpus_per_run, on_done)
        else:
            _run_local(todo, workers, threads, on_done)
    failed = [s for s in specs if results.get(s.name, {}).get("state") in ("failed", "conflict", "busy")]
    echo(f"sweep {cfg.out}: {sum(r.get('state') in ('finished', 'skipped') for r in results.values())} of "
         f"{len(specs)} runs finished" + (f", {len(failed)} failed:" if failed else ""))
    for s in failed:
        echo(f"  {s.name}: " + (s.message if s.state in ("conflict", "busy") else f"log {s.log}"))
    echo(f"report: prend report {cfg.out}")
    return [{"name": s.name, "run_dir": str(s.run_dir), "log": str(s.log), **results.get(s.name, {})} for s in specs]


def _write_manifest(out: Path, cfg: SweepConfig, train_args: list[str], specs: list[RunSpec],
                    results: dict[str, dict[str, Any]]) -> None:
    manifest = {
        "sweep": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
        "train_args": train_args,
        "runs": [{"name": s.name, "run_dir": str(s.run_dir), "log": str(s.log), "planned": s.state,
                  "command": ["prend", "train", *s.command_args()],
                  **{k: v for k, v in results.get(s.name, {}).items() if k != "command"}} for s in specs],
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / MANIFEST)


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
    if not path.is_file():
        raise PrendError(f"sweep file '{path}' does not exist", "pass the path of a .toml or .json file")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text())
        else:
            data = json.loads(path.read_text())
    except ValueError as err:
        raise PrendError(f"sweep file '{path}' cannot be parsed ({err})", "fix its syntax") from None
    if not isinstance(data, dict):
        raise PrendError(f"sweep file '{path}' must hold a table")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    names = {f.name for f in dataclasses.fields(SweepConfig)}
    unknown = sorted(set(data) - names - {"train"})
    if unknown:
        raise PrendError(f"unknown key(s) in sweep file '{path}': {', '.join(unknown)}",
                         f"valid keys: {', '.join(sorted(names | {'train'}))}")
    train = data.pop("train", [])
    if isinstance(train, dict):
        train_args = []
        for key, value in train.items():
            flag = _flag_name(key)
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
