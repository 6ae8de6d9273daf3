"""Owning a run directory: one process at a time, no leftovers of interrupted writes, no mixed histories.

``prend train`` takes :class:`RunLock` on ``RUN_DIR/.lock`` before it touches anything else in the
directory and holds it until it exits. The lock is an ``flock`` on that file, so the kernel drops it when
the process dies however it dies (``kill -9``, power loss of a client): a lock file left behind by a dead
process is free and the next start takes it over. While held, the file names its holder (pid, host,
time), which a second process quotes when it refuses; on a clean exit it is emptied.

Under the lock, :func:`remove_temp_files` deletes what interrupted atomic writes left (``.checkpoint.pt.*.tmp``
...), and :func:`clear_unfinished_start` removes the files of a start that never reached its first
checkpoint, so a rerun of the same command starts clean instead of appending to them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prend.errors import PrendError

LOCK = ".lock"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
RUN_INFO = "run_info.json"
DIAGNOSTICS = "diagnostics.npz"
TENSORBOARD = "tb"
OWNED_FILES = (CHECKPOINT, METRICS, CONFIG, RUN_INFO, DIAGNOSTICS)
"""Files ``prend train`` writes in a run directory (``tb/`` besides)."""
_ATTEMPTS = 5


def prepare_out_dir(run_dir: Path) -> Path:
    """Create ``run_dir`` (and its parents) or raise a one-line :class:`PrendError` saying why it cannot be.

    Called before any set-up, so a bad ``--out`` fails at once, not after the environments are built.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise PrendError(f"--out '{run_dir}' is an existing file, not a directory", "pass a directory path")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PrendError(f"cannot create run directory '{run_dir}' ({err.strerror or err})",
                         "pass an --out in a writable place") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise PrendError(f"run directory '{run_dir}' is not writable", "pass an --out in a writable place")
    return run_dir


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

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
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


def holder(run_dir: Path) -> dict[str, Any] | None:
    """Who holds ``run_dir``'s lock right now (``{}`` if unknown), or ``None`` if nobody does.

    Probes with a shared, non-blocking ``flock`` released at once, so it never blocks a starting run
    for longer than the probe itself.
    """
    path = Path(run_dir) / LOCK
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


def describe_holder(run_dir: Path) -> str | None:
    """``'pid 123 on host h (since ...)'`` for a locked run directory, ``None`` for a free one."""
    info = holder(run_dir)
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


def remove_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left (``.checkpoint.pt.XXXX.tmp``...); returns them.

    Only names :func:`prend.checkpoint.atomic_write` makes for the files ``prend train`` owns; call it with the
    lock held, so no live write is removed.
    """
    removed = []
    for name in OWNED_FILES:
        for tmp in run_dir.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def clear_unfinished_start(run_dir: Path) -> bool:
    """Remove the files of a start that never wrote a checkpoint; ``True`` if there were any.

    Without a checkpoint nothing can be resumed, so a new start in the directory begins clean rather
    than appending its iterations to the old ``metrics.jsonl``. Call it with the lock held.
    """
    if (run_dir / CHECKPOINT).exists():
        raise ValueError(f"'{run_dir}' holds a checkpoint")
    found = False
    for name in OWNED_FILES:
        path = run_dir / name
        if path.exists():
            path.unlink()
            found = True
    if (run_dir / TENSORBOARD).is_dir():
        shutil.rmtree(run_dir / TENSORBOARD)
        found = True
    return found


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(theirs: dict[str, Any], ours: dict[str, Any],
                       ignored: frozenset[str] = frozenset()) -> list[tuple[str, Any, Any]]:
    """``(dotted field, theirs, ours)`` for every field two nested config dicts disagree on, sorted.

    Example:
        >>> config_differences({"run": {"seed": 1, "out": "a"}}, {"run": {"seed": 2, "out": "b"}},
        ...                    frozenset({"run.out"}))
        [('run.seed', 1, 2)]
    """
    a, b = _flatten(theirs), _flatten(ours)
    return [(k, a.get(k), b.get(k)) for k in sorted((set(a) | set(b)) - ignored) if a.get(k) != b.get(k)]
