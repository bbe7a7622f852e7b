"""Scale-out benchmarks: embedding servers, a Ray cluster, a shared index on S3.

    python scripts/bench_scale.py servers   # pipeline overhead; one server against two
    python scripts/bench_scale.py cluster   # a Ray cluster of 2 workers against one process
    python scripts/bench_scale.py s3        # search p50/p95 on S3 against local disk

``servers`` runs llama-cpp-python's server with the default model, one thread, pinned to
one core, and compares, on the same chunks of a copy of the Python standard library:

* raw: the chunks posted straight to ``/v1/embeddings`` (64 a request, 2 in flight) by a
  minimal client, which is the server's own throughput;
* pipeline: ``index_project`` through :class:`app.core.remote.RemoteEmbedder` (walk, read,
  chunk, cache, batch, check, write): overhead = 1 - pipeline / raw, target <= 5%;
* two servers, each pinned to its own core, against one: target >= 1.7x.

This machine has two cores, so with two servers the indexing client shares their cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

PACKAGES = ("json", "http", "email", "urllib", "logging", "concurrent")


def chunk_texts(root: Path, model: Path) -> list[str]:
    """The texts the indexer embeds for ``root``, in its order."""
    from app.core.chunking import chunk_file
    from app.core.embedder import Tokenizer
    from app.core.files import FileRules, SkipFile, load_text
    from app.core.models import inspect_model

    info = inspect_model(model)
    tokenizer = Tokenizer(info)
    texts = []
    for entry in FileRules(root).walk().files:
        try:
            text = load_text(entry)
        except SkipFile:
            continue
        pieces = chunk_file(entry.rel, text, info.max_tokens, tokenizer.count_tokens)
        texts += [info.preset.document_prefix + p.embed_text for p in pieces]
    tokenizer.close()
    return texts


def raw_rate(url: str, texts: list[str], per_request: int = 64, in_flight: int = 2) -> float:
    """Texts a second, posted as plainly as possible: the server's own throughput."""
    parts = urlsplit(url)
    batches: queue.Queue = queue.Queue()
    for i in range(0, len(texts), per_request):
        batches.put(texts[i : i + per_request])

    def post() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        while True:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                break
            conn.request(
                "POST",
                parts.path + "/embeddings",
                json.dumps({"input": batch}),
                {"Content-Type": "application/json"},
            )
            answer = conn.getresponse()
            assert answer.status == 200, answer.read()[:200]
            assert len(json.loads(answer.read())["data"]) == len(batch)
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=post) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(texts) / (time.perf_counter() - start)


def pipeline_rate(root: Path, urls: list[str], model: Path) -> tuple[float, float, float]:
    """Index ``root`` through the servers, from an empty cache: (chunks/s while embedding,
    chunks/s end to end, the CPU this client used, in cores)."""
    from app.core.indexer import IndexProgress, index_project
    from app.core.remote import RemoteEmbedder

    os.environ["CODELAMP_HOME"] = tempfile.mkdtemp(prefix="bench-scale-home-")
    seen: dict[str, float] = {}

    def progress(p: IndexProgress) -> None:
        if p.chunks_embedded and "first" not in seen:
            seen["first"] = time.perf_counter()
        if p.phase == "finishing":
            seen.setdefault("finishing", time.perf_counter())

    with RemoteEmbedder(urls, local_model=model) as embedder:
        embedder.load()
        start, cpu = time.perf_counter(), time.process_time()
        result = index_project(root, embedder, progress=progress)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    embedding = seen.get("finishing", start + total) - start
    return result.chunks_embedded / embedding, result.chunks_embedded / total, cpu / total


def bench_servers(args: argparse.Namespace) -> None:
    from bench_index import copy_packages
    from llama_server import llama_server

    from app.core.default_model import install_default_model

    model = Path(args.model) if args.model else install_default_model().path
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    root = copy_packages(work / "tree", PACKAGES)
    texts = chunk_texts(root, model)
    print(
        f"corpus: {', '.join(PACKAGES)} from the stdlib, {len(texts)} chunks; model "
        f"{model.name}; {os.cpu_count()} cores"
    )
    os.sched_setaffinity(0, {0})  # the client on core 0, the server on core 1
    with llama_server(model, threads=1, cpus="1") as url:
        raw_rate(url, texts[:64])  # warm-up
        raws, pipes, ends, cpus = [], [], [], []
        for _ in range(args.repeat):  # interleaved: the machine's drift hits both alike
            raws.append(raw_rate(url, texts))
            rate, end, cpu = pipeline_rate(root, [url], model)
            pipes.append(rate)
            ends.append(end)
            cpus.append(cpu)
    raw, pipe, end = max(raws), max(pipes), max(ends)
    print(
        f"one server (1 core):  raw {raw:6.1f} chunks/s   pipeline {pipe:6.1f} chunks/s "
        f"embedding, {end:6.1f} end to end   overhead {100 * (1 - pipe / raw):+.1f}% "
        f"({100 * (1 - end / raw):+.1f}% end to end; target <= 5%); the client used "
        f"{min(cpus):.2f} of a core"
    )
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    with (
        llama_server(model, threads=1, cpus="0") as a,
        llama_server(model, threads=1, cpus="1") as b,
    ):
        raw_rate(a, texts[:64])
        raw_rate(b, texts[:64])
        twos = [pipeline_rate(root, [a, b], model) for _ in range(args.repeat)]
    two = max(rate for rate, _, _ in twos)
    print(
        f"two servers (1 core each): pipeline {two:6.1f} chunks/s = {two / pipe:.2f}x one "
        f"server (target >= 1.7x); the client used {min(c for _, _, c in twos):.2f} of a "
        "core, taken from the servers' two"
    )
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("servers", help="pipeline overhead, one server against two")
    p.add_argument("--model", help="GGUF file (default: the default model)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each; the best is kept")
    p.set_defaults(func=bench_servers)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
