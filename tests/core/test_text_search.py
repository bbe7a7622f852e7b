"""The lines that results show. The index is built with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from homes import codelamp_home_at

from app.core.indexer import index_project
from app.core.lexical import word_spans
from app.core.search import Searcher
from app.core.store import ProjectStore

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
    "web/app.js": '''\
function objectHook(value) {
  return value;  // Object_Hook, as the Python side calls it
}
''',
}


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
    """No model: lexical search needs none."""
    root, home = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    return Searcher(ProjectStore.open(root), embedder=None)


# --- What ranked results show ------------------------------------------------------------


def test_a_result_shows_its_line_with_the_most_query_words(searcher):
    """The first line with a query word was shown before: `def loads(...)`, which has
    "loads"; the line after it has "json" and "loads"."""
    r = next(r for r in searcher.search("json loads", k=5, mode="lexical")
             if r.symbol == "Decoder.loads")  # fmt: skip
    assert r.snippet == "return json.loads(text, object_hook=object_hook)"
    assert r.snippet_line == 9
    assert [r.snippet[s:e] for s, e in r.highlights] == ["json", "loads"]


def test_without_a_query_word_a_result_shows_its_signature_not_its_decorator(searcher):
    """The chunk of Decoder.loads starts with @staticmethod, which was its snippet when
    no line had a query word ("decoder" is in its path and symbol only)."""
    r = next(r for r in searcher.search("decoder", k=10, mode="lexical")
             if r.symbol == "Decoder.loads")  # fmt: skip
    assert r.text.lstrip().startswith("@staticmethod")
    assert r.snippet == "def loads(text, object_hook=None):"
    assert (r.snippet_line, r.highlights) == (8, [])


@pytest.mark.parametrize(("line", "query", "marked"), [
    ("def parse_config(path):", "parse config", ["parse_config"]),
    ("class ConfigParser(Base):", "parse config", ["ConfigParser"]),
    ("x = parseConfig()", "PARSE the config", ["parseConfig"]),
    ("def retry(uploads): return upload_all(uploads)", "retry failed upload",
     ["retry", "uploads", "upload", "uploads"]),
    ("for item in items: if item is None", "where is the item", ["item", "items", "item"]),
    ("    return result", "parse config", []),
])  # fmt: skip
def test_word_spans_mark_query_words_as_identifier_parts(line, query, marked):
    assert [line[s:e] for s, e in word_spans(line, query)] == marked
