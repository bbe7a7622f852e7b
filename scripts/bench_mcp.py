#!/usr/bin/env python3
"""`codelamp mcp` on an indexed project of ~10k chunks: how fast it answers, and how many
tokens an agent gets per query against reading the files the results are in.

1. First search after start: a fresh server (`python -m app mcp ROOT`) per run; the time
   of its first `search` call (hybrid, so it includes loading the model), and of the start
   itself (spawn to initialized). p95 over --starts runs.
2. Later calls: every query of QUERIES once more in the last server, after its first call.
3. Tokens: the whole tool answer (JSON, what the agent reads) against every file that holds
   a result read whole, both counted with the model's tokenizer.

The project is the top-level modules of this Python's standard library (171 files in
3.11: ~10k chunks), indexed once with the default model into .cache/bench-mcp/ and reused.

    .venv/bin/python scripts/bench_mcp.py [--starts 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench-mcp"
PROJECT = CACHE / "project"
os.environ["CODELAMP_HOME"] = str(CACHE / "home")  # before the app reads it

import anyio  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

QUERIES = [
    "parse command line options and print help",
    "format a date as a string",
    "compute the differences between two sequences of lines",
    "read the members of a zip archive",
    "encode bytes as base64",
    "copy a directory tree recursively",
    "run a command in a subprocess and capture its output",
    "compare two files for equality",
    "create a temporary file that is deleted when closed",
    "a pool of worker threads",
    "wrap text to a given width",
    "parse a URL into its parts",
    "compute the median of numbers",
    "shuffle a list at random",
    "escape a string for use in a shell",
    "read a configuration file with sections",
    "send an email message over SMTP",
    "match file names against a shell pattern",
    "pretty print a nested data structure",
    "measure the execution time of small code snippets",
]


def build() -> None:
    """The project and its index, unless they are there already."""
    from app.core.embedder import Embedder
    from app.core.indexer import index_project
    from app.core.storage import NotIndexed, ProjectStore

    if not PROJECT.is_dir():
        PROJECT.mkdir(parents=True)
        for module in Path(sysconfig.get_paths()["stdlib"]).glob("*.py"):
            shutil.copy2(module, PROJECT / module.name)
    try:
        ProjectStore.open(PROJECT.resolve())
        return
    except NotIndexed:
        pass
    from app.core.default_model import resolve_model

    print(f"indexing {PROJECT} (once; it is kept in {CACHE})…", flush=True)
    with Embedder(resolve_model(None)) as embedder:
        result = index_project(PROJECT.resolve(), embedder)
    print(f"  {result.chunks_embedded + result.chunks_cached} chunks in {result.seconds:.0f} s")


def _server() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "app", "mcp", str(PROJECT.resolve())],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=str(REPO),
    )


async def one_start(later: bool) -> dict:
    """One fresh server: start, first search, and (``later``) every query once more."""
    started = time.perf_counter()
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(_server(), errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            ready = time.perf_counter()
            await session.call_tool("search", {"query": QUERIES[0]})
            first = time.perf_counter()
            answers, times = [], []
            for query in QUERIES if later else []:
                t = time.perf_counter()
                result = await session.call_tool("search", {"query": query})
                times.append(time.perf_counter() - t)
                answers.append(result.content[0].text)
            status = await session.call_tool("index_status", {})
    return {
        "start_s": ready - started,
        "first_s": first - ready,
        "later_s": times,
        "answers": answers,
        "status": json.loads(status.content[0].text),
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def tokens_saved(answers: list[str]) -> tuple[list[int], list[int]]:
    """Tokens of each answer, and of the files holding its results, read whole."""
    from app.core.default_model import resolve_model
    from app.core.embedder import Embedder

    with Embedder(resolve_model(None)) as embedder:

        def count(text: str) -> int:
            return sum(embedder.count_tokens(line) - 2 for line in text.split("\n"))

        answer_tokens, file_tokens = [], []
        for answer in answers:
            paths = {r["path"] for r in json.loads(answer)["results"]}
            answer_tokens.append(count(answer))
            file_tokens.append(
                sum(
                    count((PROJECT / p).read_text(encoding="utf-8", errors="replace"))
                    for p in paths
                )
            )
    return answer_tokens, file_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=7, help="fresh server starts")
    args = parser.parse_args()
    build()
    runs = [anyio.run(one_start, i == args.starts - 1) for i in range(args.starts)]
    status = runs[-1]["status"]
    print(f"project: {status['files']} files, {status['chunks']} chunks, model {status['model']}")
    starts = [r["start_s"] for r in runs]
    firsts = [r["first_s"] for r in runs]
    later = runs[-1]["later_s"]
    print(
        f"start to initialized: median {statistics.median(starts):.2f} s, p95 "
        f"{p95(starts):.2f} s ({len(starts)} starts)"
    )
    print(
        f"first search (hybrid, loads the model): median {statistics.median(firsts):.2f} s, "
        f"p95 {p95(firsts):.2f} s, max {max(firsts):.2f} s"
    )
    print(
        f"later searches: median {statistics.median(later) * 1000:.0f} ms, p95 "
        f"{p95(later) * 1000:.0f} ms ({len(later)} queries)"
    )
    answer_tokens, file_tokens = tokens_saved(runs[-1]["answers"])
    ratios = [f / a for a, f in zip(answer_tokens, file_tokens, strict=True)]
    print(
        f"tokens per answer (k=10, whole JSON): median {statistics.median(answer_tokens):.0f}, "
        f"max {max(answer_tokens)}; files holding the results, read whole: median "
        f"{statistics.median(file_tokens):.0f}; saving: median {statistics.median(ratios):.1f}x, "
        f"total {sum(file_tokens) / sum(answer_tokens):.1f}x"
    )


if __name__ == "__main__":
    main()
