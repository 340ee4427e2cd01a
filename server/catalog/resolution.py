"""Which versions one recognition request uses: a pure function of the catalog, the request and a date.

Rules (ARCHITECTURE "Catalog and lifecycle", PROTOCOLS.md §1.9):

* without custom models, the newest version of the model unless
  ``base_model_version`` names another;
* with a custom model, the newest base version it has (with a language and an
  acoustic model, the newest they have in common), or the one
  ``base_model_version`` names, which it must have;
* a custom model used on an older base version yields the previous-version warning;
* a custom model's own deadline governs its use, not its base version's (Azure's
  rule): a custom model trained late on a base version outlives the base's deadline;
* an expired custom model, or an expired base version used without one: real-time and sessionless requests
  fall back to the newest base version of the same model (locale and rate),
  without the custom models, with a warning; batch jobs fail with
  :class:`ModelExpired` naming the model and its deadline;
* the newest base version never expires (fallback of last resort) but says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from protocol.errors import InvalidParameter, NotFoundError
from server.catalog.lifecycle import newest_version, transcription_deadline

PREVIOUS_VERSION_WARNING = (
    "Using previous version of base model, because your custom model has been built with it. Please note that "
    "this version will be supported only for a limited time. Consider updating your custom model to the new base "
    "model. If you do not do that you will be automatically switched to base model when you used the non-updated "
    "custom model.")


class ModelExpired(InvalidParameter):
    """A batch job names a model past its transcription deadline (400)."""


@dataclass(frozen=True)
class BaseInfo:
    """One base version as the resolver sees it."""

    model: str
    version: str
    created: dt.date


@dataclass(frozen=True)
class CustomInfo:
    """One custom model as the resolver sees it.

    Attributes:
        versions: trained versions, base version id -> the date that version was trained.
    """

    id: str
    kind: str
    base_model_name: str
    status: str
    versions: dict[str, dt.date] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"custom {self.kind} model {self.id}"


@dataclass(frozen=True)
class Resolution:
    """What a request uses.

    Attributes:
        base_version: the base version id.
        language: the custom language model and version used (its id), or None.
        acoustic: the custom acoustic model used (its id), or None.
        warnings: to send with the results.
    """

    model: str
    base_version: str
    language: str | None = None
    acoustic: str | None = None
    warnings: tuple[str, ...] = ()


def newest(bases: list[BaseInfo], model: str) -> BaseInfo:
    """The newest version of a model.

    Raises:
        NotFoundError: no version of that model.
    """
    versions = [b for b in bases if b.model == model]
    if not versions:
        known = ", ".join(sorted({b.model for b in bases}))
        raise NotFoundError(f"Model {model} not found. Available models: {known}")
    return newest_version(versions)


def resolve(bases: list[BaseInfo], *, model: str | None, default_model: str, base_model_version: str | None,
            language: CustomInfo | None, acoustic: CustomInfo | None, today: dt.date, batch: bool) -> Resolution:
    """Resolve a request (see the module docstring).

    Raises:
        NotFoundError: unknown model or base version.
        InvalidParameter: a custom model of another base model, untrained, or without the named version.
        ModelExpired: (batch only) a model past its deadline.
    """
    customs = [c for c in (language, acoustic) if c is not None]
    model = model or (customs[0].base_model_name if customs else default_model)
    for c in customs:
        if c.base_model_name != model:
            raise InvalidParameter(f"The {c.label} is based on {c.base_model_name}, but the request uses model "
                                   f"{model}; omit model or set it to {c.base_model_name}.")
    latest = newest(bases, model)
    by_version = {b.version: b for b in bases if b.model == model}
    for c in customs:
        if not c.versions:
            raise InvalidParameter(f"The {c.label} has not been trained yet (status {c.status}); train it before "
                                   "using it for recognition.")
    if base_model_version is not None:
        if base_model_version not in by_version:
            raise NotFoundError(f"base_model_version {base_model_version} not found for {model}. Available "
                                f"versions: {', '.join(sorted(by_version))}")
        for c in customs:
            if base_model_version not in c.versions:
                raise InvalidParameter(f"The {c.label} has no version for base model version {base_model_version}; "
                                       f"its versions: {', '.join(sorted(c.versions))}.")
        chosen = base_model_version
    elif customs:
        common = set.intersection(*(set(c.versions) for c in customs))
        common &= set(by_version)
        if not common:
            raise InvalidParameter("The custom language model and the custom acoustic model have no base model "
                                   "version in common; upgrade them to the same base model version.")
        chosen = newest_version(by_version[v] for v in common).version
    else:
        chosen = latest.version

    warnings: list[str] = []
    expired: list[tuple[str, dt.date]] = []
    base = by_version[chosen]
    base_deadline = transcription_deadline(base.created)
    if today > base_deadline:
        if chosen == latest.version:
            warnings.append(f"Base model version {chosen} passed its transcription deadline {base_deadline}; it "
                            f"keeps serving as the newest version of {model} until a newer one is registered.")
        elif not customs:
            expired.append((f"base model version {chosen}", base_deadline))
        # with custom models, their own deadlines govern (Azure: a custom model created 2022-05-22 is usable
        # until 2024-07-15 although its base's transcription ended 2024-01-15)
    for c in customs:
        deadline = transcription_deadline(c.versions[chosen])
        if today > deadline:
            expired.append((f"{c.label} (version for {chosen})", deadline))
    if expired:
        what = "; ".join(f"{name} expired: it could be used until {deadline.isoformat()}" for name, deadline in expired)
        if batch:
            raise ModelExpired(f"The {what}. Name a model that has not expired, or omit it to use the newest base "
                               f"model version {latest.version}.")
        warnings.append(f"The {what}. Recognising with the newest base model version {latest.version} instead"
                        f"{', without custom models' if customs else ''}.")
        return Resolution(model, latest.version, warnings=tuple(warnings))
    if customs and chosen != latest.version:
        warnings.append(PREVIOUS_VERSION_WARNING)
    return Resolution(model, chosen, language.id if language else None, acoustic.id if acoustic else None,
                      tuple(warnings))
