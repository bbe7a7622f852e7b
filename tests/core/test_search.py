"""Search over a real index built with the real model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from homes import codelamp_home_at
from sample_project import make_project

from app.core.errors import CodeLampError, UsageError
from app.core.indexer import index_project
from app.core.lexical import (
    MAX_QUERY_TERMS,
    SYMBOL_WEIGHT,
    fts_query,
    fts_text,
    identifier_words,
    split_identifiers,
)
from app.core.search import RRF_K, Searcher, SearchResult, _dedupe, _fuse
from app.core.storage import ProjectStore


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder) -> tuple[Path, Path]:
    """(project root, CODELAMP_HOME) of the sample project, indexed once."""
    root = make_project(tmp_path_factory.mktemp("search") / "demo")
    with codelamp_home_at(tmp_path_factory.mktemp("search-home")) as home:
        index_project(root, embedder)
    return root, home


@pytest.fixture
def searcher(indexed, embedder, monkeypatch) -> Searcher:
    root, home = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    return Searcher(ProjectStore.open(root), embedder)


@pytest.mark.parametrize("mode", ["hybrid", "vector"])
@pytest.mark.parametrize(
    ("query", "path", "symbol"),
    [
        ("where do we retry failed uploads?", "src/upload.py", "retry_failed_upload"),
        ("hash a user's password", "src/auth.go", "HashPassword"),
        ("load settings from a json file", "src/config.py", "parse_config"),
        ("fetch the profile of a user from the api", "web/api.ts", "fetchUserProfile"),
        ("evict the least recently used cache entry", "lib/cache.rs", ""),
    ],
)
def test_finds_code_by_meaning(searcher, mode, query, path, symbol):
    results = searcher.search(query, k=3, mode=mode)
    rank = next(i for i, r in enumerate(results) if r.path == path and symbol in r.symbol)
    # Only documentation that names the answer may come before it: the default model ranks
    # prose that answers a question high ("Settings live in a JSON file; see parse_config"
    # for "load settings from a json file"; docs/MODEL.md).
    assert all(r.path.endswith(".md") and symbol and symbol in r.text for r in results[:rank])


def test_lexical_splits_identifiers_both_ways(searcher):
    # The README mentions parse_config too, so it may come first.
    top2 = searcher.search("parseConfig", k=2, mode="lexical")
    assert "parse_config" in {r.symbol for r in top2}
    assert searcher.search("fetch user profile", mode="lexical")[0].path == "web/api.ts"


def test_lexical_needs_no_model(indexed, monkeypatch):
    root, home = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    s = Searcher(ProjectStore.open(root), embedder=None)
    assert s.search("bcrypt", mode="lexical")[0].path == "src/auth.go"
    with pytest.raises(CodeLampError, match="needs a model"):
        s.search("bcrypt", mode="hybrid")


def test_result_fields(searcher):
    r = searcher.search("retry failed upload", k=1)[0]
    assert (r.language, r.start_line) == ("python", 17)
    assert r.end_line >= 25
    assert "retry_failed_upload" in r.text
    assert r.snippet.startswith("def retry_failed_upload(client: UploadClient,")
    assert r.snippet_line == 17
    assert [r.snippet[s:e] for s, e in r.highlights] == ["retry_failed_upload", "Upload"]
    assert r.score > 0 and searcher.last_total == 1
    assert set(r.as_dict()) == {
        "path",
        "start_line",
        "end_line",
        "symbol",
        "language",
        "score",
        "snippet",
        "snippet_line",
        "highlights",
    }


def test_a_snippet_is_the_line_with_the_most_query_words(searcher):
    """Not the first line with one of them (`settings = json.load(fh)`)."""
    r = next(r for r in searcher.search("timeout settings", k=5) if r.symbol == "parse_config")
    assert (r.snippet, r.snippet_line) == ('settings.setdefault("timeout", 30)', 8)
    assert [r.snippet[s:e] for s, e in r.highlights] == ["settings", "timeout"]


def test_language_filter(searcher):
    results = searcher.search("password", k=10, language="go")
    assert results and {r.language for r in results} == {"go"}
    assert {r.language for r in searcher.search("function", k=20, language="python,rust")} <= {
        "python",
        "rust",
    }


@pytest.mark.parametrize(
    ("glob", "allowed"),
    [
        ("web/", {"web/api.ts"}),
        ("*.py", {"src/upload.py", "src/config.py"}),
        ("src/**/*.go", {"src/auth.go"}),
    ],
)
def test_path_filter(searcher, glob, allowed):
    results = searcher.search("user password upload settings", k=10, path_glob=glob)
    assert results and {r.path for r in results} <= allowed


def test_a_glob_that_matches_no_file_finds_nothing(searcher):
    assert searcher.search("anything", path_glob="nowhere/") == []


def test_a_language_the_index_lacks_is_refused_with_the_ones_it_has(searcher):
    """A typo must not look like "no results"."""
    with pytest.raises(UsageError, match="No 'cobol' files.*go, markdown, python, rust"):
        searcher.search("anything", language="cobol")
    with pytest.raises(UsageError, match="Did you mean 'python'"):
        searcher.search("anything", language="go,Pyhton")
    assert {r.language for r in searcher.search("password", language=" GO , ")} == {"go"}


def test_blank_query_and_unknown_mode(searcher):
    assert searcher.search("   ") == []
    with pytest.raises(UsageError, match="Unknown search mode"):
        searcher.search("x", mode="fuzzy")


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_refused(searcher, k):
    """-k 0 used to return every pooled result."""
    with pytest.raises(UsageError, match="at least 1"):
        searcher.search("upload", k=k)


def test_a_huge_k_returns_every_definition(searcher):
    """LanceDB cannot take a limit of 5 x 10**12; the pool stops at the table's size."""
    everything = searcher.search("upload", k=10**12)
    assert len(everything) == len(searcher.search("upload", k=1000)) > 10


def test_results_never_overlap(searcher):
    results = searcher.search("class upload client send blob", k=20)
    for i, a in enumerate(results):
        assert not any(a.overlaps(b) for b in results[i + 1 :])


def _r(path, start, end, score=0.0):
    return SearchResult(path, start, end, "", "python", score, "", "")


def test_dedupe_keeps_best_of_overlapping():
    kept = _dedupe(
        [
            _r("a.py", 1, 10, 0.5),
            _r("a.py", 5, 20, 0.9),
            _r("b.py", 1, 10, 0.1),
            _r("a.py", 21, 30, 0.3),
        ],
        k=10,
    )
    assert [(r.path, r.start_line) for r in kept] == [("a.py", 5), ("a.py", 21), ("b.py", 1)]


def test_reciprocal_rank_fusion_rewards_agreement():
    both, only_vec, only_lex = _r("both.py", 1, 2), _r("v.py", 1, 2), _r("l.py", 1, 2)
    fused = _fuse([([only_vec, both], 1.0), ([only_lex, both], 1.0)])
    assert fused[0].path == "both.py"
    assert fused[0].score == pytest.approx(2 / (RRF_K + 2))


def test_fusion_ranks_definitions_not_chunks():
    """Three chunks of one long function count once, at the best; the next definition in
    that list is second, not fourth."""
    long_fn = [_r("a.py", 10, 90) for _ in range(3)]
    other = _r("b.py", 1, 5)
    fused = _fuse([([*long_fn, other], 1.0), ([other], 1.0)])
    scores = {r.path: r.score for r in fused}
    assert scores == pytest.approx(
        {"a.py": 1 / (RRF_K + 1), "b.py": 1 / (RRF_K + 2) + 1 / (RRF_K + 1)}
    )


def test_full_text_counts_a_definition_name_more_than_its_body():
    text = fts_text("net/client.py", "HttpClient.retry", "def retry(self, upload): ...")
    words = re.findall(r"\w+", text.lower())
    assert words.count("retry") == 2 + SYMBOL_WEIGHT  # header, code, then the weight
    assert words.count("upload") == 1
    assert words.count("http") == 1 + SYMBOL_WEIGHT  # "HttpClient" split once, then the weight
    assert fts_text("notes.txt", "", "plain words") == "notes.txt \nplain words"


def test_full_text_queries_are_plain_words():
    """Nothing in a query can reach LanceDB's full-text search as syntax."""
    assert fts_query('"parseConfig" path:src -NOT +x* y~2 z^2 AND (a OR b)') == (
        "parseconfig path src not x y 2 z 2 and a or b parse config"
    )
    assert fts_query(".*[( \\ ^$|+?{} ' OR 1=1 --") == "or 1 1"
    assert fts_query("héllo wörld 🚀 404") == "héllo wörld 404"
    assert fts_query(" ".join(f"w{i}" for i in range(1000))).split() == [
        f"w{i}" for i in range(MAX_QUERY_TERMS)
    ]


def test_identifier_splitting():
    assert identifier_words("parseHTTPResponse") == ["parse", "http", "response"]
    assert identifier_words("parse_http_response") == ["parse", "http", "response"]
    assert identifier_words("XMLHttpRequest2") == ["xml", "http", "request", "2"]
    text = split_identifiers("def parseHTTPResponse(raw_bytes): pass")
    assert "parse http response" in text and "raw bytes" in text
    assert split_identifiers("plain words only") == "plain words only"
