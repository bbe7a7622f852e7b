"""The preview: a result's whole file, coloured, with line numbers and the result's lines
marked.

The marked lines are painted as one band under the text, from the left edge to the right.
They used to be full-width extra selections, which Qt draws in two pieces per line: the
text, then the rest of the line from the text's natural width, which counts the overhang
of a last italic or bold glyph while the first piece does not. The base colour showed
through the gap as a stripe at the end of such lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QPainter,
    QPalette,
    QTextBlock,
    QTextCursor,
)
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from app.core.models import human_size
from app.gui.highlight import CodeHighlighter, mix

PREVIEW_MAX_BYTES = 4 << 20
GUTTER_PADDING = 6  # pixels each side of the line numbers
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
        self.gutter = _LineNumbers(self)
        self.blockCountChanged.connect(self._fit_gutter)
        self.updateRequest.connect(self._follow_text)
        self._fit_gutter()

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

    # --- the line-number gutter -----------------------------------------------------------

    def gutter_width(self) -> int:
        digits = len(str(max(1, self.blockCount())))
        return 2 * GUTTER_PADDING + digits * self.gutter.bold_metrics().horizontalAdvance("9")

    def _fit_gutter(self, *_) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _follow_text(self, rect: QRect, dy: int) -> None:
        """Scroll or repaint the gutter with the text."""
        if dy:
            self.gutter.scroll(0, dy)
        else:
            self.gutter.update(0, rect.y(), self.gutter.width(), rect.height())
        if rect.contains(self.viewport().rect()):
            self._fit_gutter()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        inside = self.contentsRect()
        self.gutter.setGeometry(QRect(inside.left(), inside.top(), self.gutter_width(),
                                      inside.height()))  # fmt: skip

    def paint_gutter(self, painter: QPainter) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        painter.fillRect(self.gutter.rect(), palette.color(QPalette.ColorRole.Base))
        band = self._marked_band()
        if band is not None:
            painter.fillRect(QRectF(0, band[0], self.gutter.width(), band[1] - band[0]),
                             self.mark_colour())  # fmt: skip
        first, last = self.marked_lines()
        plain, bold = self.font(), self.gutter.bold_font()
        dimmed = mix(text, palette.color(QPalette.ColorRole.Base), 0.5)
        width = self.gutter.width() - GUTTER_PADDING
        for block, top, bottom in self._visible_blocks():
            number = block.blockNumber() + 1
            marked = first <= number <= last
            painter.setFont(bold if marked else plain)
            painter.setPen(text if marked else dimmed)
            painter.drawText(QRectF(0, top, width, bottom - top),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                             str(number))  # fmt: skip


class _LineNumbers(QWidget):
    """The preview's gutter; the preview paints it."""

    def __init__(self, preview: Preview) -> None:
        super().__init__(preview)
        self.preview = preview

    def bold_font(self) -> QFont:
        font = QFont(self.preview.font())
        font.setBold(True)
        return font

    def bold_metrics(self) -> QFontMetrics:
        return QFontMetrics(self.bold_font())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.preview.gutter_width(), 0)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        self.preview.paint_gutter(painter)
        painter.end()
