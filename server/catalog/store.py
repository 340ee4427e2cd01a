"""Catalog operations: base versions, custom models with their corpora, words and versions, and the
status rules of the Watson customization API (PROTOCOLS.md §1.7, §1.9).

File work (writing an upload, removing folders) runs in a thread, so the event loop every live
stream shares never waits on the disk. Every operation runs in its own transaction and locks the
custom model it changes before it reads it: ``SELECT … FOR UPDATE`` on PostgreSQL, so two replicas sharing a catalog cannot both start a
training; on SQLite, whose ``FOR UPDATE`` is a no-op and whose transactions begin at their first
write, a no-op ``UPDATE`` of the row comes first, which takes the database's write lock — without
it two coroutines could both read the model, then both write (two ``train`` calls both answered
200; a word added while its corpus was analysed broke ``UNIQUE(custom_id, word)``: issue 13).
Errors are :mod:`protocol.errors` exceptions whose status and message the
routes send as they are: 404 for a model of another owner (ownership is not
revealed), 409 while a job runs, 400 for a request the state does not allow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

from sqlalchemy import String, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import raiseload
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.errors import ConflictError, InvalidParameter, LimitExceeded, NotFoundError
from server.catalog.artifacts import DataDir
from server.catalog.db import Database
from server.catalog.lifecycle import adaptation_deadline, transcription_deadline
from server.catalog.resolution import BaseInfo, CustomInfo, newest
from server.catalog.tables import AudioResource, BaseVersion, Callback, Corpus, CustomModel, CustomVersion, Job, Word

log = logging.getLogger("voxgate.catalog")

LANGUAGE = "language"
ACOUSTIC = "acoustic"
MAX_MODELS_PER_OWNER = 1024
MAX_NAME_CHARS = 256
RESERVED_CORPUS_NAMES = frozenset({"user", "base_lm", "default_lm"})
#: words written per statement when a corpus analysis adds its out-of-vocabulary words
WORD_BATCH = 2000
#: statuses in which a job owns the model: no changes, no second job, no delete
BUSY = frozenset({"training", "upgrading"})

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """Naive UTC now (the catalog's time convention)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class InstalledBase:
    """A base version found on disk, to record in the catalog."""

    model: str
    version: str
    locale: str
    rate_hz: int
    created: dt.date
    path: str


@dataclass(frozen=True)
class WordSpec:
    """A word as the user gives it."""

    word: str
    sounds_like: tuple[str, ...] = ()
    display_as: str | None = None


@dataclass(frozen=True)
class TrainingInput:
    """What a training job needs, read in one transaction.

    Attributes:
        corpora, words: a language model's analysed corpora (relative paths) and words.
        audio: an acoustic model's audio files: ``(relative path, content type or None, transcript or None)``.
        helper_lm: an acoustic model's helper language model on the same base version: ``(relative folder,
            customization weight or None)``, or None.
    """

    custom_id: str
    kind: str
    job: str
    base_version: str
    corpora: tuple[str, ...] = ()
    words: tuple[WordSpec, ...] = ()
    audio: tuple[tuple[str, str | None, str | None], ...] = ()
    helper_lm: tuple[str, float | None] | None = None


def _check_name(what: str, name: str) -> None:
    """A resource name: 1-128 characters, printable, no ``/``, no leading ``.``
    (:meth:`server.catalog.artifacts.DataDir.file_name` makes any such name a valid file name).

    Raises:
        InvalidParameter: a name outside those rules, with the rule it breaks.
    """
    if not name or len(name) > 128 or "/" in name or name.startswith("."):
        raise InvalidParameter(f"bad {what} name {name!r}: 1-128 characters, no '/' and no leading '.'")
    if any(not ch.isprintable() for ch in name):
        raise InvalidParameter(f"bad {what} name {name!r}: control characters (NUL included) are not allowed")


class Catalog:
    """The catalog over one database and data directory.

    Args:
        db: the database (migrated).
        data: the data directory.
        clock: naive UTC now; injected so the lifecycle rules can be tested on any date.
    """

    def __init__(self, db: Database, data: DataDir, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.data = data
        self.clock = clock

    def today(self) -> dt.date:
        """The clock's date."""
        return self.clock().date()

    # -- base versions ------------------------------------------------------------------------

    async def sync_base_versions(self, installed: Iterable[InstalledBase]) -> None:
        """Record installed base versions (new ones get their deadlines; known ones their current path)."""
        async with self.db.session() as s, s.begin():
            known = {row.version: row for row in (await s.scalars(select(BaseVersion))).all()}
            for b in installed:
                row = known.get(b.version)
                if row is None:
                    s.add(BaseVersion(version=b.version, model=b.model, locale=b.locale, rate_hz=b.rate_hz,
                                      created=b.created, adaptation_deadline=adaptation_deadline(b.created),
                                      transcription_deadline=transcription_deadline(b.created), path=b.path,
                                      registered=self.clock()))
                elif row.path != b.path:
                    row.path = b.path

    async def base_versions(self) -> list[BaseVersion]:
        """Every recorded base version, oldest first."""
        async with self.db.session() as s:
            return list((await s.scalars(select(BaseVersion).order_by(BaseVersion.model, BaseVersion.created))).all())

    async def base_infos(self) -> list[BaseInfo]:
        """The base versions as the resolver sees them."""
        return [BaseInfo(b.model, b.version, b.created) for b in await self.base_versions()]

    # -- custom models ------------------------------------------------------------------------

    async def create(self, owner: str, kind: str, *, name: str, base_model_name: str, description: str = "",
                     dialect: str | None = None) -> CustomModel:
        """A new custom model on the newest base version of ``base_model_name``.

        Raises:
            InvalidParameter: a bad name or an unknown base model.
            ConflictError: the owner already has a model of that name.
            LimitExceeded: the owner has 1024 models of this kind.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameter("name is required")
        if len(name) > MAX_NAME_CHARS:
            raise InvalidParameter(f"name must be at most {MAX_NAME_CHARS} characters")
        bases = await self.base_versions()
        try:
            base = newest([BaseInfo(b.model, b.version, b.created) for b in bases], base_model_name)
        except NotFoundError:
            raise InvalidParameter(f"base_model_name {base_model_name} is not a known base model; available: "
                                   f"{', '.join(sorted({b.model for b in bases}))}") from None
        locale = next(b.locale for b in bases if b.version == base.version)
        if dialect is not None and dialect != locale:
            raise InvalidParameter(f"dialect {dialect} does not match the base model's language {locale}")
        now = self.clock()
        model = CustomModel(id=str(uuid.uuid4()), kind=kind, owner=owner, name=name, description=description or "",
                            base_model_name=base_model_name, language=locale, dialect=locale,
                            base_version=base.version, status="pending", progress=0, dirty=False,
                            created=now, updated=now)
        async with self.db.session() as s:
            async with s.begin():
                count = await s.scalar(select(func.count()).select_from(CustomModel)
                                       .where(CustomModel.owner == owner, CustomModel.kind == kind))
                if count >= MAX_MODELS_PER_OWNER:
                    raise LimitExceeded(f"an instance may own at most {MAX_MODELS_PER_OWNER} custom {kind} models")
                s.add(model)
                try:
                    await s.flush()
                except IntegrityError:
                    raise ConflictError(f"a custom {kind} model named {name!r} already exists") from None
        return await self.get(owner, kind, model.id)

    async def list(self, owner: str, kind: str, *, language: str | None = None) -> list[CustomModel]:
        """The owner's custom models of a kind, oldest first, without their corpora, words and audio
        (a model may hold millions of words: issue 13, defect 3)."""
        query = select(CustomModel).where(CustomModel.owner == owner, CustomModel.kind == kind).options(
            raiseload(CustomModel.corpora), raiseload(CustomModel.words), raiseload(CustomModel.audio))
        if language:
            query = query.where(CustomModel.language == language)
        async with self.db.session() as s:
            return list((await s.scalars(query.order_by(CustomModel.created))).all())

    async def get(self, owner: str, kind: str, custom_id: str) -> CustomModel:
        """One custom model of the owner, with its corpora and audio but not its words (see :meth:`words`).

        Raises:
            NotFoundError: no such model, or another owner's (indistinguishable on purpose).
        """
        async with self.db.session() as s:
            return await self._get(s, owner, kind, custom_id, without_words=True)

    async def _get(self, s: AsyncSession, owner: str, kind: str, custom_id: str, *,
                   lock: bool = False, versions_only: bool = False, without_words: bool = False) -> CustomModel:
        if lock:
            await self._write_lock(s, custom_id)
        query = select(CustomModel).where(CustomModel.id == custom_id)
        if without_words:
            query = query.options(raiseload(CustomModel.words))
        if versions_only:
            query = query.options(raiseload(CustomModel.corpora), raiseload(CustomModel.words),
                                  raiseload(CustomModel.audio))
        if lock:
            query = query.with_for_update()
        model = await s.scalar(query)
        if model is None or model.owner != owner or model.kind != kind:
            raise NotFoundError(f"Invalid customization_id ({custom_id}): no custom {kind} model with that id "
                                "for these credentials")
        return model

    @staticmethod
    async def _write_lock(s: AsyncSession, custom_id: str) -> None:
        """On SQLite, take the write lock before the transaction's first read (see the module's docstring)."""
        if s.bind.dialect.name == "sqlite":
            await s.execute(update(CustomModel).where(CustomModel.id == custom_id)
                            .values(updated=CustomModel.updated).execution_options(synchronize_session=False))

    async def _locked(self, s: AsyncSession, custom_id: str) -> CustomModel | None:
        """A custom model, whoever owns it, locked for this transaction (background work)."""
        await self._write_lock(s, custom_id)
        return await s.get(CustomModel, custom_id, with_for_update=True)

    async def model_by_id(self, custom_id: str) -> CustomModel | None:
        """A custom model whoever owns it (background work)."""
        async with self.db.session() as s:
            return await s.get(CustomModel, custom_id)

    async def delete(self, owner: str, kind: str, custom_id: str, *, in_use: bool = False) -> None:
        """Delete a custom model and its files.

        Raises:
            NotFoundError: see :meth:`get`.
            ConflictError: a job or a recognition request is using it.
        """
        async with self.db.session() as s, s.begin():
            model = await self._get(s, owner, kind, custom_id, lock=True)
            if model.status in BUSY:
                raise ConflictError(f"Cannot delete custom model {custom_id} while it is {model.status}")
            if in_use:
                raise ConflictError(f"Cannot delete custom model {custom_id} while a recognition request uses it")
            await s.delete(model)
        await asyncio.to_thread(self.data.remove_custom, custom_id)

    async def _modifiable(self, s: AsyncSession, owner: str, kind: str, custom_id: str) -> CustomModel:
        model = await self._get(s, owner, kind, custom_id, lock=True)
        if model.status in BUSY:
            raise ConflictError(f"Another request is in progress for custom model {custom_id} (status "
                                f"{model.status}); try again when it is done")
        return model

    # -- corpora ------------------------------------------------------------------------------

    async def add_corpus(self, owner: str, custom_id: str, name: str, text: bytes, *,
                         allow_overwrite: bool = False) -> None:
        """Store a corpus (analysed afterwards by :meth:`analyse_corpus`; status ``being_processed``).

        Raises:
            InvalidParameter: a reserved or bad name, or an empty body.
            ConflictError: a corpus of that name exists (without ``allow_overwrite``), or a job runs.
        """
        _check_name("corpus", name)
        if name.lower() in RESERVED_CORPUS_NAMES:
            raise InvalidParameter(f"corpus name {name!r} is reserved ({', '.join(sorted(RESERVED_CORPUS_NAMES))})")
        if not text.strip():
            raise InvalidParameter("the corpus is empty")
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, LANGUAGE, custom_id)
            existing = await s.get(Corpus, (custom_id, name))
            if existing is not None and not allow_overwrite:
                raise ConflictError(f"Corpus {name} already exists for custom model {custom_id}; pass "
                                    "allow_overwrite=true to replace it")
            path = self.data.corpus(custom_id, name)
            await asyncio.to_thread(self.data.write_bytes, path, text)
            if existing is not None:
                await self._drop_corpus_words(s, model, name)
                await s.delete(existing)
                await s.flush()
            s.add(Corpus(custom_id=custom_id, name=name, path=path, status="being_processed"))
            await self._changed(s, model, status="pending")

    async def analyse_corpus(self, custom_id: str, name: str, analyse: Callable[[str, str], tuple[int, dict]]) -> None:
        """Analyse a stored corpus: counts and out-of-vocabulary words (which join the words resource).

        Args:
            analyse: ``(text, base_version) -> (total_words, {oov word: count})``; raises ValueError on bad text.
        """
        async with self.db.session() as s:
            corpus = await s.get(Corpus, (custom_id, name))
            model = await s.get(CustomModel, custom_id)
            if corpus is None or model is None:
                return
            path, base_version = corpus.path, model.base_version
        try:
            text = await asyncio.to_thread(lambda: self.data.path(path).read_bytes().decode("utf-8"))
            total, oov = await asyncio.to_thread(analyse, text, base_version)  # large corpora: off the event loop
            error = None
        except UnicodeDecodeError:
            total, oov, error = 0, {}, "the corpus is not UTF-8 text"
        except ValueError as exc:
            total, oov, error = 0, {}, str(exc)
        except Exception as exc:  # noqa: BLE001 - never leave a corpus being_processed forever
            log.exception("analysing corpus %s of %s failed", name, custom_id)
            total, oov, error = 0, {}, f"analysis failed: {type(exc).__name__}"
        try:
            await self._record_analysis(custom_id, name, path, total, oov, error)
        except Exception as exc:  # noqa: BLE001 - a failed write must not leave the corpus being_processed either
            log.exception("recording the analysis of corpus %s of %s failed", name, custom_id)
            await self._record_analysis(custom_id, name, path, 0, {}, f"analysis failed: {type(exc).__name__}")

    async def _record_analysis(self, custom_id: str, name: str, path: str, total: int, oov: dict,
                               error: str | None) -> None:
        async with self.db.session() as s, s.begin():
            model = await self._locked(s, custom_id)
            corpus = await s.get(Corpus, (custom_id, name), with_for_update=True)
            if corpus is None or model is None or corpus.path != path:
                return  # deleted or replaced meanwhile
            corpus.total_words, corpus.out_of_vocabulary_words = total, len(oov)
            corpus.status, corpus.error = ("undetermined", error) if error else ("analyzed", None)
            existing = await self._words_among(s, custom_id, list(oov))
            for row in existing.values():
                row.source = sorted(set(row.source) | {name})
                row.count = row.count + oov[row.word]
            new = [{"custom_id": custom_id, "word": word, "sounds_like": [], "display_as": None, "source": [name],
                    "count": count} for word, count in oov.items() if word not in existing]
            for i in range(0, len(new), WORD_BATCH):  # each batch's await lets the event loop serve others
                await s.execute(insert(Word), new[i:i + WORD_BATCH])
            if model.status == "pending":
                model.status = await self._settled_status(s, model)
            model.updated = self.clock()

    async def pending_corpora(self) -> list[tuple[str, str]]:
        """``(custom_id, name)`` of corpora not analysed yet (after a restart)."""
        async with self.db.session() as s:
            rows = await s.execute(select(Corpus.custom_id, Corpus.name).where(Corpus.status == "being_processed"))
            return [tuple(r) for r in rows.all()]

    async def corpora(self, owner: str, custom_id: str) -> list[Corpus]:
        """The model's corpora."""
        return (await self.get(owner, LANGUAGE, custom_id)).corpora

    async def corpus(self, owner: str, custom_id: str, name: str) -> Corpus:
        """One corpus.

        Raises:
            NotFoundError: no such model or corpus.
        """
        for c in await self.corpora(owner, custom_id):
            if c.name == name:
                return c
        raise NotFoundError(f"Corpus {name} not found for custom model {custom_id}")

    async def delete_corpus(self, owner: str, custom_id: str, name: str) -> None:
        """Remove a corpus and the words only it contributed.

        Raises:
            NotFoundError: no such model or corpus.
            ConflictError: a job runs.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, LANGUAGE, custom_id)
            corpus = await s.get(Corpus, (custom_id, name))
            if corpus is None:
                raise NotFoundError(f"Corpus {name} not found for custom model {custom_id}")
            await self._drop_corpus_words(s, model, name)
            await s.delete(corpus)
            path = corpus.path
            await self._changed(s, model)
        await asyncio.to_thread(self.data.remove, path)

    async def _drop_corpus_words(self, s: AsyncSession, model: CustomModel, corpus: str) -> None:
        # words only this corpus contributed go in one statement; the few shared with others are edited
        source = func.cast(Word.source, String)
        await s.execute(delete(Word).where(Word.custom_id == model.id, source == json.dumps([corpus]))
                        .execution_options(synchronize_session=False))
        shared = await s.scalars(select(Word).where(Word.custom_id == model.id, source.contains(json.dumps(corpus))))
        for word in shared.all():
            if corpus in word.source:
                word.source = [x for x in word.source if x != corpus]

    @staticmethod
    async def _words_among(s: AsyncSession, custom_id: str, words: list[str]) -> dict[str, Word]:
        """The model's rows of these words (queried in batches), by word."""
        found: dict[str, Word] = {}
        for i in range(0, len(words), 500):
            rows = await s.scalars(select(Word).where(Word.custom_id == custom_id, Word.word.in_(words[i:i + 500])))
            found.update((w.word, w) for w in rows.all())
        return found

    @staticmethod
    async def _has_user_words(s: AsyncSession, custom_id: str) -> bool:
        source = func.cast(Word.source, String)
        return bool(await s.scalar(select(exists().where(Word.custom_id == custom_id, source.contains('"user"')))))

    # -- words --------------------------------------------------------------------------------

    async def add_words(self, owner: str, custom_id: str, words: list[WordSpec]) -> None:
        """Add or replace user words (validated by the caller).

        Raises:
            NotFoundError, ConflictError: see :meth:`get` and :meth:`delete`.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, LANGUAGE, custom_id)
            existing = await self._words_among(s, custom_id, [spec.word for spec in words])
            for spec in words:
                row = existing.get(spec.word)
                if row is None:
                    row = Word(custom_id=custom_id, word=spec.word, source=[], count=0)
                    s.add(row)
                    existing[spec.word] = row
                row.sounds_like = list(spec.sounds_like)
                row.display_as = spec.display_as
                row.source = sorted(set(row.source) | {"user"})
                row.error = None
            await s.flush()
            await self._changed(s, model)

    async def words(self, owner: str, custom_id: str, *, word_type: str = "all", sort: str = "alphabetical",
                    limit: int | None = None, offset: int = 0) -> list[Word]:
        """The model's words: ``all``, ``user`` (added by the user) or ``corpora`` (found in corpora), sorted
        and paged by the database (a model may hold millions: issue 13, defect 3).

        Args:
            limit, offset: one page of at most ``limit`` words after skipping ``offset`` (None: all).

        Raises:
            InvalidParameter: an unknown ``word_type`` or ``sort``.
        """
        if word_type not in ("all", "user", "corpora"):
            raise InvalidParameter(f"word_type must be all, user or corpora, not {word_type!r}")
        by_count = (Word.count, Word.word)
        orders = {"alphabetical": (Word.word.asc(),), "+alphabetical": (Word.word.asc(),),
                  "-alphabetical": (Word.word.desc(),), "count": tuple(c.desc() for c in by_count),
                  "-count": tuple(c.desc() for c in by_count), "+count": tuple(c.asc() for c in by_count)}
        if sort not in orders:
            raise InvalidParameter(f"sort must be one of {', '.join(orders)}, not {sort!r}")
        query = select(Word).where(Word.custom_id == custom_id)
        # ``source`` is a JSON list of corpus names and "user" (a reserved corpus name); as text, '"user"'
        # appears in it exactly when the user added the word.
        source = func.cast(Word.source, String)
        if word_type == "user":
            query = query.where(source.contains('"user"'))
        elif word_type == "corpora":
            query = query.where(source.not_in(('["user"]', "[]")))
        query = query.order_by(*orders[sort]).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        async with self.db.session() as s:
            await self._get(s, owner, LANGUAGE, custom_id, versions_only=True)
            return list((await s.scalars(query)).all())

    async def word(self, owner: str, custom_id: str, word: str) -> Word:
        """One word.

        Raises:
            NotFoundError: no such model or word.
        """
        async with self.db.session() as s:
            await self._get(s, owner, LANGUAGE, custom_id, versions_only=True)
            row = await s.get(Word, (custom_id, word))
        if row is None:
            raise NotFoundError(f"Word {word} not found for custom model {custom_id}")
        return row

    async def delete_word(self, owner: str, custom_id: str, word: str) -> None:
        """Remove a word (also one that came from a corpus).

        Raises:
            NotFoundError, ConflictError: as :meth:`word` and :meth:`add_words`.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, LANGUAGE, custom_id)
            row = await s.get(Word, (custom_id, word))
            if row is None:
                raise NotFoundError(f"Word {word} not found for custom model {custom_id}")
            await s.delete(row)
            await s.flush()
            await self._changed(s, model)

    # -- training, reset, upgrade -----------------------------------------------------------

    async def _changed(self, s: AsyncSession, model: CustomModel, *, status: str = "ready") -> None:
        model.dirty = True
        model.updated = self.clock()
        if model.status in ("pending", "ready", "available", "failed"):
            model.status = await self._settled_status(s, model) if status == "ready" else "pending"
        model.error = None

    async def _settled_status(self, s: AsyncSession, model: CustomModel) -> str:
        """``ready`` when the model has valid data and nothing is still being analysed, else ``pending``.

        Watson's ``pending`` also covers "the service is still analysing data that was added": a word
        added while a corpus is analysed must not make the model ready before it.
        """
        resources = model.audio if model.kind == ACOUSTIC else model.corpora
        busy = any(r.status == "being_processed" for r in resources)
        return "ready" if not busy and await self._has_valid_data(s, model) else "pending"

    async def _has_valid_data(self, s: AsyncSession, model: CustomModel) -> bool:
        if model.kind == ACOUSTIC:
            return any(a.status == "ok" for a in model.audio)
        return any(c.status == "analyzed" for c in model.corpora) or await self._has_user_words(s, model.id)

    async def start_training(self, owner: str, custom_id: str, *, customization_weight: float | None,
                             strict: bool) -> list[dict]:
        """Queue training on the model's current base version; return the warnings.

        Raises:
            ConflictError: a job runs, or a corpus is still being analysed.
            InvalidParameter: nothing (new) to train on, invalid resources with ``strict``, or a base
                version closed for training.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, LANGUAGE, custom_id)
            if any(c.status == "being_processed" for c in model.corpora):
                raise ConflictError(f"Corpora of custom model {custom_id} are still being analyzed; train once "
                                    "their status is analyzed")
            base = await s.get(BaseVersion, model.base_version)
            if base is not None and self.today() > base.adaptation_deadline:
                raise InvalidParameter(f"Base model version {base.version} accepted training until "
                                       f"{base.adaptation_deadline.isoformat()}; upgrade the custom model to a "
                                       "newer base version")
            invalid = [c.name for c in model.corpora if c.status == "undetermined"]
            warnings = []
            if invalid:
                message = (f"Analysis of the following corpora has not completed successfully: [{', '.join(invalid)}]."
                           " They will be excluded from custom language model training.")
                if strict:
                    raise InvalidParameter(message + " (strict=true: fix or delete them, or train with strict=false)")
                warnings.append({"code": "invalid_corpora", "message": message})
            if not await self._has_valid_data(s, model):
                raise InvalidParameter(f"No input data available for training custom model {custom_id}: add a "
                                       "corpus or words first")
            trained_here = any(v.base_version == model.base_version for v in model.versions)
            if not model.dirty and trained_here:
                raise InvalidParameter("No input data modified since last training")
            if customization_weight is not None:
                model.customization_weight = customization_weight
            model.status, model.progress, model.error = "training", 0, None
            model.warnings = "; ".join(w["message"] for w in warnings) or None
            model.job, model.job_options = "train", {}
            model.updated = self.clock()
            return warnings

    async def _upgrade_target(self, s: AsyncSession, model: CustomModel, installed: Container[str] | None) -> str:
        """The newest base version of the model's base model, which this server must be able to load.

        Raises:
            InvalidParameter: the newest version is recorded (registered by another process or replica) but not
                installed here: an upgrade accepted now would fail.
        """
        bases = [BaseInfo(b.model, b.version, b.created) for b in
                 (await s.scalars(select(BaseVersion).where(BaseVersion.model == model.base_model_name))).all()]
        target = newest(bases, model.base_model_name).version
        if installed is not None and target not in installed and target != model.base_version:
            raise InvalidParameter(f"Base model version {target} is registered but not installed on this server; "
                                   "upgrade once it is (voxgate models register installs it)")
        return target

    @staticmethod
    def _queue_upgrade(model: CustomModel, target: str, **options) -> None:
        """Start an upgrade job to ``target``; the model's status and dirty flag return when it ends
        (Watson: "the model resumes the status that it had prior to upgrade")."""
        model.job_options = {"from": model.base_version, "prior_status": model.status, "prior_dirty": model.dirty,
                             **options}
        model.status, model.progress, model.error, model.job = "upgrading", 0, None, "upgrade"
        model.base_version = target

    async def start_upgrade(self, owner: str, custom_id: str, *, installed: Container[str] | None = None) -> str:
        """Queue an upgrade to the newest base version; return that version.

        A model never trained has nothing to retrain: it moves to the new version at once, still ``ready``.

        Args:
            installed: the base versions this server can load (None: every recorded one).

        Raises:
            ConflictError: a job runs.
            InvalidParameter: not ready/available, nothing to upgrade, already on the newest version, or the
                newest version not installed here.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, LANGUAGE, custom_id)
            if model.status not in ("ready", "available"):
                raise InvalidParameter(f"Custom model {custom_id} must be ready or available to upgrade; its status "
                                       f"is {model.status}")
            target = await self._upgrade_target(s, model, installed)
            if model.base_version == target:
                raise InvalidParameter(f"Custom model {custom_id} is already on the newest base model version {target}")
            if not await self._has_valid_data(s, model):
                raise InvalidParameter(f"Custom model {custom_id} has no data to upgrade")
            if not model.versions:
                model.base_version, model.updated = target, self.clock()
                return target
            self._queue_upgrade(model, target)
            model.updated = self.clock()
            return target

    async def reset(self, owner: str, custom_id: str, kind: str = LANGUAGE) -> None:
        """Remove corpora, words, audio and trained versions; back to ``pending``.

        Raises:
            NotFoundError, ConflictError: as :meth:`delete`.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, kind, custom_id)
            folders = [v.artifact for v in model.versions] + [c.path for c in model.corpora]
            folders += [a.path for a in model.audio] + [self.data.audio_items(custom_id, a.name) for a in model.audio]
            model.audio.clear()
            model.corpora.clear()
            await s.execute(delete(Word).where(Word.custom_id == custom_id).execution_options(synchronize_session=False))
            model.versions.clear()
            model.status, model.progress, model.error, model.warnings, model.dirty = "pending", 0, None, None, False
            model.updated = self.clock()
        for folder in folders:
            await asyncio.to_thread(self.data.remove, folder)

    async def queued_jobs(self) -> list[str]:
        """Ids of models with a queued or interrupted training job (to run or resume)."""
        async with self.db.session() as s:
            return list((await s.scalars(select(CustomModel.id).where(CustomModel.job.is_not(None))
                                         .order_by(CustomModel.updated))).all())

    async def training_input(self, custom_id: str) -> TrainingInput | None:
        """What the model's queued job trains on (None: no job, or the model is gone)."""
        async with self.db.session() as s:
            model = await s.get(CustomModel, custom_id)
            if model is None or model.job is None:
                return None
            if model.kind == ACOUSTIC:
                audio = []
                for a in model.audio:
                    if a.status != "ok":
                        continue
                    for item in a.items or []:
                        if item.get("path") is None:  # a single file: the upload itself
                            audio.append((a.path, a.content_type, item.get("transcript")))
                        else:
                            audio.append((item["path"], item.get("content_type"), item.get("transcript")))
                helper = None
                helper_id = (model.job_options or {}).get("language_customization_id")
                if helper_id:
                    lm = await s.get(CustomModel, helper_id)
                    version = None if lm is None else next(
                        (v for v in lm.versions if v.base_version == model.base_version), None)
                    if version is not None:
                        helper = (version.artifact, lm.customization_weight)
                return TrainingInput(custom_id, ACOUSTIC, model.job, model.base_version, audio=tuple(audio),
                                     helper_lm=helper)
            corpora = tuple(c.path for c in model.corpora if c.status == "analyzed")
            shaped = (func.cast(Word.source, String).contains('"user"') | Word.display_as.is_not(None)
                      | (func.cast(Word.sounds_like, String) != "[]"))
            rows = await s.scalars(select(Word).where(Word.custom_id == custom_id, shaped).order_by(Word.word))
            words = tuple(WordSpec(w.word, tuple(w.sounds_like or ()), w.display_as) for w in rows.all()
                          if "user" in w.source or w.sounds_like or w.display_as)
            return TrainingInput(custom_id, LANGUAGE, model.job, model.base_version, corpora, words)

    async def finish_job(self, custom_id: str, base_version: str, artifact: str, summary: dict) -> None:
        """Record a trained version (replacing an earlier one on the same base version); status ``available``."""
        stale: list[str] = []
        async with self.db.session() as s, s.begin():
            model = await self._locked(s, custom_id)
            if model is None or model.job is None or model.base_version != base_version:
                stale.append(artifact)  # deleted or reset meanwhile: the new folder is not needed
            else:
                now = self.clock()
                old = next((v for v in model.versions if v.base_version == base_version), None)
                if old is not None:
                    stale.append(old.artifact)
                    model.versions.remove(old)
                    await s.flush()
                model.versions.append(CustomVersion(custom_id=custom_id, base_version=base_version, created=now,
                                                    transcription_deadline=transcription_deadline(now.date()),
                                                    artifact=artifact, summary=summary))
                options = model.job_options or {}
                trained_with = options.get("language_customization_id")
                model.status, model.progress, model.dirty = "available", 100, False
                if model.job == "upgrade" and "prior_status" in options:  # back to the status it had
                    model.status, model.dirty = options["prior_status"], bool(options.get("prior_dirty"))
                model.job = None
                model.job_options = {"language_customization_id": trained_with} if trained_with else None
                model.updated = now
        for folder in stale:
            await asyncio.to_thread(self.data.remove, folder)

    async def fail_job(self, custom_id: str, message: str) -> None:
        """Mark a training failed; a failed upgrade goes back to the version and status it had, usable and
        upgradable again, with the error recorded (the model keeps its earlier versions either way)."""
        async with self.db.session() as s, s.begin():
            model = await self._locked(s, custom_id)
            if model is None:
                return
            options = model.job_options or {}
            if model.job == "upgrade" and "from" in options:
                target = model.base_version
                model.base_version = options["from"]
                model.status = options.get("prior_status") or ("available" if model.versions else "ready")
                model.dirty = bool(options.get("prior_dirty", model.dirty))
                model.error = f"Upgrade to base model version {target} failed: {message}"
                trained_with = options.get("trained_with")
                model.job_options = {"language_customization_id": trained_with} if trained_with else None
                model.progress = 100 if model.versions else 0
            else:
                model.status, model.error, model.job_options, model.progress = "failed", message, None, 0
            model.job, model.updated = None, self.clock()

    # -- recognition ----------------------------------------------------------------------------

    async def custom_for_recognition(self, owner: str, kind: str, custom_id: str) -> tuple[CustomInfo, CustomModel]:
        """A custom model as the resolver sees it, and its row (for artifacts and the saved weight).

        Raises:
            NotFoundError: see :meth:`get`.
        """
        async with self.db.session() as s:
            # on every recognition request: the versions only, not the corpora, words and audio
            model = await self._get(s, owner, kind, custom_id, versions_only=True)
        info = CustomInfo(model.id, kind, model.base_model_name, model.status,
                          {v.base_version: v.created.date() for v in model.versions})
        return info, model

    async def artifact_folders(self) -> set[str]:
        """Every trained-model folder a record points at."""
        async with self.db.session() as s:
            return set((await s.scalars(select(CustomVersion.artifact))).all())

    async def referenced_files(self) -> tuple[set[str], set[str]]:
        """The custom model ids, and every file or folder under ``customizations/`` a record points at
        (trained models, corpora, audio uploads and their extracted folders); for the start-up sweep."""
        async with self.db.session() as s:
            ids = set((await s.scalars(select(CustomModel.id))).all())
            paths = set((await s.scalars(select(CustomVersion.artifact))).all())
            paths |= set((await s.scalars(select(Corpus.path))).all())
            for custom_id, name, path in (await s.execute(select(AudioResource.custom_id, AudioResource.name,
                                                                 AudioResource.path))).all():
                paths |= {path, self.data.audio_items(custom_id, name)}
        return ids, paths

    # -- asynchronous recognition jobs ------------------------------------------------------------

    async def create_job(self, owner: str, params: dict, audio: bytes, user_token: str | None) -> Job:
        """Store a job's audio and record it as ``waiting``."""
        job_id = str(uuid.uuid4())
        path = self.data.job_audio(job_id)
        await asyncio.to_thread(self.data.write_bytes, path, audio)
        now = self.clock()
        job = Job(id=job_id, owner=owner, status="waiting", created=now, updated=now, params=params,
                  audio_path=path, user_token=user_token)
        async with self.db.session() as s, s.begin():
            s.add(job)
        return job

    async def jobs(self, owner: str) -> list[Job]:
        """The owner's jobs, newest first."""
        async with self.db.session() as s:
            return list((await s.scalars(select(Job).where(Job.owner == owner).order_by(Job.created.desc()))).all())

    async def job(self, owner: str, job_id: str) -> Job:
        """One job of the owner.

        Raises:
            NotFoundError: no such job, or another owner's.
        """
        async with self.db.session() as s:
            job = await s.get(Job, job_id)
            if job is None or job.owner != owner:
                raise NotFoundError(f"Invalid job id ({job_id}): no recognition job with that id for these "
                                    "credentials")
            return job

    async def delete_job(self, owner: str, job_id: str) -> None:
        """Delete a job and its audio.

        Raises:
            NotFoundError: see :meth:`job`.
            ConflictError: it is processing.
        """
        async with self.db.session() as s, s.begin():
            job = await s.get(Job, job_id, with_for_update=True)
            if job is None or job.owner != owner:
                raise NotFoundError(f"Invalid job id ({job_id}): no recognition job with that id for these "
                                    "credentials")
            if job.status == "processing":
                raise ConflictError(f"Job {job_id} is processing; delete it once it has completed or failed")
            path = job.audio_path
            await s.delete(job)
        await asyncio.to_thread(self.data.remove, path)

    async def unfinished_jobs(self) -> list[str]:
        """Ids of jobs waiting or interrupted while processing, oldest first."""
        async with self.db.session() as s:
            return list((await s.scalars(select(Job.id).where(Job.status.in_(("waiting", "processing")))
                                         .order_by(Job.created))).all())

    async def update_job(self, job_id: str, *, status: str, results: dict | None = None,
                         error: str | None = None) -> Job | None:
        """Move a job to ``status``; a finished job's audio is removed. None if the job is gone."""
        async with self.db.session() as s, s.begin():
            job = await s.get(Job, job_id, with_for_update=True)
            if job is None:
                return None
            job.status, job.results, job.error, job.updated = status, results, error, self.clock()
            path = job.audio_path if status in ("completed", "failed") else None
            if path:
                job.audio_path = None
        if path:
            await asyncio.to_thread(self.data.remove, path)
        return job

    # -- custom acoustic models: audio resources, training, upgrade ------------------------------

    async def add_audio(self, owner: str, custom_id: str, name: str, data: bytes, *, content_type: str,
                        contained_content_type: str | None, transcript: str | None,
                        allow_overwrite: bool = False) -> None:
        """Store an audio resource (processed afterwards by :meth:`record_audio`; ``being_processed``).

        Raises:
            InvalidParameter: a bad name or an empty body.
            ConflictError: a resource of that name exists (without ``allow_overwrite``), or a job runs.
        """
        _check_name("audio resource", name)
        if len(data) < 100:
            raise InvalidParameter("the audio resource is empty (at least 100 bytes)")
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, ACOUSTIC, custom_id)
            existing = next((a for a in model.audio if a.name == name), None)
            if existing is not None and not allow_overwrite:
                raise ConflictError(f"Audio resource {name} already exists for custom model {custom_id}; pass "
                                    "allow_overwrite=true to replace it")
            path = self.data.audio(custom_id, name)
            if existing is not None:
                model.audio.remove(existing)
                await s.delete(existing)
                await s.flush()
                await asyncio.to_thread(self.data.remove, self.data.audio_items(custom_id, name))
            await asyncio.to_thread(self.data.write_bytes, path, data)
            model.audio.append(AudioResource(custom_id=custom_id, name=name, path=path, content_type=content_type,
                                             contained_content_type=contained_content_type, transcript=transcript,
                                             status="being_processed"))
            await self._changed(s, model, status="pending")

    async def record_audio(self, custom_id: str, name: str, *, duration_s: float = 0.0, details: dict | None = None,
                           items: list | None = None, error: str | None = None) -> bool:
        """Record the outcome of processing a resource (``ok``, or ``invalid`` with ``error``);
        False when the resource (or its model) was deleted meanwhile."""
        async with self.db.session() as s, s.begin():
            model = await self._locked(s, custom_id)
            resource = None if model is None else next((a for a in model.audio if a.name == name), None)
            if resource is None:
                return False
            resource.duration_s, resource.details, resource.items = duration_s, details, items
            resource.status, resource.error = ("invalid", error) if error else ("ok", None)
            if model.status == "pending":
                model.status = await self._settled_status(s, model)
            model.updated = self.clock()
        return True

    async def pending_audio(self) -> list[tuple[str, str]]:
        """``(custom_id, name)`` of audio resources not processed yet (after a restart)."""
        async with self.db.session() as s:
            rows = await s.execute(select(AudioResource.custom_id, AudioResource.name)
                                   .where(AudioResource.status == "being_processed"))
            return [tuple(r) for r in rows.all()]

    async def audio_resource(self, custom_id: str, name: str) -> AudioResource | None:
        """A resource by id and name, whoever owns it (for background processing)."""
        async with self.db.session() as s:
            return await s.get(AudioResource, (custom_id, name))

    async def delete_audio(self, owner: str, custom_id: str, name: str) -> None:
        """Remove an audio resource.

        Raises:
            NotFoundError: no such model or resource.
            ConflictError: a job runs.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, ACOUSTIC, custom_id)
            resource = next((a for a in model.audio if a.name == name), None)
            if resource is None:
                raise NotFoundError(f"Audio resource {name} not found for custom model {custom_id}")
            model.audio.remove(resource)
            await s.delete(resource)
            path = resource.path
            await self._changed(s, model)
        await asyncio.to_thread(self.data.remove, path)
        await asyncio.to_thread(self.data.remove, self.data.audio_items(custom_id, name))

    async def start_acoustic_training(self, owner: str, custom_id: str, *, language_id: str | None, strict: bool,
                                      force: bool = False, min_minutes: float = 0.0) -> list[dict]:
        """Queue training of a custom acoustic model; return the warnings.

        Raises:
            ConflictError: a job runs, or audio is still being processed.
            NotFoundError: an unknown helper language model.
            InvalidParameter: too little valid audio, invalid audio with ``strict``, a helper language model that
                is not trained on the same base version, or nothing changed since the last training.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, ACOUSTIC, custom_id)
            warnings = await self._acoustic_checks(s, owner, model, language_id=language_id, strict=strict,
                                                   min_minutes=min_minutes)
            trained_here = any(v.base_version == model.base_version for v in model.versions)
            same_helper = (model.job_options or {}).get("language_customization_id") == language_id
            if not model.dirty and trained_here and same_helper and not force:
                raise InvalidParameter("No input data modified since last training")
            model.status, model.progress, model.error = "training", 0, None
            model.warnings = "; ".join(w["message"] for w in warnings) or None
            model.job, model.job_options = "train", {"language_customization_id": language_id}
            model.updated = self.clock()
            return warnings

    async def _acoustic_checks(self, s: AsyncSession, owner: str, model: CustomModel, *, language_id: str | None,
                               strict: bool, min_minutes: float) -> list[dict]:
        if any(a.status == "being_processed" for a in model.audio):
            raise ConflictError(f"Audio resources of custom model {model.id} are still being processed; train once "
                                "their status is ok")
        invalid = [a.name for a in model.audio if a.status == "invalid"]
        warnings = []
        if invalid:
            message = (f"Analysis of the following audio resources has not completed successfully: "
                       f"[{', '.join(invalid)}]. They will be excluded from custom acoustic model training.")
            if strict:
                raise InvalidParameter(message + " (strict=true: fix or delete them, or train with strict=false)")
            warnings.append({"code": "invalid_audio_files", "message": message})
        minutes = sum(a.duration_s for a in model.audio if a.status == "ok") / 60
        if minutes < min_minutes or minutes == 0:
            raise InvalidParameter(f"Training needs at least {max(min_minutes, 0.01):g} minutes of valid audio; "
                                   f"custom model {model.id} has {minutes:.2f}")
        base = await s.get(BaseVersion, model.base_version)
        if base is not None and self.today() > base.adaptation_deadline:
            raise InvalidParameter(f"Base model version {base.version} accepted training until "
                                   f"{base.adaptation_deadline.isoformat()}; upgrade the custom model to a "
                                   "newer base version")
        if language_id is not None:
            helper = await self._get(s, owner, LANGUAGE, language_id)
            if helper.base_model_name != model.base_model_name:
                raise InvalidParameter(f"custom language model {language_id} is based on {helper.base_model_name}, "
                                       f"not {model.base_model_name}")
            if not any(v.base_version == model.base_version for v in helper.versions):
                raise InvalidParameter(f"custom language model {language_id} must be available on base model version "
                                       f"{model.base_version} (train or upgrade it first)")
        return warnings

    async def start_acoustic_upgrade(self, owner: str, custom_id: str, *, language_id: str | None,
                                     force: bool, installed: Container[str] | None = None) -> str:
        """Queue an upgrade of a custom acoustic model to the newest base version; return that version.

        Upgrade order (PROTOCOLS.md §1.9): upgrade the helper language model first, then the acoustic
        model; once on the newest version, upgrading again with ``custom_language_model_id`` retrains with
        it (400 ``No input data modified since last training`` unless ``force``).

        An acoustic model trained with a custom language model does not start an upgrade without
        ``custom_language_model_id`` while that language model has no version on the new base (Watson's
        list of reasons an upgrade fails to start).

        Args:
            installed: the base versions this server can load (None: every recorded one).

        Raises:
            ConflictError: a job runs.
            InvalidParameter: not ready/available, the helper on another base version, the helper it was trained
                with not upgraded, the newest version not installed here, or nothing to upgrade.
        """
        async with self.db.session() as s, s.begin():
            model = await self._modifiable(s, owner, ACOUSTIC, custom_id)
            if model.status not in ("ready", "available"):
                raise InvalidParameter(f"Custom model {custom_id} must be ready or available to upgrade; its status "
                                       f"is {model.status}")
            target = await self._upgrade_target(s, model, installed)
            previous = model.base_version
            trained_with = (model.job_options or {}).get("language_customization_id")
            if previous == target:
                if language_id is None:
                    raise InvalidParameter(f"Custom model {custom_id} is already on the newest base model version "
                                           f"{target}")
                if not force and not model.dirty and trained_with == language_id:
                    raise InvalidParameter("No input data modified since last training")
            elif trained_with and language_id is None:
                helper = await s.get(CustomModel, trained_with)
                if helper is not None and not any(v.base_version == target for v in helper.versions):
                    raise InvalidParameter(
                        f"Custom acoustic model {custom_id} was trained with custom language model {trained_with}, "
                        f"which has not been upgraded to {target}: upgrade the language model first, then upgrade "
                        f"this model with custom_language_model_id={trained_with}")
            model.base_version = target
            await self._acoustic_checks(s, owner, model, language_id=language_id, strict=False, min_minutes=0.0)
            model.base_version = previous
            if previous == target:  # a retraining with the helper language model, not an upgrade
                model.status, model.progress, model.error, model.job = "upgrading", 0, None, "upgrade"
                model.job_options = {"from": previous, "language_customization_id": language_id,
                                     "trained_with": trained_with}
            elif not model.versions:  # never trained: nothing to retrain
                model.base_version = target
            else:
                self._queue_upgrade(model, target, language_customization_id=language_id, trained_with=trained_with)
            model.updated = self.clock()
            return target

    async def set_progress(self, custom_id: str, progress: int) -> None:
        """Record a running job's progress (0-100)."""
        async with self.db.session() as s, s.begin():
            model = await self._locked(s, custom_id)
            if model is not None and model.job is not None:
                model.progress = max(0, min(99, progress))

    async def cancel_job(self, owner: str, kind: str, custom_id: str) -> None:
        """Cancel a queued or running job: back to ``available`` (if trained) or ``ready``.

        Raises:
            NotFoundError: see :meth:`get`.
            InvalidParameter: no job runs.
        """
        async with self.db.session() as s, s.begin():
            model = await self._get(s, owner, kind, custom_id, lock=True)
            if model.job is None:
                raise InvalidParameter(f"Custom model {custom_id} has no training in progress (status {model.status})")
            options = model.job_options or {}
            model.status = "available" if model.versions else (
                "ready" if await self._has_valid_data(s, model) else "pending")
            if model.job == "upgrade" and "from" in options:
                model.base_version = options["from"]
                model.status = options.get("prior_status") or model.status
                model.dirty = bool(options.get("prior_dirty", model.dirty))
                trained_with = options.get("trained_with")
                model.job_options = {"language_customization_id": trained_with} if trained_with else None
            model.job, model.progress, model.updated = None, 100 if model.versions else 0, self.clock()

    # -- job callbacks ---------------------------------------------------------------------------

    async def register_callback(self, owner: str, url: str, secret: str | None) -> bool:
        """Record a verified callback URL; False if it was already registered (the secret is updated)."""
        async with self.db.session() as s, s.begin():
            row = await s.get(Callback, (owner, url), with_for_update=True)
            if row is not None:
                row.secret = secret
                return False
            s.add(Callback(owner=owner, url=url, secret=secret, created=self.clock()))
            return True

    async def unregister_callback(self, owner: str, url: str) -> None:
        """Forget a callback URL.

        Raises:
            NotFoundError: not registered by this owner.
        """
        async with self.db.session() as s, s.begin():
            row = await s.get(Callback, (owner, url))
            if row is None:
                raise NotFoundError(f"callback_url {url} is not registered for these credentials")
            await s.delete(row)

    async def callback(self, owner: str, url: str) -> Callback | None:
        """A registered callback URL of the owner."""
        async with self.db.session() as s:
            return await s.get(Callback, (owner, url))
