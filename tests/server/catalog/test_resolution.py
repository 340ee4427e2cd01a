"""Version resolution at recognition: pure rules on dates (PROTOCOLS.md §1.9, ARCHITECTURE lifecycle)."""

from __future__ import annotations

import datetime as dt

import pytest

from protocol.errors import InvalidParameter, NotFoundError
from server.catalog.resolution import PREVIOUS_VERSION_WARNING, BaseInfo, CustomInfo, ModelExpired, resolve

BB = "en-US_BroadbandModel"
OLD, NEW = f"{BB}.v2026-05-01", f"{BB}.v2026-11-01"
BASES = [BaseInfo(BB, OLD, dt.date(2026, 5, 1)), BaseInfo(BB, NEW, dt.date(2026, 11, 1)),
         BaseInfo("en-US_NarrowbandModel", "en-US_NarrowbandModel.v2026-11-01", dt.date(2026, 11, 1))]
TODAY = dt.date(2026, 11, 23)


def lm(*versions: str, trained: dt.date = dt.date(2026, 11, 20), base: str = BB) -> CustomInfo:
    return CustomInfo("lm-1", "language", base, "available", {v: trained for v in versions})


def am(*versions: str) -> CustomInfo:
    return CustomInfo("am-1", "acoustic", BB, "available", {v: dt.date(2026, 11, 20) for v in versions})


def run(language=None, acoustic=None, *, model=None, version=None, today=TODAY, batch=False):
    return resolve(BASES, model=model, default_model=BB, base_model_version=version, language=language,
                   acoustic=acoustic, today=today, batch=batch)


def test_without_custom_models_the_newest_base_version_unless_one_is_named():
    assert run().base_version == NEW
    assert run(version=OLD).base_version == OLD
    assert run(version=OLD).warnings == ()


def test_unknown_model_or_version_is_not_found():
    with pytest.raises(NotFoundError, match="Model nope not found"):
        run(model="nope")
    with pytest.raises(NotFoundError, match="v1999-01-01 not found"):
        run(version=f"{BB}.v1999-01-01")


def test_custom_model_uses_its_newest_version_and_warns_when_it_is_not_the_newest_base():
    r = run(lm(OLD))
    assert (r.base_version, r.language, r.warnings) == (OLD, "lm-1", (PREVIOUS_VERSION_WARNING,))
    r = run(lm(OLD, NEW))
    assert (r.base_version, r.warnings) == (NEW, ())


def test_base_model_version_picks_that_version_of_base_and_custom():
    assert run(lm(OLD, NEW), version=OLD).base_version == OLD
    with pytest.raises(InvalidParameter, match="no version for base model version"):
        run(lm(OLD), version=NEW)


def test_language_and_acoustic_use_the_newest_version_they_share():
    assert run(lm(OLD), am(OLD)).base_version == OLD  # both old
    assert run(lm(OLD, NEW), am(OLD, NEW)).base_version == NEW  # both upgraded
    assert run(lm(OLD, NEW), am(OLD)).base_version == OLD  # only one upgraded: the shared old one
    with pytest.raises(InvalidParameter, match="no base model version in common"):
        run(lm(NEW), am(OLD))


def test_custom_model_of_another_base_model_or_untrained_is_refused():
    with pytest.raises(InvalidParameter, match="based on en-US_BroadbandModel"):
        run(lm(NEW), model="en-US_NarrowbandModel")
    with pytest.raises(InvalidParameter, match="not been trained yet"):
        run(lm())


def test_model_defaults_to_the_custom_models_base():
    nb = "en-US_NarrowbandModel"
    assert run(lm(f"{nb}.v2026-11-01", base=nb)).model == nb


def test_expired_custom_model_falls_back_live_and_fails_a_batch_job():
    # trained 2024-07-14: usable until 2026-07-15
    old_lm = lm(NEW, trained=dt.date(2024, 7, 14))
    assert run(old_lm, today=dt.date(2026, 7, 15)).language == "lm-1"
    r = run(old_lm, today=dt.date(2026, 7, 16))
    assert (r.base_version, r.language) == (NEW, None)
    assert "expired" in r.warnings[0] and "2026-07-15" in r.warnings[0]
    with pytest.raises(ModelExpired, match="lm-1.*2026-07-15"):
        run(old_lm, today=dt.date(2026, 7, 16), batch=True)


def test_expired_older_base_version_falls_back_but_the_newest_keeps_serving():
    # OLD (2026-05-01): Q = 2026-07-15, recognition until 2028-07-15
    late = dt.date(2028, 7, 16)
    r = run(version=OLD, today=late)
    assert r.base_version == NEW and "expired" in r.warnings[0]
    with pytest.raises(ModelExpired):
        run(version=OLD, today=late, batch=True)
    # NEW (2026-11-01): until 2029-01-15, then it still serves as the newest, with a warning
    r = run(today=dt.date(2029, 1, 16))
    assert r.base_version == NEW and "keeps serving" in r.warnings[0]


def test_a_custom_models_own_deadline_governs_not_its_base_versions():
    """Issue 13, deviation 5 (Azure's example): a custom model trained on a base version late in the base's
    life stays usable until its own deadline, past the base version's."""
    # OLD (2026-05-01): recognition until 2028-07-15; a custom version trained 2027-11-20 on it: until 2030-01-15
    late_lm = lm(OLD, trained=dt.date(2027, 11, 20))
    after_base = dt.date(2029, 3, 1)
    for batch in (False, True):
        r = run(late_lm, today=after_base, batch=batch)
        assert (r.base_version, r.language) == (OLD, "lm-1")
        assert r.warnings == (PREVIOUS_VERSION_WARNING,)
    r = run(late_lm, today=dt.date(2030, 1, 16))
    assert (r.base_version, r.language) == (NEW, None) and "2030-01-15" in r.warnings[0]
    # without the custom model, the old base version itself has expired
    assert run(version=OLD, today=after_base).base_version == NEW
