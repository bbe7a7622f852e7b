"""Damage that only shows when it is read (garbage vectors, a Rust panic) is reported as
IndexDamaged, remembered for the next open, and rebuilt by the next index run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sample_project import make_project

from app.core import damage
from app.core.indexer import index_project
from app.core.project import project_dir, project_status
from app.core.search import Searcher
from app.core.storage import IndexDamaged, ProjectStore
from app.core.storage.lance import LanceStore
from app.core.storage.lite import LiteStore

QUERY = "where do we retry failed uploads?"


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic on the calling thread (pyo3_runtime's class of
    that name derives from BaseException too)."""


@pytest.fixture
def project(tmp_path: Path, embedder) -> Path:
    root = make_project(tmp_path / "demo").resolve()
    index_project(root, embedder)
    return root


def overwrite_vectors(root: Path, path: str, value: float) -> None:
    """Give every chunk of ``path`` a vector of ``value``s, as bytes changed on disk would:
    in the committed version, which readers read."""
    store = ProjectStore.open(root, latest=True)
    if isinstance(store, LiteStore):  # rows are changed in place, seen by every commit
        table = f"chunks_{store.meta['generation']}"
        ((vector,),) = store.query(f"SELECT vector FROM {table} WHERE path = ? LIMIT 1", (path,))
        garbage = np.full(len(vector) // 4, value, np.float32).tobytes()
        with store._transaction():
            store.conn.execute(f"UPDATE {table} SET vector = ? WHERE path = ?", (garbage, path))
        return
    assert isinstance(store, LanceStore)
    table = store._table("chunks", None)
    rows = table.search().where(f"path = '{path}'").limit(None).to_arrow()
    dims = rows.schema.field("vector").type.list_size
    garbage = pa.array(np.full(rows.num_rows * dims, value, np.float32))
    column = rows.schema.get_field_index("vector")
    table.delete(f"path = '{path}'")
    table.add(
        rows.set_column(
            column, rows.schema.field("vector"), pa.FixedSizeListArray.from_arrays(garbage, dims)
        )
    )
    store._write_meta(dict(store.meta, chunks_version=str(table.version)))


def top_path(root: Path, embedder, mode: str = "hybrid") -> str:
    searcher = Searcher(ProjectStore.open(root), embedder if mode != "lexical" else None)
    return searcher.search(QUERY, mode=mode)[0].path


# Infinite, and huge but finite: a finiteness check alone would rank the latter first for
# every query.
@pytest.mark.parametrize("value", [np.inf, 1e30])
def test_garbage_vectors_fail_the_search_in_one_line_until_rebuilt(project, embedder, value):
    overwrite_vectors(project, "src/config.py", value)
    searcher = Searcher(ProjectStore.open(project), embedder)  # the quick check passes
    with pytest.raises(IndexDamaged, match=r"stored vectors are corrupt.*codelamp index"):
        searcher.search(QUERY)  # no RuntimeWarning either: warnings are errors here

    with pytest.raises(IndexDamaged, match="vectors are corrupt"):
        ProjectStore.open(project)  # noted: lexical search, status, ... all say so
    result = index_project(project, embedder)
    assert "vectors are corrupt" in (result.notice or "")
    assert result.chunks_embedded == 0, "the embedding cache kept the vectors"
    assert top_path(project, embedder) == top_path(project, None, "lexical") == "src/upload.py"


def test_status_checks_every_vector(project):
    overwrite_vectors(project, "src/config.py", 1e30)
    ProjectStore.open(project)  # a search's quick open does not read the vectors
    with pytest.raises(IndexDamaged, match="vectors are corrupt"):
        project_status(project)


def test_a_note_about_an_index_rebuilt_since_is_ignored(project):
    """A reader of the old index may note its damage after a rebuild replaced it."""
    created = ProjectStore.open(project).meta["created"]
    damage.note(project_dir(project), created + "0", "found by a reader of an older index")
    assert project_status(project)["state"] == "ready"
    damage.note(project_dir(project), created, "found by a search")
    with pytest.raises(IndexDamaged, match="found by a search"):
        project_status(project)


def test_a_rust_panic_while_opening_is_damage_that_index_rebuilds(project, embedder, monkeypatch):
    store = ProjectStore.open(project)
    broken = store.meta["created"]
    # What the check on opening reads first: LanceDB's list of tables, SQLite's.
    backend, method = (
        (LiteStore, "_tables") if isinstance(store, LiteStore) else (LanceStore, "table_names")
    )
    table_names = getattr(backend, method)

    def panicking(store: ProjectStore) -> set[str]:
        if store.meta.get("created") == broken:  # the old index, not its rebuild
            raise PanicException("range end index 407947195 out of range for slice")
        return table_names(store)

    monkeypatch.setattr(backend, method, panicking)
    with pytest.raises(IndexDamaged, match="garbled file.*codelamp index"):
        project_status(project)
    result = index_project(project, embedder)
    assert result.notice and "damaged" in result.notice
    assert top_path(project, embedder) == "src/upload.py"


def test_native_output_is_passed_on_unless_the_read_failed(capfd):
    with damage.native_stderr_held():
        os.write(2, b"[WARN lance] a warning worth seeing\n")
    with pytest.raises(RuntimeError), damage.native_stderr_held():
        os.write(2, b"thread 'lancedb-tokio-worker' panicked at dataset.rs:804:43:\n")
        raise RuntimeError("rust future panicked: unknown error")
    assert capfd.readouterr().err == "[WARN lance] a warning worth seeing\n"


def test_unit_length_is_what_the_embedder_wrote():
    good = np.eye(3, dtype=np.float32)
    assert damage.corrupt_vectors(good) == 0
    bad = good.copy()
    bad[0, 0], bad[1, 1], bad[2, 2] = np.nan, np.inf, 1.5
    assert damage.corrupt_vectors(bad) == 3
