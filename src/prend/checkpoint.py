"""Atomic checkpoint files, loaded with ``weights_only=True``.

A checkpoint holds only tensors, numbers, strings, lists and dicts (no pickled objects), so
``torch.load(weights_only=True)`` reads it. It is written to a temporary file in the same directory and
renamed over the old one, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import os
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
    """``torch.save`` through :func:`atomic_write`."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a prend checkpoint, raising :class:`PrendError` if it is missing, corrupt or not prend's."""
    path = Path(path)
    if not path.is_file():
        raise PrendError(f"no checkpoint at '{path}'", "pass the run directory of a run that wrote one")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise PrendError(f"checkpoint '{path}' is corrupt or unreadable ({reason})",
                         "restore it from a copy or start a new run with another --out") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PrendError(f"'{path}' is not a prend training checkpoint",
                         "pass the directory of a run made by `prend train`")
    return state
