"""Text we do not parse: paragraphs, Markdown sections under their headings, and windows
of at most 40 lines."""

from __future__ import annotations

from textwrap import dedent

from chunk_checks import assert_sound, words

from app.core.chunking import chunk_file


def test_markdown_windows_follow_headings():
    source = dedent("""\
        # CodeLamp

        Offline code search.

        ## Install

        ```bash
        # not a heading: a shell comment
        pip install codelamp
        ```

        ## Usage
        Run `codelamp index .` first.
        """)
    result = chunk_file("README.md", source, 256, words)
    assert [(p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in result] == [
        ("CodeLamp", 1, 3),
        ("Install", 5, 10),
        ("Usage", 12, 13),
    ]
    assert {p.chunk.language for p in result} == {"markdown"}
    assert result[1].embed_text.startswith("README.md Install\n## Install")


def test_a_long_markdown_section_is_cut_into_windows_of_at_most_40_lines():
    source = "## Changelog\n" + "\n".join(f"- fixed bug {i}" for i in range(100)) + "\n"
    result = chunk_file("CHANGES.md", source, 1000, words)
    assert_sound("CHANGES.md", source, result, 1000)
    assert [p.chunk.end_line - p.chunk.start_line + 1 for p in result] == [40, 40, 21]
    assert {p.chunk.symbol for p in result} == {"Changelog"}


def test_yaml_windows_break_at_blank_lines_then_top_level_keys():
    sections = [
        "\n".join(f"{name}_{i}:\n  image: app:{i}\n  restart: always" for i in range(5))
        for name in ("web", "db", "cache")
    ]
    source = "\n\n".join(sections) + "\n"
    result = chunk_file("deploy/compose.yaml", source, 40, words)
    assert_sound("deploy/compose.yaml", source, result, 40)
    assert [(p.chunk.start_line, p.chunk.end_line) for p in result] == [
        (1, 15),
        (17, 31),
        (33, 47),
    ]
    flat = "\n".join(f"key_{i}:\n  value: {i}" for i in range(60)) + "\n"
    windows = chunk_file("flat.yml", flat, 1000, words)
    assert_sound("flat.yml", flat, windows, 1000)
    assert all(p.chunk.end_line - p.chunk.start_line < 40 for p in windows)
    assert all(p.chunk.text.startswith("key_") for p in windows)  # never mid-entry
    assert {p.chunk.language for p in windows} == {"yaml"}
