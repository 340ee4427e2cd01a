"""``voxgate models lifecycle``, ``voxgate models register`` and ``voxgate models import``.

``lifecycle`` prints every model version — base versions shipped under the
models folder or registered into the data directory, and the custom models
in the catalog — with its deadlines and its state on a date.
``register PATH`` installs a new base version (a base-model release) into the
data directory and records it in the catalog; a running server (every replica on the same
catalog and storage) serves it within ``[server] release_check_s`` (30 s), or at once when an
``upgrade_model`` call asks for it — no restart. ``import PATH`` turns a Whisper checkpoint of the user's own (CTranslate2 folder
or openai-whisper ``.pt``) into a weights artifact the recipe fine-tunes versions on
(:mod:`engine.whisper.importing`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import sys
import uuid
from pathlib import Path

from engine.bundle import BundleError, find_models, load_bundle, read_manifest
from engine.catalog import default_models_dir
from server.catalog import (Catalog, Database, DataDir, Entry, InstalledBase, Kind, base_entries, default_data_dir,
                            sqlite_url)


def _dirs(args: argparse.Namespace) -> tuple[Path, DataDir]:
    root = Path(args.models_dir) if args.models_dir else default_models_dir()
    return root, DataDir(Path(args.data_dir) if args.data_dir else default_data_dir())


def _database_url(args: argparse.Namespace, data: DataDir) -> str:
    return args.database_url or sqlite_url(data.database)


async def _custom_entries(url: str, data: DataDir) -> list[Entry]:
    db = Database(url)
    try:
        await db.migrate()
        return [Entry(v.custom_id, v.base_version, Kind(kind.value), v.created.date())
                for kind, v in await Catalog(db, data).trained_versions()]
    finally:
        await db.close()


def lifecycle_command(args: argparse.Namespace) -> int:
    """Print the table (or ``--json`` list); return the exit status."""
    root, data = _dirs(args)
    installed = find_models(root) + find_models(data.models)
    if not installed:
        print(f"voxgate: no model artifacts under {root}", file=sys.stderr)
        return 1
    at = args.at or dt.date.today()
    entries = base_entries([(m.name, m.version, m.created, m.manifest["locale"], m.sample_rate_hz) for m in installed])
    if args.database_url or data.database.exists():
        entries += asyncio.run(_custom_entries(_database_url(args, data), data))
    if args.json:
        print(json.dumps([e.to_json(at) for e in entries], indent=1))
        return 0
    print(f"{'model':36} {'version':40} {'kind':8} {'created':10}  {'adapt until':11} {'use until':10}  "
          f"state on {at.isoformat()}")
    for e in entries:
        adaptation = e.adaptation_deadline.isoformat() if e.adaptation_deadline else "-"
        print(f"{e.model:36} {e.version:40} {e.kind.value:8} {e.created.isoformat():10}  {adaptation:11} "
              f"{e.transcription_deadline.isoformat():10}  {e.state(at).value}")
    return 0


def register_command(args: argparse.Namespace) -> int:
    """Validate a model artifact, copy it into the data directory, record it; return the exit status."""
    root, data = _dirs(args)
    source = Path(args.path)
    try:
        manifest = read_manifest(source)
        load_bundle(source)  # weights, tokenizer, decoder: a release that cannot load is refused now
    except (BundleError, OSError, RuntimeError, KeyError, ValueError) as exc:
        print(f"voxgate: {source}: not a usable model artifact: {exc}", file=sys.stderr)
        return 2
    version = manifest["version"]
    if any(m.version == version for m in find_models(root) + find_models(data.models)):
        print(f"voxgate: {version} is already installed", file=sys.stderr)
        return 2
    dest = data.models / manifest["name"] / version
    tmp = dest.with_name(f".{version}.{uuid.uuid4().hex[:8]}.tmp")
    shutil.copytree(source, tmp)
    tmp.replace(dest)  # whole or not at all
    created = dt.date.fromisoformat(manifest["created"])

    async def record() -> None:
        db = Database(_database_url(args, data))
        try:
            await db.migrate()
            await Catalog(db, data).sync_base_versions([InstalledBase(
                manifest["name"], version, manifest["locale"], int(manifest["sample_rate_hz"]), created, str(dest))])
        finally:
            await db.close()

    asyncio.run(record())
    entry = Entry(manifest["name"], version, Kind.BASE, created)
    print(f"registered {version} in {dest}: custom models can train on it until {entry.adaptation_deadline}, "
          f"recognition until {entry.transcription_deadline}. A running server serves it within its "
          "release_check_s (30 s by default); no restart needed.")
    return 0


def import_command(args: argparse.Namespace) -> int:
    """Check a user's Whisper checkpoint and write it as a weights artifact; return the exit status."""
    from engine.whisper.importing import import_checkpoint
    from engine.whisper.weights import WeightsError

    try:
        artifact = import_checkpoint(Path(args.path), Path(args.out), licence=args.licence, name=args.name,
                                     tokenizer=Path(args.tokenizer) if args.tokenizer else None)
    except WeightsError as exc:
        print(f"voxgate: {args.path}: {exc}", file=sys.stderr)
        return 2
    print(f"imported {args.path} as {artifact.name} (sha256 {artifact.sha256}) into {artifact.folder}.\n"
          f"Fine-tune a streaming version on it with: python -m engine.recipe.whisper_train --pretrained "
          f"{artifact.folder} --corpus DIR --text DIR --out RUN; export the run with engine.recipe.whisper_export; "
          f"install the version with 'voxgate models register'.")
    return 0
