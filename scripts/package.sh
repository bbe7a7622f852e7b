#!/usr/bin/env bash
# Build the offline installer: a PyInstaller one-folder bundle with the default model
# (resources/models) inside, wrapped as dist/codelamp-VERSION-linux-x86_64.tar.gz and dist/codelamp_VERSION_amd64.deb.
#
#   scripts/package.sh [--lite]
#
# --lite: the same bundle without LanceDB (and what only it needs), so smaller; its
# indexes use the lite storage (SQLite). Wrapped as dist/codelamp-lite-VERSION-... and
# dist/codelamp-lite_VERSION_amd64.deb, built in build/package-lite.
#
# The bundle is built in its own venv (.cache/package-venv) with llama.cpp compiled for a
# portable CPU baseline (x86-64 with AVX2/FMA/F16C: Intel Haswell, AMD Zen and newer)
# instead of this machine's CPU, which the dev venv uses and which may not exist on the
# laptop that installs the package. Run from anywhere; takes ~10 min the first time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '\033[1m[package]\033[0m %s\n' "$*" >&2; }
LITE=0
for arg in "$@"; do
  case "$arg" in
    --lite) LITE=1 ;;
    *) say "unknown argument: $arg (usage: scripts/package.sh [--lite])"; exit 2 ;;
  esac
done
NAME=codelamp BUILD="$REPO/build/package" WITHOUT=""
if [ "$LITE" = 1 ]; then
  NAME=codelamp-lite BUILD="$REPO/build/package-lite" WITHOUT=", without LanceDB"
fi
PKG_VENV="$REPO/.cache/package-venv"
PY="$PKG_VENV/bin/python"
DIST="$REPO/dist"
PYINSTALLER_VERSION=6.22.3
LLAMA_PIN="$(grep -o '"llama-cpp-python==[^"]*"' "$REPO/pyproject.toml" | tr -d '"')"
# The CPU baseline, as /proc/cpuinfo names it. The app checks it before loading llama.cpp
# (a CPU without them would die of an illegal instruction).
CPU_FEATURES="avx avx2 fma f16c"
LLAMA_CMAKE="-DGGML_NATIVE=OFF"
for feature in $CPU_FEATURES; do LLAMA_CMAKE+=" -DGGML_${feature^^}=ON"; done
# (libwayland-* are left to the system on purpose: they must match its compositor, and
# PyInstaller never bundles them. Without them Qt falls back from Wayland to XWayland.)
DESKTOP_DEBS=(libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
              libxcb-util1 libxkbcommon-x11-0)

if [ ! -x "$PY" ]; then
  say "Creating the packaging venv"
  "${PYTHON:-python3}" -m venv "$PKG_VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
# llama.cpp is compiled again only when its pin or the CPU baseline changes; any other
# change to pyproject.toml (a new dependency) only installs the dependencies again.
llama_stamp="$PKG_VENV/.codelamp-llama"
if [ "$(cat "$llama_stamp" 2>/dev/null || true)" != "$LLAMA_PIN $LLAMA_CMAKE" ]; then
  say "Building llama.cpp for a portable CPU baseline (~6 min)"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  # --no-cache-dir: pip's wheel cache does not know CMAKE_ARGS and would hand back the
  # dev venv's CPU-specific build.
  CMAKE_ARGS="$LLAMA_CMAKE" "$PY" -m pip install --quiet --disable-pip-version-check \
    --no-cache-dir --force-reinstall --no-deps "$LLAMA_PIN"
  echo "$LLAMA_PIN $LLAMA_CMAKE" > "$llama_stamp"
fi
stamp="$PKG_VENV/.codelamp-installed"
want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1) $LLAMA_CMAKE"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  say "Installing the dependencies"
  "$PY" -m pip install --quiet --disable-pip-version-check "$REPO" \
    "pyinstaller==$PYINSTALLER_VERSION"
  # Only the dependencies stay: the app itself is always frozen from this checkout.
  "$PY" -m pip uninstall --quiet --yes codelamp
  echo "$want" > "$stamp"
fi
export PYTHONPATH="$REPO"
VERSION="$("$PY" -c 'import app; print(app.__version__)')"

rm -rf "$BUILD"
mkdir -p "$DIST"
say "Checking the default model (it comes with the source, in resources/models)"
"$PY" -m app models install-default >&2

# Qt's xcb and Wayland plugins need a few small libraries that not every desktop has
# installed, and an offline laptop cannot fetch them: take Debian's, whatever this
# machine has, so PyInstaller finds and bundles them.
say "Fetching the window-system libraries Qt's plugins need (${#DESKTOP_DEBS[@]} packages)"
mkdir -p "$BUILD/debs" "$BUILD/syslibs"
if ! (cd "$BUILD/debs" && apt-get download -q "${DESKTOP_DEBS[@]}" >&2); then
  say "apt-get download failed: this build needs Debian's package lists (apt-get update)"
  exit 1
fi
for deb in "$BUILD"/debs/*.deb; do dpkg-deb -x "$deb" "$BUILD/syslibs"; done
SYSLIBS="$BUILD/syslibs/usr/lib/x86_64-linux-gnu"

say "Freezing with PyInstaller$WITHOUT"
echo "$CPU_FEATURES" > "$BUILD/cpu-features"
CODELAMP_CPU_FEATURES="$BUILD/cpu-features" CODELAMP_LITE="$LITE" \
  LD_LIBRARY_PATH="$SYSLIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PY" -m PyInstaller \
  --noconfirm --clean --distpath "$BUILD/dist" --workpath "$BUILD/work" \
  "$REPO/packaging/codelamp.spec" >&2
APPDIR="$BUILD/dist/codelamp"
say "Trimming the bundle"
"$PY" "$REPO/packaging/trim_bundle.py" "$APPDIR"

say "Wrapping as .tar.gz"
STAGE="$BUILD/$NAME-$VERSION"
mkdir -p "$STAGE"
cp -a "$APPDIR" "$STAGE/codelamp"
cp "$REPO/resources/codelamp.desktop" "$REPO/app/gui/codelamp.svg" "$STAGE/"
cp "$REPO/packaging/install.sh" "$STAGE/install.sh"
chmod +x "$STAGE/install.sh"
TARBALL="$DIST/$NAME-$VERSION-linux-x86_64.tar.gz"
tar -C "$BUILD" -czf "$TARBALL" "$NAME-$VERSION"

say "Wrapping as .deb"
DEBROOT="$BUILD/deb"
mkdir -p "$DEBROOT/DEBIAN" "$DEBROOT/opt" "$DEBROOT/usr/bin" \
  "$DEBROOT/usr/share/applications" "$DEBROOT/usr/share/icons/hicolor/scalable/apps"
cp -a "$APPDIR" "$DEBROOT/opt/codelamp"
ln -s /opt/codelamp/codelamp "$DEBROOT/usr/bin/codelamp"
cp "$REPO/resources/codelamp.desktop" "$DEBROOT/usr/share/applications/"
cp "$REPO/app/gui/codelamp.svg" "$DEBROOT/usr/share/icons/hicolor/scalable/apps/"
INSTALLED_KB="$(du -sk "$DEBROOT" | cut -f1)"
CONTROL=(-e "s/@PACKAGE@/$NAME/" -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$INSTALLED_KB/")
if [ "$LITE" = 1 ]; then
  # Both install the same files (/opt/codelamp): the lite package takes the other's place.
  CONTROL+=(-e '/^Depends:/a Conflicts: codelamp\nReplaces: codelamp\nProvides: codelamp'
            -e '$a\ This build keeps its indexes in SQLite (the lite storage) and has no LanceDB.')
fi
sed "${CONTROL[@]}" "$REPO/packaging/debian-control" > "$DEBROOT/DEBIAN/control"
DEB="$DIST/${NAME}_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group --build "$DEBROOT" "$DEB" >&2

say "Built:"
du -sh "$APPDIR" "$TARBALL" "$DEB" >&2
echo "$TARBALL"
echo "$DEB"
