#!/usr/bin/env python3
"""Text and regex search against ripgrep and grep, on the Python standard library.

The corpus is a copy of this interpreter's standard library (without site-packages, its
test suite and compiled files), indexed by CodeLamp. Every tool searches the same files,
the ones the index lists, and must find the same number of matching lines; each query
runs --repeat times (after one warm-up run, so the files are in the page cache) and the
figures are the median and 95th percentile of those runs over all queries of a mode.

    .venv/bin/python scripts/bench_grep.py [--corpus DIR] [--repeat 7]

Text and regex search never read vectors, and embedding 16 MB of code takes hours on two
busy cores: the index is built with the default model's tokenizer (so the chunks and the
definitions that results name are the real ones) and a constant vector for every chunk.
It is kept in .cache/bench-grep/ and reused by the next run.

rg is the benchmark's only extra need (``apt-get install ripgrep``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmark the app beside this script
CACHE = REPO / ".cache" / "bench-grep"
# Case is smart (ignored without a capital), so the tools get -i or not to match.
QUERIES = [
    ("text", "object_hook"),
    ("text", "def __init__"),
    ("text", "return none"),
    ("text", "ValueError"),
    ("text", "self._sock"),
    ("text", "xyzzy_not_there"),
    ("regex", r"def \w+_config\("),
    ("regex", r"^class \w+\(Exception\):"),
    ("regex", r"\bsocket\.\w+\("),
    ("regex", r"raise [A-Z]\w+Error\("),
    ("regex", r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    ("regex", r"lambda \w+: \w+\.\w+"),
]


def corpus(dest: Path) -> Path:
    if not dest.is_dir():
        shutil.copytree(
            sysconfig.get_paths()["stdlib"],
            dest,
            ignore=shutil.ignore_patterns(
                "site-packages", "test", "__pycache__", "lib-dynload", "config-*"
            ),
        )
    return dest.resolve()


def tokenizer_only():
    """The default model, minus the embedding: the real tokenizer, a constant vector."""
    from app.core.default_model import find_default_model
    from app.core.embedder import Embedder

    class TokenizerOnly(Embedder):
        @property
        def model_id(self) -> str:
            return super().model_id + "+constant-vectors"

        def embed_documents(self, texts):
            vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
            vectors[:, 0] = 1.0
            return vectors

    return TokenizerOnly(find_default_model())


def timed(run, repeat: int) -> tuple[list[float], object]:
    answer = run()  # warm-up: page cache, the index's file list
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times, answer


def tool(command: list[str], root: Path) -> int:
    """Run grep or rg; the number of matching lines it printed."""
    # UTF-8 as Python reads it: grep's \w and -i follow the locale.
    proc = subprocess.run(
        command, cwd=root, capture_output=True, env=dict(os.environ, LC_ALL="C.UTF-8")
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{command[0]} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.count(b"\n")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, help="a folder to search instead of the stdlib")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per query (default 7)")
    args = ap.parse_args()
    if not shutil.which("rg"):
        raise SystemExit("rg (ripgrep) is missing: apt-get install ripgrep")
    os.environ["CODELAMP_HOME"] = str(CACHE / "home")
    from app.core.grep import LinePattern
    from app.core.indexer import index_project
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    root = args.corpus.resolve() if args.corpus else corpus(CACHE / "stdlib")
    started = time.perf_counter()
    with tokenizer_only() as embedder:
        result = index_project(root, embedder)
    print(
        f"index of {root}: {result.files_indexed} files read, {result.files_unchanged} "
        f"unchanged ({time.perf_counter() - started:.0f} s)"
    )
    store = ProjectStore.open(root)
    searcher = Searcher(store)
    paths = sorted(
        path
        for path, record in store.file_records(store.meta["generation"]).items()
        if record.status == "indexed"
    )
    size = sum((root / p).stat().st_size for p in paths)
    print(f"{len(paths):,} files, {size / 1e6:.1f} MB; {args.repeat} runs per query\n")

    print(
        f"{'mode':5} {'query':34} {'lines':>6} {'codelamp':>9} {'rg':>7} {'grep':>7} "
        f"{'/rg':>5} {'/grep':>6}"
    )
    figures: dict[str, dict[str, list[float]]] = {}
    for mode, query in QUERIES:
        ours, _ = timed(lambda: searcher.search(query, k=1000, mode=mode), args.repeat)  # noqa: B023
        total = searcher.last_total
        case = ["-i"] if LinePattern(query, mode == "regex").ignore_case else []
        kind = ["-F"] if mode == "text" else []
        rg = ["rg", "-n", "--no-heading", *(case or ["-s"]), *kind, "-e", query, "--", *paths]
        grep = ["grep", "-n", "-H", *case, *(kind or ["-E"]), "-e", query, "--", *paths]
        rg_times, rg_lines = timed(lambda: tool(rg, root), args.repeat)  # noqa: B023
        grep_times, grep_lines = timed(lambda: tool(grep, root), args.repeat)  # noqa: B023
        if not total == rg_lines == grep_lines:
            raise SystemExit(
                f"{query!r}: codelamp found {total} lines, rg {rg_lines}, grep {grep_lines}"
            )
        row = figures.setdefault(mode, {"codelamp": [], "rg": [], "grep": []})
        row["codelamp"] += ours
        row["rg"] += rg_times
        row["grep"] += grep_times
        med = [statistics.median(t) * 1000 for t in (ours, rg_times, grep_times)]
        print(
            f"{mode:5} {query:34} {total:6} {med[0]:7.1f}ms {med[1]:5.1f}ms {med[2]:5.1f}ms "
            f"{med[0] / med[1]:5.1f} {med[0] / med[2]:6.1f}"
        )

    print("\nall queries of a mode, every run (ms):")
    for mode, row in figures.items():
        line = "  ".join(
            f"{name} median {statistics.median(t) * 1000:.1f} p95 {p95(t) * 1000:.1f}"
            for name, t in row.items()
        )
        ratio = statistics.median(row["codelamp"]) / statistics.median(row["rg"])
        ratio_grep = statistics.median(row["codelamp"]) / statistics.median(row["grep"])
        print(f"  {mode:5} {line}  ratio to rg {ratio:.1f}, to grep {ratio_grep:.1f}")


if __name__ == "__main__":
    main()
