"""Model lifecycle rules (ARCHITECTURE "Catalog and lifecycle", PROTOCOLS.md §3): pure functions of dates.

Quarters end on Jan 15, Apr 15, Jul 15 and Oct 15; ``Q(d)`` is the first
quarter end on or after ``d``. A base-model version may be adapted (custom
models trained on it) until ``Q(created) + 1 year`` and used for recognition
until ``Q(created) + 2 years``; a custom model may be used until
``Q(created) + 2 years``. Deadlines are inclusive. The newest base version of
a locale and rate never stops serving: past its deadline it is the fallback
of last resort (with a warning), so a server nobody updated does not go deaf.

Nothing here reads a clock: every function takes the date it is asked about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from engine.versions import release_order

QUARTER_ENDS = ((1, 15), (4, 15), (7, 15), (10, 15))


def quarter_end(day: dt.date) -> dt.date:
    """``Q(d)``: the first quarter end (Jan 15, Apr 15, Jul 15, Oct 15) on or after ``day``."""
    for month, dom in QUARTER_ENDS:
        end = dt.date(day.year, month, dom)
        if end >= day:
            return end
    return dt.date(day.year + 1, 1, 15)


def _plus_years(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year + years)  # quarter ends are never Feb 29


class Dated(Protocol):
    """Anything with a version id and the date it was created (a base version, a trained custom version)."""

    @property
    def version(self) -> str: ...

    @property
    def created(self) -> dt.date: ...


D = TypeVar("D", bound=Dated)


def newest_version(versions: Iterable[D]) -> D:
    """The newest of some versions: the last in :func:`engine.versions.release_order` (the latest
    ``created``, ties broken by the greater version id), the one order every layer sorts versions by.

    Raises:
        ValueError: ``versions`` is empty.
    """
    return max(versions, key=lambda v: release_order(v.created, v.version))


def adaptation_deadline(created: dt.date) -> dt.date:
    """Last day custom models may be trained on a base version created on ``created``."""
    return _plus_years(quarter_end(created), 1)


def transcription_deadline(created: dt.date) -> dt.date:
    """Last day a base version or custom model created on ``created`` may be used for recognition."""
    return _plus_years(quarter_end(created), 2)


class Kind(Enum):
    """What a catalog entry is."""

    BASE = "base"
    LANGUAGE = "language"
    ACOUSTIC = "acoustic"


class State(Enum):
    """What an entry may do on a given day."""

    USABLE = "usable"
    TRAINING_CLOSED = "training closed"
    EXPIRED_FALLS_BACK = "expired: falls back to the newest base version"
    PAST_DEADLINE_STILL_SERVING = "past its deadline: still serving as the newest base version"


@dataclass(frozen=True)
class Entry:
    """One model version in the catalog, with its computed deadlines.

    Attributes:
        model: the model's name (base model name or custom model id).
        version: the version id.
        kind: base, language or acoustic.
        created: creation date.
        newest_base: for a base version, whether it is the newest of its locale and rate.
    """

    model: str
    version: str
    kind: Kind
    created: dt.date
    newest_base: bool = False

    @property
    def adaptation_deadline(self) -> dt.date | None:
        """For a base version, the last day it can be adapted; None for custom models."""
        return adaptation_deadline(self.created) if self.kind is Kind.BASE else None

    @property
    def transcription_deadline(self) -> dt.date:
        """The last day it may be used for recognition."""
        return transcription_deadline(self.created)

    def state(self, at: dt.date) -> State:
        """Its state on ``at``."""
        if at > self.transcription_deadline:
            if self.kind is Kind.BASE and self.newest_base:
                return State.PAST_DEADLINE_STILL_SERVING
            return State.EXPIRED_FALLS_BACK
        if self.kind is Kind.BASE and at > adaptation_deadline(self.created):
            return State.TRAINING_CLOSED
        return State.USABLE

    def to_json(self, at: dt.date) -> dict:
        """``model``, ``version``, ``kind``, ``created``, ``adaptation_deadline``, ``transcription_deadline``, ``state``."""
        adaptation = self.adaptation_deadline
        return {"model": self.model, "version": self.version, "kind": self.kind.value,
                "created": self.created.isoformat(),
                "adaptation_deadline": adaptation.isoformat() if adaptation else None,
                "transcription_deadline": self.transcription_deadline.isoformat(), "state": self.state(at).value}


def base_entries(versions: list[tuple[str, str, dt.date, str, int]]) -> list[Entry]:
    """Entries for base versions given as ``(model, version, created, locale, rate_hz)``.

    The newest version of each locale and rate is marked as the fallback of last resort.
    """
    groups: dict[tuple[str, int], list[Entry]] = {}
    for model, version, created, locale, rate in versions:
        groups.setdefault((locale, rate), []).append(Entry(model, version, Kind.BASE, created))
    newest = {key: newest_version(entries).version for key, entries in groups.items()}
    return [Entry(model, version, Kind.BASE, created, newest_base=newest[(locale, rate)] == version)
            for model, version, created, locale, rate in versions]
