"""Export a training checkpoint as a model artifact (see :mod:`engine.bundle`).

Usage::

    python -m engine.recipe.export --ckpt ckpt-last.pt --tokenizer tokenizer.model \
        --version en-US_BroadbandModel.v2026-11-01 --out models/ [--lm-text train.txt]
    python -m engine.recipe.export --version en-US_BroadbandModel.v2026-11-01 \
        --metrics benchmarks/reports/base-models.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from engine.beam import BeamConfig, write_lexicon
from engine.bundle import MANIFEST, parse_version, save_bundle
from engine.lm import build_arpa
from engine.tokenizer import Tokenizer
from engine.features import FeatureConfig
from engine.model import ModelConfig, StreamingCTC
from engine.recipe.voices import ESPEAK_TRAIN_ACCENTS, FESTIVAL_TRAIN, FLITE_TRAIN, HELD_OUT

RATES = {"wide": 16000, "narrow": 8000}


def training_summary(ck: dict) -> dict:
    """What the model was trained on, for the manifest."""
    return {
        "corpus": "synthetic speech: sentences from Python stdlib docstrings and /usr/share/doc texts",
        "voices": {"espeak-ng": list(ESPEAK_TRAIN_ACCENTS), "flite": list(FLITE_TRAIN), "festival": list(FESTIVAL_TRAIN)},
        "held_out_voices": sorted(HELD_OUT),
        "augmentation": ["speed 0.88-1.12", "random EQ", "band limits", "synthetic reverb", "coloured noise 5-40 dB",
                         "telephone (band-pass, 8 kHz, mu-law)", "frequency warp", "spectral tilt", "SpecAugment"],
        "band": ck["band"], "hours": round(float(ck["hours"]), 2), "utterances": ck["utterances"],
        "epochs": ck["epoch"], "history": ck["history"], "init_from": ck.get("init_from"),
    }


def main(argv: list[str] | None = None) -> None:
    """Write the artifact (with ``--ckpt``) and/or record measured metrics in its manifest."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path)
    p.add_argument("--tokenizer", type=Path)
    p.add_argument("--version", required=True)
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--description", default="")
    p.add_argument("--lm-text", type=Path, help="sentences for the bundle's word LM (beam search); none: greedy")
    p.add_argument("--lm-order", type=int, default=3)
    p.add_argument("--lm-weight", type=float, default=0.5)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--metrics", type=Path, help="benchmarks/reports/base-models.json: record this version's rows")
    args = p.parse_args(argv)
    name, _ = parse_version(args.version)
    if args.ckpt:
        ck = torch.load(args.ckpt, weights_only=False)
        model = StreamingCTC(ModelConfig.from_dict(ck["config"]))
        model.load_state_dict(ck["model"])
        decoder, extra = None, {}
        with tempfile.TemporaryDirectory() as tmp:
            if args.lm_text:
                sentences = [s for s in args.lm_text.read_text().splitlines() if s.strip()]
                lm_summary = build_arpa(sentences, Path(tmp) / "lm.arpa", order=args.lm_order)
                words = {w for s in sentences for w in s.split()}
                write_lexicon(words, Tokenizer(args.tokenizer), Path(tmp) / "lexicon.txt")
                config = BeamConfig(lm_weight=args.lm_weight, word_score=args.word_score)
                decoder = {"type": "beam", "lm": "lm.arpa", "lexicon": "lexicon.txt", "config": asdict(config),
                           "lm_summary": lm_summary}
                extra = {"lm.arpa": Path(tmp) / "lm.arpa", "lexicon.txt": Path(tmp) / "lexicon.txt"}
            save_bundle(args.out, model=model, tokenizer_file=args.tokenizer,
                        features=FeatureConfig(sample_rate_hz=RATES[ck["band"]]), name=name, version=args.version,
                        locale="en-US", description=args.description, training_data=training_summary(ck),
                        decoder=decoder, extra_files=extra)
    manifest_path = args.out / name / args.version / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    if args.metrics:
        for row in json.loads(args.metrics.read_text()):
            if row["system"] == args.version:
                manifest["metrics"][f"{row['band']}/{row['set']}"] = {k: row[k] for k in ("wer", "cer", "rtf", "files")}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {manifest_path.parent}")


if __name__ == "__main__":
    main()
