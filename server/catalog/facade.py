"""The operations the routes and services use: :class:`Catalog`, one unit of work per operation.

Each operation opens a :class:`~server.catalog.unit_of_work.UnitOfWork` (one transaction; its file writes
staged in a thread and published after the commit, its removals run after the commit in a thread), locks
the custom model it changes before it reads it (see :mod:`server.catalog.repositories`), asks
:mod:`server.catalog.status` what follows, and returns records (:mod:`server.catalog.records`).

Errors are :mod:`protocol.errors` exceptions whose status and message the routes send as they are: 404 for
a model of another owner (ownership is not revealed), 409 while a job runs, 400 for a request the state
does not allow.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Container, Iterable

from protocol.errors import ConflictError, InvalidParameter, LimitExceeded, NotFoundError
from server.catalog import status as st
from server.catalog.acoustic import MIN_AUDIO_BYTES, AcousticOperations
from server.catalog.lifecycle import transcription_deadline
from server.catalog.operations import ACOUSTIC, LANGUAGE, check_name, invalid_warning
from server.catalog.records import (BaseVersion, Corpus, CustomModel, CustomVersion, InstalledBase, TrainingInput,
                                    Word, WordSpec)
from server.catalog.recognition_jobs import RecognitionJobs
from server.catalog.resolution import BaseInfo, CustomInfo, newest
from server.catalog.status import AudioStatus, CorpusStatus, ModelKind, ModelStatus
from server.catalog.unit_of_work import UnitOfWork

log = logging.getLogger("voxgate.catalog")

__all__ = ["ACOUSTIC", "LANGUAGE", "MAX_MODELS_PER_OWNER", "MAX_NAME_CHARS", "MIN_AUDIO_BYTES", "RESERVED_CORPUS_NAMES",
           "Catalog"]

MAX_MODELS_PER_OWNER = 1024
MAX_NAME_CHARS = 256
RESERVED_CORPUS_NAMES = frozenset({"user", "base_lm", "default_lm"})


class Catalog(AcousticOperations, RecognitionJobs):
    """The catalog over one database and data directory: base versions, custom language models with their
    corpora, words and trained versions, the jobs that train them, and (inherited) custom acoustic models
    (:class:`~server.catalog.acoustic.AcousticOperations`) and recognition jobs
    (:class:`~server.catalog.recognition_jobs.RecognitionJobs`).

    Args:
        db: the database (migrated).
        data: the data directory.
        clock: naive UTC now; injected so the lifecycle rules can be tested on any date.
    """

    # -- base versions ------------------------------------------------------------------------

    async def sync_base_versions(self, installed: Iterable[InstalledBase]) -> None:
        """Record installed base versions (new ones get their deadlines; known ones their current path)."""
        async with self._work() as uow:
            await uow.base_versions.sync(installed, self.clock())

    async def base_versions(self) -> list[BaseVersion]:
        """Every recorded base version, oldest first."""
        async with self._work() as uow:
            return await uow.base_versions.all()

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
        kind = ModelKind(kind)
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
                            base_version=base.version, status=ModelStatus.PENDING, created=now, updated=now)
        async with self._work() as uow:
            if await uow.models.count(owner, kind) >= MAX_MODELS_PER_OWNER:
                raise LimitExceeded(f"an instance may own at most {MAX_MODELS_PER_OWNER} custom {kind} models")
            await uow.models.add(model)
        return await self.get(owner, kind, model.id)

    async def list(self, owner: str, kind: str, *, language: str | None = None) -> list[CustomModel]:
        """The owner's custom models of a kind, oldest first, without their corpora and audio (and never
        their words: a model may hold millions, issue 13, defect 3)."""
        async with self._work() as uow:
            return await uow.models.list(owner, ModelKind(kind), language=language)

    async def get(self, owner: str, kind: str, custom_id: str) -> CustomModel:
        """One custom model of the owner, with its corpora and audio but not its words (see :meth:`words`).

        Raises:
            NotFoundError: no such model, or another owner's (indistinguishable on purpose).
        """
        async with self._work() as uow:
            return await self._owned(uow, owner, kind, custom_id)

    async def model_by_id(self, custom_id: str) -> CustomModel | None:
        """A custom model whoever owns it, with its corpora and audio (background work)."""
        async with self._work() as uow:
            return await uow.models.get(custom_id)

    async def delete(self, owner: str, kind: str, custom_id: str, *, in_use: bool = False) -> None:
        """Delete a custom model and its files.

        Raises:
            NotFoundError: see :meth:`get`.
            ConflictError: a job or a recognition request is using it.
        """
        async with self._work() as uow:
            model = await self._owned(uow, owner, kind, custom_id, lock=True)
            st.check_deletable(custom_id, model.status, in_use=in_use)
            await uow.models.delete(custom_id)
            uow.remove_custom_after_commit(custom_id)

    # -- corpora ------------------------------------------------------------------------------

    async def add_corpus(self, owner: str, custom_id: str, name: str, text: bytes, *,
                         allow_overwrite: bool = False) -> None:
        """Store a corpus (analysed afterwards by :meth:`analyse_corpus`; status ``being_processed``).

        Raises:
            InvalidParameter: a reserved or bad name, or an empty body.
            ConflictError: a corpus of that name exists (without ``allow_overwrite``), or a job runs.
        """
        check_name("corpus", name)
        if name.lower() in RESERVED_CORPUS_NAMES:
            raise InvalidParameter(f"corpus name {name!r} is reserved ({', '.join(sorted(RESERVED_CORPUS_NAMES))})")
        if not text.strip():
            raise InvalidParameter("the corpus is empty")
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, LANGUAGE, custom_id)
            existing = await uow.corpora.get(custom_id, name)
            if existing is not None and not allow_overwrite:
                raise ConflictError(f"Corpus {name} already exists for custom model {custom_id}; pass "
                                    "allow_overwrite=true to replace it")
            path = self.data.corpus(custom_id, name)
            await uow.write_file(path, text)
            if existing is not None:
                await uow.words.drop_corpus(custom_id, name)
            await uow.corpora.add(Corpus(custom_id, name, path, CorpusStatus.BEING_PROCESSED))
            await self._data_changed(uow, model)

    async def analyse_corpus(self, custom_id: str, name: str, analyse: Callable[[str, str], tuple[int, dict]]) -> None:
        """Analyse a stored corpus: counts and out-of-vocabulary words (which join the words resource).

        Args:
            analyse: ``(text, base_version) -> (total_words, {oov word: count})``; raises ValueError on bad text.
        """
        async with self._work() as uow:
            corpus = await uow.corpora.get(custom_id, name)
            model = await uow.models.get(custom_id, children=False)
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
        async with self._work() as uow:
            model = await uow.models.get(custom_id, lock=True, children=False)
            corpus = await uow.corpora.get(custom_id, name, lock=True)
            if corpus is None or model is None or corpus.path != path:
                return  # deleted or replaced meanwhile
            status = CorpusStatus.UNDETERMINED if error else CorpusStatus.ANALYZED
            await uow.corpora.update(custom_id, name, total_words=total, out_of_vocabulary_words=len(oov),
                                     status=status, error=error)
            await uow.words.add_from_corpus(custom_id, name, oov)
            status = st.after_analysis(model.status, await self._settled(uow, model))
            await uow.models.update(custom_id, status=status, updated=self.clock())

    async def pending_corpora(self) -> list[tuple[str, str]]:
        """``(custom_id, name)`` of corpora not analysed yet (after a restart)."""
        async with self._work() as uow:
            return await uow.corpora.pending()

    async def corpora(self, owner: str, custom_id: str) -> list[Corpus]:
        """The model's corpora."""
        return list((await self.get(owner, LANGUAGE, custom_id)).corpora)

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
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, LANGUAGE, custom_id)
            corpus = await uow.corpora.get(custom_id, name)
            if corpus is None:
                raise NotFoundError(f"Corpus {name} not found for custom model {custom_id}")
            await uow.words.drop_corpus(custom_id, name)
            await uow.corpora.delete(custom_id, name)
            await self._data_changed(uow, model)
            uow.remove_after_commit(corpus.path)

    # -- words --------------------------------------------------------------------------------

    async def add_words(self, owner: str, custom_id: str, words: list[WordSpec]) -> None:
        """Add or replace user words (validated by the caller).

        Raises:
            NotFoundError, ConflictError: see :meth:`get` and :meth:`delete`.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, LANGUAGE, custom_id)
            await uow.words.put_user_words(custom_id, words)
            await self._data_changed(uow, model)

    async def words(self, owner: str, custom_id: str, *, word_type: str = "all", sort: str = "alphabetical",
                    limit: int | None = None, offset: int = 0) -> list[Word]:
        """The model's words: ``all``, ``user`` (added by the user) or ``corpora`` (found in corpora), sorted
        and paged by the database (a model may hold millions: issue 13, defect 3).

        Args:
            limit, offset: one page of at most ``limit`` words after skipping ``offset`` (None: all).

        Raises:
            InvalidParameter: an unknown ``word_type`` or ``sort``.
        """
        async with self._work() as uow:
            if word_type not in uow.words.TYPES:
                raise InvalidParameter(f"word_type must be all, user or corpora, not {word_type!r}")
            if sort not in uow.words.ORDERS:
                raise InvalidParameter(f"sort must be one of {', '.join(uow.words.ORDERS)}, not {sort!r}")
            await self._owned(uow, owner, LANGUAGE, custom_id, children=False)
            return await uow.words.page(custom_id, word_type=word_type, sort=sort, limit=limit, offset=offset)

    async def word(self, owner: str, custom_id: str, word: str) -> Word:
        """One word.

        Raises:
            NotFoundError: no such model or word.
        """
        async with self._work() as uow:
            await self._owned(uow, owner, LANGUAGE, custom_id, children=False)
            found = await uow.words.get(custom_id, word)
        if found is None:
            raise NotFoundError(f"Word {word} not found for custom model {custom_id}")
        return found

    async def delete_word(self, owner: str, custom_id: str, word: str) -> None:
        """Remove a word (also one that came from a corpus).

        Raises:
            NotFoundError, ConflictError: as :meth:`word` and :meth:`add_words`.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, LANGUAGE, custom_id)
            if not await uow.words.delete(custom_id, word):
                raise NotFoundError(f"Word {word} not found for custom model {custom_id}")
            await self._data_changed(uow, model)

    # -- training, reset, upgrade -----------------------------------------------------------

    async def start_training(self, owner: str, custom_id: str, *, customization_weight: float | None,
                             strict: bool) -> list[dict]:
        """Queue training on the model's current base version; return the warnings.

        Raises:
            ConflictError: a job runs, or a corpus is still being analysed.
            InvalidParameter: nothing (new) to train on, invalid resources with ``strict``, or a base
                version closed for training.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, LANGUAGE, custom_id)
            if any(c.status is CorpusStatus.BEING_PROCESSED for c in model.corpora):
                raise ConflictError(f"Corpora of custom model {custom_id} are still being analyzed; train once "
                                    "their status is analyzed")
            await self._check_training_open(uow, model.base_version)
            warnings = invalid_warning("corpora", [c.name for c in model.corpora
                                                    if c.status is CorpusStatus.UNDETERMINED], strict=strict)
            if not await self._has_valid_data(uow, model):
                raise InvalidParameter(f"No input data available for training custom model {custom_id}: add a "
                                       "corpus or words first")
            st.check_trainable(dirty=model.dirty, trained_here=model.version_on(model.base_version) is not None)
            weight = {} if customization_weight is None else {"customization_weight": customization_weight}
            await uow.models.save(custom_id, st.start_training(model.standing), updated=self.clock(),
                                  warnings="; ".join(w["message"] for w in warnings) or None, **weight)
            return warnings

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
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, LANGUAGE, custom_id)
            st.check_upgradable(custom_id, model.status)
            target = await self._upgrade_target(uow, model, installed)
            if model.base_version == target:
                raise InvalidParameter(f"Custom model {custom_id} is already on the newest base model version {target}")
            if not await self._has_valid_data(uow, model):
                raise InvalidParameter(f"Custom model {custom_id} has no data to upgrade")
            if not model.versions:
                await uow.models.update(custom_id, base_version=target, updated=self.clock())
            else:
                await uow.models.save(custom_id, st.start_upgrade(model.standing, target), updated=self.clock())
            return target

    async def reset(self, owner: str, custom_id: str, kind: str = LANGUAGE) -> None:
        """Remove corpora, words, audio and trained versions; back to ``pending``.

        Raises:
            NotFoundError, ConflictError: as :meth:`delete`.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, kind, custom_id)
            stored = [v.artifact for v in model.versions] + [c.path for c in model.corpora]
            stored += [a.path for a in model.audio] + [self.data.audio_items(custom_id, a.name) for a in model.audio]
            for path in stored:
                uow.remove_after_commit(path)
            await uow.models.clear(custom_id)
            await uow.words.clear(custom_id)
            await uow.models.update(custom_id, status=ModelStatus.PENDING, progress=0, error=None, warnings=None,
                                    dirty=False, updated=self.clock())

    async def queued_jobs(self) -> list[str]:
        """Ids of models with a queued or interrupted training job (to run or resume)."""
        async with self._work() as uow:
            return await uow.models.queued()

    async def training_input(self, custom_id: str) -> TrainingInput | None:
        """What the model's queued job trains on (None: no job, or the model is gone)."""
        async with self._work() as uow:
            model = await uow.models.get(custom_id)
            if model is None or model.job is None:
                return None
            if model.kind is ACOUSTIC:
                return await self._acoustic_input(uow, model)
            corpora = tuple(c.path for c in model.corpora if c.status is CorpusStatus.ANALYZED)
            words = await uow.words.for_training(custom_id)
            return TrainingInput(custom_id, LANGUAGE, model.job, model.base_version, corpora, words)

    @staticmethod
    async def _acoustic_input(uow: UnitOfWork, model: CustomModel) -> TrainingInput:
        audio = []
        for a in model.audio:
            if a.status is not AudioStatus.OK:
                continue
            for item in a.items or ():
                if item.get("path") is None:  # a single file: the upload itself
                    audio.append((a.path, a.content_type, item.get("transcript")))
                else:
                    audio.append((item["path"], item.get("content_type"), item.get("transcript")))
        helper = None
        helper_id = (model.job_options or {}).get("language_customization_id")
        if helper_id:
            lm = await uow.models.get(helper_id, children=False)
            version = None if lm is None else lm.version_on(model.base_version)
            if version is not None:
                helper = (version.artifact, lm.customization_weight)
        return TrainingInput(model.id, ACOUSTIC, model.job, model.base_version, audio=tuple(audio), helper_lm=helper)

    async def finish_job(self, custom_id: str, base_version: str, artifact: str, summary: dict) -> None:
        """Record a trained version (replacing an earlier one on the same base version); status ``available``
        (or, after an upgrade, the status it had)."""
        async with self._work() as uow:
            model = await uow.models.get(custom_id, lock=True, children=False)
            if model is None or model.job is None or model.base_version != base_version:
                uow.remove_after_commit(artifact)  # deleted or reset meanwhile: the new folder is not needed
                return
            now = self.clock()
            version = CustomVersion(custom_id, base_version, now, transcription_deadline(now.date()), artifact, summary)
            replaced = await uow.models.put_version(version)
            uow.remove_after_commit(replaced)
            await uow.models.save(custom_id, st.finish(model.standing), updated=now)

    async def fail_job(self, custom_id: str, message: str) -> None:
        """Mark a training failed; a failed upgrade goes back to the version and status it had, usable and
        upgradable again, with the error recorded (the model keeps its earlier versions either way)."""
        async with self._work() as uow:
            model = await uow.models.get(custom_id, lock=True, children=False)
            if model is not None:
                await uow.models.save(custom_id, st.fail(model.standing, message), updated=self.clock())

    async def set_progress(self, custom_id: str, progress: int) -> None:
        """Record a running job's progress (0-100)."""
        async with self._work() as uow:
            model = await uow.models.get(custom_id, lock=True, children=False)
            if model is not None and model.job is not None:
                await uow.models.update(custom_id, progress=max(0, min(99, progress)))

    async def cancel_job(self, owner: str, kind: str, custom_id: str) -> None:
        """Cancel a queued or running job: back to ``available`` (if trained) or ``ready``; a cancelled upgrade
        to the version and status it had.

        Raises:
            NotFoundError: see :meth:`get`.
            InvalidParameter: no job runs.
        """
        async with self._work() as uow:
            model = await self._owned(uow, owner, kind, custom_id, lock=True)
            standing = st.cancel(model.standing, custom_id, has_valid_data=await self._has_valid_data(uow, model))
            await uow.models.save(custom_id, standing, updated=self.clock())

    # -- recognition ----------------------------------------------------------------------------

    async def custom_for_recognition(self, owner: str, kind: str, custom_id: str) -> tuple[CustomInfo, CustomModel]:
        """A custom model as the resolver sees it, and its record (for artifacts and the saved weight).

        Raises:
            NotFoundError: see :meth:`get`.
        """
        async with self._work() as uow:
            # on every recognition request: the versions only, not the corpora, words and audio
            model = await self._owned(uow, owner, kind, custom_id, children=False)
        info = CustomInfo(model.id, kind, model.base_model_name, model.status,
                          {v.base_version: v.created.date() for v in model.versions})
        return info, model

    async def trained_versions(self) -> list[tuple[ModelKind, CustomVersion]]:
        """Every trained version of every custom model, with the model's kind (``voxgate models lifecycle``)."""
        async with self._work() as uow:
            return await uow.models.trained_versions()

    async def artifact_folders(self) -> set[str]:
        """Every trained-model folder a record points at."""
        async with self._work() as uow:
            return await uow.models.artifacts()

    async def referenced_files(self) -> tuple[set[str], set[str]]:
        """The custom model ids, and every file or folder under ``customizations/`` a record points at
        (trained models, corpora, audio uploads and their extracted folders); for the start-up sweep."""
        async with self._work() as uow:
            ids = await uow.models.ids()
            paths = await uow.models.artifacts() | await uow.corpora.paths()
            for custom_id, name, path in await uow.audio.stored():
                paths |= {path, self.data.audio_items(custom_id, name)}
        return ids, paths
