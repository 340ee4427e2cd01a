"""Word alternatives read off an N-best list (engine/confusion.py)."""

from __future__ import annotations

import math

import pytest

from engine.confusion import WordAlternatives, nbest_posteriors, posteriors, word_alternatives
from engine.decoding import Word


def _words(text: str) -> list[Word]:
    return [Word(w, i * 0.5, i * 0.5 + 0.4, 0.9) for i, w in enumerate(text.split())]


def test_posteriors_are_a_softmax_of_the_log_scores() -> None:
    assert posteriors([]) == []
    p = posteriors([math.log(3.0), math.log(1.0)])
    assert p == pytest.approx([0.75, 0.25])
    assert sum(posteriors([-1000.0, -1001.0, -1005.0])) == pytest.approx(1.0)  # no underflow


def test_hypotheses_that_read_alike_are_merged() -> None:
    pool = nbest_posteriors(["press one", "press won", "press one"], [math.log(2), math.log(1), math.log(1)])
    assert pool == (("press one", pytest.approx(0.75)), ("press won", pytest.approx(0.25)))


def test_each_slot_gets_the_words_the_other_hypotheses_put_there() -> None:
    best = "press one for sales"
    nbest = (("press one for sales", 0.6), ("press won for sales", 0.3), ("dress one for sails", 0.1))
    slots = word_alternatives(_words(best), best, nbest)
    assert [s.alternatives for s in slots] == [
        (("press", 0.9), ("dress", 0.1)),
        (("one", 0.7), ("won", 0.3)),
        (("for", 1.0),),
        (("sales", 0.9), ("sails", 0.1)),
    ]
    assert (slots[1].start, slots[1].end) == (0.5, 0.9)  # the chosen word's span


def test_a_hypothesis_that_drops_or_adds_a_word_gives_only_its_aligned_words() -> None:
    best = "enter your password"
    nbest = (("enter your password", 0.5), ("enter password", 0.3), ("enter your pass word", 0.2))
    slots = word_alternatives(_words(best), best, nbest)
    assert slots[0].alternatives == (("enter", 1.0),)
    assert slots[1].alternatives == (("your", 0.7),)  # the deletion gives "your" nothing
    # "pass word" for "password": one substitution and one insertion
    assert dict(slots[2].alternatives)["password"] == pytest.approx(0.8)
    assert sum(c for _, c in slots[2].alternatives) <= 1.0 + 1e-9


def test_the_chosen_word_is_listed_even_when_the_pool_lacks_the_chosen_text() -> None:
    # the final is chosen by length-normalised score, its posterior by the joint one: it may be absent
    slots = word_alternatives(_words("yes"), "yes", (("no", 1.0),))
    assert slots == (WordAlternatives(0.0, 0.4, (("no", 1.0), ("yes", 0.0))),)


def test_words_that_are_not_the_texts_give_no_slots() -> None:
    assert word_alternatives(_words("a b"), "a b c", (("a b c", 1.0),)) == ()
    assert word_alternatives([], "", ()) == ()
