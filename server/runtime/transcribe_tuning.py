"""What a CLM's tuning text does: it chooses the model's ``customization_weight`` (run in a worker process).

Amazon Transcribe says tuning data "optimises" a CLM against its base model. Here it picks the
interpolation weight: the CLM is built from the training corpora (the same
:func:`engine.customlm.build_custom_lm` the training job runs, into a scratch folder), each tuning
sentence is scored by the base version's word LM and by the CLM, and the weight ``w`` is the one
that maximises the likelihood of the tuning text under the sentence mixture
``P(s) = (1 - w) P_base(s) + w P_clm(s)`` — found by EM (``w`` ← the mean posterior that a
sentence came from the CLM), so it is close to the share of tuning sentences the CLM explains
better than the base LM. Tuning text like the training text gives a high weight; tuning text the
training text does not cover gives a low one. It is clipped to [:data:`MIN_WEIGHT`,
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
from dataclasses import dataclass
from pathlib import Path

from engine.bundle import load_bundle
from engine.customlm import CustomLM, SentenceScorer, build_custom_lm
from engine.text import normalize_transcript

#: The least and most weight tuning may choose.
MIN_WEIGHT, MAX_WEIGHT = 0.05, 0.95
#: Tuning sentences read (the first ones).
MAX_SENTENCES = 20_000
EM_ITERATIONS = 100


@dataclass(frozen=True)
class _LMFile:
    """A word LM file as :class:`~engine.customlm.SentenceScorer` reads one (no custom words' spoken forms)."""

    lm_file: Path
    spoken: dict


def mixture_weight(base_logprobs: Sequence[float], clm_logprobs: Sequence[float], *,
                   iterations: int = EM_ITERATIONS) -> float:
    """The weight of the CLM that maximises the likelihood of sentences under the two-model sentence mixture (EM).

    Args:
        base_logprobs, clm_logprobs: each sentence's natural-log probability under each model.

    Raises:
        ValueError: no sentences, or lists of different lengths.
    """
    if not base_logprobs or len(base_logprobs) != len(clm_logprobs):
        raise ValueError("mixture_weight needs the same, non-zero number of scores from both models")
    # log(P_clm / P_base) per sentence; the posterior of the CLM is a logistic of it.
    ratios = [c - b for b, c in zip(base_logprobs, clm_logprobs, strict=True)]
    w = 0.5
    for _ in range(iterations):
        prior = math.log(w / (1.0 - w))
        w = sum(1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, prior + r)))) for r in ratios) / len(ratios)
        w = min(max(w, 1e-6), 1.0 - 1e-6)
    return w


def perplexity(base_logprobs: Sequence[float], clm_logprobs: Sequence[float], words: int, weight: float) -> float:
    """Per-word perplexity of the sentences under the sentence mixture at ``weight``."""
    total = 0.0
    for b, c in zip(base_logprobs, clm_logprobs, strict=True):
        hi = max(b, c)
        total += hi + math.log((1.0 - weight) * math.exp(b - hi) + weight * math.exp(c - hi))
    return math.exp(-total / max(words, 1))


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
        text at a few weights (``base`` alone, the chosen one, ``clm`` alone).

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
        clm = SentenceScorer(CustomLM.load(scratch))
        base = SentenceScorer(_LMFile(Path(bundle_path) / "lm.arpa", {}))  # type: ignore[arg-type]
        base_lp = [base.log_prob(s) for s in sentences]
        progress(0.85)
        clm_lp = [clm.log_prob(s) for s in sentences]
        progress(0.95)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    best = mixture_weight(base_lp, clm_lp)
    weight = round(min(max(best, MIN_WEIGHT), MAX_WEIGHT), 3)
    words = sum(len(normalize_transcript(s).split()) + 1 for s in sentences)
    return {"weight": weight, "sentences": len(sentences),
            "perplexity": {"base": round(perplexity(base_lp, clm_lp, words, 1e-9), 2),
                           "chosen": round(perplexity(base_lp, clm_lp, words, weight), 2),
                           "clm": round(perplexity(base_lp, clm_lp, words, 1 - 1e-9), 2)}}
