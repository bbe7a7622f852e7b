#!/bin/sh
# Install CodeLamp from this folder: into ~/.local (default) or PREFIX, e.g.
#   ./install.sh                 -> ~/.local/lib/codelamp, ~/.local/bin/codelamp
#   sudo PREFIX=/opt ./install.sh -> /opt/codelamp, /usr/local/bin/codelamp
# No network, no Python needed. Uninstall: delete the folder, the link and the .desktop.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -n "${PREFIX:-}" ]; then
  LIB="$PREFIX/codelamp"; BIN="/usr/local/bin"; APPS="/usr/share/applications"
  ICONS="/usr/share/icons/hicolor/scalable/apps"
else
  LIB="$HOME/.local/lib/codelamp"; BIN="$HOME/.local/bin"
  APPS="$HOME/.local/share/applications"; ICONS="$HOME/.local/share/icons/hicolor/scalable/apps"
fi
mkdir -p "$(dirname "$LIB")" "$BIN" "$APPS" "$ICONS"
rm -rf "$LIB"
cp -a "$HERE/codelamp" "$LIB"
ln -sf "$LIB/codelamp" "$BIN/codelamp"
sed "s|^Exec=codelamp|Exec=$LIB/codelamp|" "$HERE/codelamp.desktop" > "$APPS/codelamp.desktop"
cp "$HERE/codelamp.svg" "$ICONS/codelamp.svg"
echo "CodeLamp installed in $LIB; run: $BIN/codelamp (or find it in your menu)."
case ":$PATH:" in *":$BIN:"*) ;; *) echo "Note: $BIN is not on your PATH." ;; esac
