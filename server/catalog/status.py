"""The Watson customization status machine (PROTOCOLS.md §1.7-§1.9): statuses as ``StrEnum``s and the rules
as pure functions, each written once.

No database and no clock: the catalog reads a model's :class:`Standing` (and a date) in a transaction,
asks these functions what follows, and writes the answer back. The enum values are the strings stored in
the catalog and sent on the wire, so no migration was needed when they became enums.

Statuses of a custom model::

    pending ──valid data, nothing analysing──▶ ready ──train──▶ training ──finish──▶ available
    pending | ready | available | failed ──data changed──▶ settle (ready or pending)
    training ──fail──▶ failed;  training ──cancel──▶ available (trained) or settled
    ready | available ──upgrade──▶ upgrading ──finish / fail / cancel──▶ the status it had

Raises come from :mod:`protocol.errors`, with the status and message the routes send as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from protocol.errors import ConflictError, InvalidParameter
from server.catalog.lifecycle import Dated, newest_version


class ModelKind(StrEnum):
    """What a custom model customises."""

    LANGUAGE = "language"
    ACOUSTIC = "acoustic"


class ModelStatus(StrEnum):
    """A custom model's status (Watson's ``status`` field)."""

    PENDING = "pending"
    READY = "ready"
    TRAINING = "training"
    UPGRADING = "upgrading"
    AVAILABLE = "available"
    FAILED = "failed"


class CorpusStatus(StrEnum):
    """A corpus's status."""

    BEING_PROCESSED = "being_processed"
    ANALYZED = "analyzed"
    UNDETERMINED = "undetermined"


class AudioStatus(StrEnum):
    """An audio resource's status."""

    BEING_PROCESSED = "being_processed"
    OK = "ok"
    INVALID = "invalid"


class JobStatus(StrEnum):
    """An asynchronous recognition job's status."""

    WAITING = "waiting"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class JobKind(StrEnum):
    """What a custom model's queued job does."""

    TRAIN = "train"
    UPGRADE = "upgrade"


#: statuses in which a job owns the model: no changes, no second job, no delete
BUSY = frozenset({ModelStatus.TRAINING, ModelStatus.UPGRADING})
#: statuses that follow the model's data: a change of data moves them (see :func:`on_change`)
FOLLOWS_DATA = frozenset({ModelStatus.PENDING, ModelStatus.READY, ModelStatus.AVAILABLE, ModelStatus.FAILED})
#: statuses an upgrade may start from
UPGRADABLE = frozenset({ModelStatus.READY, ModelStatus.AVAILABLE})
#: job statuses after which the job's audio is not needed
FINISHED_JOBS = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})
#: the job statuses a restarted server runs (again)
UNFINISHED_JOBS = frozenset({JobStatus.WAITING, JobStatus.PROCESSING})

NO_NEW_INPUT = "No input data modified since last training"


@dataclass(frozen=True)
class Standing:
    """The fields of a custom model that the status machine reads and writes.

    Attributes:
        status: the model's status.
        base_version: the base version modifications and training apply to.
        dirty: data changed since the last training.
        job: the queued job, or None.
        job_options: the job's options (``from``, ``prior_status``, ``prior_dirty``,
            ``language_customization_id``, ``trained_with``), or None; stored as JSON.
        trained: the model has at least one trained version.
        progress: 0-100.
        error: the last job's error, or None.
    """

    status: ModelStatus
    base_version: str
    dirty: bool = False
    job: JobKind | None = None
    job_options: Mapping[str, Any] | None = None
    trained: bool = False
    progress: int = 0
    error: str | None = None


# -- data changes ------------------------------------------------------------------------------------


def settle(*, analysing: bool, has_valid_data: bool) -> ModelStatus:
    """What a model that is not busy rests in: ``ready`` with valid data and nothing still analysed, else
    ``pending`` (Watson's ``pending`` also covers "still analysing data that was added": a word added while a
    corpus is analysed must not make the model ready before it)."""
    return ModelStatus.READY if has_valid_data and not analysing else ModelStatus.PENDING


def on_change(current: ModelStatus, settled: ModelStatus) -> ModelStatus:
    """The status after the model's data changed: one that follows the data takes the settled status (a
    trained model whose data changed is ``ready`` to train again); a busy one keeps its own."""
    return settled if current in FOLLOWS_DATA else current


def after_analysis(current: ModelStatus, settled: ModelStatus) -> ModelStatus:
    """The status after a corpus or audio resource finished processing: a ``pending`` model settles."""
    return settled if current is ModelStatus.PENDING else current


# -- checks before a job -----------------------------------------------------------------------------


def check_not_busy(custom_id: str, status: ModelStatus) -> None:
    """A model a job owns takes no changes.

    Raises:
        ConflictError: the model is training or upgrading.
    """
    if status in BUSY:
        raise ConflictError(f"Another request is in progress for custom model {custom_id} (status {status}); "
                            "try again when it is done")


def check_deletable(custom_id: str, status: ModelStatus, *, in_use: bool) -> None:
    """A model is deleted only while no job and no recognition request uses it.

    Raises:
        ConflictError: a job or a recognition request uses it.
    """
    if status in BUSY:
        raise ConflictError(f"Cannot delete custom model {custom_id} while it is {status}")
    if in_use:
        raise ConflictError(f"Cannot delete custom model {custom_id} while a recognition request uses it")


def check_training_open(base_version: str, adaptation_deadline: dt.date | None, today: dt.date) -> None:
    """Training on a base version is open until its adaptation deadline (inclusive).

    Args:
        adaptation_deadline: the base version's, or None when it is not recorded (then training is open).

    Raises:
        InvalidParameter: ``today`` is past the deadline.
    """
    if adaptation_deadline is not None and today > adaptation_deadline:
        raise InvalidParameter(f"Base model version {base_version} accepted training until "
                               f"{adaptation_deadline.isoformat()}; upgrade the custom model to a newer base version")


def is_trainable(*, dirty: bool, trained_here: bool, same_helper: bool = True, force: bool = False) -> bool:
    """Whether a training has something new to learn: data changed, no version on this base yet, another
    helper language model (acoustic models), or ``force``."""
    return force or dirty or not trained_here or not same_helper


def check_trainable(*, dirty: bool, trained_here: bool, same_helper: bool = True, force: bool = False) -> None:
    """See :func:`is_trainable`.

    Raises:
        InvalidParameter: ``No input data modified since last training``.
    """
    if not is_trainable(dirty=dirty, trained_here=trained_here, same_helper=same_helper, force=force):
        raise InvalidParameter(NO_NEW_INPUT)


def check_upgradable(custom_id: str, status: ModelStatus) -> None:
    """An upgrade starts from ``ready`` or ``available``.

    Raises:
        InvalidParameter: any other status.
    """
    if status not in UPGRADABLE:
        raise InvalidParameter(f"Custom model {custom_id} must be ready or available to upgrade; its status is "
                               f"{status}")


def upgrade_target(bases: Iterable[Dated], *, current: str, installed: Container[str] | None) -> str:
    """The version an upgrade goes to: the newest of the model's base versions, which this server must load.

    Args:
        bases: the recorded versions of the model's base model (at least one: ``current``'s).
        current: the model's base version now.
        installed: the base versions this server can load (None: every recorded one).

    Raises:
        InvalidParameter: the newest version is recorded (registered by another process or replica) but not
            installed here: an upgrade accepted now would fail.
    """
    target = newest_version(bases).version
    if installed is not None and target not in installed and target != current:
        raise InvalidParameter(f"Base model version {target} is registered but not installed on this server; "
                               "upgrade once it is (voxgate models register installs it)")
    return target


# -- job transitions ---------------------------------------------------------------------------------


def start_training(s: Standing, **options: Any) -> Standing:
    """A training job queued on the model's base version, with its options."""
    return replace(s, status=ModelStatus.TRAINING, progress=0, error=None, job=JobKind.TRAIN, job_options=options)


def start_upgrade(s: Standing, target: str, **options: Any) -> Standing:
    """An upgrade job to ``target``; the status and dirty flag it had return when it ends (Watson: "the model
    resumes the status that it had prior to upgrade")."""
    return replace(s, status=ModelStatus.UPGRADING, progress=0, error=None, job=JobKind.UPGRADE, base_version=target,
                   job_options={"from": s.base_version, "prior_status": str(s.status), "prior_dirty": s.dirty,
                                **options})


def start_retraining(s: Standing, *, language_id: str | None, trained_with: str | None) -> Standing:
    """An acoustic model on the newest base version retrained with a helper language model: an upgrade job on
    its own base version, which ends ``available`` (there is no prior status to resume)."""
    return replace(s, status=ModelStatus.UPGRADING, progress=0, error=None, job=JobKind.UPGRADE,
                   job_options={"from": s.base_version, "language_customization_id": language_id,
                                "trained_with": trained_with})


def _only_helper(helper: str | None) -> dict[str, Any] | None:
    return {"language_customization_id": helper} if helper else None


def _is_upgrade(s: Standing) -> bool:
    return s.job is JobKind.UPGRADE and "from" in (s.job_options or {})


def finish(s: Standing) -> Standing:
    """A job that trained a version: ``available`` and clean, or, after an upgrade, the status and dirty flag
    it had before; the options keep the helper language model it trained with."""
    options = s.job_options or {}
    status, dirty = ModelStatus.AVAILABLE, False
    if s.job is JobKind.UPGRADE and "prior_status" in options:
        status, dirty = ModelStatus(options["prior_status"]), bool(options.get("prior_dirty"))
    return replace(s, status=status, dirty=dirty, progress=100, job=None, trained=True,
                   job_options=_only_helper(options.get("language_customization_id")))


def revert(s: Standing, fallback: ModelStatus) -> Standing:
    """An upgrade that ended without a version (failed or cancelled): back to the base version, status and
    dirty flag it had (``fallback`` when no status was saved), with the helper it was trained with."""
    options = s.job_options or {}
    return replace(s, base_version=options["from"], status=ModelStatus(options.get("prior_status") or fallback),
                   dirty=bool(options.get("prior_dirty", s.dirty)), job=None,
                   job_options=_only_helper(options.get("trained_with")), progress=100 if s.trained else 0)


def fail(s: Standing, message: str) -> Standing:
    """A job that failed: ``failed`` with the message; a failed upgrade reverts (usable and upgradable again)
    with the error recorded."""
    if _is_upgrade(s):
        fallback = ModelStatus.AVAILABLE if s.trained else ModelStatus.READY
        return replace(revert(s, fallback), error=f"Upgrade to base model version {s.base_version} failed: {message}")
    return replace(s, status=ModelStatus.FAILED, error=message, job=None, job_options=None, progress=0)


def cancel(s: Standing, custom_id: str, *, has_valid_data: bool) -> Standing:
    """A job cancelled: ``available`` if trained, else settled; a cancelled upgrade reverts.

    Raises:
        InvalidParameter: no job is queued or running.
    """
    if s.job is None:
        raise InvalidParameter(f"Custom model {custom_id} has no training in progress (status {s.status})")
    fallback = ModelStatus.AVAILABLE if s.trained else settle(analysing=False, has_valid_data=has_valid_data)
    if _is_upgrade(s):
        return revert(s, fallback)
    return replace(s, status=fallback, job=None, progress=100 if s.trained else 0)
