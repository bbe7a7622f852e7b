"""Text for the full-text index, with code identifiers split into words.

LanceDB's tokenizer keeps ``parseHTTPResponse`` and ``parse_http_response`` whole, so a
search for "parse http response" would find neither. Both the indexed text and the query
go through :func:`split_identifiers`, which keeps each identifier and adds its words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Boundaries inside an identifier: lower->Upper, ACRONYMWord, letter<->digit.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_words(identifier: str) -> list[str]:
    """``parseHTTPResponse`` -> ``["parse", "http", "response"]``."""
    words: list[str] = []
    for part in identifier.split("_"):
        words.extend(w.lower() for w in _CAMEL.findall(part))
    return words


def split_identifiers(text: str) -> str:
    """``text`` plus the words of every compound identifier in it, space-separated."""
    extra = []
    for ident in set(_IDENTIFIER.findall(text)):
        words = identifier_words(ident)
        if len(words) > 1:
            extra.append(" ".join(words))
    return text if not extra else text + "\n" + " ".join(sorted(extra))


# A query's terms beyond this are dropped: every term is one more posting list to merge,
# and 17,000 terms take a second on 50k chunks where 256 take 40 ms. A query that long is
# pasted code, and its first 256 words say enough about it.
MAX_QUERY_TERMS = 256
_WORD = re.compile(r"\w+")


def fts_query(query: str) -> str:
    """The terms of ``query`` for the full-text index: its words and identifier parts in
    lower case, space-separated, at most :data:`MAX_QUERY_TERMS`. Quotes, ``:``, ``*``,
    ``-``, ``AND``/``OR``/``NOT`` and the like are query syntax to tantivy-style parsers;
    dropping them (the index's tokenizer drops them from the code too) means no query can
    be read as syntax, whatever LanceDB does with the string."""
    return " ".join(_WORD.findall(split_identifiers(query).lower())[:MAX_QUERY_TERMS])


# The words of a chunk's symbol (its definition's name) are indexed this many more times,
# as a field weight: a query word in the name says more than one in the body. Measured by
# scripts/eval_quality.py: lexical MRR@10 0.469 -> 0.479 at 2 (and 0.483 at 4, but with
# hybrid no better).
SYMBOL_WEIGHT = 2


def fts_text(path: str, symbol: str, text: str) -> str:
    """What the full-text index holds for a chunk: path, symbol and code, identifiers
    split, then the symbol's words again (:data:`SYMBOL_WEIGHT`)."""
    name = " ".join(w for ident in _IDENTIFIER.findall(symbol) for w in identifier_words(ident))
    boost = f"\n{name}" * SYMBOL_WEIGHT if name else ""
    return split_identifiers(f"{path} {symbol}\n{text}") + boost


def _parts(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, lower-case word) of every identifier part in ``text``: the words of
    :func:`identifier_words`, with where they are."""
    for ident in _IDENTIFIER.finditer(text):
        for part in _CAMEL.finditer(ident.group()):
            yield ident.start() + part.start(), ident.start() + part.end(), part.group().lower()


# Words that say how a question is asked, not what it is about.
_STOP = frozenset(
    """
a an and are as at be by can code could do does find for from function functions give
how i if in into is it its me method methods my of on or our should so some that the
their there this to us use used uses using want we what when where which who why will
with you
""".split()  # noqa: SIM905 - a word list reads best as words
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "ied", "es", "ed", "s")


def stem(word: str) -> str:
    """A light stem for identifier words: ``parser``, ``parsing``, ``parses`` -> ``pars``."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word.removesuffix("e") if len(word) > 4 else word


def words_match(a: str, b: str) -> bool:
    """Same stem, or one stem starts the other (``config``/``configuration``)."""
    return _stems_match(stem(a), stem(b))


def _stems_match(a: str, b: str) -> bool:
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def query_words(query: str) -> list[str]:
    """The words a query is about: identifiers split, lower case, no question words."""
    words = [w for ident in _IDENTIFIER.findall(query) for w in identifier_words(ident)]
    return [w for w in words if w not in _STOP and len(w) > 1]


def find_words(line: str, words: Iterable[str]) -> tuple[set[str], list[tuple[int, int]]]:
    """Which of ``words`` (:func:`query_words`) ``line`` mentions, and where: the
    [start, end) spans of the identifier parts that match one of them (:func:`words_match`,
    so case and word endings do not matter). The matching parts of one identifier make one
    span when they touch or only ``_`` is between them (``parse_config``, ``parseConfig``)."""
    stems = {stem(w): w for w in words}
    found: set[str] = set()
    spans: list[tuple[int, int]] = []
    if not stems:
        return found, spans
    for start, end, part in _parts(line):
        part_stem = stem(part)
        hits = [w for s, w in stems.items() if _stems_match(part_stem, s)]
        if not hits:
            continue
        found.update(hits)
        if spans and line[spans[-1][1] : start] in ("", "_"):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return found, spans


def word_spans(line: str, query: str) -> list[tuple[int, int]]:
    """The [start, end) character spans in ``line`` of the words of ``query``, matched as
    identifier parts ignoring case and word endings: ``parse config`` marks
    ``parse_config``, ``ConfigParser`` and ``parseConfig``. For highlighting."""
    return find_words(line, query_words(query))[1]
