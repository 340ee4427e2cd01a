#!/usr/bin/env bash
# LoRA vs top blocks vs full fine-tune of the streaming Whisper encoder, at equal training time (issue 11, item 5).
# Usage: bash scripts/compare-finetune-methods.sh [WORKDIR] [MINUTES]   (default: data/whisper, 15 minutes each)
# Trains each variant with engine.recipe.whisper_train on the release corpus (scripts/whisper-corpus.sh, the one
# train-whisper-release.sh uses), exports each as a narrowband version into its own models folder, and runs the
# streaming CTC alone (greedy: the interim results' path) over the 127 held-out Allison TRAIN-split prompts (real speech; the Allison
# prompts never train a base model, and their test split is not used here). Results: WORKDIR/methods/*.json;
# the reading is in benchmarks/reports/finetune-methods.md. Re-running resumes each run (each trains MINUTES more).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-data/whisper}
minutes=${2:-15}
py=.venv/bin/python
bash scripts/whisper-corpus.sh "$work"
mkdir -p "$work/methods"
$py -m engine.recipe.allison --split train --out "$work/methods/allison-train.tsv"
$py -c "
from benchmarks.acoustic_heldout import held_out
from engine.recipe.allison import SOUNDS
lines = open('$work/methods/allison-train.tsv').read().splitlines()
kept = [l for l in lines if held_out(l.split('\t')[0][len(str(SOUNDS)) + 1:-4])]
open('$work/methods/allison-heldout.tsv', 'w').write(''.join(l + '\n' for l in kept))
print(len(kept), 'held-out TRAIN-split prompts')"
common=(--corpus "$work/corpus" --text "$work/text" --minutes "$minutes" --threads 2 --head-lr 3e-3)
train() {  # NAME ARGS...: one variant; runs with the same frozen bottom share its cache
  local name=$1; shift
  mkdir -p "$work/run-$name"
  $py -m engine.recipe.whisper_train "${common[@]}" --out "$work/run-$name" "$@"
}
train top2 --method top --trained-blocks 2 --lr 3e-4 --distill 1.0
train lora4 --method lora --trained-blocks 4 --lora-rank 16 --lora-alpha 32 --lr 1e-3 --distill 1.0
[ -e "$work/run-top4/cache.pt" ] || ln -s "$(realpath "$work/run-lora4/cache.pt")" "$work/run-top4/cache.pt"
train top4 --method top --trained-blocks 4 --lr 3e-4 --distill 1.0
[ -e "$work/run-top2-d4/cache.pt" ] || { mkdir -p "$work/run-top2-d4"; ln -s "$(realpath "$work/run-top2/cache.pt")" "$work/run-top2-d4/cache.pt"; }
train top2-d4 --method top --trained-blocks 2 --lr 3e-4 --distill 4.0
for name in top2 lora4 top4 top2-d4; do
  rm -rf "$work/methods/models-$name"
  $py -m engine.recipe.whisper_export --run "$work/run-$name" --version en-US_NarrowbandModel.v2026-12-01 \
      --out "$work/methods/models-$name" --final-pass greedy
  VOXGATE_MODELS="$work/methods/models-$name" $py -m voxgate eval --manifest "$work/methods/allison-heldout.tsv" \
      --model en-US_NarrowbandModel --final-pass greedy --threads 2 --json > "$work/methods/greedy-$name.json"
  grep -h final_dev "$work/run-$name/log.jsonl" | tail -1 > "$work/methods/dev-$name.json"
done
$py -m voxgate eval --manifest "$work/methods/allison-heldout.tsv" --model en-US_NarrowbandModel --final-pass greedy \
    --threads 2 --json > "$work/methods/greedy-shipped.json"
tail -n +1 "$work"/methods/*.json
