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

A definition that fits costs one tokenizer call. One that does not is split between its
statements: each is counted once, packing adds the counts up (an estimate: a tokenizer may
count a joined text differently), and each finished part is counted once more to check. Every
part carries the definition's signature, so it still says what it belongs to.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NamedTuple

from tree_sitter import Node

from app.core.languages import (
    CLOSERS,
    COMMENTS,
    GRAMMARS,
    JS_FUNCTIONS,
    NEEDS_BODY,
    Grammar,
    language_for,
    language_from_shebang,
    parse,
)

log = logging.getLogger(__name__)

# Line windows (for files we do not parse) stay short enough to read as one search result.
MAX_WINDOW_LINES = 40
# The smallest chunk limit a user may set: below it a chunk holds a few lines and search
# loses the context that makes a match recognisable.
MIN_CHUNK_TOKENS = 64
# Definitions nested deeper than this are chunked as the plain code around them. Real code
# stays far below it; a generated or hostile file may nest thousands deep, and following
# that by recursion overflows the stack (a RecursionError; in a thread, a segfault).
MAX_NESTING = 100


def chunk_limit(tokens: int) -> int:
    """A chunk limit as a user may set it: 0 (or less) is the model's own limit, anything
    else is at least :data:`MIN_CHUNK_TOKENS`."""
    return 0 if tokens <= 0 else max(tokens, MIN_CHUNK_TOKENS)


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


class _Kind(NamedTuple):
    kind: str  # "def", "scope" or "container"
    name: str
    node: Node  # the definition itself, inside any wrapper
    body: Node | None
    prefix: str = ""  # members' symbol prefix, when it is not `name` (Rust impl blocks)


def _classify(node: Node, grammar: Grammar, depth: int) -> _Kind | None:
    """What ``node``, nested ``depth`` levels deep, is for chunking; None for any other
    statement, and for everything below :data:`MAX_NESTING`."""
    if depth > MAX_NESTING:
        return None
    kind = node.type
    if kind in grammar.wrappers:
        return _unwrap(node, grammar, depth)
    if kind == "ERROR" or kind in grammar.containers:
        return _Kind("container", "", node, node.child_by_field_name("body"))
    conditional = kind in grammar.conditionals or kind in grammar.blocks
    if conditional and _defines(node, grammar, depth):
        return _Kind("container", "", node, None)
    if kind in grammar.defs or kind in grammar.scopes:
        body = node.child_by_field_name("body")
        if kind == "type_definition":  # C: only `typedef struct {...} name;` is a definition
            body = (node.child_by_field_name("type") or node).child_by_field_name("body")
            if body is None:
                return None
        if body is None and kind in NEEDS_BODY:
            return None
        name, prefix = _names(node)
        is_scope = kind in grammar.scopes and body is not None
        return _Kind("scope" if is_scope else "def", name, node, body, prefix)
    return _js_function(node) if grammar.js else None


def _defines(node: Node, grammar: Grammar, depth: int) -> bool:
    """Whether a conditional holds a definition, within :data:`MAX_NESTING`. A loop, not
    recursion: conditionals nest as deep as a file likes."""
    stack = [(node, depth)]
    while stack:
        node, depth = stack.pop()
        for child in node.named_children:
            kind = child.type
            if kind in grammar.defs or kind in grammar.scopes or kind in grammar.wrappers:
                return True
            if (kind in grammar.conditionals or kind in grammar.blocks) and depth < MAX_NESTING:
                stack.append((child, depth + 1))
    return False


def _unwrap(node: Node, grammar: Grammar, depth: int) -> _Kind | None:
    for name in grammar.wrappers[node.type]:
        inner = node.child_by_field_name(name) if name else _last_named(node)
        if inner is not None:
            found = _classify(inner, grammar, depth + 1)
            if found and not found.name and node.type == "export_statement":
                found = found._replace(name="default")
            return found
    return None


def _js_function(node: Node) -> _Kind | None:
    """Functions that JavaScript binds to names: variables, assignments, class fields."""
    kind = node.type
    if kind in ("lexical_declaration", "variable_declaration"):
        declarator = next((c for c in node.named_children if c.type == "variable_declarator"), None)
        if declarator is None:
            return None
        name = declarator.child_by_field_name("name")
        value = declarator.child_by_field_name("value")
    elif kind == "assignment_expression":
        name, value = node.child_by_field_name("left"), node.child_by_field_name("right")
    elif kind in ("field_definition", "public_field_definition"):
        name = node.child_by_field_name("property") or node.child_by_field_name("name")
        value = node.child_by_field_name("value")
    elif kind in JS_FUNCTIONS:  # export default function () {...}
        name, value = node.child_by_field_name("name"), node
    else:
        return None
    if value is None or value.type not in JS_FUNCTIONS:
        return None
    return _Kind("def", _clean(_text(name)), node, value.child_by_field_name("body"))


def _names(node: Node) -> tuple[str, str]:
    """(symbol name, members' prefix if different) for a definition."""
    kind = node.type
    if kind == "impl_item":  # Rust: "impl Display for Store", methods "Store.fmt"
        target = _clean(_text(node.child_by_field_name("type")))
        trait = node.child_by_field_name("trait")
        return (f"impl {_clean(_text(trait))} for {target}" if trait else f"impl {target}"), target
    receiver = node.child_by_field_name("receiver")
    if receiver is not None:  # Go method: "Store.Open"
        receiver_type = next((c.child_by_field_name("type") for c in receiver.named_children), None)
        owner = re.sub(r"\[.*\]", "", _text(receiver_type)).lstrip("*")
        return _dotted(_clean(owner), _text(node.child_by_field_name("name"))), ""
    if kind == "type_declaration":  # Go: `type Store struct {...}`
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        return _clean(_text(spec and spec.child_by_field_name("name"))), ""
    name = node.child_by_field_name("name")
    if name is None:  # C and C++ name functions through a chain of declarators
        name = node.child_by_field_name("declarator")
        while name is not None and name.child_by_field_name("declarator") is not None:
            name = name.child_by_field_name("declarator")
    return _clean(_text(name)), ""


_TEMPLATE_ARGS = re.compile(r"<[^<>]*>")


def _clean(name: str) -> str:
    """One spelling for qualified names: `Point<T>::area` and `App\\User` become dotted."""
    name = " ".join(name.split())
    while "<" in name and _TEMPLATE_ARGS.search(name):
        name = _TEMPLATE_ARGS.sub("", name)
    return name.replace("::", ".").replace("\\", ".").strip("*& ")[:80]


def _dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", errors="replace") if node is not None else ""


def _last_named(node: Node) -> Node | None:
    named = node.named_children
    return named[-1] if named else None


def _last_row(node: Node) -> int:
    """The last row holding the node's text: some nodes end just after their newline."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _signature(node: Node, body: Node | None) -> str:
    """The definition up to its body: `def f(a, b):`, `int f(int a) {`."""
    source = node.text
    if body is None:
        return source.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    head = source[: body.start_byte - node.start_byte]
    if source[body.start_byte - node.start_byte : body.start_byte - node.start_byte + 1] == b"{":
        head += b"{"
    lines = head.decode("utf-8", errors="replace").split("\n")
    return "\n".join(line.strip() for line in lines if line.strip())


# --- Units: what the chunker packs -------------------------------------------------------


@dataclass(slots=True)
class _Unit:
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


class _Scope(NamedTuple):
    prefix: str = ""  # for member names: "Outer.Inner"
    symbol: str = ""  # for the scope's own lines (header, fields)
    signature: str = ""
    sig_row: int = -1


# A comment block this many blank rows above a definition still introduces it ("# Helpers
# for the wire format", then a blank line, then the function): kept apart, it would be a
# search result with no code in it.
_ATTACH_GAP = 2


def _append(out: list[_Unit], unit: _Unit) -> None:
    """Add in row order: leading comments join a definition, rows never split."""
    if unit.attach:
        while out and out[-1].comment and unit.start - out[-1].end - 1 <= _ATTACH_GAP:
            above = out.pop()
            unit.start, unit.nodes = above.start, above.nodes + unit.nodes
    if not out or unit.start > out[-1].end:
        out.append(unit)
        return
    prev = out[-1]  # sharing a row: one unit, a definition if either is
    if unit.is_def and not prev.is_def:
        unit.start, unit.end = min(prev.start, unit.start), max(prev.end, unit.end)
        unit.nodes = prev.nodes + unit.nodes
        out[-1] = unit
    else:  # in place: a minified file fuses thousands of nodes
        prev.end = max(prev.end, unit.end)
        prev.nodes.extend(unit.nodes)
        prev.comment = prev.comment and unit.comment


class _Outline:
    """A syntax tree as units: one per definition, one per other statement."""

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        self.depth = 0  # how many scopes and containers the nodes being added are in

    def units(
        self, nodes: Sequence[Node], scope: _Scope, out: list[_Unit], leading: bool = False
    ) -> list[_Unit]:
        """Units for ``nodes``, added to ``out``; ``leading`` for a conditional's own lines."""
        self.depth += 1
        for node in nodes:
            self._add(out, node, scope, leading and node.type not in self.grammar.blocks)
        self.depth -= 1
        return out

    def _add(self, out: list[_Unit], node: Node, scope: _Scope, leading: bool) -> None:
        if not node.is_named and node.type in CLOSERS and out:
            out[-1].end = max(out[-1].end, _last_row(node))
            out[-1].nodes.append(node)
            return
        found = _classify(node, self.grammar, self.depth) if node.is_named else None
        if found is None:
            unit = self._plain(node, scope)
            unit.comment = unit.comment or leading
            _append(out, unit)
        elif found.kind == "container":
            conditional = found.node.type in self.grammar.conditionals
            self._extend(out, node, self.units(_looked_through(found), scope, [], conditional))
        elif found.kind == "scope":
            self._add_scope(out, node, found, scope)
        else:
            _append(out, self._definition(node, found, scope))

    def _plain(self, node: Node, scope: _Scope) -> _Unit:
        return _Unit(
            node.start_point.row,
            _last_row(node),
            [node],
            scope.symbol,
            scope.signature,
            scope.sig_row,
            comment=_is_comment(node),
        )

    def _definition(self, node: Node, found: _Kind, scope: _Scope) -> _Unit:
        return _Unit(
            node.start_point.row,
            _last_row(node),
            [node],
            _dotted(scope.prefix, found.name),
            _signature(found.node, found.body),
            found.node.start_point.row,
            is_def=True,
            attach=True,
        )

    def _add_scope(self, out: list[_Unit], node: Node, found: _Kind, scope: _Scope) -> None:
        """A class: its header and fields in chunks of their own, each method in another."""
        inner = _Scope(
            _dotted(scope.prefix, found.prefix or found.name),
            _dotted(scope.prefix, found.name),
            _signature(found.node, found.body),
            found.node.start_point.row,
        )
        children = found.node.children
        at = next(i for i, c in enumerate(children) if c.id == found.body.id)
        header = _Unit(
            node.start_point.row,
            max([node.start_point.row] + [_last_row(c) for c in children[:at]]),
            children[:at],
            inner.symbol,
            inner.signature,
            inner.sig_row,
            attach=True,
        )
        local = self.units(found.body.children, inner, [header])
        if len(local) == 1 or not any(unit.is_def for unit in local):  # one line, or no methods
            _append(out, self._definition(node, found, scope))
            return
        first = local[1]
        if first.is_def and first.start - header.end - 1 <= _ATTACH_GAP:
            # Nothing but the header above the first method (no docstring, no fields): on
            # its own it would be a one-line chunk, so it goes with that method.
            first.start, first.nodes = header.start, header.nodes + first.nodes
            local.pop(0)
        self._extend(out, node, self.units(children[at + 1 :], inner, local))

    def _extend(self, out: list[_Unit], node: Node, local: list[_Unit]) -> None:
        """Add a scope's or container's units, stretched over the whole node (wrappers)."""
        if not local:
            _append(out, self._plain(node, _Scope()))
            return
        local[0].start = min(local[0].start, node.start_point.row)
        local[-1].end = max(local[-1].end, _last_row(node))
        for unit in local:
            _append(out, unit)


def _is_comment(node: Node) -> bool:
    """Comments and Rust attributes; not a "#!" line, which belongs to the whole file."""
    return node.type in COMMENTS and not node.text.startswith(b"#!")


def _looked_through(found: _Kind) -> list[Node]:
    """A container's children with its body's children in place of the body."""
    if found.body is None:
        return found.node.children
    children: list[Node] = []
    for child in found.node.children:
        children.extend(child.children if child.id == found.body.id else (child,))
    return children


def _syntax_units(language: str, text: str) -> list[_Unit] | None:
    try:
        tree = parse(language, text.encode("utf-8", errors="replace"))
    except Exception:  # a grammar bug must not stop indexing: line windows still work
        log.warning(
            "tree-sitter could not parse %s text; using line windows", language, exc_info=True
        )
        return None
    return _Outline(GRAMMARS[language]).units(tree.root_node.children, _Scope(), [])


_HEADING = re.compile(r" {0,3}(#{1,6})\s+(.*?)[\s#]*$")


def _text_units(lines: list[str], markdown: bool) -> list[_Unit]:
    """Paragraphs; in Markdown, each heading starts a section named after it."""
    units: list[_Unit] = []
    symbol, start, last, fenced, heading_next = "", -1, -1, False, False

    def close() -> None:
        nonlocal start, heading_next
        if start >= 0:
            units.append(_Unit(start, last, [], symbol, new_run=heading_next))
            start, heading_next = -1, False

    for row, line in enumerate(lines):
        stripped = line.strip()
        if markdown and stripped.startswith(("```", "~~~")):
            fenced = not fenced
        heading = _HEADING.match(line) if markdown and not fenced else None
        if heading or not (stripped or fenced):
            close()
        if heading:
            symbol, heading_next = heading.group(2)[:80], True
        if stripped:
            start, last = (row if start < 0 else start), row
    close()
    return units


def _covering(units: list[_Unit], lines: list[str]) -> list[_Unit]:
    """Fill any non-blank rows the tree left out, so every line is searchable."""
    out: list[_Unit] = []
    row = 0
    for unit in [*units, _Unit(len(lines), len(lines), [], "")]:
        gap = [r for r in range(row, unit.start) if lines[r].strip()]
        if gap:
            out.append(_Unit(gap[0], gap[-1], [], ""))
        row = max(row, unit.end + 1)
        out.append(unit)
    return out[:-1]


# --- Packing units into pieces that fit ----------------------------------------------------


class _Run(NamedTuple):
    """What every piece of a run shares: its symbol and what goes above its code."""

    symbol: str
    sig_row: int
    header: str
    context: str  # the signature, shown in parts that do not contain sig_row


class _Packer:
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

    def pieces(self, units: list[_Unit]) -> list[Piece]:
        out: list[Piece] = []
        for run in _runs(units):
            out.extend(self._fit_run(run))
        return out

    def _fit_run(self, units: list[_Unit]) -> list[Piece]:
        """Most runs fit whole: one tokenizer call. The rest are packed from their parts."""
        first = units[0]
        run = _Run(
            first.symbol, first.sig_row, _header_line(self.path, first.symbol), first.signature
        )
        if not self._too_long(units[0].start, units[-1].end):
            piece, n = self._piece(units, run)
            if n <= self.max_tokens:
                return [piece]
        run, fixed = self._shortened(run)
        if len(units) == 1:
            units = self._split(units[0])
            if not units:
                return self._cut_line(first.start, run, fixed)
        return self._fit(units, run, fixed, self.max_tokens - fixed)

    def _shortened(self, run: _Run) -> tuple[_Run, int]:
        """The run with a header and context of at most a quarter of the window each, and
        what they cost together with the special tokens and newlines."""
        quarter = self.max_tokens // 4
        header, header_tokens = self._shorten(run.header, quarter)
        if header != run.header:  # a path that long: its file name says more than its start
            name = _header_line(PurePosixPath(self.path).name, run.symbol)
            header, header_tokens = self._shorten(name, quarter)
        context, context_tokens = self._shorten(run.context, quarter)
        fixed = self.specials + header_tokens + self.newline
        if context:
            fixed += context_tokens + self.newline
        return run._replace(header=header, context=context), fixed

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

    def _fit(self, units: list[_Unit], run: _Run, fixed: int, budget: int) -> list[Piece]:
        """Pack by estimate, check each part with a real count, tighten where it was wrong."""
        out: list[Piece] = []
        for part in self._pack(units, budget):
            piece, n = self._piece(part, run)
            if n <= self.max_tokens:
                out.append(piece)
                continue
            smaller = part if len(part) > 1 else self._split(part[0])
            if smaller:
                out.extend(self._fit(smaller, run, fixed, budget - (n - self.max_tokens)))
            else:
                out.extend(self._cut_line(part[0].start, run, fixed))
        return out

    def _pack(self, units: list[_Unit], budget: int) -> list[list[_Unit]]:
        """Fill parts in order up to ``budget`` tokens, splitting units that cannot fit.

        Parts aim at an even share of the total, so a long function does not end in a
        two-line fragment.
        """
        total = sum(self._tokens(unit) + self.newline for unit in units)
        target = total / -(-total // max(1, budget))
        parts: list[list[_Unit]] = []
        part: list[_Unit] = []
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
        return bool(self.max_lines) and end - start >= self.max_lines

    def _tokens(self, unit: _Unit) -> int:
        if unit.tokens is None:
            unit.tokens = self._count("\n".join(self.lines[unit.start : unit.end + 1]))
        return unit.tokens

    def _piece(self, part: list[_Unit], run: _Run) -> tuple[Piece, int]:
        start, end = part[0].start, part[-1].end
        return self._make(start, end, "\n".join(self.lines[start : end + 1]), run)

    def _make(self, start: int, end: int, text: str, run: _Run) -> tuple[Piece, int]:
        chunk = Chunk(self.path, self.language, start + 1, end + 1, run.symbol, text)
        shows_signature = start <= run.sig_row <= end
        embed = _join(run.header, "" if shows_signature else run.context, text)
        return Piece(chunk, embed), self.count_tokens(embed)

    def _split(self, unit: _Unit) -> list[_Unit]:
        """Smaller units covering ``unit``: its syntax children, else paragraphs or lines.

        Children that share a row stay together (a chunk is whole lines), so when all of a
        node's children share rows we look one level deeper. Empty for a single line. Only
        rows and nodes matter from here on: the run already fixed the symbol.
        """
        if unit.start == unit.end:
            return []
        level = list(unit.nodes)
        while level:
            spans = _with_gaps(_row_groups(level), unit.start, unit.end, self.lines)
            if len(spans) >= 2:
                return self._share_out(unit, [_Unit(s, e, n, unit.symbol) for s, e, n in spans])
            if not any(node.child_count for node in level):
                break
            level = [c for node in level for c in (node.children or (node,))]
        blocks = _text_blocks(self.lines, unit.start, unit.end)
        return self._share_out(unit, [_Unit(s, e, [], unit.symbol) for s, e in blocks])

    def _share_out(self, unit: _Unit, parts: list[_Unit]) -> list[_Unit]:
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

    def _cut_line(self, row: int, run: _Run, fixed: int) -> list[Piece]:
        """The last resort for one line too long for the model: cut it by characters."""
        line, pieces, pos = self.lines[row], [], 0
        room = self.max_tokens - fixed
        take = max(1, int(room * len(line) / max(1, self._count(line)) * 0.9))
        while pos < len(line):
            end = _soft_break(line, pos, min(len(line), pos + take))
            piece, n = self._make(row, row, line[pos:end], run)
            if n > self.max_tokens:  # denser text than estimated: take less, try again
                if end - pos == 1:
                    raise ValueError(f"max_tokens={self.max_tokens} cannot hold one character")
                take = max(1, min(end - pos - 1, int((end - pos) * room / (n - fixed) * 0.9)))
                continue
            pieces.append(piece)
            pos = end
        return pieces


def _runs(units: list[_Unit]) -> Iterator[list[_Unit]]:
    """Definitions alone; neighbouring other units of the same scope together."""
    run: list[_Unit] = []
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
        start, end = node.start_point.row, _last_row(node)
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


# --- The entry point ---------------------------------------------------------------------


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
    units = _syntax_units(language, text) if language in GRAMMARS else None
    max_lines = None if units is not None else MAX_WINDOW_LINES
    if units is None:
        units = _text_units(lines, markdown=language == "markdown")
    packer = _Packer(path, language, lines, max_tokens, count_tokens, max_lines)
    return packer.pieces(_covering(units, lines))
