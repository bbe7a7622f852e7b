"""Syntax colours for the preview, from the same tree-sitter grammars the chunker uses.

One parse per file gives token spans per line (comments, strings, numbers, keywords, and
the names definitions introduce); the highlighter paints each line from them. Languages
without a grammar are shown plain. Also the colours and fonts the preview and the results share.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette, QSyntaxHighlighter, QTextCharFormat

from app.core.languages import GRAMMARS, language_for, parse

_KINDS = ("comment", "string", "number", "keyword", "definition")
_NAME_PARENTS = (
    "function",
    "method",
    "class",
    "struct",
    "interface",
    "enum",
    "trait",
    "module",
    "type_spec",
    "impl",
)


def _kind(node) -> str | None:
    kind = node.type
    if "comment" in kind:
        return "comment"
    if "string" in kind or kind in ("char_literal", "character_literal", "heredoc_body"):
        return "string"
    if any(k in kind for k in ("integer", "float", "number")) and node.is_named:
        return "number"
    if not node.is_named and kind.isalpha() and kind.islower() and len(kind) > 1:
        return "keyword"  # "def", "return", "func", "impl" ... (anonymous nodes)
    if kind in ("identifier", "type_identifier", "field_identifier", "constant", "name") and (
        node.parent is not None
        and any(p in node.parent.type for p in _NAME_PARENTS)
        and node.parent.child_by_field_name("name") == node
    ):
        return "definition"
    return None


def token_spans(path: str, text: str) -> dict[int, list[tuple[int, int, str]]]:
    """line (0-based) -> [(start column, length, kind)], in characters."""
    language = language_for(path)
    if language not in GRAMMARS:
        return {}
    data = text.encode("utf-8", errors="replace")
    tree = parse(language, data)
    lines = text.split("\n")
    spans: dict[int, list[tuple[int, int, str]]] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = _kind(node)
        if kind is None:
            stack.extend(node.children)
            continue
        (r0, c0), (r1, c1) = node.start_point, node.end_point
        for row in range(r0, min(r1, len(lines) - 1) + 1):
            line_bytes = lines[row].encode("utf-8", errors="replace")
            start = len(line_bytes[:c0].decode("utf-8", errors="replace")) if row == r0 else 0
            end = (
                len(line_bytes[:c1].decode("utf-8", errors="replace"))
                if row == r1
                else len(lines[row])
            )
            if end > start:
                spans.setdefault(row, []).append((start, end - start, kind))
    return spans


class CodeHighlighter(QSyntaxHighlighter):
    def __init__(self, document, palette: QPalette) -> None:
        super().__init__(document)
        self.spans: dict[int, list[tuple[int, int, str]]] = {}
        self.formats = _formats(palette)

    def set_source(self, path: str, text: str) -> None:
        try:
            self.spans = token_spans(path, text)
        except Exception:  # noqa: BLE001 - colours are a nicety; show the text plain
            self.spans = {}

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt's name
        for start, length, kind in self.spans.get(self.currentBlock().blockNumber(), ()):
            self.setFormat(start, length, self.formats[kind])


def _formats(palette: QPalette) -> dict[str, QTextCharFormat]:
    dark = palette.color(QPalette.ColorRole.Base).lightness() < 128
    colours = {
        "comment": "#7f8c8d" if dark else "#6a737d",
        "string": "#98c379" if dark else "#22863a",
        "number": "#d19a66" if dark else "#005cc5",
        "keyword": "#c678dd" if dark else "#d73a49",
        "definition": "#61afef" if dark else "#6f42c1",
    }
    formats = {}
    for kind in _KINDS:
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(colours[kind]))
        if kind in ("keyword", "definition"):
            fmt.setFontWeight(QFont.Weight.Bold)
        if kind == "comment":
            fmt.setFontItalic(True)
        formats[kind] = fmt
    return formats


def mix(colour: QColor, other: QColor, amount: float) -> QColor:
    """``colour`` moved ``amount`` (0..1) of the way to ``other``: dimmed text is the text
    colour mixed with the background, so it follows any palette."""
    return QColor.fromRgbF(
        *(
            a + (b - a) * amount
            for a, b in zip(colour.getRgbF()[:3], other.getRgbF()[:3], strict=True)
        )
    )


def dimmed(text: QColor, background: QColor) -> QColor:
    """Secondary text (folders, line numbers) on ``background``."""
    return mix(text, background, 0.45)


def bolder(font: QFont) -> QFont:
    """``font`` in bold: marked line numbers, result titles."""
    bold = QFont(font)
    bold.setBold(True)
    return bold


def match_background(palette: QPalette) -> QColor:
    """Behind the query's words in the preview and the results: amber, translucent, so it
    reads on the base colour, the marked lines and a selected row alike."""
    dark = palette.color(QPalette.ColorRole.Base).lightness() < 128
    return QColor(255, 176, 0, 120 if dark else 110)
