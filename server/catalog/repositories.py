"""Repositories: one per aggregate of the catalog, over the ORM tables of one transaction's session.

They are the only modules that import :mod:`server.catalog.tables`; what they return is a record of
:mod:`server.catalog.records`, never a row. They apply no status rule (that is
:mod:`server.catalog.status`) and touch no file (that is :class:`~server.catalog.unit_of_work.UnitOfWork`).

Locking (issue 13): :meth:`CustomModels.get` with ``lock=True`` locks the custom model before it reads it:
``SELECT … FOR UPDATE`` on PostgreSQL, so two replicas sharing a catalog cannot both start a training; on
SQLite, whose ``FOR UPDATE`` is a no-op and whose transactions begin at their first write, a no-op
``UPDATE`` of the row comes first, which takes the database's write lock — without it two coroutines
could both read the model, then both write (two ``train`` calls both answered 200; a word added while its
corpus was analysed broke ``UNIQUE(custom_id, word)``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from protocol.errors import ConflictError
from server.catalog import records as r
from server.catalog import tables as t
from server.catalog.lifecycle import adaptation_deadline, transcription_deadline
from server.catalog.status import (AudioStatus, CorpusStatus, JobKind, JobStatus, ModelKind, ModelStatus, Standing,
                                   UNFINISHED_JOBS)

#: words written per statement when a corpus analysis adds its out-of-vocabulary words
WORD_BATCH = 2000
#: words looked up per ``IN (…)`` query
WORD_LOOKUP_BATCH = 500
USER = "user"


def _source():
    # ``source`` is a JSON list of corpus names and "user" (a reserved corpus name); as text, '"user"'
    # appears in it exactly when the user added the word.
    return func.cast(t.Word.source, String)


def _fields(row: object, record_type: type, **override: Any) -> Any:
    names = [f.name for f in dataclasses.fields(record_type) if f.name not in override]
    return record_type(**{n: getattr(row, n) for n in names}, **override)


# -- rows to records ---------------------------------------------------------------------------------


def _base(row: t.BaseVersion) -> r.BaseVersion:
    return _fields(row, r.BaseVersion)


def _version(row: t.CustomVersion) -> r.CustomVersion:
    return _fields(row, r.CustomVersion)


def _corpus(row: t.Corpus) -> r.Corpus:
    return _fields(row, r.Corpus, status=CorpusStatus(row.status))


def _audio(row: t.AudioResource) -> r.AudioResource:
    return _fields(row, r.AudioResource, status=AudioStatus(row.status),
                   items=None if row.items is None else tuple(row.items))


def _word(row: t.Word) -> r.Word:
    return _fields(row, r.Word, sounds_like=tuple(row.sounds_like or ()), source=tuple(row.source or ()),
                   error=None if row.error is None else tuple(row.error))


def _model(row: t.CustomModel, *, children: bool) -> r.CustomModel:
    return _fields(row, r.CustomModel, kind=ModelKind(row.kind), status=ModelStatus(row.status),
                   job=None if row.job is None else JobKind(row.job),
                   job_options=None if row.job_options is None else dict(row.job_options),
                   versions=tuple(_version(v) for v in row.versions),
                   corpora=tuple(_corpus(c) for c in row.corpora) if children else (),
                   audio=tuple(_audio(a) for a in row.audio) if children else ())


def _job(row: t.Job) -> r.Job:
    return _fields(row, r.Job, status=JobStatus(row.status))


def _callback(row: t.Callback) -> r.Callback:
    return _fields(row, r.Callback)


def _plain(value: Any) -> Any:
    """A value as a column stores it: enums as their strings, mappings and tuples as JSON's dicts and lists."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict | dt.date) or value is None:
        return value
    if hasattr(value, "items"):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


# -- repositories ------------------------------------------------------------------------------------


class BaseVersions:
    """Base versions (shipped or registered)."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def all(self, model: str | None = None) -> list[r.BaseVersion]:
        """Every recorded base version (of ``model``, if given), by model and oldest first."""
        query = select(t.BaseVersion).order_by(t.BaseVersion.model, t.BaseVersion.created)
        if model is not None:
            query = query.where(t.BaseVersion.model == model)
        return [_base(b) for b in (await self._s.scalars(query)).all()]

    async def get(self, version: str) -> r.BaseVersion | None:
        """One base version, or None."""
        row = await self._s.get(t.BaseVersion, version)
        return None if row is None else _base(row)

    async def sync(self, installed: Iterable[r.InstalledBase], now: dt.datetime) -> None:
        """Record installed versions: new ones with their deadlines, known ones with their current path."""
        known = {row.version: row for row in (await self._s.scalars(select(t.BaseVersion))).all()}
        for b in installed:
            row = known.get(b.version)
            if row is None:
                self._s.add(t.BaseVersion(version=b.version, model=b.model, locale=b.locale, rate_hz=b.rate_hz,
                                          created=b.created, adaptation_deadline=adaptation_deadline(b.created),
                                          transcription_deadline=transcription_deadline(b.created), path=b.path,
                                          registered=now))
            elif row.path != b.path:
                row.path = b.path


class CustomModels:
    """Custom models with their trained versions (and, read with them, their corpora and audio)."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, custom_id: str, *, lock: bool = False, children: bool = True) -> r.CustomModel | None:
        """A custom model whoever owns it, or None.

        Args:
            lock: lock it for this transaction (see the module's docstring).
            children: with its corpora and audio (else only its versions).
        """
        if lock and self._s.bind.dialect.name == "sqlite":
            await self._s.execute(update(t.CustomModel).where(t.CustomModel.id == custom_id)
                                  .values(updated=t.CustomModel.updated).execution_options(synchronize_session=False))
        query = select(t.CustomModel).where(t.CustomModel.id == custom_id).options(raiseload(t.CustomModel.words))
        if not children:
            query = query.options(raiseload(t.CustomModel.corpora), raiseload(t.CustomModel.audio))
        if lock:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return None if row is None else _model(row, children=children)

    async def list(self, owner: str, kind: ModelKind, *, language: str | None = None) -> list[r.CustomModel]:
        """The owner's models of a kind, oldest first, with their versions only."""
        query = select(t.CustomModel).where(t.CustomModel.owner == owner, t.CustomModel.kind == kind).options(
            raiseload(t.CustomModel.corpora), raiseload(t.CustomModel.words), raiseload(t.CustomModel.audio))
        if language:
            query = query.where(t.CustomModel.language == language)
        rows = (await self._s.scalars(query.order_by(t.CustomModel.created))).all()
        return [_model(m, children=False) for m in rows]

    async def count(self, owner: str, kind: ModelKind) -> int:
        """How many models of a kind the owner has."""
        return await self._s.scalar(select(func.count()).select_from(t.CustomModel)
                                    .where(t.CustomModel.owner == owner, t.CustomModel.kind == kind))

    async def add(self, model: r.CustomModel) -> None:
        """Record a new model.

        Raises:
            ConflictError: the owner has a model of that kind and name.
        """
        self._s.add(t.CustomModel(**{name: _plain(getattr(model, name))
                                     for name in t.CustomModel.__table__.columns.keys()}))
        try:
            await self._s.flush()
        except IntegrityError:
            raise ConflictError(f"a custom {model.kind} model named {model.name!r} already exists") from None

    async def update(self, custom_id: str, **values: Any) -> None:
        """Set columns of a model (read in this transaction)."""
        row = await self._s.get(t.CustomModel, custom_id)
        for name, value in values.items():
            setattr(row, name, _plain(value))

    async def save(self, custom_id: str, standing: Standing, **values: Any) -> None:
        """Write what the status machine decided (and other columns)."""
        await self.update(custom_id, status=standing.status, base_version=standing.base_version,
                          dirty=standing.dirty, job=standing.job, job_options=standing.job_options,
                          progress=standing.progress, error=standing.error, **values)

    async def delete(self, custom_id: str) -> None:
        """Delete a model; the database cascades to its versions, corpora, words and audio."""
        row = await self._s.get(t.CustomModel, custom_id)
        await self._s.delete(row)

    async def queued(self) -> list[str]:
        """Ids of models with a queued or interrupted job, the longest waiting first."""
        return list((await self._s.scalars(select(t.CustomModel.id).where(t.CustomModel.job.is_not(None))
                                           .order_by(t.CustomModel.updated))).all())

    async def ids(self) -> set[str]:
        """Every model's id."""
        return set((await self._s.scalars(select(t.CustomModel.id))).all())

    async def put_version(self, version: r.CustomVersion) -> str | None:
        """Record a trained version, replacing one on the same base version; return the replaced artifact."""
        row = await self._s.get(t.CustomModel, version.custom_id)
        old = next((v for v in row.versions if v.base_version == version.base_version), None)
        if old is not None:
            row.versions.remove(old)
            await self._s.flush()
        row.versions.append(t.CustomVersion(**{f.name: _plain(getattr(version, f.name))
                                               for f in dataclasses.fields(version)}))
        return None if old is None else old.artifact

    async def clear(self, custom_id: str) -> None:
        """Remove a model's versions, corpora and audio (its words: :meth:`Words.clear`)."""
        row = await self._s.get(t.CustomModel, custom_id)
        row.versions.clear()
        row.corpora.clear()
        row.audio.clear()

    async def trained_versions(self) -> list[tuple[ModelKind, r.CustomVersion]]:
        """Every trained version of every model, with the model's kind."""
        rows = await self._s.execute(select(t.CustomVersion, t.CustomModel.kind).join(t.CustomModel)
                                     .order_by(t.CustomVersion.custom_id, t.CustomVersion.base_version))
        return [(ModelKind(kind), _version(version)) for version, kind in rows.all()]

    async def artifacts(self) -> set[str]:
        """Every trained-model folder a version points at."""
        return set((await self._s.scalars(select(t.CustomVersion.artifact))).all())


class Corpora:
    """Corpora of custom language models."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, custom_id: str, name: str, *, lock: bool = False) -> r.Corpus | None:
        """One corpus, or None."""
        row = await self._s.get(t.Corpus, (custom_id, name), with_for_update=True if lock else None)
        return None if row is None else _corpus(row)

    async def add(self, corpus: r.Corpus) -> None:
        """Record a corpus (replacing one of the same name)."""
        await self.delete(corpus.custom_id, corpus.name)
        self._s.add(t.Corpus(**{f.name: _plain(getattr(corpus, f.name)) for f in dataclasses.fields(corpus)}))

    async def update(self, custom_id: str, name: str, **values: Any) -> None:
        """Set columns of a corpus."""
        row = await self._s.get(t.Corpus, (custom_id, name))
        for key, value in values.items():
            setattr(row, key, _plain(value))

    async def delete(self, custom_id: str, name: str) -> None:
        """Remove a corpus record (missing is fine)."""
        row = await self._s.get(t.Corpus, (custom_id, name))
        if row is not None:
            await self._s.delete(row)
            await self._s.flush()

    async def analysing(self, custom_id: str) -> bool:
        """Whether a corpus of the model is still being analysed."""
        return bool(await self._s.scalar(select(exists().where(
            t.Corpus.custom_id == custom_id, t.Corpus.status == CorpusStatus.BEING_PROCESSED))))

    async def any_analyzed(self, custom_id: str) -> bool:
        """Whether the model has an analysed corpus."""
        return bool(await self._s.scalar(select(exists().where(
            t.Corpus.custom_id == custom_id, t.Corpus.status == CorpusStatus.ANALYZED))))

    async def pending(self) -> list[tuple[str, str]]:
        """``(custom_id, name)`` of corpora not analysed yet."""
        rows = await self._s.execute(select(t.Corpus.custom_id, t.Corpus.name)
                                     .where(t.Corpus.status == CorpusStatus.BEING_PROCESSED))
        return [tuple(row) for row in rows.all()]

    async def paths(self) -> set[str]:
        """Every corpus text a record points at."""
        return set((await self._s.scalars(select(t.Corpus.path))).all())


class Words:
    """Words of custom language models (read and written by their own queries: a model may hold millions)."""

    ORDERS = {"alphabetical": (t.Word.word.asc(),), "+alphabetical": (t.Word.word.asc(),),
              "-alphabetical": (t.Word.word.desc(),), "count": (t.Word.count.desc(), t.Word.word.desc()),
              "-count": (t.Word.count.desc(), t.Word.word.desc()), "+count": (t.Word.count.asc(), t.Word.word.asc())}
    TYPES = ("all", "user", "corpora")

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def _rows(self, custom_id: str, words: list[str]) -> dict[str, t.Word]:
        found: dict[str, t.Word] = {}
        for i in range(0, len(words), WORD_LOOKUP_BATCH):
            rows = await self._s.scalars(select(t.Word).where(t.Word.custom_id == custom_id,
                                                              t.Word.word.in_(words[i:i + WORD_LOOKUP_BATCH])))
            found.update((w.word, w) for w in rows.all())
        return found

    async def get(self, custom_id: str, word: str) -> r.Word | None:
        """One word, or None."""
        row = await self._s.get(t.Word, (custom_id, word))
        return None if row is None else _word(row)

    async def page(self, custom_id: str, *, word_type: str, sort: str, limit: int | None,
                   offset: int) -> list[r.Word]:
        """Words of a type (``all``, ``user``, ``corpora``; checked by the caller), sorted and paged by the
        database."""
        query = select(t.Word).where(t.Word.custom_id == custom_id)
        if word_type == "user":
            query = query.where(_source().contains(f'"{USER}"'))
        elif word_type == "corpora":
            query = query.where(_source().not_in((f'["{USER}"]', "[]")))
        query = query.order_by(*self.ORDERS[sort]).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [_word(w) for w in (await self._s.scalars(query)).all()]

    async def put_user_words(self, custom_id: str, words: Iterable[r.WordSpec]) -> None:
        """Add or replace words the user gives (a word found in corpora keeps those sources)."""
        specs = list(words)
        existing = await self._rows(custom_id, [spec.word for spec in specs])
        for spec in specs:
            row = existing.get(spec.word)
            if row is None:
                row = t.Word(custom_id=custom_id, word=spec.word, source=[], count=0)
                self._s.add(row)
                existing[spec.word] = row
            row.sounds_like = list(spec.sounds_like)
            row.display_as = spec.display_as
            row.source = sorted(set(row.source) | {USER})
            row.error = None
        await self._s.flush()

    async def add_from_corpus(self, custom_id: str, corpus: str, counts: dict[str, int]) -> None:
        """Add a corpus's out-of-vocabulary words with their counts (merged into words already there)."""
        existing = await self._rows(custom_id, list(counts))
        for row in existing.values():
            row.source = sorted(set(row.source) | {corpus})
            row.count = row.count + counts[row.word]
        new = [{"custom_id": custom_id, "word": word, "sounds_like": [], "display_as": None, "source": [corpus],
                "count": count} for word, count in counts.items() if word not in existing]
        for i in range(0, len(new), WORD_BATCH):  # each batch's await lets the event loop serve others
            await self._s.execute(insert(t.Word), new[i:i + WORD_BATCH])

    async def drop_corpus(self, custom_id: str, corpus: str) -> None:
        """Remove the words only this corpus contributed; the few shared with others lose it as a source."""
        await self._s.execute(delete(t.Word).where(t.Word.custom_id == custom_id, _source() == json.dumps([corpus]))
                              .execution_options(synchronize_session=False))
        shared = await self._s.scalars(select(t.Word).where(t.Word.custom_id == custom_id,
                                                            _source().contains(json.dumps(corpus))))
        for word in shared.all():
            if corpus in word.source:
                word.source = [x for x in word.source if x != corpus]

    async def delete(self, custom_id: str, word: str) -> bool:
        """Remove a word; False when there is none."""
        row = await self._s.get(t.Word, (custom_id, word))
        if row is None:
            return False
        await self._s.delete(row)
        await self._s.flush()
        return True

    async def clear(self, custom_id: str) -> None:
        """Remove every word of a model."""
        await self._s.execute(delete(t.Word).where(t.Word.custom_id == custom_id)
                              .execution_options(synchronize_session=False))

    async def any_user_words(self, custom_id: str) -> bool:
        """Whether the user added words to the model."""
        return bool(await self._s.scalar(select(exists().where(t.Word.custom_id == custom_id,
                                                               _source().contains(f'"{USER}"')))))

    async def for_training(self, custom_id: str) -> tuple[r.WordSpec, ...]:
        """The words a training uses as given: the user's, and any with a spoken or written form."""
        shaped = (_source().contains(f'"{USER}"') | t.Word.display_as.is_not(None)
                  | (func.cast(t.Word.sounds_like, String) != "[]"))
        rows = await self._s.scalars(select(t.Word).where(t.Word.custom_id == custom_id, shaped).order_by(t.Word.word))
        return tuple(r.WordSpec(w.word, tuple(w.sounds_like or ()), w.display_as) for w in rows.all()
                     if USER in w.source or w.sounds_like or w.display_as)


class AudioResources:
    """Audio resources of custom acoustic models."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, custom_id: str, name: str) -> r.AudioResource | None:
        """One resource, or None."""
        row = await self._s.get(t.AudioResource, (custom_id, name))
        return None if row is None else _audio(row)

    async def add(self, resource: r.AudioResource) -> None:
        """Record a resource (replacing one of the same name)."""
        await self.delete(resource.custom_id, resource.name)
        self._s.add(t.AudioResource(**{f.name: _plain(getattr(resource, f.name))
                                       for f in dataclasses.fields(resource)}))

    async def update(self, custom_id: str, name: str, **values: Any) -> None:
        """Set columns of a resource."""
        row = await self._s.get(t.AudioResource, (custom_id, name))
        for key, value in values.items():
            setattr(row, key, _plain(value))

    async def delete(self, custom_id: str, name: str) -> None:
        """Remove a resource record (missing is fine)."""
        row = await self._s.get(t.AudioResource, (custom_id, name))
        if row is not None:
            await self._s.delete(row)
            await self._s.flush()

    async def processing(self, custom_id: str) -> bool:
        """Whether a resource of the model is still being processed."""
        return bool(await self._s.scalar(select(exists().where(
            t.AudioResource.custom_id == custom_id, t.AudioResource.status == AudioStatus.BEING_PROCESSED))))

    async def any_ok(self, custom_id: str) -> bool:
        """Whether the model has a valid (processed) resource."""
        return bool(await self._s.scalar(select(exists().where(
            t.AudioResource.custom_id == custom_id, t.AudioResource.status == AudioStatus.OK))))

    async def pending(self) -> list[tuple[str, str]]:
        """``(custom_id, name)`` of resources not processed yet."""
        rows = await self._s.execute(select(t.AudioResource.custom_id, t.AudioResource.name)
                                     .where(t.AudioResource.status == AudioStatus.BEING_PROCESSED))
        return [tuple(row) for row in rows.all()]

    async def stored(self) -> list[tuple[str, str, str]]:
        """``(custom_id, name, path)`` of every resource."""
        rows = await self._s.execute(select(t.AudioResource.custom_id, t.AudioResource.name, t.AudioResource.path))
        return [tuple(row) for row in rows.all()]


class Jobs:
    """Asynchronous recognition jobs."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, job: r.Job) -> None:
        """Record a job."""
        self._s.add(t.Job(**{f.name: _plain(getattr(job, f.name)) for f in dataclasses.fields(job)}))

    async def get(self, job_id: str, *, lock: bool = False) -> r.Job | None:
        """One job, or None."""
        row = await self._s.get(t.Job, job_id, with_for_update=True if lock else None)
        return None if row is None else _job(row)

    async def update(self, job_id: str, **values: Any) -> r.Job:
        """Set columns of a job; return it."""
        row = await self._s.get(t.Job, job_id)
        for key, value in values.items():
            setattr(row, key, _plain(value))
        return _job(row)

    async def delete(self, job_id: str) -> None:
        """Remove a job record."""
        await self._s.delete(await self._s.get(t.Job, job_id))

    async def of(self, owner: str) -> list[r.Job]:
        """The owner's jobs, newest first."""
        rows = await self._s.scalars(select(t.Job).where(t.Job.owner == owner).order_by(t.Job.created.desc()))
        return [_job(j) for j in rows.all()]

    async def unfinished(self) -> list[str]:
        """Ids of jobs waiting or interrupted while processing, oldest first."""
        return list((await self._s.scalars(select(t.Job.id).where(t.Job.status.in_(UNFINISHED_JOBS))
                                           .order_by(t.Job.created))).all())


class Callbacks:
    """Registered callback URLs."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, owner: str, url: str, *, lock: bool = False) -> r.Callback | None:
        """A registered URL of the owner, or None."""
        row = await self._s.get(t.Callback, (owner, url), with_for_update=True if lock else None)
        return None if row is None else _callback(row)

    async def put(self, callback: r.Callback) -> None:
        """Record a URL, or update its secret."""
        row = await self._s.get(t.Callback, (callback.owner, callback.url))
        if row is None:
            self._s.add(t.Callback(owner=callback.owner, url=callback.url, secret=callback.secret,
                                   created=callback.created))
        else:
            row.secret = callback.secret

    async def delete(self, owner: str, url: str) -> None:
        """Forget a URL."""
        await self._s.delete(await self._s.get(t.Callback, (owner, url)))
