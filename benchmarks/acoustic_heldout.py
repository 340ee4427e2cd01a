"""Choosing a Whisper adapter's config on the Allison TRAIN split only: train on part of it, score the rest.

The held-out part: TRAIN-split prompts (:func:`engine.recipe.allison.split_of`) whose name's sha1 hex
digest has 0-3 as its second-to-last digit; the adapter (:func:`engine.acoustic.adapt_acoustic_model`
with each given :class:`~engine.whisper.adapt.WhisperAdaptConfig`) trains on the other TRAIN-split
prompts with their transcripts. The TEST split is never read. For each config: training seconds, the
held-out WER of the live route's finals (int8 greedy Whisper decode) of the base and of the adapted
version, with a custom LM of the training prompts' texts at each ``--weights`` entry (0: none), and the
held-out prompts with the most word errors (where the rest of the errors are).

``--max-seconds`` leaves out longer prompts on both sides (the table in :mod:`engine.acoustic` used
25, without the "seconds of silence" prompts: ``--skip-silence``).

Usage::

    python -m benchmarks.acoustic_heldout --out benchmarks/reports --configs '[{}]' --weights 0,0.15,0.3,0.5,0.9
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from engine.acoustic import AdaptConfig, adapt_acoustic_model
from engine.adapted import load_adapted_bundle
from engine.audio import load_audio
from engine.bundle import load_bundle, resolve_model
from engine.catalog import default_models_dir
from engine.customlm import CustomLM, build_custom_lm
from engine.recipe.allison import SOUNDS, prompts, split_of
from engine.recognizer import Recognizer
from engine.scoring import per_file, score as score_texts
from engine.whisper.adapt import WhisperAdaptConfig


def held_out(name: str) -> bool:
    """Whether a TRAIN-split prompt is in the held-out part."""
    return hashlib.sha1(name.encode()).hexdigest()[-2] in "0123"


def load_parts(rate: int, max_seconds: float | None, skip_silence: bool) -> tuple[list, list]:
    """``(fit, held)`` lists of ``(name, samples, transcript)`` of the TRAIN split."""
    fit, held = [], []
    for name, text in sorted(prompts().items()):
        wav = SOUNDS / f"{name}.wav"
        if split_of(name) != "train" or not wav.exists() or (skip_silence and "seconds of silence" in text):
            continue
        samples = load_audio(wav, rate)
        if max_seconds is not None and samples.numel() > max_seconds * rate:
            continue
        (held if held_out(name) else fit).append((name, samples, text))
    return fit, held


def score(bundle, held: list, custom: CustomLM | None, weight: float) -> tuple[float, list[dict]]:
    """Held-out WER and each prompt's word errors."""
    recognizer = Recognizer(bundle)
    refs, hyps, per = [], [], []
    for name, samples, text in held:
        hyp = recognizer.transcribe(samples, custom_lm=custom if weight else None,
                                    customization_weight=weight).transcript
        (one,) = per_file([text], [hyp])
        per.append({"name": name, "errors": one["errors"], "words": one["reference_words"],
                    "seconds": round(samples.numel() / bundle.sample_rate_hz, 1),
                    "reference": one["reference"], "hypothesis": one["hypothesis"]})
        refs.append(text)
        hyps.append(hyp)
    return round(score_texts(refs, hyps).wer, 4), per


def main(argv: list[str] | None = None) -> None:
    """Train, score and write ``acoustic-heldout.json`` and ``.md``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="[{}]", help="JSON list of WhisperAdaptConfig keyword arguments")
    p.add_argument("--weights", default="0,0.15", help="custom LM weights to score the adapted version with")
    p.add_argument("--max-seconds", type=float, help="leave out longer prompts")
    p.add_argument("--skip-silence", action="store_true", help="leave out the 'N seconds of silence' prompts")
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    configs = [WhisperAdaptConfig(**c) for c in json.loads(args.configs)]
    weights = [float(w) for w in args.weights.split(",")]
    installed = resolve_model(default_models_dir(), "en-US_NarrowbandModel")
    base = load_bundle(installed.path)
    if base.whisper is None:
        raise SystemExit(f"{base.version} is not Whisper-based")
    fit, held = load_parts(base.sample_rate_hz, args.max_seconds, args.skip_silence)
    print(f"{len(fit)} prompts trained on, {len(held)} held out", file=sys.stderr, flush=True)
    base_wer, _ = score(base, held, None, 0.0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        build_custom_lm(base, ["\n".join(text for _, _, text in fit)], [], Path(tmp) / "lm")
        custom = CustomLM.load(Path(tmp) / "lm")
        for i, config in enumerate(configs):
            began = time.monotonic()
            summary = adapt_acoustic_model(base, [(s, t) for _, s, t in fit], Path(tmp) / f"am{i}",
                                           config=AdaptConfig(threads=2), whisper_config=config)
            seconds = round(time.monotonic() - began, 1)
            adapted = load_adapted_bundle(installed.path, Path(tmp) / f"am{i}")
            row = {"config": summary["config"], "train_seconds": seconds, "epoch_losses": summary["epoch_losses"],
                   "held_wer": {}}
            for w in weights:
                row["held_wer"][str(w)], per = score(adapted, held, custom, w)
                if w == 0:
                    row["worst"] = sorted(per, key=lambda r: -r["errors"])[:10]
                    row["errors"] = sum(r["errors"] for r in per)
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "worst"}), file=sys.stderr, flush=True)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks.acoustic_heldout " + shlex.join(given)
    report = {"command": command, "version": base.version, "fit": len(fit), "held": len(held),
              "base_held_wer": base_wer, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acoustic-heldout.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Whisper adapter on held-out TRAIN-split Allison prompts", "",
             f"Command: `{command}`. `{base.version}`; {len(fit)} TRAIN-split prompts trained on, {len(held)} "
             f"held out (the TEST split is not read). Base version on the held-out part: "
             f"{100 * base_wer:.1f}% WER.", "",
             "| config | training s | " + " | ".join(f"WER, custom LM {w:g}" if w else "WER" for w in weights) + " |",
             "|---|---|" + "---|" * len(weights)]
    for r in results:
        c = r["config"]
        name = f"rank {c['rank']}, {c['encoder_blocks']} enc blocks{', decoder' if c['decoder'] else ''}, " \
               f"{c['epochs']} ep, lr {c['learning_rate']}, speeds {'/'.join(map(str, c['speeds']))}"
        lines.append(f"| {name} | {r['train_seconds']:.0f} | "
                     + " | ".join(f"{100 * r['held_wer'][str(w)]:.1f}%" for w in weights) + " |")
    for r in results:
        if "worst" not in r:
            continue
        lines += ["", f"Held-out prompts with the most word errors ({r['errors']} in all), adapter alone:", "",
                  "| prompt | seconds | errors / words | reference | hypothesis |", "|---|---|---|---|---|"]
        lines += [f"| {w['name']} | {w['seconds']} | {w['errors']} / {w['words']} | {w['reference'][:80]} | "
                  f"{w['hypothesis'][:80]} |" for w in r["worst"]]
    (args.out / "acoustic-heldout.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
