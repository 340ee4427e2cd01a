"""The unit of work on a real database and data directory: a write is published by the commit and removed by
a rollback; a removal happens only after the commit; the file work runs off the event loop's thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

from protocol.errors import ConflictError
from server.catalog import LANGUAGE, Catalog, Database, DataDir, InstalledBase
from server.catalog.artifacts import write_atomic
from server.catalog.unit_of_work import UnitOfWork

BB = "en-US_BroadbandModel"
OLD = f"{BB}.v2026-05-01"


class Refused(Exception):
    """What the test raises inside a unit of work to roll it back."""


@pytest.fixture()
def run(database_url, tmp_path):
    """Run ``f(db, data)`` on a freshly migrated database and an empty data directory."""
    def go(f):
        async def main():
            db = Database(database_url)
            await db.migrate()
            try:
                return await f(db, DataDir(tmp_path / "data"))
            finally:
                await db.close()
        return asyncio.run(main())
    return go


def _files(data: DataDir) -> list[str]:
    return sorted(str(p.relative_to(data.root)) for p in data.root.rglob("*") if p.is_file()
                  and p.name != "catalog.sqlite")


def test_a_rollback_removes_the_written_file_and_keeps_the_old_content(run) -> None:
    async def f(db: Database, data: DataDir):
        write_atomic(data.path("c/old.txt"), b"old")
        with pytest.raises(Refused):
            async with UnitOfWork(db, data) as uow:
                await uow.write_file("c/new.txt", b"new")
                await uow.write_file("c/old.txt", b"replaced")
                assert not data.path("c/new.txt").exists()  # staged, not published
                raise Refused
        return _files(data), data.path("c/old.txt").read_bytes()
    files, old = run(f)
    assert files == ["c/old.txt"] and old == b"old"


def test_a_commit_publishes_the_written_files(run) -> None:
    async def f(db: Database, data: DataDir):
        write_atomic(data.path("c/old.txt"), b"old")
        async with UnitOfWork(db, data) as uow:
            await uow.write_file("c/new.txt", b"new")
            await uow.write_file("c/old.txt", b"replaced")
        return _files(data), data.path("c/new.txt").read_bytes(), data.path("c/old.txt").read_bytes()
    assert run(f) == (["c/new.txt", "c/old.txt"], b"new", b"replaced")


def test_a_removal_happens_only_after_the_commit(run) -> None:
    async def f(db: Database, data: DataDir):
        write_atomic(data.path("m/a/weights.bin"), b"w")
        write_atomic(data.path("m/b.txt"), b"b")
        with pytest.raises(Refused):
            async with UnitOfWork(db, data) as uow:
                uow.remove_after_commit("m/a")
                raise Refused
        kept = _files(data)
        async with UnitOfWork(db, data) as uow:
            uow.remove_after_commit("m/a")
            uow.remove_after_commit("m/b.txt")
            uow.remove_after_commit(None)
            inside = _files(data)
        return kept, inside, _files(data)
    kept, inside, after = run(f)
    assert kept == inside == ["m/a/weights.bin", "m/b.txt"]
    assert after == []


def test_file_work_runs_off_the_event_loop_thread(run, monkeypatch) -> None:
    import server.catalog.unit_of_work as unit_of_work

    threads: list[str] = []

    def watched(real):
        def call(*args):
            threads.append(threading.current_thread().name)
            return real(*args)
        return call
    monkeypatch.setattr(unit_of_work, "stage", watched(unit_of_work.stage))
    monkeypatch.setattr(unit_of_work, "publish", watched(unit_of_work.publish))

    async def f(db: Database, data: DataDir):
        async with UnitOfWork(db, data) as uow:
            await uow.write_file("j/audio", b"x" * 1000)
        return threading.current_thread().name
    loop_thread = run(f)
    assert len(threads) == 2 and loop_thread not in threads


def test_a_refused_catalog_operation_leaves_no_file_and_a_done_one_removes_after_commit(run) -> None:
    async def f(db: Database, data: DataDir):
        c = Catalog(db, data, clock=lambda: dt.datetime(2026, 11, 23, 12, 0))
        await c.sync_base_versions([InstalledBase(BB, OLD, "en-US", 16000, dt.date(2026, 5, 1), "/m/old")])
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_corpus("acme", m.id, "prompts", b"Press One")
        with pytest.raises(ConflictError, match="allow_overwrite"):
            await c.add_corpus("acme", m.id, "prompts", b"other text")
        stored = _files(data)
        text = data.path(data.corpus(m.id, "prompts")).read_bytes()
        await c.delete_corpus("acme", m.id, "prompts")
        return stored, text, _files(data)
    stored, text, after = run(f)
    assert len(stored) == 1 and stored[0].endswith("corpora/prompts.txt") and text == b"Press One"
    assert after == []
