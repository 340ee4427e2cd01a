"""The data directory: corpora, trained custom models, job audio, registered base models.

Layout (paths stored in the database are relative to the data directory)::

    catalog.sqlite                       the default database
    models/<name>/<version>/             base versions added by ``voxgate models register``
    customizations/<id>/corpora/<name>.txt       (<name>: DataDir.file_name of the user's name)
    customizations/<id>/audio/<name>.upload       an audio resource as uploaded
    customizations/<id>/audio/<name>.files/       an archive resource's audio files, extracted
    customizations/<id>/<base version>-<token>/   a trained custom model (one folder per training)
    jobs/<id>.audio                      audio of an asynchronous recognition job

Every file is written to a temporary name in the same folder, flushed to disk
and renamed over its target (``os.replace`` is atomic on POSIX), so a crash
mid-write leaves the old content. A trained model is built into a fresh
folder that the database points to only once it is complete; the previous
folder is removed after the database commit.

Catalog operations write and remove files through a
:class:`~server.catalog.unit_of_work.UnitOfWork`: a write is staged (:func:`stage`)
inside the transaction and published (:func:`publish`) once it commits, removals
run after the commit, both in a thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

#: The longest resource name (in UTF-8 bytes) used as a file name as it is; see :meth:`DataDir.file_name`.
MAX_NAME_BYTES = 200


def default_data_dir() -> Path:
    """``$VOXGATE_DATA_DIR``, else ``voxgate-data`` in the working directory."""
    return Path(os.environ.get("VOXGATE_DATA_DIR", "voxgate-data"))


class DataDir:
    """One data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def database(self) -> Path:
        """The default SQLite file."""
        return self.root / "catalog.sqlite"

    @property
    def models(self) -> Path:
        """Where registered base versions live."""
        return self.root / "models"

    def path(self, relative: str) -> Path:
        """The absolute path of a stored relative path."""
        return self.root / relative

    @staticmethod
    def file_name(name: str) -> str:
        """A user's resource name as a file name: itself while its UTF-8 form fits (at most
        :data:`MAX_NAME_BYTES` bytes, so every suffix still fits the file system's 255), otherwise
        ``~`` and the sha256 of the name (128 characters of ``é`` or ``好`` are 256-384 bytes)."""
        if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
            return name
        return "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()

    def corpus(self, custom_id: str, name: str) -> str:
        """Relative path of a corpus text."""
        return f"customizations/{custom_id}/corpora/{self.file_name(name)}.txt"

    def audio(self, custom_id: str, name: str) -> str:
        """Relative path of an uploaded audio resource (as sent)."""
        return f"customizations/{custom_id}/audio/{self.file_name(name)}.upload"

    def audio_items(self, custom_id: str, name: str) -> str:
        """Relative folder of an archive resource's extracted audio files."""
        return f"customizations/{custom_id}/audio/{self.file_name(name)}.files"

    def new_model_folder(self, custom_id: str, base_version: str) -> str:
        """Relative path of a fresh (not yet existing) folder for a trained custom model."""
        return f"customizations/{custom_id}/{base_version}-{uuid.uuid4().hex[:12]}"

    def job_audio(self, job_id: str) -> str:
        """Relative path of a job's audio."""
        return f"jobs/{job_id}.audio"

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write a file atomically (temporary file, fsync, rename)."""
        write_atomic(self.path(relative), data)

    def remove(self, relative: str | None) -> None:
        """Remove a stored file or folder (missing is fine)."""
        if not relative:
            return
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    @staticmethod
    def custom(custom_id: str) -> str:
        """Relative folder of everything stored for a custom model."""
        return f"customizations/{custom_id}"


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so that a reader sees the old or the new content, never a part."""
    publish(stage(target, data), target)


def stage(target: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``target``, flushed to disk; return its path.

    :func:`publish` renames it over ``target``; until then ``target`` keeps its old content.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def publish(staged: Path, target: Path) -> None:
    """Rename a file :func:`stage` wrote over ``target`` (atomic on POSIX); the staged file is gone after."""
    try:
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
