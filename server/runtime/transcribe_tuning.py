"""What a CLM's tuning text does: it chooses the model's ``customization_weight`` (run in a worker process).

Amazon Transcribe says tuning data "optimises" a CLM against its base model. Here it picks the
interpolation weight: the CLM is built from the training corpora (the same
:func:`engine.customlm.build_custom_lm` the training job runs, into a scratch folder), every word
of the tuning text (and each sentence end) is scored in its trigram context by the base version's
word LM and by the CLM, and the weight ``w`` is the one that minimises the tuning text's
perplexity under the word-level interpolation ``P(w | h) = (1 - w) P_base(w | h) + w P_clm(w | h)``
— the mixture the CTC beam search uses — found by EM (``w`` ← the mean posterior that a word came
from the CLM; SRILM's ``compute-best-mix``). Tuning text like the training text gives a high
weight; tuning text the training text does not cover gives a low one. It is clipped to [:data:`MIN_WEIGHT`,
:data:`MAX_WEIGHT`] and saved as the model's ``customization_weight``, which every recognition
with the CLM uses unless the request names another (on a Whisper-based version: the scale of the
CLM's log-probability when it rescores the decoder's N-best; on a CTC version: the mixture weight
of the beam search's LM). At most :data:`MAX_SENTENCES` lines of the tuning text are read.

The server process never imports this module; :mod:`server.runtime.transcribe_models` names
:func:`tune_weight` to :func:`server.runtime.subprocess_job.run_job`.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.bundle import load_bundle
from engine.customlm import LM_FILE, build_custom_lm, word_lm
from engine.text import normalize_transcript

#: The least and most weight tuning may choose.
MIN_WEIGHT, MAX_WEIGHT = 0.05, 0.95
#: Tuning sentences read (the first ones).
MAX_SENTENCES = 20_000
EM_ITERATIONS = 100


class WordScorer:
    """A word n-gram model (ARPA) scoring each word of a sentence in its context (natural logs)."""

    def __init__(self, arpa: Path) -> None:
        self._dictionary, self._lm = word_lm(arpa)

    def word_log_probs(self, sentence: str) -> list[float]:
        """Each word's log-probability given the words before it, then the sentence end's."""
        state = self._lm.start(False)
        out = []
        for word in normalize_transcript(sentence).split():
            state, score = self._lm.score(state, self._dictionary.get_index(word))
            out.append(score * math.log(10))
        _state, score = self._lm.finish(state)
        return out + [score * math.log(10)]


def mixture_weight(base_logprobs: Sequence[float], clm_logprobs: Sequence[float], *,
                   iterations: int = EM_ITERATIONS) -> float:
    """The weight of the CLM that maximises the likelihood of a text under the two-model interpolation (EM).

    Args:
        base_logprobs, clm_logprobs: each token's natural-log probability (in its context) under each model.

    Raises:
        ValueError: no sentences, or lists of different lengths.
    """
    if not base_logprobs or len(base_logprobs) != len(clm_logprobs):
        raise ValueError("mixture_weight needs the same, non-zero number of scores from both models")
    # log(P_clm / P_base) per token; the posterior of the CLM is a logistic of it.
    ratios = [c - b for b, c in zip(base_logprobs, clm_logprobs, strict=True)]
    w = 0.5
    for _ in range(iterations):
        prior = math.log(w / (1.0 - w))
        w = sum(1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, prior + r)))) for r in ratios) / len(ratios)
        w = min(max(w, 1e-6), 1.0 - 1e-6)
    return w


def perplexity(base_logprobs: Sequence[float], clm_logprobs: Sequence[float], weight: float) -> float:
    """Per-token perplexity under the interpolation at ``weight``."""
    total = 0.0
    for b, c in zip(base_logprobs, clm_logprobs, strict=True):
        hi = max(b, c)
        total += hi + math.log((1.0 - weight) * math.exp(b - hi) + weight * math.exp(c - hi))
    return math.exp(-total / max(len(base_logprobs), 1))


def _sentences(path: Path, limit: int) -> list[str]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if normalize_transcript(line).split():
                out.append(line.strip())
                if len(out) >= limit:
                    break
    return out


def tune_weight(bundle_path: str, corpus_paths: list[str], tuning_path: str, scratch_dir: str, *,
                progress: Callable[[float], None]) -> dict:
    """In the worker process: the customization weight the tuning text chooses (see the module docstring).

    Returns:
        ``weight``, ``sentences`` (tuning sentences scored), and the per-word ``perplexity`` of the tuning
        text under the base LM alone, at the chosen weight, and under the CLM alone.

    Raises:
        ValueError: the tuning text has no sentence with words.
    """
    bundle = load_bundle(Path(bundle_path))
    texts = [Path(p).read_text(encoding="utf-8") for p in corpus_paths]
    scratch = Path(scratch_dir)
    try:
        build_custom_lm(bundle, texts, [], scratch, progress=lambda f: progress(0.7 * f))
        del texts
        sentences = _sentences(Path(tuning_path), MAX_SENTENCES)
        if not sentences:
            raise ValueError("the tuning text has no sentence with words")
        base, clm = WordScorer(Path(bundle_path) / LM_FILE), WordScorer(scratch / LM_FILE)
        base_lp = [p for s in sentences for p in base.word_log_probs(s)]
        progress(0.85)
        clm_lp = [p for s in sentences for p in clm.word_log_probs(s)]
        progress(0.95)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    best = mixture_weight(base_lp, clm_lp)
    weight = round(min(max(best, MIN_WEIGHT), MAX_WEIGHT), 3)
    return {"weight": weight, "sentences": len(sentences),
            "perplexity": {"base": round(perplexity(base_lp, clm_lp, 1e-9), 2),
                           "chosen": round(perplexity(base_lp, clm_lp, weight), 2),
                           "clm": round(perplexity(base_lp, clm_lp, 1 - 1e-9), 2)}}
