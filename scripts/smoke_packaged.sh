#!/usr/bin/env bash
# Smoke test of the *frozen* app, as an offline laptop gets it: the .deb and the .tar.gz are
# installed into throwaway roots and run with a temporary HOME, no network (a private
# network namespace when the system allows one) and no Python on PATH:
#   codelamp --version; codelamp index of CodeLamp's own source; codelamp search --json
#   (the expected file first); codelamp mcp (its search, through the MCP SDK's client);
#   codelamp --selftest (the window, offscreen, and on X11 when
#   xvfb-run is installed); Qt's xcb plugin finds its libraries; the window's icon is
#   there; a damaged or missing bundled model (index and --selftest); a read-only home;
#   no library in the bundle needs glibc > 2.35; `codelamp status --json` names the
#   storage the build should use (lancedb; lite with --lite, whose bundle must hold no
#   LanceDB) and index says nothing about falling back from LanceDB.
# Usage: scripts/smoke_packaged.sh [--lite] [DEB] [TARBALL]   (default: the newest in dist/,
#   of the lite build with --lite: scripts/package.sh --lite)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=codelamp STORAGE=lancedb
if [ "${1:-}" = --lite ]; then
  NAME=codelamp-lite STORAGE=lite
  shift
fi
DEB="${1:-$(ls -t "$REPO"/dist/"$NAME"_*_amd64.deb | head -1)}"
TARBALL="${2:-$(ls -t "$REPO"/dist/"$NAME"-[0-9]*-linux-x86_64.tar.gz | head -1)}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
say() { printf '\033[1m[smoke]\033[0m %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

NET=()
if unshare -n true 2>/dev/null; then
  NET=(unshare -n)
else
  say "no network namespace here; running with the network up (nothing should use it)"
fi
run() {  # run HOME CMD...: a clean environment, like a fresh desktop session
  local home="$1"; shift
  env -i HOME="$home" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
    "${NET[@]}" "$@"
}

mkdir -p "$WORK/deb" "$WORK/tar" "$WORK/home" "$WORK/project"
dpkg-deb -x "$DEB" "$WORK/deb"
tar -xzf "$TARBALL" -C "$WORK/tar"
HOME="$WORK/home" sh "$WORK"/tar/codelamp-*/install.sh >&2
# The sample project is CodeLamp's own source: real code, ~30 files, ~650 chunks.
cp -a "$REPO/app/." "$WORK/project/"
find "$WORK/project" -name __pycache__ -prune -exec rm -rf {} +
expect_first() {  # expect_first BIN QUERY PATH: PATH is the top search result
  local out first
  out="$(run "$WORK/home" "$1" search "$WORK/project" "$2" --json)"
  first="$(printf '%s' "$out" | grep -o '"path": "[^"]*"' | head -1)"
  [ "$first" = "\"path\": \"$3\"" ] || fail "search '$2' returned $first, expected $3"
}

mcp_first() {  # mcp_first BIN QUERY PATH: the frozen `codelamp mcp`, driven by the MCP
  # SDK's client (from the test venv), answers a search with PATH first
  local first
  first="$("$REPO/.venv/bin/python" - "$WORK/home" "$@" "$WORK/project" <<'PY'
import sys, json, anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
home, binary, query, _, project = sys.argv[1:]
params = StdioServerParameters(command=binary, args=["mcp", project],
                               env={"HOME": home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
async def main():
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("search", {"query": query, "k": 3})
        print(json.loads(result.content[0].text)["results"][0]["path"])
anyio.run(main)
PY
)" || fail "codelamp mcp did not answer"
  [ "$first" = "$3" ] || fail "codelamp mcp: search '$2' returned $first, expected $3"
  say "codelamp mcp answers: $first"
}

say "the bundle runs on glibc 2.35 (Ubuntu 22.04) and newer"
floor="$(find "$WORK/deb/opt/codelamp" -type f \( -name '*.so*' -o -name codelamp \) \
  -exec objdump -T {} + 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -1 || true)"
[ -n "$floor" ] && [ "${floor#GLIBC_2.}" -le 35 ] || fail "the bundle needs ${floor:-no glibc?}"

say "Qt's X11 platform finds every library it needs in the bundle or the base system"
xcb="$WORK/deb/opt/codelamp/_internal/PySide6/Qt/plugins/platforms/libqxcb.so"
missing="$(LD_LIBRARY_PATH="$WORK/deb/opt/codelamp/_internal" ldd "$xcb" | grep 'not found' || true)"
[ -z "$missing" ] || fail "the xcb platform plugin cannot load: $missing"

say "the window's icon is in the bundle, where gui/app.py looks for it"
[ -f "$WORK/deb/opt/codelamp/_internal/app/gui/codelamp.svg" ] || fail "no icon in the bundle"
if [ "$STORAGE" = lite ]; then
  say "the lite bundle holds no LanceDB"
  left="$(find "$WORK/deb/opt/codelamp" \( -name 'lancedb*' -o -name 'lance_namespace*' \) \
    | head -3)"
  [ -z "$left" ] || fail "LanceDB is in the lite bundle: $left"
fi

for BIN in "$WORK/deb/opt/codelamp/codelamp" "$WORK/home/.local/bin/codelamp"; do
  say "checking $BIN"
  rm -rf "$WORK/home/.local/share/codelamp" "$WORK/home/.cache/codelamp"
  run "$WORK/home" "$BIN" --version || fail "--version"
  out="$(run "$WORK/home" "$BIN" index "$WORK/project" 2>&1)" || fail "index: $out"
  printf '%s\n' "$out" >&2
  case "$out" in *"LanceDB cannot"*) fail "index fell back from LanceDB: $out" ;; esac
  status="$(run "$WORK/home" "$BIN" status "$WORK/project" --json)" || fail "status"
  case "$status" in
    *"\"storage\": \"$STORAGE\""*) say "the index is in the $STORAGE storage" ;;
    *) fail "status --json does not say \"storage\": \"$STORAGE\": $status" ;;
  esac
  expect_first "$BIN" "take the exclusive writer lock for a project" core/lock.py
  expect_first "$BIN" "where do we debounce file system events" core/watcher.py
  report="$(run "$WORK/home" "$BIN" --selftest 2>/dev/null | tail -1)"
  case "$report" in *'"ok": true'*) say "selftest: $report" ;; *) fail "selftest: $report" ;; esac
  mcp_first "$BIN" "take the exclusive writer lock for a project" core/lock.py
done

if command -v xvfb-run >/dev/null; then
  say "the window on a real X server (Xvfb)"
  mkdir -p "$WORK/home-x11"
  report="$(run "$WORK/home-x11" env QT_QPA_PLATFORM=xcb xvfb-run -a \
    "$WORK/deb/opt/codelamp/codelamp" --selftest 2>/dev/null | tail -1)"
  case "$report" in *'"ok": true'*) say "selftest on X11: $report" ;; *) fail "X11: $report" ;; esac
else
  say "no xvfb-run here: the window was checked offscreen only"
fi

say "a damaged or missing bundled model gives a clear message, not a crash"
cp -a "$WORK/deb/opt/codelamp" "$WORK/broken"
model="$(ls "$WORK"/broken/_internal/resources/models/*.gguf | head -1)"
for damage in truncated missing; do
  if [ "$damage" = truncated ]; then
    head -c 1000000 "$model" > "$model.part" && mv "$model.part" "$model"
  else
    rm -f "$model"
  fi
  rm -rf "$WORK/home2" && mkdir "$WORK/home2"
  set +e
  msg="$(run "$WORK/home2" "$WORK/broken/codelamp" index "$WORK/project" 2>&1)"; code=$?
  report="$(run "$WORK/home2" "$WORK/broken/codelamp" --selftest 2>&1)"; selftest_code=$?
  set -e
  [ "$code" = 1 ] || fail "$damage model: exit $code: $msg"
  case "$msg" in
    *Download*|*Traceback*) fail "$damage model said: $msg" ;;
    *"comes with CodeLamp is "*Reinstall*) ;;
    *) fail "$damage model said: $msg" ;;
  esac
  [ "$selftest_code" = 1 ] || fail "$damage model, selftest: exit $selftest_code: $report"
  case "$report" in
    *Traceback*) fail "$damage model, selftest crashed: $report" ;;
    *'"ok": false'*Reinstall*) ;;
    *) fail "$damage model, selftest said: $report" ;;
  esac
done

say "a home it cannot write to is named, and CODELAMP_HOME is honoured"
touch "$WORK/file-not-folder"
set +e
msg="$(run "$WORK/file-not-folder" "$WORK/deb/opt/codelamp/codelamp" index "$WORK/project" 2>&1)"
code=$?
set -e
[ "$code" = 1 ] || fail "read-only home: exit $code: $msg"
case "$msg" in *"needs to write to"*CODELAMP_HOME*) ;; *) fail "read-only home said: $msg" ;; esac
run "$WORK/file-not-folder" env CODELAMP_HOME="$WORK/elsewhere" \
  "$WORK/deb/opt/codelamp/codelamp" index "$WORK/project" >&2 || fail "CODELAMP_HOME not honoured"

say "all checks passed"
