"""Embedding on a real OpenAI-compatible server: llama-cpp-python's own, serving the
default model in its own process. Faults come from a real proxy in front of it
(tests/embedding_servers.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from embedding_servers import FaultProxy
from llama_server import free_port
from sample_project import make_project
from texts import TEXTS

from app.core.cache import EmbeddingCache
from app.core.errors import CodeLampError, ModelError, UsageError
from app.core.indexer import index_project
from app.core.remote import RemoteEmbedder, endpoint_url
from app.core.search import Searcher
from app.core.storage import NotFinished, ProjectStore

pytestmark = pytest.mark.slow


@pytest.fixture
def server(embedding_server: str) -> str:
    return embedding_server


@pytest.fixture
def other_server(other_embedding_server: str) -> str:
    return other_embedding_server


@pytest.fixture
def proxy(server: str):
    with FaultProxy(server) as p:
        yield p


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "demo")


def remote(urls, default_model: Path | None = None, **kw) -> RemoteEmbedder:
    urls = [urls] if isinstance(urls, str) else urls
    return RemoteEmbedder(urls, local_model=default_model, **kw)


def stored(root: Path) -> dict[tuple, np.ndarray]:
    """(path, start, end, content key) -> vector, for every stored chunk."""
    columns = ["path", "start_line", "end_line", "content_hash"]
    rows = ProjectStore.open(root).chunks().scan([*columns, "vector"]).to_pylist()
    return {tuple(r[c] for c in columns): np.array(r["vector"]) for r in rows}


def top(root: Path, embedder, query: str, k: int = 3) -> list[str]:
    results = Searcher(ProjectStore.open(root), embedder).search(query, k=k)
    return [f"{r.path}:{r.start_line}" for r in results]


QUERIES = ["retry a failed upload", "parse the config file", "hash a user's password"]


def test_urls_are_read_as_users_type_them():
    assert endpoint_url("gpu-box:8080") == "http://gpu-box:8080/v1"
    assert endpoint_url("https://h/v1/embeddings/") == "https://h/v1"
    assert endpoint_url("http://h:1/api/v1") == "http://h:1/api/v1"
    for bad in ("ftp://h/v1", "http://", "http://h:99999/v1"):
        with pytest.raises(UsageError):
            endpoint_url(bad)


def test_server_vectors_equal_local_ones(server, embedder, default_model):
    with remote(server, default_model) as emb:
        got = emb.embed_documents(TEXTS)
        assert emb.model_id == embedder.model_id, "the server runs the very same file"
        query = emb.embed_query("parse config")
    want = embedder.embed_documents(TEXTS)
    assert (got * want).sum(axis=1).min() >= 0.999
    assert float(query @ embedder.embed_query("parse config")) >= 0.999


def test_an_index_built_on_the_server_is_the_local_index(
    server, embedder, default_model, project, tmp_path
):
    local = make_project(tmp_path / "local")
    index_project(local, embedder, cache=EmbeddingCache(tmp_path / "own-cache.sqlite"))
    with remote(server, default_model) as emb:
        result = index_project(project, emb)
        assert result.chunks_embedded > 0 and not result.cancelled
        for query in QUERIES:
            assert top(project, emb, query) == top(local, embedder, query)
    a, b = stored(project), stored(local)
    assert a.keys() == b.keys(), "the same chunks"
    assert min(float(a[key] @ b[key]) for key in a) >= 0.999
    for query in QUERIES:  # and the server's index answers a local search alike
        assert top(project, embedder, query) == top(local, embedder, query)


def test_a_server_known_by_name_only(server, embedder, project):
    """No local GGUF of its model: known as remote:<name>, tokens estimated; the index is
    still searchable with a local copy of the model, whose probe vector agrees."""
    with remote(server) as emb:
        assert emb.model_id == "remote:codelamp-code-v1.q8_0"
        index_project(project, emb)
        assert top(project, emb, "retry a failed upload", k=1)[0].startswith("src/upload.py")
    assert top(project, embedder, "retry a failed upload", k=1)[0].startswith("src/upload.py")


def test_a_local_model_found_by_the_server_s_name(server, embedder, default_model):
    from app.core.models import find_model_file

    with remote(server, find_local=find_model_file) as emb:
        assert emb.model_id == embedder.model_id


def test_a_local_model_of_that_name_that_is_not_the_servers(other_server, default_model):
    """The server is said to run the default model, but its vectors say otherwise: the
    local file of that name is not taken for it (its tokenizer and id would be wrong)."""
    from app.core.models import find_model_file

    assert find_model_file("codelamp-code-v1") == default_model
    with remote(other_server, find_local=find_model_file, model="codelamp-code-v1") as emb:
        assert emb.model_id == "remote:codelamp-code-v1"


def test_429_and_5xx_bursts_are_retried(proxy, embedder, default_model, project):
    proxy.fail(3, 429)
    proxy.fail(2, 503)
    with remote(proxy.url, default_model, max_inputs=8) as emb:
        result = index_project(project, emb)
    assert not result.cancelled and result.chunks_embedded > 0
    assert top(project, embedder, "retry a failed upload", k=1)[0].startswith("src/upload.py")


def test_a_server_that_keeps_failing_is_one_clear_error(proxy, default_model, project):
    with remote(proxy.url, default_model) as emb:
        emb.load()
        proxy.fail(100, 500)
        with pytest.raises(ModelError, match="failed 6 times in a row.*HTTP 500"):
            index_project(project, emb)
    with pytest.raises(NotFinished):  # nothing half-written is served as an index
        ProjectStore.open(project)


@pytest.mark.parametrize(
    "mode, message",
    [
        ("nan", "invalid vectors"),
        ("dims", "128-dimension vectors, not 384"),
        ("short", "returned 3 vectors for 4 texts"),
        ("per-token", "one vector per token"),
        ("garbage", "did not answer JSON"),
    ],
)
def test_bad_answers_are_refused(proxy, default_model, mode, message):
    with remote(proxy.url, default_model) as emb:
        emb.load()
        proxy.mode = mode
        with pytest.raises(ModelError, match=message):
            emb.embed_documents(TEXTS[:4])


def test_bad_answers_never_reach_the_index(proxy, embedder, default_model, project):
    index_project(project, embedder)
    before = stored(project)
    (project / "src" / "upload.py").write_text("def upload_again():\n    return 2\n")
    with remote(proxy.url, default_model) as emb:
        emb.load()
        proxy.mode = "nan"
        with pytest.raises(ModelError, match="invalid vectors"):
            index_project(project, emb)
    after = stored(project)
    assert after.keys() == before.keys(), "the last good index, as it was"
    assert all(np.array_equal(after[key], before[key]) for key in before)


def test_401_says_where_the_key_goes(proxy, default_model, monkeypatch):
    proxy.require_key = "s3cret"
    with (
        remote(proxy.url, default_model) as emb,
        pytest.raises(ModelError, match="CODELAMP_API_KEY"),
    ):
        emb.load()
    monkeypatch.setenv("CODELAMP_API_KEY", "s3cret")
    with remote(proxy.url, default_model) as emb:
        assert emb.embed_documents(["x"]).shape == (1, 384)


def test_an_unreachable_server_is_one_clear_error_quickly(default_model):
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with remote(url, default_model) as emb, pytest.raises(ModelError, match="cannot reach"):
        emb.load()
    assert time.monotonic() - start < 10


def test_a_dead_endpoint_is_routed_around(proxy, default_model, embedder, project):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with remote([dead, proxy.url], default_model) as emb:
        index_project(project, emb)
    assert proxy.requests > 0
    assert top(project, embedder, "retry a failed upload", k=1)[0].startswith("src/upload.py")


def test_batches_are_sized_by_tokens_with_several_in_flight(proxy, embedder, default_model):
    texts = [f"def f{i}():\n    return {'x + ' * (i % 40)}1" for i in range(120)]
    proxy.delay = 0.2  # so that requests overlap
    with remote(proxy.url, default_model, batch_tokens=300, max_inputs=16, concurrency=3) as emb:
        got = emb.embed_documents(texts)
    assert (got * embedder.embed_documents(texts)).sum(axis=1).min() >= 0.999, "in order"
    sizes = [sum(embedder.count_tokens(t) for t in batch) for batch in proxy.batches[1:]]
    assert max(sizes) <= 300 and max(len(b) for b in proxy.batches) <= 16
    assert sum(sizes) > 300 * (len(sizes) - 1) / 2, "batches are filled, not one text each"
    assert proxy.most_in_flight >= 3, "three requests at once"


def test_a_slow_endpoint_gets_less_work(server, default_model):
    with FaultProxy(server) as fast, FaultProxy(server) as slow:
        slow.delay = 0.5
        with remote([fast.url, slow.url], default_model, max_inputs=2) as emb:
            emb.embed_documents(TEXTS * 4)
        assert fast.inputs > 2 * slow.inputs


def test_a_model_swapped_behind_the_url_is_caught(
    proxy, other_server, default_model, embedder, project, tmp_path
):
    """The server starts running another model mid-index: nothing of it is written."""
    index_project(project, embedder)
    original = stored(project)
    for name in ("upload.py", "config.py", "auth.go"):
        path = next(project.rglob(name))
        path.write_text(path.read_text() + "\n# touched\n")
    proxy.switch_after = (2, other_server)
    with (
        remote(proxy.url, default_model, max_inputs=2) as emb,
        pytest.raises(ModelError, match="runs another model"),
    ):
        index_project(project, emb)
    assert proxy.upstream == other_server, "the swap happened"
    changed = make_project(tmp_path / "changed")  # what the default model makes of it now
    for name in ("upload.py", "config.py", "auth.go"):
        shutil.copy(next(project.rglob(name)), next(changed.rglob(name)))
    index_project(changed, embedder)
    reference = stored(changed)
    for key, vec in stored(project).items():
        want = [v for v in (original.get(key), reference.get(key)) if v is not None]
        assert any(float(vec @ w) >= 0.999 for w in want), f"{key} has a foreign vector"


def test_an_index_refuses_a_server_running_another_model(server, other_server, embedder, project):
    index_project(project, embedder)
    with (
        remote(other_server, model="codelamp-code-v1") as emb,
        pytest.raises(CodeLampError, match="built with"),
    ):
        Searcher(ProjectStore.open(project), emb)
