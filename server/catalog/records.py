"""What the catalog returns: typed, frozen records (never ORM rows), and the values callers hand it.

A record is a snapshot read in one transaction; changing the catalog goes through
:class:`~server.catalog.facade.Catalog`. Relationships are tuples of records. Attribute names are those of
the tables (:mod:`server.catalog.tables`), so code that read rows reads records unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from server.catalog.status import AudioStatus, CorpusStatus, JobKind, JobStatus, ModelKind, ModelStatus, Standing

#: naive UTC now (the catalog's time convention); injected so the lifecycle rules can be tested on any date
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
    kind: ModelKind
    job: JobKind
    base_version: str
    corpora: tuple[str, ...] = ()
    words: tuple[WordSpec, ...] = ()
    audio: tuple[tuple[str, str | None, str | None], ...] = ()
    helper_lm: tuple[str, float | None] | None = None


@dataclass(frozen=True)
class BaseVersion:
    """One version of a base model, with the deadlines computed when it was recorded."""

    version: str
    model: str
    locale: str
    rate_hz: int
    created: dt.date
    adaptation_deadline: dt.date
    transcription_deadline: dt.date
    path: str
    registered: dt.datetime


@dataclass(frozen=True)
class CustomVersion:
    """A custom model trained on one base version; ``artifact`` is relative to the data directory."""

    custom_id: str
    base_version: str
    created: dt.datetime
    transcription_deadline: dt.date
    artifact: str
    summary: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Corpus:
    """A text corpus of a custom language model (the text lives in the data directory at ``path``)."""

    custom_id: str
    name: str
    path: str
    status: CorpusStatus
    total_words: int = 0
    out_of_vocabulary_words: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Word:
    """A word of a custom language model.

    Attributes:
        source: ``user`` and/or the names of the corpora the word came from.
    """

    custom_id: str
    word: str
    sounds_like: tuple[str, ...] = ()
    display_as: str | None = None
    source: tuple[str, ...] = ()
    count: int = 0
    error: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class AudioResource:
    """An audio resource of a custom acoustic model: one audio file, or an archive of them.

    ``details`` is Watson's ``{type, codec, frequency, compression}``; ``items`` lists the files extracted
    for training (relative paths and transcripts) once the resource is processed.
    """

    custom_id: str
    name: str
    path: str
    content_type: str
    status: AudioStatus
    contained_content_type: str | None = None
    transcript: str | None = None
    duration_s: float = 0.0
    details: Mapping[str, Any] | None = None
    items: tuple[Mapping[str, Any], ...] | None = None
    error: str | None = None


@dataclass(frozen=True)
class CustomModel:
    """A custom language or acoustic model of one owner.

    Attributes:
        base_version: the base version modifications and training apply to (the newest after an upgrade).
        job: what a queued job does, or None.
        dirty: data changed since the last training.
        versions: trained versions, by base version.
        corpora, audio: the model's corpora (language) or audio resources (acoustic), by name; empty in a
            record read without them (:meth:`Catalog.list`, recognition). Words are never part of a model
            record (a model may hold millions: issue 13, defect 3): see :meth:`Catalog.words`.
    """

    id: str
    kind: ModelKind
    owner: str
    name: str
    description: str
    base_model_name: str
    language: str
    dialect: str
    base_version: str
    status: ModelStatus
    created: dt.datetime
    updated: dt.datetime
    progress: int = 0
    error: str | None = None
    warnings: str | None = None
    customization_weight: float | None = None
    job: JobKind | None = None
    job_options: Mapping[str, Any] | None = None
    dirty: bool = False
    versions: tuple[CustomVersion, ...] = ()
    corpora: tuple[Corpus, ...] = ()
    audio: tuple[AudioResource, ...] = ()

    @property
    def standing(self) -> Standing:
        """The fields the status machine (:mod:`server.catalog.status`) works on."""
        return Standing(self.status, self.base_version, self.dirty, self.job, self.job_options,
                        trained=bool(self.versions), progress=self.progress, error=self.error)

    def version_on(self, base_version: str) -> CustomVersion | None:
        """The version trained on ``base_version``, or None."""
        return next((v for v in self.versions if v.base_version == base_version), None)

    def resource(self, name: str) -> AudioResource | None:
        """The audio resource of that name, or None."""
        return next((a for a in self.audio if a.name == name), None)


@dataclass(frozen=True)
class Job:
    """An asynchronous recognition job (``/v1/recognitions``)."""

    id: str
    owner: str
    status: JobStatus
    created: dt.datetime
    updated: dt.datetime
    params: Mapping[str, Any]
    audio_path: str | None = None
    user_token: str | None = None
    results: Mapping[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Callback:
    """A callback URL an instance registered (and proved it answers) for job notifications."""

    owner: str
    url: str
    created: dt.datetime
    secret: str | None = None
