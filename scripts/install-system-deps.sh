#!/usr/bin/env bash
# Debian/Ubuntu packages of the program and its tests.
#   install-system-deps.sh window   the libraries Qt's window needs (xcb platform plugin, EGL/GL,
#                                   fonts, keyboard): the README's command 1
#   install-system-deps.sh [all]    those and what the tests use: Xvfb for screenshots, DCMTK and
#                                   dicom3tools (peer DICOM tools the tests compare against),
#                                   poppler; for the packaging tests desktop-file-utils
#                                   (desktop-file-validate), strace (the no-network check),
#                                   x11-utils (xwininfo: the window's class) and zstd (the
#                                   bundle's archive): the README's command 2 and .ci/run
# Installs only what is missing. As root it runs apt-get; otherwise it prints the exact command
# to run and exits 1 if a library of the window is missing (no window, and Qt's tests fail,
# without it), 0 if only test tools are (the tests that need them skip).
set -euo pipefail
what="${1:-all}"
WINDOW=(
  libegl1 libgl1 libfontconfig1 libfreetype6 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
  libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1
  libxcb-util1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
)
TOOLS=(
  xvfb xauth dcmtk dicom3tools poppler-utils
  desktop-file-utils strace x11-utils zstd
)
case "$what" in
  window) wanted=("${WINDOW[@]}") ;;
  all) wanted=("${WINDOW[@]}" "${TOOLS[@]}") ;;
  *) echo "usage: $0 [window|all]" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "system packages: not Debian or Ubuntu, nothing installed; install Qt 6's X11 (xcb) libraries" \
       "with this system's package manager (valvereader names any library it still misses)" >&2
  exit 0
fi
missing=()
window_missing=0
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
    [[ " ${WINDOW[*]} " == *" $package "* ]] && window_missing=1
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages ($what): all present"
  exit 0
fi
command="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "system packages ($what): missing ${missing[*]}" >&2
  echo "run this, then the same command again:  sudo apt-get update && sudo $command" >&2
  [ "$window_missing" = 1 ] && exit 1  # no window, and Qt's tests fail, without these
  echo "(going on: the tests that need these tools skip)" >&2
  exit 0
fi
echo "system packages ($what): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && $command -qq >/dev/null; }; then
  echo "system packages ($what): apt-get failed; run it yourself: apt-get update && $command" >&2
  [ "$window_missing" = 1 ] && exit 1
  exit 0
fi
