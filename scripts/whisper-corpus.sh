#!/usr/bin/env bash
# The corpus of release v2026-12-01's fine-tune, in WORKDIR/text and WORKDIR/corpus (existing parts are kept).
# Usage: bash scripts/whisper-corpus.sh [WORKDIR]   (default: data/whisper); called by train-whisper-release.sh and
# compare-finetune-methods.sh, so both train on the same corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-data/whisper}
py=.venv/bin/python
bash scripts/setup-training.sh
mkdir -p "$work"
[ -s "$work/text/train.txt" ] || $py -m engine.recipe.sentences --out "$work/text"
$py -m engine.recipe.whisper_corpus --text "$work/text" --out "$work/corpus" --utterances 3000  # keeps existing shards
