"""The catalog (its facade over repositories and units of work) on a real database (SQLite file and PostgreSQL): migrations, Watson's status rules,
ownership, and what survives a restart."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from protocol.errors import ConflictError, InvalidParameter, NotFoundError
from server.catalog import ACOUSTIC, LANGUAGE, Catalog, Database, DataDir, InstalledBase, WordSpec
from server.catalog.artifacts import write_atomic

BB = "en-US_BroadbandModel"
OLD, NEW = f"{BB}.v2026-05-01", f"{BB}.v2026-11-01"
NOW = dt.datetime(2026, 11, 23, 12, 0, 0)


def analyse(text: str, _base: str) -> tuple[int, dict]:
    """Stand-in analysis: every capitalised word is out of vocabulary."""
    words = text.split()
    if not words:
        raise ValueError("the corpus holds no words")
    oov: dict[str, int] = {}
    for w in words:
        if w[0].isupper():
            oov[w.lower()] = oov.get(w.lower(), 0) + 1
    return len(words), oov


async def open_catalog(url: str, root) -> Catalog:
    db = Database(url)
    await db.migrate()
    catalog = Catalog(db, DataDir(root), clock=lambda: NOW)
    await catalog.sync_base_versions([InstalledBase(BB, OLD, "en-US", 16000, dt.date(2026, 5, 1), "/m/old")])
    return catalog


@pytest.fixture()
def run(database_url, tmp_path):
    """Run a coroutine function ``f(catalog)`` on a freshly migrated catalog."""
    def go(f):
        async def main():
            catalog = await open_catalog(database_url, tmp_path / "data")
            try:
                return await f(catalog)
            finally:
                await catalog.db.close()
        return asyncio.run(main())
    return go


def test_migrations_create_the_schema_and_base_versions_get_their_deadlines(run):
    async def f(c: Catalog):
        await c.db.migrate()  # idempotent
        [base] = await c.base_versions()
        return base
    base = run(f)
    assert (base.created, base.adaptation_deadline, base.transcription_deadline) == (
        dt.date(2026, 5, 1), dt.date(2027, 7, 15), dt.date(2028, 7, 15))


def test_a_word_added_while_a_corpus_is_analysed_leaves_the_model_pending(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="ivr", base_model_name=BB)
        await c.add_corpus("acme", m.id, "prompts", b"Press One for Sales")
        await c.add_words("acme", m.id, [WordSpec("zed")])
        during = (await c.get("acme", LANGUAGE, m.id)).status
        await c.analyse_corpus(m.id, "prompts", analyse)
        return during, (await c.get("acme", LANGUAGE, m.id)).status
    assert run(f) == ("pending", "ready")


def test_lifecycle_of_a_language_model(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="ivr", base_model_name=BB)
        seen = [m.status]
        await c.add_corpus("acme", m.id, "prompts", b"Press One for Sales\npress two for support")
        seen.append((await c.get("acme", LANGUAGE, m.id)).status)
        with pytest.raises(ConflictError, match="still being analyzed"):
            await c.start_training("acme", m.id, customization_weight=None, strict=True)
        await c.analyse_corpus(m.id, "prompts", analyse)
        [corpus] = await c.corpora("acme", m.id)
        seen.append((await c.get("acme", LANGUAGE, m.id)).status)
        warnings = await c.start_training("acme", m.id, customization_weight=0.6, strict=True)
        seen.append((await c.get("acme", LANGUAGE, m.id)).status)
        with pytest.raises(ConflictError, match="in progress"):
            await c.add_words("acme", m.id, [WordSpec("zed")])
        with pytest.raises(ConflictError):
            await c.delete("acme", LANGUAGE, m.id)
        job = await c.training_input(m.id)
        await c.finish_job(m.id, job.base_version, "customizations/x/trained", {"order": 3})
        done = await c.get("acme", LANGUAGE, m.id)
        seen.append(done.status)
        with pytest.raises(InvalidParameter, match="No input data modified since last training"):
            await c.start_training("acme", m.id, customization_weight=None, strict=True)
        words = await c.words("acme", m.id, word_type="corpora")
        return seen, corpus, warnings, job, done, words
    seen, corpus, warnings, job, done, words = run(f)
    assert seen == ["pending", "pending", "ready", "training", "available"]
    assert (corpus.status, corpus.total_words, corpus.out_of_vocabulary_words) == ("analyzed", 8, 3)
    assert warnings == []
    assert job.job == "train" and job.base_version == OLD and len(job.corpora) == 1
    assert [v.base_version for v in done.versions] == [OLD]
    assert done.customization_weight == 0.6 and done.progress == 100
    assert done.versions[0].transcription_deadline == dt.date(2029, 1, 15)
    assert sorted(w.word for w in words) == ["one", "press", "sales"]


def test_other_instances_get_not_found(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="ivr", base_model_name=BB)
        for call in (c.get("other", LANGUAGE, m.id), c.delete("other", LANGUAGE, m.id),
                     c.add_corpus("other", m.id, "c", b"text"), c.add_words("other", m.id, [WordSpec("w")])):
            with pytest.raises(NotFoundError):
                await call
        return await c.list("other", LANGUAGE), await c.list("acme", LANGUAGE)
    theirs, ours = run(f)
    assert theirs == [] and len(ours) == 1


def test_bad_requests(run):
    async def f(c: Catalog):
        with pytest.raises(InvalidParameter, match="not a known base model"):
            await c.create("acme", LANGUAGE, name="x", base_model_name="nope")
        with pytest.raises(InvalidParameter, match="at most 256"):
            await c.create("acme", LANGUAGE, name="x" * 257, base_model_name=BB)
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        with pytest.raises(ConflictError, match="already exists"):
            await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        with pytest.raises(InvalidParameter, match="No input data"):
            await c.start_training("acme", m.id, customization_weight=None, strict=True)
        with pytest.raises(InvalidParameter, match="reserved"):
            await c.add_corpus("acme", m.id, "user", b"text")
        with pytest.raises(InvalidParameter, match="empty"):
            await c.add_corpus("acme", m.id, "c", b"  \n")
        await c.add_corpus("acme", m.id, "c", b"text")
        with pytest.raises(ConflictError, match="allow_overwrite"):
            await c.add_corpus("acme", m.id, "c", b"other text")
        with pytest.raises(InvalidParameter, match="word_type"):
            await c.words("acme", m.id, word_type="some")
    run(f)


def test_invalid_corpus_fails_strict_training_and_warns_otherwise(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_corpus("acme", m.id, "bad", b"\xff\xfe not utf-8")
        await c.analyse_corpus(m.id, "bad", analyse)
        await c.add_words("acme", m.id, [WordSpec("IEEE", ("i triple e",), "IEEE")])
        with pytest.raises(InvalidParameter, match=r"has not completed successfully: \[bad\]"):
            await c.start_training("acme", m.id, customization_weight=None, strict=True)
        return await c.start_training("acme", m.id, customization_weight=None, strict=False)
    [warning] = run(f)
    assert warning["message"] == ("Analysis of the following corpora has not completed successfully: [bad]. "
                                  "They will be excluded from custom language model training.")


def test_upgrade_keeps_both_versions_and_reset_clears(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_words("acme", m.id, [WordSpec("zed")])
        with pytest.raises(InvalidParameter, match="already on the newest"):
            await c.start_upgrade("acme", m.id)
        await c.start_training("acme", m.id, customization_weight=None, strict=True)
        await c.finish_job(m.id, OLD, "customizations/x/old", {})
        await c.sync_base_versions([InstalledBase(BB, NEW, "en-US", 16000, dt.date(2026, 11, 1), "/m/new")])
        assert await c.start_upgrade("acme", m.id) == NEW
        during = await c.get("acme", LANGUAGE, m.id)
        await c.finish_job(m.id, NEW, "customizations/x/new", {})
        after = await c.get("acme", LANGUAGE, m.id)
        await c.reset("acme", m.id)
        return during, after, await c.get("acme", LANGUAGE, m.id), await c.words("acme", m.id)
    during, after, reset, words = run(f)
    assert during.status == "upgrading" and [v.base_version for v in during.versions] == [OLD]
    assert after.status == "available" and [v.base_version for v in after.versions] == [OLD, NEW]
    assert (reset.status, reset.versions, words, reset.corpora) == ("pending", (), [], ())


def test_an_interrupted_job_is_still_queued_after_a_restart(database_url, tmp_path):
    async def main():
        c = await open_catalog(database_url, tmp_path / "data")
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_words("acme", m.id, [WordSpec("zed")])
        await c.start_training("acme", m.id, customization_weight=None, strict=True)
        await c.db.close()  # the server dies mid-training
        c = await open_catalog(database_url, tmp_path / "data")
        queued = await c.queued_jobs()
        await c.fail_job(m.id, "training failed: boom")
        failed = await c.get("acme", LANGUAGE, m.id)
        await c.db.close()
        return m.id, queued, failed
    custom_id, queued, failed = asyncio.run(main())
    assert queued == [custom_id]
    assert (failed.status, failed.error) == ("failed", "training failed: boom")


def test_atomic_write_keeps_the_old_content_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "corpus.txt"
    write_atomic(target, b"old")

    def boom(*_args):
        raise OSError("disk full")
    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.txt"]


def test_an_older_schema_is_upgraded_in_place_keeping_its_rows(database_url, tmp_path):
    from alembic import command
    from sqlalchemy import inspect, text

    from server.catalog.db import alembic_config

    async def main():
        db = Database(database_url)

        def to_0001(connection):
            cfg = alembic_config(database_url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0001")
        async with db.engine.begin() as conn:
            await conn.run_sync(to_0001)
            before = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            await conn.execute(text(
                "INSERT INTO base_versions (version, model, locale, rate_hz, created, adaptation_deadline, "
                "transcription_deadline, path, registered) VALUES ('m.v2020-01-01', 'm', 'en-US', 8000, "
                "'2020-01-01', '2021-01-15', '2022-01-15', '/m', '2020-01-02 00:00:00')"))
        await db.close()
        c = await open_catalog(database_url, tmp_path / "data")  # migrates to head, as a new server does
        versions = [b.version for b in await c.base_versions()]
        async with c.db.engine.connect() as conn:
            after = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await c.db.close()
        return before, after, versions
    before, after, versions = asyncio.run(main())
    assert "audio_resources" not in before and "audio_resources" in after
    assert sorted(versions) == [OLD, "m.v2020-01-01"]


def test_acoustic_model_rules(run):
    async def f(c: Catalog):
        am = await c.create("acme", ACOUSTIC, name="voices", base_model_name=BB)
        lm = await c.create("acme", LANGUAGE, name="words", base_model_name=BB)
        await c.add_audio("acme", am.id, "calls", b"x" * 200, content_type="audio/wav", contained_content_type=None,
                          transcript="hello")
        statuses = [(await c.get("acme", ACOUSTIC, am.id)).status]
        with pytest.raises(ConflictError, match="still being processed"):
            await c.start_acoustic_training("acme", am.id, language_id=None, strict=True)
        await c.record_audio(am.id, "calls", duration_s=30.0, details={"type": "audio"},
                             items=[{"path": None, "transcript": "hello", "duration": 30.0}])
        await c.add_audio("acme", am.id, "broken", b"y" * 200, content_type="audio/wav", contained_content_type=None,
                          transcript=None)
        await c.record_audio(am.id, "broken", error="not audio")
        statuses.append((await c.get("acme", ACOUSTIC, am.id)).status)
        with pytest.raises(InvalidParameter, match=r"following audio resources .*\[broken\]"):
            await c.start_acoustic_training("acme", am.id, language_id=None, strict=True)
        with pytest.raises(InvalidParameter, match="at least 1 minutes of valid audio; .* has 0.50"):
            await c.start_acoustic_training("acme", am.id, language_id=None, strict=False, min_minutes=1.0)
        with pytest.raises(InvalidParameter, match="must be available on base model version"):
            await c.start_acoustic_training("acme", am.id, language_id=lm.id, strict=False)
        with pytest.raises(NotFoundError):
            await c.start_acoustic_training("acme", am.id, language_id="nope", strict=False)
        [warning] = await c.start_acoustic_training("acme", am.id, language_id=None, strict=False)
        job = await c.training_input(am.id)
        with pytest.raises(ConflictError):
            await c.delete_audio("acme", am.id, "calls")
        await c.cancel_job("acme", ACOUSTIC, am.id)
        after_cancel = await c.get("acme", ACOUSTIC, am.id)
        return statuses, warning, job, after_cancel
    statuses, warning, job, after_cancel = run(f)
    assert statuses == ["pending", "ready"]
    assert "excluded from custom acoustic model training" in warning["message"]
    assert job.kind == "acoustic" and job.audio == (("customizations/" + job.custom_id + "/audio/calls.upload",
                                                     "audio/wav", "hello"),)
    assert (after_cancel.status, after_cancel.job) == ("ready", None)


def test_getting_and_listing_models_do_not_load_their_words(run):
    # issue 13, defect 3: a model with 294,419 words made every get and list take 12-15 s on the event loop
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_words("acme", m.id, [WordSpec(f"word{i}") for i in range(300)])
        got, listed = await c.get("acme", LANGUAGE, m.id), await c.list("acme", LANGUAGE)
        return got, listed, await c.words("acme", m.id), await c.word("acme", m.id, "word7")
    got, [listed], words, word = run(f)
    for model in (got, listed):
        assert not hasattr(model, "words")  # a model record never holds its words
    assert len(words) == 300 and word.word == "word7"


def test_words_added_while_a_corpus_with_the_same_words_is_analysed_merge(run):
    """Issue 13, deviation 1: ``add_corpus`` then ``add_words`` with a word of that corpus failed on
    ``UNIQUE(custom_id, word)`` (500, or the analysis crashed and left the corpus being_processed)."""
    async def f(c: Catalog):
        outcomes = []
        for trial in range(8):
            m = await c.create("acme", LANGUAGE, name=f"ivr{trial}", base_model_name=BB)
            await c.add_corpus("acme", m.id, "prompts", b"Press Zorbo for Sales and Quux for support")
            await asyncio.gather(c.analyse_corpus(m.id, "prompts", analyse),
                                 c.add_words("acme", m.id, [WordSpec("zorbo", ("zor bow",)), WordSpec("quux")]))
            corpus = await c.corpus("acme", m.id, "prompts")
            words = {w.word: sorted(w.source) for w in await c.words("acme", m.id)}
            outcomes.append((corpus.status, (await c.get("acme", LANGUAGE, m.id)).status, words))
        return outcomes
    for corpus_status, model_status, words in run(f):
        assert (corpus_status, model_status) == ("analyzed", "ready")
        assert words["zorbo"] == ["prompts", "user"] and words["quux"] == ["prompts", "user"]


def test_two_concurrent_trainings_start_once(run):
    """Issue 13: two concurrent ``train`` calls both answered 200."""
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="ivr", base_model_name=BB)
        await c.add_words("acme", m.id, [WordSpec("zorbo")])
        results = await asyncio.gather(*(c.start_training("acme", m.id, customization_weight=None, strict=False)
                                         for _ in range(4)), return_exceptions=True)
        return [type(r).__name__ for r in results]
    kinds = run(f)
    assert sorted(kinds) == ["ConflictError"] * 3 + ["list"]


async def _trained_lm(c: Catalog, name: str = "x", *, dirty: bool = False):
    m = await c.create("acme", LANGUAGE, name=name, base_model_name=BB)
    await c.add_words("acme", m.id, [WordSpec("zed")])
    await c.start_training("acme", m.id, customization_weight=None, strict=True)
    await c.finish_job(m.id, OLD, f"customizations/{m.id}/old", {})
    if dirty:
        await c.add_words("acme", m.id, [WordSpec("zorbo")])
    return m


async def _release_new(c: Catalog) -> None:
    await c.sync_base_versions([InstalledBase(BB, NEW, "en-US", 16000, dt.date(2026, 11, 1), "/m/new")])


def test_an_upgrade_resumes_the_status_the_model_had(run):
    """Issue 13, deviation 3: upgrading a ``ready`` model left it ``available`` (Watson: it resumes ``ready``)."""
    async def f(c: Catalog):
        ready = await _trained_lm(c, "ready", dirty=True)
        available = await _trained_lm(c, "available")
        await _release_new(c)
        seen = {}
        for m in (ready, available):
            before = (await c.get("acme", LANGUAGE, m.id)).status
            await c.start_upgrade("acme", m.id)
            await c.finish_job(m.id, NEW, f"customizations/{m.id}/new", {})
            after = await c.get("acme", LANGUAGE, m.id)
            seen[m.name] = (before, after.status, [v.base_version for v in after.versions])
        return seen
    seen = run(f)
    assert seen["ready"] == ("ready", "ready", [OLD, NEW])
    assert seen["available"] == ("available", "available", [OLD, NEW])


def test_a_never_trained_model_moves_to_the_new_base_at_once(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="fresh", base_model_name=BB)
        await c.add_words("acme", m.id, [WordSpec("zed")])
        await _release_new(c)
        assert await c.start_upgrade("acme", m.id) == NEW
        return await c.get("acme", LANGUAGE, m.id)
    m = run(f)
    assert (m.status, m.base_version, m.job) == ("ready", NEW, None)


def test_a_failed_upgrade_leaves_the_model_usable_and_upgradable(run):
    """Issue 13, deviation 7: an upgrade that failed (its base version was not installed yet) stayed ``failed``
    for good and every further upgrade answered 400; one to a version this server cannot load is refused."""
    async def f(c: Catalog):
        m = await _trained_lm(c)
        await _release_new(c)
        with pytest.raises(InvalidParameter, match="registered but not installed on this server"):
            await c.start_upgrade("acme", m.id, installed={OLD})
        await c.start_upgrade("acme", m.id, installed={OLD, NEW})
        await c.fail_job(m.id, f"base model version {NEW} is not installed")
        failed = await c.get("acme", LANGUAGE, m.id)
        assert await c.start_upgrade("acme", m.id) == NEW
        return failed
    failed = run(f)
    assert (failed.status, failed.base_version, failed.job) == ("available", OLD, None)
    assert [v.base_version for v in failed.versions] == [OLD]
    assert failed.error.startswith(f"Upgrade to base model version {NEW} failed")


def test_an_acoustic_model_trained_with_a_language_model_waits_for_its_upgrade(run):
    """Issue 13, deviation 2: an acoustic model trained with a custom LM started ``upgrade_model`` without
    ``custom_language_model_id`` while that LM was not upgraded (Watson: the upgrade must not start)."""
    async def f(c: Catalog):
        lm = await _trained_lm(c, "words")
        am = await c.create("acme", ACOUSTIC, name="voices", base_model_name=BB)
        await c.add_audio("acme", am.id, "calls", b"x" * 200, content_type="audio/wav", contained_content_type=None,
                          transcript="hello")
        await c.record_audio(am.id, "calls", duration_s=30.0, details={"type": "audio"},
                             items=[{"path": None, "transcript": "hello", "duration": 30.0}])
        await c.start_acoustic_training("acme", am.id, language_id=lm.id, strict=True)
        await c.finish_job(am.id, OLD, f"customizations/{am.id}/old", {})
        await _release_new(c)
        with pytest.raises(InvalidParameter, match=f"trained with custom language model {lm.id}.*upgrade the language"):
            await c.start_acoustic_upgrade("acme", am.id, language_id=None, force=False)
        with pytest.raises(InvalidParameter, match="must be available on base model version"):
            await c.start_acoustic_upgrade("acme", am.id, language_id=lm.id, force=False)
        refused = await c.get("acme", ACOUSTIC, am.id)
        await c.start_upgrade("acme", lm.id)
        await c.finish_job(lm.id, NEW, f"customizations/{lm.id}/new", {})
        assert await c.start_acoustic_upgrade("acme", am.id, language_id=lm.id, force=False) == NEW
        job = await c.training_input(am.id)
        await c.fail_job(am.id, "boom")
        failed = await c.get("acme", ACOUSTIC, am.id)
        # the language model upgraded: an upgrade without it may start (PROTOCOLS §1.9's order), then with it
        assert await c.start_acoustic_upgrade("acme", am.id, language_id=None, force=False) == NEW
        await c.finish_job(am.id, NEW, f"customizations/{am.id}/new", {})
        return refused, job, failed, await c.get("acme", ACOUSTIC, am.id)
    refused, job, failed, done = run(f)
    assert (refused.status, refused.base_version, refused.job) == ("available", OLD, None)
    assert job.helper_lm is not None and job.base_version == NEW
    assert (failed.status, failed.base_version, failed.job_options["language_customization_id"]) == (
        "available", OLD, refused.job_options["language_customization_id"])
    assert (done.status, [v.base_version for v in done.versions]) == ("available", [OLD, NEW])


def test_words_are_filtered_sorted_and_paged_by_the_database(run):
    """Issue 13, defect 3: paginate words (a model may hold hundreds of thousands)."""
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_corpus("acme", m.id, "prompts", b"Bravo Alpha Alpha Charlie Charlie Charlie")
        await c.analyse_corpus(m.id, "prompts", analyse)
        await c.add_words("acme", m.id, [WordSpec("delta"), WordSpec("alpha")])
        names = lambda words: [w.word for w in words]  # noqa: E731
        return {
            "all": names(await c.words("acme", m.id)),
            "page": names(await c.words("acme", m.id, limit=2, offset=1)),
            "user": names(await c.words("acme", m.id, word_type="user")),
            "corpora": names(await c.words("acme", m.id, word_type="corpora", sort="-count")),
            "+count": names(await c.words("acme", m.id, sort="+count", limit=2)),
        }
    got = run(f)
    assert got["all"] == ["alpha", "bravo", "charlie", "delta"]
    assert got["page"] == ["bravo", "charlie"]
    assert got["user"] == ["alpha", "delta"]
    assert got["corpora"] == ["charlie", "alpha", "bravo"]
    assert got["+count"] == ["delta", "bravo"]


def test_deleting_a_corpus_removes_only_the_words_nothing_else_holds(run):
    async def f(c: Catalog):
        m = await c.create("acme", LANGUAGE, name="x", base_model_name=BB)
        await c.add_corpus("acme", m.id, "a", b"Xeno Yodel Zulu")
        await c.analyse_corpus(m.id, "a", analyse)
        await c.add_corpus("acme", m.id, "b", b"Yodel")
        await c.analyse_corpus(m.id, "b", analyse)
        await c.add_words("acme", m.id, [WordSpec("xeno")])
        await c.delete_corpus("acme", m.id, "a")
        return {w.word: sorted(w.source) for w in await c.words("acme", m.id)}
    assert run(f) == {"xeno": ["user"], "yodel": ["b"]}
