#!/usr/bin/env python3
"""The two storage backends side by side: LanceDB (the default) and lite (SQLite + FTS5).

For each size (default 10k and 100k chunks) a synthetic project is written into each
backend the way the indexer writes it, then measured:

* index: open_for_writing, prepare, one ``write`` per batch of ``--batch`` chunks (about
  10 chunks a file, each batch with its files' records, as the indexer's writer sends
  them), then ``finish`` (LanceDB builds its full-text index and compacts there);
* no-change re-index: what a ``codelamp index`` with nothing changed asks of the store
  (open_for_writing, which verifies thoroughly, prepare, the file records, uncommitted),
  and a ``finish`` with no writes after it;
* search through :class:`app.core.search.Searcher`: the open (store and searcher), the
  first keyword and the first vector search of a fresh searcher (they load the full-text
  statistics and the vector matrix), then p50/p95 over ``--queries`` queries in each mode
  (keywords: BM25; vector: exact; hybrid: both, fused and reranked);
* disk: ``store.size_on_disk()`` after the build, and after ``compact(force=True)``
  (for lite that folds the write-ahead log into the database and truncates it).

The no-change runs and the queries alternate between the backends (the other one first
every other time), so on a shared machine both see the same load and the ratios hold
while absolute times drift; the builds run one after the other.

Vectors are random 384-dim float32 unit vectors, and queries are embedded by a stand-in
that makes a vector from the query's hash: search in RAM is exact, so its time does not
depend on what the vectors mean, and the timings leave the model out. The chunk text is
code-like: lines of identifiers drawn from the identifiers of this Python's standard
library, by their frequency there, so the full-text index has realistic posting lists
(a few very common words, a long tail). Queries are 2 to 4 of those identifiers.

With ``--cli`` (on by default; ``--no-cli`` skips it), a real ``codelamp index`` of a copy
of this repository's ``app/`` is run with the default model for each backend in a
temporary CODELAMP_HOME: once from scratch, then ``--repeats`` times with nothing changed
(new processes: interpreter start and imports included).

    nice -n 10 .venv/bin/python scripts/bench_storage.py [--sizes 10000 100000] [--no-cli]

Prints one table per measurement, with lite/lancedb ratios (below 1: lite is faster or
smaller).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("lancedb", "lite")
DIMS = 384
CHUNKS_PER_FILE = 10
VOCABULARY = 20_000  # the most common identifiers of the standard library
LINES_PER_CHUNK = 20
MODES = ("lexical", "vector", "hybrid")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class StandInEmbedder:
    """What a Searcher and ModelRecord ask of an embedder; queries get a unit vector made
    from their hash (cheap, deterministic), so the timings are the store's and search's."""

    model_id = name = label = "bench-stand-in-384"
    dim = DIMS
    model_path = ""

    def probe(self) -> np.ndarray:
        return self.embed_query("probe")

    def expect(self, probe) -> None:
        pass

    def embed_query(self, text: str) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(DIMS)
        return (v / np.linalg.norm(v)).astype(np.float32)


def vocabulary() -> tuple[list[str], np.ndarray]:
    """The standard library's most common identifiers and their shares of all uses."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    counts: Counter[str] = Counter()
    for path in sorted(stdlib.glob("*.py")):
        counts.update(_IDENTIFIER.findall(path.read_text(encoding="utf-8", errors="replace")))
    words, freq = zip(*counts.most_common(VOCABULARY), strict=True)
    share = np.array(freq, dtype=np.float64)
    return list(words), share / share.sum()


def batches(n: int, batch: int, words: list[str], share: np.ndarray, rng) -> list[tuple]:
    """The project as the indexer's writer would hand it over: (records, chunks, paths)
    per batch of about ``batch`` chunks, whole files in each."""
    from app.core.lexical import fts_text
    from app.core.storage import FileRecord, chunks_schema

    n_files = -(-n // CHUNKS_PER_FILE)
    per_line = 5
    tokens = rng.choice(len(words), size=(n, LINES_PER_CHUNK * per_line + 3), p=share)
    vectors = rng.standard_normal((n, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    files_per_batch = max(1, batch // CHUNKS_PER_FILE)
    now = time.time()
    out = []
    for first_file in range(0, n_files, files_per_batch):
        files = range(first_file, min(first_file + files_per_batch, n_files))
        rows = {name: [] for name in chunks_schema(DIMS).names if name != "vector"}
        records, paths, ids = [], [], []
        for f in files:
            t = tokens[f * CHUNKS_PER_FILE]
            path = f"src/{words[t[0]].strip('_') or 'x'}/{words[t[1]].strip('_') or 'y'}_{f}.py"
            chunk_ids = range(f * CHUNKS_PER_FILE, min((f + 1) * CHUNKS_PER_FILE, n))
            paths.append(path)
            records.append(
                FileRecord(path, 4000, int(now * 1e9), f"{f:064x}", "indexed", "", 10, now)
            )
            for line_no, i in enumerate(chunk_ids):
                t = tokens[i]
                symbol = words[t[0]]
                body = [f"def {symbol}({words[t[1]]}, {words[t[2]]}):"]
                for j in range(LINES_PER_CHUNK):
                    a, b, c, d, e = (words[k] for k in t[3 + j * per_line : 8 + j * per_line])
                    body.append(f"    {a} = {b}.{c}({d}, {e})")
                text = "\n".join(body)
                start = 1 + line_no * (LINES_PER_CHUNK + 2)
                end = start + LINES_PER_CHUNK
                for name, value in (
                    ("path", path),
                    ("start_line", start),
                    ("end_line", end),
                    ("def_start", start),
                    ("def_end", end),
                    ("language", "python"),
                    ("symbol", symbol),
                    ("text", text),
                    ("fts", fts_text(path, symbol, text)),
                    ("content_hash", f"{i:016x}"),
                ):
                    rows[name].append(value)
                ids.append(i)
        flat = pa.array(vectors[ids].ravel())
        rows["vector"] = pa.FixedSizeListArray.from_arrays(flat, DIMS)
        out.append((records, pa.Table.from_pydict(rows, schema=chunks_schema(DIMS)), paths))
    return out


def queries(words: list[str], n: int, rng) -> list[str]:
    """Identifiers a user might type: 2 to 4, not among the 30 most common."""
    pool = words[30:5000]
    return [" ".join(rng.choice(pool, size=rng.integers(2, 5), replace=False)) for _ in range(n)]


def build(root: Path, backend: str, data: list[tuple], model) -> dict[str, float]:
    from app.core.storage import open_for_writing

    t0 = time.perf_counter()
    store, notice = open_for_writing(root, storage=backend)
    assert store.backend == backend, (store.backend, notice)
    gen = store.prepare(model.model_id, DIMS, probe=lambda: model.probe)
    for records, table, paths in data:
        store.write(gen, records, table, paths, [])
    written = time.perf_counter()
    store.finish(gen, model)
    done = time.perf_counter()
    size = store.size_on_disk()
    store.compact(force=True)  # lite: the write-ahead log folded in and truncated
    return {
        "index": done - t0,
        "writes": written - t0,
        "finish": done - written,
        "disk": size,
        "disk, compacted": store.size_on_disk(),
    }


def alternating(i: int) -> tuple[str, ...]:
    """The backends in turn, the other one first every other time: on a shared machine
    both see the same load, so their ratio holds even when absolute times drift."""
    return BACKENDS if i % 2 == 0 else BACKENDS[::-1]


def no_change(roots: dict[str, Path], model, repeats: int) -> dict[str, dict[str, float]]:
    """What an index run with nothing changed asks of the store (app.core.indexer), then a
    commit with nothing written; medians, the backends alternating."""
    from app.core.storage import open_for_writing

    checks = {b: [] for b in BACKENDS}
    commits = {b: [] for b in BACKENDS}
    for i in range(repeats):
        for backend in alternating(i):
            gc.collect()
            t0 = time.perf_counter()
            store, _ = open_for_writing(roots[backend])
            gen = store.prepare(model.model_id, DIMS, probe=lambda: model.probe)
            store.file_records(gen)
            store.uncommitted()
            t1 = time.perf_counter()
            store.finish(gen, model)
            commits[backend].append(time.perf_counter() - t1)
            checks[backend].append(t1 - t0)
            del store
    return {
        b: {
            "no-change": statistics.median(checks[b]),
            "empty finish": statistics.median(commits[b]),
        }
        for b in BACKENDS
    }


def search(roots: dict[str, Path], embedder, texts: list[str]) -> dict[str, dict[str, float]]:
    """The open and first searches of a fresh searcher on each index, then every query in
    each mode on both, alternating."""
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    searchers, out = {}, {}
    for backend in BACKENDS:
        gc.collect()
        t0 = time.perf_counter()
        searcher = Searcher(ProjectStore.open(roots[backend]), embedder)
        t1 = time.perf_counter()
        searcher.search(texts[0], mode="lexical")
        t2 = time.perf_counter()
        searcher.search(texts[0], mode="vector")
        t3 = time.perf_counter()
        searchers[backend] = searcher
        out[backend] = {"open": t1 - t0, "first lexical": t2 - t1, "first vector": t3 - t2}
    for mode in MODES:
        times = {b: [] for b in BACKENDS}
        for i, text in enumerate(texts):
            for backend in alternating(i):
                t = time.perf_counter()
                searchers[backend].search(text, k=10, mode=mode)
                times[backend].append(time.perf_counter() - t)
        for backend in BACKENDS:
            out[backend][f"{mode} p50"] = float(np.percentile(times[backend], 50))
            out[backend][f"{mode} p95"] = float(np.percentile(times[backend], 95))
    return out


def cli_runs(work: Path, repeats: int) -> dict[str, dict[str, float]]:
    """`codelamp index` of a copy of app/, from scratch and then with nothing changed
    (medians, the backends alternating)."""
    project = work / "project"
    shutil.copytree(REPO / "app", project, ignore=shutil.ignore_patterns("__pycache__"))
    envs = {
        backend: dict(
            os.environ,
            CODELAMP_HOME=str(work / f"home-{backend}"),
            PYTHONPATH=str(REPO),
            CODELAMP_STORAGE=backend,
        )
        for backend in BACKENDS
    }

    def codelamp(backend: str, *args: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=REPO,
            env=envs[backend],
            check=True,
            capture_output=True,
            text=True,
        )
        return time.perf_counter() - t0, done.stdout

    first = {b: codelamp(b, "index", str(project))[0] for b in BACKENDS}
    again = {b: [] for b in BACKENDS}
    for i in range(repeats):
        for backend in alternating(i):
            again[backend].append(codelamp(backend, "index", str(project))[0])
    for backend in BACKENDS:
        status = codelamp(backend, "status", str(project), "--json")[1]
        assert f'"storage": "{backend}"' in status, status
    return {
        b: {"first index": first[b], "no-change": statistics.median(again[b])} for b in BACKENDS
    }


def fmt(name: str, value: float) -> str:
    if name.startswith("disk"):
        return f"{value / 1e6:.1f} MB"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def table(title: str, rows: dict[str, dict[str, dict[str, float]]]) -> None:
    """rows: {size label: {backend: {measure: value}}}, as a Markdown table."""
    print(f"\n{title}\n")
    print("| chunks | measure | lancedb | lite | lite/lancedb |")
    print("|---|---|---|---|---|")
    for label, by_backend in rows.items():
        for name in by_backend["lancedb"]:
            a, b = by_backend["lancedb"][name], by_backend["lite"][name]
            ratio = f"{b / a:.2f}" if a else "-"
            print(f"| {label} | {name} | {fmt(name, a)} | {fmt(name, b)} | {ratio} |")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch", type=int, default=500, help="chunks per write")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="no-change runs (median)")
    parser.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    os.environ["CODELAMP_HOME"] = str(work / "home")
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    """Every measurement, with indexes and CODELAMP_HOME under ``work``."""
    from app.core.storage import ModelRecord

    embedder = StandInEmbedder()
    model = ModelRecord.of(embedder)
    words, share = vocabulary()
    rng = np.random.default_rng(0)
    texts = queries(words, args.queries, rng)
    measured: dict[str, dict[str, dict[str, float]]] = {}
    for n in args.sizes:
        t0 = time.perf_counter()
        data = batches(n, args.batch, words, share, rng)
        print(
            f"{n:,} chunks: {len(data)} batches generated in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
        figures, roots = {}, {}
        for backend in BACKENDS:
            roots[backend] = work / f"{backend}-{n}"
            roots[backend].mkdir()
            figures[backend] = build(roots[backend], backend, data, model)
        del data
        gc.collect()
        for part in (no_change(roots, model, args.repeats), search(roots, embedder, texts)):
            for backend in BACKENDS:
                figures[backend] |= part[backend]
        print(f"  {figures}", file=sys.stderr)
        measured[f"{n:,}"] = figures
    table("Synthetic index (stand-in embedder)", measured)
    if args.cli:
        runs = cli_runs(work, args.repeats)
        table("`codelamp index` of app/ (default model, new processes)", {"app/": runs})


if __name__ == "__main__":
    main()
