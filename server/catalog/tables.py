"""ORM tables of the catalog (SQLAlchemy 2 declarative). Schema changes go through an Alembic migration.

Times are naive UTC datetimes (SQLite keeps no zone); dates are calendar dates.
Every deadline is computed by :mod:`server.catalog.lifecycle` when a record is
made and stored on it, as the lifecycle rules ask.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Metadata of every catalog table."""


class BaseVersion(Base):
    """One version of a base model (shipped under ``models/`` or registered into the data directory)."""

    __tablename__ = "base_versions"

    version: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    locale: Mapped[str] = mapped_column(String(32))
    rate_hz: Mapped[int] = mapped_column(Integer)
    created: Mapped[dt.date] = mapped_column(Date)
    adaptation_deadline: Mapped[dt.date] = mapped_column(Date)
    transcription_deadline: Mapped[dt.date] = mapped_column(Date)
    path: Mapped[str] = mapped_column(Text)
    registered: Mapped[dt.datetime] = mapped_column(DateTime)


class CustomModel(Base):
    """A custom language (or acoustic) model of one owner, bound to a base model."""

    __tablename__ = "custom_models"
    __table_args__ = (UniqueConstraint("owner", "kind", "name", name="uq_custom_models_owner_kind_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    base_model_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(32))
    dialect: Mapped[str] = mapped_column(String(32))
    #: the base version that modifications and training apply to (the newest after an upgrade)
    base_version: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[str | None] = mapped_column(Text, nullable=True)
    customization_weight: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: what a queued train/upgrade job does: ``train`` or ``upgrade`` (None: no job)
    job: Mapped[str | None] = mapped_column(String(16), nullable=True)
    job_options: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: data changed since the last training (so a new training has something to learn)
    dirty: Mapped[bool] = mapped_column(default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    updated: Mapped[dt.datetime] = mapped_column(DateTime)

    versions: Mapped[list[CustomVersion]] = relationship(back_populates="custom", cascade="all, delete-orphan",
                                                         order_by="CustomVersion.base_version", lazy="selectin")
    corpora: Mapped[list[Corpus]] = relationship(cascade="all, delete-orphan", order_by="Corpus.name",
                                                 lazy="selectin")
    #: never loaded with the model (a model may hold millions of words: issue 13, defect 3); the store
    #: reads and writes words by their own queries, and the database's ON DELETE CASCADE removes them
    words: Mapped[list[Word]] = relationship(cascade="all, delete-orphan", order_by="Word.word", lazy="raise",
                                             passive_deletes=True)
    audio: Mapped[list[AudioResource]] = relationship(cascade="all, delete-orphan", order_by="AudioResource.name",
                                                      lazy="selectin")


class CustomVersion(Base):
    """A custom model trained on one base version; its artifact folder is relative to the data directory."""

    __tablename__ = "custom_versions"

    custom_id: Mapped[str] = mapped_column(ForeignKey("custom_models.id", ondelete="CASCADE"), primary_key=True)
    base_version: Mapped[str] = mapped_column(String(200), primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    transcription_deadline: Mapped[dt.date] = mapped_column(Date)
    artifact: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    custom: Mapped[CustomModel] = relationship(back_populates="versions")


class Corpus(Base):
    """A text corpus of a custom language model (the text lives in the data directory)."""

    __tablename__ = "corpora"

    custom_id: Mapped[str] = mapped_column(ForeignKey("custom_models.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    total_words: Mapped[int] = mapped_column(Integer, default=0)
    out_of_vocabulary_words: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Word(Base):
    """A word of a custom language model: added by the user, or found out of vocabulary in a corpus."""

    __tablename__ = "words"

    custom_id: Mapped[str] = mapped_column(ForeignKey("custom_models.id", ondelete="CASCADE"), primary_key=True)
    word: Mapped[str] = mapped_column(String(256), primary_key=True)
    sounds_like: Mapped[list] = mapped_column(JSON, default=list)
    display_as: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: ``user`` and/or the names of the corpora the word came from
    source: Mapped[list] = mapped_column(JSON, default=list)
    count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[list | None] = mapped_column(JSON, nullable=True)


class Job(Base):
    """An asynchronous recognition job (``/v1/recognitions``)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    updated: Mapped[dt.datetime] = mapped_column(DateTime)
    params: Mapped[dict] = mapped_column(JSON)
    audio_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_token: Mapped[str | None] = mapped_column(String(256), nullable=True)
    results: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AudioResource(Base):
    """An audio resource of a custom acoustic model: one audio file, or an archive of them.

    ``details`` is Watson's ``{type, codec, frequency, compression}``; ``items`` lists the files
    extracted for training (relative paths and transcripts) once the resource is processed.
    """

    __tablename__ = "audio_resources"

    custom_id: Mapped[str] = mapped_column(ForeignKey("custom_models.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(128))
    contained_content_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    transcript: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    items: Mapped[list | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Callback(Base):
    """A callback URL an instance registered (and proved it answers) for job notifications."""

    __tablename__ = "callbacks"

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    secret: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
