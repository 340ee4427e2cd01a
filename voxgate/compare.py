"""``voxgate models compare CUSTOMIZATION_ID --manifest SET.tsv``: a custom model's versions side by side.

Before switching to an upgraded custom model (Watson's ``upgrade_model`` keeps the older version
usable through ``base_model_version``), its owner wants to know what the upgrade does on their
own audio. For every trained version of the custom model this prints the WER of the base version
alone and of the base version with the custom model (a language model at its saved
``customization_weight``, else 0.3; an acoustic model's adapted network or adapter), over a manifest of
``audio_path<TAB>reference`` lines, with the live finals ``voxgate eval`` measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from engine.bundle import BundleError, find_models, load_bundle
from engine.customlm import CustomLM
from engine.manifest import ManifestError, read_manifest
from engine.recognizer import Recognizer
from engine.scoring import wer
from server.catalog import Catalog, Database, DataDir
from voxgate.lifecycle import _database_url, _dirs
from voxgate.offline import FileError, audio_for, read_audio

DEFAULT_WEIGHT = 0.3


async def _versions(url: str, data: DataDir, custom_id: str) -> tuple[str, float | None, list[tuple[str, str]]] | None:
    db = Database(url)
    try:
        await db.migrate()
        model = await Catalog(db, data).model_by_id(custom_id)
        if model is None:
            return None
        versions = sorted(model.versions, key=lambda v: v.created)
        return model.kind, model.customization_weight, [(v.base_version, v.artifact) for v in versions]
    finally:
        await db.close()


def _wer(recognizer: Recognizer, rows: list[tuple[Path, str]], label: str, **options) -> float:
    refs, hyps = [], []
    for audio, reference in tqdm(rows, desc=label, unit="file", file=sys.stderr, disable=None):
        try:
            samples = audio_for(recognizer.bundle, *read_audio(audio))
        except FileError as exc:
            raise ValueError(f"{audio}: {exc}") from exc
        out = recognizer.transcribe(samples, **options)
        refs.append(reference)
        hyps.append(out.transcript)
    return wer(refs, hyps)


def compare_command(args: argparse.Namespace) -> int:
    """Print the table (or ``--json``); return the exit status."""
    if args.threads:
        torch.set_num_threads(args.threads)
    root, data = _dirs(args)
    try:
        rows = read_manifest(Path(args.manifest))
    except ManifestError as exc:
        print(f"voxgate: {args.manifest}: {exc}", file=sys.stderr)
        return 1
    found = asyncio.run(_versions(_database_url(args, data), data, args.customization_id))
    if found is None:
        print(f"voxgate: no custom model {args.customization_id} in the catalog of {data.root}", file=sys.stderr)
        return 1
    kind, saved_weight, versions = found
    if not versions:
        print(f"voxgate: custom model {args.customization_id} has no trained version yet", file=sys.stderr)
        return 1
    weight = saved_weight if saved_weight is not None else DEFAULT_WEIGHT
    bases = {m.version: m.path for m in find_models(root) + find_models(data.models)}
    report = []
    try:
        for base_version, artifact in versions:
            if base_version not in bases:
                print(f"voxgate: base model version {base_version} is not installed; skipping it", file=sys.stderr)
                continue
            base = load_bundle(bases[base_version])
            base_wer = _wer(Recognizer(base), rows, f"{base_version} alone")
            if kind == "acoustic":
                from engine.adapted import load_adapted_bundle

                custom_wer = _wer(Recognizer(load_adapted_bundle(bases[base_version], data.path(artifact))), rows,
                                  f"{base_version} + custom")
            else:
                custom_wer = _wer(Recognizer(base), rows, f"{base_version} + custom",
                                  custom_lm=CustomLM.load(data.path(artifact)), customization_weight=weight)
            report.append({"base_model_version": base_version, "files": len(rows), "base_wer": round(base_wer, 4),
                           "custom_wer": round(custom_wer, 4)})
    except (ValueError, BundleError) as exc:
        print(f"voxgate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"customization_id": args.customization_id, "kind": kind,
                          "customization_weight": weight if kind == "language" else None, "versions": report}))
        return 0
    print(f"custom {kind} model {args.customization_id}"
          + (f" (customization_weight {weight:g})" if kind == "language" else "") + f", {len(rows)} files")
    print(f"{'base model version':40} {'base alone':>10} {'with custom':>12}")
    for r in report:
        print(f"{r['base_model_version']:40} {r['base_wer']:>10.2%} {r['custom_wer']:>12.2%}")
    return 0
