#!/usr/bin/env bash
# Build the ShuntValveReader desktop bundle (Linux, one folder) and its archive, then
# smoke-test it.
#
#   bash packaging/build.sh [--venv] [--no-smoke] [--no-archive]
#
#   --venv        build in a torch-free virtual environment (build/pkgvenv) made from $PYTHON
#                 with pyproject's dependencies + the packaging extra. This is also done automatically
#                 when $PYTHON lacks PyInstaller or a runtime dependency.
#   --no-smoke    skip packaging/smoke_test.sh
#   --no-archive  skip the compressed archive
#
# Environment: PYTHON (default python3.11), VALVEREADER_BUNDLE_SAFETENSORS=1 to also ship the
# torch weights (unused by the bundle). Output:
#   dist/ShuntValveReader/                              the program folder
#   dist/ShuntValveReader-<version>-linux-<arch>.tar.zst  (or .tar.gz without zstd) + .sha256
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
USE_VENV=0
SMOKE=1
ARCHIVE=1
for arg in "$@"; do
    case "$arg" in
        --venv) USE_VENV=1 ;;
        --no-smoke) SMOKE=0 ;;
        --no-archive) ARCHIVE=0 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

NAME=ShuntValveReader
DIST="$ROOT/dist"
BUNDLE="$DIST/$NAME"

say() { printf '\n== %s\n' "$*"; }

# --- 1. a Python with PyInstaller and the runtime dependencies ---------------------------
RUNTIME_CHECK='import PyInstaller, onnxruntime, PySide6.QtWidgets, pydicom, pylibjpeg, libjpeg, openjpeg, rle, highdicom, reportlab, yaml, safetensors, PIL, numpy'
if [[ $USE_VENV == 0 ]] && ! "$PYTHON" -c "$RUNTIME_CHECK" >/dev/null 2>&1; then
    echo "build.sh: $PYTHON lacks PyInstaller or a runtime dependency; using a build venv"
    USE_VENV=1
fi
if [[ $USE_VENV == 1 ]]; then
    VENV="$ROOT/build/pkgvenv"
    say "build venv $VENV (torch-free)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$VENV"
    fi
    # The runtime dependencies and the packaging extra from pyproject.toml (not torch, not the
    # package itself: the spec takes valvereader from app/).
    "$VENV/bin/python" - "$ROOT/pyproject.toml" > "$VENV/requirements.txt" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["packaging"]))
PY
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$VENV/requirements.txt"
    PYTHON="$VENV/bin/python"
fi
"$PYTHON" -c "$RUNTIME_CHECK"
VERSION="$(PYTHONPATH="$ROOT/app" "$PYTHON" -c 'import valvereader; print(valvereader.__version__)')"
ARCH="$(uname -m)"
echo "python: $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
echo "pyinstaller: $("$PYTHON" -m PyInstaller --version)"
echo "valvereader: $VERSION"

# --- 2. what will be bundled ---------------------------------------------------------------
say "contents check"
shopt -s nullglob
onnx_files=("$ROOT"/weights/*.onnx)
samples=("$ROOT"/resources/samples/*)
shopt -u nullglob
if (( ${#onnx_files[@]} == 0 )); then
    echo "WARNING: no weights/*.onnx: the bundle will say that weights are missing"
else
    printf 'weights: %s\n' "${onnx_files[@]##*/}"
fi
echo "samples: ${#samples[@]} files in resources/samples"

# --- 3. PyInstaller ------------------------------------------------------------------------
say "PyInstaller"
start=$(date +%s)
rm -rf "$BUNDLE"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" \
    "$ROOT/packaging/ValveReader.spec"
end=$(date +%s)
BUILD_SECONDS=$((end - start))

# SHA256SUMS in the weights folder, from the model cards (files.<role>.sha256), so that IT can
# check the shipped weights with `sha256sum -c SHA256SUMS` and no other tool.
"$PYTHON" - "$BUNDLE/_internal/valvereader/weights" <<'PY'
import json, sys
from pathlib import Path
folder = Path(sys.argv[1])
lines = []
for card in sorted(folder.glob("*.json")):
    try:
        files = json.loads(card.read_text()).get("files", {})
    except (ValueError, AttributeError):
        continue
    for entry in files.values():
        if isinstance(entry, dict) and entry.get("sha256") and (folder / entry.get("path", "")).is_file():
            lines.append(f"{entry['sha256']}  {entry['path']}")
if lines:
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    print(f"weights: {len(lines)} files listed in SHA256SUMS")
PY
if [[ -f "$BUNDLE/_internal/valvereader/weights/SHA256SUMS" ]]; then
    (cd "$BUNDLE/_internal/valvereader/weights" && sha256sum --quiet -c SHA256SUMS) \
        || { echo "build.sh: bundled weights do not match their model cards" >&2; exit 1; }
fi

# Desktop integration files beside the executable.
cp "$ROOT/packaging/valvereader.desktop" "$ROOT/packaging/valvereader.png" \
   "$ROOT/packaging/valvereader.svg" "$BUNDLE/"
install -m 755 "$ROOT/packaging/install.sh" "$BUNDLE/install.sh"
install -m 644 "$ROOT/README.md" "$BUNDLE/README.md"  # its last section is for IT
{
    echo "Shunt Valve Reader $VERSION (desktop bundle, linux-$ARCH)"
    echo "Decision support only - not for diagnostic use."
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sr)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "python: $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    echo "weights (sha256):"
    (cd "$BUNDLE/_internal/valvereader/weights" 2>/dev/null && sha256sum -- *.onnx *.json 2>/dev/null | sed 's/^/  /') || true
} > "$BUNDLE/BUILD-INFO.txt"

SIZE_BYTES=$(du -sb "$BUNDLE" | cut -f1)
SIZE_HUMAN=$(du -sh "$BUNDLE" | cut -f1)

# --- 4. archive ----------------------------------------------------------------------------
ARCHIVE_PATH=""
if [[ $ARCHIVE == 1 ]]; then
    say "archive"
    rm -f "$DIST/$NAME"-*.tar.zst "$DIST/$NAME"-*.tar.gz "$DIST/$NAME"-*.sha256
    if command -v zstd >/dev/null 2>&1; then
        ARCHIVE_PATH="$DIST/$NAME-$VERSION-linux-$ARCH.tar.zst"
        tar -C "$DIST" -cf - "$NAME" | zstd -q -T0 -12 -o "$ARCHIVE_PATH"
    else
        ARCHIVE_PATH="$DIST/$NAME-$VERSION-linux-$ARCH.tar.gz"
        tar -C "$DIST" -czf "$ARCHIVE_PATH" "$NAME"
    fi
    (cd "$DIST" && sha256sum "$(basename "$ARCHIVE_PATH")" > "$(basename "$ARCHIVE_PATH").sha256")
fi

say "bundle"
echo "folder:  $BUNDLE  ($SIZE_HUMAN, $SIZE_BYTES bytes)"
if [[ -n $ARCHIVE_PATH ]]; then
    echo "archive: $ARCHIVE_PATH  ($(du -sh "$ARCHIVE_PATH" | cut -f1))"
fi
echo "PyInstaller time: ${BUILD_SECONDS} s"
echo "largest parts:"
du -sh "$BUNDLE"/_internal/* 2>/dev/null | sort -rh | sed -n '1,8s/^/  /p'

# --- 5. smoke test -------------------------------------------------------------------------
if [[ $SMOKE == 1 ]]; then
    say "smoke test"
    PYTHON="$PYTHON" bash "$ROOT/packaging/smoke_test.sh" "$BUNDLE"
fi
