"""Run set-up code under a CODELAMP_HOME of its own (for fixtures wider than one test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def codelamp_home_at(home: Path) -> Iterator[Path]:
    old = os.environ.get("CODELAMP_HOME")
    os.environ["CODELAMP_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            del os.environ["CODELAMP_HOME"]
        else:
            os.environ["CODELAMP_HOME"] = old
