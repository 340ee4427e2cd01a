"""The Allison prompts of asterisk-core-sounds-en: transcripts and the fixed split.

The split is by prompt name (as written in ``core-sounds-en.txt``, e.g.
``digits/1``): a prompt whose name's sha1 hex digest ends in 0, 1 or 2 is in
the test split, reserved for evaluation; the rest (3-f) is the train split,
usable for customisation but never for base-model training.

The transcripts carry transcribers' notes in parentheses — ``(10 seconds of silence)``,
``... pound key. (simple tone sound plays)``, ``IAX (note: does not say "2")`` — which nobody says:
they are removed from the references (a prompt of silence keeps an empty reference, scored by
:mod:`engine.scoring` as a file where every hypothesised word is an insertion). Prompts whose
transcript is only a ``[sound description]`` are left out, as before.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

from engine.scoring import strip_annotations
from engine.text import normalize_transcript

TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
SOUNDS = Path("/usr/share/asterisk/sounds/en")


def split_of(name: str) -> str:
    """``"test"`` or ``"train"`` for a prompt name."""
    return "test" if hashlib.sha1(name.encode()).hexdigest()[-1] in "012" else "train"


def prompts(transcripts: Path = TRANSCRIPTS) -> dict[str, str]:
    """Prompt name -> what is said (the transcript without its notes), for prompts with speakable text."""
    out: dict[str, str] = {}
    for line in gzip.decompress(transcripts.read_bytes()).decode("utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith(";") or ":" not in line:
            continue
        name, text = line.split(":", 1)
        if normalize_transcript(text):  # a [sound description] alone has no words
            out[name.strip()] = " ".join(strip_annotations(text).split())
    return out


def write_manifest(split: str, out: Path, sounds: Path = SOUNDS) -> int:
    """Write ``audio_path<TAB>reference`` lines for one split; return the count."""
    lines = []
    for name, text in sorted(prompts().items()):
        wav = sounds / f"{name}.wav"
        if split_of(name) == split and wav.exists():
            lines.append(f"{wav}\t{text}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def main(argv: list[str] | None = None) -> None:
    """Write the manifest of one split of the Allison prompts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=("train", "test"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(f"{write_manifest(args.split, args.out)} prompts -> {args.out}")


if __name__ == "__main__":
    main()
