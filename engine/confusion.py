"""Word alternatives of a final (Watson's ``word_alternatives``): a confusion network from the N-best.

The ``whisper`` final pass's beam search ends with a pool of finished hypotheses, each with the
decoder's log-probability (plus the custom LM's term when one rescores them). Their posteriors,
renormalised over the pool, spread each word slot of the chosen transcript over the words the
other hypotheses put there: every hypothesis is aligned to the chosen one word by word
(Levenshtein, jiwer's alignment), and a slot's alternative ``w`` gets the summed posterior of the
hypotheses that say ``w`` at that slot (a hypothesis that drops the word there gives it nothing).
This is Watson's "confusion network" read off an N-best list rather than a lattice: with a beam of
4 at most four words compete per slot, and the posteriors are those of the pool, not of every
transcript the decoder could write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from engine.decoding import Word


@dataclass(frozen=True)
class WordAlternatives:
    """The competing words of one word slot of a final.

    Attributes:
        start, end: the slot's time span in seconds (the chosen word's).
        alternatives: ``(word, confidence)`` pairs, most likely first; the chosen word is among them.
    """

    start: float
    end: float
    alternatives: tuple[tuple[str, float], ...]


def posteriors(scores: Sequence[float]) -> list[float]:
    """Log-scores (natural log) to probabilities that sum to 1 (softmax)."""
    if not scores:
        return []
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def nbest_posteriors(texts: Sequence[str], scores: Sequence[float]) -> tuple[tuple[str, float], ...]:
    """Distinct ``texts`` (hypotheses that read alike are merged, their probabilities summed) with their
    posteriors over the pool, most likely first."""
    merged: dict[str, float] = {}
    for text, p in zip(texts, posteriors(scores)):
        merged[text] = merged.get(text, 0.0) + p
    return tuple(sorted(merged.items(), key=lambda item: -item[1]))


def word_alternatives(words: Sequence[Word], best: str, nbest: Sequence[tuple[str, float]]) -> tuple[WordAlternatives, ...]:
    """The word slots of a final with their competing words.

    Args:
        words: the final's words with their times; ``best``'s words, one for one.
        best: the chosen transcript (normalised words joined by spaces).
        nbest: ``(transcript, posterior)`` of every hypothesis of the pool (see :func:`nbest_posteriors`);
            ``best`` among them (if it is not, it counts with posterior 0).

    Returns:
        One :class:`WordAlternatives` per word of ``words`` (none when the words are not ``best``'s).
    """
    slots = best.split()
    if not slots or len(slots) != len(words):
        return ()
    tallies: list[dict[str, float]] = [{} for _ in slots]
    for text, p in nbest:
        if text == best:
            for i, w in enumerate(slots):
                tallies[i][w] = tallies[i].get(w, 0.0) + p
            continue
        if not text.split():
            continue
        for chunk in jiwer.process_words(best, text).alignments[0]:
            if chunk.type not in ("equal", "substitute"):
                continue
            other = text.split()[chunk.hyp_start_idx:chunk.hyp_end_idx]
            for offset, w in enumerate(other):
                i = chunk.ref_start_idx + offset
                tallies[i][w] = tallies[i].get(w, 0.0) + p
    out = []
    for word, slot, tally in zip(words, slots, tallies):
        tally.setdefault(slot, 0.0)
        ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0] != slot))
        out.append(WordAlternatives(word.start, word.end, tuple((w, round(c, 4)) for w, c in ranked)))
    return tuple(out)
