"""Entry point of the packaged build: the same `codelamp` command as from source."""

import importlib.util
import os
import sys

from app.cli import main

if importlib.util.find_spec("lancedb") is None:
    # The lite installer (scripts/package.sh --lite) has no LanceDB: new indexes go to the
    # lite storage, rather than falling back to it with a notice every time.
    os.environ.setdefault("CODELAMP_STORAGE", "lite")

sys.exit(main())
