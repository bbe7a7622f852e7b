"""Do both storages give the same results? Index each task of scripts/eval_quality.py
into a LanceDB store and a lite store, run every query in every ranked mode on both, and
count the queries whose top 10 differ (by path and lines, in order).

    python scripts/compare_storage.py [--task stdlib] [--queries 500] [--model FILE]

Prints one line per task and mode, and exits 1 if any top 10 differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

MODES = ("lexical", "vector", "hybrid")


def top10(searcher, query: str, mode: str) -> list[tuple[str, int, int]]:
    return [(r.path, r.start_line, r.end_line) for r in searcher.search(query, k=10, mode=mode)]


def main() -> int:
    import eval_quality

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=[*eval_quality.TASKS, "all"], default="all")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="GGUF file (default: the default model)")
    parser.add_argument("--nl-queries", type=Path, default=eval_quality.NL_QUERIES)
    args = parser.parse_args()
    os.environ.setdefault("CODELAMP_HOME", tempfile.mkdtemp(prefix="codelamp-storage-"))

    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder
    from app.core.indexer import index_project
    from app.core.location import Location
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    embedder = Embedder(args.model or install_default_model().path)
    work = Path(tempfile.mkdtemp(prefix="codelamp-storage-corpus-"))
    tasks = eval_quality.TASKS.values() if args.task == "all" else [eval_quality.TASKS[args.task]]
    differ = 0
    for task in tasks:
        corpus = work / task.name
        built = task.build(corpus, args)
        if built is None:
            continue
        targets, _ = built
        searchers = {}
        for storage in ("lancedb", "lite"):
            location = Location.parse(str(work / f"{task.name}-{storage}"))
            t0 = time.perf_counter()
            index_project(corpus, embedder, location=location, storage=storage)
            store = ProjectStore.open(corpus, location=location)
            assert store.backend == storage, store.backend
            searchers[storage] = Searcher(store, embedder)
            print(f"{task.name}: indexed into {storage} in {time.perf_counter() - t0:.0f} s")
        for mode in MODES:
            seconds = dict.fromkeys(searchers, 0.0)
            same = 0
            for target in targets:
                answers = []
                for storage, searcher in searchers.items():
                    t0 = time.perf_counter()
                    answers.append(top10(searcher, target.query, mode))
                    seconds[storage] += time.perf_counter() - t0
                same += answers[0] == answers[1]
            differ += len(targets) - same
            timing = ", ".join(f"{s} {1000 * t / len(targets):.1f} ms" for s, t in seconds.items())
            print(
                f"  {mode:8s} identical top 10: {same}/{len(targets)} queries "
                f"(mean per query: {timing})",
                flush=True,
            )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
