"""What a final costs with the ``whisper`` and the ``whisper-fast`` final pass: CPU seconds per utterance.

Times :meth:`engine.whisper.decode.UtteranceDecoder.transcribe` (the live route's int8 greedy decode) on
each utterance of a manifest, padded (``whisper``) and unpadded through the version's adapter
(``whisper-fast``), on one torch thread, with ``time.process_time``; utterances longer than Whisper's
30 s are left out (a live stream cuts them). Reports the median and mean of each and their ratios.

Usage::

    python -m benchmarks.whisper_fast --manifest HELD-OUT.tsv [--files 40] [--model en-US_NarrowbandModel]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from engine.audio import load_audio
from engine.bundle import load_bundle, resolve_model
from engine.catalog import default_models_dir
from engine.features import FeatureStream


def measure(manifest: Path, model: str, files: int) -> dict:
    """CPU seconds per final of each pass over the first ``files`` utterances of ``manifest``."""
    torch.set_num_threads(1)
    bundle = load_bundle(resolve_model(default_models_dir(), model).path)
    if bundle.whisper is None or bundle.whisper.unpadded is None:
        raise SystemExit(f"{bundle.version} has no whisper-fast adapter")
    feats = []
    for line in manifest.read_text().splitlines()[:files]:
        path = Path(line.split("\t")[0])
        x = FeatureStream(bundle.features).accept(load_audio(path, bundle.sample_rate_hz))
        if x.shape[0] <= 2 * bundle.whisper.whisper.dims.n_audio_ctx:
            feats.append(x)
    out: dict = {"version": bundle.version, "utterances": len(feats), "threads": 1}
    for name, padded in (("whisper", True), ("whisper-fast", False)):
        seconds = []
        for mel in feats:
            began = time.process_time()
            bundle.whisper.transcribe(mel, padded=padded)
            seconds.append(time.process_time() - began)
        out[name] = {"median_s": round(statistics.median(seconds), 4), "mean_s": round(statistics.mean(seconds), 4)}
    out["median_ratio"] = round(out["whisper"]["median_s"] / out["whisper-fast"]["median_s"], 2)
    out["mean_ratio"] = round(out["whisper"]["mean_s"] / out["whisper-fast"]["mean_s"], 2)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--model", default="en-US_NarrowbandModel")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.manifest, args.model, args.files), indent=2))


if __name__ == "__main__":
    main()
