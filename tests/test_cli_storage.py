"""Choosing the storage from the command line (`codelamp index --storage`, CODELAMP_STORAGE)
and falling back to lite where LanceDB cannot be used, as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from backends import lance_folder, lite_file
from sample_project import make_project

pytestmark = pytest.mark.slow

QUERY = "where do we retry failed uploads?"


def codelamp(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def status(root: Path, **env: str) -> dict:
    proc = codelamp("status", str(root), "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def top_path(root: Path, **env: str) -> str:
    proc = codelamp("search", str(root), QUERY, "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["results"][0]["path"]


@pytest.fixture
def project(tmp_path, default_model) -> Path:
    return make_project(tmp_path / "demo").resolve()


def test_an_index_keeps_its_storage_until_another_is_asked_for(project):
    first = codelamp("index", str(project), "--storage", "lite")
    assert first.returncode == 0 and not first.stderr, first.stderr
    assert status(project)["storage"] == "lite" and lite_file(project).is_file()
    assert top_path(project) == "src/upload.py"

    # Whatever CODELAMP_STORAGE says, an index stays where it is ...
    again = codelamp("index", str(project), "--json", CODELAMP_STORAGE="lancedb")
    assert again.returncode == 0 and not again.stderr, again.stderr
    assert json.loads(again.stdout)["files_indexed"] == 0
    assert status(project)["storage"] == "lite"

    # ... until --storage moves it, embedding nothing anew.
    moved = codelamp("index", str(project), "--storage", "lancedb", "--json")
    assert moved.returncode == 0, moved.stderr
    assert "moves to the lancedb storage" in moved.stderr and moved.stderr.count("\n") == 1
    assert json.loads(moved.stdout)["chunks_embedded"] == 0, "the cache kept the vectors"
    assert status(project)["storage"] == "lancedb" and not lite_file(project).exists()
    assert top_path(project) == "src/upload.py"


def test_an_unknown_storage_is_a_usage_error(project):
    proc = codelamp("index", str(project), "--storage", "sqlite")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = codelamp("index", str(project), CODELAMP_STORAGE="parquet")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "Unknown storage 'parquet' (CODELAMP_STORAGE)" in proc.stderr
    assert not lance_folder(project).exists() and not lite_file(project).exists()


def test_without_lancedb_a_new_index_is_lite_and_an_old_one_says_so(project):
    no_lancedb = {"CODELAMP_FAULT": "lancedb.import:1:erofs"}  # its import fails
    built = codelamp("index", str(project), "--storage", "lancedb", **no_lancedb)
    assert built.returncode == 0, built.stderr
    assert "LanceDB cannot be used here" in built.stderr and "lite storage" in built.stderr
    assert status(project)["storage"] == "lite"
    assert top_path(project) == "src/upload.py"

    other = make_project(project.parent / "other").resolve()
    assert codelamp("index", str(other), "--storage", "lancedb").returncode == 0
    proc = codelamp("search", str(other), QUERY, **no_lancedb)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "built with LanceDB, which cannot be used here" in proc.stderr
    assert proc.stderr.count("\n") == 1
