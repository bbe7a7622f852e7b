"""Text and regex search: every line of the indexed files that matches, as ripgrep finds it.

The Text and Regex search modes need no model. They search the files the index lists, as
those files read on disk now, so a result is a line as it is in the file; search.py applies
the language and path filters and names the indexed definition around each line.

* Text is a literal string; Regex is Python's ``re`` syntax. A match never spans lines, and
  ``^`` and ``$`` are a line's start and end.
* Case is smart, as in ripgrep: ignored unless the query has an upper-case letter (in a
  regex, one outside an escape such as ``\\S`` or ``\\W``).
* A file that is gone, unreadable or binary now is skipped without a word.

Speed (scripts/bench_grep.py, docs/PERFORMANCE.md): a file is searched whole, never line
by line. What every matching line contains (the text; a regex's longest run of plain
characters, like ``socket.`` in ``\\bsocket\\.\\w+``) is looked for first with bytes and
string ``find``, lower-cased when case is ignored: a file without it is passed over
undecoded, and only the lines around a hit are cut out and numbered (``str.count`` of the
line breaks since the last hit). A regex is tried on those lines only; one without such a
run is searched over the whole text by one compiled pattern. Either way a regex match is
checked on its own line, so that one that runs across lines (``\\s+`` can) still yields
exactly the lines that match by themselves. Lines without a hit run no Python code. The
regex engine backtracks: a pattern like ``(a+)+$`` can take very long on a long line, where
ripgrep's engine would not.

A shared index searched where its project folder is not checked out has no files to read:
it is searched in the text its chunks store (:func:`stored_files`), which holds every
non-blank line of every indexed file as it was indexed.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from re import _constants, _parser  # type: ignore[attr-defined]  # 3.11+ internals, untyped

from app.core.errors import UsageError
from app.core.files import SkipFile, decode, is_binary, read_regular

# A file that has grown past this since it was indexed is not read (files that large are
# not indexed in the first place: the indexer's limit is 1 MiB unless the user raises it).
MAX_FILE_BYTES = 64 << 20
# A regex's plain run shorter than this finds too many lines that then fail the regex: it
# is not worth looking for first.
MIN_NEEDLE = 3
_ESCAPE = re.compile(r"\\.", re.DOTALL)


@dataclass
class LineMatch:
    path: str
    line: int  # 1-based
    text: str  # the line, without its line break


class LinePattern:
    """A Text or Regex query, compiled once, that finds the lines it matches."""

    def __init__(self, query: str, regex: bool) -> None:
        if "\n" in query:
            raise UsageError(
                "Text and regex search match within a line: the query has a "
                "line break. Search for one line of it."
            )
        shown = _ESCAPE.sub("", query) if regex else query
        self.ignore_case = not any(c.isupper() for c in shown)
        flags = re.MULTILINE | (re.IGNORECASE if self.ignore_case else 0)
        try:
            self.regex = re.compile(query if regex else re.escape(query), flags)
        except (re.error, OverflowError, RecursionError) as exc:
            why = "it nests too deeply" if isinstance(exc, RecursionError) else exc
            raise UsageError(f"Not a valid regular expression: {why}.") from exc
        self.verify = regex  # a literal's hits are its matches; a regex's must be checked
        self.fold = bool(self.regex.flags & re.IGNORECASE)  # "(?i)" in a regex, too
        needle = _required_literal(self.regex) if regex else query
        needle = needle.lower() if self.fold else needle
        # Every matching line contains the needle: it is looked for first, with str.find.
        # Lower-casing changes the length of some non-ASCII text, and Unicode case folding
        # matches some ASCII letters to other characters (k to the Kelvin sign): a folded
        # needle is only used on ASCII text, and only an ASCII needle is used at all.
        self.needle = needle if needle and needle.isascii() else None
        self._needle_bytes = self.needle.encode() if self.needle else None

    def file_lines(self, data: bytes) -> Iterator[tuple[int, str]]:
        """:meth:`lines` of a file's bytes; nothing for a binary file. A plain ASCII file
        without the needle is passed over before it is decoded."""
        needle = self._needle_bytes
        if is_binary(data) or (
            needle is not None
            and data.isascii()
            and needle not in (data.lower() if self.fold else data)
        ):
            return iter(())
        return self.lines(decode(data))

    def lines(self, text: str) -> Iterator[tuple[int, str]]:
        """(1-based number, line) of every line of ``text`` with a match, in order."""
        find = self._finder(text)
        number = 1  # the number of the line that starts at `counted`
        counted = pos = 0
        while pos < len(text) and (hit := find(pos)) is not None:
            start, end = hit
            first = text.rfind("\n", 0, start) + 1
            last = text.find("\n", max(start, end - 1))
            last = len(text) if last < 0 else last
            number += text.count("\n", counted, first)
            for line in text[first:last].split("\n"):
                if not self.verify or self.regex.search(line):
                    yield number, line
                number += 1
            counted = pos = last + 1

    def spans(self, line: str) -> list[tuple[int, int]]:
        """The [start, end) of each match in ``line`` (empty matches left out)."""
        return [m.span() for m in self.regex.finditer(line) if m.end() > m.start()]

    def _finder(self, text: str) -> Callable[[int], tuple[int, int] | None]:
        """The first hit at or after a position, as (start, end): of the needle where it
        can be used, else of the regex."""
        if self.needle is None or (self.fold and not text.isascii()):

            def search(pos: int) -> tuple[int, int] | None:
                match = self.regex.search(text, pos)
                return match.span() if match else None

            return search
        haystack = text.lower() if self.fold else text
        needle, size = self.needle, len(self.needle)

        def find(pos: int) -> tuple[int, int] | None:
            at = haystack.find(needle, pos)
            return None if at < 0 else (at, at + size)

        return find


def _required_literal(regex: re.Pattern) -> str:
    """The longest run of plain characters at the top level of ``regex`` (``socket.`` in
    ``\\bsocket\\.\\w+\\(``): every match contains it. "" when there is none as long as
    :data:`MIN_NEEDLE` (an alternation at the top has none)."""
    runs, run = [], []
    for op, value in _parser.parse(regex.pattern, regex.flags).data:
        if op is _constants.LITERAL:
            run.append(chr(value))
        else:
            runs.append("".join(run))
            run = []
    longest = max([*runs, "".join(run)], key=len)
    return longest if len(longest) >= MIN_NEEDLE else ""


def grep(
    files: Iterable[tuple[str, Iterable[tuple[int, str]]]], limit: int
) -> tuple[list[LineMatch], int]:
    """The first ``limit`` of the matching lines of ``files`` ((path, its matching lines
    from :class:`LinePattern`), in the order given), and how many there are in all."""
    found: list[LineMatch] = []
    total = 0
    for path, lines in files:
        for number, line in lines:
            if total < limit:
                found.append(LineMatch(path, number, line))
            total += 1
    return found, total


def files_on_disk(root: Path, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of each file under ``root`` that can be read now."""
    real_root, folder = root.resolve(), str(root)
    for path in paths:  # joined as strings: pathlib took a fifth of a search of 900 files
        if (data := read_file(os.path.join(folder, path), real_root)) is not None:
            yield path, data


def read_file(path: str, real_root: Path) -> bytes | None:
    """The bytes of a regular file; None for one that is gone, unreadable or no longer a
    regular file. A symlink is followed only to a file inside the project (``real_root``,
    resolved), as the indexer does."""
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except SkipFile:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # ELOOP: a symlink, which O_NOFOLLOW did not open
            return None
    try:
        target = Path(path).resolve(strict=True)
        return read_regular(target, MAX_FILE_BYTES) if target.is_relative_to(real_root) else None
    except (OSError, RuntimeError, SkipFile):  # RuntimeError: a loop of symlinks
        return None


def stored_files(chunks: Iterable[tuple[str, int, str]]) -> Iterator[tuple[str, str]]:
    """(path, text) of each file, put together from its stored chunks ((path, start line,
    text), each file's in the order they were stored): every non-blank line is in a chunk,
    and a line too long for the model is stored in consecutive pieces. Lines no chunk
    holds (blank ones) come back empty."""
    by_path: dict[str, dict[int, str]] = {}
    for path, start, text in chunks:
        lines = by_path.setdefault(path, {})
        pieces = text.split("\n")
        if len(pieces) == 1 and start in lines:  # the next piece of a cut line
            lines[start] += pieces[0]
            continue
        for offset, line in enumerate(pieces):
            lines[start + offset] = line
    for path, lines in by_path.items():
        yield path, "\n".join(lines.get(n, "") for n in range(1, max(lines) + 1))
