"""Entry point of the packaged build: the same `codelamp` command as from source."""

import sys

from app.cli import main

sys.exit(main())
