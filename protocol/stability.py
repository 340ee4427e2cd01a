"""Partial-result stabilisation for Transcribe streams (sans-I/O): which items of a partial are ``Stable``.

With ``enable-partial-results-stabilization``, Transcribe marks each item of a partial result
``"Stable": true`` once it will not change any more, so a caption can print it at once
(PROTOCOLS.md §2.4). ``partial-results-stability`` trades latency for accuracy: ``high`` makes
items stable soonest (Transcribe: "transcribes faster, with slightly lower accuracy"), ``low``
waits longest. The recogniser's partials are free to revise any word; :class:`PartialStabilizer`
turns them into partials whose stable items never change:

- An item becomes stable when it has read the same (same text, same place in the unstable
  part) in :attr:`StabilityRule.min_partials` successive partials, and ends at least
  :attr:`StabilityRule.min_lag_ms` before the end of the audio the partial covers, and every item
  before it is stable: stable items are always a prefix of the result.
- Stable items are pinned, times included: every later partial of the utterance — and its final —
  starts with them exactly as they were first sent. The recogniser's own words over the pinned
  part are dropped (by text when it still agrees, otherwise by time: a new word whose middle falls
  before the end of the last pinned word is covered by the pins); what follows is the unstable tail.
- :meth:`PartialStabilizer.finish` makes the final the same way (all its items stable) and starts
  the next utterance afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from protocol.watson import WordHypothesis


class Stability(StrEnum):
    """``partial-results-stability``."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class StabilityRule:
    """When an item becomes stable.

    Attributes:
        min_partials: successive partials (this one included) in which it must have read the same.
        min_lag_ms: how long before the end of the partial's audio it must end.
    """

    min_partials: int
    min_lag_ms: int

    def __post_init__(self) -> None:
        if self.min_partials < 1 or self.min_lag_ms < 0:
            raise ValueError(f"min_partials must be at least 1 and min_lag_ms not negative, got {self}")


#: The rule of each level. With partials every 160 ms (``[recognition] chunk_ms``), ``high``
#: stabilises a word about 0.3 s after it was first heard, ``medium`` about 0.5 s, ``low`` about 0.8 s.
RULES = {Stability.HIGH: StabilityRule(min_partials=2, min_lag_ms=240),
         Stability.MEDIUM: StabilityRule(min_partials=3, min_lag_ms=480),
         Stability.LOW: StabilityRule(min_partials=4, min_lag_ms=800)}


@dataclass(frozen=True)
class StableItem:
    """One item of a stabilised result: the word and whether it is ``Stable``."""

    word: WordHypothesis
    stable: bool


class PartialStabilizer:
    """The stabilisation of one stream, utterance after utterance (see the module docstring)."""

    def __init__(self, stability: Stability | str = Stability.HIGH, *, rule: StabilityRule | None = None) -> None:
        """Args:
            stability: the level (``low``, ``medium``, ``high``).
            rule: a rule of one's own instead of the level's.

        Raises:
            ValueError: an unknown level.
        """
        self.rule = rule or RULES[Stability(stability)]
        self._pinned: list[WordHypothesis] = []
        self._tail: list[str] = []  # the previous partial's unstable words ...
        self._seen: list[int] = []  # ... and in how many successive partials each has read the same

    @property
    def pinned(self) -> tuple[WordHypothesis, ...]:
        """The stable items of the open utterance, as sent."""
        return tuple(self._pinned)

    def partial(self, words: Sequence[WordHypothesis], *, audio_end_s: float | None = None) -> tuple[StableItem, ...]:
        """Stabilise the next partial hypothesis of the open utterance.

        Args:
            words: the recogniser's words for the whole utterance so far.
            audio_end_s: the end of the audio this partial covers (default: the end of its last word).

        Returns:
            The pinned items (stable), the items that became stable now (stable), then the rest.
        """
        tail = self._unpinned(words)
        end_s = audio_end_s if audio_end_s is not None else (words[-1].end_s if words else 0.0)
        seen: list[int] = []
        for i, w in enumerate(tail):
            same = i < len(self._tail) and self._tail[i] == w.word and (i == 0 or seen[i - 1] > 1)
            seen.append(self._seen[i] + 1 if same else 1)
        settled = 0
        for w, count in zip(tail, seen):
            if count < self.rule.min_partials or (end_s - w.end_s) * 1000 < self.rule.min_lag_ms:
                break
            settled += 1
        self._pinned.extend(tail[:settled])
        self._tail = [w.word for w in tail[settled:]]
        self._seen = seen[settled:]
        return tuple(StableItem(w, True) for w in self._pinned) + tuple(StableItem(w, False) for w in tail[settled:])

    def finish(self, words: Sequence[WordHypothesis]) -> tuple[StableItem, ...]:
        """The final of the open utterance: its pinned items, then the final's own words after them.

        The next call starts a new utterance.
        """
        items = tuple(StableItem(w, True) for w in (*self._pinned, *self._unpinned(words)))
        self._pinned, self._tail, self._seen = [], [], []
        return items

    def _unpinned(self, words: Sequence[WordHypothesis]) -> list[WordHypothesis]:
        """The words of a hypothesis that come after the pinned items."""
        pinned = self._pinned
        if not pinned:
            return list(words)
        if len(words) >= len(pinned) and all(a.word == b.word for a, b in zip(words, pinned)):
            rest = list(words[len(pinned):])
        else:
            # The recogniser revised a pinned word: the pins cover everything up to their end.
            rest = [w for w in words if (w.start_s + w.end_s) / 2 >= pinned[-1].end_s]
        # Times stay in order: a word that starts before the last pin ends starts where it ends.
        end_s = pinned[-1].end_s
        return [w if w.start_s >= end_s else replace(w, start_s=end_s, end_s=max(w.end_s, end_s)) for w in rest]
