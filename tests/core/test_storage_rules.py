"""The storage interface's rules (app/core/storage), on both backends, with synthetic
chunks (no model) where it can: what readers see of a writer's batches, commits,
unfinished builds, full-text ranking and its ties, crash safety, and the fallback to the
lite storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from sample_project import make_project

from app.core.errors import UsageError
from app.core.storage import (
    BACKENDS,
    FileRecord,
    Filter,
    ModelRecord,
    NotFinished,
    NotIndexed,
    ProjectStore,
    chunks_schema,
    open_for_writing,
    preferred,
)

DIMS = 8
MODEL = ModelRecord("test-model", "test", DIMS, "", [1.0] + [0.0] * (DIMS - 1))
TEXTS = {
    "src/config.py": [
        "def parse_config(path):\n    return json.load(open(path))",
        "def write_config(path, config):\n    json.dump(config, open(path, 'w'))",
    ],
    "src/upload.py": [
        "def retry_failed_upload(client, blob):\n    for attempt in range(5): client.send(blob)",
        "class UploadClient:\n    def send(self, blob): return requests.put(blob)",
    ],
    "docs/guide.md": ["# Parsing the configuration file\nThe config file is JSON; parse it."],
}


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    monkeypatch.setenv("CODELAMP_STORAGE", request.param)
    return request.param


def _chunks(files: dict[str, list[str]], seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows = []
    for path, texts in files.items():
        for i, text in enumerate(texts):
            vector = rng.normal(size=DIMS).astype(np.float32)
            rows.append(
                {
                    "vector": (vector / np.linalg.norm(vector)).tolist(),
                    "path": path,
                    "start_line": 10 * i + 1,
                    "end_line": 10 * i + 2,
                    "def_start": 10 * i + 1,
                    "def_end": 10 * i + 2,
                    "language": "markdown" if path.endswith(".md") else "python",
                    "symbol": text.split("(")[0].split()[-1],
                    "text": text,
                    "fts": f"{path} {text}",
                    "content_hash": f"{path}:{i}",
                }
            )
    return pa.Table.from_pylist(rows, schema=chunks_schema(DIMS))


def _records(files: dict[str, list[str]]) -> list[FileRecord]:
    return [FileRecord(p, 100, 1, "sha", "indexed", "", len(t), 0.0) for p, t in files.items()]


def _build(root, files=TEXTS, storage=None) -> ProjectStore:
    store, _ = open_for_writing(root, storage=storage)
    gen = store.prepare(MODEL.model_id, DIMS, probe=lambda: MODEL.probe)
    store.write(gen, _records(files), _chunks(files), [], [])
    store.finish(gen, MODEL)
    return store


def _paths(store: ProjectStore) -> list[str]:
    return sorted(store.chunks().scan(["path"]).column("path").to_pylist())


def test_a_new_index_takes_the_preferred_storage_and_keeps_it(backend, tmp_path):
    store = _build(tmp_path)
    assert store.backend == backend == preferred()
    assert ProjectStore.open(tmp_path).backend == backend
    other = next(b for b in BACKENDS if b != backend)
    os.environ["CODELAMP_STORAGE"] = other
    assert ProjectStore.open(tmp_path).backend == backend, "an index keeps its storage"
    moved, notice = open_for_writing(tmp_path, storage=other)
    assert moved.backend == other and f"moves to the {other} storage" in notice


def test_readers_see_a_writers_batches_only_once_committed(backend, tmp_path):
    writer = _build(tmp_path)
    reader = ProjectStore.open(tmp_path)
    gen = writer.prepare(MODEL.model_id, DIMS)
    changed = {"src/new.py": ["def brand_new():\n    pass"]}
    writer.write(gen, _records(changed), _chunks(changed, seed=1), [], ["docs/guide.md"])
    assert writer.uncommitted()
    assert "src/new.py" not in _paths(reader) and "docs/guide.md" in _paths(reader)
    assert "src/new.py" not in ProjectStore.open(tmp_path).indexed_paths()
    assert ProjectStore.open(tmp_path).chunks().count() == 5
    writer.finish(gen, MODEL)
    assert not writer.uncommitted()
    now = ProjectStore.open(tmp_path)
    assert reader.newer_commit()
    assert "src/new.py" in _paths(now) and "docs/guide.md" not in _paths(now)
    assert sorted(now.indexed_paths()) == ["src/config.py", "src/new.py", "src/upload.py"]


def test_a_replaced_file_has_only_its_new_chunks(backend, tmp_path):
    writer = _build(tmp_path)
    gen = writer.meta["generation"]
    for round in range(3):
        again = {"src/config.py": [f"def parse_config_v{round}(path):\n    pass"]}
        writer.write(gen, _records(again), _chunks(again, seed=round), ["src/config.py"], [])
        writer.finish(gen, MODEL)
    store = ProjectStore.open(tmp_path)
    rows = store.chunks().scan(["text"], paths=["src/config.py"]).column("text").to_pylist()
    assert rows == ["def parse_config_v2(path):\n    pass"]
    assert store.file_records(gen)["src/config.py"].chunks == 1
    assert store.chunks().count() == 4


def test_an_unfinished_first_build_is_its_own_state(backend, tmp_path):
    store, _ = open_for_writing(tmp_path)
    gen = store.prepare(MODEL.model_id, DIMS, probe=lambda: MODEL.probe)
    part = {"src/config.py": TEXTS["src/config.py"]}
    store.write(gen, _records(part), _chunks(part), [], [])
    with pytest.raises(NotFinished, match="1 file done so far"):
        ProjectStore.open(tmp_path)
    resumed = ProjectStore.open(tmp_path, unfinished=True, latest=True)
    assert resumed.meta["building"] == gen and resumed.files_done(gen) == 1
    assert resumed.probe_for(MODEL.model_id) == MODEL.probe


def test_full_text_ranks_the_same_on_both_backends(tmp_path):
    """The lite storage computes LanceDB's BM25: the same chunks in the same order, with
    the same scores (to float32's precision), filters included."""
    answers = {}
    for storage in BACKENDS:
        store = _build(tmp_path / storage, storage=storage)
        chunks = store.chunks()
        answers[storage] = [
            [
                (row["path"], row["def_start"], round(row["_score"], 3))
                for row in chunks.full_text(terms, 10, flt).to_pylist()
            ]
            for terms in ("parse config", "config config file", "retry upload blob", "the of")
            for flt in (Filter(), Filter(languages=["python"]), Filter(paths=["docs/guide.md"]))
        ]
    assert answers["lite"] == answers["lancedb"]
    parse_config = answers["lite"][:3]
    assert {path for path, _, _ in parse_config[0]} == {"src/config.py", "docs/guide.md"}
    assert {path for path, _, _ in parse_config[1]} == {"src/config.py"}  # python only
    assert {path for path, _, _ in parse_config[2]} == {"docs/guide.md"}
    assert answers["lite"][-3:] == [[], [], []], "stop words find nothing"


def test_an_unknown_storage_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("CODELAMP_STORAGE", "postgres")
    with pytest.raises(UsageError, match="Unknown storage 'postgres'.*lancedb or lite"):
        preferred()
    with pytest.raises(UsageError, match="s3:// store needs LanceDB"):
        from app.core.location import Location

        open_for_writing(tmp_path, location=Location.parse("s3://bucket/x"), storage="lite")


def test_no_index_is_not_indexed(backend, tmp_path):
    with pytest.raises(NotIndexed, match="not indexed yet"):
        ProjectStore.open(tmp_path)


# --- real processes ----------------------------------------------------------------------


def _codelamp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("lancedb.import:1:enotsup", "LanceDB cannot be used here"),
        ("lance.create:1:enotsup", "LanceDB cannot commit in"),
    ],
)
def test_lancedb_that_cannot_work_falls_back_to_lite(fault, why, tmp_path, default_model):
    root = make_project(tmp_path / "project")
    env = {"CODELAMP_STORAGE": "lancedb", "CODELAMP_FAULT": fault}
    run = _codelamp("index", str(root), "--model", str(default_model), env=env)
    assert run.returncode == 0, run.stderr
    assert why in run.stderr and "the lite storage keeps it" in run.stderr
    status = _codelamp("status", str(root), "--json", env={"CODELAMP_STORAGE": "lancedb"})
    assert json.loads(status.stdout)["storage"] == "lite"
    found = _codelamp(
        "search",
        str(root),
        "retry failed upload",
        "--model",
        str(default_model),
        "--json",
        env={"CODELAMP_STORAGE": "lancedb"},
    )
    assert json.loads(found.stdout)["results"][0]["symbol"] == "retry_failed_upload"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("storage", BACKENDS)
def test_a_killed_index_recovers_on_both_backends(storage, tmp_path, default_model, monkeypatch):
    import torture

    monkeypatch.setenv("CODELAMP_STORAGE", storage)
    report = torture.kills("incremental", 2, tmp_path, default_model, seed=11)
    assert len(report.killed) == 2 and report.completed == 0


def test_keyword_ties_rank_by_place_on_both_backends(tmp_path):
    """Forty one-line methods score the same; whichever order a storage keeps them in,
    the results are the same: ties by path and line, even across the cut of the pool."""
    from app.core.search import Searcher

    same = {f"pkg/m{i:02}.py": ["def get(self):\n    return self.value"] for i in range(40)}
    same["pkg/other.py"] = ["def get_value(self, value):\n    return value or self.value"]
    found = {}
    for storage in BACKENDS:
        files = dict(reversed(same.items())) if storage == "lite" else same  # other order
        searcher = Searcher(_build(tmp_path / storage, files, storage=storage))
        found[storage] = [
            (r.path, r.start_line) for r in searcher.search("get value", 5, "lexical")
        ]
    assert found["lite"] == found["lancedb"]
    assert [p for p, _ in found["lite"]] == [
        "pkg/other.py",
        "pkg/m00.py",
        "pkg/m01.py",
        "pkg/m02.py",
        "pkg/m03.py",
    ]
