#!/usr/bin/env bash
# Build the ShuntValveReader desktop bundle (Linux, one folder) and its archive, then
# smoke-test it and write the numbers into docs/packaging.md.
#
#   bash packaging/build.sh [--wheelhouse DIR] [--unlocked] [--no-smoke] [--no-archive] [--no-docs]
#
#   (default)     build in build/pkgvenv, a torch-free venv made from $PYTHON holding exactly
#                 packaging/bundle-requirements.lock (pinned versions, sha256-checked wheels):
#                 the same commit builds the bundle from the same wheels
#   --wheelhouse DIR  install the lock from DIR only (no package index; fill DIR once with
#                 `pip download --only-binary :all: --no-deps -r packaging/bundle-requirements.lock -d DIR`)
#   --unlocked    build with $PYTHON as it is (development only; BUILD-INFO.txt says "unlocked")
#   --no-smoke    skip packaging/smoke_test.sh
#   --no-archive  skip the compressed archive
#   --no-docs     leave docs/packaging.md alone (the numbers go to dist/build-results.md only)
#
# Environment: PYTHON (default python3.11), VALVEREADER_BUNDLE_SAFETENSORS=1 to also ship the
# torch weights (unused by the bundle), BUILD_COMMIT (the commit of a tree exported with
# `git archive`, for BUILD-INFO.txt and the results). Output:
#   dist/ShuntValveReader/                              the program folder
#   dist/ShuntValveReader-<version>-linux-<arch>.tar.zst  (or .tar.gz without zstd) + .sha256
#   dist/build-results.md                               the numbers, also written into docs/packaging.md
set -euo pipefail

CALLER_DIR="$PWD"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
LOCKED=1
SMOKE=1
ARCHIVE=1
DOCS=1
WHEELHOUSE=""
OPTIONS="$*"
while (( $# )); do
    case "$1" in
        --venv) ;;  # the default
        --unlocked) LOCKED=0 ;;
        --wheelhouse) WHEELHOUSE="$(cd "$CALLER_DIR" && cd "$2" && pwd)"; shift ;;
        --no-smoke) SMOKE=0 ;;
        --no-archive) ARCHIVE=0 ;;
        --no-docs) DOCS=0 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

NAME=ShuntValveReader
DIST="$ROOT/dist"
BUNDLE="$DIST/$NAME"
LOCK="$ROOT/packaging/bundle-requirements.lock"
BUILD_START=$(date +%s)
# what was built; BUILD_COMMIT names it for a tree exported with `git archive COMMIT`
COMMIT="${BUILD_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}"

say() { printf '\n== %s\n' "$*"; }

# --- 1. a Python with PyInstaller and the runtime dependencies ---------------------------
RUNTIME_CHECK='import PyInstaller, onnxruntime, PySide6.QtWidgets, pydicom, pylibjpeg, libjpeg, openjpeg, rle, highdicom, reportlab, yaml, safetensors, PIL, numpy'
if [[ $LOCKED == 1 ]]; then
    VENV="$ROOT/build/pkgvenv"
    LOCK_SHA="$(sha256sum "$LOCK" | cut -c1-64)"
    say "build venv $VENV from ${LOCK#"$ROOT"/}${WHEELHOUSE:+ (wheelhouse $WHEELHOUSE)}"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
        || { echo "build.sh: the lock is for CPython 3.11; PYTHON=$PYTHON is not" >&2; exit 2; }
    # A venv made for another lock may hold packages this one does not: start afresh.
    if [[ "$(cat "$VENV/lock.sha256" 2>/dev/null)" != "$LOCK_SHA" ]]; then
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        PIP_ARGS=(--require-hashes --no-deps --only-binary :all: --disable-pip-version-check --quiet)
        if [[ -n $WHEELHOUSE ]]; then PIP_ARGS+=(--no-index --find-links "$WHEELHOUSE"); fi
        # no pip.conf or PIP_* settings (extra indexes, constraints) from this machine
        PIP_CONFIG_FILE=/dev/null env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
            "$VENV/bin/python" -m pip install "${PIP_ARGS[@]}" -r "$LOCK"
        echo "$LOCK_SHA" > "$VENV/lock.sha256"
    fi
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
    echo "commit: $COMMIT"
    echo "python: $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    if [[ $LOCKED == 1 ]]; then
        echo "packages: packaging/bundle-requirements.lock (sha256 $LOCK_SHA)"
    else
        echo "packages: unlocked (built with $PYTHON as it was; not for release)"
    fi
    echo "libraries: BUNDLED-LIBRARIES.txt (which come from wheels, the interpreter, the build machine)"
    echo "weights (sha256):"
    (cd "$BUNDLE/_internal/valvereader/weights" 2>/dev/null && sha256sum -- *.onnx *.json 2>/dev/null | sed 's/^/  /') || true
} > "$BUNDLE/BUILD-INFO.txt"

# Where each compiled library came from (wheel, interpreter, Debian package), for IT.
LIB_TABLE="$(find "$ROOT/build/pyinstaller" -name libraries.tsv -newer "$ROOT/packaging/ValveReader.spec" -print -quit)"
LIB_SUMMARY="not listed"
if [[ -n $LIB_TABLE ]]; then
    LIB_SUMMARY="$("$PYTHON" "$ROOT/packaging/library_manifest.py" "$LIB_TABLE" "$BUNDLE/BUNDLED-LIBRARIES.txt" | tail -n 1)"
    echo "libraries: $LIB_SUMMARY"
fi

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
    unpack="$(mktemp -d "$DIST/.unpack.XXXXXX")"
    start=$(date +%s.%N)
    tar -C "$unpack" -xf "$ARCHIVE_PATH"
    UNPACK_SECONDS=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo 0)")
    rm -rf "$unpack"
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
RESULTS="$DIST/build-results.txt"
: > "$RESULTS"
SMOKE_RC=0
if [[ $SMOKE == 1 ]]; then
    say "smoke test"
    SMOKE_RESULTS="$RESULTS" PYTHON="$PYTHON" bash "$ROOT/packaging/smoke_test.sh" "$BUNDLE" || SMOKE_RC=$?
fi

# --- 6. the numbers, into dist/build-results.md and docs/packaging.md ------------------------
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit=$COMMIT"
    if [[ -z ${BUILD_COMMIT:-} && -n "$(git -C "$ROOT" status --porcelain -- app packaging weights resources pyproject.toml 2>/dev/null)" ]]; then
        echo "dirty=yes"
    fi
    echo "options=$OPTIONS"
    echo "python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    echo "pyinstaller=$("$PYTHON" -m PyInstaller --version)"
    if [[ $LOCKED == 1 ]]; then echo "lock=the lock (sha256 ${LOCK_SHA:0:12})"; else echo "lock=unlocked"; fi
    echo "machine=$(nproc) cores, $(uname -sr), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "folder_bytes=$SIZE_BYTES"
    if [[ -n $ARCHIVE_PATH ]]; then
        echo "archive_name=$(basename "$ARCHIVE_PATH")"
        echo "archive_bytes=$(stat -c %s "$ARCHIVE_PATH")"
        echo "unpack_seconds=$UNPACK_SECONDS"
    fi
    echo "pyinstaller_seconds=$BUILD_SECONDS"
    echo "build_seconds=$(( $(date +%s) - BUILD_START ))"
    echo "libraries=$LIB_SUMMARY"
    du -sb "$BUNDLE"/_internal/* 2>/dev/null | sort -rn \
        | awk 'NR <= 8 {n = split($2, p, "/"); printf "part=%s %.0f MiB\n", p[n], $1 / 1048576}'
} >> "$RESULTS"
DOC_ARGS=()
if [[ $DOCS == 1 ]]; then DOC_ARGS=(--doc "$ROOT/docs/packaging.md"); fi
"$PYTHON" "$ROOT/packaging/build_report.py" "$RESULTS" "$DIST/build-results.md" ${DOC_ARGS[@]+"${DOC_ARGS[@]}"} >/dev/null
echo "numbers: $DIST/build-results.md${DOC_ARGS[*]:+ and docs/packaging.md}"
exit $SMOKE_RC
