#!/usr/bin/env bash
# Build release v2026-12-01 (the Whisper-based base models): text -> corpus -> fine-tune -> export -> eval.
# Usage: bash scripts/train-whisper-release.sh [WORKDIR] [MINUTES]   (default: data/whisper, 35 minutes of training: the dev CER stops improving after ~6 epochs of the 3,000 utterances)
# Everything generated stays in WORKDIR; re-running resumes the fine-tune from ckpt-last.pt and trains MINUTES more,
# so a longer fine-tune spans several runs. Times on the 2-core reference machine are in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-data/whisper}
minutes=${2:-35}
py=.venv/bin/python
bash scripts/whisper-corpus.sh "$work"
# One fine-tune serves both bands: 40% of its labelled audio went through the telephone channel (8 kHz, mu-law),
# and all the label-free real speech is 8 kHz.
$py -m engine.recipe.whisper_train --corpus "$work/corpus" --text "$work/text" --out "$work/run" --minutes "$minutes" \
    --threads 2 --lr 3e-4 --head-lr 3e-3 --distill 1.0
for name in en-US_BroadbandModel en-US_NarrowbandModel; do
  rm -rf "models/$name/$name.v2026-12-01"
  $py -m engine.recipe.whisper_export --run "$work/run" --version "$name.v2026-12-01" --out models \
      --lm-text "$work/text/train.txt" --final-pass whisper \
      --description "US English $([ $name = en-US_BroadbandModel ] && echo 'broadband (16 kHz)' || echo 'narrowband (8 kHz, upsampled in the front end)'): Whisper tiny.en's encoder made streaming (160 ms chunks, 5.1 s left context), its top 2 blocks fine-tuned with a CTC head; finals by Whisper's decoder"
done
[ -d "$work/eval" ] || $py -c "
from pathlib import Path
from engine.recipe.corpus import build_eval
s = [l for l in Path('$work/text/heldout.txt').read_text().splitlines() if l.strip()]
build_eval(s, Path('$work/eval'), per_set=50, workers=2, seed=20261101)"
$py -m benchmarks.whisper_release --eval-dir "$work/eval" --files 50 --out benchmarks/reports
