#!/usr/bin/env bash
# Train the shipped base models from scratch: corpus -> tokenizer -> broadband -> narrowband -> export -> eval.
# Usage: bash scripts/train-base-models.sh [WORKDIR]   (default: data/recipe; everything generated stays there)
# Time on the 2-core reference machine is in README.md. Re-running resumes each training from its last epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-data/recipe}
py=.venv/bin/python
bash scripts/setup-training.sh
mkdir -p "$work"

[ -s "$work/text/train.txt" ] || $py -m engine.recipe.sentences --out "$work/text"
[ -s "$work/corpus/train-wideband.pt" ] || $py -m engine.recipe.corpus --text "$work/text" --out "$work/corpus" --utterances 12000

# Broadband: one run from scratch, 18 epochs (8,000-frame batches, no dropout, feature-domain augmentation
# except in the last 2). Its epoch-8 snapshot is the older version, the end of the run the newer one.
$py -m engine.recipe.train --corpus "$work/corpus" --band wide --out "$work/wide" --text "$work/text/train.txt" \
    --epochs 18 --plain-epochs 2 --threads 2 --max-frames 8000 --sortagrad --snapshot-epochs 8
# Narrowband: each version fine-tuned from the broadband version of the same release on the telephone-band
# (8 kHz, mu-law) features; the mel bins they share keep their weights.
$py -m engine.recipe.train --corpus "$work/corpus" --band narrow --out "$work/narrow-old" --tokenizer "$work/wide/tokenizer.model" \
    --init-from "$work/wide/ckpt-epoch8.pt" --epochs 1 --lr 1e-3 --threads 2 --max-frames 8000
$py -m engine.recipe.train --corpus "$work/corpus" --band narrow --out "$work/narrow-new" --tokenizer "$work/wide/tokenizer.model" \
    --init-from "$work/wide/ckpt-last.pt" --epochs 3 --plain-epochs 1 --lr 1e-3 --threads 2 --max-frames 8000

export_model() {  # CKPT VERSION DESCRIPTION: export, tune the LM fusion on the tuning set, export again with it
  local args=(--ckpt "$1" --tokenizer "$work/wide/tokenizer.model" --version "$2" --out models --description "$3"
              --lm-text "$work/text/train.txt")
  $py -m engine.recipe.export "${args[@]}"
  local name=${2%%.v*}
  $py -m engine.recipe.tune --bundle "models/$name/$2" --text "$work/text" --eval-dir "$work/corpus/eval" > "$work/tune-$2.json"
  $py -m engine.recipe.export "${args[@]}" \
      --lm-weight "$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["lm_weight"])' "$work/tune-$2.json")" \
      --word-score "$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["word_score"])' "$work/tune-$2.json")"
}
export_model "$work/wide/ckpt-epoch8.pt" en-US_BroadbandModel.v2026-05-01 "US English broadband (16 kHz), first release: the recipe's run after 8 of its 18 epochs"
export_model "$work/wide/ckpt-last.pt" en-US_BroadbandModel.v2026-11-01 "US English broadband (16 kHz): 18 epochs, the last 2 without feature augmentation"
export_model "$work/narrow-old/ckpt-last.pt" en-US_NarrowbandModel.v2026-05-01 "US English narrowband (8 kHz), first release: fine-tuned for 1 epoch from the older broadband version"
export_model "$work/narrow-new/ckpt-last.pt" en-US_NarrowbandModel.v2026-11-01 "US English narrowband (8 kHz): fine-tuned for 3 epochs from the newer broadband version"

bash scripts/eval-base-models.sh "$work"
