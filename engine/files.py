"""Folder replacement shared by the artifacts the engine builds (custom language and acoustic models)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def swap_in(tmp: Path, out_dir: Path) -> None:
    """Put the completely built folder ``tmp`` at ``out_dir``: a rename, after moving a previous one aside.

    A new ``out_dir`` appears whole or not at all; replacing an existing one leaves, if the process
    dies between the two renames, the previous folder beside it under a ``.old-`` name.
    """
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
