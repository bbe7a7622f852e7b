"""Chunking as the indexer uses it: every file becomes pieces to embed, every piece fits
the model, every non-blank line is in a piece.

One test uses the real model's tokenizer; the others count words (chunk_checks).
"""

from __future__ import annotations

import threading

import pytest
from chunk_checks import STDLIB, assert_sound, words

from app.core.chunking import Piece, chunk_file

# --- Robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n", "\r\n"])
def test_empty_and_whitespace_files_have_no_chunks(text):
    assert chunk_file("a.py", text, 256, words) == []
    assert chunk_file("a.md", text, 256, words) == []


@pytest.mark.parametrize("path", ["a.py", "a.js", "a.go", "a.rs", "a.c", "a.rb", "a.php"])
def test_garbage_never_raises(path):
    source = "}{ ))) def class fn ;; <?php \x00 \ufffd" * 20 + "\n{{{{\n" * 50
    assert_sound(path, source, chunk_file(path, source, 64, words), 64)


def test_line_numbers_count_lines_not_bytes_or_unicode_separators():
    source = (
        's = "日本語のテキスト 🚀"  # ü\n'
        't = "form\x0cfeed and line\u2028separator"\n'
        "\n"
        "def after():\r\n"
        "    return 'naïve'\r\n"
    )
    result = chunk_file("u.py", source, 256, words)
    assert [(p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in result] == [
        ("", 1, 2),
        ("after", 4, 5),
    ]
    assert result[1].chunk.text == "def after():\r\n    return 'naïve'\r"


def test_chunking_on_many_threads_gives_the_same_result():
    sources = [
        (p.name, p.read_text(encoding="utf-8"))
        for p in (STDLIB / "json" / "decoder.py", STDLIB / "textwrap.py")
    ]
    expected = [chunk_file(name, text, 128, words) for name, text in sources]
    results: list[list[list[Piece]]] = []

    def work() -> None:
        results.append([chunk_file(name, text, 128, words) for name, text in sources * 5][:2])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 6


# --- Whole files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["json/decoder.py", "argparse.py", "textwrap.py", "ast.py"])
@pytest.mark.parametrize("limit", [64, 256])
def test_stdlib_files_are_fully_covered_by_pieces_that_fit(name, limit):
    text = (STDLIB / name).read_text(encoding="utf-8")
    result = chunk_file(name, text, limit, words)
    assert_sound(name, text, result, limit)


def generated_js(n: int) -> str:
    return "\n".join(
        f"// Handler {i}.\nexport class Handler{i} {{\n"
        + "".join(f"  step{j}(x) {{\n    return x + {j} * {i};\n  }}\n\n" for j in range(i % 4))
        + f"}}\n\nconst helper{i} = (a, b) => a * b + {i};\n"
        for i in range(n)
    )


def generated_go(n: int) -> str:
    return "package gen\n\n" + "\n".join(
        f"// T{i} is generated.\ntype T{i} struct {{\n\tv int\n}}\n\n"
        f"func (t *T{i}) Get() int {{\n"
        + "".join(f"\tt.v += {j}\n" for j in range(i * 3))
        + "\treturn t.v\n}\n"
        for i in range(n)
    )


@pytest.mark.parametrize(("path", "make"), [("gen.js", generated_js), ("gen.go", generated_go)])
def test_generated_files_are_covered(path, make):
    text = make(60)
    result = chunk_file(path, text, 96, words)
    assert_sound(path, text, result, 96)
    symbols = {p.chunk.symbol for p in result}
    assert ("Handler3.step2" in symbols) if path.endswith(".js") else ("T59.Get" in symbols)


# --- Languages -----------------------------------------------------------------------------


# --- The real tokenizer ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "some_symbols"),
    [
        ("argparse.py", {"ArgumentParser.parse_known_args", "_get_action_name"}),
        ("typing.py", {"TypeVar", "_BaseGenericAlias.__getattr__"}),
    ],
)
def test_pieces_fit_the_real_model(embedder, name, some_symbols):
    text = (STDLIB / name).read_text(encoding="utf-8")
    result = chunk_file(name, text, embedder.max_tokens, embedder.count_tokens)
    assert embedder.max_tokens == 256
    assert_sound(name, text, result, embedder.max_tokens, embedder.count_tokens)
    assert some_symbols <= {p.chunk.symbol for p in result}
