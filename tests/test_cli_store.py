"""`--store`: index into S3 (moto's server, a real process), search and status from a
machine without the source tree, and one-line errors for a bad store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sample_project import INDEXED, make_project

pytestmark = pytest.mark.slow


def codelamp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def project(tmp_path, default_model) -> Path:
    return make_project(tmp_path / "demo")


def one_line_error(proc: subprocess.CompletedProcess, words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("codelamp: ") and words in lines[0], lines


def test_index_on_s3_then_search_and_status_without_the_tree(s3_env, project, tmp_path):
    store = f"s3://{s3_env.bucket()}/ci/demo"
    proc = codelamp("index", str(project), "--store", store, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["store"] == store
    shutil.rmtree(project)

    proc = codelamp("search", "--store", store, "where do we retry failed uploads?", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["path"] == "src/upload.py"
    status = json.loads(codelamp("status", "--store", store, "--json").stdout)
    assert status["files"] == len(INDEXED) and status["store"] == store
    assert status["root"] == str(project.resolve())
    text = codelamp("status", "--store", store).stdout
    assert f"shared index at {store}" in text
    checkout = make_project(tmp_path / "checkout")  # a reader's own checkout, elsewhere
    proc = codelamp("search", "--store", store, str(checkout), "bcrypt", "--mode", "lexical")
    assert proc.returncode == 0 and "src/auth.go" in proc.stdout, proc.stderr


def test_a_local_folder_store(project, tmp_path):
    store = tmp_path / "shared index"
    assert codelamp("index", str(project), "--store", str(store)).returncode == 0
    assert not (tmp_path / "codelamp-home" / "data" / "projects").exists()
    proc = codelamp("search", "--store", str(store), "bcrypt", "--mode", "lexical", "-k", "1")
    assert proc.returncode == 0 and "src/auth.go" in proc.stdout, proc.stderr
    shutil.rmtree(project)
    proc = codelamp("related", "--store", str(store), "src/auth.go", "12", "-k", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Related to CheckPasswordHash (src/auth.go:11-14):\n 1. ")


def test_bad_stores_are_one_line(s3_env, project, monkeypatch, tmp_path):
    one_line_error(
        codelamp("index", str(project), "--store", "s3://no-such-bucket/x"),
        "bucket no-such-bucket does not exist",
    )
    one_line_error(codelamp("search", "--store", "s3://no-such-bucket/x", "q"), "does not exist")
    store = f"s3://{s3_env.bucket()}/x"
    one_line_error(codelamp("status", "--store", store), "no index at")
    with monkeypatch.context() as m:
        m.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        one_line_error(codelamp("index", str(project), "--store", store), "refused the credentials")
    with monkeypatch.context() as m:
        from s3_server import free_port

        m.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
        one_line_error(codelamp("search", "--store", store, "q"), "cannot be reached")
    proc = codelamp("search", "--store", "ftp://host/x", "q")
    assert proc.returncode == 2 and "s3://bucket/prefix" in proc.stderr
    proc = codelamp("search", "just a query")
    assert proc.returncode == 2 and "needs a PATH (or --store URI)" in proc.stderr
    proc = codelamp("watch", str(project), str(tmp_path), "--store", store)
    assert proc.returncode == 2 and "one PATH" in proc.stderr
