"""Text and regex matching (app/core/grep.py), without an index."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import grep
from app.core.errors import UsageError


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root.resolve()


TEXT = (
    "import socket\n"
    "\n"
    "def open_config(path):  # 2024-01-31\n"
    "    s = socket.socket()\n"
    "    return s\t\n"
    "KELVIN = '\u212a'; name = 'caf\u00e9'\n"
    "x = 1"  # no line break at the end
)


@pytest.mark.parametrize(
    ("query", "regex"),
    [
        ("socket", False),
        ("Socket", False),
        ("k", False),
        ("é", False),
        ("É", False),
        ("s = ", False),
        (r"\bsocket\.\w+\(", True),
        (r"^\s*return\b", True),
        (r"\s+$", True),
        (r"[0-9]{4}-[0-9]{2}", True),
        (r"\s+def", True),
        (r"x*", True),
        (r"n.*\n.*s", True),
        (r"(?i)KELVIN|café", True),
        (r"config\(path", True),
        ("1$", True),
    ],
)
def test_lines_match_a_line_by_line_search(query, regex):
    pattern = grep.LinePattern(query, regex)
    expected = [
        (n, line) for n, line in enumerate(TEXT.split("\n"), 1) if pattern.regex.search(line)
    ]
    assert list(pattern.lines(TEXT)) == expected
    for encoded in (TEXT.encode(), TEXT.replace("\n", "\r\n").encode("utf-16")):
        assert list(pattern.file_lines(encoded)) == expected
    ascii_only = "\n".join(line for line in TEXT.split("\n") if line.isascii())
    assert list(pattern.file_lines(ascii_only.encode())) == [
        (n, line) for n, line in enumerate(ascii_only.split("\n"), 1) if pattern.regex.search(line)
    ]


def test_a_binary_file_has_no_lines():
    assert list(grep.LinePattern("x", False).file_lines(b"x\x00x")) == []


def test_symlinks_are_followed_inside_the_project_only(tmp_path):
    outside = write(tmp_path / "outside", {"secret.py": "needle\n"})
    root = write(tmp_path / "proj", {"real.py": "needle\n"})
    (root / "inside.py").symlink_to(root / "real.py")
    (root / "leaves.py").symlink_to(outside / "secret.py")
    files = dict(grep.files_on_disk(root, ["real.py", "inside.py", "leaves.py", "none.py"]))
    assert files == {"real.py": b"needle\n", "inside.py": b"needle\n"}


def test_stored_chunks_give_back_the_lines_of_a_file():
    chunks = [
        ("a.py", 1, "one\ntwo"),
        ("a.py", 4, "four"),
        ("a.py", 5, "a long li"),
        ("a.py", 5, "ne in pieces"),
        ("b.py", 2, "x"),
    ]
    assert dict(grep.stored_files(chunks)) == {
        "a.py": "one\ntwo\n\nfour\na long line in pieces",
        "b.py": "\nx",
    }


def test_case_is_ignored_unless_the_query_has_a_capital():
    assert grep.LinePattern("object_hook", False).ignore_case
    assert not grep.LinePattern("Object_hook", False).ignore_case
    assert grep.LinePattern(r"\S+\W\d", True).ignore_case, "capitals in escapes do not count"
    assert not grep.LinePattern(r"[A-Z]\w+", True).ignore_case


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("(x", "missing ), unterminated subpattern at position 0"),
        ("a{99999999999}", "the repetition number is too large"),
        ("(" * 3000 + ")" * 3000, "it nests too deeply"),
    ],
)
def test_a_bad_regex_names_the_problem(query, problem):
    with pytest.raises(UsageError) as refused:
        grep.LinePattern(query, regex=True)
    assert str(refused.value) == f"Not a valid regular expression: {problem}."
    assert grep.LinePattern(query, regex=False), "as text, any query is fine"


def test_matches_are_spans_within_the_line():
    assert grep.LinePattern("ab", False).spans("xabABab") == [(1, 3), (3, 5), (5, 7)]
    assert grep.LinePattern("x*", True).spans("axxb") == [(1, 3)], "no empty spans"


def test_grep_keeps_the_first_lines_and_counts_them_all():
    pattern = grep.LinePattern("x", False)
    files = [("a", pattern.lines("x\ny\nx")), ("b", pattern.lines("xx"))]
    found, total = grep.grep(files, limit=2)
    assert [(m.path, m.line, m.text) for m in found] == [("a", 1, "x"), ("a", 3, "x")]
    assert total == 3
