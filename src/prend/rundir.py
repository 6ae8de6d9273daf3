"""A run directory's layout, readers and writers; owning it: one process at a time, no leftovers, no mixed histories.

:class:`RunDir` is the one place that knows what a run directory holds: the file names, the metric keys of
``metrics.jsonl`` readers use (re-exported from :mod:`prend.metrics`), typed readers (the resolved config,
the metrics records, :class:`Diagnostics`, the finished steps, ``run_info.json`` and the backbone it
records, a sweep's status) and the writers ``prend train`` and ``prend sweep`` use. ``prend sweep``,
``prend report`` and ``prend diagnose`` read runs only through it. Files written by earlier versions of prend
(no ``run_info.json``, configs without the fields added since) read as before.

``prend train`` takes :class:`~prend.runlock.RunLock` on ``RUN_DIR/.lock`` before it touches anything else in
the directory and holds it until it exits (:mod:`prend.runlock`; its names are re-exported here). Under the
lock, :func:`remove_temp_files` deletes what interrupted atomic writes left (``.checkpoint.pt.*.tmp`` ...), and
:func:`clear_unfinished_start` removes the files of a start that never reached its first checkpoint, so a rerun
of the same command starts clean instead of appending to them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from prend.checkpoint import atomic_torch_save, atomic_write, read_checkpoint_config
from prend.config import config_from_dict, config_to_dict
from prend.errors import PrendError
from prend.metrics import (
    FRAMES,
    GLOBAL_STEP,
    ITERATION,
    OFFSET_SHARE,
    RAW_MEAN,
    RAW_STD,
    SCORE,
    STEPS_PER_SECOND,
    TARGET_SPREAD,
    read_metrics,
)
from prend.runlock import EVAL_LOCK, LAUNCH_LOCK, LOCK, RunLock, describe_holder, holder

__all__ = [  # the metric keys are re-exported: readers of a run take everything about it from here
    "BOOKKEEPING_FIELDS", "CHECKPOINT", "CONFIG", "DIAGNOSTICS", "EVAL_LOCK", "FRAMES", "GLOBAL_STEP", "ITERATION",
    "LAUNCH_LOCK", "LOCK", "METRICS", "OFFSET_SHARE", "OWNED_FILES", "RAW_MEAN", "RAW_STD", "RUN_INFO", "SCORE",
    "STEPS_PER_SECOND",
    "SWEEP_CONFIG", "SWEEP_MANIFEST", "SWEEP_STATUS", "TARGET_SPREAD", "TENSORBOARD", "TRAIN_LOG",
    "BackboneRecord", "Diagnostics", "RunDir", "RunLock", "clear_unfinished_start", "config_differences",
    "describe_holder", "flatten", "holder", "prepare_out_dir", "read_sweep_manifest", "remove_temp_files",
    "write_sweep_manifest",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
RUN_INFO = "run_info.json"
DIAGNOSTICS = "diagnostics.npz"
TENSORBOARD = "tb"
OWNED_FILES = (CHECKPOINT, METRICS, CONFIG, RUN_INFO, DIAGNOSTICS)
"""Files ``prend train`` writes in a run directory (``tb/`` besides)."""
SWEEP_STATUS = "sweep_status.json"
"""A sweep's state of the run (``running``, ``finished``, ``failed``), written by ``prend sweep``."""
TRAIN_LOG = "train.log"
"""The stdout and stderr of the ``prend train`` processes a sweep ran in the directory."""
SWEEP_CONFIG = "sweep_config.json"
"""The config fields a sweep chose for the run (method, game, seed, ``--grid`` values...), which the run's
``prend train --config`` reads."""
SWEEP_MANIFEST = "sweep.json"
"""In a sweep directory (not a run directory): the sweep's config and every run's command and state."""

BOOKKEEPING_FIELDS = frozenset({
    "run.total_steps", "run.out", "run.progress", "run.tensorboard", "run.torch_threads", "run.memory_format",
    "run.micro_batch", "env.env_threads", "run.device", "run.checkpoint_every",
})
"""Config fields that do not change what a run learns: its budget (visible on the frame axis), where it is
written and how (threads, device, logging). A sweep resumes a run whose config differs only in these; a
report does not tell runs apart by them."""

def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda handle: handle.write((json.dumps(data, indent=2) + "\n").encode()))


def _read_json(path: Path) -> Any:
    """A JSON file's content, or ``None`` when it is missing or unreadable (a run from before it existed)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Diagnostics:
    """The arrays of ``diagnostics.npz``: one kept frame per iteration and the fixed probe set's rewards."""

    iteration: np.ndarray
    """(N,) the iterations a frame was kept at."""
    frame: np.ndarray
    """(N, H, W) uint8: the newest frame of env 0's observation at each of them."""
    frame_reward: np.ndarray
    """(N,) its raw intrinsic reward."""
    probe_iteration: np.ndarray
    """(P,) the iterations the probe set was evaluated at."""
    probe_rewards: np.ndarray
    """(P, S) raw intrinsic reward of each probe state at each evaluation."""
    probe_obs: np.ndarray
    """(S, stack, H, W) uint8: the probe states."""

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Diagnostics:
        """From the arrays of a ``diagnostics.npz`` (by name); ``ValueError`` naming a missing one."""
        missing = [f.name for f in fields(cls) if f.name not in arrays]
        if missing:
            raise ValueError(f"no {', '.join(missing)} in it")
        return cls(**{f.name: np.asarray(arrays[f.name]) for f in fields(cls)})

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name, as ``diagnostics.npz`` stores them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _member(name: str, doc: str) -> property:
    """A :class:`RunDir` property: the path of its file (or folder) ``name``."""
    return property(lambda self: self.path / name, doc=f"``{name}``: {doc}")


@dataclass(frozen=True)
class BackboneRecord:
    """The PreND backbone a run started with, as its ``run_info.json`` records it."""

    name: str | None
    weights: str | None
    """The weights file's path (``None``: none was found)."""
    sha256: str | None


class RunDir:
    r"""A run directory: where each of its files is, typed readers of them, and the writers of train and sweep.

    Example:
        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> run.write_config({"run": {"seed": 1}})
        >>> run.config_file(), run.is_run(), run.diagnostics(), run.run_info()
        ({'run': {'seed': 1}}, False, None, None)
        >>> _ = run.metrics_path.write_text('{"iteration": 1, "charts/global_step": 8}\n{"iterat')  # torn last line
        >>> run.is_run(), [r[GLOBAL_STEP] for r in run.metrics()]
        (True, [8])
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ----------------------------------------------------------------------------------------- paths
    checkpoint_path = _member(CHECKPOINT, "everything needed to resume.")
    metrics_path = _member(METRICS, "one record per iteration.")
    config_path = _member(CONFIG, "the resolved config, a copy for people (the checkpoint holds the true one).")
    run_info_path = _member(RUN_INFO, "what each start and resume ran with.")
    diagnostics_path = _member(DIAGNOSTICS, "per-iteration frames and probe-set rewards.")
    tensorboard_dir = _member(TENSORBOARD, "TensorBoard events.")
    lock_path = _member(LOCK, "held by the ``prend train`` that owns the directory.")
    sweep_status_path = _member(SWEEP_STATUS, "the state a sweep last wrote for the run.")
    train_log_path = _member(TRAIN_LOG, "what the sweep's ``prend train`` processes printed.")
    sweep_config_path = _member(SWEEP_CONFIG, "the config fields a sweep chose for the run.")

    # --------------------------------------------------------------------------------------- readers
    def is_run(self) -> bool:
        """Whether the directory holds a run a report can read (``config.json`` and ``metrics.jsonl``)."""
        return self.config_path.is_file() and self.metrics_path.is_file()

    def has_checkpoint(self) -> bool:
        """Whether a checkpoint has been written (the run can be resumed)."""
        return self.checkpoint_path.exists()

    def config_file(self) -> dict[str, Any]:
        """``config.json`` as written (``OSError`` if missing, ``ValueError`` if not JSON)."""
        return json.loads(self.config_path.read_text())

    def config(self) -> dict[str, Any]:
        """The run's resolved config: its checkpoint's when it has a readable one, else ``config.json``.

        ``config.json`` is a copy for people and may have been edited; the checkpoint's config is what the run
        trained with, so it wins whenever the two could disagree. Fields the run's prend version did not have
        yet are filled with today's defaults (every later field defaults to the earlier behaviour), so an old
        run reads as the same configuration as a new one; a config this version cannot parse (a field since
        removed) comes back as written.
        """
        config = None
        if self.checkpoint_path.is_file():
            try:
                config = read_checkpoint_config(self.checkpoint_path)
            except PrendError:  # unreadable: resuming it fails with its own message; read config.json
                pass
        if config is None:
            config = self.config_file()
        try:
            return config_to_dict(config_from_dict(config))
        except PrendError:
            return config

    def metrics(self) -> list[dict[str, Any]]:
        """The complete records of ``metrics.jsonl`` (NaN for null; a torn last line left out)."""
        return read_metrics(self.metrics_path)

    def diagnostics(self) -> Diagnostics | None:
        """``diagnostics.npz``, or ``None`` if the run has none (``ValueError`` if it lacks an array)."""
        if not self.diagnostics_path.exists():
            return None
        with np.load(self.diagnostics_path) as data:
            try:
                return Diagnostics.from_arrays({key: data[key] for key in data.files})
            except ValueError as err:
                raise ValueError(f"'{self.diagnostics_path}' is not prend's diagnostics file ({err})") from None

    def run_info(self) -> dict[str, Any] | None:
        """``run_info.json`` (``{"started": {...}, "resumed": [...]}``), or ``None`` if missing or unreadable."""
        info = _read_json(self.run_info_path)
        return info if isinstance(info, dict) else None

    def backbone(self) -> BackboneRecord | None:
        """The PreND backbone the run started with, as recorded; ``None`` when nothing records one.

        Nothing does for a run of another method, or one from before ``run_info.json``.
        """
        try:
            entry = (self.run_info() or {})["started"]["backbone"]
            return BackboneRecord(entry.get("name"), entry.get("weights"), entry["sha256"])
        except (KeyError, TypeError, AttributeError):
            return None

    def sweep_status(self) -> dict[str, Any] | None:
        """``sweep_status.json``, or ``None`` if no sweep ran the run (or it is unreadable)."""
        status = _read_json(self.sweep_status_path)
        return status if isinstance(status, dict) else None

    def finished_steps(self) -> int:
        """Agent steps the run has completed for sure: from its sweep status, or else from its metrics.

        A sweep's status says ``finished`` only after ``prend train`` exited cleanly; a run trained by hand
        counts when its metrics reached a step and a checkpoint was written after them. 0 otherwise (a
        torn last record included). A sweep's run continued by hand to a larger budget (``prend train
        --resume RUN --total-steps N``, which rewrites ``config.json``) keeps the sweep's status for the
        smaller one: the larger of that status's steps and the hand-trained count.
        """
        status = self.sweep_status()
        if status is None:
            return self._steps_checkpointed()
        if status.get("state") != "finished":
            return 0
        swept = int(status.get("global_step", status.get("total_steps", 0)))
        try:
            budget = int(self.config_file()["run"]["total_steps"])
        except (OSError, ValueError, KeyError, TypeError):
            return swept
        return swept if budget <= int(status.get("total_steps", budget)) else max(swept, self._steps_checkpointed())

    def _steps_checkpointed(self) -> int:
        """The last metrics record's step if a checkpoint was written after it, else 0."""
        try:
            lines = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
            if lines and self.checkpoint_path.stat().st_mtime >= self.metrics_path.stat().st_mtime:
                return int(json.loads(lines[-1])[GLOBAL_STEP])
        except (OSError, ValueError, KeyError):
            pass
        return 0

    def holder(self) -> str | None:
        """Who holds the directory: ``'pid 123 on host h (since ...)'``, else ``None``.

        Held while a ``prend train`` owns it, or while a sweep starts and waits on one (:data:`LAUNCH_LOCK`).
        """
        return describe_holder(self.path) or describe_holder(self.path, LAUNCH_LOCK)

    # --------------------------------------------------------------------------------------- writers
    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json`` (atomically)."""
        _write_json(self.config_path, config)

    def write_run_info(self, record: dict[str, Any]) -> None:
        """Write ``run_info.json`` (atomically)."""
        _write_json(self.run_info_path, record)

    def write_checkpoint(self, state: dict[str, Any]) -> None:
        """Write ``checkpoint.pt`` (atomically; tensors, numbers and strings only)."""
        atomic_torch_save(state, self.checkpoint_path)

    def write_diagnostics(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Write ``diagnostics.npz`` (atomically, compressed)."""
        atomic_write(self.diagnostics_path, lambda handle: np.savez_compressed(handle, **arrays))

    def write_sweep_status(self, status: dict[str, Any]) -> None:
        """Write ``sweep_status.json`` (atomically)."""
        _write_json(self.sweep_status_path, status)

    def write_sweep_config(self, config: dict[str, Any]) -> Path:
        """Write ``sweep_config.json`` (atomically); returns its path, for ``prend train --config``."""
        _write_json(self.sweep_config_path, config)
        return self.sweep_config_path


def read_sweep_manifest(sweep_dir: Path) -> dict[str, Any] | None:
    """A sweep directory's ``sweep.json``, or ``None`` if it has none (or it is unreadable)."""
    manifest = _read_json(Path(sweep_dir) / SWEEP_MANIFEST)
    return manifest if isinstance(manifest, dict) else None


def write_sweep_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> None:
    """Write a sweep directory's ``sweep.json`` (atomically)."""
    _write_json(Path(sweep_dir) / SWEEP_MANIFEST, manifest)


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


def remove_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left (e.g. ``.checkpoint.pt.XXXX.tmp``); returns them.

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


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: a nested config dict keyed by dotted field names.

    Example:
        >>> flatten({"env": {"game": "Boxing"}, "preset": "rnd-original"})
        {'env.game': 'Boxing', 'preset': 'rnd-original'}
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
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
    a, b = flatten(theirs), flatten(ours)
    return [(k, a.get(k), b.get(k)) for k in sorted((set(a) | set(b)) - ignored) if a.get(k) != b.get(k)]
