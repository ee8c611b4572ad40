#!/usr/bin/env bash
# Make the working tree small enough to travel to the device machine (64 MiB in all, with the
# carried .gpu/ of scripts/gpu_pack.py at ~40 MB), and put it back afterwards.
#
#   bash scripts/gpu_travel.sh off    # before the device calls: big tracked files leave git's index
#   bash scripts/gpu_travel.sh off --lean  # the shipped safetensors weights too (17 MB): room for a
#                                          # second backbone's ImageNet weights in .gpu/; the CUDA tests then skip
#   bash scripts/gpu_travel.sh off --program  # for benchmarks/gpu_program.py (no .gpu/): the open-set
#                                          # statistics and the sample DICOMs travel, the view-choice ones
#                                          # and the ONNX exports stay (carry .gpu_bench/ instead of .gpu/)
#   bash scripts/gpu_travel.sh on     # after them: index and .git/info/exclude as they were
#   bash scripts/gpu_travel.sh size   # what would travel now, in MB (tracked + untracked-not-ignored + .gpu)
#
# The files stay on disk; only the index and .git/info/exclude change, and `on` restores both.
# Kept travelling: the identifier's and locator's safetensors and cards, which
# tests/model/test_cuda_equivalence.py needs on the device. Left behind: the ONNX exports, both
# open-set statistics (26 MB each since identifier 2.0.0, not used on the device), the bundled
# sample DICOMs and the two contact sheets.
set -euo pipefail
cd "$(dirname "$0")/.."
BIG=(weights/identifier.onnx weights/locator.onnx weights/identifier.openset.safetensors weights/identifier.openset_view.safetensors
     docs/contact-sheet.png docs/evaluation/composite_failures_val.jpg)
[[ ${2:-} == --lean ]] && BIG+=(weights/identifier.safetensors weights/locator.safetensors)
mapfile -t SAMPLES < <(git ls-files 'resources/samples/*.dcm')
if [[ ${2:-} == --program ]]; then
    BIG=(weights/identifier.onnx weights/locator.onnx weights/identifier.openset_view.safetensors
         docs/contact-sheet.png docs/evaluation/composite_failures_val.jpg)
    SAMPLES=()
fi
BACKUP=.git/info/exclude.gpu_travel
size() {
    local tree gpu=0
    tree=$(git ls-files -co --exclude-standard -z | xargs -0 -r du -cb 2>/dev/null | awk '$2 == "total" {s += $1} END {print s + 0}')
    [[ -d .gpu ]] && gpu=$(du -sb .gpu | cut -f1)
    [[ ${1:-} == --program && -d .gpu_bench ]] && gpu=$(du -sb .gpu_bench | cut -f1)
    echo "travels: $(( (tree + gpu) / 1000000 )) MB (tree $(( tree / 1000000 )) MB, .gpu $(( gpu / 1000000 )) MB; limit 67 MB)"
}
case "${1:-}" in
    off)
        [[ -f $BACKUP ]] && { echo "already off (restore with: $0 on)" >&2; exit 1; }
        cp .git/info/exclude "$BACKUP"
        git rm -q --cached -- "${BIG[@]}" "${SAMPLES[@]}"
        for f in "${BIG[@]}" "${SAMPLES[@]}"; do echo "/$f" >> .git/info/exclude; done
        size "${2:-}"
        ;;
    on)
        [[ -f $BACKUP ]] || { echo "nothing to restore" >&2; exit 1; }
        mv "$BACKUP" .git/info/exclude
        git reset -q -- "${BIG[@]}" weights/identifier.safetensors weights/locator.safetensors resources/samples
        git status --short
        size
        ;;
    size) size ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
esac
