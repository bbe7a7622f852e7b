#!/usr/bin/env python3
"""Search latency and recall at 10k and 100k chunks.

The corpus is synthetic but shaped like real data: 1,000 real embeddings of standard-library
source (default model), each copied many times with noise, so it has the cluster structure
of real code embeddings (uniform random vectors would be the worst case for an IVF index
and unlike anything a project produces). Queries are 200 real natural-language queries
(first lines of stdlib docstrings), embedded for real: the reported latency includes the
query embedding. Recall@10 is measured against exact (numpy) search over the same vectors.

    .venv/bin/python scripts/bench_search.py [--sizes 10000 100000] [--ann] [--sweep]
        [--storage lancedb|lite]

With --ann, the largest size is searched a second time through the IVF index that the
LanceDB storage builds for indexes beyond the exact-search memory budget, to measure its
recall. --storage (default: CODELAMP_STORAGE, else LanceDB) is the storage measured.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BASE_CHUNKS = 1000
QUERIES = 200
NOISE = 0.35


def stdlib_texts() -> tuple[list[str], list[str]]:
    """(source snippets, docstring first lines) from the standard library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    snippets, queries = [], []
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno >= 3:
                snippets.append("\n".join(lines[node.lineno - 1 : node.lineno + 20]))
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 4:
                    queries.append(doc.strip().split("\n")[0])
    rng = np.random.default_rng(0)
    return (
        [snippets[i] for i in rng.permutation(len(snippets))[:BASE_CHUNKS]],
        [queries[i] for i in rng.permutation(len(queries))[:QUERIES]],
    )


def corpus(base: np.ndarray, n: int, rng) -> np.ndarray:
    picks = base[rng.integers(0, len(base), n)]
    noisy = picks + NOISE * rng.standard_normal(picks.shape).astype(np.float32) / np.sqrt(
        base.shape[1]
    )
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def build_store(
    root: Path, vectors: np.ndarray, texts: list[str], embedder, storage: str | None = None
):
    from app.core.lexical import fts_text
    from app.core.storage import ModelRecord, chunks_schema, open_for_writing

    store, _ = open_for_writing(root, storage=storage)
    dims = vectors.shape[1]
    gen = store.prepare(embedder.model_id, dims)
    step = 20_000
    for start in range(0, len(vectors), step):
        part = vectors[start : start + step]
        idx = range(start, start + len(part))
        text = [texts[i % len(texts)] for i in idx]
        table = pa.Table.from_pydict(
            {
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), dims),
                "path": [f"f{i}.py" for i in idx],
                "start_line": [1] * len(part),
                "end_line": [20] * len(part),
                "def_start": [1] * len(part),
                "def_end": [20] * len(part),
                "language": ["python"] * len(part),
                "symbol": [""] * len(part),
                "text": text,
                "fts": [fts_text(f"f{i}.py", "", t) for i, t in zip(idx, text, strict=True)],
                "content_hash": [str(i) for i in idx],
            },
            schema=chunks_schema(dims),
        )
        store.write(gen, [], table, [], [])
    t0 = time.perf_counter()
    store.finish(gen, ModelRecord.of(embedder))
    return store, time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def measure(searcher, queries, qvecs, vectors, mode="vector"):
    latencies, recalls = [], []
    for query, qvec in zip(queries, qvecs, strict=True):
        t0 = time.perf_counter()
        results = searcher.search(query, k=10, mode=mode)
        latencies.append((time.perf_counter() - t0) * 1000)
        if mode == "vector":
            exact = set(np.argsort(-(vectors @ qvec))[:10].tolist())
            got = {int(r.path[1:-3]) for r in results}
            recalls.append(len(exact & got) / 10)
    return latencies, recalls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--ann", action="store_true", help="also measure the IVF index on the largest size"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="with --ann, also try other IVF query settings"
    )
    parser.add_argument(
        "--storage", choices=["lancedb", "lite"], help="default: CODELAMP_STORAGE, else lancedb"
    )
    args = parser.parse_args()
    os.environ.setdefault("CODELAMP_HOME", tempfile.mkdtemp(prefix="codelamp-bench-"))
    from app.core.storage import preferred

    storage = args.storage or preferred()
    if args.ann and storage != "lancedb":
        parser.error("--ann measures LanceDB's IVF index: it needs --storage lancedb")

    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder
    from app.core.search import Searcher
    from app.core.storage import ModelRecord
    from app.core.storage import lance as store_mod

    embedder = Embedder(install_default_model().path)
    snippets, queries = stdlib_texts()
    base = embedder.embed_documents(snippets)
    qvecs = np.stack([embedder.embed_query(q) for q in queries])
    t0 = time.perf_counter()
    for q in queries:
        embedder.embed_query(q)
    embed_ms = (time.perf_counter() - t0) * 1000 / len(queries)
    print(f"query embedding alone: {embed_ms:.1f} ms mean; storage: {storage}")
    rng = np.random.default_rng(1)
    for n in args.sizes:
        vectors = corpus(base, n, rng)
        root = Path(tempfile.mkdtemp(prefix=f"bench-{n}-"))
        store, finish_s = build_store(root, vectors, snippets, embedder, storage)
        report(n, Searcher(store, embedder), queries, qvecs, vectors, finish_s)
        if args.ann and n == max(args.sizes):
            store_mod.EXACT_SEARCH_BYTES = 0  # as if the vectors did not fit in RAM
            t0 = time.perf_counter()
            store.finish(store.meta["generation"], ModelRecord.of(embedder))
            searcher = Searcher(store, embedder)
            report(n, searcher, queries, qvecs, vectors, time.perf_counter() - t0)
            if args.sweep:
                sweep(searcher, queries, qvecs, vectors)


def report(n, searcher, queries, qvecs, vectors, build_s) -> None:
    kind = "IVF index" if searcher.has_ann else "exact, RAM"
    for mode in ("vector", "hybrid"):
        measure(searcher, queries[:10], qvecs[:10], vectors, mode)  # warm-up
        lat, rec = measure(searcher, queries, qvecs, vectors, mode)
        recall = f"  recall@10 {statistics.mean(rec):.3f}" if rec else ""
        print(
            f"{n:>7} chunks  {mode:6s}  {kind:10s}  p50 {pct(lat, 50):6.1f} ms  "
            f"p95 {pct(lat, 95):6.1f} ms{recall}  (index build {build_s:.1f} s)",
            flush=True,
        )


def sweep(searcher, queries, qvecs, vectors) -> None:
    for nprobes in (5, 10, 25, 50):
        searcher.store.meta["ann_nprobes"] = str(nprobes)
        lat, rec = measure(searcher, queries, qvecs, vectors)
        print(
            f"   sweep nprobes {nprobes:3d}: p50 {pct(lat, 50):6.1f} ms "
            f"p95 {pct(lat, 95):6.1f} ms recall@10 {statistics.mean(rec):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
