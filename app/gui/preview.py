"""The preview: a result's whole file, coloured, with the result's lines marked."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QFontDatabase, QTextCursor, QTextFormat
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from app.core.models import human_size
from app.gui.highlight import CodeHighlighter

PREVIEW_MAX_BYTES = 4 << 20


class Preview(QPlainTextEdit):
    """A result's whole file, coloured, with its lines marked and scrolled into view."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.highlighter = CodeHighlighter(self.document(), self.palette())
        self.path: Path | None = None
        self.lines = (0, 0)
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
        self._mark(start, end)

    def clear_file(self) -> None:
        self.path, self.lines = None, (0, 0)
        self.highlighter.spans = {}
        self.setPlainText("")
        self.setExtraSelections([])

    def marked_lines(self) -> tuple[int, int]:
        """The 1-based lines highlighted now (for tests and the header)."""
        selections = self.extraSelections()
        if not selections:
            return (0, 0)
        first = selections[0].cursor.blockNumber() + 1
        return first, first + len(selections) - 1

    def _mark(self, start: int, end: int) -> None:
        colour = QColor(self.palette().color(self.palette().ColorRole.Highlight))
        colour.setAlpha(60)
        selections = []
        block = self.document().findBlockByNumber(max(0, start - 1))
        while block.isValid() and block.blockNumber() < end:
            sel = QTextEdit.ExtraSelection()
            sel.format.setBackground(colour)
            sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            sel.cursor = QTextCursor(block)
            selections.append(sel)
            block = block.next()
        self.setExtraSelections(selections)
        cursor = QTextCursor(self.document().findBlockByNumber(max(0, start - 1)))
        self.setTextCursor(cursor)
        # the first line of the chunk near the top, with a little context above
        self.verticalScrollBar().setValue(max(0, start - 4))
