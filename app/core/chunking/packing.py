"""Packing units into pieces that fit the model: the chunks and embedding texts that
:func:`app.core.chunking.chunk_file` returns.

A :class:`Unit` is rows that go into the same chunk: the outline of a syntax tree
(:mod:`app.core.chunking.outline`) and the paragraphs of a text
(:mod:`app.core.chunking.prose`) are lists of them. Definitions are packed alone,
neighbouring other units of the same scope together.

A definition that fits costs one tokenizer call. One that does not is split between its
statements: each is counted once, packing adds the counts up (an estimate: a tokenizer may
count a joined text differently), and each finished part is counted once more to check. Every
part carries the definition's signature, so it still says what it belongs to.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NamedTuple

from tree_sitter import Node


@dataclass(frozen=True)
class Chunk:
    """A span of a file: what the store keeps and search shows."""

    path: str  # POSIX, relative to the project root
    language: str
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    symbol: str  # "parse_config", "LRUCache.get", a Markdown heading; "" for merged code
    # Lines start_line..end_line joined with "\n". The one exception: a single line too long
    # for the model is cut into pieces, and each holds its slice of that line.
    text: str


@dataclass(frozen=True)
class Piece:
    """A chunk and the exact string to embed for it (also the embedding-cache key).

    ``embed_text`` is a short "<path> <symbol>" line, then, in the later parts of a split
    definition, its signature, then the code. A path or signature that would take more than
    a quarter of the model's window is shortened there, so the code itself keeps the room.
    """

    chunk: Chunk
    embed_text: str


def _header_line(path: str, symbol: str) -> str:
    return f"{path} {symbol}" if symbol else path


def _join(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


@dataclass(slots=True)
class Unit:
    """Rows that go into the same chunk: a definition, a statement, a paragraph."""

    start: int  # 0-based rows, inclusive
    end: int
    nodes: list[Node]  # what the rows can be split into when they do not fit
    symbol: str
    signature: str = ""  # carried by the parts of a split that do not show it
    sig_row: int = -1
    is_def: bool = False
    attach: bool = False  # takes the comments right above it (definitions, class headers)
    comment: bool = False
    new_run: bool = False  # a Markdown heading: never merged with what comes before
    tokens: int | None = None  # counted when first needed


def last_row(node: Node) -> int:
    """The last row holding the node's text: some nodes end just after their newline."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def covering(units: list[Unit], lines: list[str]) -> list[Unit]:
    """Fill any non-blank rows the tree left out, so every line is searchable."""
    out: list[Unit] = []
    row = 0
    for unit in [*units, Unit(len(lines), len(lines), [], "")]:
        gap = [r for r in range(row, unit.start) if lines[r].strip()]
        if gap:
            out.append(Unit(gap[0], gap[-1], [], ""))
        row = max(row, unit.end + 1)
        out.append(unit)
    return out[:-1]


class _RunLabel(NamedTuple):
    """What every piece of a run shares: its symbol and what goes above its code."""

    symbol: str
    sig_row: int
    header: str
    context: str  # the signature, shown in parts that do not contain sig_row


class Packer:
    """One file's units as pieces of at most ``max_tokens`` tokens (and ``max_lines``
    lines, when set)."""

    def __init__(
        self,
        path: str,
        language: str,
        lines: list[str],
        max_tokens: int,
        count_tokens: Callable[[str], int],
        max_lines: int | None,
    ) -> None:
        self.path, self.language, self.lines = path, language, lines
        self.max_tokens, self.count_tokens, self.max_lines = max_tokens, count_tokens, max_lines
        self.specials = count_tokens("")
        self.newline = max(0, count_tokens("\n") - self.specials)
        if max_tokens - self.specials < 16:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text")

    def _count(self, text: str) -> int:
        """Tokens of ``text`` alone, without the special tokens every input gets."""
        return self.count_tokens(text) - self.specials

    def pieces(self, units: list[Unit]) -> list[Piece]:
        out: list[Piece] = []
        for run in _runs(units):
            out.extend(self._fit_run(run))
        return out

    def _fit_run(self, units: list[Unit]) -> list[Piece]:
        """Most runs fit whole: one tokenizer call. The rest are packed from their parts."""
        first = units[0]
        label = _RunLabel(
            first.symbol, first.sig_row, _header_line(self.path, first.symbol), first.signature
        )
        if not self._too_long(units[0].start, units[-1].end):
            piece, n = self._piece(units, label)
            if n <= self.max_tokens:
                return [piece]
        label, fixed = self._shortened(label)
        if len(units) == 1:
            units = self._split(units[0])
            if not units:
                return self._cut_line(first.start, label, fixed)
        return self._fit(units, label, fixed, self.max_tokens - fixed)

    def _shortened(self, label: _RunLabel) -> tuple[_RunLabel, int]:
        """The label with a header and context of at most a quarter of the window each, and
        what they cost together with the special tokens and newlines."""
        quarter = self.max_tokens // 4
        header, header_tokens = self._shorten(label.header, quarter)
        if header != label.header:  # a path that long: its file name says more than its start
            name = _header_line(PurePosixPath(self.path).name, label.symbol)
            header, header_tokens = self._shorten(name, quarter)
        context, context_tokens = self._shorten(label.context, quarter)
        fixed = self.specials + header_tokens + self.newline
        if context:
            fixed += context_tokens + self.newline
        return label._replace(header=header, context=context), fixed

    def _shorten(self, text: str, limit: int) -> tuple[str, int]:
        """``text``, or its first line, or less: whatever fits in ``limit`` tokens."""
        tokens = self._count(text) if text else 0
        if tokens > limit:
            text = text.split("\n", 1)[0]
            tokens = self._count(text)
        while tokens > limit:
            text = text[: len(text) // 2]
            tokens = self._count(text) if text else 0
        return text, tokens

    def _fit(self, units: list[Unit], label: _RunLabel, fixed: int, budget: int) -> list[Piece]:
        """Pack by estimate, check each part with a real count, tighten where it was wrong."""
        out: list[Piece] = []
        for part in self._pack(units, budget):
            piece, n = self._piece(part, label)
            if n <= self.max_tokens:
                out.append(piece)
                continue
            smaller = part if len(part) > 1 else self._split(part[0])
            if smaller:
                out.extend(self._fit(smaller, label, fixed, budget - (n - self.max_tokens)))
            else:
                out.extend(self._cut_line(part[0].start, label, fixed))
        return out

    def _pack(self, units: list[Unit], budget: int) -> list[list[Unit]]:
        """Fill parts in order up to ``budget`` tokens, splitting units that cannot fit.

        Parts aim at an even share of the total, so a long function does not end in a
        two-line fragment.
        """
        total = sum(self._tokens(unit) + self.newline for unit in units)
        target = total / -(-total // max(1, budget))
        parts: list[list[Unit]] = []
        part: list[Unit] = []
        used = 0
        queue = deque(units)
        while queue:
            unit = queue.popleft()
            tokens = self._tokens(unit)
            if tokens > budget or self._too_long(unit.start, unit.end):
                smaller = self._split(unit)
                if smaller:
                    queue.extendleft(reversed(smaller))
                    continue
            cost = tokens + (self.newline if part else 0)
            full = used + cost > budget or used + cost / 2 > target
            if part and (full or self._too_long(part[0].start, unit.end)):
                parts.append(part)
                part, used, cost = [], 0, tokens
            part.append(unit)
            used += cost
        if part:
            parts.append(part)
        return parts

    def _too_long(self, start: int, end: int) -> bool:
        if not self.max_lines:  # None (or 0): no limit on lines
            return False
        return end - start >= self.max_lines

    def _tokens(self, unit: Unit) -> int:
        if unit.tokens is None:
            unit.tokens = self._count("\n".join(self.lines[unit.start : unit.end + 1]))
        return unit.tokens

    def _piece(self, part: list[Unit], label: _RunLabel) -> tuple[Piece, int]:
        start, end = part[0].start, part[-1].end
        return self._make(start, end, "\n".join(self.lines[start : end + 1]), label)

    def _make(self, start: int, end: int, text: str, label: _RunLabel) -> tuple[Piece, int]:
        chunk = Chunk(self.path, self.language, start + 1, end + 1, label.symbol, text)
        shows_signature = start <= label.sig_row <= end
        embed = _join(label.header, "" if shows_signature else label.context, text)
        return Piece(chunk, embed), self.count_tokens(embed)

    def _split(self, unit: Unit) -> list[Unit]:
        """Smaller units covering ``unit``: its syntax children, else paragraphs or lines.

        Children that share a row stay together (a chunk is whole lines), so when all of a
        node's children share rows we look one level deeper. Empty for a single line. Only
        rows and nodes matter from here on: the run's label already fixed the symbol.
        """
        if unit.start == unit.end:
            return []
        level = list(unit.nodes)
        while level:
            spans = _with_gaps(_row_groups(level), unit.start, unit.end, self.lines)
            if len(spans) >= 2:
                return self._share_out(unit, [Unit(s, e, n, unit.symbol) for s, e, n in spans])
            if not any(node.child_count for node in level):
                break
            level = [c for node in level for c in (node.children or (node,))]
        blocks = _text_blocks(self.lines, unit.start, unit.end)
        return self._share_out(unit, [Unit(s, e, [], unit.symbol) for s, e in blocks])

    def _share_out(self, unit: Unit, parts: list[Unit]) -> list[Unit]:
        """``parts``, the largest one counted as what the others leave of ``unit``'s count
        when that is far more than fits.

        Deeply nested code splits into a line or two plus a part holding all the rest, level
        after level: counting that rest every time takes time quadratic in the depth (minutes
        for a generated 1 MB file). The estimate is only trusted where it is far from the
        limit, since counts add up only closely; a part estimated that large is split again.
        """
        if unit.tokens is None or len(parts) < 2:
            return parts
        largest = max(parts, key=lambda part: part.end - part.start)
        rest = sum(self._tokens(part) + self.newline for part in parts if part is not largest)
        if unit.tokens - rest > 2 * self.max_tokens:
            largest.tokens = unit.tokens - rest
        return parts

    def _cut_line(self, row: int, label: _RunLabel, fixed: int) -> list[Piece]:
        """The last resort for one line too long for the model: cut it by characters."""
        line, pieces, pos = self.lines[row], [], 0
        room = self.max_tokens - fixed
        take = max(1, int(room * len(line) / max(1, self._count(line)) * 0.9))
        while pos < len(line):
            end = _soft_break(line, pos, min(len(line), pos + take))
            piece, n = self._make(row, row, line[pos:end], label)
            if n > self.max_tokens:  # denser text than estimated: take less, try again
                if end - pos == 1:
                    raise ValueError(f"max_tokens={self.max_tokens} cannot hold one character")
                take = max(1, min(end - pos - 1, int((end - pos) * room / (n - fixed) * 0.9)))
                continue
            pieces.append(piece)
            pos = end
        return pieces


def _runs(units: list[Unit]) -> Iterator[list[Unit]]:
    """Definitions alone; neighbouring other units of the same scope together."""
    run: list[Unit] = []
    for unit in units:
        if run and (
            unit.is_def
            or run[-1].is_def
            or unit.new_run
            or unit.symbol != run[-1].symbol
            or unit.sig_row != run[-1].sig_row
        ):
            yield run
            run = []
        run.append(unit)
    if run:
        yield run


_Span = tuple[int, int, list[Node]]  # first row, last row, the nodes on them


def _row_groups(nodes: list[Node]) -> list[_Span]:
    """Nodes in runs that share rows: a chunk boundary can only fall between runs."""
    groups: list[_Span] = []
    for node in nodes:
        start, end = node.start_point.row, last_row(node)
        if groups and start <= groups[-1][1]:
            first, last, members = groups[-1]
            members.append(node)
            groups[-1] = (first, max(last, end), members)
        else:
            groups.append((start, end, [node]))
    return groups


def _with_gaps(groups: list[_Span], start: int, end: int, lines: list[str]) -> list[_Span]:
    """The groups plus any non-blank rows between them, within start..end."""
    spans: list[_Span] = []
    row = start
    for first, last, nodes in [*groups, (end + 1, end + 1, [])]:
        gap = [r for r in range(row, min(first, end + 1)) if lines[r].strip()]
        if gap:
            spans.append((gap[0], gap[-1], []))
        if first <= end:
            spans.append((max(first, row), min(last, end), nodes))
        row = max(row, last + 1)
    return [span for span in spans if span[0] <= span[1]]


def _text_blocks(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """Rows start..end in paragraphs, else blocks that start at column 0, else lines."""
    rows = [r for r in range(start, end + 1) if lines[r].strip()]
    for starts_block in (lambda r, prev: r != prev + 1, lambda r, prev: not lines[r][0].isspace()):
        blocks: list[list[int]] = []
        for r in rows:
            if blocks and not starts_block(r, blocks[-1][-1]):
                blocks[-1].append(r)
            else:
                blocks.append([r])
        if len(blocks) >= 2:
            return [(block[0], block[-1]) for block in blocks]
    return [(r, r) for r in rows]


def _soft_break(line: str, pos: int, end: int) -> int:
    """Move a cut back to just after a space, if one is in the second half."""
    if end >= len(line):
        return end
    space = line.rfind(" ", pos + (end - pos) // 2, end)
    return space + 1 if space > pos else end
