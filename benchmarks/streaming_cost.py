"""What a stream of the Whisper-based release costs: chunk size, batch size, int8, and the final pass.

One torch thread. For the newest narrowband version:

- **streaming step**: CPU seconds per second of audio of the block-causal encoder + CTC head
  (``StreamingWhisperCTC.step``), for step sizes of 160 / 320 / 640 ms and batches of 1 and 32
  streams, float32 and with int8 dynamic quantisation of the Linear layers
  (``torch.ao.quantization.quantize_dynamic``);
- **final pass**: CPU seconds per utterance of the ``whisper`` pass (encoder over the padded
  utterance + greedy decoder), float32 and int8 (:func:`engine.whisper.network.quantized`: the
  decoder's tied output projection quantised too);
- **accuracy of int8**: greedy CTC CER and ``whisper`` WER on Allison TRAIN-split prompts, float32 vs int8.

Writes ``streaming-cost.md`` and ``streaming-cost.json`` into ``--out``.

Usage: ``python -m benchmarks.streaming_cost --prompts 30 --out benchmarks/reports``
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
import warnings
from dataclasses import replace
from pathlib import Path

import jiwer
import torch

from engine.audio import load_audio
from engine.bundle import find_models, load_bundle
from engine.catalog import default_models_dir
from engine.features import log_mel
from engine.recipe.allison import SOUNDS, prompts, split_of
from engine.text import normalize_transcript
from engine.whisper.decode import UtteranceDecoder


def int8(module: torch.nn.Module) -> torch.nn.Module:
    """A copy with every Linear layer dynamically quantised to int8."""
    with warnings.catch_warnings():  # torch 2.9 announces the move of eager quantisation to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(module), {torch.nn.Linear}, dtype=torch.qint8)


def step_cost(model, feats: torch.Tensor, *, step_frames: int, batch: int, repeat: int = 2) -> float:
    """CPU seconds per second of one stream's audio of streaming ``feats`` in steps of ``step_frames``,
    ``batch`` streams at once (the batch's cost divided among its streams)."""
    x = feats[None].expand(batch, -1, -1).contiguous()
    best = float("inf")
    for _ in range(repeat):
        state = model.initial_state(batch)
        began = time.process_time()
        for start in range(0, x.shape[1] - step_frames + 1, step_frames):
            lengths = torch.full((batch,), step_frames)
            _, _, state = model.step(x[:, start: start + step_frames], lengths, state)
        best = min(best, time.process_time() - began)
    return best / (batch * x.shape[1] / 100)


def main(argv: list[str] | None = None) -> None:
    """Measure and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    newest = [m for m in find_models(default_models_dir()) if m.name == "en-US_NarrowbandModel"][-1]
    bundle = load_bundle(newest.path)
    fp32, q8 = bundle.model, int8(bundle.model)
    assert bundle.whisper is not None
    decoders = {"float32": bundle.whisper,
                "int8": UtteranceDecoder(bundle.whisper.whisper, bundle.whisper.text,
                                         replace(bundle.whisper.options, int8=True))}
    chosen = sorted((n, t) for n, t in prompts().items() if split_of(n) == "train" and (SOUNDS / f"{n}.wav").exists())
    chosen = random.Random(11).sample(chosen, min(args.prompts, len(chosen)))
    feats_of = {n: log_mel(load_audio(SOUNDS / f"{n}.wav", 8000), bundle.features) for n, _ in chosen}
    # One utterance per prompt: longer prompts (a few run past a minute) would be cut into several.
    chosen = [(n, t) for n, t in chosen if feats_of[n].shape[0] <= 2000]
    report: dict = {"version": newest.version, "steps": [], "final_pass": [], "accuracy": []}
    with torch.inference_mode():
        looped = torch.cat(list(feats_of.values()))[:1024]  # ~10 s of real speech
        for name, model in (("float32", fp32), ("int8", q8)):
            for step_ms in (160, 320, 640):
                for batch in (1, 32):
                    cost = step_cost(model, looped, step_frames=step_ms // 10, batch=batch)
                    report["steps"].append({"weights": name, "step_ms": step_ms, "batch": batch,
                                            "cpu_s_per_audio_s": round(cost, 4),
                                            "streams_per_core": round(1 / cost, 1)})
                    print(report["steps"][-1], flush=True)
        refs = [normalize_transcript(t) for _, t in chosen]
        for name, model in (("float32", fp32), ("int8", q8)):
            decoder = decoders[name]
            hyps_w, hyps_c, seconds = [], [], 0.0
            for n, _ in chosen:
                f = feats_of[n][: feats_of[n].shape[0] // 2 * 2]
                log_probs, lengths = model(f[None], torch.tensor([f.shape[0]]))
                ids = log_probs[0].argmax(-1).tolist()
                hyps_c.append(bundle.tokenizer.decode([t for j, t in enumerate(ids) if t != 0 and (j == 0 or t != ids[j - 1])]))
                began = time.process_time()
                hyps_w.append(decoder.decode(feats_of[n]))
                seconds += time.process_time() - began
            report["final_pass"].append({"weights": name, "cpu_s_per_utterance": round(seconds / len(chosen), 3)})
            report["accuracy"].append({"weights": name, "prompts": len(refs),
                                       "ctc_greedy_cer": round(float(jiwer.cer(refs, [normalize_transcript(h) for h in hyps_c])), 4),
                                       "whisper_wer": round(jiwer.wer(refs, hyps_w), 4)})
            print(report["final_pass"][-1], report["accuracy"][-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streaming-cost.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Streaming cost of the Whisper-based release", "",
             f"Command: `python -m benchmarks.streaming_cost --prompts {args.prompts}`. {newest.version}, one torch "
             "thread, CPU time (`time.process_time`), best of 2 runs.", "",
             "## Streaming step (encoder + CTC head)", "",
             "| weights | step | batch | CPU s per audio s | streams per core |", "|---|---|---|---|---|"]
    lines += [f"| {r['weights']} | {r['step_ms']} ms | {r['batch']} | {r['cpu_s_per_audio_s']} | {r['streams_per_core']} |"
              for r in report["steps"]]
    lines += ["", "## Final pass and accuracy", "",
              f"{len(chosen)} Allison TRAIN-split prompts (of at most 20 s).", "",
              "| weights | whisper pass CPU s / utterance | CTC greedy CER | whisper WER |", "|---|---|---|---|"]
    for fp, acc in zip(report["final_pass"], report["accuracy"]):
        lines.append(f"| {fp['weights']} | {fp['cpu_s_per_utterance']} | {acc['ctc_greedy_cer']:.1%} | {acc['whisper_wer']:.1%} |")
    (args.out / "streaming-cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
