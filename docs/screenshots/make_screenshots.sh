#!/usr/bin/env bash
# Real screenshots of the viewer for the README and docs/viewer.md: `valvereader view
# --screenshot` under Xvfb with the bundled samples and the installed weights, then reduced to
# 256 colours so each stays under 450 KB. Settings go to a temporary folder, not yours.
# WEIGHTS=DIR uses another weights folder (e.g. before the trained weights are shipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/screenshots
export VALVEREADER_CONFIG_DIR="$(mktemp -d)"
trap 'rm -rf "$VALVEREADER_CONFIG_DIR"' EXIT
run() { xvfb-run -a -s "-screen 0 1920x1200x24" valvereader view "$@" --size 1600x1000 ${WEIGHTS:+--weights "$WEIGHTS"}; }
run resources/samples/composite_codman_hakim.dcm --screenshot "$out/viewer-single.png"
run resources/samples --screenshot "$out/viewer-batch.png"
shots=("$out"/viewer-single.png "$out"/viewer-batch.png)
# A valve crop of the training data set (CC BY 4.0, see the README): the identifier's own domain.
crop=../shared/data/csf-shuntvalves/miethke_progav_2
if [[ -d "$crop" ]]; then
    # A copy: the window keeps its results beside the file it opens, never in the data set.
    copy="$VALVEREADER_CONFIG_DIR/crop"
    mkdir -p "$copy" && cp "$(ls -d "$crop"/*.png | head -1)" "$copy/"
    run "$(ls -d "$copy"/*.png | head -1)" --screenshot "$out/viewer-crop.png"
    shots+=("$out"/viewer-crop.png)
fi
python - "${shots[@]}" <<'PY'
import sys
from PIL import Image
for name in sys.argv[1:]:
    image = Image.open(name).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(name, optimize=True)
    print(name, image.size)
PY
ls -l "$out"/*.png
