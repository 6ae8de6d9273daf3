"""Running one run of a sweep: a ``prend train`` process, its log and its ``sweep_status.json``.

Shared by the sweep's backends: a Ray task or a thread of the local backend (:func:`run_local`) calls
:func:`execute_run`. The local backend stops its runs with :func:`stop_runs` when the sweep gets SIGINT or
SIGTERM.

A run imports what the sweep imported: it starts as ``python -P -m prend.cli train`` (:func:`prend_command`),
so its working directory (the sweep's) is not first on its ``sys.path`` (``python -m`` alone would put it
there, where a folder named like a plug-in, such as the plug-in's own source checkout, shadows the installed
package), and the folders the sweep imported its plug-ins from are added to its ``PYTHONPATH`` where a run's
Python would not look (:func:`child_pythonpath`).

How many runs at once and threads each (:func:`thread_plan`) is decided here too: a run given several cores
makes ``prend train``'s own timed choice of threads at start-up, on its own cores.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from prend.errors import PrendError
from prend.rundir import LAUNCH_LOCK, RunDir, RunLock, describe_holder
from prend.signals import StopFlag

INTERRUPTED_EXITS = {128 + signal.SIGINT: "SIGINT", 128 + signal.SIGTERM: "SIGTERM"}
"""``prend train``'s exit codes when a signal stopped it (with a checkpoint, unless it came during set-up)."""

_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()
_stopping: list[int] = []  # the signal stop_runs forwarded, while this process's sweep is stopping


@dataclass(frozen=True)
class ThreadPlan:
    """How a sweep's runs share this machine's cores (:func:`thread_plan`)."""

    workers: int
    """Runs at once (the local backend's pool)."""
    threads: int
    """Cores per run: its ``OMP_NUM_THREADS``, its emulator threads (``env.env_threads``), its Ray CPUs."""
    torch_threads: int
    """The runs' ``run.torch_threads``: 0 lets each time 1 thread against its cores at start-up and keep the
    faster (``prend train``'s own choice, :func:`prend.agent.perf.choose_perf`)."""
    cpu_sets: tuple[frozenset[int], ...] | None = None
    """The cores each of the :attr:`workers` concurrent runs is held to (``None``: all of this process's)."""


def thread_plan(runs: int, workers: int = 0, threads: int = 0, cores: list[int] | None = None,
                pin: bool = True) -> ThreadPlan:
    """How ``runs`` runs share ``cores`` (default: those this process may use); ``workers``/``threads`` 0: choose.

    Threads given (``--threads-per-run``) are kept as given. Otherwise each run gets ``cores // workers``
    cores, and one with more than one times its torch threads at start-up as ``prend train`` alone does
    (``torch_threads`` 0): on a CPU shared with other jobs one thread can be several times faster than two,
    which a fixed split cannot know. Its candidates are the cores it sees, so with several runs at once
    (``pin``: the local backend) each is held to its own :attr:`ThreadPlan.cpu_sets`; where runs cannot be held
    to cores (Ray's tasks, ``pin`` False) several runs at once keep the fixed split.

    Example:
        >>> thread_plan(runs=4, workers=1, cores=[0, 1])  # alone on 2 cores: times 1 vs 2 threads
        ThreadPlan(workers=1, threads=2, torch_threads=0, cpu_sets=None)
        >>> thread_plan(runs=4, cores=[0, 1])  # a core each: nothing to choose
        ThreadPlan(workers=2, threads=1, torch_threads=1, cpu_sets=None)
        >>> thread_plan(runs=2, cores=[0, 1, 2, 3]).cpu_sets
        (frozenset({0, 1}), frozenset({2, 3}))
    """
    cores = sorted(os.sched_getaffinity(0)) if cores is None else list(cores)
    workers = workers if workers > 0 else max(1, min(len(cores), runs))
    if threads > 0:
        return ThreadPlan(workers, threads, threads)
    share = max(1, len(cores) // workers)
    if share == 1:
        return ThreadPlan(workers, 1, 1)
    if workers == 1:
        return ThreadPlan(workers, share, 0)
    if not pin:
        return ThreadPlan(workers, share, share)
    return ThreadPlan(workers, share, 0, tuple(frozenset(cores[i * share:(i + 1) * share]) for i in range(workers)))


def prend_command(*args: str) -> list[str]:
    """``prend ARGS`` as a child process of this Python, without the working directory on its ``sys.path``.

    ``-P`` (Python 3.11) keeps ``python -m`` from putting the working directory first on ``sys.path``, as the
    ``prend`` console script does not either: a folder there named like an installed plug-in would shadow it.

    Example:
        >>> prend_command("train", "--resume", "runs/a")[1:]
        ['-P', '-m', 'prend.cli', 'train', '--resume', 'runs/a']
    """
    return [sys.executable, "-P", "-m", "prend.cli", *args]


def child_pythonpath(modules: Iterable[str]) -> tuple[str, ...]:
    """The folders a run's ``PYTHONPATH`` needs so that it imports each of ``modules`` from where this process did.

    Each imported module's folder on ``sys.path`` (the one holding its file or package), where a child started
    by :func:`prend_command` would not look: this process's own first entry (``python -m prend.cli sweep`` in
    the plug-in's folder) or a folder added at run time. Folders it looks in anyway (``PYTHONPATH``,
    site-packages, ``.pth`` entries) are left out, so the child's order there stays its own.
    """
    roots = [root for name in modules if (root := _import_root(name)) is not None]
    if not roots:
        return ()
    default = _child_sys_path(sys.executable, os.environ.get("PYTHONPATH", ""))
    return tuple(dict.fromkeys(root for root in roots if root not in default))


def _import_root(name: str) -> str | None:
    """The ``sys.path`` folder this process imported top-level module ``name`` from (``None``: not imported)."""
    module = sys.modules.get(name.partition(".")[0])
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return None
    if spec.origin and spec.has_location:  # a module file, or a package's __init__.py
        where = Path(spec.origin).resolve().parent
        return str(where.parent if spec.submodule_search_locations is not None else where)
    folders = list(spec.submodule_search_locations or [])  # a namespace package: its (first) folder
    return str(Path(folders[0]).resolve().parent) if folders else None


@functools.lru_cache(maxsize=4)
def _child_sys_path(python: str, pythonpath: str) -> frozenset[str]:
    """The resolved ``sys.path`` of ``python -P`` in this environment (asked once per ``PYTHONPATH``)."""
    try:
        out = subprocess.run([python, "-P", "-c", "import json, sys; print(json.dumps(sys.path))"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return frozenset(str(Path(p).resolve()) for p in json.loads(out) if p)
    except (OSError, subprocess.SubprocessError, ValueError):
        return frozenset()  # then every plug-in folder is added: a duplicate path entry is harmless


def execute_run(train_args: list[str], run_dir: str, total_steps: int, threads: int, cwd: str | None = None,
                fields: dict[str, Any] | None = None, pythonpath: tuple[str, ...] | list[str] = (),
                node: str | None = None, cpus: frozenset[int] | None = None) -> dict[str, Any]:
    """Run one ``prend train`` process to completion, logging to ``run_dir/train.log``; never raises.

    This is what a pool worker or a Ray task runs. ``fields`` (a fresh start's) are written to the run's
    ``sweep_config.json`` first, where its ``--config`` reads them. ``pythonpath`` (:func:`child_pythonpath`)
    goes before the inherited ``PYTHONPATH``. ``node`` names where it runs in the status (default: the host
    name); ``cpus`` holds it to those cores (:attr:`ThreadPlan.cpu_sets`). The training process gets SIGTERM
    when this process dies (Linux), so a killed sweep or a task lost with its worker leaves no orphan training
    on, and holding the lock of, its run directory. Returns the run's final status.
    """
    run = RunDir(run_dir)
    if _stopping:  # the sweep is stopping: a run whose turn came just now does not start
        return not_started(_stopping[0])
    # Another sweep (or a hand-started run) may have taken the run since this one was planned: leave its files
    # alone, and say busy rather than failed.
    if (held := run.holder()) is not None:
        return busy_result(run_dir, held)
    run.path.mkdir(parents=True, exist_ok=True)
    try:  # two sweeps that planned it at the same instant: the first to take the launch lock starts it
        launch = RunLock(run.path, LAUNCH_LOCK).acquire()
    except PrendError:
        return busy_result(run_dir, describe_holder(run.path, LAUNCH_LOCK) or "another sweep")
    try:
        if fields is not None:
            run.write_sweep_config(fields)
        command = prend_command("train", *train_args)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "TQDM_DISABLE": "1"}
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
        started = time.time()
        where = {"host": os.uname().nodename, **({"node": node} if node else {})}
        run.write_sweep_status({"state": "running", "total_steps": total_steps, "started": started, **where,
                                "command": command})
        with run.train_log_path.open("a") as log:
            when = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {when} on {os.uname().nodename}: {shlex.join(command)}\n")
            log.flush()
            returncode = _train(command, log, env, cwd, cpus)
        # It lost the race for the lock to a hand-started prend train (a second sweep is kept out by the launch lock)
        if returncode != 0 and (held := describe_holder(run.path)) is not None:
            return busy_result(run_dir, held)
        state = "finished" if returncode == 0 else "interrupted" if returncode in INTERRUPTED_EXITS else "failed"
        step = total_steps if state == "finished" else _last_step(run) if state == "interrupted" else 0
        status = {"state": state, "returncode": returncode, "total_steps": total_steps, "global_step": step,
                  "started": started, "seconds": round(time.time() - started, 1), **where, "command": command}
        if state == "interrupted":
            status["signal"] = INTERRUPTED_EXITS[returncode]
        run.write_sweep_status(status)
        return status
    finally:
        launch.release()


def _train(command: list[str], log: Any, env: dict[str, str], cwd: str | None,
           cpus: frozenset[int] | None = None) -> int:
    """Run the training process to its end, on ``cpus`` if given; its exit code (127 if it could not start).

    The process gets its own process group, so a Ctrl-C in the sweep's terminal reaches the sweep alone, which
    passes it on once (:func:`stop_runs`): a second SIGINT would stop the run without its checkpoint.
    """
    try:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 cwd=cwd if cwd and Path(cwd).is_dir() else None,
                                 preexec_fn=functools.partial(_child_setup, cpus), process_group=0)
    except OSError as err:
        log.write(f"could not start prend train: {err}\n")
        return 127
    with _children_lock:
        _children[child.pid] = child
        late = list(_stopping)  # stop_runs ran between this run's check and its start
    if late:
        child.send_signal(late[0])
    try:
        return child.wait()
    finally:
        with _children_lock:
            _children.pop(child.pid, None)


def stop_runs(signum: int) -> int:
    """Send ``signum`` once to every training process this process runs, and start no more; returns how many.

    Each stops after its current iteration with a checkpoint and its :func:`execute_run` records the run as
    ``interrupted`` (the next sweep resumes it). :func:`reset_stop` lets a later sweep in this process run.
    """
    with _children_lock:
        if not _stopping:
            _stopping.append(signum)
        children = list(_children.values())
    for child in children:
        try:
            child.send_signal(signum)
        except ProcessLookupError:  # it has just ended
            pass
    return len(children)


def reset_stop() -> None:
    """Allow runs to start again (a new sweep in this process)."""
    with _children_lock:
        _stopping.clear()


def not_started(signum: int) -> dict[str, Any]:
    """The result of a run whose turn came after the sweep got ``signum``: interrupted before it started."""
    return {"state": "interrupted", "returncode": None, "signal": signal.Signals(signum).name,
            "error": "not started: the sweep was stopping"}


def _last_step(run: RunDir) -> int:
    records = run.metrics()
    return int(records[-1].get("charts/global_step", 0)) if records else 0


def _child_setup(cpus: frozenset[int] | None) -> None:
    # Runs in the child between fork and exec: PR_SET_PDEATHSIG (1) makes the kernel send it SIGTERM when
    # the parent dies; prend train checkpoints and exits on SIGTERM. Linux only; elsewhere a no-op. Cores set
    # here hold every thread the run will start, and are what its start-up timing of threads sees.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def busy_result(run_dir: str, held: str) -> dict[str, Any]:
    """The result of a run another process holds: nothing of it was touched."""
    return {"state": "busy", "returncode": None,
            "error": f"'{run_dir}' is being trained by {held}; run the sweep again when it has finished"}


STOP_NOTICE = ("stopping the sweep: each running run checkpoints after its iteration, and no other starts "
               "(a second signal stops at once)...")


def run_local(tasks: list[tuple[Any, tuple[Any, ...]]], workers: int,
              on_done: Callable[[Any, dict[str, Any]], None],
              cpu_sets: tuple[frozenset[int], ...] | None = None) -> int | None:
    """Run each ``(key, execute_run arguments)`` task, ``workers`` at a time; ``on_done(key, result)`` as each ends.

    With ``cpu_sets`` (one per worker, :attr:`ThreadPlan.cpu_sets`) each run is held to a set no other run
    holds while it runs. Returns the signal that stopped it, or ``None``. SIGINT or SIGTERM to this process is
    passed on once to the running runs, which checkpoint and stop (recorded as interrupted); tasks not yet
    started are not started, and ``on_done`` gets :func:`not_started` for them.
    A process killed outright takes its runs with it (each checkpoints on the SIGTERM the kernel sends).
    """
    # Threads only wait on child processes, so a thread pool is a process pool here without pickling.
    reset_stop()
    free: SimpleQueue[frozenset[int] | None] = SimpleQueue()
    for cpus in cpu_sets or [None] * workers:  # at most `workers` runs at once: a set is always free
        free.put(cpus)

    def run(args: tuple[Any, ...]) -> dict[str, Any]:
        cpus = free.get()
        try:
            return execute_run(*args, cpus=cpus)
        finally:
            free.put(cpus)

    with StopFlag(STOP_NOTICE) as stop, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run, args): key for key, args in tasks}
        pending, stopping = set(futures), False
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(futures[future], not_started(stop.raised) if future.cancelled() else future.result())
            if stop.raised is not None and not stopping:
                stopping = True
                for future in pending:
                    future.cancel()  # those not started yet
                stop_runs(stop.raised)
    return stop.raised
