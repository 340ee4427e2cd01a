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

# Broadband: one run; its epoch-4 snapshot is the older, shorter-trained version.
$py -m engine.recipe.train --corpus "$work/corpus" --band wide --out "$work/wide" --text "$work/text/train.txt" \
    --epochs "${WIDE_EPOCHS:-12}" --snapshot-epochs 4 --threads 2
# Narrowband: fine-tuned from each broadband version on the telephone-band (8 kHz, mu-law) features.
$py -m engine.recipe.train --corpus "$work/corpus" --band narrow --out "$work/narrow-old" --tokenizer "$work/wide/tokenizer.model" \
    --init-from "$work/wide/ckpt-epoch4.pt" --epochs 1 --lr 1e-3 --threads 1 &
$py -m engine.recipe.train --corpus "$work/corpus" --band narrow --out "$work/narrow-new" --tokenizer "$work/wide/tokenizer.model" \
    --init-from "$work/wide/ckpt-last.pt" --epochs "${NARROW_EPOCHS:-3}" --lr 1e-3 --threads 1
wait

export_model() {  # CKPT VERSION DESCRIPTION
  $py -m engine.recipe.export --ckpt "$1" --tokenizer "$work/wide/tokenizer.model" --version "$2" --out models \
      --description "$3" --lm-text "$work/text/train.txt"
}
export_model "$work/wide/ckpt-epoch4.pt" en-US_BroadbandModel.v2026-05-01 "US English broadband (16 kHz), first release: 4 epochs"
export_model "$work/wide/ckpt-last.pt" en-US_BroadbandModel.v2026-11-01 "US English broadband (16 kHz)"
export_model "$work/narrow-old/ckpt-last.pt" en-US_NarrowbandModel.v2026-05-01 "US English narrowband (8 kHz), first release"
export_model "$work/narrow-new/ckpt-last.pt" en-US_NarrowbandModel.v2026-11-01 "US English narrowband (8 kHz)"

bash scripts/eval-base-models.sh "$work"
