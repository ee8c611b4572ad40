#!/usr/bin/env bash
# Debian packages the program and its tests use: Qt's offscreen/xcb libraries, Xvfb for
# screenshots, DCMTK and dicom3tools (peer DICOM tools the tests compare against), poppler;
# for the packaging tests: desktop-file-utils (desktop-file-validate), strace (the no-network
# check), x11-utils (xwininfo: the window's class) and zstd (the bundle's archive).
set -euo pipefail
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "not root or no apt-get: install these yourself if tests skip: libegl1 libgl1 libxkbcommon0 xvfb dcmtk dicom3tools poppler-utils desktop-file-utils strace x11-utils zstd" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
  xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 \
  libxcb-render-util0 libxcb-shape0 libxcb-randr0 \
  dcmtk dicom3tools poppler-utils \
  desktop-file-utils strace x11-utils zstd >/dev/null
