"""Train a streaming CTC model on the featurised corpus, on the CPU.

Resumable (``ckpt-last.pt`` is rewritten atomically after every epoch and
training picks it up), seeded, with a progress bar. ``--snapshot-epochs``
keeps copies of earlier epochs (the older shipped versions are such earlier,
shorter runs of the same recipe). ``--init-from`` starts from another model:
a narrowband model starts from a broadband one, keeping the weights of the
mel bins the two share (see :mod:`engine.features`).

Usage::

    python -m engine.recipe.train --corpus DIR --band wide --out DIR --epochs 14 --minutes 60
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import jiwer
import torch
import torch.nn.functional as F
from tqdm import tqdm

from engine.decoding import greedy_batch
from engine.model import ModelConfig, StreamingCTC
from engine.recipe.checkpoint import atomic_save
from engine.tokenizer import Tokenizer, train_tokenizer

DEV_UTTERANCES = 300


class Corpus:
    """Featurised utterances held in memory as one fp16 tensor plus offsets."""

    def __init__(self, path: Path, tokenizer: Tokenizer, frames_per_output: int) -> None:
        data = torch.load(path, weights_only=True)
        self.features: torch.Tensor = data["features"]
        self.lengths: torch.Tensor = data["lengths"]
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(self.lengths, 0)[:-1]])
        self.texts: list[str] = data["texts"]
        self.tokens = [tokenizer.encode(t) for t in self.texts]
        self.frames_per_output = k = frames_per_output
        self.usable = [i for i in range(len(self.texts))
                       if self.tokens[i] and len(self.tokens[i]) < int(self.lengths[i]) // k]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        """Padded ``(B, T, D)`` float32 features, ``(B,)`` lengths (whole output frames), token lists."""
        k = self.frames_per_output
        lens = [int(self.lengths[i]) // k * k for i in indices]
        out = torch.zeros(len(indices), max(lens), self.features.shape[1])
        for row, (i, n) in enumerate(zip(indices, lens)):
            start = int(self.offsets[i])
            out[row, :n] = self.features[start : start + n].float()
        return out, torch.tensor(lens), [self.tokens[i] for i in indices]

    def batches(self, indices: list[int], max_frames: int, rng: random.Random) -> list[list[int]]:
        """Length-sorted buckets of at most ``max_frames`` padded frames, in random order."""
        ordered = sorted(indices, key=lambda i: int(self.lengths[i]))
        out, cur = [], []
        for i in ordered:
            if cur and (len(cur) + 1) * int(self.lengths[i]) > max_frames:
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
        rng.shuffle(out)
        return out


def ctc_batch_loss(log_probs: torch.Tensor, out_lengths: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
    """The recipe's CTC loss of a batch: ``(B, U, V)`` log posteriors, output lengths, token targets."""
    return F.ctc_loss(log_probs.transpose(0, 1), torch.tensor([t for ts in targets for t in ts]), out_lengths,
                      torch.tensor([len(t) for t in targets]), blank=0, zero_infinity=True)


def augment_features(x: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Feature-domain augmentation: frequency warp, spectral tilt, gain, SpecAugment masks.

    Args:
        x: ``(B, T, D)`` log-mel features (modified copy returned).
        lengths: ``(B,)`` valid frames.
        gen: random generator.
    """
    B, T, D = x.shape
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    # Frequency warp: read bin d from bin d * alpha (vocal-tract-length style), per utterance.
    alpha = 0.85 + 0.3 * u(B, 1)
    src = (torch.arange(D)[None, :] * alpha).clamp(max=D - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=D - 1)
    w = (src - lo)[:, None, :]
    x = torch.gather(x, 2, lo[:, None, :].expand(B, T, D)) * (1 - w) + torch.gather(x, 2, hi[:, None, :].expand(B, T, D)) * w
    # Spectral tilt and curvature, plus gain.
    axis = torch.linspace(-1, 1, D)[None, None, :]
    x = x + (u(B, 1, 1) - 0.5) * 4 * axis + (u(B, 1, 1) - 0.5) * 2 * axis**2 + (u(B, 1, 1) - 0.5) * 6
    # SpecAugment: two frequency masks and up to four time masks, filled with the utterance mean.
    fill = x.mean(dim=1, keepdim=True)
    for b in range(B):
        for _ in range(2):
            f = int(u(1) * 10)
            f0 = int(u(1) * (D - f))
            x[b, :, f0 : f0 + f] = fill[b, :, f0 : f0 + f]
        n = int(lengths[b])
        for _ in range(int(u(1) * 5)):
            t = int(u(1) * min(30, n // 10 + 1))
            t0 = int(u(1) * max(1, n - t))
            x[b, t0 : t0 + t] = fill[b]
    return x


def decode_wer(model: StreamingCTC, corpus: Corpus, indices: list[int], tokenizer: Tokenizer) -> float:
    """Greedy WER of ``model`` on corpus utterances."""
    model.eval()
    hyps, refs = [], []
    with torch.no_grad():
        for start in range(0, len(indices), 32):
            idx = indices[start : start + 32]
            feats, lens, _ = corpus.batch(idx)
            log_probs, out_lens = model(feats, lens)
            for tokens in greedy_batch(log_probs, out_lens):
                hyps.append(tokenizer.decode([t.token_id for t in tokens]))
            refs += [corpus.texts[i] for i in idx]
    model.train()
    return jiwer.wer(refs, [h if h else "<empty>" for h in hyps])


def load_init(model: StreamingCTC, path: Path) -> None:
    """Initialise from another checkpoint, slicing the input layer to this model's mel bins."""
    state = torch.load(path, weights_only=True)["model"]
    c = model.config
    d_src = state["feature_mean"].shape[0]
    if d_src != c.n_mels:
        w = state["proj.weight"].reshape(c.channels, c.stack, d_src)[:, :, : c.n_mels]
        state["proj.weight"] = w.reshape(c.channels, c.stack * c.n_mels).contiguous()
        state["feature_mean"] = state["feature_mean"][: c.n_mels]
        state["feature_std"] = state["feature_std"][: c.n_mels]
    model.load_state_dict(state)


def main(argv: list[str] | None = None) -> None:
    """Train; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--band", choices=("wide", "narrow"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tokenizer", type=Path, help="existing sentencepiece model (default: train one)")
    p.add_argument("--text", type=Path, help="sentences to train the tokenizer on")
    p.add_argument("--vocab-size", type=int, default=256)
    p.add_argument("--token-type", choices=("unigram", "char"), default="char")
    p.add_argument("--limit", type=int, help="use only the first N utterances (for quick experiments)")
    p.add_argument("--sortagrad", action="store_true", help="first epoch in order of length, short first")
    p.add_argument("--no-feature-augment", action="store_true",
                   help="skip feature-domain augmentation (for a model that underfits)")
    p.add_argument("--plain-epochs", type=int, default=0,
                   help="train the last N epochs without feature-domain augmentation")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout inside the blocks (default 0: the models underfit, and dropout's random masks "
                        "cost a third of a CPU step)")
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--minutes", type=float, default=90.0, help="stop after the epoch that passes this budget")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-frames", type=int, default=16000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init-from", type=Path)
    p.add_argument("--snapshot-epochs", type=int, nargs="*", default=[])
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    tok_path = args.tokenizer or args.out / "tokenizer.model"
    if not tok_path.exists():
        sentences = [s for s in args.text.read_text().splitlines() if s]
        train_tokenizer(sentences, args.out / "tokenizer", vocab_size=args.vocab_size, model_type=args.token_type)
    tokenizer = Tokenizer(tok_path)
    if tok_path != args.out / "tokenizer.model":
        (args.out / "tokenizer.model").write_bytes(tok_path.read_bytes())

    corpus = Corpus(args.corpus / f"train-{args.band}band.pt", tokenizer, ModelConfig.stack)
    usable = corpus.usable[: args.limit] if args.limit else corpus.usable
    n_dev = min(DEV_UTTERANCES, len(usable) // 10)
    dev, train = usable[-n_dev:], usable[:-n_dev]
    config = ModelConfig(n_mels=corpus.features.shape[1], vocab_size=tokenizer.vocab_size, channels=args.channels,
                         dropout=args.dropout)
    model = StreamingCTC(config)
    if args.init_from:
        load_init(model, args.init_from)
    else:
        sample = corpus.features[torch.randperm(corpus.features.shape[0], generator=torch.Generator().manual_seed(0))[:200000]].float()
        model.feature_mean.copy_(sample.mean(0))
        model.feature_std.copy_(sample.std(0).clamp(min=1e-3))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    steps_per_epoch = len(corpus.batches(train, args.max_frames, random.Random(0)))
    total_steps = steps_per_epoch * args.epochs
    warmup = max(1, min(300, total_steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total_steps)))))
    start_epoch, history = 0, []
    last = args.out / "ckpt-last.pt"
    if last.exists():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, history = ck["epoch"], ck["history"]
        rng.setstate(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed after epoch {start_epoch}")
    gen = torch.Generator().manual_seed(args.seed + start_epoch)
    hours = sum(int(corpus.lengths[i]) for i in train) / 360000
    print(f"{len(train)} utterances ({hours:.2f} h), {sum(p.numel() for p in model.parameters())} parameters, "
          f"{steps_per_epoch} steps/epoch, torch threads {torch.get_num_threads()}")
    began = time.monotonic() - sum(h["seconds"] for h in history)
    model.train()
    for epoch in range(start_epoch, args.epochs):
        t0 = time.monotonic()
        total, count = 0.0, 0
        batches = corpus.batches(train, args.max_frames, rng)
        if args.sortagrad and epoch == 0:
            batches.sort(key=lambda b: int(corpus.lengths[b[-1]]))
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
        for idx in bar:
            feats, lens, targets = corpus.batch(idx)
            if not args.no_feature_augment and epoch < args.epochs - args.plain_epochs:
                feats = augment_features(feats, lens, gen)
            log_probs, out_lens = model(feats, lens)
            loss = ctc_batch_loss(log_probs, out_lens, targets)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total, count = total + loss.item(), count + 1
            bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        dev_wer = decode_wer(model, corpus, dev, tokenizer)
        history.append({"epoch": epoch + 1, "loss": total / max(count, 1), "dev_wer": dev_wer,
                        "seconds": time.monotonic() - t0})
        print(json.dumps(history[-1]))
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "epoch": epoch + 1, "history": history, "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
              "config": config.to_dict(), "band": args.band, "hours": hours, "utterances": len(train),
              "init_from": str(args.init_from) if args.init_from else None}
        atomic_save(ck, last)
        if epoch + 1 in args.snapshot_epochs:
            atomic_save(ck, args.out / f"ckpt-epoch{epoch + 1}.pt")
        if (time.monotonic() - began) / 60 > args.minutes:
            print(f"time budget of {args.minutes} min reached after epoch {epoch + 1}")
            break
    print(f"training took {(time.monotonic() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
