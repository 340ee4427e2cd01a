"""What a custom acoustic model costs a Whisper-based version's final: one final with and without its adapter.

The capacity of a Whisper-based version is bounded by its finals (README, Capacity): the streaming
steps of streams with different custom acoustic models batch together on the version's one network,
so what a custom model adds is its adapter's low-rank terms inside the final pass. This times
:meth:`engine.whisper.decode.UtteranceDecoder.transcribe` (the live route's int8 greedy decode) on the
committed Allison fixtures (TRAIN split), with no adapter and with the given one, interleaved, on one
torch thread, and reports the medians and their ratio.

Usage (the adapter the acoustic benchmark trains, ``python -m benchmarks.acoustic``)::

    python -m benchmarks.adapter_cost --adapter /work/data/acoustic/am-en-US_NarrowbandModel.v2026-12-01
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from engine.adapted import load_adapter
from engine.audio import load_audio
from engine.bundle import load_bundle, resolve_model
from engine.catalog import default_models_dir
from engine.features import log_mel

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "allison"


def measure(adapter_dir: Path, model: str, repeats: int) -> dict:
    """Median seconds per final with and without the adapter, over ``repeats`` rounds of the fixtures."""
    torch.set_num_threads(1)
    bundle = load_bundle(resolve_model(default_models_dir(), model).path)
    if bundle.whisper is None:
        raise SystemExit(f"{bundle.version} is not Whisper-based: its custom models are networks, not adapters")
    adapter = load_adapter(bundle, adapter_dir)
    names = [line.split("\t", 1)[0] for line in (FIXTURES / "transcripts.tsv").read_text().splitlines()]
    mels = [log_mel(load_audio(FIXTURES / name, bundle.sample_rate_hz), bundle.features) for name in names]
    for mel in mels:  # warm-up
        bundle.whisper.transcribe(mel)
        bundle.whisper.transcribe(mel, adapter=adapter)
    seconds: dict[str, list[float]] = {"base": [], "adapter": []}
    for _ in range(repeats):
        for mel in mels:
            for key, which in (("base", None), ("adapter", adapter)):
                began = time.perf_counter()
                bundle.whisper.transcribe(mel, adapter=which)
                seconds[key].append(time.perf_counter() - began)
    base, adapted = statistics.median(seconds["base"]), statistics.median(seconds["adapter"])
    return {"version": bundle.version, "adapter": str(adapter_dir), "adapted_layers": len(adapter.factors),
            "rank": adapter.rank, "finals": len(seconds["base"]), "base_median_s": round(base, 4),
            "adapter_median_s": round(adapted, 4), "ratio": round(adapted / base, 3)}


def main(argv: list[str] | None = None) -> None:
    """Measure and write ``adapter-cost.json`` and ``adapter-cost.md``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapter", type=Path, required=True, help="a trained custom acoustic model folder")
    p.add_argument("--model", default="en-US_NarrowbandModel", help="its base model (newest version)")
    p.add_argument("--repeats", type=int, default=5, help="rounds over the fixtures")
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    args = p.parse_args(argv)
    result = measure(args.adapter, args.model, args.repeats)
    command = "python -m benchmarks.adapter_cost " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adapter-cost.json").write_text(json.dumps({"command": command, **result}, indent=1) + "\n")
    (args.out / "adapter-cost.md").write_text(
        "# A custom acoustic model's cost on a final (Whisper-based version)\n\n"
        f"Command: `{command}`. `{result['version']}`, int8 greedy final pass, one torch thread, "
        f"{result['finals']} finals of the Allison fixtures each way, interleaved.\n\n"
        "| final pass | median seconds per final |\n|---|---|\n"
        f"| base | {result['base_median_s']:.4f} |\n"
        f"| with the adapter ({result['adapted_layers']} layers, rank {result['rank']}) | "
        f"{result['adapter_median_s']:.4f} |\n\n"
        f"Ratio: {result['ratio']:.3f}.\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
