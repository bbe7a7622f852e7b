"""Source text -> the pieces CodeLamp embeds and shows as search results.

Search answers questions about code ("where do we retry failed uploads?") with functions,
methods and classes, so for the languages we parse, chunk boundaries follow the syntax tree
(tree-sitter): one chunk per definition, a class's own chunk for its header and fields, and
small top-level statements merged. Everything else is cut into line windows.

Two promises the indexer relies on:

* every piece fits the model: ``count_tokens(piece.embed_text) <= max_tokens``, checked with
  the real tokenizer, because the embedder silently truncates and the cut-off code would be
  invisible to search;
* every non-blank line lands in at least one chunk.

Here: the entry point and the chunk-size setting. :mod:`app.core.chunking.outline` turns a
syntax tree into units (definitions, other statements), :mod:`app.core.chunking.prose` does
it for text we do not parse, and :mod:`app.core.chunking.packing` packs units into pieces
that fit.
"""

from __future__ import annotations

from collections.abc import Callable

from app.core.chunking.outline import syntax_units
from app.core.chunking.packing import Chunk, Packer, Piece, covering
from app.core.chunking.prose import MAX_WINDOW_LINES, text_units
from app.core.languages import GRAMMARS, language_for, language_from_shebang

__all__ = ["MIN_CHUNK_TOKENS", "Chunk", "Piece", "chunk_file", "chunk_limit"]

# The smallest chunk limit a user may set: below it a chunk holds a few lines and search
# loses the context that makes a match recognisable.
MIN_CHUNK_TOKENS = 64


def chunk_limit(tokens: int) -> int:
    """A chunk limit as a user may set it: 0 (or less) is the model's own limit, anything
    else is at least :data:`MIN_CHUNK_TOKENS`."""
    return 0 if tokens <= 0 else max(tokens, MIN_CHUNK_TOKENS)


def chunk_file(
    path: str, text: str, max_tokens: int, count_tokens: Callable[[str], int]
) -> list[Piece]:
    """Cut one file into pieces to embed, in file order.

    ``count_tokens`` must count what the model sees, special tokens included; every piece's
    ``embed_text`` is checked with it to be at most ``max_tokens``. Any text is accepted,
    syntax errors included; only a ``max_tokens`` too small for a line of text is an error.
    """
    if not text.strip():
        return []
    lines = text.split("\n")  # rows exactly as tree-sitter counts them ("\r" stays put)
    language = language_for(path)
    if language == "text" and text.startswith("#!"):
        language = language_from_shebang(lines[0]) or language
    units = syntax_units(language, text) if language in GRAMMARS else None
    max_lines = None if units is not None else MAX_WINDOW_LINES
    if units is None:
        units = text_units(lines, markdown=language == "markdown")
    packer = Packer(path, language, lines, max_tokens, count_tokens, max_lines)
    return packer.pieces(covering(units, lines))
