"""Run set-up code under a CODELAMP_HOME of its own (for fixtures wider than one test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# How index_at_home indexes, as a fixture's params: "ann" is LanceDB's own vector index.
KINDS = ["exact", pytest.param("ann", marks=pytest.mark.lancedb_only("LanceDB's ANN index"))]


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


def index_at_home(root: Path, home: Path, embedder, kind: str) -> Path:
    """Index ``root`` under CODELAMP_HOME ``home``, for searches that take the in-RAM
    matrix (``kind`` "exact") or LanceDB's vector search ("ann": as if over the budget)."""
    from app.core.indexer import index_project

    with codelamp_home_at(home), pytest.MonkeyPatch.context() as patch:
        if kind == "ann":
            patch.setattr("app.core.storage.lance.EXACT_SEARCH_BYTES", 0)
        index_project(root, embedder)
    return home
