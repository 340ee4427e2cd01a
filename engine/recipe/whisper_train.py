"""Fine-tune the streaming Whisper encoder with a CTC head: resumable, with a progress bar, fixed seeds.

What trains (``--method``), all under the block-causal mask of the streaming encoder:

- ``top``: the top ``--trained-blocks`` encoder blocks whole (``--trained-blocks 4``: every
  transformer block of tiny.en, the full fine-tune; the convolutional front end stays pretrained);
- ``lora``: low-rank factors (``--lora-rank``, ``--lora-alpha``) on the linear layers of the top
  ``--trained-blocks`` blocks (:mod:`engine.whisper.lora`), the pretrained weights frozen; the
  checkpoint's ``model`` holds them merged into the weights, so an artifact is the same either way;

plus, in both, ``ln_post`` and a linear CTC head over a sentencepiece vocabulary. The blocks
below stay pretrained; their (causal) outputs are computed once per utterance and cached.

Loss, per batch: CTC on the labelled (synthetic) utterances, plus ``--distill`` times the cosine
distance between the student's frames and the full-context teacher's (the pretrained encoder
over the whole utterance, Whisper's own normalisation) on every utterance, the unlabelled real
speech included. The student's frame ``j`` is compared with the teacher's ``j - 1``: the causal
convolutions delay the student by one encoder frame.

Usage::

    python -m engine.recipe.whisper_train --corpus DIR --text DIR --out DIR [--minutes 60] [--threads 2]

Re-running with the same ``--out`` resumes from ``ckpt-last.pt`` (model, optimiser, step, data
order); ``--minutes`` bounds this run's training time, so a long fine-tune spans several runs.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from engine.recipe.checkpoint import atomic_save
from engine.tokenizer import Tokenizer, train_tokenizer
from engine.whisper.features import normalise_streaming, normalise_utterance
from engine.whisper.lora import ENCODER_TARGETS, merged_state_dict, new_factors, wrap, wrapped_layers
from engine.whisper.model import StreamingWhisperCTC, WhisperCTCConfig, build_streaming, load_pretrained
from engine.whisper.network import block_mask

HELD_OUT_EVERY = 40  # every 40th labelled utterance is the dev set


def _batches(lengths: list[int], max_frames: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length, at most ``max_frames`` padded frames each, shuffled."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] + rng.random())
    batches, current, longest = [], [], 0
    for i in order:
        longest2 = max(longest, lengths[i])
        if current and longest2 * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest2 = [], lengths[i]
        current.append(i)
        longest = longest2
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([s.shape[0] for s in seqs])
    out = torch.zeros(len(seqs), int(lengths.max()), *seqs[0].shape[1:], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


@torch.no_grad()
def build_cache(corpus: Path, out: Path, model: StreamingWhisperCTC, teacher, *, bottom: int) -> Path:
    """Per utterance: the frozen bottom blocks' causal output, the teacher's output, text and band."""
    path = out / "cache.pt"
    if path.exists():
        return path
    items = []
    for shard in sorted(corpus.glob("*.pt")):
        items += torch.load(shard, weights_only=False)
    items = [it for it in items if 20 <= it["mel"].shape[0] <= 2 * 1400]
    c = model.config
    rows: list[dict] = []
    order = sorted(range(len(items)), key=lambda i: items[i]["mel"].shape[0])
    groups = [order[i: i + 16] for i in range(0, len(order), 16)]
    for group in tqdm(groups, desc="cache", unit="batch"):
        mels = [torch.from_numpy(items[i]["mel"]).float() for i in group]
        mels = [m[: m.shape[0] // 2 * 2] for m in mels]
        x, lengths = _pad(mels)
        low = model.encoder(normalise_streaming(x, c.ceiling), lengths, causal=True, chunk_frames=c.chunk_frames,
                            left_chunks=c.left_chunks, layers=bottom)
        full = torch.stack([F.pad(normalise_utterance(m), (0, 0, 0, x.shape[1] - m.shape[0])) for m in mels])
        target = teacher.encoder(full, lengths)
        for row, i in enumerate(group):
            n = int(lengths[row]) // 2
            rows.append({"low": low[row, :n].half(), "teacher": target[row, :n].half(), "text": items[i]["text"],
                         "band": items[i]["band"], "source": items[i]["source"]})
    atomic_save(rows, path)
    return path


def _top(model: StreamingWhisperCTC, low: torch.Tensor, lengths: torch.Tensor, bottom: int) -> torch.Tensor:
    """The trained blocks, ``ln_post`` and nothing else, over cached bottom outputs ``(B, N, C)``."""
    c = model.config
    B, N, _ = low.shape
    pos = torch.arange(N).expand(B, N)
    mask = block_mask(pos, pos, pos < lengths[:, None], chunk_frames=c.chunk_frames, left_chunks=c.left_chunks)
    return model.encoder.ln_post(model.encoder.run_blocks(low, mask, start=bottom))


def _losses(model, rows, tokenizer, bottom, distill_weight):
    low, lengths = _pad([r["low"].float() for r in rows])
    teacher, _ = _pad([r["teacher"].float() for r in rows])
    out = _top(model, low, lengths, bottom)
    valid = (torch.arange(out.shape[1])[None, :] < lengths[:, None])[:, 1:]
    cos = F.cosine_similarity(out[:, 1:], teacher[:, :-1], dim=-1)
    distill = ((1 - cos) * valid).sum() / valid.sum().clamp(min=1)
    labelled = [i for i, r in enumerate(rows) if r["text"]]
    ctc = torch.zeros(())
    if labelled:
        log_probs = F.log_softmax(model.head(out[labelled]), dim=-1)
        targets = [torch.tensor(tokenizer.encode(rows[i]["text"])) for i in labelled]
        ctc = F.ctc_loss(log_probs.transpose(0, 1), torch.cat(targets), lengths[labelled],
                         torch.tensor([len(t) for t in targets]), blank=0, reduction="mean", zero_infinity=True)
    return ctc + distill_weight * distill, ctc, distill


@torch.no_grad()
def evaluate(model, rows, tokenizer, bottom) -> dict:
    """Greedy CER and WER of the CTC head on labelled rows."""
    import jiwer
    refs, hyps = [], []
    for i in range(0, len(rows), 16):
        batch = rows[i: i + 16]
        low, lengths = _pad([r["low"].float() for r in batch])
        ids = model.head(_top(model, low, lengths, bottom)).argmax(-1)
        for row, r in enumerate(batch):
            seq = ids[row, : int(lengths[row])].tolist()
            collapsed = [t for j, t in enumerate(seq) if t != 0 and (j == 0 or t != seq[j - 1])]
            refs.append(r["text"])
            hyps.append(tokenizer.decode(collapsed))
    return {"cer": round(float(jiwer.cer(refs, hyps)), 4), "wer": round(float(jiwer.wer(refs, hyps)), 4),
            "utterances": len(refs)}


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--text", type=Path, required=True, help="folder with train.txt (for the tokenizer)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pretrained", default="whisper-tiny.en")
    p.add_argument("--vocab-size", type=int, default=256)
    p.add_argument("--trained-blocks", type=int, default=2)
    p.add_argument("--method", choices=("top", "lora"), default="top",
                   help="top: the trained blocks train whole; lora: low-rank factors on their linear layers")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=float, default=32.0)
    p.add_argument("--minutes", type=float, default=60.0, help="training time of this run")
    p.add_argument("--max-frames", type=int, default=6000, help="padded encoder frames per batch")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--head-lr", type=float, default=2e-3)
    p.add_argument("--distill", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1201)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    tok_path = args.out / "tokenizer.model"
    if not tok_path.exists():
        sentences = [s for s in (args.text / "train.txt").read_text().splitlines() if s.strip()]
        train_tokenizer(sentences, args.out / "tokenizer", vocab_size=args.vocab_size)
    tokenizer = Tokenizer(tok_path)
    teacher = load_pretrained(args.pretrained)
    config = WhisperCTCConfig(pretrained=args.pretrained, vocab_size=tokenizer.vocab_size,
                              trained_blocks=args.trained_blocks)
    model = build_streaming(config, teacher)
    bottom = config.dims.n_audio_layer - config.trained_blocks
    rows = torch.load(build_cache(args.corpus, args.out, model, teacher, bottom=bottom), weights_only=False)
    labelled = [i for i, r in enumerate(rows) if r["text"]]
    dev_ids = set(labelled[::HELD_OUT_EVERY])
    train_rows = [r for i, r in enumerate(rows) if i not in dev_ids]
    dev_rows = [rows[i] for i in sorted(dev_ids)]
    keep = set(model.trained_state_dict())  # the names an artifact has (before any wrapping)
    for prm in model.parameters():
        prm.requires_grad_(False)
    factors: dict = {}
    if args.method == "lora":
        names = [f"encoder.blocks.{i}.{t}" for i in range(bottom, config.dims.n_audio_layer) for t in ENCODER_TARGETS]
        wrap(model, names)
        factors = new_factors(model, names, args.lora_rank, torch.Generator().manual_seed(args.seed))
        layers = wrapped_layers(model)
        for name, (a, b) in factors.items():
            layers[name].delta = (a, b, args.lora_alpha / args.lora_rank)
        trained = [*model.encoder.ln_post.parameters(), *model.head.parameters(),
                   *(prm for pair in factors.values() for prm in pair)]
    else:
        trained = [p for n, p in model.named_parameters() if n in keep]
    for prm in trained:
        prm.requires_grad_(True)
    head = list(model.head.parameters())
    body = [prm for prm in trained if all(prm is not h for h in head)]
    optimiser = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}],
                                  weight_decay=0.01)
    step, epoch, position = 0, 0, 0
    ckpt = args.out / "ckpt-last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        if state.get("method", "top") != args.method:
            raise SystemExit(f"{ckpt} was trained with --method {state.get('method', 'top')}, not {args.method}")
        if factors:  # the blocks' weights in "model" are merged: take the factors and the rest
            model.load_state_dict({k: v for k, v in state["model"].items() if not k.startswith("encoder.blocks.")},
                                  strict=False)
            with torch.no_grad():
                for name, (a, b) in factors.items():
                    a.copy_(state["lora"][name]["a"])
                    b.copy_(state["lora"][name]["b"])
        else:
            model.load_state_dict(state["model"], strict=False)
        optimiser.load_state_dict(state["optimiser"])
        step, epoch, position = state["step"], state["epoch"], state["position"]
        print(f"resumed at epoch {epoch}, batch {position}, step {step}")
    with (args.out / "log.jsonl").open("a") as log:
        def save() -> None:
            weights = merged_state_dict(model) if factors else model.state_dict()
            atomic_save({"model": {k: v for k, v in weights.items() if k in keep}, "optimiser": optimiser.state_dict(),
                         "step": step, "epoch": epoch, "position": position, "config": config.to_dict(),
                         "method": args.method,
                         "lora": {n: {"a": a.detach().clone(), "b": b.detach().clone()} for n, (a, b) in factors.items()}},
                        ckpt)

        began = last_save = time.monotonic()
        deadline = began + args.minutes * 60
        done = False
        while not done:
            batches = _batches([r["low"].shape[0] for r in train_rows], args.max_frames, random.Random(args.seed + epoch))
            model.train()
            bar = tqdm(total=len(batches), initial=position, desc=f"epoch {epoch}", unit="batch")
            running = None
            while position < len(batches):
                batch = [train_rows[i] for i in batches[position]]
                warm = min(1.0, (step + 1) / 100)
                for group, base in zip(optimiser.param_groups, (args.lr, args.head_lr)):
                    group["lr"] = base * warm
                loss, ctc, distill = _losses(model, batch, tokenizer, bottom, args.distill)
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, 5.0)
                optimiser.step()
                step += 1
                position += 1
                values = (loss.item(), ctc.item(), distill.item())
                running = values if running is None else tuple(0.98 * a + 0.02 * b for a, b in zip(running, values))
                bar.set_postfix(loss=f"{running[0]:.3f}", ctc=f"{running[1]:.3f}", distill=f"{running[2]:.3f}")
                bar.update()
                if step % 50 == 0:
                    log.write(json.dumps({"step": step, "epoch": epoch, "loss": running[0], "ctc": running[1],
                                          "distill": running[2], "minutes": (time.monotonic() - began) / 60}) + "\n")
                    log.flush()
                now = time.monotonic()
                if now - last_save > args.checkpoint_minutes * 60:
                    save()
                    last_save = now
                if now > deadline:
                    done = True
                    break
            bar.close()
            if not done:
                epoch, position = epoch + 1, 0
                model.eval()
                metrics = evaluate(model, dev_rows, tokenizer, bottom)
                log.write(json.dumps({"step": step, "epoch": epoch, "dev": metrics}) + "\n")
                log.flush()
                print(f"epoch {epoch}: dev {metrics}")
            save()
        model.eval()
        metrics = evaluate(model, dev_rows, tokenizer, bottom)
        print(json.dumps({"step": step, "epoch": epoch, "position": position, "dev": metrics}))
        log.write(json.dumps({"step": step, "epoch": epoch, "final_dev": metrics}) + "\n")


if __name__ == "__main__":
    main()
