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
# The installer records what it made (files and the folders it had to create) in
# TARGET/INSTALLED-FILES; --uninstall removes exactly those, folders only when empty. With
# --user it also removes this user's caches of the program: ~/.cache/valvereader (derived model
# data, rebuilt at the next start) and ONNX Runtime's usage-event folder
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime, which versions before 0.1.0's offline fix could
# leave (the program sets ORT_DISABLE_TELEMETRY=1; docs/packaging.md, "Network").
# Settings, logs and review files in ~/.config/valvereader are kept: they are the user's records.
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
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
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

# Folders that do not exist yet, outermost first (so the uninstaller can remove them again).
missing_dirs() {
    local dir
    for dir in "$@"; do
        local chain=()
        while [[ -n $dir && $dir != / && ! -e $dir ]]; do chain=("$dir" ${chain[@]+"${chain[@]}"}); dir="$(dirname "$dir")"; done
        printf '%s\n' ${chain[@]+"${chain[@]}"}
    done | awk '!seen[$0]++'
}

remove_empty_dirs() {  # deepest first; a folder that holds anything but the menu/icon caches stays
    local dir
    sort -r | while read -r dir; do
        [[ -n $dir && -d $dir ]] || continue
        if [[ -z "$(find "$dir" -mindepth 1 -maxdepth 1 ! -name mimeinfo.cache ! -name icon-theme.cache -print -quit)" ]]; then
            rm -f "$dir/mimeinfo.cache" "$dir/icon-theme.cache"
            rmdir "$dir"
        fi
    done
}

if [[ $UNINSTALL == 1 ]]; then
    RECORD="$TARGET/INSTALLED-FILES"
    made_dirs=""
    made_caches=()
    if [[ -f $RECORD ]]; then
        while IFS=$'\t' read -r kind path; do
            case "$kind" in
                file) [[ $path == "$TARGET"/* ]] || rm -f -- "$path" ;;
                dir) made_dirs+="$path"$'\n' ;;
                cache) made_caches+=("$path") ;;
            esac
        done < "$RECORD"
    else  # installed by an older install.sh: the files it is known to make
        rm -f "$APPS/valvereader.desktop" "$ICONS/256x256/apps/valvereader.png" \
              "$ICONS/scalable/apps/valvereader.svg"
        [[ -L "$BIN/valvereader" ]] && rm -f "$BIN/valvereader"
    fi
    if [[ -x "$TARGET/$NAME" ]]; then rm -rf "$TARGET"; fi
    refresh
    # the menu and icon caches the install made, where nothing else is left for them to index
    for cache in ${made_caches[@]+"${made_caches[@]}"}; do
        folder="$(dirname "$cache")"
        if [[ -z "$(find "$folder" -mindepth 1 ! -name mimeinfo.cache ! -name icon-theme.cache ! -name index.theme -type f -print -quit 2>/dev/null)" ]]; then
            rm -f "$cache"
        fi
    done
    printf '%s' "$made_dirs" | remove_empty_dirs
    if [[ $MODE == user ]]; then
        CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
        rm -rf "${VALVEREADER_CACHE_DIR:-$CACHE/valvereader}" "$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime"
        printf '%s\n' "$HOME/.cache/Microsoft" "$HOME/.cache/Microsoft/DeveloperTools" | remove_empty_dirs
    fi
    echo "removed $TARGET and its menu entry"
    if [[ $MODE == user ]]; then
        echo "kept: settings, logs and review files in ${VALVEREADER_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/valvereader}"
    fi
    exit 0
fi

[[ -x "$SRC/$NAME" ]] || { echo "install.sh: run it from the unpacked $NAME folder" >&2; exit 1; }

MADE_DIRS="$(missing_dirs "$(dirname "$TARGET")" "$APPS" "$ICONS/256x256/apps" "$ICONS/scalable/apps" "$BIN")"
PREV_CACHES=""
if [[ -f "$TARGET/INSTALLED-FILES" ]]; then  # a reinstall: keep what the first install made
    MADE_DIRS="$(printf '%s\n%s\n' "$(awk -F'\t' '$1 == "dir" {print $2}' "$TARGET/INSTALLED-FILES")" "$MADE_DIRS" | awk 'NF && !seen[$0]++')"
    PREV_CACHES="$(awk -F'\t' '$1 == "cache" {print $2}' "$TARGET/INSTALLED-FILES")"
fi

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
{
    printf 'file\t%s\n' "$APPS/valvereader.desktop" "$ICONS/256x256/apps/valvereader.png" \
        "$ICONS/scalable/apps/valvereader.svg" "$BIN/valvereader"
    while IFS= read -r dir; do [[ -n $dir ]] && printf 'dir\t%s\n' "$dir"; done <<< "$MADE_DIRS"
    for cache in "$APPS/mimeinfo.cache" "$ICONS/icon-theme.cache"; do
        # made by refresh below, or by the first install
        if [[ ! -e $cache ]] || grep -qxF -- "$cache" <<< "$PREV_CACHES"; then printf 'cache\t%s\n' "$cache"; fi
    done
} > "$TARGET/INSTALLED-FILES"
refresh
echo "installed $TARGET"
echo "menu entry: $APPS/valvereader.desktop"
echo "command:    $BIN/valvereader"
