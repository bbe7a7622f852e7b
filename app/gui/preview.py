"""The preview: a result's whole file, coloured, with the result's lines marked.

The marked lines are painted as one band under the text, from the left edge to the right.
They used to be full-width extra selections, which Qt draws in two pieces per line: the
text, then the rest of the line from the text's natural width, which counts the overhang
of a last italic or bold glyph while the first piece does not. The base colour showed
through the gap as a stripe at the end of such lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFontDatabase, QPainter, QPalette, QTextBlock, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from app.core.models import human_size
from app.gui.highlight import CodeHighlighter

PREVIEW_MAX_BYTES = 4 << 20
CONTEXT_LINES = 3  # shown above a result's first line


class Preview(QPlainTextEdit):
    """A result's whole file, coloured, with its lines marked and scrolled into view."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.highlighter = CodeHighlighter(self.document(), self.palette())
        self.path: Path | None = None
        self.lines = (0, 0)  # as asked for; marked_lines() is what the file has of them
        self.setPlaceholderText("Select a result to see its code here.")

    def show_file(self, path: Path, rel: str, start: int, end: int,
                  stored: str | None = None) -> None:  # fmt: skip
        """``stored``: the result's text as indexed, shown (at its own lines) when the
        file is not here (a shared index without a checkout)."""
        try:
            if path.stat().st_size > PREVIEW_MAX_BYTES:
                text = f"{rel} is over {human_size(PREVIEW_MAX_BYTES)}; open it in your editor."
            else:
                text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            if stored is not None:
                text = "\n" * (start - 1) + stored
            else:
                text = f"{rel} cannot be read now ({exc.strerror}). Re-index the project."
        self.path, self.lines = path, (start, end)
        self.highlighter.set_source(rel, text)
        self.setPlainText(text)
        self.setTextCursor(QTextCursor(self.document().findBlockByNumber(max(0, start - 1))))
        self.verticalScrollBar().setValue(max(0, start - 1 - CONTEXT_LINES))

    def clear_file(self) -> None:
        self.path, self.lines = None, (0, 0)
        self.highlighter.spans = {}
        self.setPlainText("")

    def marked_lines(self) -> tuple[int, int]:
        """The 1-based lines marked now: the asked-for lines that the file has."""
        start, end = self.lines
        count = self.document().blockCount()
        return (start, min(end, count)) if 1 <= start <= count else (0, 0)

    def mark_colour(self) -> QColor:
        colour = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        colour.setAlpha(60)
        return colour

    def _visible_blocks(self) -> Iterator[tuple[QTextBlock, float, float]]:
        """(block, top, bottom) in viewport coordinates, for the blocks on screen."""
        block = self.firstVisibleBlock()
        top = self.blockBoundingGeometry(block).translated(self.contentOffset()).top()
        height = self.viewport().height()
        while block.isValid() and top <= height:
            bottom = top + self.blockBoundingRect(block).height()
            if block.isVisible():
                yield block, top, bottom
            block, top = block.next(), bottom

    def _marked_band(self) -> tuple[float, float] | None:
        """The top and bottom of the marked lines on screen, if any are."""
        first, last = self.marked_lines()
        rows = [(top, bottom) for block, top, bottom in self._visible_blocks()
                if first <= block.blockNumber() + 1 <= last]  # fmt: skip
        return (rows[0][0], rows[-1][1]) if rows else None

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        band = self._marked_band()
        if band is not None:
            painter = QPainter(self.viewport())
            painter.fillRect(QRectF(0, band[0], self.viewport().width(), band[1] - band[0]),
                             self.mark_colour())  # fmt: skip
            painter.end()
        super().paintEvent(event)
