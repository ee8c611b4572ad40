#!/usr/bin/env bash
# The device call for issue 7, item 5: the program and its networks on CUDA, and the CUDA/CPU
# agreement test. Run by the device tool from the repository root, carrying .gpu_bench/ (wheels
# the device lacks: pydicom, efficientnet-lite-pytorch, pylibjpeg + openjpeg for the JPEG 2000
# samples; a few dozen crops to paste into the test films), after `bash scripts/gpu_travel.sh off --program`.
# Writes everything under $OUT.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu_bench/whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD/app || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.txt" 2>&1
timeout "${TEST_S:-150}" python3 -m pytest -q -p no:cacheprovider tests/model/test_cuda_equivalence.py 2>&1 | tee "$OUT/pytest_cuda.log"
timeout "${PROGRAM_S:-240}" python3 benchmarks/gpu_program.py --out "$OUT/gpu_program.json" --crops .gpu_bench/crops ${PROGRAM_ARGS:-} 2>&1 | tee "$OUT/gpu_program.log"
[[ ${BENCH_S:-120} == 0 ]] || timeout "${BENCH_S:-120}" python3 benchmarks/gpu.py --weights weights --out "$OUT/gpu_bench.json" --device cuda --seconds-budget 60 2>&1 | tee "$OUT/gpu_bench.log"
