"""Indexing on a real Ray cluster (a head and worker nodes started here, one CPU each).

One cluster serves the module: Ray starts slowly on 2 cores. Each node is a `ray start`
in its own process group, killed (and only it) at the end (scripts/bench_cluster.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bench_cluster import LocalCluster
from bench_index import copy_packages
from embedding_servers import FaultProxy
from llama_server import free_port
from sample_project import make_project

from app.cli import main
from app.core.cache import EmbeddingCache
from app.core.errors import CodeLampError, ModelError
from app.core.files import FileRules
from app.core.indexer import IndexControl, index_project
from app.core.remote import RemoteEmbedder
from app.core.search import Searcher
from app.core.storage import ProjectStore

ray = pytest.importorskip("ray", reason="the cluster extra: pip install 'codelamp[cluster]'")

import app.core.cluster as cluster_module  # noqa: E402 - needs ray
from app.core.cluster import Cluster, _Spec, check_reachable  # noqa: E402 - needs ray

REPO = Path(__file__).resolve().parents[2]
# Ray 2.60 warns about the deprecated settings of its own default DataContext.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
# Each has one clear answer in the sample project: near-ties (the generated modules are
# alike) may swap places when vectors differ in the fourth decimal.
QUERIES = [
    "retry a failed upload",
    "parse the configuration file",
    "hash a password",
    "least recently used cache eviction",
]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # A short path: Ray's socket paths under it must fit the 107 bytes Unix allows.
    temp = tmp_path_factory.mktemp("ray")
    cluster = LocalCluster(temp)
    try:
        cluster.start_head()
        cluster.add_worker()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp, ignore_errors=True)


def make_tree(root: Path, modules: int = 20, packages: tuple[str, ...] = ()) -> Path:
    """The sample project, ``modules`` small generated modules, and standard-library
    ``packages`` (files of many chunks each)."""
    make_project(root)
    copy_packages(root / "stdlib", list(packages))
    for i in range(modules):
        (root / "gen" / f"m{i:02d}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "gen" / f"m{i:02d}.py").write_text(
            f'def multiply_{i}(x):\n    """Multiply x by {i}."""\n    return x * {i}\n\n\n'
            f'def describe_{i}(name):\n    return f"item {i}: {{name}}"\n\n\n'
            f"class Counter{i}:\n    def __init__(self):\n        self.n = {i}\n\n"
            f"    def bump(self):\n        self.n += {i}\n        return self.n\n"
        )
    return root


def chunks(root: Path) -> dict[tuple[str, int, int], dict]:
    columns = ["path", "start_line", "end_line", "text", "content_hash", "symbol", "vector"]
    rows = ProjectStore.open(root).chunks().scan(columns).select(columns).to_pylist()
    return {(r["path"], r["start_line"], r["end_line"]): r for r in rows}


def content_hashes(root: Path) -> set[str]:
    """Of the chunks committed so far, finished or not."""
    store = ProjectStore.open(root, unfinished=True)
    chunks = store.chunks(store.meta.get("generation") or store.meta["building"])
    return set(chunks.scan(["content_hash"]).column("content_hash").to_pylist())


def files(root: Path) -> dict[str, tuple]:
    store = ProjectStore.open(root)
    records = store.file_records(store.meta["generation"]).values()
    return {r.path: (r.sha256, r.status, r.reason, r.chunks) for r in records}


@pytest.mark.slow
def test_cluster_index_equals_a_local_one(ray_cluster, tmp_path, embedder):
    here, there = make_tree(tmp_path / "here"), make_tree(tmp_path / "there")
    local = index_project(here, embedder, cache=EmbeddingCache(tmp_path / "a.sqlite"))
    with Cluster(ray_cluster.address) as cluster:
        remote = index_project(
            there, embedder, cache=EmbeddingCache(tmp_path / "b.sqlite"), cluster=cluster
        )
    assert not remote.cancelled
    assert (remote.files_indexed, remote.files_skipped, sorted(remote.skipped)) == (
        local.files_indexed,
        local.files_skipped,
        sorted(local.skipped),
    )
    assert remote.chunks_embedded == local.chunks_embedded > 0
    assert files(there) == files(here)
    a, b = chunks(here), chunks(there)
    assert a.keys() == b.keys()
    for key, row in a.items():
        other = b[key]
        assert (other["text"], other["content_hash"], other["symbol"]) == (
            row["text"],
            row["content_hash"],
            row["symbol"],
        )
        assert float(np.dot(row["vector"], other["vector"])) >= 0.999, key
    for query in QUERIES:
        top = [
            [
                (r.path, r.start_line)
                for r in Searcher(ProjectStore.open(root), embedder).search(query, k=1)
            ]
            for root in (here, there)
        ]
        assert top[0] == top[1], query


@pytest.mark.slow
def test_cluster_reindex_is_incremental(ray_cluster, tmp_path, embedder):
    root = make_tree(tmp_path / "demo", modules=4)
    with Cluster(ray_cluster.address) as cluster:
        first = index_project(root, embedder, cluster=cluster)
        assert first.chunks_embedded > 0
        again = index_project(root, embedder, cluster=cluster)
        assert (again.files_indexed, again.chunks_embedded) == (0, 0)
        path = root / "src/upload.py"
        path.write_text(path.read_text().replace("2 ** attempt", "min(60, 2 ** attempt)"))
        edited = index_project(root, embedder, cluster=cluster)
    assert edited.files_indexed == 1
    assert edited.chunks_embedded == 1, "only the retry function changed"
    assert edited.chunks_cached >= 2


@pytest.mark.slow
def test_cancel_on_the_cluster_keeps_finished_files_and_resumes(ray_cluster, tmp_path, embedder):
    root = make_tree(tmp_path / "demo", modules=10, packages=("json",))
    control = IndexControl()

    def stop_early(p):
        if p.chunks_embedded >= 3 * embedder.batch_size:
            control.cancel()

    local = index_project(
        make_tree(tmp_path / "local", modules=10, packages=("json",)),
        embedder,
        cache=EmbeddingCache(tmp_path / "local.sqlite"),
    )
    with Cluster(ray_cluster.address) as cluster:
        stopped = index_project(
            root, embedder, cluster=cluster, control=control, progress=stop_early
        )
        assert stopped.cancelled and stopped.files_indexed < local.files_indexed
        committed = content_hashes(root)
        done = index_project(root, embedder, cluster=cluster)
    assert not done.cancelled
    assert done.files_indexed + stopped.files_indexed == local.files_indexed
    assert done.chunks_embedded == len(content_hashes(root) - committed), (
        "what the stopped run committed is not embedded again"
    )
    assert chunks(root).keys() == chunks(tmp_path / "local").keys()


@pytest.mark.slow
def test_pause_on_the_cluster_holds_until_resume_and_progress_is_reported(
    ray_cluster, tmp_path, embedder
):
    root = make_tree(tmp_path / "demo", modules=6)
    control, reports, done = IndexControl(), [], threading.Event()
    control.pause()
    outcome = {}

    def run():
        with Cluster(ray_cluster.address) as cluster:
            outcome["result"] = index_project(
                root, embedder, cluster=cluster, control=control, progress=reports.append
            )
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert not done.wait(10), "a paused index must not finish"
    assert not any(p.files_done or p.chunks_embedded for p in reports)
    control.resume()
    assert done.wait(120)
    thread.join()
    result = outcome["result"]
    indexing = [p for p in reports if p.phase == "indexing"]
    assert indexing[-1].files_done == indexing[-1].files_total == result.files_indexed
    assert indexing[-1].chunks_embedded == result.chunks_embedded > 0
    assert indexing[-1].bytes_done == indexing[-1].bytes_total > 0  # the run is counted whole
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {p.current for p in indexing} - {""} <= {e.rel for e in FileRules(root).walk().files}
    assert reports[-1].phase == "done"


@pytest.mark.slow
def test_a_worker_killed_mid_job_finishes_or_resumes(ray_cluster, tmp_path, embedder):
    root = make_tree(tmp_path / "demo", modules=80)
    doomed = ray_cluster.add_worker()
    killed = threading.Event()

    def kill_once_embedding(p):
        if p.chunks_embedded and not killed.is_set():
            killed.set()
            ray_cluster.kill(doomed)

    with Cluster(ray_cluster.address) as cluster:
        try:
            result = index_project(root, embedder, cluster=cluster, progress=kill_once_embedding)
            finished = not result.cancelled
        except CodeLampError:
            finished = False
        assert killed.is_set(), "the job ended before a worker could be killed"
        if not finished:
            result = index_project(root, embedder, cluster=cluster)
            assert not result.cancelled
    local = make_tree(tmp_path / "local", modules=80)
    index_project(local, embedder, cache=EmbeddingCache(tmp_path / "local.sqlite"))
    assert chunks(root).keys() == chunks(local).keys()
    assert files(root) == files(local)


@pytest.mark.slow
def test_cluster_workers_can_call_an_embedding_server(
    ray_cluster, tmp_path, embedder, default_model, embedding_server
):
    root, local = make_tree(tmp_path / "demo", modules=4), make_tree(tmp_path / "local", 4)
    index_project(local, embedder, cache=EmbeddingCache(tmp_path / "local.sqlite"))
    with (
        FaultProxy(embedding_server) as proxy,
        RemoteEmbedder([proxy.url], local_model=default_model) as remote,
        Cluster(ray_cluster.address) as cluster,
    ):
        result = index_project(root, remote, cluster=cluster)
    assert result.chunks_embedded > 0
    assert proxy.inputs >= result.chunks_embedded, "the workers embedded through the server"
    a, b = chunks(local), chunks(root)
    assert a.keys() == b.keys()
    assert all(float(np.dot(a[k]["vector"], b[k]["vector"])) >= 0.999 for k in a)


@pytest.mark.slow
def test_auto_runs_a_ray_of_its_own_and_leaves_nothing_behind(tmp_path, default_model):
    """In a process of its own: a local Ray changes the process's Ray settings."""
    root, home = make_tree(tmp_path / "demo", modules=2), tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        env.pop(name, None)
    before = set(Path("/tmp").glob("codelamp-ray-*"))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "index",
            str(root),
            "--model",
            str(default_model),
            "--cluster",
            "auto",
            "--json",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["chunks_embedded"] > 0
    assert not list(home.iterdir()), (
        "no ~/.ray/auth_token: it would turn on token "
        "authentication for every later `ray start --head` of the user"
    )
    # TMPDIR is too long for Ray's socket paths: its files went to /tmp, and are gone.
    assert not list(tmp_path.glob("codelamp-ray-*")) and not (tmp_path / "ray").exists()
    assert set(Path("/tmp").glob("codelamp-ray-*")) <= before


def test_unreachable_cluster_is_one_quick_line(tmp_path, default_model, capsys):
    make_project(tmp_path / "demo")
    address = f"127.0.0.1:{free_port()}"  # nobody listens there
    started = time.monotonic()
    code = main(
        ["index", str(tmp_path / "demo"), "--model", str(default_model), "--cluster", address]
    )
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert f"Cannot reach the Ray cluster at {address}" in err


def test_a_listener_that_is_not_ray_is_no_cluster(monkeypatch):
    """ray.init waits for minutes on a port where something else (or a hung head) listens."""
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(CodeLampError, match=r"Cannot reach .*\(timed out\)"):
            check_reachable(f"127.0.0.1:{silent.getsockname()[1]}")
    with socket.socket() as web:

        def answer_http() -> None:
            conn, _ = web.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        web.bind(("127.0.0.1", 0))
        web.listen()
        server = threading.Thread(target=answer_http)
        server.start()
        with pytest.raises(CodeLampError, match="something else answers there"):
            check_reachable(f"127.0.0.1:{web.getsockname()[1]}")
        server.join()


def test_bad_address_is_a_usage_error():
    with pytest.raises(CodeLampError, match="not a Ray address"):
        Cluster("127.0.0.1:port")


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(CodeLampError, match=r"pip install 'codelamp\[cluster\]'"):
        Cluster("auto")


def test_the_app_never_imports_ray():
    code = (
        "import sys, app.cli, app.core.indexer, app.core.search, app.core.watcher, "
        "app.gui.main_window; app.cli.build_parser(); "
        "sys.exit('ray' in sys.modules)"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO).returncode == 0


def test_model_missing_or_different_on_a_node(tmp_path, default_model, other_model, embedder):
    spec = _Spec.of(embedder)
    with pytest.raises(ModelError, match="not on the Ray node .* same path"):
        _Spec(spec.model_id, spec.batch_size, str(tmp_path / "nowhere.gguf")).embedder()
    with pytest.raises(ModelError, match="not the one this index uses"):
        _Spec(spec.model_id, spec.batch_size, str(other_model)).embedder()
    assert spec.embedder().model_id == embedder.model_id
