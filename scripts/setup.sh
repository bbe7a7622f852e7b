# Shared set-up for run.sh and test.sh. Source it; do not run it directly.
# Creates .venv, installs the project when pyproject.toml changed (stamp file), and leaves
# REPO and VENV_PY set. Idempotent: a second run does no network work and takes ~1 s.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
VENV_PY="$VENV/bin/python"
EXTRAS="${1:-}"   # "" for the app, "dev,cluster" for the tests

say() { printf '\033[1m[codelamp]\033[0m %s\n' "$*" >&2; }

if [ ! -x "$VENV_PY" ]; then
  PY="${PYTHON:-python3}"
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "CodeLamp needs Python 3.11 or newer; '$PY' is $("$PY" --version 2>&1 || echo missing)."
    say "Install Python 3.11+ or point PYTHON at it, e.g. PYTHON=python3.12 $0"
    exit 1
  fi
  say "Creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV_PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi

spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
stamp="$VENV/.codelamp-installed"
want="$(cat "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1) $spec"
have="$(cat "$stamp" 2>/dev/null || true)"
# An install with extras (the tests') also satisfies a plain one (the app's).
if [ "$have" != "$want" ] && ! { [ "$spec" = "." ] && [ "${have% *}" = "${want% *}" ]; }; then
  say "Installing CodeLamp and its dependencies (the first time builds llama.cpp: ~5 min)"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
  (cd "$REPO" && "$VENV_PY" -m pip install --quiet --disable-pip-version-check -e "$spec")
  echo "$want" > "$stamp"
fi
