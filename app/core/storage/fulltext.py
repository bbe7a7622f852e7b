"""BM25 as LanceDB's full-text index computes it, for the lite storage.

Both storages must rank the same chunks the same way, so the lite one reproduces what
LanceDB does with ``FTS(stem=True, remove_stop_words=True)`` on the ``fts`` column:

* words are runs of letters and digits (``_`` and punctuation split them), at most
  :data:`MAX_WORD_BYTES` long, lower-cased, folded to ASCII where a letter has a plain
  form, then stemmed (Snowball English) and, after stemming, dropped if they are stop
  words (the NLTK English list: ``owned`` stems to ``own`` and is dropped);
* a chunk's length is its word count after that;
* a word's weight is BM25 with k1 = 1.2, b = 0.75 and idf = ln(1 + (N - n + 0.5) / (n + 0.5)).

Measured against LanceDB 0.40 on a 11,908-chunk index of the standard library: every
score agrees to 1e-5 (LanceDB computes in float32), and every ranking is the same once
equal scores are put in order of place, as app/core/search.py does
(scripts/compare_storage.py; tests/core/test_storage*.py check it on each run).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from functools import lru_cache

import numpy as np

K1 = 1.2
B = 0.75
MAX_WORD_BYTES = 40  # longer words are not indexed (base64, hashes)
_WORD = re.compile(r"[^\W_]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# Letters that have no decomposition but an ASCII spelling.
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "þ": "th"})
STOP_WORDS = frozenset(
    """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom
this that these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off over
under again further then once here there when where why how all any both each few more
most other some such no nor not only own same so than too very s t can will just don
should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven isn ma mightn
mustn needn shan shouldn wasn weren won wouldn
""".split()  # noqa: SIM905 - a word list reads best as words
)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _term(word: str) -> str | None:
    """The indexed form of one lower-case word, or None when it is not indexed."""
    if not word.isascii():
        word = unicodedata.normalize("NFKD", word.translate(_FOLD))
        word = "".join(c for c in word if not unicodedata.combining(c))
    stem = _stemmer().stemWord(word)
    return None if stem in STOP_WORDS else stem


def terms(text: str) -> list[str]:
    """The words of ``text`` as the index holds them, in order."""
    out = []
    for word in _WORD.findall(text):
        if len(word.encode()) >= MAX_WORD_BYTES:
            continue
        if (term := _term(word.lower())) is not None:
            out.append(term)
    return out


def token(term: str) -> str:
    """``term`` as one FTS5 token: itself when it is plain ASCII, else its UTF-8 in hex,
    so that SQLite's tokenizer can neither split nor fold it."""
    return term if _ASCII_WORD.fullmatch(term) else "u" + term.encode().hex()


def document(text: str) -> tuple[str, int]:
    """What FTS5 stores for a chunk's ``fts`` text, and its length in words."""
    words = terms(text)
    return " ".join(token(w) for w in words), len(words)


def query_terms(query: str) -> Counter[str]:
    """The distinct terms of a query (already :func:`app.core.lexical.fts_query`), each
    with how often it occurs: LanceDB scores a repeated word once per occurrence."""
    return Counter(token(w) for w in terms(query))


def bm25(
    tf: np.ndarray, lengths: np.ndarray, docs_with_term: int, docs: int, mean_length: float
) -> np.ndarray:
    """One term's BM25 in the documents that hold it: ``tf`` and ``lengths`` per document."""
    idf = math.log(1 + (docs - docs_with_term + 0.5) / (docs_with_term + 0.5))
    norm = K1 * (1 - B + B * lengths / mean_length)
    return idf * (K1 + 1) * tf / (tf + norm)
