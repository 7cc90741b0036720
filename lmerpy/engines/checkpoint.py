"""Training checkpoints of the torch engine: written atomically every epoch, read safely.

A checkpoint holds only tensors and plain Python values (no pickled objects), so it is read
with ``torch.load(weights_only=True)``; it is written to a temporary file in the same folder
and renamed over the old one, so a run killed at any moment leaves either the previous or the
new checkpoint, never a torn file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..errors import ModelError

# 2: the optimiser's state holds a second parameter group (a GLMM's dispersion or size)
FORMAT_VERSION = 2
FILENAME = "lmerpy-training.pt"


def checkpoint_path(directory: str | os.PathLike) -> Path:
    return Path(directory) / FILENAME


def save_checkpoint(directory: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(folder)
    fd, tmp = tempfile.mkstemp(prefix=".lmerpy-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT_VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(directory: str | os.PathLike, fingerprint: str) -> dict | None:
    """The checkpoint in ``directory`` (None if there is none); refuses a checkpoint of
    another model or data set, and files that are not lmerpy checkpoints."""
    path = checkpoint_path(directory)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign file: say so, never unpickle objects
        raise ModelError(f"{path} is not a readable lmerpy checkpoint ({err})") from err
    if isinstance(state, dict) and isinstance(state.get("format"), int) and \
            0 < state["format"] < FORMAT_VERSION:
        raise ModelError(f"{path} was written by an older lmerpy (checkpoint format "
                         f"{state['format']}, this one reads {FORMAT_VERSION}); remove it to "
                         f"train afresh")
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ModelError(f"{path} is not an lmerpy training checkpoint (format "
                         f"{state.get('format') if isinstance(state, dict) else '?'})")
    if state.get("fingerprint") != fingerprint:
        raise ModelError(f"{path} belongs to another model, data set or seed; remove it or "
                         f"use another checkpoint_dir")
    return state


__all__ = ["checkpoint_path", "load_checkpoint", "save_checkpoint"]
