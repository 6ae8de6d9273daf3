"""Running one run of a sweep: a ``prend train`` process, its log and its ``sweep_status.json``.

Shared by the sweep's backends: a Ray task or a thread of the local backend (:func:`run_local`) calls
:func:`execute_run`. The local backend stops its runs with :func:`stop_runs` when the sweep gets SIGINT or
SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from prend.rundir import RunDir
from prend.signals import StopFlag

INTERRUPTED_EXITS = {128 + signal.SIGINT: "SIGINT", 128 + signal.SIGTERM: "SIGTERM"}
"""``prend train``'s exit codes when a signal stopped it (with a checkpoint, unless it came during set-up)."""

_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()
_stopping: list[int] = []  # the signal stop_runs forwarded, while this process's sweep is stopping


def execute_run(train_args: list[str], run_dir: str, total_steps: int, threads: int, cwd: str | None = None,
                fields: dict[str, Any] | None = None, node: str | None = None) -> dict[str, Any]:
    """Run one ``prend train`` process to completion, logging to ``run_dir/train.log``; never raises.

    This is what a pool worker or a Ray task runs. ``fields`` (a fresh start's) are written to the run's
    ``sweep_config.json`` first, where its ``--config`` reads them. ``node`` names where it runs in the
    status (default: the host name). The training process gets SIGTERM when this process dies (Linux), so a
    killed sweep or a task lost with its worker leaves no orphan training on, and holding the lock of, its run
    directory. Returns the run's final status.
    """
    run = RunDir(run_dir)
    if _stopping:  # the sweep is stopping: a run whose turn came just now does not start
        return not_started(_stopping[0])
    # Another sweep (or a hand-started run) may have taken the run since this one was planned: leave its files
    # alone, and say busy rather than failed.
    if (held := run.holder()) is not None:
        return busy_result(run_dir, held)
    run.path.mkdir(parents=True, exist_ok=True)
    if fields is not None:
        run.write_sweep_config(fields)
    command = [sys.executable, "-m", "prend.cli", "train", *train_args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    started = time.time()
    where = {"host": os.uname().nodename, **({"node": node} if node else {})}
    run.write_sweep_status({"state": "running", "total_steps": total_steps, "started": started, **where,
                            "command": command})
    with run.train_log_path.open("a") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} on {os.uname().nodename}: {shlex.join(command)}\n")
        log.flush()
        returncode = _train(command, log, env, cwd)
    if returncode != 0 and (held := run.holder()) is not None:  # it lost the race for the lock, see above
        return busy_result(run_dir, held)
    state = "finished" if returncode == 0 else "interrupted" if returncode in INTERRUPTED_EXITS else "failed"
    status = {"state": state, "returncode": returncode, "total_steps": total_steps,
              "global_step": total_steps if state == "finished" else _last_step(run) if state == "interrupted" else 0,
              "started": started, "seconds": round(time.time() - started, 1), **where, "command": command}
    if state == "interrupted":
        status["signal"] = INTERRUPTED_EXITS[returncode]
    run.write_sweep_status(status)
    return status


def _train(command: list[str], log: Any, env: dict[str, str], cwd: str | None) -> int:
    """Run the training process to its end; its exit code (127 if it could not start).

    The process gets its own process group, so a Ctrl-C in the sweep's terminal reaches the sweep alone, which
    passes it on once (:func:`stop_runs`): a second SIGINT would stop the run without its checkpoint.
    """
    try:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 cwd=cwd if cwd and Path(cwd).is_dir() else None,
                                 preexec_fn=_die_with_parent, process_group=0)
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


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: PR_SET_PDEATHSIG (1) makes the kernel send it SIGTERM when
    # the parent dies; prend train checkpoints and exits on SIGTERM. Linux only; elsewhere a no-op.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def busy_result(run_dir: str, held: str) -> dict[str, Any]:
    """The result of a run another process holds: nothing of it was touched."""
    return {"state": "busy", "returncode": None,
            "error": f"'{run_dir}' is being trained by {held}; run the sweep again when it has finished"}


STOP_NOTICE = ("stopping the sweep: each running run checkpoints after its iteration, and no other starts "
               "(a second signal stops at once)...")


def run_local(tasks: list[tuple[Any, tuple[Any, ...]]], workers: int,
              on_done: Callable[[Any, dict[str, Any]], None]) -> int | None:
    """Run each ``(key, execute_run arguments)`` task, ``workers`` at a time; ``on_done(key, result)`` as each ends.

    Returns the signal that stopped it, or ``None``. SIGINT or SIGTERM to this process is passed on once to the
    running runs, which checkpoint and stop (recorded as interrupted); tasks not yet started are not started,
    and ``on_done`` gets :func:`not_started` for them.
    A process killed outright takes its runs with it (each checkpoints on the SIGTERM the kernel sends).
    """
    # Threads only wait on child processes, so a thread pool is a process pool here without pickling.
    reset_stop()
    with StopFlag(STOP_NOTICE) as stop, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_run, *args): key for key, args in tasks}
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
