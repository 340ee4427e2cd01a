"""The model catalog: base versions, custom models and jobs, persisted with SQLAlchemy (ARCHITECTURE "Catalog and lifecycle").

``lifecycle``     the deadline rules and "newest version", pure functions of dates
``status``        the Watson status machine: StrEnums and pure rules (trainable?, upgrade target, settle, revert)
``records``       the typed, frozen records the catalog returns
``resolution``    which versions a recognition request uses, pure
``tables``        the ORM tables (only ``repositories`` imports them)
``repositories``  one per aggregate, over the tables of one session
``unit_of_work``  one transaction with its repositories; file writes staged, removals after the commit
``operations``    what every group of operations shares (clock, unit of work, ownership, locking, settling)
``acoustic``      the operations on custom acoustic models (audio resources, training, upgrade)
``recognition_jobs``  the operations on recognition jobs and their callback URLs
``facade``        :class:`Catalog`, every operation the routes and services use (language models here)
``db``            engine, sessions and Alembic migrations (SQLite by default, PostgreSQL by URL)
``artifacts``     the data directory: corpora and trained models, written atomically

Callers import what they need from this package, never from ``tables``.
"""

from server.catalog.artifacts import DataDir, default_data_dir
from server.catalog.db import Database, sqlite_url
from server.catalog.facade import (ACOUSTIC, LANGUAGE, MAX_MODELS_PER_OWNER, MAX_NAME_CHARS, RESERVED_CORPUS_NAMES,
                                   Catalog)
from server.catalog.lifecycle import Entry, Kind, State, base_entries, newest_version, transcription_deadline
from server.catalog.records import (AudioResource, BaseVersion, Callback, Clock, Corpus, CustomModel, CustomVersion,
                                    InstalledBase, Job, TrainingInput, Word, WordSpec, utcnow)
from server.catalog.resolution import PREVIOUS_VERSION_WARNING, BaseInfo, CustomInfo, ModelExpired, Resolution, resolve
from server.catalog.status import (BUSY, AudioStatus, CorpusStatus, JobKind, JobStatus, ModelKind, ModelStatus,
                                   Standing)

__all__ = [
    "ACOUSTIC", "BUSY", "LANGUAGE", "MAX_MODELS_PER_OWNER", "MAX_NAME_CHARS", "PREVIOUS_VERSION_WARNING",
    "RESERVED_CORPUS_NAMES",
    "AudioResource", "AudioStatus", "BaseInfo", "BaseVersion", "Callback", "Catalog", "Clock", "Corpus",
    "CorpusStatus", "CustomInfo", "CustomModel", "CustomVersion", "DataDir", "Database", "Entry", "InstalledBase",
    "Job", "JobKind", "JobStatus", "Kind", "ModelExpired", "ModelKind", "ModelStatus", "Resolution", "Standing",
    "State", "TrainingInput", "Word", "WordSpec", "base_entries", "default_data_dir", "newest_version", "resolve",
    "sqlite_url", "transcription_deadline", "utcnow",
]
