#!/usr/bin/env python3
"""Search quality on several tasks, so that CodeLamp is not tuned to one of them.

* stdlib: the CPython standard library, CodeSearchNet-style. Queries are the first
  paragraphs of function docstrings, and every docstring is removed from the source that
  gets indexed, so the answer cannot be found by matching the query against its own text.
* js: ramda, immer and ky from npm (pinned tarballs). Queries are the summaries of the
  ``/** */`` comments right before functions (extracted by mine_training_data.py), and every
  such comment is blanked in the indexed source.
* go: cobra, mux and logrus as Debian packages them (pinned .debs). Queries are the first
  paragraphs of the ``//`` doc comments of functions and methods, blanked likewise.
* nl: how-do-I questions about one pinned PyPI project, from scripts/eval_data/nl_queries.json;
  the project is indexed as it is, docstrings kept.

In the first three, queries have at least 3 words and answer a function of at least 3 lines
of code, not a test, and files are drawn at random (--seed) until --queries targets are found.
A hit is a result that overlaps at least half of the lines of an answer.

CodeLamp's chunking is compared with a baseline of fixed 30-line windows (stride 15),
indexed with the same model and searched with the same fusion. MRR@10 and Recall@10 are
reported for lexical, vector and hybrid search, for each --model (lexical search uses none).

    .venv/bin/python scripts/eval_quality.py [--task all] [--model GGUF ...] [--queries 500]
        [--write docs/QUALITY.md]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import mine_training_data as mine
import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # evaluate the app beside this script
CACHE = REPO / ".cache" / "eval-corpora"  # downloads, kept between runs
NL_QUERIES = REPO / "scripts" / "eval_data" / "nl_queries.json"
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "ensurepip"}
WINDOW, STRIDE = 30, 15
MIN_WORDS, MIN_LINES = 3, 3

# The js and go tasks' packages, kept unseen by training (training_data/reserved-future-eval.txt).
NPM = {  # name: version, the tarball's sha256, the folder read (one copy of the sources)
    "ramda": (
        "0.32.0",
        "e99a665207ddba7c1177c8062f607c37d31ac376674d41200418627428863967",
        "es/",
    ),  # es/ and src/ hold the same modules, as ES and CommonJS modules
    "immer": (
        "11.2.13",
        "7aafee379780f7b290fd76c5f57fea4ef9f2599c021ae70038739c6e5e96009a",
        "src/",
    ),  # the TypeScript sources
    "ky": (
        "2.1.0",
        "fbebae87fe4cebeec6e38bb700716158eb92ba0b3ef3a523b7182488d9951a85",
        "distribution/",
    ),  # compiled JS only: ky ships no sources
}
DEBS = {  # Go module: Debian (bookworm) package, version, the .deb's sha256
    "github.com/spf13/cobra": (
        "golang-github-spf13-cobra-dev",
        "1.6.1-1",
        "4f5d20855133319beef3c5b49d3c21a0406f270bf94fb4b6f4d406b691283cb2",
    ),
    "github.com/gorilla/mux": (
        "golang-github-gorilla-mux-dev",
        "1.8.0-1",
        "0880a4019fe68496a0e0a749c2948c029e489f49edd448bed2fedaba33f848c2",
    ),
    "github.com/sirupsen/logrus": (
        "golang-github-sirupsen-logrus-dev",
        "1.9.0-1",
        "51fb87b05452e96be38b97c03d5f997f6ce3a144421f911338d6c4ea2e8aa118",
    ),
}
GO_SKIP_DIRS = {"vendor", "testdata", "test", "tests", "testutils"}


@dataclass(frozen=True)
class Span:
    path: str
    start: int  # 1-based, inclusive
    end: int


@dataclass(frozen=True)
class Target:
    query: str
    answers: tuple[Span, ...]  # any one of them will do


def good_target(name: str, query: str, code_lines: int) -> bool:
    """The stdlib task's rules, for every task built from doc comments."""
    return (
        code_lines >= MIN_LINES
        and len(query.split()) >= MIN_WORDS
        and not name.startswith("__")
        and not name.startswith("test")
    )


def blank(source: bytes, spans: list[tuple[int, int]]) -> str:
    """``source`` without these byte ranges but with their line breaks: lines keep their
    numbers, and a line left blank is empty."""
    parts, last = [], 0
    for start, end in sorted(spans):
        parts += [source[last:start], b"\n" * source.count(b"\n", start, end)]
        last = end
    lines = (b"".join(parts) + source[last:]).decode("utf-8").split("\n")
    return "\n".join(line if line.strip() else "" for line in lines)


def nodes(root) -> Iterator:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


# --- stdlib -------------------------------------------------------------------------------


def strip_docstrings(source: str) -> tuple[str, list[tuple[ast.AST, str, int]]]:
    """Blank out every docstring, keeping line numbers; return the documented functions."""
    tree = ast.parse(source)
    lines = source.split("\n")
    documented = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
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


def stdlib_targets(rel: str, source: str) -> tuple[str, list[Target]]:
    if rel.startswith("test_") or "/test_" in rel:
        return source, []
    stripped, documented = strip_docstrings(source)
    return stripped, [
        Target(first_paragraph(doc), (Span(rel, node.lineno, node.end_lineno),))
        for node, doc, code_lines in documented
        if good_target(node.name, first_paragraph(doc), code_lines)
    ]


def stdlib_files() -> list[tuple[str, bytes]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p for p in stdlib.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(stdlib).parts)
    )
    return [(p.relative_to(stdlib).as_posix(), p.read_bytes()) for p in files]


# --- js -----------------------------------------------------------------------------------


def js_targets(rel: str, source: str) -> tuple[str, list[Target]]:
    """Functions after a ``/** */`` comment; every such comment is blanked."""
    from app.core.languages import language_for, parser_for

    data, language = source.encode(), language_for(rel)
    targets = [
        Target(doc.query, (Span(rel, doc.outer.start_point.row + 1, doc.outer.end_point.row + 1),))
        for doc in mine.js_documented(data, language, wrapped=True)
        if good_target(
            doc.symbol.split(".")[-1],
            doc.query,
            doc.outer.end_point.row - doc.outer.start_point.row + 1,
        )
    ]
    jsdoc = [
        (n.start_byte, n.end_byte)
        for n in nodes(parser_for(language).parse(data).root_node)
        if n.type == "comment" and n.text.startswith(b"/**")
    ]
    return blank(data, jsdoc), targets


def npm_files() -> list[tuple[str, bytes]]:
    files = []
    for name, (version, sha256, folder) in NPM.items():
        npm_pack = ["npm", "pack", "--silent", "--ignore-scripts", f"{name}@{version}"]
        archive = fetch(f"{name}-{version}.tgz", sha256, npm_pack)
        members = {k: v for k, v in mine.archive_members(archive) if k.startswith(folder)}
        for path in sorted(mine.npm_sources(list(members))):
            if not mine.looks_generated(members[path].decode("utf-8", "replace")):
                files.append((f"{name}/{path}", members[path]))
    return files


# --- go -----------------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"//(?:[a-z0-9]+:\S|line |export |extern )")


def go_doc(comments: list[str]) -> str:
    """The first paragraph of a doc comment, as written (directives left out)."""
    lines = []
    for text in comments:
        if text.startswith("/*"):
            lines += text[2:].removesuffix("*/").split("\n")
        elif not _DIRECTIVE.match(text):
            lines.append(text[2:])
    return " ".join(re.split(r"\n\s*\n", "\n".join(lines).strip(), maxsplit=1)[0].split())


def go_targets(rel: str, source: str) -> tuple[str, list[Target]]:
    """Functions and methods after a doc comment; every top-level doc comment is blanked."""
    from app.core.languages import parser_for

    data = source.encode()
    children = parser_for("go").parse(data).root_node.named_children
    targets, docs = [], []
    for i, node in enumerate(children):
        if node.type == "comment":
            continue
        group, row = [], node.start_point.row
        for comment in reversed(children[:i]):
            line_start = data.rfind(b"\n", 0, comment.start_byte) + 1
            if (
                comment.type != "comment"
                or comment.end_point.row != row - 1
                or data[line_start : comment.start_byte].strip()
            ):
                break
            group.insert(0, comment)
            row = comment.start_point.row
        if not group:
            continue
        docs += [(c.start_byte, c.end_byte) for c in group]
        name = node.child_by_field_name("name")
        if node.type not in ("function_declaration", "method_declaration") or name is None:
            continue
        query = go_doc([c.text.decode("utf-8") for c in group])
        span = Span(rel, node.start_point.row + 1, node.end_point.row + 1)
        if good_target(name.text.decode(), query, span.end - span.start + 1):
            targets.append(Target(query, (span,)))
    return blank(data, docs), targets


def go_files() -> list[tuple[str, bytes]]:
    files = []
    for module, (package, version, sha256) in DEBS.items():
        deb = fetch(
            f"{package}_{version}_all.deb",
            sha256,
            ["apt-get", "download", "--quiet", f"{package}={version}"],
        )
        tar = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True
        ).stdout
        prefix = f"./usr/share/gocode/src/{module}/"
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            for member in sorted(t.getmembers(), key=lambda m: m.name):
                path = PurePosixPath(member.name.removeprefix(prefix))
                if (
                    member.isfile()
                    and member.name.startswith(prefix)
                    and path.suffix == ".go"
                    and not path.name.endswith("_test.go")
                    and not path.name.startswith("test")
                    and not GO_SKIP_DIRS & set(path.parts[:-1])
                ):
                    files.append(
                        (f"{module.rsplit('/', 1)[1]}/{path}", t.extractfile(member).read())
                    )
    return files


# --- Building the tasks ---------------------------------------------------------------------


def fetch(file: str, sha256: str, command: list[str]) -> Path:
    """``CACHE/file``, fetched once by ``command`` (run in an empty folder), refused unless
    its sha256 is the one pinned."""
    path = CACHE / file
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
            if result.returncode != 0 or not (Path(tmp) / file).is_file():
                output = (result.stderr or result.stdout).strip()[-500:]
                sys.exit(f"`{' '.join(command)}` did not give {file}: {output}")
            os.replace(Path(tmp) / file, path)
    digest = mine.sha256_file(path)
    if digest != sha256:
        sys.exit(f"{path}: sha256 {digest}, but {sha256} is pinned; refusing to evaluate on it")
    return path


def sample(
    files: list[tuple[str, bytes]],
    targets_of: Callable[[str, str], tuple[str, list]],
    dest: Path,
    wanted: int,
    seed: int,
) -> list[Target]:
    """Files in a random order until ``wanted`` targets; those files go to ``dest``, as
    ``targets_of`` rewrites them (their documentation blanked)."""
    random.Random(seed).shuffle(files)
    targets: list[Target] = []
    for rel, data in files:
        try:
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            indexed, found = targets_of(rel, text)
        except (SyntaxError, ValueError):  # UnicodeDecodeError too
            continue
        if not found:
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(indexed, encoding="utf-8")
        targets.extend(found)
        if len(targets) >= wanted:
            break
    random.Random(seed).shuffle(targets)
    return targets[:wanted]


def build_stdlib(dest: Path, args) -> tuple[list[Target], str]:
    targets = sample(stdlib_files(), stdlib_targets, dest, args.queries, args.seed)
    return targets, (
        f"the CPython {sysconfig.get_python_version()} standard library. Each query is the first "
        "paragraph of a function's docstring, and every docstring is removed from the indexed "
        "source (CodeSearchNet's method)"
    )


def build_js(dest: Path, args) -> tuple[list[Target], str]:
    targets = sample(npm_files(), js_targets, dest, args.queries, args.seed)
    packages = ", ".join(f"{name} {version}" for name, (version, _, _) in NPM.items())
    return targets, (
        f"{packages} from npm (TypeScript sources where shipped; ramda's ES modules; ky's "
        "compiled JavaScript). Each query is the summary of the `/** */` comment right before a "
        "function, method or function assigned to a name, and every such comment is blanked in "
        "the indexed source"
    )


def build_go(dest: Path, args) -> tuple[list[Target], str]:
    targets = sample(go_files(), go_targets, dest, args.queries, args.seed)
    modules = ", ".join(f"{module} {version}" for module, (_, version, _) in DEBS.items())
    return targets, (
        f"{modules} (as Debian bookworm packages them). Each query is the first "
        "paragraph of a function's or method's `//` doc comment, as written (\"Foo does X.\"), "
        "and every top-level doc comment is blanked in the indexed source"
    )


def build_nl(dest: Path, args) -> tuple[list[Target], str] | None:
    """scripts/eval_data/nl_queries.json: questions about one pinned project, whose answers
    are line ranges in its unmodified sources (paths from the archive's root, an sdist's top
    folder left out). The project's .py files are indexed as they are."""
    if not args.nl_queries.is_file():
        print(f"nl: skipped, {args.nl_queries} is missing")
        return None
    spec = json.loads(args.nl_queries.read_text(encoding="utf-8"))
    source = args.nl_queries.resolve()
    source = source.relative_to(REPO) if source.is_relative_to(REPO) else source
    project = spec["project"]
    if project["ecosystem"] != "pypi" or not project["file"].endswith((".whl", ".tar.gz")):
        sys.exit(f"nl: only PyPI wheels and .tar.gz sdists can be evaluated, not {project}")
    binary = ["--only-binary" if project["file"].endswith(".whl") else "--no-binary", ":all:"]
    archive = fetch(
        project["file"],
        project["sha256"],
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            *binary,
            "-d",
            ".",
            f"{project['name']}=={project['version']}",
        ],
    )
    lengths = {}
    for path, data in mine.archive_members(archive):
        if path.endswith(".py"):
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            (dest / path).write_bytes(data)
            lengths[path] = data.count(b"\n") + 1
    targets = []
    for question in spec["queries"]:
        answers = tuple(Span(a["path"], a["start"], a["end"]) for a in question["answers"])
        for a in answers:
            if not 1 <= a.start <= a.end <= lengths.get(a.path, 0):
                sys.exit(f"nl: {a} is not in {project['file']} ({question['query']!r})")
        targets.append(Target(question["query"], answers))
    return targets, (
        f"{project['name']} {project['version']} ({project['file']}) from PyPI, indexed as it is. "
        'The queries are questions a user would ask ("how do I ..."), written with their '
        f"answers in {source}; a result is a hit when it overlaps half of one of the answers"
    )


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    suffixes: tuple[str, ...]
    build: Callable[[Path, argparse.Namespace], tuple[list[Target], str] | None]


TASKS = {
    t.name: t
    for t in (
        Task("stdlib", "Python standard library", (".py",), build_stdlib),
        Task(
            "js",
            "JavaScript and TypeScript",
            (".js", ".jsx", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".tsx"),
            build_js,
        ),
        Task("go", "Go", (".go",), build_go),
        Task("nl", "Natural-language questions", (".py",), build_nl),
    )
}


# --- Indexing and scoring -------------------------------------------------------------------


def index_windows(root: Path, suffixes: tuple[str, ...], embedder, store_root: Path) -> None:
    """The baseline: 30-line windows every 15 lines, same model, same store and search."""
    from app.core.cache import EmbeddingCache
    from app.core.languages import language_for
    from app.core.lexical import fts_text
    from app.core.storage import ModelRecord, chunks_schema, open_for_writing

    rows = {
        k: []
        for k in (
            "path",
            "start_line",
            "end_line",
            "def_start",
            "def_end",
            "text",
            "fts",
            "language",
        )
    }
    embed_texts = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in suffixes and p.is_file()):
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
            rows["language"].append(language_for(rel))
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
    store, _ = open_for_writing(store_root)
    gen = store.prepare(embedder.model_id, dims)
    table = pa.Table.from_pydict(
        {
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dims),
            **rows,
            "symbol": [""] * n,
            "content_hash": [str(i) for i in range(n)],
        },
        schema=chunks_schema(dims),
    )
    store.write(gen, [], table, [], [])
    store.finish(gen, ModelRecord.of(embedder))


def is_hit(result, answer: Span) -> bool:
    """The result covers at least half of the answer's lines."""
    overlap = min(result.end_line, answer.end) - max(result.start_line, answer.start) + 1
    return result.path == answer.path and overlap >= (answer.end - answer.start + 1) / 2


def evaluate(searcher, targets: list[Target], mode: str) -> tuple[float, float]:
    reciprocal, found = [], []
    for t in targets:
        results = searcher.search(t.query, k=10, mode=mode)
        rank = next(
            (i for i, r in enumerate(results, 1) if any(is_hit(r, a) for a in t.answers)), None
        )
        reciprocal.append(1 / rank if rank else 0.0)
        found.append(1.0 if rank else 0.0)
    return statistics.mean(reciprocal), statistics.mean(found)


@dataclass
class Outcome:
    task: Task
    about: str
    queries: int
    files: int
    chunks: int
    windows: int
    table: dict[tuple[str, str, str], tuple[float, float]]  # (model, chunking, mode) -> figures


def run_task(task: Task, embedders: list, work: Path, args) -> Outcome | None:
    from app.core.indexer import index_project
    from app.core.project import forget
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    corpus, baseline = work / task.name / "corpus", work / task.name / "windows"
    shutil.rmtree(corpus, ignore_errors=True)
    built = task.build(corpus, args)
    if built is None:
        return None
    targets, about = built
    n_files = sum(1 for p in corpus.rglob("*") if p.suffix in task.suffixes)
    print(
        f"{task.name}: {len(targets)} queries over {n_files} files (seed {args.seed})", flush=True
    )
    table: dict[tuple[str, str, str], tuple[float, float]] = {}
    counts = []
    for embedder in embedders:
        t0 = time.perf_counter()
        result = index_project(corpus, embedder)
        chunks = ProjectStore.open(corpus).chunks().count()
        print(
            f"  {embedder.model_id}: CodeLamp chunks: {chunks} in "
            f"{time.perf_counter() - t0:.0f} s ({result.chunks_embedded} embedded)"
        )
        baseline.mkdir(parents=True, exist_ok=True)
        forget(baseline)  # always rebuilt: it is written directly, not incrementally
        t0 = time.perf_counter()
        index_windows(corpus, task.suffixes, embedder, baseline)
        windows = ProjectStore.open(baseline).chunks().count()
        print(f"  baseline windows: {windows} in {time.perf_counter() - t0:.0f} s")
        if counts and counts[0] != (chunks, windows):
            print("  (other chunks than the first model's: the lexical rows are that model's)")
        counts.append((chunks, windows))
        systems = {
            "CodeLamp": Searcher(ProjectStore.open(corpus), embedder),
            "30-line windows": Searcher(ProjectStore.open(baseline), embedder),
        }
        for chunking, searcher in systems.items():
            # Lexical search uses no model: the same for every model, measured once.
            for mode in ("lexical", "vector", "hybrid")[len(counts) > 1 :]:
                model = "(any)" if mode == "lexical" else embedder.model_id
                table[model, chunking, mode] = mrr, recall = evaluate(searcher, targets, mode)
                print(
                    f"  {model:36s} {chunking:16s} {mode:8s} MRR@10 {mrr:.3f}  "
                    f"Recall@10 {recall:.3f}",
                    flush=True,
                )
        print(f"  hybrid MRR@10 over the window baseline: {gain(table, embedder.model_id):+.1%}")
        if args.ranking_study and embedder is embedders[-1]:
            ranking_study(task, corpus, targets, embedder)
    return Outcome(task, about, len(targets), n_files, *counts[0], table)


# --- The ranking signals, one at a time (--ranking-study) ---------------------------------


def named_targets(store, targets: list[Target], words: bool) -> list[Target]:
    """The same answers asked for by name: the definition's own name (``urlsplit``), or with
    ``words`` its name's words (``url split``, names of two words or more only). Only names
    that one definition in the corpus has."""
    from app.core.lexical import identifier_words

    rows = store.chunks().scan(["path", "def_start", "def_end", "symbol"]).to_pylist()
    name_of = {
        (r["path"], r["def_end"]): r["symbol"].rsplit(".", 1)[-1] for r in rows if r["symbol"]
    }
    defs = {(r["path"], r["def_start"], r["symbol"]) for r in rows if r["symbol"]}
    uses = Counter(symbol.rsplit(".", 1)[-1].lower() for _, _, symbol in defs)
    out = []
    for t in targets:
        name = name_of.get((t.answers[0].path, t.answers[0].end))
        if not name or uses[name.lower()] != 1:
            continue
        if words:
            parts = identifier_words(name)
            if len(parts) >= 2:
                out.append(Target(" ".join(parts), t.answers))
        else:
            out.append(Target(name, t.answers))
    return out


def ranking_variants() -> dict[str, object]:
    """No signal, each signal alone, the default, and the default without each signal."""
    from dataclasses import fields, replace

    from app.core.ranking import Ranking

    default, off = Ranking(), Ranking.off()
    variants = {"no signal": off}
    for f in fields(Ranking):
        if getattr(default, f.name) != getattr(off, f.name):
            variants[f"only {f.name}"] = replace(off, **{f.name: getattr(default, f.name)})
    variants["all (the default)"] = default
    for f in fields(Ranking):
        if getattr(default, f.name) != getattr(off, f.name):
            variants[f"all but {f.name}"] = replace(default, **{f.name: getattr(off, f.name)})
    return variants


def with_tests(corpus: Path, dest: Path) -> Path:
    """The stdlib corpus plus the standard library's own tests of its modules: tests that
    call the answers by name, as in a real project."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(corpus, dest)
    for name in sorted({Path(p.relative_to(corpus).parts[0]).stem for p in corpus.rglob("*.py")}):
        for test in (stdlib / "test" / f"test_{name}.py", stdlib / "test" / f"test_{name}"):
            if test.is_file():
                (dest / "test").mkdir(exist_ok=True)
                shutil.copy(test, dest / "test" / test.name)
            elif test.is_dir():
                shutil.copytree(
                    test,
                    dest / "test" / test.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.txt"),
                )
    return dest


def ranking_study(task: Task, corpus: Path, targets: list[Target], embedder) -> None:
    from app.core.indexer import index_project
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    store = ProjectStore.open(corpus)
    stores = dict.fromkeys(("documentation", "by name", "name's words"), store)
    sets = {
        "documentation": targets,
        "by name": named_targets(store, targets, False),
        "name's words": named_targets(store, targets, True),
    }
    if task.name == "stdlib":
        tested = with_tests(corpus, corpus.parent / "with-tests")
        index_project(tested, embedder)
        stores["with its tests"], sets["with its tests"] = ProjectStore.open(tested), targets
    sizes = ", ".join(f"{name} {len(t)}" for name, t in sets.items())
    print(f"  ranking signals, hybrid MRR@10 ({sizes} queries):")
    for label, ranking in ranking_variants().items():
        figures = "  ".join(
            f"{evaluate(Searcher(stores[name], embedder, ranking), t, 'hybrid')[0]:.3f}"
            if t
            else "  -  "
            for name, t in sets.items()
        )
        print(f"    {label:28s} {figures}", flush=True)


def gain(table, model: str) -> float:
    return table[model, "CodeLamp", "hybrid"][0] / table[model, "30-line windows", "hybrid"][0] - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=[*TASKS, "all"], default="all")
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        help="GGUF file; repeat to compare models (default: the default model)",
    )
    parser.add_argument(
        "--queries", type=int, default=500, help="queries per task (nl: all of its own)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--nl-queries",
        type=Path,
        default=NL_QUERIES,
        help="the nl task's questions and answers (default: %(default)s)",
    )
    parser.add_argument(
        "--write",
        type=Path,
        help="also write the results as Markdown (the "
        "sections of tasks not run, and the Notes, are kept)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the figures into the "
        "default model's sidecar (resources/models), when it was evaluated",
    )
    parser.add_argument(
        "--ranking-study",
        action="store_true",
        help="also measure each "
        "ranking signal, alone and left out, on the task's queries and on "
        "queries that name the answer (with the last --model)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="folder for the corpora and baselines "
        "(default: a new temp folder); reuse it with the same CODELAMP_HOME "
        "to skip re-indexing",
    )
    args = parser.parse_args()
    os.environ.setdefault("CODELAMP_HOME", tempfile.mkdtemp(prefix="codelamp-eval-"))

    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder

    models = args.model or [install_default_model().path]
    embedders = [Embedder(model) for model in models]
    work = args.work or Path(tempfile.mkdtemp(prefix="codelamp-eval-corpus-"))
    tasks = list(TASKS.values()) if args.task == "all" else [TASKS[args.task]]
    outcomes = [o for t in tasks if (o := run_task(t, embedders, work, args))]
    if args.write and outcomes:
        write_report(args.write, outcomes, args.seed)
    if args.record and outcomes:
        record(outcomes, embedders)


def record(outcomes: list[Outcome], embedders: list) -> None:
    """The figures go into the default model's sidecar (its provenance), next to those of
    every other model compared in the same run."""
    from app.core import default_model as dm

    shipped = dm.find_default_model()
    default = next((e for e in embedders if shipped and Path(e.model_path) == shipped), None)
    if default is None:
        sys.exit("--record: the default model was not among the models evaluated")
    figures = {}
    for o in outcomes:
        models = {
            e.model_id: {
                mode: round(o.table[e.model_id, "CodeLamp", mode][0], 3)
                for mode in ("vector", "hybrid")
            }
            for e in embedders
        }
        lexical = round(o.table["(any)", "CodeLamp", "lexical"][0], 3)
        figures[o.task.name] = {"queries": o.queries, "lexical": lexical, **models}
    sidecar = dm.sidecar_path(shipped)
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    meta["evaluation"] = {"script": "scripts/eval_quality.py", "metric": "MRR@10", **figures}
    sidecar.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"recorded in {sidecar}")


NOTES = "\n## Notes\n"  # from here on the report is written by hand, and kept on rewrite


def section(o: Outcome) -> str:
    models = list(dict.fromkeys(model for model, _, _ in o.table if model != "(any)"))
    rows = []
    for chunking in ("CodeLamp", "30-line windows"):
        keys = [("(any)", chunking, "lexical")]
        keys += [(model, chunking, mode) for model in models for mode in ("vector", "hybrid")]
        rows += [
            f"| {chunking} | {'—' if k[0] == '(any)' else f'`{k[0]}`'} | {k[2]} | "
            f"{o.table[k][0]:.3f} | {o.table[k][1]:.3f} |"
            for k in keys
        ]
    rows = "\n".join(rows)
    gains = ", ".join(f"**{gain(o.table, m):+.1%}** with `{m}`" for m in models)
    about = textwrap.fill(
        f"{o.queries} queries over {o.files} files of {o.about}. CodeLamp "
        f"indexed {o.chunks} chunks, the baseline {o.windows} windows.",
        92,
        break_on_hyphens=False,
    )
    gains = textwrap.fill(
        f"Hybrid MRR@10 of CodeLamp over the window baseline: {gains}.", 92, break_on_hyphens=False
    )
    return f"""## {o.task.name}: {o.task.title}

{about}

| chunking | model | mode | MRR@10 | Recall@10 |
|---|---|---|---|---|
{rows}

{gains}
"""


def write_report(path: Path, outcomes: list[Outcome], seed: int) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    notes = old[old.index(NOTES) :] if NOTES in old else ""
    kept = {
        s.split(":", 1)[0]: "## " + s.rstrip() + "\n"
        for s in old[: len(old) - len(notes)].split("\n## ")[1:]
    }
    kept.update({o.task.name: section(o) for o in outcomes})
    sections = "\n".join(kept[name] for name in TASKS if name in kept)
    path.write_text(
        f"""# Search quality

Measured by `scripts/eval_quality.py` (seed {seed}) on several tasks, so that CodeLamp is not
tuned to one. In the code tasks a query is a function's own documentation, removed from the
indexed source, with at least 3 words, for a function of at least 3 lines of code (no tests or
dunders). A result is a hit when it overlaps at least half of an answer's lines. The baseline
indexes fixed 30-line windows (stride 15) with the same model, store and fusion. Lexical search
uses no model: one row per chunking. The target is CodeLamp's hybrid MRR@10 +20% over the
baseline's on the stdlib task.

{sections}{notes}""",
        encoding="utf-8",
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
