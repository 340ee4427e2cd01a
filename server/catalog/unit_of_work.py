"""One catalog operation: a database transaction, its repositories, and the file work that goes with it.

Files follow the transaction, never the other way round, and never on the event loop every live stream
shares:

* :meth:`UnitOfWork.write_file` stages the bytes (temporary file, fsync: up to 100 MB) in a thread at
  once; the commit publishes them (a rename) and a rollback removes them, so a refused request leaves
  neither a file nor a changed one behind.
* :meth:`UnitOfWork.remove_after_commit` queues a removal (a file or a whole folder) that runs in a thread
  once the transaction has committed, and not at all if it rolls back.

A crash between the commit and the file work leaves a record whose new file is missing (its analysis or
processing then fails with an error the user sees) or a file no record points at (the start-up sweep of
:class:`server.customization.Customizations` removes it).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from server.catalog.artifacts import DataDir, publish, stage
from server.catalog.db import Database
from server.catalog.repositories import (AudioResources, BaseVersions, Callbacks, Corpora, CustomModels, Jobs,
                                         Words)

log = logging.getLogger("voxgate.catalog")


class UnitOfWork:
    """``async with UnitOfWork(db, data) as uow:`` one transaction over every repository.

    Leaving the block normally commits, then publishes the staged files and runs the queued removals;
    leaving it with an exception rolls back and removes the staged files.

    Args:
        db: the catalog database.
        data: the data directory the stored paths are relative to.
    """

    def __init__(self, db: Database, data: DataDir) -> None:
        self._db = db
        self._data = data
        self._staged: list[tuple[Path, Path]] = []
        self._removals: list[str] = []
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        session = self._db.session()
        await session.begin()
        self._session = session
        self.base_versions = BaseVersions(session)
        self.models = CustomModels(session)
        self.corpora = Corpora(session)
        self.words = Words(session)
        self.audio = AudioResources(session)
        self.jobs = Jobs(session)
        self.callbacks = Callbacks(session)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        session, self._session = self._session, None
        assert session is not None, "UnitOfWork is entered once per operation"
        try:
            if exc_type is None:
                await session.commit()
            else:
                await session.rollback()
        except BaseException:
            await asyncio.shield(self._discard())
            raise
        finally:
            await session.close()
        if exc_type is None:
            await asyncio.shield(self._apply())
        else:
            await asyncio.shield(self._discard())

    async def write_file(self, relative: str, data: bytes) -> None:
        """Stage ``data`` for the stored path ``relative`` (in a thread); published by the commit."""
        target = self._data.path(relative)
        staged = await asyncio.to_thread(stage, target, data)
        self._staged.append((staged, target))

    def remove_after_commit(self, relative: str | None) -> None:
        """Remove a stored file or folder once the transaction commits (None: nothing)."""
        if relative:
            self._removals.append(relative)

    def remove_custom_after_commit(self, custom_id: str) -> None:
        """Remove everything stored for a custom model once the transaction commits."""
        self._removals.append(self._data.custom(custom_id))

    async def _apply(self) -> None:
        staged, self._staged = self._staged, []
        removals, self._removals = self._removals, []
        published = {target for _, target in staged}

        def run() -> None:
            for tmp, target in staged:
                publish(tmp, target)
            for relative in removals:
                if self._data.path(relative) not in published:
                    self._data.remove(relative)
        if staged or removals:
            await asyncio.to_thread(run)

    async def _discard(self) -> None:
        staged, self._staged = self._staged, []
        self._removals = []

        def run() -> None:
            for tmp, _target in staged:
                tmp.unlink(missing_ok=True)
        if staged:
            await asyncio.to_thread(run)
