#!/usr/bin/env bash
# Smoke test of the desktop bundle: it must start with no Python beside it, offline, headless,
# open a sample and save a screenshot, decode compressed DICOM, and classify the samples with
# the same result as the Python install.
#
#   bash packaging/smoke_test.sh [dist/ShuntValveReader]
#
# PYTHON (default python3.11) is the *Python install* used as the reference (run from app/).
# SMOKE_WEIGHTS=DIR runs view and classify with --weights DIR in both (e.g. before the trained
# weights are in weights/); by default the bundle uses its bundled weights and the Python
# install the checkout's weights/.
# The bundle itself runs with an empty environment (env -i: no PYTHONPATH, no PATH to a
# Python, HOME and config in a temporary folder) and, where `unshare -n` works, without any
# network interface. Exit status 0 only if every check passes.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUNDLE="$(cd "${1:-$ROOT/dist/ShuntValveReader}" && pwd)"
EXE="$BUNDLE/ShuntValveReader"
PYTHON="${PYTHON:-python3.11}"
HELPERS="$ROOT/packaging/smoke_helpers.py"
WORK="$(mktemp -d /tmp/valvereader-smoke.XXXXXX)"
mkdir -p "$WORK/home" "$WORK/config" "$WORK/empty-bin" "$WORK/run"
chmod 700 "$WORK/run"
FAILED=0
PASSED=0 FAILS=0
# SMOKE_RESULTS=FILE: key=value lines for build.sh's report (docs/packaging.md)
RESULTS="${SMOKE_RESULTS:-$WORK/results.txt}"
: > "$RESULTS"
result() { printf '%s=%s\n' "$1" "$2" >> "$RESULTS"; }
pass() { printf 'PASS  %s\n' "$*"; PASSED=$((PASSED + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=1; FAILS=$((FAILS + 1)); }
note() { printf 'NOTE  %s\n' "$*"; }

[[ -x "$EXE" ]] || { echo "no bundle at $EXE (run packaging/build.sh)"; exit 1; }

# Offline and with no Python on the machine: a private network namespace (no interface up)
# and a private mount namespace in which every Python installation, the checkout's source,
# weights and build folders are hidden under empty read-only mounts. Falls back to less
# isolation, with a note, where the machine does not allow it.
ISOLATE=()
HIDE_DIRS=() HIDE_FILES=()
for d in "$("$PYTHON" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" \
         "$("$PYTHON" -c 'import sys; print(sys.prefix)' 2>/dev/null)" \
         "$HOME/.pyenv" /usr/lib/python3* /usr/local/lib/python3* /opt/conda \
         "$ROOT/app" "$ROOT/weights" "$ROOT/build"; do
    case "$d" in ""|/|/usr|/usr/local|/opt|/home|/root) continue ;; esac
    [[ -d "$d" && "$BUNDLE/" != "$d/"* ]] && HIDE_DIRS+=("$(cd "$d" && pwd -P)")
done
# deepest first (a parent mounted over first would hide the child's mount point), no repeats
mapfile -t HIDE_DIRS < <(printf '%s\n' ${HIDE_DIRS[@]+"${HIDE_DIRS[@]}"} | awk 'NF {print length, $0}' \
    | sort -rn | cut -d' ' -f2- | awk '!seen[$0]++')
for f in /usr/bin/python* /usr/local/bin/python* /usr/lib/x86_64-linux-gnu/libpython3*; do
    [[ -e "$f" ]] && HIDE_FILES+=("$f")
done
cat > "$WORK/isolate.sh" <<'ISO'
#!/bin/bash
# usage: isolate.sh NDIRS DIR... FILE... -- COMMAND...
n=$1; shift
while [[ $1 != -- ]]; do
    if (( n > 0 )); then mount -t tmpfs -o ro,size=4k tmpfs "$1" || exit 97; n=$((n - 1))
    else mount --bind /dev/null "$1" 2>/dev/null || true; fi  # a dangling link: nothing to hide
    shift
done
shift
exec "$@"
ISO
if unshare -n -m --propagation private bash "$WORK/isolate.sh" "${#HIDE_DIRS[@]}" \
        ${HIDE_DIRS[@]+"${HIDE_DIRS[@]}"} ${HIDE_FILES[@]+"${HIDE_FILES[@]}"} -- true 2>/dev/null; then
    ISOLATE=(unshare -n -m --propagation private bash "$WORK/isolate.sh" "${#HIDE_DIRS[@]}"
             ${HIDE_DIRS[@]+"${HIDE_DIRS[@]}"} ${HIDE_FILES[@]+"${HIDE_FILES[@]}"} --)
    if "${ISOLATE[@]}" bash -c 'for p in python3 python3.11 python; do command -v $p >/dev/null && $p -c pass 2>/dev/null && exit 1; done; exit 0'; then
        pass "isolation: no network, no usable Python, checkout's app/ weights/ build/ hidden (${#HIDE_DIRS[@]} folders, ${#HIDE_FILES[@]} files)"
        result isolation "no network, no Python, checkout hidden"
    else
        note "isolation: a Python is still runnable inside the namespace"
    fi
elif unshare -n true 2>/dev/null; then
    ISOLATE=(unshare -n)
    note "no private mount namespace here: offline, but Python installs stay visible (env -i only)"
    result isolation "no network (Python installs visible)"
else
    result isolation "env -i only (unshare not permitted)"
    note "unshare not permitted here: the bundle runs with the network present (env -i only)"
fi

bundle() {
    # No Python on PATH, no Python variables, a throw-away home and config folder.
    ${ISOLATE[@]+"${ISOLATE[@]}"} timeout 600 \
        env -i HOME="$WORK/home" PATH="$WORK/empty-bin" LANG=C.UTF-8 \
        XDG_RUNTIME_DIR="$WORK/run" QT_QPA_PLATFORM=offscreen \
        VALVEREADER_CONFIG_DIR="$WORK/config" "$EXE" "$@"
}
reference() {
    PYTHONPATH="$ROOT/app" VALVEREADER_CONFIG_DIR="$WORK/config-py" QT_QPA_PLATFORM=offscreen \
        timeout 900 "$PYTHON" -m valvereader "$@"
}

WEIGHT_ARGS=()
if [[ -n "${SMOKE_WEIGHTS:-}" ]]; then
    WEIGHT_ARGS=(--weights "$(cd "$SMOKE_WEIGHTS" && pwd)")
    note "using --weights ${WEIGHT_ARGS[1]} in both"
fi

mkdir -p "$WORK/samples"
cp -r "$ROOT"/resources/samples/. "$WORK/samples/" 2>/dev/null || true

echo "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo "work:   $WORK"

# 0. Nothing of torch (or a Python) inside; it starts at all.
if find "$BUNDLE" \( -name 'libtorch*' -o -path '*/torch/*' -o -name 'libpython*.so*' -prune \) -print \
        | grep -q -E 'torch'; then
    fail "torch found in the bundle"
else
    pass "no torch in the bundle"
fi
if out=$(bundle --version 2>&1); then pass "starts: $out"; else fail "--version: $out"; fi

# Libraries the bundle expects from the system and does not find here (GTK 3 and Wayland are
# optional: Qt falls back to its own dialogs and to X11).
missing=$(cd "$BUNDLE/_internal" && find . -name '*.so*' -type f -print0 \
    | LD_LIBRARY_PATH="$BUNDLE/_internal" xargs -0 -n 50 ldd 2>/dev/null | grep 'not found' \
    | awk '{print $1}' | sort -u | grep -v -E '^lib(gtk-3|gdk-3|wayland-)' | tr '\n' ' ')
# Libraries of the build machine's system the bundle carries (ValveReader.spec: CARRIED_SYSTEM_LIBS)
# and where the others come from: BUNDLED-LIBRARIES.txt, written by build.sh.
if [[ -n $missing ]]; then
    note "system libraries missing on this machine (some plugins will not load): $missing"
else
    pass "every bundled library resolves (GTK 3 / Wayland aside)"
fi

# 1. Headless viewer on a bundled sample, with a screenshot.
SAMPLE=""
for f in "$WORK"/samples/*; do
    case "${f,,}" in
        *.dcm|*.png|*.jpg|*.jpeg|*.tif|*.tiff) SAMPLE="$f"; break ;;
    esac
done
if [[ -z $SAMPLE ]]; then
    note "resources/samples/ has no image yet: screenshot of the empty window instead"
    SHOT_ARGS=()
else
    SHOT_ARGS=("$SAMPLE")
fi
start=$SECONDS
if bundle view ${SHOT_ARGS[@]+"${SHOT_ARGS[@]}"} ${WEIGHT_ARGS[@]+"${WEIGHT_ARGS[@]}"} --screenshot "$WORK/shot.png" >"$WORK/view.log" 2>&1 \
        && [[ -s "$WORK/shot.png" ]] && "$PYTHON" "$HELPERS" check-png "$WORK/shot.png"; then
    pass "view samples/${SAMPLE##*/} --screenshot ($((SECONDS - start)) s) -> $WORK/shot.png"
    result view "${SAMPLE##*/} --screenshot in $((SECONDS - start)) s, cold start included"
else
    fail "view --screenshot (log: $WORK/view.log)"; tail -n 15 "$WORK/view.log"
fi

# 1b. Inside the bundle: every module imports, and the exports (PDF with the template diagram,
# PNG, DICOM Secondary Capture) work (packaging/bundle_selftest.py).
if bundle --bundle-selftest "$WORK/selftest" ${SAMPLE:+"$SAMPLE"} >"$WORK/selftest.log" 2>&1; then
    pass "bundle self-test: $(grep -c '^PASS' "$WORK/selftest.log") checks (imports, templates, fonts, PDF/PNG/DICOM SC exports)"
    grep '^PASS  imports' "$WORK/selftest.log" | sed 's/^PASS  /      /'
    result selftest "$(grep -c '^PASS' "$WORK/selftest.log") checks pass; $(grep '^PASS  imports' "$WORK/selftest.log" \
        | sed -e 's/^PASS  imports: //' -e 's/ (left out on purpose:.*/ import (the others need torch, OpenCV or scikit-learn)/')"
else
    fail "bundle self-test (log: $WORK/selftest.log)"; grep -E '^FAIL' "$WORK/selftest.log" | head -n 10
fi

# 1c. Libraries the bundle takes from the workstation and can do without (ValveReader.spec):
# with CUPS, OpenSSL and GTK 3 (where installed) hidden, the window still opens a sample.
LDCONFIG="$(command -v ldconfig || echo /sbin/ldconfig)"
if [[ -n $SAMPLE ]] && unshare -n -m --propagation private true 2>/dev/null; then
    cat > "$WORK/hide-optional.sh" <<HIDE
#!/bin/bash
hidden=()
for l in libgtk-3.so.0 libgdk-3.so.0 libcups.so.2 libssl.so.3 libcrypto.so.3; do
    p=\$("$LDCONFIG" -p | awk -v l="\$l" '\$1 == l {print \$NF; exit}')
    [[ -n \$p ]] && mount --bind /dev/null "\$(readlink -f "\$p")" && hidden+=("\$l")
done
echo "hidden: \${hidden[*]}"
exec "\$@"
HIDE
    if unshare -n -m --propagation private bash "$WORK/hide-optional.sh" timeout 600 env -i HOME="$WORK/home" \
            PATH="$WORK/empty-bin" LANG=C.UTF-8 XDG_RUNTIME_DIR="$WORK/run" QT_QPA_PLATFORM=offscreen \
            VALVEREADER_CONFIG_DIR="$WORK/config" "$EXE" view "$SAMPLE" --screenshot "$WORK/shot-bare.png" \
            >"$WORK/view-bare.log" 2>&1 && "$PYTHON" "$HELPERS" check-png "$WORK/shot-bare.png" >/dev/null; then
        pass "view without the workstation's optional libraries ($(head -n 1 "$WORK/view-bare.log"))"
        result optional_libs "the window opens a sample with $(head -n 1 "$WORK/view-bare.log" | sed 's/^hidden: //') hidden"
    else
        fail "view without the workstation's optional libraries (log: $WORK/view-bare.log)"; tail -n 5 "$WORK/view-bare.log"
    fi
fi

# 2. Compressed DICOM: the bundle's decoders give the same display image as the Python install.
mkdir -p "$WORK/codec-out"
"$PYTHON" "$HELPERS" codec-files "$WORK/codecs" > "$WORK/codecs.txt"
while IFS=$'\t' read -r name what; do
    f="$WORK/codecs/$name"
    out="$WORK/codec-out/$name"
    b_png="$out.bundle.png" p_png="$out.python.png"
    bundle info "$f" --png "$b_png" >"$out.bundle.log" 2>&1; rc_b=$?
    reference info "$f" --png "$p_png" >"$out.python.log" 2>&1; rc_p=$?
    if [[ $rc_b -ne 0 && $rc_p -ne 0 ]]; then
        if [[ "$(tail -n 1 "$out.bundle.log")" == "$(tail -n 1 "$out.python.log")" ]]; then
            pass "decode $what ($name): fails exactly as in the Python install"
        else
            fail "decode $what ($name): both fail, differently: $(tail -n 1 "$out.bundle.log")"
        fi
    elif [[ $rc_b -ne 0 ]]; then
        fail "decode $what ($name): $(tail -n 1 "$out.bundle.log")"
    elif [[ $rc_p -ne 0 ]]; then
        note "decode $what ($name): bundle ok, the Python install failed"
    elif "$PYTHON" "$HELPERS" compare-png "$b_png" "$p_png"; then
        pass "decode $what"
        result codec "$what"
    else
        fail "decode $what ($name): image differs from the Python install"
    fi
done < "$WORK/codecs.txt"

# 3. classify the samples: same classes, probabilities within 1e-4 of the Python install.
TARGET="$WORK/samples"
if ! compgen -G "$WORK/samples/*.*" >/dev/null; then
    note "resources/samples/ is empty: classifying the codec test files instead"
    TARGET="$WORK/codecs"
fi
start=$SECONDS
bundle classify "$TARGET" ${WEIGHT_ARGS[@]+"${WEIGHT_ARGS[@]}"} --device cpu --output "$WORK/bundle.csv" >"$WORK/classify.bundle.log" 2>&1
rc_bundle=$?
t_bundle=$((SECONDS - start))
reference classify "$TARGET" ${WEIGHT_ARGS[@]+"${WEIGHT_ARGS[@]}"} --device cpu --output "$WORK/python.csv" >"$WORK/classify.python.log" 2>&1
rc_python=$?
if grep -qi "weights" "$WORK/classify.bundle.log" && [[ ! -s "$WORK/bundle.csv" || $rc_bundle -ne 0 ]] \
        && ! compgen -G "$ROOT/weights/*.onnx" >/dev/null && [[ -z "${SMOKE_WEIGHTS:-}" ]]; then
    note "no weights/*.onnx in this checkout; the bundle says: $(grep -i weights "$WORK/classify.bundle.log" | head -n 2)"
    if [[ $rc_bundle -eq $rc_python ]]; then
        pass "classify without weights: same exit status as the Python install ($rc_bundle)"
    else
        fail "classify without weights: exit $rc_bundle, Python install $rc_python"
    fi
elif [[ ! -s "$WORK/bundle.csv" ]]; then
    fail "classify wrote no CSV (exit $rc_bundle): $(tail -n 3 "$WORK/classify.bundle.log")"
else
    if [[ $rc_bundle -ne $rc_python ]]; then
        fail "classify exit status: bundle $rc_bundle, Python install $rc_python"
    fi
    if "$PYTHON" "$HELPERS" compare-csv "$WORK/bundle.csv" "$WORK/python.csv" --tol 1e-4 | tee "$WORK/compare.txt"; then
        pass "classify $TARGET (${t_bundle} s): same as the Python install -> $WORK/bundle.csv"
        result classify_same "$(head -n 1 "$WORK/compare.txt")"
        result classify_seconds "$t_bundle"
        if [[ -f "$TARGET/ground_truth.csv" ]]; then
            result classify_correct "$("$PYTHON" "$HELPERS" count-correct "$WORK/bundle.csv" "$TARGET/ground_truth.csv")"
        fi
    else
        fail "classify: the bundle and the Python install disagree ($WORK/bundle.csv vs $WORK/python.csv)"
    fi
fi

# 4. Nothing leaves the workstation: the window, open on a sample for 30 s (past ONNX Runtime's
# first upload attempt, ~11 s after it loads), traced with strace, in a fresh HOME: no name
# lookup, no address off the machine, no ONNX Runtime usage events (packaging/offline_check.py).
STRACE="$(command -v strace || true)"
if [[ -z $STRACE ]] || ! "$STRACE" -f -qq -o /dev/null true 2>/dev/null; then
    note "strace missing or not permitted: the bundle's network use is not traced (apt-get install strace)"
    result offline "not traced (no strace)"
else
    mkdir -p "$WORK/net-home"
    display=(env QT_QPA_PLATFORM=offscreen)
    if command -v xvfb-run >/dev/null; then display=(xvfb-run -a -s "-nolisten tcp" env QT_QPA_PLATFORM=xcb); fi
    start=$SECONDS
    ${ISOLATE[@]+"${ISOLATE[@]}"} "${display[@]}" bash -c 'exec env -i HOME="$1" PATH="$2" LANG=C.UTF-8 \
            XDG_RUNTIME_DIR="$3" VALVEREADER_CONFIG_DIR="$4" ${DISPLAY:+DISPLAY="$DISPLAY"} \
            ${XAUTHORITY:+XAUTHORITY="$XAUTHORITY"} QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-xcb}" "${@:5}"' _ \
        "$WORK/net-home" "$WORK/empty-bin" "$WORK/run" "$WORK/config" \
        "$STRACE" -f -qq -s 96 -e trace=connect,bind,sendto,sendmsg,sendmmsg -o "$WORK/net.trace" \
        "$(command -v timeout)" -s TERM 30 "$EXE" view ${SAMPLE:+"$SAMPLE"} >"$WORK/net-view.log" 2>&1
    if "$PYTHON" "$ROOT/packaging/offline_check.py" "$WORK/net.trace" --home "$WORK/net-home" > "$WORK/net.txt"; then
        pass "offline: the window ($((SECONDS - start)) s, ${display[0]}) $(tail -n 1 "$WORK/net.txt")"
        result offline "$(tail -n 1 "$WORK/net.txt") (the window, 30 s, ${display[0]})"
    else
        fail "offline: the bundle reached for the network or left usage events:"; head -n 8 "$WORK/net.txt"
        result offline "FAILED: $(tail -n 1 "$WORK/net.txt")"
    fi
fi

# 5. Settings and logs went to the configured folder, nowhere else.
if [[ -n "$(ls -A "$WORK/home" 2>/dev/null)" ]]; then
    note "the bundle wrote into HOME: $(cd "$WORK/home" && find . -maxdepth 3 | head -n 5 | tr '\n' ' ')"
fi

result checks "$PASSED passed, $FAILS failed"
if [[ $FAILED == 0 ]]; then
    result smoke PASSED
    echo "SMOKE TEST PASSED"
else
    result smoke FAILED
    echo "SMOKE TEST FAILED (files in $WORK)"
fi
exit $FAILED
