"""Atomic checkpoint files, loaded with ``weights_only=True``.

A checkpoint holds only tensors, numbers, strings, lists and dicts (no pickled objects), so
``torch.load(weights_only=True)`` reads it. It is written to a temporary file in the same directory and
renamed over the old one, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from prend.errors import PrendError

FORMAT = "prend-checkpoint-v1"


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
