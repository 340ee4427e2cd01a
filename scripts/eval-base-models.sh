#!/usr/bin/env bash
# Evaluate every shipped base model beside pocketsphinx, write benchmarks/reports/base-models.{md,json,png},
# and record each version's figures in its manifest.
# Usage: bash scripts/eval-base-models.sh [WORKDIR]   (default: data/recipe, made by train-base-models.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-data/recipe}
py=.venv/bin/python
$py -m benchmarks.base_models --eval-dir "$work/corpus/eval" --files "${EVAL_FILES:-30}" --out benchmarks/reports
for manifest in models/*/*/manifest.json; do
  $py -m engine.recipe.export --version "$(basename "$(dirname "$manifest")")" --metrics benchmarks/reports/base-models.json
done
