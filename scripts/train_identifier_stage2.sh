#!/usr/bin/env bash
# Stage 2 of the shipped identifier: continue from stage 1 (runs/identifier, 320 px) at 384 px
# with a short, low one-cycle, on the same split (same data, same --split-seed).
# Resumable: run it again and it continues from runs/identifier384/checkpoint.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${VALVEREADER_SHARED:-../shared}"
RESUME=""
[ -f runs/identifier384/checkpoint.json ] && RESUME="--resume"
exec python -m valvereader.training.cli_train \
  --data "$SHARED/data/csf-shuntvalves" --out runs/identifier384 \
  --arch efficientnet_lite0 --init-from runs/identifier/model.safetensors --input-size 384 \
  --epochs 3 --batch-size 32 --accumulate-to 32 --max-lr 3e-4 --pct-start 0.15 \
  --seed 1 --split-seed 0 --test-fraction 0.2 --validation-fraction 0.1 \
  --threads 2 --cache-dir runs/cache $RESUME "$@"
