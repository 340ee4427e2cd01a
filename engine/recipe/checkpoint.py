"""Crash-safe saving of training state and corpus shards."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash leaves the old file (or none) intact."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
