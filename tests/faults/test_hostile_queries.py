"""Hostile queries and filters, through the core and through the command line.

Each one finds the right code or is refused with a UsageError that says what to do. None
ends in a traceback, and no filter reaches LanceDB's SQL as the user typed it. The core
tests run twice: once on the in-RAM matrix, and once with LanceDB's own vector search and
its prefilter, which indexes too large for RAM use.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from homes import KINDS, index_at_home
from sample_project import make_project

from app.cli import EXIT_USAGE
from app.core.errors import UsageError
from app.core.modes import SearchMode
from app.core.search import MAX_QUERY_CHARS, Searcher
from app.core.storage import ProjectStore

pytestmark = pytest.mark.slow

# File names that mean something to SQL: a quote, LIKE's wildcards, an injection.
ODD_FILES = [
    "odd/it's.py",
    "odd/100%.py",
    "odd/a_b.py",
    "odd/axb.py",
    "odd/x'); DROP TABLE chunks_x; --.py",
    "odd/back\\slash.py",
]
SQL_LOOKING = ["python' OR '1'='1", "x'); DROP TABLE chunks_x; --", "%", "_"]
EXACT_ONLY = pytest.mark.parametrize("indexed", ["exact"], indirect=True)
RANKED = [mode for mode in SearchMode if not mode.per_line]


@pytest.fixture(scope="module", params=KINDS)
def indexed(request, tmp_path_factory, embedder) -> tuple[Path, Path, str]:
    """(root, CODELAMP_HOME, kind) of the sample project plus ODD_FILES. Kind "ann": indexed
    as if it were too large for RAM, so vector search runs in LanceDB with a prefilter."""
    root = make_project(tmp_path_factory.mktemp("hostile") / "demo")
    fruits = ["apricot", "bramble", "cherry", "damson", "elderberry", "fig"]
    for rel, fruit in zip(ODD_FILES, fruits, strict=True):
        (root / rel).parent.mkdir(exist_ok=True)
        (root / rel).write_text(f"def marmalade_{fruit}():\n    return 'marmalade jar'\n")
    home = index_at_home(root, tmp_path_factory.mktemp("hostile-home"), embedder, request.param)
    return root, home, request.param


@pytest.fixture
def searcher(indexed, embedder, monkeypatch) -> Searcher:
    root, home, kind = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    searcher = Searcher(ProjectStore.open(root), embedder)
    assert searcher.has_ann == (kind == "ann")
    return searcher


def test_blank_queries_find_nothing(searcher):
    for query in ["", " \t\n ", "\x00\x01\x1b\x7f", "\ud800 \udcff"]:
        for mode in SearchMode:
            assert searcher.search(query, mode=mode) == []


def test_control_characters_and_broken_unicode_read_as_spaces(searcher):
    for query in ["retry\x00failed\x1b[31m upload\x7f", "retry \ud800failed\udcff upload"]:
        for mode in RANKED:
            assert searcher.search(query, k=1, mode=mode)[0].symbol == "retry_failed_upload"


def test_an_overlong_query_is_refused_not_cut(searcher):
    with pytest.raises(UsageError, match="102,400 characters long; the limit is 10,000"):
        searcher.search("x" * 102_400)
    at_limit = ("retry failed upload " * 1000)[:MAX_QUERY_CHARS]
    for mode in RANKED:
        assert searcher.search(at_limit, k=1, mode=mode)[0].symbol == "retry_failed_upload"


@pytest.mark.parametrize(
    "query",
    [
        '"bcrypt',
        "bcrypt:",
        "fts:bcrypt",
        "NOT bcrypt",
        "-bcrypt",
        "+bcrypt",
        "bcrypt*",
        "bcrypt~",
        "bcrypt^2",
        "bcrypt AND",
        "OR bcrypt",
        ".*[(bcrypt",
        "\\bcrypt",
        "^$|+?{}bcrypt",
        "bcrypt' OR '1'='1",
    ],
)
def test_query_syntax_is_read_as_plain_words(searcher, query):
    """To a query parser, "NOT bcrypt" and "-bcrypt" would exclude the one file that has
    the word."""
    for mode in ("lexical", "hybrid"):
        assert searcher.search(query, k=1, mode=mode)[0].path == "src/auth.go"


@pytest.mark.parametrize("query", ['"', ":", "-+*~^", ".*[(", "\\", "^$|+?{}", "'; --"])
def test_a_query_of_syntax_alone_has_no_words_to_match(searcher, query):
    assert searcher.search(query, mode="lexical") == []
    assert searcher.search(query, mode="hybrid")  # meaning still ranks something


@pytest.mark.parametrize("language", [*SQL_LOOKING, "pyhton"])
def test_a_language_that_is_not_indexed_is_refused(searcher, language):
    with pytest.raises(UsageError, match="Languages there: go, markdown, python, rust"):
        searcher.search("marmalade", language=language)


def test_a_language_filter_keeps_to_that_language(searcher):
    for mode in RANKED:
        results = searcher.search("hash a password", mode=mode, language=" GO ,")
        assert results and {r.language for r in results} == {"go"}


@pytest.mark.parametrize("mode", list(SearchMode))
def test_sql_looking_globs_match_only_the_files_so_named(searcher, mode):
    def found(glob: str) -> set[str]:
        results = searcher.search("marmalade jar", k=20, mode=mode, path_glob=glob)
        return {r.path for r in results}

    assert found("odd/") == set(ODD_FILES)
    for rel in ODD_FILES:
        assert found(rel.replace("\\", "\\\\")) == {rel}  # .gitignore escapes a backslash
    for glob in SQL_LOOKING:
        assert found(glob) == set()


def test_related_code_of_sql_looking_file_names_is_of_those_files(searcher):
    """The file is looked up as a value from the index: `a_b.py` is not `axb.py`."""
    fruits = {}
    for rel in ODD_FILES:
        fruits[rel] = searcher.definition_at(rel, 1).symbol
        twins = searcher.related(rel, 2, k=len(ODD_FILES) - 1)
        assert {r.path for r in twins} == set(ODD_FILES) - {rel}
    assert len(set(fruits.values())) == len(ODD_FILES)


@pytest.mark.parametrize(
    ("glob", "why"), [("\\", ""), ("!", ""), ("[z-a]", " (bad character range z-a)")]
)
def test_a_glob_pathspec_rejects_is_refused(searcher, glob, why):
    expected = f"{glob!r} is not a valid path pattern{why}. Use .gitignore syntax"
    with pytest.raises(UsageError, match=re.escape(expected)):
        searcher.search("upload", path_glob=glob)


# --- the command line -----------------------------------------------------------------


@pytest.fixture
def project(indexed, monkeypatch) -> Path:
    """The indexed project, with CODELAMP_HOME (which subprocesses inherit) pointing at
    its index."""
    root, home, _ = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    return root


def search(root: Path, *args: str | bytes, stdin: bytes | None = None) -> tuple[int, str, str]:
    """``codelamp search ROOT ARGS`` as bytes in and out (undecodable input is the point),
    checked for what no input may cause: a traceback or an "unexpected error"."""
    proc = subprocess.run(
        [sys.executable, "-m", "app", "search", str(root), *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )
    out, err = (s.decode("utf-8", "surrogateescape") for s in (proc.stdout, proc.stderr))
    assert "Traceback" not in err and "unexpected error" not in err, err
    return proc.returncode, out, err


@EXACT_ONLY
def test_cli_reads_hostile_queries_from_stdin_as_plain_text(project):
    queries = [
        b"retry\x00failed\x01\x1b[31m upload",
        b"retry \xff\xfe failed upload",
        b'"retry" NOT failed -upload',
        b"",
        b".*[( \\ ^$|+?{}",
    ]
    code, out, err = search(project, "-", stdin=b"\n".join(queries) + b"\n")
    assert code == 0, err
    answers = [json.loads(line)["results"] for line in out.splitlines()]
    assert len(answers) == 4  # one per query that is not blank
    assert [a[0]["symbol"] for a in answers[:3]] == ["retry_failed_upload"] * 3
    assert answers[3], "meaning still ranks something"


@EXACT_ONLY
def test_cli_query_argument_with_escapes_and_undecodable_bytes(project):
    code, out, err = search(project, b"retry\x1b[31m \xff failed upload", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["symbol"] == "retry_failed_upload"


@EXACT_ONLY
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x" * 102_400], "The query is 102,400 characters long"),
        (["retry", "-k", "0"], "The number of results must be at least 1"),
        (["retry", "--lang", "pyhton"], "Did you mean 'python'?"),
        (["retry", "--lang", "python' OR '1'='1"], "Languages there: go, markdown, python"),
        (["retry", "--path", "\\"], "'\\\\' is not a valid path pattern"),
        (["retry", "--path", "!"], "'!' is not a valid path pattern"),
        (["retry", "--path", "[z-a]"], "(bad character range z-a)"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(project, args, message):
    code, out, err = search(project, *args, "--json")
    assert code == EXIT_USAGE
    assert out == ""
    assert err.splitlines()[-1].startswith("codelamp: ") and message in err, err


@EXACT_ONLY
@pytest.mark.parametrize(
    ("glob", "expected"),
    [("odd/it's.py", {"odd/it's.py"}), ("odd/a_b.py", {"odd/a_b.py"}), ("%", set())],
)
def test_cli_sql_looking_globs_are_file_names(project, glob, expected):
    code, out, err = search(project, "marmalade jar", "--path", glob, "--json")
    assert code == 0, err
    assert {r["path"] for r in json.loads(out)["results"]} == expected
