"""Amazon Transcribe custom language models (CLMs) over the one catalog: create, describe, list, delete.

A CLM is a custom language model of the catalog like a Watson one (same store, lifecycle and
ownership per credential); this service only speaks to the catalog's public methods:

- ``ModelName`` is the custom model's ``name`` (unique per owner and kind, so a Watson model of the
  same name conflicts too) and a CLM is found by listing the owner's models.
- ``BaseModelName``: ``NarrowBand`` → ``<LanguageCode>_NarrowbandModel``, ``WideBand`` →
  ``<LanguageCode>_BroadbandModel`` (only ``en-US`` is installed; other codes are refused as an
  unknown base model).
- What the catalog has no column for (``LanguageCode``, ``BaseModelName``, ``InputDataConfig``,
  ``Tags``) is kept as JSON in the model's ``description`` (:data:`METADATA_KEY`); a model without it
  was made through Watson and is not listed here (see the README: a CLM is visible through
  Watson's ``/v1/customizations``, a Watson model is not a CLM).

Building (in the background, after ``CreateLanguageModel`` answered ``IN_PROGRESS``): every object
under ``S3Uri`` is streamed into one file (:mod:`server.runtime.s3text`), which is added to the model
as corpora of at most :data:`CORPUS_PIECE_BYTES` each (the catalog takes a corpus as bytes, and the
Watson limit on one corpus is 100 MB; so a 2 GB training set never sits whole in memory here —
pieces are cut at line ends), each analysed in turn; then the tuning text, when given, chooses the
``customization_weight`` (:mod:`server.runtime.transcribe_tuning`, in a worker process), and the
training job is queued with it. Any failure marks the model failed with the reason
(``FailureReason``).

``ModelStatus``: ``COMPLETED`` once a version is trained, ``FAILED`` when the build or the training
failed, ``IN_PROGRESS`` otherwise. ``UpgradeAvailability``: a newer base version of its base model
is installed (the catalog's upgrade target differs from the model's version).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.customlm import analyze_corpus
from protocol.errors import ConflictError, InvalidParameter, NotFoundError, VoxgateError, public_message
from protocol.transcribe_api import (BaseModelName, CreateLanguageModel, InputDataConfig, ListLanguageModels,
                                     ModelStatus, Tag, page_offset, page_token)
from protocol.transcribe_responses import LanguageModelInfo
from server.catalog.resolution import newest
from server.catalog import LANGUAGE, Catalog, CustomModel
from server.runtime import s3text
from server.runtime.models import CustomModels, LoadedModels
from server.runtime.subprocess_job import JobFailed, run_job
from server.runtime.training import Training

log = logging.getLogger("voxgate.transcribe")

#: The key of the Transcribe settings in a CLM's ``description`` JSON.
METADATA_KEY = "amazon_transcribe"
#: Most bytes of one corpus the training text is cut into (the Watson corpus limit).
CORPUS_PIECE_BYTES = 100 * 1024 * 1024
#: Names of the corpora made from the training text: ``s3-training-0000``, ``s3-training-0001``, ...
CORPUS_PREFIX = "s3-training"
#: The weight tuning function, run by name in a worker process.
TUNE_WEIGHT = "server.runtime.transcribe_tuning:tune_weight"

_BASE_SUFFIX = {BaseModelName.NARROW_BAND: "NarrowbandModel", BaseModelName.WIDE_BAND: "BroadbandModel"}


def base_model_for(language_code: str, base: BaseModelName) -> str:
    """The catalog's base model for a Transcribe ``LanguageCode`` and ``BaseModelName``."""
    return f"{language_code}_{_BASE_SUFFIX[base]}"


@dataclass(frozen=True)
class ClmSettings:
    """The Transcribe settings of a CLM, kept in its ``description``."""

    language_code: str
    base_model_name: BaseModelName
    input_data_config: InputDataConfig
    tags: tuple[Tag, ...] = ()

    def serialize(self) -> str:
        """The ``description`` text."""
        return json.dumps({METADATA_KEY: {
            "LanguageCode": self.language_code, "BaseModelName": str(self.base_model_name),
            "InputDataConfig": self.input_data_config.serialize(), "Tags": [t.serialize() for t in self.tags]}})

    @classmethod
    def parse(cls, description: str | None) -> ClmSettings | None:
        """The settings in a ``description``; None for a model that is not a CLM (made through Watson)."""
        try:
            data = json.loads(description or "")[METADATA_KEY]
            config = data["InputDataConfig"]
            return cls(data["LanguageCode"], BaseModelName(data["BaseModelName"]),
                       InputDataConfig(config["S3Uri"], config["DataAccessRoleArn"], config.get("TuningDataS3Uri")),
                       tuple(Tag(t["Key"], t["Value"]) for t in data.get("Tags", [])))
        except (ValueError, TypeError, KeyError):
            return None


def model_status(model: CustomModel) -> ModelStatus:
    """Transcribe's ``ModelStatus`` of a catalog model (see the module docstring)."""
    if model.status == "failed":
        return ModelStatus.FAILED
    if model.versions and model.status not in ("training",):
        return ModelStatus.COMPLETED
    return ModelStatus.IN_PROGRESS


def _aware(moment: dt.datetime) -> dt.datetime:
    """The catalog's naive UTC time as an aware one."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def corpus_pieces(path: Path, *, piece_bytes: int = CORPUS_PIECE_BYTES):
    """The bytes of a UTF-8 text file in pieces of at most ``piece_bytes``, cut after a newline where one is
    in the piece (else at a character boundary), so no piece holds half a line or half a character."""
    with path.open("rb") as fh:
        rest = b""
        while True:
            block = rest + fh.read(piece_bytes - len(rest))
            if not block:
                return
            if len(block) < piece_bytes:  # the end of the file
                yield block
                return
            cut = block.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a piece: cut where a character starts
                cut = len(block) - 1
                while cut > 0 and (block[cut] & 0xC0) == 0x80:  # 10xxxxxx: inside a character
                    cut -= 1
                cut = cut or len(block)
            yield block[:cut]
            rest = block[cut:]


class TranscribeModels:
    """Transcribe's custom language models over the catalog (see the module docstring).

    Args:
        catalog: the one catalog.
        training: queues the training jobs (and gives the base vocabularies for corpus analysis).
        models: the installed base versions.
        custom: the custom models in use by recognitions (a model in use is not deleted).
        s3_client: a boto3 S3 client (:func:`server.runtime.s3text.s3_client`).
    """

    def __init__(self, catalog: Catalog, training: Training, models: LoadedModels, custom: CustomModels,
                 s3_client: Any) -> None:
        self.catalog = catalog
        self.training = training
        self.models = models
        self.custom = custom
        self.s3 = s3_client
        self._builds: dict[str, asyncio.Task] = {}

    # -- the operations -------------------------------------------------------------------------------

    async def create(self, owner: str, request: CreateLanguageModel) -> LanguageModelInfo:
        """``CreateLanguageModel``: the model is recorded now and built in the background.

        Raises:
            ConflictError: the owner has a model of that name (either dialect's).
            InvalidParameter: a base model that is not installed for the language.
            LimitExceeded: the owner's quota of custom models.
        """
        if await self._find(owner, request.model_name) is not None:
            raise ConflictError(f"The requested model name {request.model_name} already exists; use another name "
                                "or delete the existing model")
        settings = ClmSettings(request.language_code, request.base_model_name, request.input_data_config,
                               request.tags)
        base_model = base_model_for(request.language_code, request.base_model_name)
        try:
            model = await self.catalog.create(owner, LANGUAGE, name=request.model_name, base_model_name=base_model,
                                              description=settings.serialize())
        except ConflictError:  # created by a concurrent request since the look-up
            raise ConflictError(f"The requested model name {request.model_name} already exists") from None
        except InvalidParameter:
            raise InvalidParameter(f"There is no {request.base_model_name} base model for {request.language_code} "
                                   f"on this server ({base_model} is not installed)") from None
        task = asyncio.get_running_loop().create_task(self._build(owner, model.id, settings),
                                                      name=f"build CLM {request.model_name}")
        self._builds[model.id] = task
        task.add_done_callback(lambda _t: self._builds.pop(model.id, None))
        return await self._info(model, settings)

    async def describe(self, owner: str, name: str) -> LanguageModelInfo:
        """``DescribeLanguageModel``.

        Raises:
            NotFoundError: no CLM of that name for these credentials.
        """
        model, settings = await self._get(owner, name)
        return await self._info(await self.catalog.get(owner, LANGUAGE, model.id), settings)

    async def list(self, owner: str, request: ListLanguageModels) -> tuple[list[LanguageModelInfo], str | None]:
        """``ListLanguageModels``: newest first, filtered, one page and the token of the next one.

        Raises:
            InvalidParameter: a ``NextToken`` this server did not give out.
        """
        offset = page_offset("offset", request.next_token)
        found = []
        for model in reversed(await self.catalog.list(owner, LANGUAGE)):
            settings = ClmSettings.parse(model.description)
            if settings is not None and request.matches(model.name, model_status(model)):
                found.append((model, settings))
        page = found[offset:offset + request.max_results]
        more = offset + request.max_results < len(found)
        infos = [await self._info(m, s) for m, s in page]
        return infos, page_token("offset", offset + request.max_results) if more else None

    async def delete(self, owner: str, name: str) -> None:
        """``DeleteLanguageModel``: a build in progress stops; the model's files go.

        Raises:
            NotFoundError: no CLM of that name.
            ConflictError: it is training, or a recognition is using it.
        """
        model, _settings = await self._get(owner, name)
        await self.catalog.delete(owner, LANGUAGE, model.id, in_use=self.custom.in_use.get(model.id, 0) > 0)
        build = self._builds.get(model.id)
        if build is not None:
            build.cancel()
            await asyncio.gather(build, return_exceptions=True)

    async def model_id(self, owner: str, name: str) -> str:
        """The catalog id of a CLM (for recognition through the resolver).

        Raises:
            NotFoundError: no CLM of that name.
        """
        model, _settings = await self._get(owner, name)
        return model.id

    async def start(self) -> None:
        """Fail the CLMs whose build a stopped server left unfinished (read from S3 but never queued for
        training): nothing would ever finish them. Those queued for training resume with the training jobs."""
        model_ids, _files = await self.catalog.referenced_files()
        for custom_id in sorted(model_ids):
            model = await self.catalog.model_by_id(custom_id)
            if model is None or ClmSettings.parse(model.description) is None:
                continue
            if model.status in ("pending", "ready") and model.job is None and not model.versions:
                log.warning("CLM %s (%s) was being prepared when the server stopped; marking it failed",
                            model.name, custom_id)
                await self.catalog.fail_job(custom_id, "The server stopped while it prepared the training data; "
                                                       "delete the model and create it again")

    async def close(self) -> None:
        """Stop builds in progress (a restart marks them failed: :meth:`start`)."""
        for task in list(self._builds.values()):
            task.cancel()
        await asyncio.gather(*list(self._builds.values()), return_exceptions=True)

    # -- helpers ------------------------------------------------------------------------------------

    async def _find(self, owner: str, name: str) -> CustomModel | None:
        return next((m for m in await self.catalog.list(owner, LANGUAGE) if m.name == name), None)

    async def _get(self, owner: str, name: str) -> tuple[CustomModel, ClmSettings]:
        model = await self._find(owner, name)
        settings = None if model is None else ClmSettings.parse(model.description)
        if model is None or settings is None:
            raise NotFoundError(f"The requested language model {name} couldn't be found; check its name")
        return model, settings

    async def _info(self, model: CustomModel, settings: ClmSettings) -> LanguageModelInfo:
        status = model_status(model)
        bases = [b for b in await self.catalog.base_infos() if b.version in self.models.versions]
        try:
            upgrade = newest(bases, model.base_model_name).version != model.base_version
        except NotFoundError:
            upgrade = False
        return LanguageModelInfo(model_name=model.name, language_code=settings.language_code,
                                 base_model_name=settings.base_model_name, status=status,
                                 create_time=_aware(model.created), last_modified_time=_aware(model.updated),
                                 input_data_config=settings.input_data_config, upgrade_available=upgrade,
                                 failure_reason=model.error if status is ModelStatus.FAILED else None)

    def _analyse(self, text: str, base_version: str) -> tuple[int, dict]:
        analysis = analyze_corpus(text, self.training.vocabulary(base_version))
        return analysis.total_words, analysis.oov_words

    async def _build(self, owner: str, custom_id: str, settings: ClmSettings) -> None:
        """Read the text from S3, add it as corpora, tune the weight, queue the training (module docstring)."""
        try:
            with tempfile.TemporaryDirectory(dir=self.catalog.data.path("."), prefix=".clm-") as work:
                weight = await self._prepare(owner, custom_id, settings, Path(work))
            await self.catalog.start_training(owner, custom_id, customization_weight=weight, strict=True)
            self.training.train_later(custom_id)
        except asyncio.CancelledError:
            raise
        except NotFoundError:
            return  # deleted meanwhile
        except VoxgateError as exc:
            log.info("building CLM %s failed: %s", custom_id, exc)
            await self.catalog.fail_job(custom_id, public_message(exc))
        except Exception as exc:  # noqa: BLE001 - the model must not stay IN_PROGRESS forever
            log.exception("building CLM %s failed", custom_id)
            await self.catalog.fail_job(custom_id, f"internal error while preparing the training data "
                                                   f"({type(exc).__name__})")

    async def _prepare(self, owner: str, custom_id: str, settings: ClmSettings, work: Path) -> float | None:
        """The corpora added and analysed; the tuned weight (None without tuning data)."""
        config = settings.input_data_config
        training = work / "training.txt"
        await s3text.read_text(self.s3, config.s3_uri, training, limit_bytes=s3text.TRAINING_LIMIT_BYTES)
        names = await self._add_corpora(owner, custom_id, training)
        await asyncio.to_thread(training.unlink)
        corpora = {c.name: c for c in await self.catalog.corpora(owner, custom_id)}
        bad = [f"{n}: {corpora[n].error}" for n in names if corpora[n].status != "analyzed"]
        if bad:
            raise InvalidParameter(f"The training data in {config.s3_uri} could not be used: {'; '.join(bad)}")
        if config.tuning_data_s3_uri is None:
            return None
        tuning = work / "tuning.txt"
        await s3text.read_text(self.s3, config.tuning_data_s3_uri, tuning, limit_bytes=s3text.TUNING_LIMIT_BYTES)
        model = await self.catalog.get(owner, LANGUAGE, custom_id)
        loaded = self.models.versions[model.base_version]
        paths = [str(self.catalog.data.path(corpora[n].path)) for n in names]
        try:
            tuned = await run_job(TUNE_WEIGHT, str(loaded.installed.path), paths, str(tuning), str(work / "lm"))
        except JobFailed as exc:
            raise InvalidParameter(f"The tuning data in {config.tuning_data_s3_uri} could not be used: {exc}") from None
        log.info("CLM %s: customization weight %.3f from %d tuning sentences (perplexity: base LM %s, "
                 "mixture %s, CLM %s)", custom_id, tuned["weight"], tuned["sentences"], tuned["perplexity"]["base"],
                 tuned["perplexity"]["chosen"], tuned["perplexity"]["clm"])
        return tuned["weight"]

    async def _add_corpora(self, owner: str, custom_id: str, training: Path) -> list[str]:
        """Add the training text as corpora of at most :data:`CORPUS_PIECE_BYTES`, each analysed before the next
        is read (so at most one piece is in memory); their names."""
        names: list[str] = []
        pieces = corpus_pieces(training)
        next_piece: Callable[[], bytes | None] = lambda: next(pieces, None)  # noqa: E731
        while (piece := await asyncio.to_thread(next_piece)) is not None:
            if not piece.strip():
                continue
            name = f"{CORPUS_PREFIX}-{len(names):04d}"
            await self.catalog.add_corpus(owner, custom_id, name, piece)
            del piece
            await self.catalog.analyse_corpus(custom_id, name, self._analyse)
            names.append(name)
        if not names:
            raise InvalidParameter("The training data has no text")
        return names
