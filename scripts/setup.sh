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
# The web page's browser tests (tests/e2e/test_web_page.py) drive Debian's headless Chromium; they skip without it.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
            || echo "note: apt-get could not install chromium and chromium-driver; the web page's browser tests will skip"
    else
        echo "note: chromium and chromedriver are not installed (apt-get install chromium chromium-driver as root); the web page's browser tests will skip"
    fi
fi
echo "voxgate installed in .venv ($(.venv/bin/voxgate --version))"
