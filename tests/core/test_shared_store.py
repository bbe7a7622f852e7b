"""A shared index in a named store: a local folder, or S3 (moto's server, a real process).

Readers see commits only, never a writer's batches; a network drop mid-write is one clear
error and leaves the last commit searchable; old versions outlive a commit on S3."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from s3_server import Proxy
from sample_project import INDEXED, make_project

from app.core import indexer
from app.core.indexer import index_project
from app.core.location import Location, StoreUnavailable
from app.core.project import project_status
from app.core.search import Searcher
from app.core.storage import FileRecord, NotIndexed, ProjectStore, open_for_writing
from app.core.storage.lance import LanceStore

pytestmark = pytest.mark.slow

LEDGER = '''\
def reconcile_ledger_balances(entries):
    """Match every debit with its credit and report the difference."""
    return sum(e.amount for e in entries)
'''


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path) -> Location:
    if request.param == "folder":
        return Location.parse(str(tmp_path / "shared"))
    server = request.getfixturevalue("s3_env")
    return Location.parse(f"s3://{server.bucket()}/team/app")


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "demo").resolve()


def top(store: Location, embedder, query: str) -> str:
    return Searcher(ProjectStore.open(None, location=store), embedder).search(query)[0].path


def test_index_then_search_without_the_source_tree(store, project, embedder, tmp_path):
    index_project(project, embedder, location=store)
    moved = tmp_path / "gone"
    shutil.move(project, moved)  # a reader has no checkout
    reader = ProjectStore.open(None, location=store)
    assert reader.root == project, "the meta records the root it was built from"
    assert top(store, embedder, "where do we retry failed uploads?") == "src/upload.py"
    status = project_status(None, thorough=False, location=store)
    assert status["files"] == len(INDEXED) and status["store"] == store.uri
    assert status["index_bytes"] > 0
    assert not (Location.of_project(project).notes).exists(), "nothing in the app's folder"


def test_readers_see_commits_only(store, project, embedder):
    index_project(project, embedder, location=store)
    writer, _ = open_for_writing(project, location=store)
    gen = writer.meta["generation"]
    record = FileRecord("src/new.py", 1, 1, "x", "indexed", "", 0, 0.0)
    writer.write(gen, [record], None, [], ["src/upload.py"])  # a batch, not committed
    reader = ProjectStore.open(None, location=store)
    assert "src/upload.py" in reader.file_records(gen) and "src/new.py" not in reader.file_records(
        gen
    )
    assert top(store, embedder, "retry failed uploads") == "src/upload.py"
    assert "src/new.py" in writer.file_records(gen), "the writer reads its own batches"


def test_no_index_there_yet(store):
    with pytest.raises(NotIndexed, match=r"no index at .*--store"):
        ProjectStore.open(None, location=store)


def test_an_old_reader_keeps_searching_through_a_commit(store, project, embedder):
    index_project(project, embedder, location=store)
    searcher = Searcher(ProjectStore.open(None, location=store), embedder)
    (project / "src" / "ledger.py").write_text(LEDGER)
    (project / "src" / "upload.py").unlink()
    index_project(project, embedder, location=store)
    # S3 keeps the version it reads for a while; a local store prunes it at once, and a
    # searcher that finds it gone opens the newest commit instead.
    found = {r.path for r in searcher.search("retry failed uploads", k=20)}
    assert "src/upload.py" in found or not store.remote
    assert top(store, embedder, "reconcile ledger balances") == "src/ledger.py"


def test_a_reader_whose_version_was_pruned_reads_the_newest(s3_env, project, embedder, monkeypatch):
    from datetime import timedelta

    monkeypatch.setattr("app.core.location.SHARED_KEEP", timedelta(0))
    store = Location.parse(f"s3://{s3_env.bucket()}/p")
    index_project(project, embedder, location=store)
    reader = ProjectStore.open(None, location=store)
    (project / "src" / "ledger.py").write_text(LEDGER)
    time.sleep(1.5)  # older than the commit by more than PRUNE_MARGIN
    index_project(project, embedder, location=store)  # prunes what the reader pinned
    assert "src/ledger.py" in reader.file_records(reader.meta["generation"])


def test_a_searcher_sees_new_commits_of_a_shared_index(store, project, embedder, monkeypatch):
    index_project(project, embedder, location=store)
    searcher = Searcher(ProjectStore.open(None, location=store), embedder)
    (project / "src" / "ledger.py").write_text(LEDGER)
    index_project(project, embedder, location=store)
    assert searcher.search("reconcile ledger balances")[0].path != "src/ledger.py"
    monkeypatch.setattr("app.core.search.SHARED_RECHECK_S", 0.0)
    assert searcher.search("reconcile ledger balances")[0].path == "src/ledger.py"


def test_bucket_missing_and_wrong_keys_are_one_line(s3_env, monkeypatch, project, embedder):
    missing = Location.parse("s3://no-such-bucket/p")
    with pytest.raises(StoreUnavailable, match="bucket no-such-bucket does not exist"):
        ProjectStore.open(None, location=missing)
    with pytest.raises(StoreUnavailable, match="does not exist"):
        index_project(project, embedder, location=missing)
    store = Location.parse(f"s3://{s3_env.bucket()}/p")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StoreUnavailable, match="refused the credentials") as caught:
        index_project(project, embedder, location=store)
    assert "\n" not in str(caught.value)
    with pytest.raises(StoreUnavailable, match="refused the credentials"):
        ProjectStore.open(None, location=store)
    assert not s3_env.keys(store.uri.split("/")[2]), "nothing written"


def test_network_drop_mid_write_keeps_the_last_commit(
    s3_env, monkeypatch, project, embedder, tmp_path
):
    proxy = Proxy(int(s3_env.endpoint.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    store = Location.parse(f"s3://{s3_env.bucket()}/p")
    index_project(project, embedder, location=store)
    for i in range(12):
        (project / "src" / f"ledger_{i}.py").write_text(LEDGER.replace("ledger", f"ledger{i}"))
    monkeypatch.setattr(indexer, "BATCH_FILES", 1)  # every file is a batch
    write, batches = LanceStore.write, []  # an S3 store is LanceDB's

    def write_then_cut(self, *args) -> None:
        write(self, *args)
        batches.append(args)
        if len(batches) == 3:
            proxy.cut()

    monkeypatch.setattr(LanceStore, "write", write_then_cut)
    with pytest.raises(StoreUnavailable, match="cannot be reached") as caught:
        index_project(project, embedder, location=store)
    assert "\n" not in str(caught.value)
    proxy.restore()
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        proxy.cut()
        ProjectStore.open(None, location=store)
    proxy.restore()

    reader = ProjectStore.open(None, location=store, thorough=True)
    gen = reader.meta["generation"]
    assert set(reader.file_records(gen)) >= set(INDEXED)
    assert not any("ledger" in p for p in reader.file_records(gen)), "the last commit only"
    writer = ProjectStore.open(None, location=store, latest=True)
    assert any("ledger" in p for p in writer.file_records(gen)), "batches were written"
    assert top(store, embedder, "where do we retry failed uploads?") == "src/upload.py"

    result = index_project(project, embedder, location=store)  # picks up where it stopped
    assert not result.notice
    assert top(store, embedder, "reconcile ledger3 balances") == "src/ledger_3.py"
