"""Build the synthetic training corpus and the held-out evaluation sets.

Training: each sentence of ``train.txt`` is spoken by a random training voice
(see :mod:`engine.recipe.voices`), augmented (:mod:`engine.recipe.augment`),
and stored as log-mel features for both bands: broadband (16 kHz) and a
narrowband telephone version (8 kHz, band-pass, µ-law round trip). Waveforms
of training data are not kept.

Evaluation: held-out sentences spoken by held-out voices, written as WAV files
with a ``manifest.tsv`` per set, at 16 kHz and as 8 kHz µ-law telephone audio.

Usage: ``python -m engine.recipe.corpus --text DIR --out DIR [--utterances N]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
from pathlib import Path

import soundfile
import torch
from tqdm import tqdm

from engine.audio import resample
from engine.features import FeatureConfig, log_mel
from engine.recipe import augment as aug
from engine.recipe.checkpoint import atomic_save
from engine.recipe.voices import HELD_OUT, Voice, random_training_voice, synthesize

BROADBAND = FeatureConfig(sample_rate_hz=16000)
NARROWBAND = FeatureConfig(sample_rate_hz=8000)


def speak_augmented(text: str, rng: random.Random) -> tuple[Voice, torch.Tensor] | None:
    """``text`` spoken by a random training voice and augmented: the voice and 16 kHz samples (None:
    the synthesiser failed)."""
    voice = random_training_voice(rng)
    try:
        samples, rate = synthesize(voice, text)
    except RuntimeError:
        return None
    clean = resample(samples, rate, aug.RATE_HZ)
    return voice, aug.augment(clean, rng, speed=voice.engine != "espeak" or rng.random() < 0.3)


def telephone_noisy(wide: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """The telephone channel of :func:`engine.recipe.augment.telephone`, with noise half of the time (8 kHz)."""
    narrow = aug.telephone(wide, rng)
    if rng.random() < 0.5:
        narrow = aug.add_noise(narrow, rng.uniform(10, 40), random.Random(rng.random()))
    return narrow


def _train_item(job: tuple[int, str, int]) -> dict | None:
    index, text, seed = job
    torch.set_num_threads(1)
    rng = random.Random(seed)
    spoken = speak_augmented(text, rng)
    if spoken is None:
        return None
    voice, wide = spoken
    narrow = telephone_noisy(wide, rng)
    # numpy, not torch: torch tensors cross process boundaries as shared-memory file descriptors,
    # and thousands of them exhaust the descriptor limit.
    return {"index": index, "text": text, "voice": voice.label,
            "wide": log_mel(wide, BROADBAND).half().numpy(), "narrow": log_mel(narrow, NARROWBAND).half().numpy()}


SHARD_UTTERANCES = 1000


def build_training(sentences: list[str], out: Path, *, workers: int, seed: int) -> None:
    """Synthesise, augment and featurise; write ``train-{band}band.pt`` and ``train.jsonl``.

    Work is saved in shards of :data:`SHARD_UTTERANCES` under ``out/shards``;
    a re-run skips the shards that exist, so an interrupted build resumes.
    """
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(i, s, seed * 1_000_003 + i) for i, s in enumerate(sentences)]
    shards = [jobs[i : i + SHARD_UTTERANCES] for i in range(0, len(jobs), SHARD_UTTERANCES)]
    bar = tqdm(total=len(jobs), desc="synthesise", unit="utt")
    with multiprocessing.Pool(workers) as pool:
        for number, shard in enumerate(shards):
            path = shard_dir / f"{number:04d}.pt"
            if not path.exists():
                items = []
                for item in pool.imap(_train_item, shard, chunksize=8):
                    bar.update()
                    if item is not None:
                        items.append(item)
                atomic_save(items, path)
            else:
                bar.update(len(shard))
    bar.close()
    items = [it for number in range(len(shards)) for it in torch.load(shard_dir / f"{number:04d}.pt", weights_only=False)]
    for band in ("wide", "narrow"):
        feats = [torch.from_numpy(it[band]) for it in items]
        torch.save({"features": torch.cat(feats), "lengths": torch.tensor([f.shape[0] for f in feats]),
                    "texts": [it["text"] for it in items]}, out / f"train-{band}band.pt")
    with (out / "train.jsonl").open("w") as fh:
        for it in items:
            fh.write(json.dumps({"index": it["index"], "text": it["text"], "voice": it["voice"],
                                 "frames": int(it["wide"].shape[0])}) + "\n")
    hours = sum(int(it["wide"].shape[0]) for it in items) / 360000
    print(f"{len(items)} training utterances, {hours:.2f} h -> {out}")


def _eval_item(job: tuple[str, int, str, str, str, Path]) -> tuple[str, str, str] | None:
    set_name, index, engine, voice_name, text, out = job
    torch.set_num_threads(1)
    try:
        samples, rate = synthesize(Voice(engine, voice_name), text)
    except RuntimeError:
        return None
    wide = resample(samples, rate, aug.RATE_HZ)
    wide = wide / (wide.abs().max() + 1e-8) * 0.8
    name = f"{index:04d}.wav"
    soundfile.write(out / "wideband" / set_name / name, wide.numpy(), aug.RATE_HZ, subtype="PCM_16")
    narrow = aug.telephone(wide, random.Random(index))
    soundfile.write(out / "narrowband" / set_name / name, narrow.numpy(), 8000, subtype="ULAW")
    return set_name, name, text


def build_eval(sentences: list[str], out: Path, *, per_set: int, workers: int, seed: int) -> None:
    """Write held-out evaluation sets as WAV files with manifests."""
    rng = random.Random(seed)
    chosen = rng.sample(sentences, min(per_set, len(sentences)))
    sets = dict(HELD_OUT)
    sets["seen-voice-en-us"] = ("espeak", "en-us")
    jobs = []
    for set_name, (engine, voice) in sets.items():
        for band in ("wideband", "narrowband"):
            (out / band / set_name).mkdir(parents=True, exist_ok=True)
        jobs += [(set_name, i, engine, voice, text, out) for i, text in enumerate(chosen)]
    rows: dict[str, list[str]] = {name: [] for name in sets}
    with multiprocessing.Pool(workers) as pool:
        for row in tqdm(pool.imap(_eval_item, jobs, chunksize=4), total=len(jobs), desc="eval sets", unit="utt"):
            if row is not None:
                rows[row[0]].append(f"{row[1]}\t{row[2]}")
    for band in ("wideband", "narrowband"):
        for set_name, lines in rows.items():
            (out / band / set_name / "manifest.tsv").write_text("\n".join(sorted(lines)) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Build the corpus from the sentence lists of :mod:`engine.recipe.sentences`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, required=True, help="folder with train.txt and heldout.txt")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=14000)
    parser.add_argument("--eval-per-set", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261101)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train = (args.text / "train.txt").read_text().split("\n")
    train = [s for s in train if s]
    random.Random(args.seed).shuffle(train)
    held = [s for s in (args.text / "heldout.txt").read_text().split("\n") if s]
    if not (args.out / "eval" / "wideband" / "festival-hts-slt" / "manifest.tsv").exists():
        build_eval(held, args.out / "eval", per_set=args.eval_per_set, workers=args.workers, seed=args.seed)
    build_training(train[: args.utterances], args.out, workers=args.workers, seed=args.seed)


if __name__ == "__main__":
    main()
