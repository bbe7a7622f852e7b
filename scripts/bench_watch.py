#!/usr/bin/env python3
"""Save-to-searchable latency of the file watcher, with the default model.

Standard-library packages are indexed, a ProjectWatcher is started, and then a small edit
(one new function appended to an existing file) is saved every few seconds. The latency
of each edit runs from the write to the moment a search (opened fresh, as the GUI does
after an update) returns the new function. Target: p95 <= 2 s.

    .venv/bin/python scripts/bench_watch.py [--edits 30] [--packages json email http]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench_index import copy_packages

PACKAGES = ["json", "email", "http", "logging"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--packages", nargs="+", default=PACKAGES)
    args = parser.parse_args()
    os.environ.setdefault("CODELAMP_HOME", tempfile.mkdtemp(prefix="bench-watch-home-"))

    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder
    from app.core.indexer import index_project
    from app.core.search import Searcher
    from app.core.storage import ProjectStore
    from app.core.watcher import ProjectWatcher

    root = copy_packages(Path(tempfile.mkdtemp(prefix="bench-watch-")) / "project", args.packages)
    embedder = Embedder(install_default_model().path)
    t0 = time.perf_counter()
    first = index_project(root, embedder)
    files = sorted(root.rglob("*.py"))
    print(
        f"indexed {len(files)} files ({first.chunks_embedded} chunks) in "
        f"{time.perf_counter() - t0:.0f} s"
    )

    updated = threading.Event()
    watcher = ProjectWatcher(root, embedder, lambda e: e.kind == "updated" and updated.set())
    watcher.start()
    time.sleep(2)
    rng = random.Random(0)
    latencies, rounds = [], []
    for i in range(args.edits):
        path = rng.choice(files)
        marker = f"reconcile_bench_marker_{i}"
        text = path.read_text(encoding="utf-8")
        updated.clear()
        start = time.perf_counter()
        path.write_text(
            f"{text}\n\ndef {marker}(ledger):\n    return sum(ledger) == {i}\n", encoding="utf-8"
        )
        found = False
        while not found and time.perf_counter() - start < 30:
            updated.wait(0.05)
            searcher = Searcher(ProjectStore.open(root), embedder)
            found = any(marker in r.symbol for r in searcher.search(marker, k=3))
        latency = time.perf_counter() - start
        latencies.append(latency)
        rounds.append(watcher.last_round_s)
        print(
            f"  edit {i + 1:2d}: {path.relative_to(root)} searchable after {latency:.2f} s",
            flush=True,
        )
        time.sleep(1.0)
    watcher.stop()
    q = statistics.quantiles(latencies, n=20)
    print(
        f"save -> searchable over {len(latencies)} edits: p50 {statistics.median(latencies):.2f}"
        f" s, p95 {q[18]:.2f} s, max {max(latencies):.2f} s (target p95 <= 2 s); the "
        f"re-index round itself: median {statistics.median(rounds):.2f} s (debounce "
        f"{watcher.quiet_s:g} s)"
    )


if __name__ == "__main__":
    main()
