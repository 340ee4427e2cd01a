"""Which second pass: Whisper's decoder over the full-context encoder, or over the streaming encoder's own outputs.

U2's trick (WeNet) is a decoder that cross-attends to the streaming encoder's cached outputs,
so the final pass costs only the decoder. This measures it for the Whisper-based release on
the Allison TRAIN-split prompts (real speech, 8 kHz; never the reserved test split), narrowband,
greedy decoding, one torch thread:

- ``full``: the shipped ``whisper`` final pass (the pretrained encoder over the utterance padded
  to twice its length, at least 15 s, Whisper's normalisation; :mod:`engine.whisper.decode`);
- ``streaming, padded``: the decoder over the streaming encoder's outputs of the utterance
  followed by the same silence (the pad has to be encoded too, so this saves nothing);
- ``streaming, no pad``: the decoder over the utterance's streaming outputs alone (what U2
  would cost: the decoder only).

Writes ``second-pass.md`` and ``second-pass.json`` into ``--out``.

Usage: ``python -m benchmarks.second_pass --prompts 40 --out benchmarks/reports``
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import jiwer
import torch

from engine.audio import load_audio
from engine.bundle import find_models, load_bundle
from engine.catalog import default_models_dir
from engine.features import log_mel
from engine.recipe.allison import SOUNDS, prompts, split_of
from engine.text import normalize_transcript
from engine.whisper.features import normalise_streaming


def _streaming_outputs(bundle, feats: torch.Tensor, total: int) -> torch.Tensor:
    """ln_post outputs ``(1, N, C)`` of the streaming encoder over ``feats`` padded with silence to ``total`` frames."""
    c = bundle.model.config
    x = torch.nn.functional.pad(feats, (0, 0, 0, max(0, total - feats.shape[0])), value=-10.0)
    x = x[: x.shape[0] // 2 * 2]
    return bundle.model.encoder(normalise_streaming(x[None], c.ceiling), torch.tensor([x.shape[0]]), causal=True,
                                chunk_frames=c.chunk_frames, left_chunks=c.left_chunks)


def main(argv: list[str] | None = None) -> None:
    """Run the three passes over the prompts and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=40)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    newest = [m for m in find_models(default_models_dir()) if m.name == "en-US_NarrowbandModel"][-1]
    bundle = load_bundle(newest.path)
    decoder = bundle.whisper
    assert decoder is not None, f"{newest.version} has no Whisper decoder"
    chosen = sorted((n, t) for n, t in prompts().items() if split_of(n) == "train" and (SOUNDS / f"{n}.wav").exists())
    chosen = random.Random(args.seed).sample(chosen, min(args.prompts, len(chosen)))
    refs: list[str] = []
    hyps: dict[str, list[str]] = {"full": [], "streaming, padded": [], "streaming, no pad": []}
    seconds = dict.fromkeys(hyps, 0.0)
    audio_s = 0.0
    with torch.inference_mode():
        for name, text in chosen:
            samples = load_audio(SOUNDS / f"{name}.wav", bundle.sample_rate_hz)
            feats = log_mel(samples, bundle.features)
            audio_s += samples.numel() / bundle.sample_rate_hz
            refs.append(normalize_transcript(text))
            target = min(3000, max(int(decoder.options.min_pad_s * 100), 2 * feats.shape[0]))
            for kind in hyps:
                began = time.perf_counter()
                if kind == "full":
                    hyp = decoder.decode(feats)
                else:
                    out = _streaming_outputs(bundle, feats, target if kind == "streaming, padded" else 0)
                    hyp = normalize_transcript(decoder.text.decode(decoder._greedy(out)))
                seconds[kind] += time.perf_counter() - began
                hyps[kind].append(hyp)
    rows = [{"pass": kind, "prompts": len(refs), "wer": round(jiwer.wer(refs, h), 4),
             "cer": round(float(jiwer.cer(refs, h)), 4), "rtf": round(seconds[kind] / audio_s, 4)}
            for kind, h in hyps.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "second-pass.json").write_text(json.dumps({"version": newest.version, "rows": rows}, indent=1) + "\n")
    lines = ["# Second pass: full-context encoder vs the streaming encoder's own outputs", "",
             f"Command: `python -m benchmarks.second_pass --prompts {args.prompts}`. {newest.version}, "
             f"{len(refs)} Allison TRAIN-split prompts ({audio_s:.0f} s), greedy decoding, one torch thread. "
             "RTF: the second pass alone, per second of audio.", "",
             "| pass | WER | CER | RTF |", "|---|---|---|---|"]
    lines += [f"| {r['pass']} | {r['wer']:.1%} | {r['cer']:.1%} | {r['rtf']} |" for r in rows]
    (args.out / "second-pass.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
