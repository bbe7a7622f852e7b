"""A Rust panic while reading the index is damage like any other: one line that says
what to do, and the next index run rebuilds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sample_project import make_project

from app.core import damage
from app.core.indexer import index_project
from app.core.search import Searcher
from app.core.store import IndexDamaged, ProjectStore, project_status

QUERY = "where do we retry failed uploads?"


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic on the calling thread (pyo3_runtime's class of
    that name derives from BaseException too)."""


@pytest.fixture
def project(tmp_path: Path, embedder) -> Path:
    root = make_project(tmp_path / "demo").resolve()
    index_project(root, embedder)
    return root


def top_path(root: Path, embedder, mode: str = "hybrid") -> str:
    searcher = Searcher(ProjectStore.open(root), embedder if mode != "lexical" else None)
    return searcher.search(QUERY, mode=mode)[0].path


def test_a_rust_panic_while_opening_is_damage_that_index_rebuilds(project, embedder,
                                                                    monkeypatch):  # fmt: skip
    broken = ProjectStore.open(project).meta["created"]
    table_names = ProjectStore.table_names

    def panicking(store: ProjectStore) -> set[str]:
        if store.meta.get("created") == broken:  # the old index, not its rebuild
            raise PanicException("range end index 407947195 out of range for slice")
        return table_names(store)

    monkeypatch.setattr(ProjectStore, "table_names", panicking)
    with pytest.raises(IndexDamaged, match="garbled file.*codelamp index"):
        project_status(project)
    result = index_project(project, embedder)
    assert result.rebuilt and "damaged" in result.rebuilt
    assert top_path(project, embedder) == "src/upload.py"


def test_native_output_is_passed_on_unless_the_read_failed(capfd):
    with damage.native_stderr_held():
        os.write(2, b"[WARN lance] a warning worth seeing\n")
    with pytest.raises(RuntimeError), damage.native_stderr_held():
        os.write(2, b"thread 'lancedb-tokio-worker' panicked at dataset.rs:804:43:\n")
        raise RuntimeError("rust future panicked: unknown error")
    assert capfd.readouterr().err == "[WARN lance] a warning worth seeing\n"
