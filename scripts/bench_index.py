#!/usr/bin/env python3
"""Indexing speed: end-to-end against the raw embedder, and a re-index with no changes.

1. Overhead: real standard-library packages are indexed from scratch (empty cache), and the
   very same chunks are embedded by the embedder alone. Reading, chunking, hashing and
   writing overlap the embedding, so the end-to-end time should be within 10% of it.
   Runs alternate (raw, index, raw, index) and medians are compared, because the machine's
   speed drifts.
   Each index also records what its ETA said, against the time that was really left,
   beside what the earlier estimate (files left x chunks per file / chunks/s) would have said.
2. No-change re-index on a generated 10,000-file tree, in-process (what the GUI and the
   watcher pay) and as a `codelamp index` command (adds interpreter start-up and imports).

    .venv/bin/python scripts/bench_index.py [--packages json email http] [--files 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

PACKAGES = ["json", "email", "http", "logging", "urllib", "importlib"]


def copy_packages(dest: Path, names: list[str]) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in names:
        shutil.copytree(
            stdlib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "test*")
        )
    return dest


class EtaLog:
    """A progress listener: what the ETA said while indexing, to hold against the time
    that was really left until the files were done (phase "finishing": the commit and
    full-text index, which no ETA counts, follow)."""

    MARKS = (0.1, 0.25, 0.5, 0.75, 0.9)

    def __init__(self) -> None:
        self.seen: list[tuple[float, float, float | None, float | None]] = []
        self.finishing = 0.0

    def __call__(self, p) -> None:
        if p.phase == "finishing":
            self.finishing = time.perf_counter()
        if p.phase == "indexing":
            # The earlier estimate: files left x chunks per file so far / chunks per second.
            by_files = (
                (p.files_total - p.files_done) * p.chunks_embedded / p.files_done / p.chunks_per_s
                if p.files_done and p.chunks_per_s
                else None
            )
            self.seen.append((time.perf_counter(), p.fraction, p.eta_s, by_files))

    def report(self, done: float) -> str:
        """Once 10% is done: the largest error of each estimate, and the ETA at a few marks;
        ``done``: when the run returned."""
        end = self.finishing
        run = end - self.seen[0][0]
        later = [s for s in self.seen if s[1] >= 0.1]
        lines = []
        for name, i in (("ETA (bytes, 30 s window)", 2), ("earlier ETA (files)", 3)):
            errors = [abs(s[i] - (end - s[0])) for s in later if s[i] is not None]
            lines.append(
                f"    {name}: max error {max(errors):.1f} s "
                f"({max(errors) / run:.0%} of {run:.0f} s indexing)"
            )
        marks = []
        for mark in self.MARKS:
            t, _, eta, _ = next(s for s in self.seen if s[1] >= mark)
            said = "-" if eta is None else f"{eta:.0f}"
            marks.append(f"{mark:.0%}: said {said} s, took {end - t:.0f} s")
        marks.append(f"then finishing {done - end:.1f} s")
        return "\n".join(lines + ["    " + "; ".join(marks)])


def overhead(embedder, corpus: Path, rounds: int) -> None:
    from app.core.cache import EmbeddingCache
    from app.core.chunking import chunk_file
    from app.core.files import FileRules, load_text
    from app.core.indexer import index_project

    texts = []
    for entry in FileRules(corpus).walk().files:
        pieces = chunk_file(entry.rel, load_text(entry), embedder.max_tokens, embedder.count_tokens)
        texts.extend(p.embed_text for p in pieces)
    unique = len(set(texts))
    raw, full = [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        embedder.embed_documents(list(dict.fromkeys(texts)))
        raw.append(time.perf_counter() - t0)
        home = Path(tempfile.mkdtemp(prefix="bench-index-home-"))
        os.environ["CODELAMP_HOME"] = str(home)
        eta = EtaLog()
        t0 = time.perf_counter()
        result = index_project(
            corpus, embedder, cache=EmbeddingCache(home / "cache.sqlite"), progress=eta
        )
        full.append(time.perf_counter() - t0)
        assert result.chunks_embedded == unique, (result.chunks_embedded, unique)
        print(f"  round {i + 1}: raw embed {raw[-1]:.1f} s, index {full[-1]:.1f} s", flush=True)
        print(eta.report(t0 + full[-1]), flush=True)
    r, f = statistics.median(raw), statistics.median(full)
    print(
        f"{unique} chunks from {corpus.name}: raw embedder {unique / r:.1f} chunks/s, "
        f"end-to-end {unique / f:.1f} chunks/s, overhead {f / r - 1:+.1%} (target <= +10%)"
    )


def make_tree(root: Path, n_files: int) -> None:
    """n files in 100-file folders; contents repeat, so the first index embeds little."""
    bodies = [
        f"def handler_{i}(request):\n    return request.get('field_{i}')\n" for i in range(50)
    ]
    for i in range(n_files):
        folder = root / f"pkg{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i % 100:02d}.py").write_text(bodies[i % len(bodies)])
    (root / ".gitignore").write_text("*.log\nbuild/\n")


def no_change(embedder, root: Path, repeats: int) -> None:
    from app.core.indexer import index_project

    os.environ["CODELAMP_HOME"] = tempfile.mkdtemp(prefix="bench-index-home-")
    t0 = time.perf_counter()
    first = index_project(root, embedder)
    print(
        f"10k tree first index: {time.perf_counter() - t0:.1f} s "
        f"({first.files_indexed} files, {first.chunks_embedded} chunks embedded)"
    )
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        again = index_project(root, embedder)
        times.append(time.perf_counter() - t0)
        assert again.files_indexed == 0 and again.files_unchanged == first.files_indexed
    print(
        f"re-index, nothing changed, in-process: median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s (target <= 1 s)"
    )
    cli = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "app", "index", str(root), "--model", str(embedder.info.path)],
            check=True,
            capture_output=True,
        )
        cli.append(time.perf_counter() - t0)
    print(
        f"re-index, nothing changed, `codelamp index` command: median "
        f"{statistics.median(cli):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--packages", nargs="+", default=PACKAGES)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.setdefault("CODELAMP_HOME", tempfile.mkdtemp(prefix="bench-index-home-"))

    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder

    embedder = Embedder(install_default_model().path)
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    overhead(embedder, copy_packages(work / "stdlib", args.packages), args.rounds)
    make_tree(work / "tree", args.files)
    no_change(embedder, work / "tree", repeats=5)


if __name__ == "__main__":
    main()
