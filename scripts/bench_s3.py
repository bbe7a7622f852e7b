#!/usr/bin/env python3
"""Search latency of a shared index on S3 against the same index on local disk.

Indexes a copy of part of the standard library twice, into a local folder store and into
an S3 store (moto's server, started here as a process on 127.0.0.1, or a real endpoint
from the AWS_* variables with --bucket), then times opening each index and answering 100
real queries (docstring first lines) in hybrid and in lexical mode.
No caching is added for S3: vectors are read into RAM once per opened index (the exact
search's matrix), so the open carries that cost and queries read the full-text index and
the results' text from the store.

    .venv/bin/python scripts/bench_s3.py --model FILE [--files 300] [--bucket NAME]

:func:`measure` is callable from other benchmarks (e.g. scripts/bench_scale.py).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

QUERIES = 100


def corpus(folder: Path, files: int) -> list[str]:
    """Copy ``files`` stdlib modules to ``folder``; return queries from their docstrings."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    queries = []
    for path in sorted(stdlib.glob("*.py"))[:files]:
        text = path.read_text(encoding="utf-8", errors="replace")
        (folder / path.name).write_text(text, encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if doc and len(first := doc.strip().split("\n")[0].split()) >= 4:
                queries.append(" ".join(first))
    return queries[:: max(1, len(queries) // QUERIES)][:QUERIES]


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"p50 {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms"


def measure(location, embedder, queries: list[str]) -> dict[str, str]:
    """Open the index at ``location`` and time it and ``queries``, per mode."""
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    figures = {}
    start = time.perf_counter()
    searcher = Searcher(ProjectStore.open(None, location=location), embedder)
    searcher.search(queries[0])  # reads the vectors into RAM
    figures["open + first query"] = f"{(time.perf_counter() - start) * 1000:.0f} ms"
    for mode in ("hybrid", "lexical"):
        samples = []
        for query in queries:
            start = time.perf_counter()
            searcher.search(query, mode=mode)
            samples.append(time.perf_counter() - start)
        figures[mode] = percentiles(samples)
    embed = []
    for query in queries:
        start = time.perf_counter()
        embedder.embed_query(query)
        embed.append(time.perf_counter() - start)
    figures["of which embedding the query"] = percentiles(embed)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="GGUF embedding model")
    parser.add_argument("--files", type=int, default=300, help="stdlib modules to index")
    parser.add_argument("--bucket", help="use this bucket at the AWS_* endpoint, not moto")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="codelamp-bench-s3-"))
    os.environ["CODELAMP_HOME"] = str(work / "home")
    server = None
    try:
        if args.bucket:
            bucket = args.bucket
        else:
            from s3_server import start_server

            server = start_server()
            os.environ.update(server.env())
            bucket = server.bucket()
        from app.core.embedder import Embedder
        from app.core.indexer import index_project
        from app.core.location import Location
        from app.core.project import project_status

        root = work / "stdlib"
        root.mkdir()
        queries = corpus(root, args.files)
        stores = {
            "local disk": Location.parse(str(work / "store")),
            "S3 (moto, 127.0.0.1)" if server else f"S3 ({bucket})": Location.parse(
                f"s3://{bucket}/bench/stdlib"
            ),
        }
        with Embedder(Path(args.model)) as embedder:
            for name, location in stores.items():
                start = time.perf_counter()
                index_project(root, embedder, location=location)
                took = time.perf_counter() - start
                status = project_status(None, thorough=False, location=location)
                print(
                    f"{name}: indexed {status['files']} files, {status['chunks']} chunks "
                    f"in {took:.1f} s (second run: from the embedding cache)"
                )
            for name, location in stores.items():
                print(f"\n{name}")
                for what, figure in measure(location, embedder, queries).items():
                    print(f"  {what:<30} {figure}")
    finally:
        if server is not None:
            server.process.terminate()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
