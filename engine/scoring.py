"""Word error rate as every voxgate evaluation counts it: one scoring normalisation for every system.

References and hypotheses both go through :func:`scoring_form` before they are aligned:

- annotations that are not speech are dropped: ``[ascending tones]``, ``(10 seconds of silence)``,
  ``(note: does not say "2")`` — transcribers' notes, never words anybody said;
- :func:`engine.text.normalize_transcript` (lower case, numbers spelled out, punctuation dropped);
- contractions are written out (``you're`` -> ``you are``, ``don't`` -> ``do not``), as Whisper's own
  evaluation normaliser does: a recogniser that writes ``you're`` for a reference's ``you are`` has
  heard the speech right, and two systems must not differ by their spelling conventions.

An empty reference (a file of silence or tones) is scored too: each hypothesised word on it is an
insertion, and an empty hypothesis costs nothing. jiwer refuses empty references, so they are
counted here beside jiwer's alignment of the rest.

The user-facing transcripts are not changed by any of this: it is only how errors are counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from engine.text import normalize_transcript

_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)")

#: whole-word contractions first, then the suffixes (applied to normalised, lower-case text)
_CONTRACTIONS = (
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\bcannot\b", "can not"), (r"\bshan't\b", "shall not"),
    (r"\blet's\b", "let us"), (r"\bain't\b", "is not"),
    (r"\b(it|that|what|there|here|he|she|who|where|how)'s\b", r"\1 is"),
    (r"n't\b", " not"), (r"'re\b", " are"), (r"'ve\b", " have"), (r"'m\b", " am"), (r"'ll\b", " will"),
    (r"'d\b", " would"),
)
_CONTRACTION_RES = tuple((re.compile(p), r) for p, r in _CONTRACTIONS)


def strip_annotations(text: str) -> str:
    """``text`` without its ``[bracketed]`` and ``(parenthesised)`` annotations."""
    return _ANNOTATION.sub(" ", text)


def scoring_form(text: str) -> str:
    """The words of ``text`` as they are compared: see the module's docstring."""
    text = normalize_transcript(strip_annotations(text))
    for pattern, replacement in _CONTRACTION_RES:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Score:
    """Errors over a set of utterances, counted on :func:`scoring_form` words and characters."""

    files: int
    reference_words: int
    substitutions: int
    deletions: int
    insertions: int
    cer: float

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """:attr:`errors` / reference words; insertions alone over no words count as that many errors per
        word (1.0 each), so a set of only silence still scores its insertions."""
        return self.errors / self.reference_words if self.reference_words else float(self.errors)

    def to_dict(self) -> dict:
        """The counts and rates as JSON-ready numbers (rates to 4 decimals)."""
        return {"files": self.files, "wer": round(self.wer, 4), "cer": round(self.cer, 4),
                "substitutions": self.substitutions, "deletions": self.deletions, "insertions": self.insertions,
                "reference_words": self.reference_words}


def score(references: Sequence[str], hypotheses: Sequence[str]) -> Score:
    """Score hypotheses against references (raw text on both sides; :func:`scoring_form` is applied here).

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [scoring_form(r) for r in references]
    hyps = [scoring_form(h) for h in hypotheses]
    spoken = [(r, h) for r, h in zip(refs, hyps) if r]
    silent_words = sum(len(h.split()) for r, h in zip(refs, hyps) if not r)
    silent_chars = sum(len(h) for r, h in zip(refs, hyps) if not r)
    subs = dels = ins = 0
    char_errors, ref_chars = silent_chars, 0
    if spoken:
        words = jiwer.process_words([r for r, _ in spoken], [h for _, h in spoken])
        subs, dels, ins = words.substitutions, words.deletions, words.insertions
        chars = jiwer.process_characters([r for r, _ in spoken], [h for _, h in spoken])
        char_errors += chars.substitutions + chars.deletions + chars.insertions
        ref_chars = sum(len(r) for r, _ in spoken)
    cer = char_errors / ref_chars if ref_chars else float(char_errors)
    return Score(files=len(refs), reference_words=sum(len(r.split()) for r in refs), substitutions=subs,
                 deletions=dels, insertions=ins + silent_words, cer=cer)


def per_file(references: Sequence[str], hypotheses: Sequence[str]) -> list[dict]:
    """Each pair as compared: ``reference`` and ``hypothesis`` in :func:`scoring_form`, its ``errors`` and
    ``reference_words``."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    out = []
    for r, h in zip(references, hypotheses):
        one = score([r], [h])
        out.append({"reference": scoring_form(r), "hypothesis": scoring_form(h), "errors": one.errors,
                    "reference_words": one.reference_words})
    return out


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """:func:`score`'s word error rate."""
    return score(references, hypotheses).wer
