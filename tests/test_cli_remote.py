"""`codelamp ... --embedder URL` against llama-cpp-python's real server, as users run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llama_server import free_port
from sample_project import make_project
from test_cli import codelamp

pytestmark = pytest.mark.slow

QUERIES = ["where do we retry failed uploads?", "parse the config file", "hash a password"]


def top(root: Path, query: str, *flags: str) -> list[tuple[str, int]]:
    proc = codelamp("search", str(root), query, "--json", "-k", "5", *flags)
    assert proc.returncode == 0, proc.stderr
    return [(r["path"], r["start_line"]) for r in json.loads(proc.stdout)["results"]]


def test_an_index_built_on_a_server_answers_like_a_local_one(
    tmp_path, embedding_server, default_model, monkeypatch
):
    local, served = make_project(tmp_path / "local"), make_project(tmp_path / "served")
    proc = codelamp("index", str(served), "--embedder", embedding_server, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["model"].startswith("codelamp-code-v1"), "the server's model, known here"
    assert summary["chunks_embedded"] > 0 and summary["chunks_cached"] == 0
    with monkeypatch.context() as m:  # the local index in a home of its own: no shared cache
        m.setenv("CODELAMP_HOME", str(tmp_path / "local-home"))
        assert codelamp("index", str(local)).returncode == 0
        wanted = {query: top(local, query) for query in QUERIES}
    for query, want in wanted.items():
        assert top(served, query) == want
        assert top(served, query, "--embedder", embedding_server) == want
    status = json.loads(codelamp("status", str(served), "--json").stdout)
    assert status["model"] == summary["model"]


def test_a_server_that_cannot_be_reached_is_one_line(tmp_path, default_model):
    url = f"http://127.0.0.1:{free_port()}/v1"
    proc = codelamp("index", str(make_project(tmp_path / "p")), "--embedder", url)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert url in proc.stderr and "cannot reach" in proc.stderr


def test_bad_embedder_flags_are_usage_errors(tmp_path):
    for flags in (["--embedder", "ftp://x"], ["--embedder", "h:1", "--embedder-concurrency", "0"]):
        proc = codelamp("index", str(tmp_path), *flags)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
