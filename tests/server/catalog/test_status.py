"""The status machine of :mod:`server.catalog.status`: every rule as a table, on fixed dates, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from protocol.errors import ConflictError, InvalidParameter
from server.catalog.lifecycle import newest_version
from server.catalog.resolution import BaseInfo
from server.catalog.status import (FOLLOWS_DATA, NO_NEW_INPUT, JobKind, ModelStatus, Standing, after_analysis, cancel,
                                   check_deletable, check_not_busy, check_trainable, check_training_open,
                                   check_upgradable, fail, finish, is_trainable, on_change, settle, start_retraining,
                                   start_training, start_upgrade, upgrade_target)

P, R, T, U, A, F = (ModelStatus.PENDING, ModelStatus.READY, ModelStatus.TRAINING, ModelStatus.UPGRADING,
                    ModelStatus.AVAILABLE, ModelStatus.FAILED)
D = dt.date
OLD, NEW = "bb.v2026-05-01", "bb.v2026-11-01"


def test_the_values_are_the_stored_strings() -> None:
    assert [str(s) for s in ModelStatus] == ["pending", "ready", "training", "upgrading", "available", "failed"]
    assert ModelStatus("ready") is R and f"{R}" == "ready" and R == "ready"


@pytest.mark.parametrize("analysing,valid,expected", [
    (False, True, R), (True, True, P), (False, False, P), (True, False, P)])
def test_settle(analysing: bool, valid: bool, expected: ModelStatus) -> None:
    assert settle(analysing=analysing, has_valid_data=valid) is expected


@pytest.mark.parametrize("current,settled,expected", [
    (P, R, R), (R, P, P), (A, R, R), (F, R, R), (F, P, P), (T, R, T), (U, P, U)])
def test_a_change_of_data_moves_only_a_status_that_follows_the_data(current, settled, expected) -> None:
    assert on_change(current, settled) is expected


@pytest.mark.parametrize("current,settled,expected", [(P, R, R), (P, P, P), (R, P, R), (A, R, A), (T, R, T)])
def test_an_analysis_settles_only_a_pending_model(current, settled, expected) -> None:
    assert after_analysis(current, settled) is expected


@pytest.mark.parametrize("status", list(ModelStatus))
def test_busy_models_refuse_changes_and_deletion(status: ModelStatus) -> None:
    if status in (T, U):
        with pytest.raises(ConflictError, match=f"in progress for custom model m1 \\(status {status}\\)"):
            check_not_busy("m1", status)
        with pytest.raises(ConflictError, match=f"while it is {status}"):
            check_deletable("m1", status, in_use=False)
    else:
        assert status in FOLLOWS_DATA
        check_not_busy("m1", status)
        check_deletable("m1", status, in_use=False)
        with pytest.raises(ConflictError, match="while a recognition request uses it"):
            check_deletable("m1", status, in_use=True)


@pytest.mark.parametrize("today,deadline,open_", [
    (D(2027, 7, 15), D(2027, 7, 15), True),  # deadlines are inclusive
    (D(2027, 7, 16), D(2027, 7, 15), False),
    (D(2030, 1, 1), None, True),  # a base version not recorded: not closed
])
def test_training_is_open_until_the_adaptation_deadline(today, deadline, open_) -> None:
    if open_:
        check_training_open(OLD, deadline, today)
    else:
        with pytest.raises(InvalidParameter, match=f"{OLD} accepted training until 2027-07-15; upgrade"):
            check_training_open(OLD, deadline, today)


@pytest.mark.parametrize("dirty,trained_here,same_helper,force,trainable", [
    (False, True, True, False, False),  # nothing new: "No input data modified since last training"
    (True, True, True, False, True),
    (False, False, True, False, True),  # no version on this base yet
    (False, True, False, False, True),  # another helper language model
    (False, True, True, True, True),  # force
])
def test_trainable(dirty, trained_here, same_helper, force, trainable) -> None:
    args = {"dirty": dirty, "trained_here": trained_here, "same_helper": same_helper, "force": force}
    assert is_trainable(**args) is trainable
    if trainable:
        check_trainable(**args)
    else:
        with pytest.raises(InvalidParameter, match=f"^{NO_NEW_INPUT}$"):
            check_trainable(**args)


@pytest.mark.parametrize("status", list(ModelStatus))
def test_only_ready_and_available_models_upgrade(status: ModelStatus) -> None:
    if status in (R, A):
        check_upgradable("m1", status)
    else:
        with pytest.raises(InvalidParameter, match=f"must be ready or available to upgrade; its status is {status}"):
            check_upgradable("m1", status)


BASES = [BaseInfo("bb", OLD, D(2026, 5, 1)), BaseInfo("bb", NEW, D(2026, 11, 1)),
         BaseInfo("bb", "bb.v2026-11-01a", D(2026, 11, 1))]


@pytest.mark.parametrize("bases,current,installed,target", [
    (BASES[:1], OLD, None, OLD),
    (BASES[:2], OLD, None, NEW),
    (BASES[:2], OLD, {OLD, NEW}, NEW),
    (BASES, OLD, None, "bb.v2026-11-01a"),  # same date: the greater id
    (BASES[:2], NEW, {OLD}, NEW),  # already there: installed or not, it is the target
])
def test_upgrade_target_is_the_newest_version(bases, current, installed, target) -> None:
    assert upgrade_target(bases, current=current, installed=installed) == target
    assert newest_version(bases).version == target


def test_an_upgrade_to_a_version_not_installed_here_is_refused() -> None:
    with pytest.raises(InvalidParameter, match=f"{NEW} is registered but not installed on this server"):
        upgrade_target(BASES[:2], current=OLD, installed={OLD})


def _trained(status: ModelStatus, *, dirty: bool = False, helper: str | None = None) -> Standing:
    return Standing(status, OLD, dirty, None, {"language_customization_id": helper} if helper else None,
                    trained=True, progress=100)


@pytest.mark.parametrize("before", [_trained(R, dirty=True), _trained(A), _trained(A, helper="lm1")])
def test_an_upgrade_resumes_the_status_it_had_when_it_finishes_fails_or_is_cancelled(before: Standing) -> None:
    helper = (before.job_options or {}).get("language_customization_id")
    upgrading = start_upgrade(before, NEW, language_customization_id=helper, trained_with=helper)
    assert (upgrading.status, upgrading.base_version, upgrading.job, upgrading.progress) == (U, NEW, JobKind.UPGRADE, 0)
    done = finish(upgrading)
    assert (done.status, done.dirty, done.base_version, done.job, done.progress) == (
        before.status, before.dirty, NEW, None, 100)
    failed = fail(upgrading, "boom")
    assert (failed.status, failed.dirty, failed.base_version, failed.job) == (before.status, before.dirty, OLD, None)
    assert failed.error == f"Upgrade to base model version {NEW} failed: boom"
    cancelled = cancel(upgrading, "m1", has_valid_data=True)
    assert (cancelled.status, cancelled.base_version, cancelled.job, cancelled.error) == (
        before.status, OLD, None, None)
    for after in (done, failed, cancelled):
        assert after.job_options == ({"language_customization_id": helper} if helper else None)


@pytest.mark.parametrize("trained,valid,after_cancel", [(True, True, A), (False, True, R), (False, False, P)])
def test_a_training_ends_available_failed_or_back_where_it_was(trained, valid, after_cancel) -> None:
    before = Standing(R, OLD, dirty=True, trained=trained, progress=100 if trained else 0)
    training = start_training(before)
    assert (training.status, training.job, training.job_options, training.progress) == (T, JobKind.TRAIN, {}, 0)
    done = finish(training)
    assert (done.status, done.dirty, done.trained, done.progress, done.job_options) == (A, False, True, 100, None)
    failed = fail(training, "training failed: boom")
    assert (failed.status, failed.error, failed.job, failed.progress) == (F, "training failed: boom", None, 0)
    cancelled = cancel(training, "m1", has_valid_data=valid)
    assert (cancelled.status, cancelled.job, cancelled.progress) == (after_cancel, None, 100 if trained else 0)


def test_an_acoustic_training_keeps_the_helper_it_trained_with() -> None:
    done = finish(start_training(_trained(A, dirty=True), language_customization_id="lm1"))
    assert done.job_options == {"language_customization_id": "lm1"}


def test_a_retraining_on_the_same_base_ends_available_and_a_failed_one_reverts() -> None:
    before = _trained(R, dirty=True, helper="lm0")
    retraining = start_retraining(before, language_id="lm1", trained_with="lm0")
    assert (retraining.status, retraining.base_version, retraining.job) == (U, OLD, JobKind.UPGRADE)
    assert (finish(retraining).status, finish(retraining).job_options) == (A, {"language_customization_id": "lm1"})
    failed = fail(retraining, "boom")
    assert (failed.status, failed.dirty, failed.job_options) == (A, True, {"language_customization_id": "lm0"})


def test_cancelling_without_a_job_is_refused() -> None:
    with pytest.raises(InvalidParameter, match=r"^Custom model m1 has no training in progress \(status ready\)$"):
        cancel(Standing(R, OLD), "m1", has_valid_data=True)
