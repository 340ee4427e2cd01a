#!/usr/bin/env bash
# Create .venv at the repo root with voxgate, torch 2.9.1 and the test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: its CUDA build from PyPI runs on the CPU here and on a GPU elsewhere.
.venv/bin/python -m pip install -q torch==2.9.1 torchaudio==2.9.1
.venv/bin/python -m pip install -q -e '.[dev]'
echo "voxgate installed in .venv ($(.venv/bin/voxgate --version))"
