"""Atomic checkpoint files, loaded with ``weights_only=True``.

A checkpoint holds only tensors, numbers, strings, lists and dicts (no pickled objects), so
``torch.load(weights_only=True)`` reads it. It is written to a temporary file in the same directory and
renamed over the old one, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from prend.errors import PrendError

FORMAT = "prend-checkpoint-v1"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file (how weights files are identified in records and run directories)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`atomic_write`.

    The object is serialised in memory first, so a full disk raises an ``OSError`` (ENOSPC) from the file
    write rather than torch's own stream-writer error.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a prend checkpoint, raising :class:`PrendError` if it is missing, corrupt or not prend's."""
    return _load_prend_state(Path(path), mmap=False)


def checkpoint_config(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The config dict a checkpoint was written with (its ``config`` entry, a JSON string).

    Raises :class:`PrendError` when the entry is missing or not a JSON table.
    """
    text = state.get("config")
    try:
        config = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        problem = "has no config" if text is None else "has an unreadable config"
        raise PrendError(f"checkpoint '{path}' {problem}",
                         "it was not written by `prend train`, or was edited; start a new run with another --out")
    return config


def read_checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The config of the checkpoint at ``path``, read without loading its tensors (memory-mapped).

    This is how readers (``prend report``, ``prend sweep``) learn a run's true config: ``config.json`` is a
    copy for people, the checkpoint's entry is what the run trains with.
    """
    path = Path(path)
    return checkpoint_config(_load_prend_state(path, mmap=True), path)


def _load_prend_state(path: Path, mmap: bool) -> dict[str, Any]:
    if not path.is_file():
        raise PrendError(f"no checkpoint at '{path}'", "pass the run directory of a run that wrote one")
    state = _torch_load(path, mmap=mmap)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PrendError(f"'{path}' is not a prend training checkpoint",
                         "pass the directory of a run made by `prend train`")
    return state


def _torch_load(path: Path, mmap: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises many types for truncated or foreign files
        text = str(err)
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        if "Weights only load failed" in text:
            what = f"a pickled object ({refused.group(1)})" if refused else "pickled objects"
            raise PrendError(f"checkpoint '{path}' holds {what} that prend refuses to load "
                             "(prend checkpoints hold only tensors, numbers and strings)",
                             "it was not written by prend or was tampered with: do not load it; "
                             "start a new run with another --out") from None
        reason = text.strip().splitlines()[0][:120] if text.strip() else type(err).__name__
        raise PrendError(f"checkpoint '{path}' is corrupt or unreadable ({reason})",
                         "restore it from a copy or start a new run with another --out") from None
