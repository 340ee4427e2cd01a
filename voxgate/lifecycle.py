"""``voxgate models lifecycle``: every installed model version with its deadlines and its state on a date.

Custom models join this list with the catalog (custom language and acoustic models); for now it
covers the base-model versions installed under the models folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from engine.bundle import find_models
from engine.catalog import default_models_dir
from server.catalog.lifecycle import base_entries


def lifecycle_command(args: argparse.Namespace) -> int:
    """Print the table (or ``--json`` list); return the exit status."""
    root = Path(args.models_dir) if args.models_dir else default_models_dir()
    installed = find_models(root)
    if not installed:
        print(f"voxgate: no model artifacts under {root}", file=sys.stderr)
        return 1
    at = args.at or dt.date.today()
    entries = base_entries([(m.name, m.version, m.created, m.manifest["locale"], m.sample_rate_hz) for m in installed])
    if args.json:
        print(json.dumps([e.to_json(at) for e in entries], indent=1))
        return 0
    print(f"{'version':40} {'kind':5} {'created':10}  {'adapt until':11} {'use until':10}  state on {at.isoformat()}")
    for e in entries:
        adaptation = e.adaptation_deadline.isoformat() if e.adaptation_deadline else "-"
        print(f"{e.version:40} {e.kind.value:5} {e.created.isoformat():10}  {adaptation:11} "
              f"{e.transcription_deadline.isoformat():10}  {e.state(at).value}")
    return 0
