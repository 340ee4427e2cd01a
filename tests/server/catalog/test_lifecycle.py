"""Lifecycle rules with fixed dates: PROTOCOLS.md §3 examples, quarter boundaries, states."""

import datetime as dt

import pytest

from server.catalog.lifecycle import (Entry, Kind, State, adaptation_deadline, base_entries, quarter_end,
                              transcription_deadline)

D = dt.date


@pytest.mark.parametrize("day,end", [
    (D(2024, 1, 15), D(2024, 1, 15)), (D(2024, 1, 16), D(2024, 4, 15)), (D(2024, 4, 15), D(2024, 4, 15)),
    (D(2024, 7, 14), D(2024, 7, 15)), (D(2024, 10, 16), D(2025, 1, 15)), (D(2024, 12, 31), D(2025, 1, 15)),
    (D(2024, 1, 1), D(2024, 1, 15)), (D(2024, 2, 29), D(2024, 4, 15)),
])
def test_quarter_end(day: dt.date, end: dt.date) -> None:
    assert quarter_end(day) == end


def test_the_dated_examples_of_protocols_md() -> None:
    assert transcription_deadline(D(2024, 7, 14)) == D(2026, 7, 15)  # custom model
    assert transcription_deadline(D(2022, 5, 22)) == D(2024, 7, 15)  # custom model
    assert adaptation_deadline(D(2024, 2, 29)) == D(2025, 4, 15)  # base model
    assert transcription_deadline(D(2024, 2, 29)) == D(2026, 4, 15)


def test_base_states_over_time() -> None:
    old, new = base_entries([("en-US_BroadbandModel", "en-US_BroadbandModel.v2024-02-29", D(2024, 2, 29), "en-US", 16000),
                             ("en-US_BroadbandModel", "en-US_BroadbandModel.v2025-01-10", D(2025, 1, 10), "en-US", 16000)])
    assert not old.newest_base and new.newest_base
    assert old.state(D(2025, 4, 15)) is State.USABLE  # deadlines are inclusive
    assert old.state(D(2025, 4, 16)) is State.TRAINING_CLOSED
    assert old.state(D(2026, 4, 16)) is State.EXPIRED_FALLS_BACK
    assert new.transcription_deadline == D(2027, 1, 15)
    assert new.state(D(2027, 1, 16)) is State.PAST_DEADLINE_STILL_SERVING


def test_newest_is_per_locale_and_rate() -> None:
    entries = base_entries([("en-US_BroadbandModel", "en-US_BroadbandModel.v2026-05-01", D(2026, 5, 1), "en-US", 16000),
                            ("en-US_NarrowbandModel", "en-US_NarrowbandModel.v2026-05-01", D(2026, 5, 1), "en-US", 8000)])
    assert all(e.newest_base for e in entries)


def test_custom_models_expire_and_fall_back() -> None:
    lm = Entry("lm-1", "en-US_BroadbandModel.v2026-11-01", Kind.LANGUAGE, D(2024, 7, 14))
    assert lm.adaptation_deadline is None
    assert lm.state(D(2026, 7, 15)) is State.USABLE
    assert lm.state(D(2026, 7, 16)) is State.EXPIRED_FALLS_BACK
    assert lm.to_json(D(2026, 7, 16)) == {
        "model": "lm-1", "version": "en-US_BroadbandModel.v2026-11-01", "kind": "language", "created": "2024-07-14",
        "adaptation_deadline": None, "transcription_deadline": "2026-07-15",
        "state": "expired: falls back to the newest base version"}
