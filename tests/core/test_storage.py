"""The two storages behind one interface (app/core/storage): each is asked for by name,
whatever CODELAMP_STORAGE says, and both answer the same questions the same way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from homes import codelamp_home_at
from sample_project import INDEXED, make_project

from app.core.indexer import index_project
from app.core.project import project_status
from app.core.search import Searcher
from app.core.storage import BACKENDS, Filter, ProjectStore
from app.core.storage.base import RESULT_COLUMNS

pytestmark = pytest.mark.slow

# Words of the sample project, and words of none of its chunks.
QUERIES = [
    "retry failed upload",
    "cache",
    "password hash bcrypt",
    "config file",
    "response timeout",
    "evict the oldest entries",
    "parseConfig settings",
]
NOWHERE = "zyzzyva quokka"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder) -> dict[str, Path]:
    """The sample project indexed by each storage (two copies: an index has one)."""
    home = tmp_path_factory.mktemp("storage-home")
    roots = {}
    with codelamp_home_at(home):
        for backend in BACKENDS:
            root = make_project(tmp_path_factory.mktemp(backend) / "demo").resolve()
            index_project(root, embedder, storage=backend)
            roots[backend] = root
    return {"home": home, **roots}


@pytest.fixture
def store_of(indexed, monkeypatch):
    monkeypatch.setenv("CODELAMP_HOME", str(indexed["home"]))

    def open_store(backend: str) -> ProjectStore:
        store = ProjectStore.open(indexed[backend])
        assert store.backend == backend
        return store

    return open_store


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_word_in_no_chunk_finds_nothing_and_is_no_damage(store_of, backend):
    """Lite: full_text took no rows with an untyped empty list, which pyarrow refuses;
    the searcher took that for damage and noted it."""
    store = store_of(backend)
    found = store.chunks().full_text(NOWHERE, 10, Filter())
    assert found.num_rows == 0
    assert Searcher(store, None).search(NOWHERE, mode="lexical") == []
    assert project_status(store.root)["state"] == "ready", "no damage noted"


def test_both_storages_hold_the_same_chunks_and_files(store_of):
    columns = ["path", "start_line", "end_line", "def_start", "def_end", "symbol", "text"]
    lance, lite = store_of("lancedb"), store_of("lite")

    def rows(store: ProjectStore) -> list[tuple]:
        table = store.chunks().scan(columns)
        assert "_rowid" in table.column_names
        return sorted(tuple(r[c] for c in columns) for r in table.to_pylist())

    assert rows(lance) == rows(lite)
    assert lance.chunks().count() == lite.chunks().count()
    assert sorted(lance.indexed_paths()) == sorted(lite.indexed_paths()) == sorted(INDEXED)

    def files(store: ProjectStore) -> dict[str, tuple]:
        records = store.file_records(store.meta["generation"])
        return {p: (r.sha256, r.status, r.reason, r.chunks) for p, r in records.items()}

    assert files(lance) == files(lite)


def test_both_storages_rank_words_alike(store_of):
    """The lite storage computes LanceDB's BM25 (app/core/storage/fulltext.py)."""
    lance, lite = store_of("lancedb"), store_of("lite")
    for query in QUERIES:
        ranked = {}
        for store in (lance, lite):
            table = store.chunks().full_text(query, 10, Filter())
            assert set(RESULT_COLUMNS) <= set(table.column_names)
            ranked[store.backend] = [
                (r["path"], r["def_start"], round(r["_score"], 4)) for r in table.to_pylist()
            ]
        assert ranked["lancedb"], query
        assert ranked["lite"] == ranked["lancedb"], query


@pytest.mark.parametrize("backend", BACKENDS)
def test_take_and_scan_agree(store_of, backend):
    chunks = store_of(backend).chunks()
    scanned = chunks.scan(["path", "start_line"])
    ids = scanned.column("_rowid").to_pylist()
    assert len(ids) == len(set(ids)) == chunks.count()
    some = ids[::3]
    taken = chunks.take(some, ["path", "start_line"]).to_pylist()
    by_id = {r["_rowid"]: (r["path"], r["start_line"]) for r in scanned.to_pylist()}
    assert sorted((r["_rowid"], r["path"], r["start_line"]) for r in taken) == sorted(
        (i, *by_id[i]) for i in some
    )
    assert chunks.take([], ["path"]).num_rows == 0
    paths = chunks.scan(["path"], paths=["src/upload.py"]).column("path").to_pylist()
    assert paths and set(paths) == {"src/upload.py"}


def test_asking_for_the_other_storage_moves_the_index(indexed, embedder, monkeypatch, tmp_path):
    monkeypatch.setenv("CODELAMP_HOME", str(tmp_path / "home"))
    root = tmp_path / "demo"
    shutil.copytree(indexed["lite"], root)
    index_project(root, embedder, storage="lite")
    assert project_status(root)["storage"] == "lite"
    moved = index_project(root, embedder)  # none asked for: it stays where it is
    assert not moved.notice and project_status(root)["storage"] == "lite"
    moved = index_project(root, embedder, storage="lancedb")
    assert "moves to the lancedb storage" in (moved.notice or "")
    assert moved.chunks_embedded == 0, "the vectors come from the cache"
    assert project_status(root)["storage"] == "lancedb"
    assert Searcher(ProjectStore.open(root), embedder).search("retry failed upload")
