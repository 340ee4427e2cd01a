"""Choose the beam decoder's LM weight and word score on a tuning set of its own.

The tuning set: held-out sentences that are *not* in the evaluation sets,
spoken by random training voices (never by the held-out or reserved voices).
Emissions are computed once; each (lm_weight, word_score) pair re-decodes them.

Usage: ``python -m engine.recipe.tune --bundle models/NAME/VERSION --text DIR --eval-dir DIR``
prints the best pair as JSON (and the whole grid on stderr), with the WER of wider beams
at that pair for comparison (``wider_beam_wer``; the bundle keeps its beam of 16).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from pathlib import Path

import jiwer
import torch

from engine.audio import resample
from engine.beam import BeamConfig, BeamDecoder
from engine.bundle import load_bundle
from engine.decoding import greedy_batch
from engine.features import log_mel
from engine.recipe import augment as aug
from engine.recipe.voices import random_training_voice, synthesize

LM_WEIGHTS = (0.5, 0.7, 1.0, 1.5, 2.0, 3.0)
WORD_SCORES = (-1.0, 0.0, 1.0, 2.0, 3.0)
# Wider beams, tried at the best fusion pair and reported (not chosen: a wider beam slows every final).
WIDER_BEAMS = (32, 64)


def tuning_sentences(text_dir: Path, eval_dir: Path, count: int, seed: int) -> list[str]:
    """Held-out sentences that no evaluation manifest uses."""
    used = set()
    for manifest in eval_dir.rglob("manifest.tsv"):
        used |= {line.split("\t", 1)[1] for line in manifest.read_text().splitlines() if "\t" in line}
    pool = [s for s in (text_dir / "heldout.txt").read_text().splitlines() if s and s not in used]
    return random.Random(seed).sample(pool, min(count, len(pool)))


def main(argv: list[str] | None = None) -> None:
    """Grid-search the fusion parameters; print the best as JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--text", type=Path, required=True)
    p.add_argument("--eval-dir", type=Path, required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    bundle = load_bundle(args.bundle)
    rng = random.Random(args.seed)
    refs, emissions = [], []
    with torch.inference_mode():
        for text in tuning_sentences(args.text, args.eval_dir, args.count, args.seed):
            samples, rate = synthesize(random_training_voice(rng), text)
            audio = resample(samples, rate, 16000)
            if bundle.sample_rate_hz == 8000:
                audio = aug.telephone(audio, rng)
            feats = log_mel(audio, bundle.features)
            n = feats.shape[0] // 8 * 8
            log_probs, _ = bundle.model(feats[None, :n], torch.tensor([n]))
            refs.append(text)
            emissions.append(log_probs[0])
    greedy = [bundle.tokenizer.decode([t.token_id for t in greedy_batch(e[None], torch.tensor([e.shape[0]]))[0]])
              for e in emissions]
    results = {"greedy": jiwer.wer(refs, greedy)}
    decoder = bundle.manifest["decoder"]
    best = None
    for lm_weight, word_score in itertools.product(LM_WEIGHTS, WORD_SCORES):
        beam = BeamDecoder(bundle.tokenizer, args.bundle / decoder["lexicon"], args.bundle / decoder["lm"],
                           BeamConfig(lm_weight=lm_weight, word_score=word_score))
        hyps = [bundle.tokenizer.decode([t.token_id for t in beam.decode(e)]) for e in emissions]
        wer = jiwer.wer(refs, hyps)
        results[f"lm_weight={lm_weight} word_score={word_score}"] = wer
        if best is None or wer < best[0]:
            best = (wer, lm_weight, word_score)
    wider = {}
    for beam_size in WIDER_BEAMS:
        beam = BeamDecoder(bundle.tokenizer, args.bundle / decoder["lexicon"], args.bundle / decoder["lm"],
                           BeamConfig(lm_weight=best[1], word_score=best[2], beam_size=beam_size))
        wider[str(beam_size)] = round(jiwer.wer(refs, [bundle.tokenizer.decode([t.token_id for t in beam.decode(e)])
                                                       for e in emissions]), 4)
    print(json.dumps(results, indent=1), file=sys.stderr)
    print(json.dumps({"lm_weight": best[1], "word_score": best[2], "tune_wer": round(best[0], 4),
                      "greedy_wer": round(results["greedy"], 4), "utterances": len(refs),
                      "wider_beam_wer": wider}))


if __name__ == "__main__":
    main()
