#!/usr/bin/env bash
# Install the unpacked ShuntValveReader bundle (run from inside the unpacked folder).
#
#   sudo ./install.sh              system-wide: /opt/ShuntValveReader, menu entry for all users,
#                                  /usr/local/bin/valvereader
#   ./install.sh --user            this user only: ~/.local/opt/ShuntValveReader,
#                                  ~/.local/share/applications, ~/.local/bin/valvereader
#   ./install.sh --prefix DIR      program folder DIR (menu entry as for system/user)
#   ./install.sh --uninstall [--user]
#
# Nothing else is touched: settings and logs live in the user's ~/.config/valvereader.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME=ShuntValveReader
MODE=system
[[ $(id -u) -ne 0 ]] && MODE=user
PREFIX=""
UNINSTALL=0
while (( $# )); do
    case "$1" in
        --user) MODE=user ;;
        --system) MODE=system ;;
        --prefix) PREFIX="$2"; shift ;;
        --uninstall) UNINSTALL=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ $MODE == system ]]; then
    TARGET="${PREFIX:-/opt/$NAME}"
    APPS=/usr/share/applications
    ICONS=/usr/share/icons/hicolor
    BIN=/usr/local/bin
else
    TARGET="${PREFIX:-$HOME/.local/opt/$NAME}"
    APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
    ICONS="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
    BIN="$HOME/.local/bin"
fi

refresh() {
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$ICONS" || true
}

if [[ $UNINSTALL == 1 ]]; then
    rm -f "$APPS/valvereader.desktop" "$ICONS/256x256/apps/valvereader.png" \
          "$ICONS/scalable/apps/valvereader.svg"
    [[ -L "$BIN/valvereader" ]] && rm -f "$BIN/valvereader"
    if [[ -x "$TARGET/$NAME" ]]; then rm -rf "$TARGET"; fi
    refresh
    echo "removed $TARGET and its menu entry"
    exit 0
fi

[[ -x "$SRC/$NAME" ]] || { echo "install.sh: run it from the unpacked $NAME folder" >&2; exit 1; }

if [[ "$SRC" != "$TARGET" ]]; then
    mkdir -p "$(dirname "$TARGET")"
    rm -rf "$TARGET.new"
    cp -a "$SRC" "$TARGET.new"
    rm -rf "$TARGET"
    mv "$TARGET.new" "$TARGET"
fi
mkdir -p "$APPS" "$ICONS/256x256/apps" "$ICONS/scalable/apps" "$BIN"
install -m 644 "$TARGET/valvereader.png" "$ICONS/256x256/apps/valvereader.png"
install -m 644 "$TARGET/valvereader.svg" "$ICONS/scalable/apps/valvereader.svg"
sed -e "s|^Exec=.*|Exec=$TARGET/$NAME view %F|" \
    -e "s|^TryExec=.*|TryExec=$TARGET/$NAME|" \
    "$TARGET/valvereader.desktop" > "$APPS/valvereader.desktop"
chmod 644 "$APPS/valvereader.desktop"
ln -sfn "$TARGET/$NAME" "$BIN/valvereader"
refresh
echo "installed $TARGET"
echo "menu entry: $APPS/valvereader.desktop"
echo "command:    $BIN/valvereader"
