#!/usr/bin/env bash
# The one command of a GPU session (device tool), from the repository root, with .gpu/ carried
# (scripts/gpu_pack.py). Everything it keeps goes to $OUT: results.json, the models, log.txt.
# Before the device calls: `bash scripts/gpu_travel.sh off` (the tracked tree + .gpu/ exceed the
# 64 MiB that travels); after them: `bash scripts/gpu_travel.sh on`.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
OUT=${OUT:-/tmp/gs_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/log.txt"
python3 scripts/gpu_session.py --data .gpu --out "$OUT" --deadline "${DEADLINE:-430}" --bench "$@" 2>&1 | tee -a "$OUT/log.txt"
PYTHONPATH=.gpu/app:app:/tmp/gs_site timeout 45 python3 -m pytest -q -o addopts="" -p no:cacheprovider -m "not slow" tests/model/test_cuda_equivalence.py 2>&1 | tail -15 | tee -a "$OUT/log.txt"
nvidia-smi --query-gpu=memory.used --format=csv 2>&1 | tee -a "$OUT/log.txt"
