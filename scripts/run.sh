#!/usr/bin/env bash
# Set up (first time only) and start CodeLamp. Arguments go to the CLI:
#   ./scripts/run.sh                              the app
#   ./scripts/run.sh models embed "hello" --json  any codelamp command
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" ""
"$VENV/bin/codelamp" models install-default >&2
exec "$VENV/bin/codelamp" "$@"
