"""Accuracy and speed of the shipped base models beside pocketsphinx, with a report and a plot.

For every installed version of ``en-US_BroadbandModel`` and ``en-US_NarrowbandModel``,
runs ``voxgate eval --json --threads 1`` (the documented command, as a subprocess) on the
evaluation sets of the recipe, and pocketsphinx 5 on the same audio. Sets: a training voice
on held-out sentences; three held-out synthesisers (espeak-ng Scottish, flite awb, festival
HTS slt — the last is reserved for evaluation); for narrowband, the same at 8 kHz µ-law plus
the Allison test split (real speech). Writes ``base-models.md``, ``base-models.json`` and
``base-models.png`` into ``--out``.

Usage::

    python -m benchmarks.base_models --eval-dir data/recipe/corpus/eval --files 30 --out benchmarks/reports
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import pocketsphinx_baseline  # noqa: E402
from engine.bundle import find_models  # noqa: E402
from engine.catalog import default_models_dir  # noqa: E402
from engine.recipe.allison import write_manifest  # noqa: E402

SETS = ("seen-voice-en-us", "espeak-scotland", "flite-awb", "festival-hts-slt")


def subset(manifest: Path, files: int, dest: Path) -> Path:
    """A manifest of the first `files` lines with absolute paths (same audio for every system)."""
    rows = [line for line in manifest.read_text().splitlines() if line.strip()][:files]
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "manifest.tsv"
    out.write_text("".join(f"{(manifest.parent / a).resolve()}\t{r}\n" for a, r in (row.split("\t", 1) for row in rows)))
    return out


def voxgate_eval(manifest: Path, version: str, *, final_pass: str = "auto") -> dict:
    """Run the CLI's eval on one manifest with one model version, on one torch thread."""
    cmd = [str(Path(sys.executable).with_name("voxgate")), "eval", "--manifest", str(manifest), "--json",
           "--threads", "1", "--base-model-version", version, "--final-pass", final_pass]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Evaluate everything and write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval-dir", type=Path, required=True, help="the recipe's corpus/eval folder")
    p.add_argument("--files", type=int, default=30, help="files per set")
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    p.add_argument("--pocketsphinx-only", action="store_true",
                   help="only (re)compute the pocketsphinx rows, cached in OUT/pocketsphinx.json")
    args = p.parse_args(argv)
    rows = []
    cache_path = args.out / "pocketsphinx.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() and not args.pocketsphinx_only else {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {("wideband", s): subset(args.eval_dir / "wideband" / s / "manifest.tsv", args.files, Path(tmp) / "w" / s)
                for s in SETS}
        sets.update({("narrowband", s): subset(args.eval_dir / "narrowband" / s / "manifest.tsv", args.files,
                                               Path(tmp) / "n" / s) for s in SETS})
        allison = Path(tmp) / "allison-test.tsv"
        write_manifest("test", allison)
        sets[("narrowband", "allison-test")] = allison
        for (band, name), manifest in sets.items():
            model = "en-US_BroadbandModel" if band == "wideband" else "en-US_NarrowbandModel"
            installed = [m for m in find_models(default_models_dir()) if m.name == model]
            for version in [] if args.pocketsphinx_only else installed:
                report = voxgate_eval(manifest, version.version)
                rows.append({"band": band, "set": name, "system": version.version, **report})
                print(json.dumps(rows[-1]), flush=True)
            key = f"{band}/{name}/{args.files}"
            if key not in cache:
                cache[key] = {"band": band, "set": name, "system": "pocketsphinx 5 en-us",
                              **pocketsphinx_baseline.evaluate(manifest)}
                print(json.dumps(cache[key]), flush=True)
            rows.append(cache[key])
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path.write_text(json.dumps(cache, indent=1) + "\n")
    if args.pocketsphinx_only:
        return
    (args.out / "base-models.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_report(rows, args)


def write_report(rows: list[dict], args: argparse.Namespace) -> None:
    """Markdown table plus a grouped bar plot of WER."""
    lines = ["# Base models vs pocketsphinx", "",
             f"Command: `python -m benchmarks.base_models --eval-dir {args.eval_dir} --files {args.files}`. "
             "WER/CER after `engine.text.normalize_transcript`; RTF on one torch thread (voxgate) / one core (pocketsphinx).",
             "", "| band | set | system | files | WER | CER | RTF |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['band']} | {r['set']} | {r['system']} | {r['files']} | {r['wer']:.1%} | {r['cer']:.1%} | {r['rtf']} |")
    (args.out / "base-models.md").write_text("\n".join(lines) + "\n")
    wer_bar_plot(rows, args.out / "base-models.png", title="Word error rate by evaluation set", figsize=(12, 5))


def wer_bar_plot(rows: list[dict], path: Path, *, title: str, figsize: tuple[float, float],
                 cap: float | None = None, legend_size: int = 8) -> None:
    """A grouped bar plot of WER (%): one group per (band, set), one bar per system; ``cap`` clips bars."""
    systems = list(dict.fromkeys(r["system"] for r in rows))
    groups = list(dict.fromkeys((r["band"], r["set"]) for r in rows))
    fig, ax = plt.subplots(figsize=figsize)
    width = 0.8 / max(len(systems), 1)
    for k, system in enumerate(systems):
        values = [next(((r["wer"] if cap is None else min(r["wer"], cap)) * 100 for r in rows
                        if (r["band"], r["set"]) == g and r["system"] == system), 0) for g in groups]
        ax.bar([i + k * width for i in range(len(groups))], values, width, label=system)
    ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(groups))])
    ax.set_xticklabels([f"{b}\n{s}" for b, s in groups], fontsize=8)
    ax.set_ylabel("WER (%)" if cap is None else f"WER (%, capped at {cap * 100:g})")
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
