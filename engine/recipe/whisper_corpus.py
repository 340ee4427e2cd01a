"""The corpus for fine-tuning the streaming Whisper encoder: labelled synthetic speech, unlabelled real speech.

- Labelled: sentences of ``train.txt`` (see :mod:`engine.recipe.sentences`) spoken by the recipe's
  training voices (:mod:`engine.recipe.voices`), augmented (:mod:`engine.recipe.augment`); a share
  goes through the telephone channel (8 kHz, µ-law) for the narrowband model.
- Unlabelled: the prompts of ``asterisk-core-sounds-es/fr/it/ru`` (real human speech, 8 kHz), used
  label-free, for distillation from the full-context encoder only. The English prompts are never
  used (they are the customisation showcase, and their test split is reserved).

Stored per shard (``torch.save`` of numpy arrays): raw ``log10`` mel frames (float16) from
:class:`engine.whisper.features.WhisperFeatureConfig` at the audio's own rate, the text (empty for
unlabelled audio), the band and the source.

Usage: ``python -m engine.recipe.whisper_corpus --text DIR --out DIR [--utterances N] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
from pathlib import Path

import soundfile
import torch
from tqdm import tqdm

from engine.audio import resample
from engine.features import log_mel
from engine.recipe.checkpoint import atomic_save
from engine.recipe.corpus import speak_augmented, telephone_noisy
from engine.whisper.features import WhisperFeatureConfig

WIDE = WhisperFeatureConfig(16000)
NARROW = WhisperFeatureConfig(8000)
#: Real human speech that may be used without labels (see the module docstring).
UNLABELLED_ROOTS = tuple(Path("/usr/share/asterisk/sounds") / lang for lang in ("es", "fr", "it", "ru"))
NARROW_SHARE = 0.4
SHARD = 500


def _features(x: torch.Tensor, config: WhisperFeatureConfig):
    # numpy, not torch: see engine.recipe.corpus (tensors crossing processes exhaust file descriptors)
    return log_mel(x, config).half().numpy()


def _labelled(job: tuple[int, str, int]) -> dict | None:
    index, text, seed = job
    torch.set_num_threads(1)
    rng = random.Random(seed)
    spoken = speak_augmented(text, rng)
    if spoken is None:
        return None
    voice, wide = spoken
    if rng.random() < NARROW_SHARE:
        narrow = telephone_noisy(wide, rng)
        return {"index": index, "text": text, "band": "narrow", "source": voice.label, "mel": _features(narrow, NARROW)}
    return {"index": index, "text": text, "band": "wide", "source": voice.label, "mel": _features(wide, WIDE)}


def _unlabelled(job: tuple[int, str]) -> dict | None:
    index, path = job
    torch.set_num_threads(1)
    samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    x = torch.from_numpy(samples.mean(axis=1))
    if rate != 8000:
        x = resample(x, rate, 8000)
    if x.numel() < 8000 * 0.3 or x.numel() > 8000 * 28:
        return None
    return {"index": index, "text": "", "band": "narrow", "source": str(Path(path).relative_to("/usr/share/asterisk")),
            "mel": _features(x, NARROW)}


def unlabelled_files() -> list[str]:
    """Every usable prompt of the label-free languages, sorted."""
    return sorted(str(p) for root in UNLABELLED_ROOTS if root.exists() for p in root.rglob("*.wav"))


def build(sentences: list[str], out: Path, *, utterances: int, workers: int, seed: int) -> None:
    """Write ``labelled-NNN.pt`` and ``unlabelled-NNN.pt`` shards into ``out`` (existing shards are kept)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    texts = rng.sample(sentences, min(utterances, len(sentences)))
    jobs_l = [(i, t, rng.randrange(1 << 30)) for i, t in enumerate(texts)]
    jobs_u = list(enumerate(unlabelled_files()))
    with multiprocessing.Pool(workers) as pool:
        for kind, jobs, fn in (("labelled", jobs_l, _labelled), ("unlabelled", jobs_u, _unlabelled)):
            for start in range(0, len(jobs), SHARD):
                path = out / f"{kind}-{start // SHARD:03d}.pt"
                if path.exists():
                    continue
                items = [r for r in tqdm(pool.imap(fn, jobs[start: start + SHARD], chunksize=4),
                                         total=len(jobs[start: start + SHARD]), desc=path.name, unit="utt")
                         if r is not None]
                atomic_save(items, path)


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, required=True, help="folder with train.txt")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1201)
    args = parser.parse_args(argv)
    sentences = [s for s in (args.text / "train.txt").read_text().splitlines() if s.strip()]
    build(sentences, args.out, utterances=args.utterances, workers=args.workers, seed=args.seed)


if __name__ == "__main__":
    main()
