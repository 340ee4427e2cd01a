"""The final pass: what turns an utterance into its final words, chosen once per request.

A stream's interim results are the CTC greedy path. When an utterance closes, its final comes
from one :class:`FinalPass`:

- ``greedy``: the greedy path itself (cheapest);
- ``ctc``: the bundle's CTC beam search with its word LM, and the request's custom LM mixed in
  (:mod:`engine.beam`, :mod:`engine.customlm`); live streams run it along the utterance;
- ``whisper``: Whisper's decoder over the utterance's full-context encoding
  (:class:`engine.whisper.decode.UtteranceDecoder`), its N-best rescored by the request's custom LM
  when there is one (or, asked for, the custom LM fused into its beam search); word times come
  from a CTC forced alignment of its words on the streaming pass's posteriors;
- ``whisper-fast``: the same, but the utterance is encoded alone, without the 15 s of padding the
  pretrained decoder needs, and the decoder reads it through the version's low-rank adapter trained
  for that (:mod:`engine.recipe.whisper_u2`): a fraction of the encoder's cost per final. A version
  without the adapter serves ``whisper``; a custom acoustic model (an adapter of the padded pass)
  does not apply to it.

:func:`choose_final_pass` resolves a request's wish against what the model version has (older
versions have no Whisper decoder), in one place.

Not built: attention rescoring of the CTC N-best (U2's second pass). The streaming CTC head of
release v2026-12-01 is too weak for its N-best to hold the right words (dev CER ~0.5), and a
rescoring pass needs the same full-context encoder pass as a full decode, so it would cost as
much as ``whisper`` for less accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

import torch
import torchaudio.functional as AF

from engine.customlm import CustomLM, sentence_scorer
from engine.decoding import Word
from engine.tokenizer import BLANK_ID, Tokenizer
from engine.whisper.lora import Adapter


class FinalPassKind(StrEnum):
    """The kinds of final pass (see the module docstring)."""

    GREEDY = "greedy"
    CTC = "ctc"
    WHISPER = "whisper"
    WHISPER_FAST = "whisper-fast"


#: The kinds whose finals come from Whisper's decoder over the utterance's features.
WHISPER_KINDS = frozenset({FinalPassKind.WHISPER, FinalPassKind.WHISPER_FAST})

#: How the ``whisper`` pass applies a custom LM, chosen by measurement (custom LM from the Allison
#: train-split texts, benchmarks/customlm.py): its N-best (beam 4) is rescored with the custom n-gram
#: LM at the request's customization_weight — Allison test split 6.3% (beam
#: 4 alone) to 4.9-5.1% (weights 0.15-0.3) — and its prompt is the glossary of the custom words
#: (:func:`engine.customlm.prompt_text`), which makes Whisper write words it never writes unprompted.
#: Corpus sentences as the prompt made the test split worse (6.2% with the rescoring: "sixteenth" ->
#: "sixteen"), so the corpora act through the rescoring only.
WHISPER_PROMPT = True
WHISPER_RESCORE = True
#: Shallow fusion: the custom LM also steers the decoder's beam search (each word scored as the next
#: one starts), not only the reranking of its finished hypotheses. Off by default, by measurement
#: (README "Custom language models"): it helps where the audio says the corpus's own sentences
#: (Allison TRAIN-split recordings, custom LM of their texts: 5.3% rescored, 3.8% fused at 0.5), and
#: hurts on sentences the corpus lacks (127 held-out TRAIN-split recordings, custom LM of the other
#: train texts: base 7.4%, rescored 6.2%, fused 7.8% at 0.15): the LM prunes the right words away
#: before the acoustics can save them. ``[recognition] custom_lm_fusion`` turns it on.
WHISPER_FUSION = False

#: Older spellings accepted in configuration: ``beam`` was the CTC beam search.
ALIASES = {"beam": FinalPassKind.CTC}


def parse_kind(value: str) -> FinalPassKind:
    """A configured or requested final pass by name.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if value in ALIASES:
        return ALIASES[value]
    try:
        return FinalPassKind(value)
    except ValueError:
        raise ValueError(f"final_pass must be one of {', '.join(k.value for k in FinalPassKind)}, "
                         f"got {value!r}") from None


@dataclass(frozen=True)
class FinalPass:
    """The final pass of one request.

    Attributes:
        kind: which pass.
        custom_lm: a custom LM mixed into the CTC search (``ctc``).
        customization_weight: its share in [0, 1] (``whisper``: the weight of its log-probability when it
            rescores the decoder's N-best).
        ignored_custom_lm: the request had a custom LM that this pass does not apply.
        whisper_prompt: ``whisper``: the custom LM as the decoder's prompt (``<|startofprev|>`` and its
            words and sentences, :func:`engine.customlm.prompt_text`), or empty.
        alternatives: ``whisper``: next-best transcripts each final also carries (``max_alternatives`` - 1).
        whisper_beam: ``whisper``: the decoder's beam for this request (0: the version's own).
        adapter: ``whisper``: a custom acoustic model's adapter applied to the decoder (and the
            full-context encoder) for this request's finals (:mod:`engine.whisper.lora`), or None.
        ignored_adapter: the request had a custom acoustic model that this pass does not apply
            (a Whisper adapter acts on the ``whisper`` pass only).
        whisper_fusion: ``whisper``: the custom LM steers the decoder's beam search (shallow fusion)
            instead of only rescoring its finished hypotheses.
        word_alternatives: ``whisper``: each final also carries its word slots' competing words, read off
            the beam's N-best (:mod:`engine.confusion`; Watson's ``word_alternatives_threshold``).
    """

    kind: FinalPassKind
    custom_lm: CustomLM | None = None
    customization_weight: float = 0.3
    ignored_custom_lm: bool = False
    whisper_prompt: tuple[int, ...] = ()
    alternatives: int = 0
    whisper_beam: int = 0
    adapter: Adapter | None = None
    ignored_adapter: bool = False
    whisper_fusion: bool = False
    word_alternatives: bool = False

    def rescorer(self) -> Callable[[str], float] | None:
        """``whisper``: the score its custom LM adds to each finished hypothesis of the decoder's beam
        (``customization_weight`` times the sentence's log-probability), or None without one."""
        if self.custom_lm is None:
            return None
        scorer = sentence_scorer(self.custom_lm)  # cached per custom LM; the first call reads it
        weight = self.customization_weight

        def rescore(text: str, end: bool = True) -> float:
            return weight * scorer.log_prob(text, end)
        return rescore

    @property
    def uses_search(self) -> bool:
        """True when the finals come from the CTC beam search."""
        return self.kind is FinalPassKind.CTC

    @property
    def uses_whisper(self) -> bool:
        """True when the finals need the utterance's features for Whisper's decoder."""
        return self.kind in WHISPER_KINDS

    @property
    def padded(self) -> bool:
        """``whisper``: the utterance is encoded with Whisper's padding (not ``whisper-fast``)."""
        return self.kind is not FinalPassKind.WHISPER_FAST


def choose_final_pass(bundle, requested: str | FinalPassKind | None = None, *, custom_lm: CustomLM | None = None,
                      customization_weight: float = 0.3, max_alternatives: int = 1,
                      whisper_beam: int = 0, adapter: Adapter | None = None,
                      fusion: bool | None = None, word_alternatives: bool = False) -> FinalPass:
    """The final pass a request gets on ``bundle`` (see :func:`_choose`); with ``max_alternatives`` above 1
    a ``whisper`` pass also returns that many transcripts in all, from its beam; ``whisper_beam`` (0: the
    version's own) is its decoder's beam; ``adapter`` (else the bundle's own, a custom acoustic model
    loaded with :func:`engine.adapted.load_adapted_bundle`) adapts the ``whisper`` pass; ``fusion`` (None:
    :data:`WHISPER_FUSION`) fuses its custom LM into the decoder's beam search; ``word_alternatives`` asks a
    ``whisper`` pass for the competing words of every word slot (other passes give none)."""
    chosen = _choose(bundle, requested, custom_lm=custom_lm, customization_weight=customization_weight,
                     fusion=WHISPER_FUSION if fusion is None else fusion)
    adapter = adapter if adapter is not None else getattr(bundle, "adapter", None)
    if chosen.kind is FinalPassKind.WHISPER:
        return replace(chosen, alternatives=max(0, max_alternatives - 1), whisper_beam=whisper_beam, adapter=adapter,
                       word_alternatives=word_alternatives)
    if chosen.kind is FinalPassKind.WHISPER_FAST:
        return replace(chosen, alternatives=max(0, max_alternatives - 1), whisper_beam=whisper_beam,
                       word_alternatives=word_alternatives, ignored_adapter=adapter is not None)
    return replace(chosen, ignored_adapter=adapter is not None)


def _choose(bundle, requested: str | FinalPassKind | None = None, *, custom_lm: CustomLM | None = None,
            customization_weight: float = 0.3, fusion: bool = False) -> FinalPass:
    """The final pass a request gets on ``bundle``.

    Args:
        bundle: the model version (:class:`engine.bundle.ModelBundle`).
        requested: the configured or requested kind; None: the version's own default.
        custom_lm: the request's custom LM, if any.
        customization_weight: its weight (0: not used).
        fusion: ``whisper``: shallow fusion of the custom LM (:data:`WHISPER_FUSION`).

    Rules: a version without Whisper's decoder serves ``whisper`` and ``whisper-fast`` with its CTC search, a
    version without the ``whisper-fast`` adapter serves it as ``whisper``; a version
    without a beam search serves ``ctc`` greedily. A custom LM (weight above 0) is mixed into the
    CTC search (``ctc``), or rescores the Whisper decoder's N-best (``whisper``; see
    :data:`WHISPER_RESCORE`).

    Raises:
        ValueError: an unknown kind.
    """
    kind = parse_kind(requested) if isinstance(requested, str) else requested
    if kind is None:
        kind = parse_kind(bundle.default_final_pass)
    custom = custom_lm if customization_weight > 0 and bundle.beam is not None else None
    if kind is FinalPassKind.WHISPER_FAST and bundle.whisper is not None and bundle.whisper.unpadded is None:
        kind = FinalPassKind.WHISPER
    if kind in WHISPER_KINDS and bundle.whisper is None:
        kind = FinalPassKind.CTC
    if kind in WHISPER_KINDS and custom_lm is not None \
            and customization_weight > 0:
        prompt = bundle.whisper.text.previous_text(custom_lm.prompt) if WHISPER_PROMPT else ()
        return FinalPass(kind, custom_lm if WHISPER_RESCORE else None, customization_weight,
                         ignored_custom_lm=not (prompt or WHISPER_RESCORE), whisper_prompt=prompt,
                         whisper_fusion=WHISPER_RESCORE and fusion)
    if kind is FinalPassKind.CTC and bundle.beam is None:
        kind = FinalPassKind.GREEDY
    return FinalPass(kind, custom, customization_weight)


def align_words(text: str, log_probs: torch.Tensor, tokenizer: Tokenizer, *, frame_seconds: float,
                frame_offset: int) -> list[Word]:
    """Words of ``text`` with times from a CTC forced alignment on ``log_probs`` ``(U, V)``.

    A word's confidence is the mean posterior of its pieces at their aligned frames. When the
    text cannot be aligned (more pieces, plus a blank between equal neighbours, than frames: a
    long Whisper text over a short or hallucinated utterance), the words share the span evenly
    with confidence 0.5.
    """
    words = text.split()
    if not words:
        return []
    pieces = [tokenizer.encode(w) for w in words]
    flat = [p for ps in pieces for p in ps]
    U = log_probs.shape[0]
    # CTC needs a frame per piece and a blank between two equal pieces.
    needed = len(flat) + sum(a == b for a, b in zip(flat, flat[1:]))
    if not flat or needed > U or any(p == BLANK_ID for p in flat):
        step = max(U, 1) / len(words)
        return [Word(w, round((frame_offset + i * step) * frame_seconds, 2),
                     round((frame_offset + (i + 1) * step) * frame_seconds, 2), 0.5) for i, w in enumerate(words)]
    with warnings.catch_warnings():
        # Deprecated in torchaudio 2.9 (pinned here), not yet replaced by another library.
        warnings.simplefilter("ignore")
        path, scores = AF.forced_align(log_probs[None].float(), torch.tensor([flat], dtype=torch.int32), blank=BLANK_ID)
    path, scores = path[0].tolist(), scores[0].exp().tolist()
    # A piece starts where the path leaves blank or another label; CTC separates repeats by a blank.
    spans: list[tuple[int, int, float]] = []  # (first frame, last frame, best posterior)
    previous = BLANK_ID
    for t, label in enumerate(path):
        if label != BLANK_ID and label != previous:
            spans.append((t, t, scores[t]))
        elif label != BLANK_ID:
            start, _, score = spans[-1]
            spans[-1] = (start, t, max(score, scores[t]))
        previous = label
    out, i = [], 0
    for word, ps in zip(words, pieces):
        mine = spans[i: i + len(ps)]
        i += len(ps)
        if not mine:
            break
        conf = sum(s for _, _, s in mine) / len(mine)
        out.append(Word(word, round((frame_offset + mine[0][0]) * frame_seconds, 2),
                        round((frame_offset + mine[-1][1] + 1) * frame_seconds, 2), round(conf, 3)))
    return out
