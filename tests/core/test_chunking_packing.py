"""Packing units into pieces: what each piece embeds, and how what does not fit is split
until it does."""

from __future__ import annotations

import pytest
from chunk_checks import PYTHON, STDLIB, assert_sound, pieces, words
from deep_sources import deep_sources

from app.core.chunking import chunk_file

# --- Embedding text ----------------------------------------------------------------------


def test_class_lines_after_methods_carry_the_class_signature():
    result = pieces("pkg/cache.py", PYTHON)
    tail = next(p for p in result if p.chunk.start_line == 30)
    assert tail.embed_text == "pkg/cache.py LRUCache\nclass LRUCache(Base):\n    hits = 0"
    head = next(p for p in result if p.chunk.start_line == 14)
    assert head.embed_text == f"pkg/cache.py LRUCache\n{head.chunk.text}"  # its own signature


def test_a_piece_that_fits_is_embedded_as_its_chunk():
    for piece in pieces("pkg/cache.py", PYTHON):
        if piece.chunk.symbol != "LRUCache" or piece.chunk.start_line == 14:
            header = f"pkg/cache.py {piece.chunk.symbol}".rstrip()  # merged code: the path
            assert piece.embed_text == f"{header}\n{piece.chunk.text}"


# --- Splitting what does not fit -----------------------------------------------------------


LONG_FUNCTION = "\n".join(
    [
        "@traced",
        "def upload_all(self, files, retries=3):",
        '    """Upload every file, retrying the ones that fail."""',
        "    done = []",
        *[
            f"    step_{i} = prepare(files, attempt={i}, backoff=0.{i}, log=True)"
            for i in range(30)
        ],
        "    for f in files:",
        *[
            f"        send(f, part={i}, timeout=30, checksum=True, retry=retries)"
            for i in range(30)
        ],
        "    return done",
        "",
    ]
)


def test_a_long_function_is_split_between_statements_and_every_part_names_it():
    limit = 80
    result = chunk_file("up.py", LONG_FUNCTION, limit, words)
    assert_sound("up.py", LONG_FUNCTION, result, limit)
    assert len(result) >= 5
    assert {p.chunk.symbol for p in result} == {"upload_all"}
    assert result[0].chunk.start_line == 1  # the decorator starts the first part
    assert result[-1].chunk.end_line == 66
    for before, after in zip(result, result[1:], strict=False):
        assert after.chunk.start_line == before.chunk.end_line + 1  # contiguous, no overlap
    signature = "def upload_all(self, files, retries=3):"
    for piece in result[1:]:
        assert signature not in piece.chunk.text
        assert piece.embed_text == f"up.py upload_all\n{signature}\n{piece.chunk.text}"
    # The loop alone is too big: it is split between its own statements.
    assert any(p.chunk.start_line > 35 and p.chunk.text.startswith("        send(") for p in result)


def test_a_huge_single_line_is_cut_by_characters():
    line = "DATA = [" + ", ".join(str(i) for i in range(3000)) + "]"
    source = f"import os\n{line}\nprint(DATA)\n"
    limit = 100
    result = chunk_file("data.py", source, limit, words)
    assert_sound("data.py", source, result, limit)
    cut = [p for p in result if p.chunk.start_line == p.chunk.end_line == 2]
    assert len(cut) > 20
    assert "".join(p.chunk.text for p in cut) == line


def test_a_minified_file_is_cut_without_losing_a_character():
    line = "".join(f"function f{i}(a){{return a*{i}}}" for i in range(2000))
    limit = 64
    result = chunk_file("dist/app.min.js", line, limit, lambda t: len(t) // 4 + 2)
    assert len(result) > 10
    assert "".join(p.chunk.text for p in result) == line
    assert all(len(p.embed_text) // 4 + 2 <= limit for p in result)


def test_pieces_fit_even_when_the_packing_estimate_is_wrong():
    # Not additive: joined lines cost more than their parts, so packed parts must be
    # checked and re-split.
    def lumpy(text: str) -> int:
        return len(text.split()) + 2 * text.count("\n") + 2

    limit = 60
    result = chunk_file("up.py", LONG_FUNCTION, limit, lumpy)
    assert_sound("up.py", LONG_FUNCTION, result, limit, lumpy)


def test_an_absurdly_long_path_leaves_room_for_the_code():
    def chars(text: str) -> int:
        return len(text) // 4 + 2

    path = "/".join(f"directory_number_{i}" for i in range(100)) + "/upload.py"
    limit = 128
    result = chunk_file(path, LONG_FUNCTION, limit, chars)
    assert_sound(path, LONG_FUNCTION, result, limit, chars)
    assert all(p.embed_text.startswith("upload.py upload_all\n") for p in result)


def test_a_window_too_small_for_any_text_is_a_caller_error():
    with pytest.raises(ValueError, match="max_tokens=10"):
        chunk_file("a.py", "x = 1\n", 10, words)


def test_the_tokenizer_counts_each_statement_once_not_each_line():
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return words(text)

    source = (STDLIB / "json" / "decoder.py").read_text(encoding="utf-8")  # 356 lines
    result = chunk_file("json/decoder.py", source, 256, counting)
    assert len(calls) == len(set(calls)), "no text is counted twice"
    assert len(calls) <= 5 * len(result) < 100


# --- Hostile nesting -------------------------------------------------------------------------


def test_deep_nesting_is_counted_in_time_linear_in_the_file():
    """Splitting peels one level off the nesting at a time; recounting all that is left at
    every level was quadratic (a 200 kB file of nested lists took 48 s)."""
    text = deep_sources()["bracket_lines.py"]
    counted = 0

    def counting(piece: str) -> int:
        nonlocal counted
        counted += len(piece)
        return words(piece)

    assert_sound("deep.py", text, chunk_file("deep.py", text, 256, counting), 256)
    assert counted < 20 * len(text)
