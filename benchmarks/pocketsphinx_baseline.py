"""Word error rate of pocketsphinx 5 (its shipped en-US model) on a voxgate manifest.

The baseline of the foundation issue: the same audio, the same text
scoring (:mod:`engine.scoring`).
pocketsphinx's en-US model is a 16 kHz model, so 8 kHz audio is upsampled.

Usage: ``python -m benchmarks.pocketsphinx_baseline --manifest FILE.tsv [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from pocketsphinx import Decoder
from tqdm import tqdm

from engine.audio import load_audio
from engine.manifest import read_manifest
from engine.scoring import score


def evaluate(manifest: Path) -> dict:
    """Run pocketsphinx over every file; return WER, CER and real-time factor."""
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    refs, hyps = [], []
    audio_s = proc_s = 0.0
    for audio, reference in tqdm(read_manifest(manifest), desc="pocketsphinx", unit="file", file=sys.stderr, disable=None):
        samples = load_audio(audio, 16000).numpy()
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
        began = time.perf_counter()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        proc_s += time.perf_counter() - began
        audio_s += samples.size / 16000
        hyp = decoder.hyp()
        refs.append(reference)
        hyps.append(hyp.hypstr if hyp else "")
    scored = score(refs, hyps)
    return {"manifest": str(manifest), "system": "pocketsphinx 5 en-us", "files": len(refs),
            "wer": round(scored.wer, 4), "cer": round(scored.cer, 4),
            "rtf": round(proc_s / audio_s, 4) if audio_s else None}


def main(argv: list[str] | None = None) -> None:
    """Print the baseline's figures for one manifest."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = evaluate(args.manifest)
    print(json.dumps(report) if args.json else f"pocketsphinx WER {report['wer']:.2%} CER {report['cer']:.2%} RTF {report['rtf']}")


if __name__ == "__main__":
    main()
