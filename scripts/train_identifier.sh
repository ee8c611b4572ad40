#!/usr/bin/env bash
# The run that produced weights/identifier.*: fine-tune ImageNet EfficientNet-Lite0 at 320 px
# on the csf-shuntvalves crops (70 % train / 10 % validation / 20 % test, seed 0) on CPU.
# Resumable: run it again and it continues from runs/identifier/checkpoint.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${VALVEREADER_SHARED:-../shared}"
RESUME=""
[ -f runs/identifier/checkpoint.json ] && RESUME="--resume"
exec python -m valvereader.training.cli_train \
  --data "$SHARED/data/csf-shuntvalves" --out runs/identifier \
  --arch efficientnet_lite0 --pretrained --input-size 320 \
  --epochs 9 --batch-size 32 --accumulate-to 32 --max-lr 1e-3 --pct-start 0.2 \
  --seed 0 --split-seed 0 --test-fraction 0.2 --validation-fraction 0.1 \
  --threads 2 --cache-dir runs/cache $RESUME "$@"
