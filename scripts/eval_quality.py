#!/usr/bin/env python3
"""Search quality on a CodeSearchNet-style task built from the CPython standard library.

Queries are the first paragraphs of function docstrings (at least 3 words; no tests, no
dunders, functions of at least 3 lines). Every docstring is removed from the source that
gets indexed, so the answer cannot be found by matching the query against its own text.
A hit is a result that overlaps at least half of the function's lines.

CodeLamp's chunking is compared with a baseline of fixed 30-line windows (stride 15),
indexed with the same model and searched with the same fusion. MRR@10 and Recall@10 are
reported for lexical, vector and hybrid search.

    .venv/bin/python scripts/eval_quality.py [--queries 500] [--write docs/QUALITY.md]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import random
import shutil
import statistics
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "ensurepip"}
WINDOW, STRIDE = 30, 15


@dataclass
class Target:
    path: str
    start: int
    end: int
    query: str


def strip_docstrings(source: str) -> tuple[str, list[tuple[ast.AST, str, int]]]:
    """Blank out every docstring, keeping line numbers; return the documented functions."""
    tree = ast.parse(source)
    lines = source.split("\n")
    documented = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef |
                          ast.AsyncFunctionDef):  # fmt: skip
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            continue
        expr = node.body[0]
        for i in range(expr.lineno - 1, expr.end_lineno):
            lines[i] = ""
        if len(node.body) == 1:  # keep the body valid
            lines[expr.lineno - 1] = " " * expr.col_offset + "pass"
        if not isinstance(node, ast.Module | ast.ClassDef):
            code_lines = node.end_lineno - node.lineno + 1 - (expr.end_lineno - expr.lineno + 1)
            documented.append((node, doc, code_lines))
    return "\n".join(lines), documented


def first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


def build_corpus(dest: Path, wanted: int, seed: int) -> list[Target]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py")
                   if not SKIP_DIRS & set(p.relative_to(stdlib).parts))  # fmt: skip
    random.Random(seed).shuffle(files)
    targets: list[Target] = []
    for path in files:
        rel = path.relative_to(stdlib).as_posix()
        if rel.startswith("test_") or "/test_" in rel:
            continue
        try:
            source = path.read_text(encoding="utf-8")
            stripped, documented = strip_docstrings(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        file_targets = [
            Target(rel, node.lineno, node.end_lineno, first_paragraph(doc))
            for node, doc, code_lines in documented
            if code_lines >= 3 and not node.name.startswith("__")
            and not node.name.startswith("test") and len(first_paragraph(doc).split()) >= 3
        ]  # fmt: skip
        if not file_targets:
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(stripped, encoding="utf-8")
        targets.extend(file_targets)
        if len(targets) >= wanted:
            break
    random.Random(seed).shuffle(targets)
    return targets[:wanted]


def index_windows(root: Path, embedder, store_root: Path) -> None:
    """The baseline: 30-line windows every 15 lines, same model, same store and search."""
    from app.core.cache import EmbeddingCache
    from app.core.lexical import fts_text
    from app.core.store import ModelRecord, ProjectStore, chunks_schema

    rows = {k: [] for k in ("path", "start_line", "end_line", "def_start", "def_end", "text",
                            "fts")}  # fmt: skip
    embed_texts = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        lines = path.read_text(encoding="utf-8").split("\n")
        for start in range(0, max(1, len(lines) - WINDOW + STRIDE), STRIDE):
            text = "\n".join(lines[start : start + WINDOW])
            if not text.strip():
                continue
            rows["path"].append(rel)
            rows["start_line"].append(start + 1)
            rows["end_line"].append(min(start + WINDOW, len(lines)))
            rows["def_start"].append(start + 1)
            rows["def_end"].append(min(start + WINDOW, len(lines)))
            rows["text"].append(text)
            rows["fts"].append(fts_text(rel, "", text))
            embed_texts.append(rel + "\n" + text)
    cache = EmbeddingCache()  # reruns with the same CODELAMP_HOME skip the embedding
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in embed_texts]
    known = cache.get_many(embedder.model_id, keys)
    todo = [i for i, k in enumerate(keys) if k not in known]
    fresh = embedder.embed_documents([embed_texts[i] for i in todo]) if todo else []
    cache.put_many(embedder.model_id, {keys[i]: v for i, v in zip(todo, fresh, strict=True)})
    known.update({keys[i]: v for i, v in zip(todo, fresh, strict=True)})
    vectors = np.stack([known[k] for k in keys])
    n, dims = len(embed_texts), embedder.dim
    store, _ = ProjectStore.open_for_writing(store_root)
    gen = store.prepare(embedder.model_id, dims)
    table = pa.Table.from_pydict({
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dims),
        **rows, "language": ["python"] * n, "symbol": [""] * n,
        "content_hash": [str(i) for i in range(n)],
    }, schema=chunks_schema(dims))  # fmt: skip
    store.write(gen, [], table, [], [])
    store.finish(gen, ModelRecord.of(embedder))


def is_hit(result, target: Target) -> bool:
    """The result covers at least half of the function's lines."""
    overlap = min(result.end_line, target.end) - max(result.start_line, target.start) + 1
    return result.path == target.path and overlap >= (target.end - target.start + 1) / 2


def evaluate(searcher, targets: list[Target], mode: str) -> tuple[float, float]:
    reciprocal, found = [], []
    for t in targets:
        results = searcher.search(t.query, k=10, mode=mode)
        rank = next((i for i, r in enumerate(results, 1) if is_hit(r, t)), None)
        reciprocal.append(1 / rank if rank else 0.0)
        found.append(1.0 if rank else 0.0)
    return statistics.mean(reciprocal), statistics.mean(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="GGUF file (default: the default model)")
    parser.add_argument("--write", type=Path, help="also write the results as Markdown")
    parser.add_argument("--work", type=Path, help="folder for the corpus and baseline "
                        "(default: a new temp folder); reuse it with the same CODELAMP_HOME "
                        "to skip re-indexing")
    args = parser.parse_args()
    os.environ.setdefault("CODELAMP_HOME", tempfile.mkdtemp(prefix="codelamp-eval-"))

    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder
    from app.core.indexer import index_project
    from app.core.search import Searcher
    from app.core.store import ProjectStore, forget

    work = args.work or Path(tempfile.mkdtemp(prefix="codelamp-eval-corpus-"))
    corpus = work / "stdlib"
    shutil.rmtree(corpus, ignore_errors=True)
    targets = build_corpus(corpus, args.queries, args.seed)
    n_files = sum(1 for _ in corpus.rglob("*.py"))
    print(f"{len(targets)} queries over {n_files} stdlib files (seed {args.seed})")
    embedder = Embedder(args.model or install_default_model().path)

    t0 = time.perf_counter()
    result = index_project(corpus, embedder)
    chunks = ProjectStore.open(corpus).chunks_table().count_rows()
    print(f"CodeLamp chunks: {chunks} in {time.perf_counter() - t0:.0f} s "
          f"({result.chunks_embedded} embedded)")
    baseline_root = work / "windows"
    baseline_root.mkdir(exist_ok=True)
    forget(baseline_root)  # always rebuilt: it is written directly, not incrementally
    t0 = time.perf_counter()
    index_windows(corpus, embedder, baseline_root)
    windows = ProjectStore.open(baseline_root).chunks_table().count_rows()
    print(f"baseline windows: {windows} in {time.perf_counter() - t0:.0f} s")

    systems = {"CodeLamp": Searcher(ProjectStore.open(corpus), embedder),
               "30-line windows": Searcher(ProjectStore.open(baseline_root), embedder)}
    table: dict[tuple[str, str], tuple[float, float]] = {}
    for name, searcher in systems.items():
        for mode in ("lexical", "vector", "hybrid"):
            table[name, mode] = evaluate(searcher, targets, mode)
            mrr, recall = table[name, mode]
            print(f"{name:16s} {mode:8s} MRR@10 {mrr:.3f}  Recall@10 {recall:.3f}", flush=True)
    gain = table["CodeLamp", "hybrid"][0] / table["30-line windows", "hybrid"][0] - 1
    print(f"hybrid MRR@10 gain over the window baseline: {gain:+.1%} (target +20%)")
    if args.write:
        write_report(args.write, table, gain, len(targets), n_files, chunks, windows,
                     embedder.model_id, args.seed)  # fmt: skip


NOTES = "\n## Notes\n"  # from here on the report is written by hand, and kept on rewrite


def write_report(path, table, gain, n_queries, n_files, chunks, windows, model, seed):
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    notes = old[old.index(NOTES):] if NOTES in old else ""
    rows = "\n".join(
        f"| {name} | {mode} | {mrr:.3f} | {recall:.3f} |"
        for (name, mode), (mrr, recall) in table.items()
    )
    path.write_text(f"""# Search quality

Measured by `scripts/eval_quality.py` (seed {seed}): {n_queries} queries over {n_files}
files of the CPython {sysconfig.get_python_version()} standard library, model `{model}`.

The task follows CodeSearchNet: each query is the first paragraph of a function's docstring
(at least 3 words; no tests or dunders; at least 3 lines of code), and every docstring is
removed from the indexed source. A result is a hit when it overlaps at least half of the
function's lines. The baseline indexes fixed 30-line windows (stride 15) with the same
model, store and fusion; CodeLamp indexed {chunks} chunks, the baseline {windows} windows.

| chunking | mode | MRR@10 | Recall@10 |
|---|---|---|---|
{rows}

Hybrid MRR@10 of CodeLamp over the window baseline: **{gain:+.1%}** (target: +20%).
{notes}""", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
