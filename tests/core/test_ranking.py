"""Code-aware ranking: the signals on their own, then in hybrid search with the real model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.core.ranking import (
    Ranking,
    demoted,
    named_symbols,
    query_words,
    rerank,
    words_match,
)


@dataclass
class Hit:
    path: str
    symbol: str
    score: float


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("parse", "parser"),
        ("parse", "parsing"),
        ("config", "configuration"),
        ("retry", "retries"),
        ("upload", "uploads"),
        ("cache", "caching"),
    ],
)
def test_words_match_by_stem(a, b):
    assert words_match(a, b) and words_match(b, a)


@pytest.mark.parametrize(
    ("a", "b"), [("parse", "pass"), ("get", "set"), ("id", "idle"), ("config", "confirm")]
)
def test_different_words_do_not_match(a, b):
    assert not words_match(a, b)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("where is parse_config defined", {"parse_config"}),
        ("ConfigParser", {"configparser"}),
        ("how does Session.update merge", {"session.update"}),
        ("urlsplit", {"urlsplit"}),
        ("`getUserName`?", {"getusername"}),
        ("retry failed uploads", set()),
        ("how do I parse a config file", set()),
    ],
)
def test_named_symbols(query, names):
    assert named_symbols(query) == names


def test_query_words_drop_how_a_question_is_asked():
    assert query_words("Where do we retry the failed uploadRequests?") == [
        "retry",
        "failed",
        "upload",
        "requests",
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_upload.py", True),
        ("src/upload_test.go", True),
        ("lib/a.spec.ts", True),
        ("types/index.d.ts", True),
        ("pkg/_compat.py", True),
        ("pkg/compat.py", True),
        ("vendor/github.com/x/y.go", True),
        ("pkg/_vendor/six.py", True),
        ("conftest.py", True),
        ("src/upload.py", False),
        ("src/contest.py", False),
        ("src/testing_helpers_are_not_tests.py", False),
        ("src/index.ts", False),
    ],
)
def test_demoted_paths(path, expected):
    assert demoted(path) is expected


def test_the_named_definition_comes_first():
    hits = [Hit("a.py", "load_settings", 0.5), Hit("b.py", "Config.parse_config", 0.3)]
    assert rerank(hits, "where is parse_config", Ranking())[0].symbol == "Config.parse_config"
    hits = [Hit("a.py", "load_settings", 0.5), Hit("b.py", "Config.parse_config", 0.3)]
    assert rerank(hits, "where is parse_config", Ranking.off())[0].symbol == "load_settings"


def test_tests_are_demoted_unless_the_query_asks_for_them():
    def hits():
        return [Hit("tests/test_upload.py", "test_retry", 0.5), Hit("src/up.py", "retry", 0.4)]

    assert rerank(hits(), "retry uploads", Ranking())[0].path == "src/up.py"
    assert rerank(hits(), "tests of the upload retry", Ranking())[0].path.startswith("tests/")
    assert rerank(hits(), "retry uploads", Ranking.off())[0].path.startswith("tests/")


def test_name_match_reorders_close_scores():
    hits = [Hit("a.py", "send_report", 0.40), Hit("b.py", "ConfigParser", 0.39)]
    assert rerank(hits, "parse config", Ranking())[0].symbol == "ConfigParser"
    hits = [Hit("a.py", "send_report", 0.40), Hit("b.py", "ConfigParser", 0.39)]
    assert rerank(hits, "parse config", Ranking.off())[0].symbol == "send_report"


def test_a_long_query_that_mentions_a_name_is_not_asking_for_it():
    hits = [Hit("a.py", "merge", 0.5), Hit("b.py", "parse_args", 0.3)]
    query = "Like parse_args, but merges the defaults into the parsed namespace"
    assert rerank(hits, query, Ranking())[0].symbol == "merge"


# --- in hybrid search, with the real model --------------------------------------------


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    from app.core.indexer import index_project
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    root = tmp_path_factory.mktemp("ranked")
    (root / "src").mkdir()
    (root / "tests").mkdir()
    (root / "src" / "settings.py").write_text(
        "import json\n\n\n"
        "def parse_config(path):\n    with open(path) as fh:\n        return json.load(fh)\n\n\n"
        "def save_config(path, data):\n    with open(path, 'w') as fh:\n"
        "        json.dump(data, fh)\n"
    )
    (root / "tests" / "test_settings.py").write_text(
        "from src.settings import parse_config\n\n\n"
        "def test_parse_config_reads_json(tmp_path):\n"
        "    path = tmp_path / 'c.json'\n    path.write_text('{\"a\": 1}')\n"
        "    assert parse_config(path) == {'a': 1}\n"
    )
    index_project(root, embedder)
    return Searcher(ProjectStore.open(root), embedder)


def test_hybrid_puts_the_definition_before_its_test(searcher):
    first = searcher.search("parse_config", k=3)[0]
    assert (first.path, first.symbol) == ("src/settings.py", "parse_config")
    first = searcher.search("read the json configuration file", k=3)[0]
    assert first.path == "src/settings.py"


def test_a_query_about_tests_finds_the_test(searcher):
    first = searcher.search("the test that reads a json config from a temporary file", k=3)[0]
    assert first.path == "tests/test_settings.py"
