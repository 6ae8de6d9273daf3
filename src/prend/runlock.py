"""Owning a run directory: one process at a time, by an ``flock`` that dies with its holder.

``prend train`` takes :class:`RunLock` on ``RUN_DIR/.lock`` before it touches anything else in the
directory and holds it until it exits. The lock is an ``flock`` on that file, so the kernel drops it when
the process dies however it dies (``kill -9``, power loss of a client): a lock file left behind by a dead
process is free and the next start takes it over. While held, the file names its holder (pid, host,
time), which a second process quotes when it refuses; on a clean exit it is emptied. ``prend eval`` takes
its own lock (:data:`EVAL_LOCK`), so a run can be evaluated while it trains, and a sweep holds
:data:`LAUNCH_LOCK` while it starts and waits on a run's ``prend train``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prend.errors import PrendError

__all__ = ["EVAL_LOCK", "LAUNCH_LOCK", "LOCK", "RunLock", "describe_holder", "holder"]

LOCK = ".lock"
"""Held by the ``prend train`` that owns a run directory."""
EVAL_LOCK = ".eval.lock"
"""Held by the ``prend eval`` that writes a run's evaluation files; training's :data:`LOCK` is left alone, so a run
can be evaluated while it trains."""
LAUNCH_LOCK = ".launch.lock"
"""Held by the sweep process that starts a run's ``prend train`` and waits on it. Two sweeps sharing a directory
can plan the same free run at the same instant, and ``prend train`` takes :data:`LOCK` only seconds after it
starts (once torch is imported): this lock lets one of them start it, before either writes to the run."""

_ATTEMPTS = 5


class RunLock:
    """An exclusive lock on a run directory, held from :meth:`acquire` until :meth:`release`.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with RunLock(d):
        ...     holder(d) is not None
        True
        >>> holder(d) is None
        True
    """

    def __init__(self, run_dir: Path, name: str = LOCK):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / name
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`PrendError` naming the process that holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise PrendError(f"cannot create the lock file '{self.path}' ({err.strerror or err})",
                             "pass an --out in a writable place") from None
        for attempt in range(_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if attempt + 1 < _ATTEMPTS:  # a probe of :func:`holder` holds it for a moment only
                    time.sleep(0.05)
        else:
            os.close(fd)
            raise PrendError(f"run directory '{self.run_dir}' is in use by {_describe(_read(self.path))}",
                             "wait for that run to finish (or stop it), or pass another --out") from None
        previous = _read_fd(fd)
        if previous:  # its holder died without releasing: the kernel freed the lock, we take it over
            print(f"note: taking over the lock of {_describe(previous)}, which is no longer running", file=sys.stderr)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).isoformat(timespec="seconds"), "argv": sys.argv[1:]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the lock file (no holder) and drop the lock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(run_dir: Path, name: str = LOCK) -> dict[str, Any] | None:
    """Who holds ``run_dir``'s lock ``name`` right now (``{}`` if unknown), or ``None`` if nobody does.

    Probes with a shared, non-blocking ``flock`` released at once, so it never blocks a starting run
    for longer than the probe itself.
    """
    path = Path(run_dir) / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_fd(fd) or {}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(run_dir: Path, name: str = LOCK) -> str | None:
    """``'pid 123 on host h (since ...)'`` for a locked run directory, ``None`` for a free one."""
    info = holder(run_dir, name)
    return None if info is None else _describe(info)


def _read(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _read_fd(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(info: dict[str, Any]) -> str:
    if not info.get("pid"):
        return "another process"
    text = f"pid {info['pid']} on host {info.get('host', '?')}"
    return text + (f" (since {info['since']})" if info.get("since") else "")
