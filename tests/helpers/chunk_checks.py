"""Checks shared by the chunking tests.

Most tests count tokens as whitespace-separated words plus two special tokens: additive,
like WordPiece, so expected boundaries are exact.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path
from textwrap import dedent

from app.core.chunking import Piece, chunk_file

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def words(text: str) -> int:
    return len(text.split()) + 2


def pieces(path: str, source: str, limit: int = 256, count=words) -> list[Piece]:
    return chunk_file(path, dedent(source), limit, count)


def assert_sound(path: str, text: str, result: list[Piece], limit: int, count=words) -> None:
    """Every piece fits and shows its own lines; every non-blank line is in some piece."""
    lines = text.split("\n")
    covered: set[int] = set()
    for piece in result:
        chunk = piece.chunk
        assert count(piece.embed_text) <= limit, chunk
        assert chunk.path == path and chunk.language
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)
        whole = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        if chunk.text != whole:  # only a line too long for the model is cut
            assert chunk.start_line == chunk.end_line and chunk.text in whole, chunk
        assert piece.embed_text.endswith(chunk.text)
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert not missing, f"{path}: lines {missing[:10]} are in no chunk"


# One realistic snippet, for the outline and for what its pieces embed.
PYTHON = """\
    import os
    import sys

    TIMEOUT = 30


    # Retry helper.
    @retry(times=3)
    @log_calls
    def upload(path, data):
        return client.put(path, data)


    class LRUCache(Base):
        \"\"\"A bounded cache.\"\"\"

        capacity = 128

        def get(self, key):
            return self.data.get(key)

        @staticmethod
        def build(n):
            return LRUCache(n)

        class Stats:
            def hit_rate(self):
                return 0.5

        hits = 0


    if __name__ == "__main__":
        upload("a", b"")
    """
