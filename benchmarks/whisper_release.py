"""Accuracy of the Whisper-based release by final pass, beside offline Whisper and the older release.

For each evaluation set — the Allison test split (real speech, 8 kHz, 103 prompts) and the recipe's
held-out synthetic sets (espeak-ng Scottish, flite awb, festival HTS slt — reserved — and a seen
espeak voice), wideband and narrowband — it runs:

- ``voxgate eval --threads 1 --final-pass P`` (the documented command, as a subprocess) on the
  newest version of the band's model, for ``P`` in whisper, ctc and greedy. ``eval`` runs the
  streaming computation a live stream runs (the block-causal mask makes chunk size irrelevant) with
  the same endpointing, so these are the live finals;
- the same on the previous version (the convolutional v2026-11-01), its own final pass;
- offline Whisper: the version's own Whisper decoder over the whole file at once (no streaming,
  no endpointing), which the live ``whisper`` finals should be close to;
- ``faster-whisper`` tiny.en, beam 5, one thread (the foundation issue's reference), when installed.

Writes ``whisper-release.md``, ``.json`` and ``.png`` into ``--out``.

Usage::

    python -m benchmarks.whisper_release --eval-dir data/whisper/eval --files 50 --out benchmarks/reports \
        [--resume LOG]   # the stdout of an interrupted run: its finished sets are kept
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.base_models import subset, voxgate_eval, wer_bar_plot
from engine.audio import load_audio
from engine.bundle import find_models, load_bundle
from engine.catalog import default_models_dir
from engine.features import log_mel
from engine.manifest import read_manifest
from engine.recipe.allison import write_manifest
from engine.scoring import score

SETS = ("festival-hts-slt", "espeak-scotland", "flite-awb", "seen-voice-en-us")
PASSES = ("whisper", "ctc", "greedy")


def _score(refs: list[str], hyps: list[str], audio_s: float, proc_s: float) -> dict:
    scored = score(refs, hyps)
    return {"files": len(refs), "wer": round(scored.wer, 4), "cer": round(scored.cer, 4),
            "rtf": round(proc_s / audio_s, 4) if audio_s else None}


def offline_whisper(manifest: Path, version_path: Path) -> dict:
    """The version's Whisper decoder over each whole file (full context), one thread."""
    bundle = load_bundle(version_path)
    assert bundle.whisper is not None
    refs, hyps, audio_s, proc_s = [], [], 0.0, 0.0
    for path, reference in read_manifest(manifest):
        samples = load_audio(path, bundle.sample_rate_hz)
        began = time.perf_counter()
        hyps.append(bundle.whisper.decode(log_mel(samples, bundle.features)))
        proc_s += time.perf_counter() - began
        audio_s += samples.numel() / bundle.sample_rate_hz
        refs.append(reference)
    return _score(refs, hyps, audio_s, proc_s)


def faster_whisper(manifest: Path) -> dict | None:
    """faster-whisper with the pinned tiny.en weights, beam 5, one thread; None when not installed."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        return None
    from engine.whisper.weights import SOURCES, source_folder

    model = WhisperModel(str(source_folder(SOURCES["whisper-tiny.en"])), device="cpu", compute_type="float32",
                         cpu_threads=1)
    refs, hyps, audio_s, proc_s = [], [], 0.0, 0.0
    for path, reference in read_manifest(manifest):
        samples = load_audio(path, 16000).numpy()
        began = time.perf_counter()
        segments, _ = model.transcribe(samples, beam_size=5, language="en", vad_filter=False)
        hyps.append(" ".join(s.text for s in segments))
        proc_s += time.perf_counter() - began
        audio_s += samples.size / 16000
        refs.append(reference)
    return _score(refs, hyps, audio_s, proc_s)


def main(argv: list[str] | None = None) -> None:
    """Evaluate every system on every set and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval-dir", type=Path, required=True, help="folder written by engine.recipe.corpus.build_eval")
    p.add_argument("--files", type=int, default=50, help="files per synthetic set")
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--sets", nargs="*", help="only these sets (names as in the report)")
    p.add_argument("--resume", type=Path, help="a log of an earlier run (its JSON lines): its rows are kept and "
                                               "the (band, set) pairs it finished are not run again")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    installed = find_models(default_models_dir())
    rows: list[dict] = []
    if args.resume:
        earlier = [json.loads(line) for line in args.resume.read_text().splitlines() if line.startswith("{")]
        per_set: dict[tuple[str, str], list[dict]] = {}
        for r in earlier:
            per_set.setdefault((r["band"], r["set"]), []).append(r)
        rows = [r for group in per_set.values() if len(group) >= 5 for r in group]  # finished sets only
    with tempfile.TemporaryDirectory() as tmp:
        sets = [("narrowband", "allison-test"), *((band, name) for band in ("wideband", "narrowband") for name in SETS)]
        for band, name in sets:
            if args.sets and name not in args.sets or any((r["band"], r["set"]) == (band, name) for r in rows):
                continue
            # a set's manifest is written only when it runs: the synthetic eval dir may be absent
            if name == "allison-test":
                manifest = Path(tmp) / "allison-test.tsv"
                write_manifest("test", manifest)
            else:
                manifest = subset(args.eval_dir / band / name / "manifest.tsv", args.files, Path(tmp) / band / name)
            model = "en-US_BroadbandModel" if band == "wideband" else "en-US_NarrowbandModel"
            versions = [m for m in installed if m.name == model]
            newest, older = versions[-1], versions[-2]

            def add(system: str, report: dict | None) -> None:
                if report is not None:
                    rows.append({"band": band, "set": name, "system": system, **report})
                    print(json.dumps(rows[-1]), flush=True)

            for final_pass in PASSES:
                add(f"{newest.version} live, final pass {final_pass}",
                    voxgate_eval(manifest, newest.version, final_pass=final_pass))
            add(f"{newest.version} offline Whisper (whole file)", offline_whisper(manifest, newest.path))
            add(f"{older.version} (previous release)", voxgate_eval(manifest, older.version))
            add("faster-whisper tiny.en, beam 5", faster_whisper(manifest))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "whisper-release.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_report(rows, args)


def write_report(rows: list[dict], args: argparse.Namespace) -> None:
    """Markdown table plus a grouped bar plot of WER."""
    lines = ["# The Whisper-based release by final pass", "",
             f"Command: `python -m benchmarks.whisper_release --eval-dir {args.eval_dir} --files {args.files}"
             f"{' --sets ' + ' '.join(args.sets) if args.sets else ''} --out {args.out}`. "
             "WER/CER counted by `engine.scoring`; RTF on one torch thread. "
             "allison-test: all 103 prompts of the reserved test split (real speech, 8 kHz).",
             "", "| band | set | system | files | WER | CER | RTF |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['band']} | {r['set']} | {r['system']} | {r['files']} | {r['wer']:.1%} | "
                     f"{r['cer']:.1%} | {r['rtf']} |")
    (args.out / "whisper-release.md").write_text("\n".join(lines) + "\n")
    wer_bar_plot(rows, args.out / "whisper-release.png", title="Word error rate by evaluation set and system",
                 figsize=(13, 5), cap=1.5, legend_size=7)


if __name__ == "__main__":
    main()
