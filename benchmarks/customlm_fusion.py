"""Shallow fusion against N-best rescoring of a custom LM in the Whisper final pass, on TRAIN-split audio.

Two conditions a user of a custom LM meets, both from the Allison TRAIN split (asterisk-core-sounds-en;
the test split is not used here):

- ``scripted``: the callers say the corpus's own sentences (an IVR's prompts): the last ``--files``
  TRAIN-split recordings, custom LM of all TRAIN-split texts;
- ``unscripted``: sentences the corpus lacks: the held-out part of the TRAIN split
  (:func:`benchmarks.acoustic_heldout.held_out`), custom LM of the other TRAIN-split texts.

Per condition: WER of the newest narrowband version's live finals (``Recognizer.transcribe``, as
``voxgate eval``) without a custom LM, with it rescoring the decoder's beam of 4, and fused into that
beam (:mod:`engine.whisper.decode`), at each weight. Report: ``customlm-fusion.md`` / ``.json``.

Usage::

    python -m benchmarks.customlm_fusion --out benchmarks/reports --cache /work/data/customlm-fusion
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.acoustic_heldout import held_out
from engine.audio import load_audio
from engine.bundle import load_bundle, resolve_model
from engine.catalog import default_models_dir
from engine.customlm import CustomLM, build_custom_lm
from engine.recipe.allison import SOUNDS, prompts, split_of
from engine.recognizer import Recognizer
from engine.scoring import wer


def conditions(files: int) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """Condition -> (``(prompt, transcript)`` to recognise, texts of the custom LM)."""
    train = [(n, t) for n, t in sorted(prompts().items())
             if split_of(n) == "train" and (SOUNDS / f"{n}.wav").exists()]
    return {"scripted": (train[-files:], [t for _, t in train]),
            "unscripted": ([(n, t) for n, t in train if held_out(n)], [t for n, t in train if not held_out(n)])}


def main(argv: list[str] | None = None) -> None:
    """Measure and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--cache", type=Path, default=Path("/work/data/customlm-fusion"), help="built custom LMs")
    p.add_argument("--files", type=int, default=120, help="recordings of the scripted condition")
    p.add_argument("--weights", default="0.15,0.3,0.5", help="customization weights")
    args = p.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")]
    torch.set_num_threads(1)
    bundle = load_bundle(resolve_model(default_models_dir(), "en-US_NarrowbandModel").path)
    recognizer = Recognizer(bundle)
    rows = []
    for name, (files, corpus) in conditions(args.files).items():
        lm_dir = args.cache / f"lm-{name}-{bundle.version}"
        build_custom_lm(bundle, ["\n".join(corpus)], [], lm_dir)
        custom = CustomLM.load(lm_dir)
        audio = [load_audio(SOUNDS / f"{n}.wav", bundle.sample_rate_hz) for n, _ in files]
        refs = [t for _, t in files]
        for how, fusion in (("base", None), *((f"{m} {w:g}", (m == "fusion", w))
                                               for m in ("rescoring", "fusion") for w in weights)):
            began, hyps = time.monotonic(), []
            for samples in audio:
                out = recognizer.transcribe(samples, custom_lm=custom if fusion else None,
                                            customization_weight=fusion[1] if fusion else 0.0,
                                            fusion=fusion[0] if fusion else None)
                hyps.append(out.transcript)
            rows.append({"condition": name, "files": len(files), "system": how, "wer": wer(refs, hyps),
                         "seconds": round(time.monotonic() - began, 1)})
            print(json.dumps(rows[-1]), flush=True)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks.customlm_fusion" + (" " + " ".join(given) if given else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "customlm-fusion.json").write_text(json.dumps({"command": command, "version": bundle.version,
                                                               "rows": rows}, indent=1) + "\n")
    lines = ["# Custom LM in the Whisper pass: shallow fusion vs N-best rescoring", "",
             f"Command: `{command}`. {bundle.version}, live finals (int8, beam 4 with a custom LM). "
             "scripted: the callers say the corpus's sentences (last TRAIN-split recordings, custom LM of all "
             "TRAIN-split texts); unscripted: held-out TRAIN-split recordings, custom LM of the other TRAIN-split "
             "texts. WER counted by `engine.scoring`.", "",
             "| condition | files | system | WER | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['condition']} | {r['files']} | {r['system']} | {100 * r['wer']:.2f}% | {r['seconds']} |"
              for r in rows]
    (args.out / "customlm-fusion.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
