"""Make the short audio fixtures of the end-to-end tests (committed under ``tests/fixtures``).

Each fixture is a held-out sentence spoken by a synthesiser, written in one of
the formats the CLI reads: FLAC and WAV at 16 kHz, headerless big-endian
``audio/l16`` at 16 kHz (``.raw``), and 8 kHz µ-law WAV for the narrowband
route. The text of each is in ``tests/fixtures/transcripts.tsv``.

Usage: ``python -m engine.recipe.fixtures --out tests/fixtures``
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import soundfile

from engine.audio import resample
from engine.recipe.augment import telephone
from engine.recipe.voices import Voice, synthesize

# Chosen among short sentences x 4 voices as ones the shipped models recognise exactly (hello.raw re-chosen
# among 8 flite slt sentences when the models were retrained; the old one came out "defaults"): these are
# regression tests of the whole path (decode, features, model, beam, CLI), not accuracy measurements.
FIXTURES = (
    ("hello.flac", Voice("flite", "kal16"), "this is a simple example"),
    ("hello.wav", Voice("espeak", "en-us+m3", 150, 45), "read the data from the file"),
    ("hello.raw", Voice("flite", "slt"), "this is the default value"),
    ("phone.wav", Voice("espeak", "en-gb+f2", 150, 55), "the first argument is the name of the file"),
)


def main(argv: list[str] | None = None) -> None:
    """Write the fixtures and their transcripts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, voice, text in FIXTURES:
        samples, rate = synthesize(voice, text)
        wide = resample(samples, rate, 16000)
        wide = (wide / wide.abs().max() * 0.7).numpy()
        path = args.out / name
        if name.endswith(".flac"):
            soundfile.write(path, wide, 16000, format="FLAC", subtype="PCM_16")
        elif name.endswith(".raw"):
            path.write_bytes((wide * 32767).astype(">i2").tobytes())
        elif name.startswith("phone"):
            narrow = telephone(resample(wide, 16000, 16000), random.Random(0)).numpy()
            soundfile.write(path, narrow.astype(np.float32), 8000, subtype="ULAW")
        else:
            soundfile.write(path, wide, 16000, subtype="PCM_16")
        lines.append(f"{name}\t{text}")
    (args.out / "transcripts.tsv").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} fixtures to {args.out}")


if __name__ == "__main__":
    main()
