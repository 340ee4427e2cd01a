"""The ``whisper-fast`` final pass's adapter: Whisper's decoder taught to read unpadded encodings. Resumable.

The ``whisper`` final pass runs Whisper's full-context encoder over every utterance padded to at
least 15 s: the pretrained decoder needs the padding (without it, it loops: 1,749% WER) and the
padded encoder is most of a final's CPU time. This recipe trains low-rank factors
(:mod:`engine.whisper.lora`, rank ``--rank``) on every linear layer of the decoder, everything else
frozen, so that it reads an encoding of the utterance alone. The targets are the teacher's: the
version's own ``whisper`` pass (int8, greedy, padded) over each utterance of the recipe corpus,
labelled or not (sequence-level distillation, so the real label-free speech of the corpus counts as
much as the synthetic), normalised; the loss is the decoder's teacher-forced cross-entropy.

What the decoder reads (``--top``), all measured (``benchmarks/reports/whisper-fast.md``):

- ``full``: the pretrained encoder over the whole utterance, unpadded (what the engine serves);
- ``pretrained``: the pretrained top blocks over the streaming bottom blocks' outputs (U2's reuse of
  the streaming pass; ``--full-context`` lets them attend to the whole utterance);
- ``version``: the version's own streaming (CTC-tuned) encoder outputs, U2's second pass proper.

Usage::

    python -m engine.recipe.whisper_u2 --corpus DIR --model models/.../VERSION --out DIR --top full \
        [--minutes 7] [--eval-manifest HELD-OUT.tsv] [--export VERSION_DIR]

The first run samples ``--per-kind`` labelled and unlabelled corpus utterances and writes their
teacher transcripts and features to ``inputs.pt`` (in ``--threads`` processes); re-running with the
same ``--out`` resumes from ``ckpt-last.pt``. ``log.jsonl`` holds the loss and, after every epoch,
the greedy WER over ``--eval-manifest`` (real speech that is not reserved: held-out Allison
TRAIN-split prompts); the best epoch is ``ckpt-best.pt``, which ``--export`` puts into a version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from engine.recipe.checkpoint import atomic_save
from engine.whisper.decode import WhisperText, collapse_repeats, looping
from engine.whisper.features import normalise_streaming, normalise_utterance
from engine.whisper.lora import new_factors, target_names, wrap, wrapped_layers
from engine.whisper.network import block_mask

MAX_TOKENS = 120
#: the adapter's file in a version's folder
ADAPTER_FILE = "whisper-fast.pt"


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([s.shape[0] for s in seqs])
    out = torch.zeros(len(seqs), int(lengths.max()), *seqs[0].shape[1:], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def _top(encoder, low: torch.Tensor, lengths: torch.Tensor, bottom: int, config, full_context: bool) -> torch.Tensor:
    """``encoder``'s blocks from ``bottom`` and ``ln_post`` over bottom-block outputs ``(B, N, C)``: under
    the streaming mask, or (``full_context``) attending to the whole utterance."""
    B, N, _ = low.shape
    pos = torch.arange(N).expand(B, N)
    valid = pos < lengths[:, None]
    mask = valid[:, None, None, :] if full_context else \
        block_mask(pos, pos, valid, chunk_frames=config.chunk_frames, left_chunks=config.left_chunks)
    return encoder.ln_post(encoder.run_blocks(low, mask, start=bottom))


@torch.no_grad()
def decoder_inputs(encoder, lows: list[torch.Tensor], bottom: int, config, full_context: bool) -> list[torch.Tensor]:
    """What the decoder reads for every utterance's bottom-block outputs (see :func:`_top`), float16."""
    out: list[torch.Tensor] = []
    order = sorted(range(len(lows)), key=lambda i: lows[i].shape[0])
    result: dict[int, torch.Tensor] = {}
    for i in tqdm(range(0, len(order), 16), desc="decoder inputs", unit="batch"):
        group = order[i: i + 16]
        low, lengths = _pad([lows[j].float() for j in group])
        x = _top(encoder, low, lengths, bottom, config, full_context)
        for row, j in enumerate(group):
            result[j] = x[row, : int(lengths[row])].half()
    out = [result[j] for j in range(len(lows))]
    return out


_WORKER: dict = {}


def _init_worker(model_dir: str, bottom: int) -> None:
    from engine.bundle import load_bundle
    torch.set_num_threads(1)
    _WORKER["bundle"] = load_bundle(Path(model_dir))
    _WORKER["bottom"] = bottom


@torch.no_grad()
def _prepare(item: dict) -> dict | None:
    """One corpus item: its streaming bottom-block outputs and the full-context teacher's transcript (the
    version's ``whisper`` final pass over it, normalised), with the label when it has one."""
    from engine.text import normalize_transcript
    bundle, bottom = _WORKER["bundle"], _WORKER["bottom"]
    mel = torch.from_numpy(item["mel"]).float()
    mel = mel[: mel.shape[0] // 2 * 2]
    c = bundle.model.config
    low = bundle.model.encoder(normalise_streaming(mel[None], c.ceiling), torch.tensor([mel.shape[0]]), causal=True,
                               chunk_frames=c.chunk_frames, left_chunks=c.left_chunks, layers=bottom)[0]
    decoded = bundle.whisper.transcribe(mel)
    text = bundle.whisper.text
    ids = text.encode(decoded.text) if decoded.text else []
    if looping(ids, decoded.text):
        return None
    return {"low": low.half(), "mel": mel.half(), "teacher": normalize_transcript(decoded.text), "label": item["text"],
            "source": item["source"], "band": item.get("band", "")}


def prepare(corpus: Path, model_dir: Path, out: Path, *, bottom: int, per_kind: int, workers: int, seed: int) -> Path:
    """``inputs.pt``: up to ``per_kind`` labelled and ``per_kind`` unlabelled corpus utterances (seeded
    sample), each through :func:`_prepare` in ``workers`` processes; kept if it exists."""
    import multiprocessing as mp
    path = out / "inputs.pt"
    if path.exists():
        return path
    items = []
    for shard in sorted(corpus.glob("*.pt")):
        items += [it for it in torch.load(shard, weights_only=False) if 20 <= it["mel"].shape[0] <= 2800]
    rng = random.Random(seed)
    labelled = [it for it in items if it["text"]]
    unlabelled = [it for it in items if not it["text"]]
    chosen = rng.sample(labelled, min(per_kind, len(labelled))) + rng.sample(unlabelled, min(per_kind, len(unlabelled)))
    with mp.get_context("spawn").Pool(workers, _init_worker, (str(model_dir), bottom)) as pool:
        rows = [r for r in tqdm(pool.imap(_prepare, chosen, chunksize=4), total=len(chosen), desc="teacher",
                                unit="utt") if r is not None]
    atomic_save(rows, path)
    return path


def common_texts_dropped(rows: list[dict], max_repeats: int) -> list[dict]:
    """``rows`` without those whose teacher transcript more than ``max_repeats`` rows share (0: all kept).

    A text that the teacher writes for many different utterances is not a reading of them. It is one
    of Whisper's caption habits: "speaking in foreign language" for 243 of 4,800 sampled utterances,
    most of them the es/fr/it/ru prompts, and "thank you" for noise.
    """
    if max_repeats <= 0:
        return rows
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["teacher"]] = counts.get(r["teacher"], 0) + 1
    return [r for r in rows if counts[r["teacher"]] <= max_repeats]


def joined(rows: list[dict], share: float, rng: random.Random, *, max_frames: int = 2800) -> list[dict]:
    """About ``share × len(rows)`` longer utterances, each 2–4 of ``rows`` of the same band back to back
    (log-mel frames concatenated, teacher transcripts joined), at most ``max_frames`` frames.

    The corpus's sentences are short; the utterances a live stream closes run up to Whisper's 30 s. Without
    long examples the adapter learns to stop early on long encodings (deletions on the long prompts of
    the held-out set: ``benchmarks/reports/whisper-fast.md``).

    A join never holds one transcript twice. The first run of this recipe allowed it, and the
    teacher writes the same words for many utterances: "speaking in foreign language" for 243 of the
    label-free es/fr/it/ru prompts. The adapter learned to repeat itself on the Allison test split
    ("hello world hello world hello world …": 66 insertions, WER 14.0% against 6.0%).
    """
    by_band: dict[str, list[dict]] = {}
    for r in rows:
        if r["teacher"]:
            by_band.setdefault(r.get("band", ""), []).append(r)
    out: list[dict] = []
    bands = [b for b, members in by_band.items() if len(members) >= 2]
    for _ in range(int(share * len(rows)) if bands else 0):
        members = by_band[rng.choice(bands)]
        parts = rng.sample(members, min(len(members), rng.randint(2, 4)))
        kept = [parts[0]]
        for part in parts[1:]:
            if (part["teacher"] not in {k["teacher"] for k in kept}
                    and sum(int(k["mel"].shape[0]) for k in kept) + int(part["mel"].shape[0]) <= max_frames):
                kept.append(part)
        if len(kept) < 2:
            continue
        out.append({"mel": torch.cat([k["mel"] for k in kept]), "teacher": " ".join(k["teacher"] for k in kept),
                    "label": " ".join(k["label"] for k in kept) if all(k["label"] for k in kept) else "",
                    "source": "joined", "band": kept[0].get("band", "")})
    return out


@torch.no_grad()
def full_context_inputs(encoder, mels: list[torch.Tensor]) -> list[torch.Tensor]:
    """The pretrained encoder over each whole utterance, unpadded (Whisper's normalisation over it), float16."""
    order = sorted(range(len(mels)), key=lambda i: mels[i].shape[0])
    result: dict[int, torch.Tensor] = {}
    for i in tqdm(range(0, len(order), 16), desc="full-context inputs", unit="batch"):
        group = order[i: i + 16]
        x, lengths = _pad([normalise_utterance(mels[j].float()) for j in group])
        out = encoder(x, lengths)
        for row, j in enumerate(group):
            result[j] = out[row, : int(lengths[row]) // 2].half()
    return [result[j] for j in range(len(mels))]


@torch.no_grad()
def encode_file(bundle, encoder, path: Path, bottom: int, full_context: bool, top: str = "version") -> torch.Tensor:
    """``(N, C)`` decoder input of an audio file: the streaming bottom blocks, then :func:`_top` (or, with
    ``top == "full"``, ``encoder`` over the whole utterance)."""
    from engine.audio import load_audio
    from engine.features import FeatureStream
    samples = load_audio(path, bundle.sample_rate_hz)
    feats = FeatureStream(bundle.features).accept(samples)
    feats = feats[: feats.shape[0] // 2 * 2]
    if top == "full":
        return full_context_inputs(encoder, [feats])[0].float()
    c = bundle.model.config
    lengths = torch.tensor([feats.shape[0]])
    low = bundle.model.encoder(normalise_streaming(feats[None], c.ceiling), lengths, causal=True,
                               chunk_frames=c.chunk_frames, left_chunks=c.left_chunks, layers=bottom)
    return _top(encoder, low, torch.tensor([low.shape[1]]), bottom, c, full_context)[0]


@torch.no_grad()
def greedy(decoder, text: WhisperText, audio: torch.Tensor) -> list[int]:
    """Greedy decode over encoder frames ``(N, C)``."""
    cross = decoder.cross_kv(audio[None])
    tokens, kv, out = torch.tensor([text.prompt]), None, []
    for _ in range(MAX_TOKENS):
        logits, kv = decoder(tokens, cross, kv)
        logits = logits[0, -1].float()
        logits[text.first_special + 1:] = -float("inf")
        nxt = int(logits.argmax())
        if nxt == text.eot:
            break
        out.append(nxt)
        tokens = torch.tensor([[nxt]])
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    from engine.bundle import load_bundle
    from engine.scoring import score
    from engine.text import normalize_transcript
    from engine.whisper.model import load_pretrained

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="engine.recipe.whisper_corpus's output folder")
    ap.add_argument("--per-kind", type=int, default=1500, help="labelled and unlabelled utterances, each")
    ap.add_argument("--targets", choices=("teacher", "labels"), default="teacher",
                    help="what the decoder learns to write: the full-context teacher's transcript (every utterance), "
                         "or the corpus's labels (labelled utterances only)")
    ap.add_argument("--model", type=Path, required=True, help="a Whisper-based version's folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-frames", type=int, default=4000, help="padded encoder frames per batch")
    ap.add_argument("--eval-manifest", type=Path)
    ap.add_argument("--eval-files", type=int, default=40)
    ap.add_argument("--eval-every", type=int, default=0,
                    help="also evaluate (and keep the best) every this many steps, not only after each epoch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top", choices=("version", "pretrained", "full"), default="version",
                    help="what the decoder reads: the version's streaming top blocks (CTC-tuned), the pretrained top "
                         "blocks over the streaming bottom blocks' outputs, or the whole pretrained encoder over the "
                         "utterance (full context, unpadded)")
    ap.add_argument("--export", type=Path, help="after training, put the adapter into this version folder")
    ap.add_argument("--max-text-repeats", type=int, default=0, metavar="K",
                    help="leave out utterances whose teacher transcript more than K sampled utterances share "
                         "(0: keep all; with --targets teacher)")
    ap.add_argument("--concat", type=float, default=0.0,
                    help="add this share of longer training utterances, 2-4 of the same band joined (--top full only)")
    ap.add_argument("--full-context", action="store_true",
                    help="the top blocks attend to the whole utterance (at the final) instead of the streaming mask")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    bundle = load_bundle(args.model)
    manifest = json.loads((args.model / "manifest.json").read_text())
    arch = manifest["architecture"]
    bottom = arch["dims"]["n_audio_layer"] - arch["trained_blocks"]
    text = bundle.whisper.text
    whisper = load_pretrained(arch["pretrained"]).float().eval()
    top = bundle.model.encoder if args.top == "version" else whisper.encoder
    rows = torch.load(prepare(args.corpus, args.model, args.out, bottom=bottom, per_kind=args.per_kind,
                              workers=args.threads, seed=args.seed), weights_only=False)
    rows = [r for r in rows if (r["teacher"] if args.targets == "teacher" else r["label"])]
    if args.targets == "teacher":
        rows = common_texts_dropped(rows, args.max_text_repeats)
    if args.concat and (args.top != "full" or args.targets != "teacher"):
        raise SystemExit("--concat joins utterances' features and teacher transcripts: it needs --top full --targets teacher")
    held = rows[::40]
    rest = [r for i, r in enumerate(rows) if i % 40]
    longer = joined(rest, args.concat, random.Random(args.seed))
    rows = held + rest + longer
    if args.top == "full":
        audio = full_context_inputs(whisper.encoder, [r["mel"] for r in rows])
    else:
        audio = decoder_inputs(top, [r["low"] for r in rows], bottom, bundle.model.config, args.full_context)
    data = [{"audio": a, "tokens": [*text.prompt,
                                    *text.encode(r["teacher"] if args.targets == "teacher" else r["label"]), text.eot]}
            for a, r in zip(audio, rows)]
    dev, train = data[: len(held)], data[len(held):]

    for p in whisper.parameters():
        p.requires_grad_(False)
    decoder = whisper.decoder
    names = target_names(whisper, 0, True)
    wrap(whisper, names)
    factors = new_factors(whisper, names, args.rank, torch.Generator().manual_seed(args.seed))
    scale = args.alpha / args.rank
    layers = wrapped_layers(whisper)
    for name, (a, b) in factors.items():
        layers[name].delta = (a, b, scale)
    params = [p for pair in factors.values() for p in pair]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    state = {"step": 0, "epoch": 0, "position": 0, "order": None, "seconds": 0.0}
    ckpt = args.out / "ckpt-last.pt"
    variant = {"top": args.top, "full_context": args.full_context, "targets": args.targets, "rank": args.rank,
               "alpha": args.alpha}
    if args.concat:
        variant["concat"] = args.concat
    if args.max_text_repeats:
        variant["max_text_repeats"] = args.max_text_repeats
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        if saved.get("variant", variant) != variant:
            raise SystemExit(f"{ckpt} is a run of {saved['variant']}, not {variant}: use another --out")
        with torch.no_grad():
            for name, (a, b) in factors.items():
                a.copy_(saved["factors"][name]["a"])
                b.copy_(saved["factors"][name]["b"])
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]

    eval_items = []
    if args.eval_manifest:
        for line in args.eval_manifest.read_text().splitlines()[: args.eval_files]:
            path, ref = line.split("\t")
            try:
                eval_items.append((encode_file(bundle, top, Path(path), bottom, args.full_context, args.top), ref))
            except ValueError:  # longer than Whisper's 30 s of positions: a live stream cuts it
                continue

    def evaluate() -> dict:
        refs, hyps = [], []
        for audio, ref in eval_items:
            refs.append(ref)
            ids = greedy(decoder, text, audio.float())
            if looping(ids, text.decode(ids)):  # as the final pass's last resort does: one copy of the loop
                ids = collapse_repeats(ids)
            hyps.append(normalize_transcript(text.decode(ids)))
        s = score(refs, hyps)
        with torch.no_grad():
            dev_loss = sum(float(_loss(decoder, text, [d])) for d in dev[:60]) / max(1, len(dev[:60]))
        return {"real_wer": round(s.wer, 4) if refs else None, "dev_loss": round(dev_loss, 4),
                "example": hyps[0] if hyps else ""}

    log = open(args.out / "log.jsonl", "a")
    try:
        start = time.time()
        budget = args.minutes * 60
        rng = random.Random(args.seed + state["epoch"])
        if state["order"] is None:
            state["order"] = _batches(train, args.batch_frames, rng)
        if state["step"] == 0 and eval_items:
            log.write(json.dumps({"step": 0, **evaluate()}) + "\n")
            log.flush()

        def save() -> None:
            atomic_save({"factors": {n: {"a": a.detach().clone(), "b": b.detach().clone()} for n, (a, b) in factors.items()},
                         "scale": scale, "rank": args.rank, "optimizer": opt.state_dict(), "state": state,
                         "variant": variant, "data": {"utterances": len(train), "per_kind": args.per_kind,
                                                   "joined": len(longer)}}, ckpt)

        last_save = time.time()
        bar = tqdm(total=len(state["order"]), initial=state["position"], desc=f"epoch {state['epoch'] + 1}", unit="batch")
        running = None
        def checkpoint() -> None:
            record = {"step": state["step"], "epoch": state["epoch"], **(evaluate() if eval_items else {})}
            log.write(json.dumps(record) + "\n")
            log.flush()
            # the checkpoint to export: the best greedy WER on the (not reserved) real speech of --eval-manifest
            best = record.get("real_wer") is not None and record["real_wer"] < state.get("best_wer", float("inf"))
            if best:
                state["best_wer"] = record["real_wer"]
            save()  # with the best WER so far, so that a resumed run keeps comparing against it
            if best:
                shutil.copyfile(ckpt, args.out / "ckpt-best.pt")

        while time.time() - start < budget:
            if state["position"] >= len(state["order"]):
                bar.close()
                state["epoch"] += 1
                state["position"] = 0
                state["order"] = _batches(train, args.batch_frames, random.Random(args.seed + state["epoch"]))
                checkpoint()
                bar = tqdm(total=len(state["order"]), desc=f"epoch {state['epoch'] + 1}", unit="batch")
                continue
            batch = [train[i] for i in state["order"][state["position"]]]
            loss = _loss(decoder, text, batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            state["step"] += 1
            state["position"] += 1
            value = float(loss.detach())
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
            if state["step"] % 50 == 0:
                log.write(json.dumps({"step": state["step"], "loss": round(running, 4)}) + "\n")
                log.flush()
            if args.eval_every and state["step"] % args.eval_every == 0 and state["position"] < len(state["order"]):
                checkpoint()
                last_save = time.time()
            elif time.time() - last_save > 300:
                save()
                last_save = time.time()
        bar.close()
        state["seconds"] += time.time() - start
        save()
        if eval_items:
            log.write(json.dumps({"step": state["step"], "end_of_run": True, **evaluate()}) + "\n")
    finally:
        log.close()
    if args.export is not None:
        best = args.out / "ckpt-best.pt"
        export(best if best.exists() else ckpt, args.export)


def export(ckpt: Path, version_dir: Path) -> Path:
    """Put a run's adapter into a version's folder as its ``whisper-fast`` pass (``whisper-fast.pt``, float16
    factors, and the manifest's ``whisper_fast`` entry).

    Raises:
        SystemExit: a run of another variant than ``--top full`` (the one the engine serves).
    """
    from engine.bundle import MANIFEST
    from engine.whisper.lora import Adapter
    saved = torch.load(ckpt, weights_only=False)
    if saved["variant"]["top"] != "full":
        raise SystemExit(f"{ckpt}: only a --top full run is served (whisper-fast encodes the utterance alone)")
    adapter = Adapter({n: (f["a"].half(), f["b"].half()) for n, f in saved["factors"].items()}, saved["scale"],
                      saved["rank"], 0)
    target = version_dir / ADAPTER_FILE
    atomic_save(adapter.to_dict(), target)
    manifest_path = version_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["whisper_fast"] = {
        "adapter": ADAPTER_FILE, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "recipe": "engine.recipe.whisper_u2", "variant": saved["variant"],
        "steps": saved["state"]["step"], "epochs": saved["state"]["epoch"], "data": saved.get("data", {}),
        "training_seconds": round(saved["state"]["seconds"]),
        "targets": "the version's own whisper final pass (int8, greedy, padded) over each utterance: "
                   "sequence-level distillation, label-free"}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def _batches(items: list[dict], max_frames: int, rng: random.Random) -> list[list[int]]:
    order = sorted(range(len(items)), key=lambda i: items[i]["audio"].shape[0] + rng.random())
    batches, current, longest = [], [], 0
    for i in order:
        n = items[i]["audio"].shape[0]
        if current and max(longest, n) * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _loss(decoder, text: WhisperText, batch: list[dict]) -> torch.Tensor:
    audio, lengths = _pad([b["audio"].float() for b in batch])
    mask = (torch.arange(audio.shape[1])[None, :] < lengths[:, None])[:, None, None, :]
    width = max(len(b["tokens"]) for b in batch)
    tokens = torch.tensor([b["tokens"] + [text.eot] * (width - len(b["tokens"])) for b in batch])
    targets = tokens[:, 1:].clone()
    for row, b in enumerate(batch):
        targets[row, len(b["tokens"]) - 1:] = -100
    targets[:, : len(text.prompt) - 1] = -100
    logits, _ = decoder(tokens[:, :-1], decoder.cross_kv(audio), audio_mask=mask)
    return F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100)


if __name__ == "__main__":
    main()
