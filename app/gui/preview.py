"""The preview: a result's whole file, coloured, with line numbers, the result's lines marked
and the query's words (or a regex's matches) marked inside them; and its panel, which adds
a header (path:lines symbol) and the buttons.

The marked lines are painted as one band under the text, from the left edge to the right.
They used to be full-width extra selections, which Qt draws in two pieces per line: the
text, then the rest of the line from the text's natural width, which counts the overhang
of a last italic or bold glyph while the first piece does not. The base colour showed
through the gap as a stripe at the end of such lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QContextMenuEvent,
    QFontDatabase,
    QFontMetrics,
    QPainter,
    QPalette,
    QTextBlock,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.models import human_size
from app.gui.highlight import CodeHighlighter, bolder, dimmed, match_background

PREVIEW_MAX_BYTES = 4 << 20
GUTTER_PADDING = 6  # pixels each side of the line numbers
CONTEXT_LINES = 3  # shown above a result's first line
Marker = Callable[[str], list[tuple[int, int]]]  # a line -> the [start, end) spans to mark


class Preview(QPlainTextEdit):
    """A result's whole file, coloured, with its lines marked and scrolled into view."""

    file_changed = Signal()  # another file or lines, or none: the header follows

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.document().setUndoRedoEnabled(False)
        self.highlighter = CodeHighlighter(self.document(), self.palette())
        self.path: Path | None = None
        self.rel = ""
        self.symbol = ""
        self.stored: str | None = None
        self.lines = (0, 0)  # as asked for; marked_lines() is what the file has of them
        self.stamp: tuple[int, int] | None = None  # the shown file's (mtime, size) when read
        self.highlights: list[tuple[int, int, int]] = []
        self.marker: Marker | None = None
        self.setPlaceholderText("Select a result to see its code here.")
        self.gutter = _LineNumbers(self)
        self.blockCountChanged.connect(self._fit_gutter)
        self.updateRequest.connect(self._follow_text)
        self._fit_gutter()

    # --- what is shown --------------------------------------------------------------------

    def show_file(
        self,
        path: Path,
        rel: str,
        start: int,
        end: int,
        stored: str | None = None,
        highlights: list[tuple[int, int, int]] | None = None,
        symbol: str = "",
        marker: Marker | None = None,
    ) -> None:
        """Show ``path`` with lines ``start``..``end`` (1-based) marked, near the top.

        ``stored``: the result's text as indexed, shown (at its own lines) when the file is
        not here (a shared index without a checkout). ``highlights``: (line, start column,
        end column) spans to mark inside the text, 1-based lines and [start, end) columns in
        characters, for the query's words or a regex's matches. ``marker``: finds such
        spans in a line; it marks them in the marked lines, as the file reads now."""
        self.path, self.rel, self.symbol, self.stored = path, rel, symbol, stored
        self.lines, self.highlights = (start, end), list(highlights or [])
        self.marker = marker
        self._load()
        self.setTextCursor(QTextCursor(self.document().findBlockByNumber(max(0, start - 1))))
        self.verticalScrollBar().setValue(max(0, start - 1 - CONTEXT_LINES))
        self.horizontalScrollBar().setValue(0)
        self.file_changed.emit()

    def reload_keep_scroll(self) -> None:
        """Read the file again (it changed on disk) and keep the view where it was: the
        scroll positions, the marked lines and spans."""
        if self.path is None:
            return
        vertical, horizontal = self.verticalScrollBar().value(), self.horizontalScrollBar().value()
        self._load()
        self.verticalScrollBar().setValue(vertical)
        for _ in self._visible_blocks():
            pass  # laid out now, so the horizontal range knows their widths
        self.horizontalScrollBar().setValue(horizontal)

    def reload_if_changed(self) -> None:
        """:meth:`reload_keep_scroll` if the file on disk is not the one shown."""
        if self.path is not None and _stamp(self.path) != self.stamp:
            self.reload_keep_scroll()

    def showing(self, path: Path, start: int, end: int) -> bool:
        """Whether this file and lines are shown now (then there is nothing to reload)."""
        return self.path == path and self.lines == (start, end)

    def cursor_line(self) -> int:
        """The 1-based line of the text cursor."""
        return self.textCursor().blockNumber() + 1

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """The usual menu, then this widget's actions (Find related), for the line
        clicked: a right click moves the text cursor there, unless text is selected."""
        if (
            event.reason() == QContextMenuEvent.Reason.Mouse
            and not self.textCursor().hasSelection()
        ):
            self.setTextCursor(self.cursorForPosition(event.pos()))
        menu = self.createStandardContextMenu(event.pos())
        menu.addSeparator()
        menu.addActions(self.actions())
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(event.globalPos())  # as Qt's own menu does: the caller goes on

    def clear_file(self) -> None:
        self.path, self.rel, self.symbol, self.stored = None, "", "", None
        self.lines, self.highlights, self.marker = (0, 0), [], None
        self.highlighter.spans = {}
        self.setPlainText("")
        self.setExtraSelections([])
        self.file_changed.emit()

    def header_text(self) -> str:
        """path:lines and the symbol, or "" when no file is shown."""
        if self.path is None:
            return ""
        start, end = self.lines
        where = f"{self.rel}:{start}" if end <= start else f"{self.rel}:{start}–{end}"
        return f"{where}  {self.symbol}" if self.symbol else where

    def marked_lines(self) -> tuple[int, int]:
        """The 1-based lines marked now: the asked-for lines that the file has."""
        start, end = self.lines
        count = self.document().blockCount()
        return (start, min(end, count)) if 1 <= start <= count else (0, 0)

    def _load(self) -> None:
        text = self._read()
        self.highlighter.set_source(self.rel, text)
        self.setPlainText(text)
        if self.marker is not None:
            start, end = self.marked_lines()
            block = self.document().findBlockByNumber(start - 1)
            self.highlights = []
            while block.isValid() and start and block.blockNumber() < end:
                number = block.blockNumber() + 1
                self.highlights += [(number, a, b) for a, b in self.marker(block.text())]
                block = block.next()
        self.setExtraSelections(self._spans())

    def _read(self) -> str:
        start = self.lines[0]
        self.stamp = _stamp(self.path)
        try:
            if self.path.stat().st_size > PREVIEW_MAX_BYTES:
                return (
                    f"{self.rel} is over {human_size(PREVIEW_MAX_BYTES)}; open it in your editor."
                )
            return self.path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            if self.stored is not None:
                return "\n" * (start - 1) + self.stored
            return f"{self.rel} cannot be read now ({exc.strerror}). Re-index the project."

    def _spans(self) -> list[QTextEdit.ExtraSelection]:
        colour = match_background(self.palette())
        selections = []
        for line, start, end in self.highlights:
            block = self.document().findBlockByNumber(line - 1)
            length = block.length() - 1  # without the newline
            if not block.isValid() or not 0 <= start < min(end, length):
                continue  # no such line, or an empty span
            selection = QTextEdit.ExtraSelection()
            selection.format.setBackground(colour)
            selection.cursor = QTextCursor(block)
            selection.cursor.setPosition(block.position() + start)
            selection.cursor.setPosition(
                block.position() + min(end, length), QTextCursor.MoveMode.KeepAnchor
            )
            selections.append(selection)
        return selections

    # --- painting -------------------------------------------------------------------------

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
        rows = [
            (top, bottom)
            for block, top, bottom in self._visible_blocks()
            if first <= block.blockNumber() + 1 <= last
        ]
        return (rows[0][0], rows[-1][1]) if rows else None

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        band = self._marked_band()
        if band is not None:
            painter = QPainter(self.viewport())
            painter.fillRect(
                QRectF(0, band[0], self.viewport().width(), band[1] - band[0]), self.mark_colour()
            )
            painter.end()
        super().paintEvent(event)

    # --- the line-number gutter -----------------------------------------------------------

    def gutter_width(self) -> int:
        digits = len(str(max(1, self.blockCount())))
        return 2 * GUTTER_PADDING + digits * self.gutter.bold_metrics().horizontalAdvance("9")

    def _fit_gutter(self, *_) -> None:
        width = self.gutter_width()
        self.setViewportMargins(width, 0, 0, 0)
        inside = self.contentsRect()
        self.gutter.setGeometry(QRect(inside.left(), inside.top(), width, inside.height()))

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
        self._fit_gutter()

    def paint_gutter(self, painter: QPainter) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        painter.fillRect(self.gutter.rect(), palette.color(QPalette.ColorRole.Base))
        if self.path is None:
            return  # no file, no line numbers (the placeholder is not line 1)
        band = self._marked_band()
        if band is not None:
            painter.fillRect(
                QRectF(0, band[0], self.gutter.width(), band[1] - band[0]), self.mark_colour()
            )
        first, last = self.marked_lines()
        plain, bold = self.font(), bolder(self.font())
        dim = dimmed(text, palette.color(QPalette.ColorRole.Base))
        width = self.gutter.width() - GUTTER_PADDING
        for block, top, bottom in self._visible_blocks():
            number = block.blockNumber() + 1
            marked = first <= number <= last
            painter.setFont(bold if marked else plain)
            painter.setPen(text if marked else dim)
            painter.drawText(
                QRectF(0, top, width, bottom - top),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                str(number),
            )


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class _LineNumbers(QWidget):
    """The preview's gutter; the preview paints it."""

    def __init__(self, preview: Preview) -> None:
        super().__init__(preview)
        self.preview = preview

    def bold_metrics(self) -> QFontMetrics:
        return QFontMetrics(bolder(self.preview.font()))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        self.preview.paint_gutter(painter)
        painter.end()


class ElidedLabel(QLabel):
    """One line of text cut with "…" on the left (the end of a path tells files apart)
    rather than widening what holds it; the whole text is in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(0, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        super().setText(
            self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideLeft, width)
        )


class PreviewPanel(QWidget):
    """The preview under its header (path:lines symbol, cleared with the preview) and its
    buttons, and its menu's Find related (at the text cursor), which are enabled while a
    file is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = Preview()
        self.header = ElidedLabel()
        self.copy_button = QPushButton("Copy path:line")
        self.open_button = QPushButton("Open in editor")
        self.related_action = QAction("Find related code", self.preview)
        self.related_action.setToolTip("The definitions most like the one at the cursor")
        self.preview.addAction(self.related_action)
        row = QHBoxLayout()
        row.addWidget(self.header, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.open_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.preview, 1)
        self.preview.file_changed.connect(self._follow_preview)
        self._follow_preview()

    def _follow_preview(self) -> None:
        self.header.setText(self.preview.header_text())
        for control in (self.copy_button, self.open_button, self.related_action):
            control.setEnabled(self.preview.path is not None)
