"""Partial-result stabilisation: when items turn Stable, and that a stable item never changes afterwards."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.eventstream import Message
from protocol.stability import RULES, PartialStabilizer, Stability, StabilityRule
from protocol.transcribe import StreamParams, transcript_event
from protocol.watson import WordHypothesis
from protocol.errors import InvalidParameter


def hyp(*words: str, step_s: float = 0.4) -> list[WordHypothesis]:
    """A hypothesis with one word every ``step_s`` seconds (each 0.3 s long)."""
    return [WordHypothesis(w, i * step_s, i * step_s + 0.3, 0.9) for i, w in enumerate(words)]


def flags(items) -> list[tuple[str, bool]]:
    return [(i.word.word, i.stable) for i in items]


def test_a_word_turns_stable_after_n_partials_and_the_lag() -> None:
    s = PartialStabilizer(rule=StabilityRule(min_partials=2, min_lag_ms=500))
    assert flags(s.partial(hyp("press"), audio_end_s=0.4)) == [("press", False)]
    # Read the same twice, but it ended only 0.3 s before the audio's end: not yet.
    assert flags(s.partial(hyp("press"), audio_end_s=0.6)) == [("press", False)]
    assert flags(s.partial(hyp("press", "one"), audio_end_s=0.9)) == [("press", True), ("one", False)]
    assert s.pinned == tuple(hyp("press"))


def test_a_revised_unstable_word_starts_counting_again() -> None:
    s = PartialStabilizer(rule=StabilityRule(min_partials=2, min_lag_ms=0))
    s.partial(hyp("press", "won"))
    # "won" was revised to "one" before it was stable: "press" settles, "one" starts again at 1.
    assert flags(s.partial(hyp("press", "one"))) == [("press", True), ("one", False)]
    assert flags(s.partial(hyp("press", "one", "for"))) == [("press", True), ("one", True), ("for", False)]


def test_a_revision_of_a_stable_word_is_ignored() -> None:
    s = PartialStabilizer(rule=StabilityRule(min_partials=1, min_lag_ms=0))
    first = s.partial(hyp("press", "one"))
    assert flags(first) == [("press", True), ("one", True)]
    # The recogniser changes its mind about both pinned words and adds one: the pins stay as sent.
    revised = [WordHypothesis("dress", 0.0, 0.31, 0.5), WordHypothesis("won", 0.42, 0.69, 0.5),
               WordHypothesis("for", 0.8, 1.1, 0.9)]
    assert [i.word for i in s.partial(revised)] == [*hyp("press", "one"), revised[2]]
    final = s.finish(revised)
    assert [i.word for i in final] == [*hyp("press", "one"), revised[2]] and all(i.stable for i in final)
    # The next utterance starts afresh.
    assert s.pinned == () and flags(s.partial(hyp("goodbye"))) == [("goodbye", True)]


def test_a_word_after_the_pins_that_overlaps_them_starts_where_they_end() -> None:
    s = PartialStabilizer(rule=StabilityRule(min_partials=1, min_lag_ms=0))
    s.partial(hyp("press"))
    items = s.partial([WordHypothesis("press", 0.0, 0.35, 0.9), WordHypothesis("one", 0.25, 0.6, 0.9)])
    assert [(i.word.word, i.word.start_s, i.word.end_s) for i in items] == [("press", 0.0, 0.3), ("one", 0.3, 0.6)]


def test_levels_order_latency() -> None:
    # high stabilises soonest, low latest: fewer partials and less lag.
    assert RULES[Stability.HIGH].min_partials < RULES[Stability.MEDIUM].min_partials < RULES[Stability.LOW].min_partials
    assert RULES[Stability.HIGH].min_lag_ms < RULES[Stability.MEDIUM].min_lag_ms < RULES[Stability.LOW].min_lag_ms
    words = "please enter your account number followed by the pound key".split()
    first_stable = {}
    for level in Stability:
        s = PartialStabilizer(level)
        for n in range(1, len(words) + 1):
            items = s.partial(hyp(*words[:n], step_s=0.16), audio_end_s=n * 0.16 + 0.3)
            if items[0].stable and level not in first_stable:
                first_stable[level] = n
    assert first_stable[Stability.HIGH] < first_stable[Stability.MEDIUM] < first_stable[Stability.LOW]


def test_stream_params_and_the_stable_flag_on_the_wire() -> None:
    base = {"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "8000"}
    assert StreamParams.parse(base).stability is Stability.HIGH
    params = StreamParams.parse({**base, "enable-partial-results-stabilization": "true",
                                 "partial-results-stability": "low"})
    assert params.stabilization and params.stability is Stability.LOW
    with pytest.raises(InvalidParameter, match="partial-results-stability must be low, medium or high, got 'max'"):
        StreamParams.parse({**base, "partial-results-stability": "max"})
    words = tuple(hyp("press", "one"))
    event = transcript_event(result_id="r", start_s=0.0, end_s=0.7, partial=True, words=words, stable=(True, False))
    items = json.loads(Message.decode(event).payload)["Transcript"]["Results"][0]["Alternatives"][0]["Items"]
    assert [i["Stable"] for i in items] == [True, False]
    plain = transcript_event(result_id="r", start_s=0.0, end_s=0.7, partial=True, words=words)
    assert "Stable" not in json.loads(Message.decode(plain).payload)["Transcript"]["Results"][0]["Alternatives"][0]["Items"][0]
    with pytest.raises(ValueError, match="1 Stable flags for 2 words"):
        transcript_event(result_id="r", start_s=0.0, end_s=0.7, partial=True, words=words, stable=(True,))


VOCABULARY = ["press", "one", "won", "for", "four", "sales", "cells", "support"]


@st.composite
def utterances(draw) -> list[list[WordHypothesis]]:
    """A growing utterance whose partials revise words anywhere, move times a little, and sometimes drop words."""
    partials = []
    words: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        words = list(words)
        for _ in range(draw(st.integers(0, 2))):
            if words and draw(st.booleans()):
                words[draw(st.integers(0, len(words) - 1))] = draw(st.sampled_from(VOCABULARY))
        if words and draw(st.integers(0, 5)) == 0:
            words.pop(draw(st.integers(0, len(words) - 1)))
        words += draw(st.lists(st.sampled_from(VOCABULARY), max_size=2))
        jitter = draw(st.floats(-0.05, 0.05))
        partials.append([WordHypothesis(w, max(0.0, i * 0.3 + jitter), i * 0.3 + 0.25 + jitter, 0.9)
                         for i, w in enumerate(words)])
    return partials


@settings(max_examples=300, deadline=None)
@given(utterances(), st.sampled_from(list(Stability)), st.booleans())
def test_stable_items_never_change(partials, level, lag_free) -> None:
    s = PartialStabilizer(level, rule=StabilityRule(1, 0) if lag_free else None)
    sent_stable: list[WordHypothesis] = []
    outputs = [s.partial(p, audio_end_s=(p[-1].end_s if p else 0.0) + 0.5) for p in partials]
    outputs.append(s.finish(partials[-1]))
    for items in outputs:
        words = [i.word for i in items]
        # What was stable is still there, first, unchanged (times included), and still stable.
        assert words[: len(sent_stable)] == sent_stable
        assert all(i.stable for i in items[: len(sent_stable)])
        # Stable items are a prefix; times never go backwards.
        stable = [i.stable for i in items]
        assert stable == sorted(stable, reverse=True)
        assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(words[: len(sent_stable)], words[len(sent_stable):][:1]))
        sent_stable = [i.word for i in items if i.stable]
    assert all(i.stable for i in outputs[-1])
