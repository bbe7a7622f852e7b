"""Text for the full-text index, with code identifiers split into words.

LanceDB's tokenizer keeps ``parseHTTPResponse`` and ``parse_http_response`` whole, so a
search for "parse http response" would find neither. Both the indexed text and the query
go through :func:`split_identifiers`, which keeps each identifier and adds its words.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Boundaries inside an identifier: lower->Upper, ACRONYMWord, letter<->digit.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_words(identifier: str) -> list[str]:
    """``parseHTTPResponse`` -> ``["parse", "http", "response"]``."""
    words = []
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


def text_words(text: str) -> set[str]:
    """Every lower-case word in ``text``, identifiers split: for matching query words."""
    return {w for ident in _IDENTIFIER.findall(text) for w in identifier_words(ident)}
