"""Text and Regex search (every matching line, no model) and the lines that results show.

The indexes are built with the real model; the searches read real files, as they are on
disk when searched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from homes import codelamp_home_at

from app.core.errors import UsageError
from app.core.indexer import index_project
from app.core.lexical import word_spans
from app.core.location import Location
from app.core.modes import SearchMode
from app.core.search import SNIPPET_CHARS, Searcher
from app.core.storage import ProjectStore

FILES = {
    "pkg/decoder.py": '''\
import json


class Decoder:
    """Turns JSON text into objects."""

    @staticmethod
    def loads(text, object_hook=None):
        return json.loads(text, object_hook=object_hook)


def hook_for(kind):
    # every object gets a hook of its own
    return lambda obj: obj
''',
    "pkg/long_line.py": "NOTE = '" + "a" * 600 + " object_hook " + "b" * 100 + "'\n",
    "web/app.js": """\
function objectHook(value) {
  return value;  // Object_Hook, as the Python side calls it
}
""",
}
OBJECT_HOOK_LINES = [
    ("pkg/decoder.py", 8),
    ("pkg/decoder.py", 9),
    ("pkg/long_line.py", 1),
    ("web/app.js", 2),
]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root.resolve()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder) -> tuple[Path, Path]:
    """(project root, CODELAMP_HOME), indexed once; never changed by a test."""
    root = write(tmp_path_factory.mktemp("text") / "proj", FILES)
    with codelamp_home_at(tmp_path_factory.mktemp("text-home")) as home:
        index_project(root, embedder)
    return root, home


@pytest.fixture
def searcher(indexed, monkeypatch) -> Searcher:
    """No model: Text, Regex and Keywords need none."""
    root, home = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    return Searcher(ProjectStore.open(root), embedder=None)


def lines(results) -> list[tuple[str, int]]:
    return [(r.path, r.start_line) for r in results]


# --- The modes ---------------------------------------------------------------------------


def test_search_modes_have_labels_and_say_whether_they_need_the_model():
    assert [(m.value, m.label, m.needs_model) for m in SearchMode] == [
        ("hybrid", "Hybrid", True),
        ("vector", "Semantic", True),
        ("lexical", "Keywords", False),
        ("text", "Text", False),
        ("regex", "Regex", False),
    ]
    assert SearchMode("keywords") is SearchMode("lexical") is SearchMode.KEYWORDS
    assert SearchMode("Semantic") is SearchMode.SEMANTIC and SearchMode.TEXT == "text"
    with pytest.raises(ValueError):
        SearchMode("fuzzy")


def test_text_mode_is_exact_where_keywords_finds_the_words_apart(searcher):
    """Keywords (BM25) finds `object_hook` as the words "object" and "hook", so a chunk
    with neither `object_hook` nor `objectHook` in it ranks too; Text lists only the
    lines that hold the string."""
    keywords = searcher.search("object_hook", k=10, mode="keywords")
    assert "hook_for" in {r.symbol for r in keywords}
    found = searcher.search("object_hook", k=100, mode=SearchMode.TEXT)
    assert lines(found) == OBJECT_HOOK_LINES
    assert all("object_hook" in r.text.lower() for r in found)
    assert searcher.last_total == len(found)


def test_case_is_ignored_unless_the_query_has_a_capital(searcher):
    assert lines(searcher.search("Object_Hook", mode="text")) == [("web/app.js", 2)]
    assert lines(searcher.search("OBJECT_HOOK", mode="text")) == []
    assert lines(searcher.search(r"object_\w+", mode="regex")) == OBJECT_HOOK_LINES
    assert lines(searcher.search(r"\bObject", mode="regex")) == [("web/app.js", 2)]
    # A capital in an escape (\S, \W) is not one the text must have.
    assert lines(searcher.search(r"\Sbject_hook\W", mode="regex")) == OBJECT_HOOK_LINES
    assert lines(searcher.search("(?i)OBJECT_HOOK", mode="regex")) == OBJECT_HOOK_LINES


def test_text_is_literal_and_regex_is_a_pattern(searcher):
    assert lines(searcher.search("(text, object_hook=None)", mode="text")) == [
        ("pkg/decoder.py", 8)
    ]
    assert lines(searcher.search("hook=.*", mode="text")) == []
    assert lines(searcher.search(r"hook=\w+\)$", mode="regex")) == [("pkg/decoder.py", 9)]
    assert lines(searcher.search(r"^def ", mode="regex")) == [("pkg/decoder.py", 12)]


def test_a_bad_regex_is_refused_with_the_problem(searcher):
    with pytest.raises(
        UsageError,
        match=r"^Not a valid regular expression: missing \), "
        r"unterminated subpattern at position 5\.$",
    ):
        searcher.search("loads(text", mode="regex")
    with pytest.raises(UsageError, match="Not a valid regular expression: .*too large"):
        searcher.search("a{99999999999}", mode="regex")
    with pytest.raises(UsageError, match="within a line"):
        searcher.search("object_hook\nreturn", mode="text")


def test_a_line_names_the_innermost_definition_around_it(searcher):
    found = {
        r.start_line: r
        for r in searcher.search("o", k=100, mode="text")
        if r.path == "pkg/decoder.py"
    }
    assert found[1].symbol == ""  # import json: no definition
    assert found[5].symbol == "Decoder"  # its docstring
    assert found[9].symbol == "Decoder.loads"
    assert found[13].symbol == "hook_for"
    r = found[9]
    assert (r.end_line, r.snippet_line, r.language) == (9, 9, "python")
    assert r.text == "        return json.loads(text, object_hook=object_hook)"
    assert r.snippet == "return json.loads(text, object_hook=object_hook)"


def test_highlights_mark_every_match_and_score_counts_them(searcher):
    for r in searcher.search("object_hook", mode="text"):
        assert r.highlights and all(
            r.snippet[s:e].lower() == "object_hook" for s, e in r.highlights
        )
        assert r.score == len(r.highlights)
    loads = searcher.search("object_hook=object", mode="text")[0]
    assert loads.highlights == [(24, 42)] and loads.score == 1
    assert searcher.search("OBJECT", mode="text") == []


def test_a_long_line_is_cut_around_its_first_match(searcher):
    r = searcher.search("object_hook", mode="text", path_glob="pkg/long_line.py")[0]
    assert len(r.snippet) == SNIPPET_CHARS and len(r.text) > 700
    ((start, end),) = r.highlights
    assert r.snippet[start:end] == "object_hook" and start > 0


def test_language_and_path_filters(searcher):
    assert lines(searcher.search("object_hook", mode="text", language="javascript")) == [
        ("web/app.js", 2)
    ]
    assert {r.path for r in searcher.search("o", k=100, mode="regex", path_glob="pkg/")} == {
        "pkg/decoder.py",
        "pkg/long_line.py",
    }
    assert searcher.search("o", mode="text", path_glob="nowhere/") == []
    with pytest.raises(UsageError, match="No 'cobol' files"):
        searcher.search("o", mode="text", language="cobol")


def test_k_caps_the_lines_and_last_total_counts_them_all(searcher):
    everything = searcher.search("o", k=1000, mode="text")
    assert lines(everything) == sorted(lines(everything)), "by path, then line"
    total = searcher.last_total
    assert total == len(everything) > 10
    first = searcher.search("o", k=3, mode="text")
    assert lines(first) == lines(everything[:3]) and searcher.last_total == total
    searcher.search("   ", mode="text")
    assert searcher.last_total == 0


# --- Files that changed since they were indexed ------------------------------------------


@pytest.mark.timeout(60)
def test_binary_vanished_and_unreadable_files_are_skipped(tmp_path, embedder, monkeypatch):
    names = ["binary", "gone", "fifo", "denied", "kept"]
    root = write(tmp_path / "proj", {f"{n}.py": f"{n} = 'needle'\n" for n in names})
    index_project(root, embedder)
    (root / "binary.py").write_bytes(b"needle\x00\x01\x02")
    (root / "gone.py").unlink()
    (root / "fifo.py").unlink()
    os.mkfifo(root / "fifo.py")  # must not be waited on
    real_open = os.open

    def denying_open(path, *args, **kw):  # as root, chmod 000 would deny nothing
        if str(path).endswith("denied.py"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", denying_open)
    (root / "kept.py").write_text("# edited since\nkept = 'needle'\n")
    found = Searcher(ProjectStore.open(root)).search("needle", mode="text")
    assert lines(found) == [("kept.py", 2)], "the line as it is on disk now"


def test_a_shared_index_without_its_folder_searches_the_text_it_stored(tmp_path, embedder):
    root = write(tmp_path / "proj", FILES)
    store = Location.parse(str(tmp_path / "shared"))
    index_project(root, embedder, location=store)
    shutil.move(root, tmp_path / "moved")  # this machine has no checkout
    searcher = Searcher(ProjectStore.open(None, location=store))
    assert lines(searcher.search("object_hook", mode="text")) == OBJECT_HOOK_LINES
    assert searcher.search("loads(", mode="text")[0].snippet == (
        "def loads(text, object_hook=None):"
    )


# --- What ranked results show ------------------------------------------------------------


def test_a_result_shows_its_line_with_the_most_query_words(searcher):
    """The first line with a query word was shown before: `def loads(...)`, which has
    "loads"; the line after it has "json" and "loads"."""
    r = next(
        r for r in searcher.search("json loads", k=5, mode="lexical") if r.symbol == "Decoder.loads"
    )
    assert r.snippet == "return json.loads(text, object_hook=object_hook)"
    assert r.snippet_line == 9
    assert [r.snippet[s:e] for s, e in r.highlights] == ["json", "loads"]


def test_without_a_query_word_a_result_shows_its_signature_not_its_decorator(searcher):
    """The chunk of Decoder.loads starts with @staticmethod, which was its snippet when
    no line had a query word ("decoder" is in its path and symbol only)."""
    r = next(
        r for r in searcher.search("decoder", k=10, mode="lexical") if r.symbol == "Decoder.loads"
    )
    assert r.text.lstrip().startswith("@staticmethod")
    assert r.snippet == "def loads(text, object_hook=None):"
    assert (r.snippet_line, r.highlights) == (8, [])


@pytest.mark.parametrize(
    ("line", "query", "marked"),
    [
        ("def parse_config(path):", "parse config", ["parse_config"]),
        ("class ConfigParser(Base):", "parse config", ["ConfigParser"]),
        ("x = parseConfig()", "PARSE the config", ["parseConfig"]),
        (
            "def retry(uploads): return upload_all(uploads)",
            "retry failed upload",
            ["retry", "uploads", "upload", "uploads"],
        ),
        ("for item in items: if item is None", "where is the item", ["item", "items", "item"]),
        ("    return result", "parse config", []),
    ],
)
def test_word_spans_mark_query_words_as_identifier_parts(line, query, marked):
    assert [line[s:e] for s, e in word_spans(line, query)] == marked
