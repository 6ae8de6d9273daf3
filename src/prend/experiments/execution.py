"""Running one run of a sweep: a ``prend train`` process, its log and its ``sweep_status.json``.

Shared by the sweep's backends: a local pool thread or a Ray task calls :func:`execute_run`.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prend.rundir import RunDir


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
        try:
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
                                        cwd=cwd if cwd and Path(cwd).is_dir() else None,
                                        preexec_fn=_die_with_parent).returncode
        except OSError as err:
            log.write(f"could not start prend train: {err}\n")
            returncode = 127
    if returncode != 0 and (held := run.holder()) is not None:  # it lost the race for the lock, see above
        return busy_result(run_dir, held)
    status = {"state": "finished" if returncode == 0 else "failed", "returncode": returncode,
              "total_steps": total_steps, "global_step": total_steps if returncode == 0 else 0,
              "started": started, "seconds": round(time.time() - started, 1), **where, "command": command}
    run.write_sweep_status(status)
    return status


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: PR_SET_PDEATHSIG (1) makes the kernel send it SIGTERM when
    # the parent dies; prend train checkpoints and exits on SIGTERM. Linux only; elsewhere a no-op.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def busy_result(run_dir: str, held: str) -> dict[str, Any]:
    """The result of a run another process holds: nothing of it was touched."""
    return {"state": "busy", "returncode": None,
            "error": f"'{run_dir}' is being trained by {held}; run the sweep again when it has finished"}
