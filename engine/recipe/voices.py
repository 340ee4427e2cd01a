"""The synthetic voices of the recipe and which of them are held out.

Training uses espeak-ng (several English accents and many voice variants),
flite and festival's diphone voices. Held out from training, for honest
evaluation: the espeak-ng Scottish accent, flite's ``awb`` voice and festival's
HTS voice ``cmu_us_slt_arctic_hts`` (reserved: never trained or tuned on).
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

ESPEAK_TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "klatt4", "klatt5", "klatt6", "adam", "anika", "belinda", "benjamin", "david", "edward",
                   "linda", "john", "max", "michel", "paul", "robert", "steph", "steph2", "victor", "iven", "Alex",
                   "Andrea", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Mike", "aunty", "grandma")
FLITE_TRAIN = ("kal", "kal16", "rms", "slt")
FESTIVAL_TRAIN = ("kal_diphone", "ked_diphone")

HELD_OUT = {
    "espeak-scotland": ("espeak", "en-gb-scotland"),
    "flite-awb": ("flite", "awb"),
    "festival-hts-slt": ("festival", "cmu_us_slt_arctic_hts"),
}


@dataclass(frozen=True)
class Voice:
    """One synthesiser setting: engine, voice name and prosody."""

    engine: str
    name: str
    speed_wpm: int = 170
    pitch: int = 50

    @property
    def label(self) -> str:
        """Short description for manifests."""
        return f"{self.engine}:{self.name}"


def random_training_voice(rng: random.Random) -> Voice:
    """Draw a training voice: 70% espeak-ng, 20% flite, 10% festival diphone."""
    u = rng.random()
    if u < 0.7:
        accent = rng.choice(ESPEAK_TRAIN_ACCENTS)
        variant = rng.choice(ESPEAK_VARIANTS)
        name = f"{accent}+{variant}" if variant else accent
        return Voice("espeak", name, rng.randint(120, 210), rng.randint(20, 80))
    if u < 0.9:
        return Voice("flite", rng.choice(FLITE_TRAIN))
    return Voice("festival", rng.choice(FESTIVAL_TRAIN))


def synthesize(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Speak `text` with `voice`; return float32 samples and their rate.

    Raises:
        RuntimeError: when the synthesiser fails or produces no audio.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "u.wav"
        if voice.engine == "espeak":
            cmd = ["espeak-ng", "-v", voice.name, "-s", str(voice.speed_wpm), "-p", str(voice.pitch), "-w", str(out), text]
        elif voice.engine == "flite":
            cmd = ["flite", "-voice", voice.name, "-t", text, "-o", str(out)]
        elif voice.engine == "festival":
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(out)]
        else:
            raise ValueError(f"unknown synthesiser {voice.engine!r}")
        proc = subprocess.run(cmd, input=text.encode() if voice.engine == "festival" else None,
                              capture_output=True, timeout=120, check=False)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{voice.label} failed: {proc.stderr.decode(errors='replace')[:200]}")
        samples, rate = soundfile.read(out, dtype="float32", always_2d=True)
    if samples.shape[0] == 0:
        raise RuntimeError(f"{voice.label} produced no audio")
    return samples.mean(axis=1), rate
