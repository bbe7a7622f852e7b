"""Code-aware ranking: what a code search knows that a text search does not.

Hybrid search fuses the vector and full-text rankings (reciprocal rank fusion, the
full-text ranking weighted 0.6: with a model trained on code, the vector ranking is the
better one), then these signals adjust the fused scores. Each is kept because
scripts/eval_quality.py measured that it helps; adaptive weighting and file coherence were
measured too and dropped (docs/QUALITY.md gives the figures):

* **definition boost**: a query that names a symbol (``parse_config``, ``ConfigParser``,
  ``Session.update``) puts that symbol's definition first;
* **name match**: query words that match the words of a definition's name, by stem
  (``parse config`` matches ``ConfigParser`` and ``parse_config``);
* **demotion** of tests, vendored code, compatibility shims and ``.d.ts`` stubs, unless the
  query asks for them.

Vector and lexical modes stay pure rankings; the signals are hybrid's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from app.core.lexical import identifier_words, query_words, words_match

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An identifier as people type one: snake_case, camelCase/PascalCase, or dotted.
_SYMBOLISH = re.compile(
    r"^(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z]\w*_\w*|_\w+|"
    r"[a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*)$"
)
# A query that names a symbol is short ("where is parse_config defined"); a long one that
# mentions a name ("Like parse_args, but ...") is about something else.
NAMING_WORDS = 5
# Paths that are rarely what a search is for: tests, vendored copies, compatibility shims,
# TypeScript's declaration stubs. A query that mentions one of _ASKS_FOR_DEMOTED keeps them.
_DEMOTED_PARTS = frozenset(
    {
        "test",
        "tests",
        "testing",
        "__tests__",
        "spec",
        "specs",
        "vendor",
        "vendored",
        "third_party",
        "thirdparty",
        "node_modules",
        "_vendor",
        "compat",
        "_compat",
        "polyfills",
        "fixtures",
    }
)
_DEMOTED_NAME = re.compile(
    r"(^test_|_test\.\w+$|\.(test|spec)\.\w+$|\.d\.ts$|^compat\.|"
    r"_compat\.|^conftest\.py$)"
)
_ASKS_FOR_DEMOTED = frozenset(
    {
        "test",
        "tests",
        "testing",
        "spec",
        "specs",
        "fixture",
        "fixtures",
        "mock",
        "mocks",
        "vendor",
        "vendored",
        "compat",
        "compatibility",
        "shim",
        "shims",
        "stub",
        "stubs",
        "declaration",
        "declarations",
        "typings",
        "conftest",
    }
)


@dataclass(frozen=True)
class Ranking:
    """Which signals hybrid search applies, and how strongly."""

    lexical: float = 0.6  # the full-text ranking's weight in the fusion (the vector's is 1)
    definition_boost: float = 3.0  # factor for the definition a query names; 1: off
    name_match: float = 0.5  # up to 1 + this, as the name matches the query's words
    demote: float = 0.5  # factor for tests, vendored code, shims and stubs; 1: off

    @classmethod
    def off(cls) -> Ranking:
        return cls(lexical=1.0, definition_boost=1.0, name_match=0.0, demote=1.0)

    @classmethod
    def configured(cls, demote: bool = True) -> Ranking:
        """The default signals; ``demote=False`` (a setting, ``--no-demote``) ranks tests,
        vendored code, shims and stubs like any other code."""
        return cls() if demote else cls(demote=1.0)


def named_symbols(query: str) -> set[str]:
    """The symbols a query names, lower case: ``where is parse_config`` -> {"parse_config"};
    a one-word query is taken as a name too (``urlsplit``)."""
    tokens = [t.strip("`'\"()?,:;") for t in query.split()]
    tokens = [t for t in tokens if t]
    if len(tokens) == 1 and _WORD.fullmatch(tokens[0]):
        return {tokens[0].lower()}
    return {t.lower() for t in tokens if _SYMBOLISH.match(t)}


def demoted(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(_DEMOTED_PARTS & {p.lower() for p in parts[:-1]}) or bool(
        _DEMOTED_NAME.search(parts[-1].lower()) if parts else False
    )


def rerank(results: list, query: str, ranking: Ranking) -> list:
    """``results`` (fused, best first, each with ``path``, ``symbol`` and ``score``)
    re-scored by the signals and sorted again."""
    short = len(query.split()) <= NAMING_WORDS
    names = named_symbols(query) if ranking.definition_boost != 1.0 and short else set()
    words = query_words(query) if ranking.name_match else []
    keep_demoted = ranking.demote == 1.0 or bool(_ASKS_FOR_DEMOTED & set(query_words(query)))
    for r in results:
        last = r.symbol.rsplit(".", 1)[-1].lower() if r.symbol else ""
        if names and last and (last in names or r.symbol.lower() in names):
            r.score *= ranking.definition_boost
        if words and last:
            name = identifier_words(r.symbol.rsplit(".", 1)[-1])
            matched = sum(any(words_match(w, n) for n in name) for w in words)
            r.score *= 1 + ranking.name_match * matched / len(words)
        if not keep_demoted and demoted(r.path):
            r.score *= ranking.demote
    return sorted(results, key=lambda r: r.score, reverse=True)
