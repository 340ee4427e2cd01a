"""Export a fine-tuned streaming Whisper run as a base-model version (only the trained part is written).

Usage::

    python -m engine.recipe.whisper_export --run data/whisper/run --version en-US_BroadbandModel.v2026-12-01 \\
        --lm-text data/whisper/text/train.txt --description "..." [--out models]

The version's sample rate follows its name (``Narrowband``: 8 kHz, upsampled inside the front end;
``Broadband``: 16 kHz). The artifact holds ``model.pt`` (the trained encoder blocks and CTC head,
float16), the CTC tokenizer, and, with ``--lm-text``, the word LM and lexicon of the CTC beam search
(which custom language models extend); the manifest names the pinned pretrained weights by sha256.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from engine.beam import BeamConfig, write_lexicon
from engine.bundle import parse_version, save_bundle
from engine.lm import build_arpa
from engine.tokenizer import Tokenizer
from engine.whisper.features import WhisperFeatureConfig
from engine.whisper.model import WhisperCTCConfig, build_streaming, load_pretrained


def training_summary(run: Path, ckpt: dict) -> dict:
    """What the manifest says about the training data and run."""
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    dev = [entry for entry in log if "dev" in entry or "final_dev" in entry]
    return {"recipe": "engine.recipe.whisper_train", "steps": ckpt["step"], "epochs": ckpt["epoch"],
            "position": ckpt["position"],
            "labelled": "synthetic speech (espeak-ng, flite, festival diphone voices), augmented; 40% telephone band",
            "unlabelled": "asterisk-core-sounds-es/fr/it/ru prompts (real speech, label-free distillation)",
            "dev": dev[-1] if dev else None}


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--ckpt", default="ckpt-last.pt")
    p.add_argument("--version", required=True)
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--description", default="")
    p.add_argument("--lm-text", type=Path)
    p.add_argument("--lm-weight", type=float, default=0.5)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--final-pass", default="whisper", help="the version's default final pass")
    p.add_argument("--whisper-fp32", action="store_true",
                   help="decode the whisper pass in float32 (default: int8 dynamic quantisation, 2.3x less CPU for "
                        "the same WER on Allison TRAIN-split prompts; benchmarks/reports/streaming-cost.md)")
    args = p.parse_args(argv)
    name, _ = parse_version(args.version)
    rate = 8000 if "Narrowband" in name else 16000
    ckpt = torch.load(args.run / args.ckpt, weights_only=False)
    config = WhisperCTCConfig.from_dict(ckpt["config"])
    model = build_streaming(config, load_pretrained(config.pretrained), ckpt["model"])
    tokenizer_file = args.run / "tokenizer.model"
    decoder, extra = None, {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.lm_text:
            sentences = [s for s in args.lm_text.read_text().splitlines() if s.strip()]
            lm_summary = build_arpa(sentences, Path(tmp) / "lm.arpa", order=3)
            write_lexicon({w for s in sentences for w in s.split()}, Tokenizer(tokenizer_file), Path(tmp) / "lexicon.txt")
            decoder = {"type": "beam", "lm": "lm.arpa", "lexicon": "lexicon.txt",
                       "config": asdict(BeamConfig(lm_weight=args.lm_weight, word_score=args.word_score)),
                       "lm_summary": lm_summary}
            extra = {"lm.arpa": Path(tmp) / "lm.arpa", "lexicon.txt": Path(tmp) / "lexicon.txt"}
        path = save_bundle(args.out, model=model, tokenizer_file=tokenizer_file, features=WhisperFeatureConfig(rate),
                           name=name, version=args.version, locale="en-US", description=args.description,
                           training_data=training_summary(args.run, ckpt), decoder=decoder, extra_files=extra,
                           extra_manifest={"final_pass": args.final_pass,
                                           "whisper_decoding": {"int8": not args.whisper_fp32}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
