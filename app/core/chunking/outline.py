"""The outline of a parsed file: its definitions, found in the syntax tree (tree-sitter),
and its other statements, as units to pack.

One unit per definition (function, method, class, ...), named as search shows it
("LRUCache.get"); a class's header and fields in a unit of their own; comments right above
a definition join it; other statements one unit each, merged by packing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import NamedTuple

from tree_sitter import Node

from app.core.chunking.packing import Unit, last_row
from app.core.languages import (
    CLOSERS,
    COMMENTS,
    GRAMMARS,
    JS_FUNCTIONS,
    NEEDS_BODY,
    Grammar,
    parse,
)

log = logging.getLogger(__name__)

# Definitions nested deeper than this are chunked as the plain code around them. Real code
# stays far below it; a generated or hostile file may nest thousands deep, and following
# that by recursion overflows the stack (a RecursionError; in a thread, a segfault).
MAX_NESTING = 100


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


def _source(node: Node) -> bytes:
    """The source bytes of ``node``. tree-sitter has them for every node of a tree that was
    never edited, and the trees here never are (:func:`syntax_units`)."""
    text = node.text
    assert text is not None, "tree-sitter drops a tree's text only once it is edited"
    return text


def _text(node: Node | None) -> str:
    return _source(node).decode("utf-8", errors="replace") if node is not None else ""


def _last_named(node: Node) -> Node | None:
    named = node.named_children
    return named[-1] if named else None


def _signature(node: Node, body: Node | None) -> str:
    """The definition up to its body: `def f(a, b):`, `int f(int a) {`."""
    source = _source(node)
    if body is None:
        return source.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    head = source[: body.start_byte - node.start_byte]
    if source[body.start_byte - node.start_byte : body.start_byte - node.start_byte + 1] == b"{":
        head += b"{"
    lines = head.decode("utf-8", errors="replace").split("\n")
    return "\n".join(line.strip() for line in lines if line.strip())


class _Scope(NamedTuple):
    prefix: str = ""  # for member names: "Outer.Inner"
    symbol: str = ""  # for the scope's own lines (header, fields)
    signature: str = ""
    sig_row: int = -1


# A comment block this many blank rows above a definition still introduces it ("# Helpers
# for the wire format", then a blank line, then the function): kept apart, it would be a
# search result with no code in it.
_ATTACH_GAP = 2


def _append(out: list[Unit], unit: Unit) -> None:
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
        self, nodes: Sequence[Node], scope: _Scope, out: list[Unit], leading: bool = False
    ) -> list[Unit]:
        """Units for ``nodes``, added to ``out``; ``leading`` for a conditional's own lines."""
        self.depth += 1
        for node in nodes:
            self._add(out, node, scope, leading and node.type not in self.grammar.blocks)
        self.depth -= 1
        return out

    def _add(self, out: list[Unit], node: Node, scope: _Scope, leading: bool) -> None:
        if not node.is_named and node.type in CLOSERS and out:
            out[-1].end = max(out[-1].end, last_row(node))
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

    def _plain(self, node: Node, scope: _Scope) -> Unit:
        return Unit(
            node.start_point.row,
            last_row(node),
            [node],
            scope.symbol,
            scope.signature,
            scope.sig_row,
            comment=_is_comment(node),
        )

    def _definition(self, node: Node, found: _Kind, scope: _Scope) -> Unit:
        return Unit(
            node.start_point.row,
            last_row(node),
            [node],
            _dotted(scope.prefix, found.name),
            _signature(found.node, found.body),
            found.node.start_point.row,
            is_def=True,
            attach=True,
        )

    def _add_scope(self, out: list[Unit], node: Node, found: _Kind, scope: _Scope) -> None:
        """A class: its header and fields in chunks of their own, each method in another."""
        body = found.body
        assert body is not None, "_classify makes a scope only of a node with a body"
        inner = _Scope(
            _dotted(scope.prefix, found.prefix or found.name),
            _dotted(scope.prefix, found.name),
            _signature(found.node, found.body),
            found.node.start_point.row,
        )
        children = found.node.children
        at = next(i for i, c in enumerate(children) if c.id == body.id)
        header = Unit(
            node.start_point.row,
            max([node.start_point.row] + [last_row(c) for c in children[:at]]),
            children[:at],
            inner.symbol,
            inner.signature,
            inner.sig_row,
            attach=True,
        )
        local = self.units(body.children, inner, [header])
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

    def _extend(self, out: list[Unit], node: Node, local: list[Unit]) -> None:
        """Add a scope's or container's units, stretched over the whole node (wrappers)."""
        if not local:
            _append(out, self._plain(node, _Scope()))
            return
        local[0].start = min(local[0].start, node.start_point.row)
        local[-1].end = max(local[-1].end, last_row(node))
        for unit in local:
            _append(out, unit)


def _is_comment(node: Node) -> bool:
    """Comments and Rust attributes; not a "#!" line, which belongs to the whole file."""
    return node.type in COMMENTS and not _source(node).startswith(b"#!")


def _looked_through(found: _Kind) -> list[Node]:
    """A container's children with its body's children in place of the body."""
    if found.body is None:
        return found.node.children
    children: list[Node] = []
    for child in found.node.children:
        children.extend(child.children if child.id == found.body.id else (child,))
    return children


def syntax_units(language: str, text: str) -> list[Unit] | None:
    """The outline of ``text`` as units; None if tree-sitter fails on it."""
    try:
        tree = parse(language, text.encode("utf-8", errors="replace"))
    except Exception:  # a grammar bug must not stop indexing: line windows still work
        log.warning(
            "tree-sitter could not parse %s text; using line windows", language, exc_info=True
        )
        return None
    return _Outline(GRAMMARS[language]).units(tree.root_node.children, _Scope(), [])
