#!/usr/bin/env bash
# System packages the training recipe and the evaluation sets need (Debian): the synthesisers,
# festival's voices (the HTS voice is for evaluation only), the Allison prompts (customisation
# showcase and evaluation) and the es/fr/it/ru prompts (label-free distillation).
set -euo pipefail
packages=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
          asterisk-core-sounds-en-wav asterisk-core-sounds-en sox
          asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav
          asterisk-core-sounds-ru-wav)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
bash "$(dirname "$0")/setup.sh"
