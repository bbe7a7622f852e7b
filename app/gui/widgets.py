"""The window's parts: the preview, the results list and the memory gauge."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QFontDatabase, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from app.core.memory import MemoryReading, pressure, read_memory
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


class ResultList(QListWidget):
    """Results as two-line rows; Enter opens the selected one."""

    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUniformItemSizes(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)

    def show_results(self, results: list, keep=None) -> None:
        """Show ``results``; the one equal to ``keep`` (same file and symbol) stays
        selected, so a refresh does not move the user."""
        self.clear()
        for r in results:
            where = f"{r.path}:{r.start_line}–{r.end_line}"
            title = f"{r.symbol}  ·  {where}" if r.symbol else where
            item = QListWidgetItem(f"{title}    {r.score:.3f}\n    {r.snippet}")
            item.setToolTip(f"{where}\n{r.language}, score {r.score:.4f}")
            item.setData(Qt.ItemDataRole.UserRole, r)
            self.addItem(item)
        if results:
            same = [i for i, r in enumerate(results) if keep is not None and
                    (r.path, r.symbol, r.start_line) == (keep.path, keep.symbol, keep.start_line)]
            self.setCurrentRow(same[0] if same else 0)

    def current_result(self):
        item = self.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem():
            self.open_requested.emit()
            return
        super().keyPressEvent(event)


class MemoryGauge(QLabel):
    """Process RSS and free memory, refreshed every second, coloured by pressure."""

    level_changed = Signal(str, str)  # level, message

    def __init__(self, settings, reader=read_memory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings, self.reader = settings, reader
        self.level = "normal"
        self.model_bytes = 0
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)

    def start(self) -> None:
        self.refresh()
        self.timer.start()

    def refresh(self) -> None:
        try:
            reading: MemoryReading = self.reader()
        except Exception:  # noqa: BLE001 - a gauge that cannot read shows nothing
            self.setText("")
            return
        level = pressure(reading, self.settings.memory_high_percent,
                         self.settings.memory_critical_percent)  # fmt: skip
        self.setText(f"RAM {human_size(reading.rss)} · {human_size(reading.available)} free")
        colour = {"normal": "", "high": "color: #c77c02;", "critical": "color: #d32f2f; "
                  "font-weight: bold;"}[level]  # fmt: skip
        self.setStyleSheet(colour)
        model = f"model: {human_size(self.model_bytes)}\n" if self.model_bytes else ""
        self.setToolTip(
            f"{model}CodeLamp (RSS): {human_size(reading.rss)}\n"
            f"available: {human_size(reading.available)} of {human_size(reading.total)} "
            f"({reading.used_percent:.0f}% in use)\npressure: {level} (high at "
            f"{self.settings.memory_high_percent:g}%, critical at "
            f"{self.settings.memory_critical_percent:g}%)"
        )
        if level != self.level:
            self.level = level
            self.level_changed.emit(level, f"Memory is {level}: {reading.used_percent:.0f}% "
                                           f"in use, {human_size(reading.available)} free.")


def editor_command(configured: str) -> str:
    """The command that opens ``{file}`` at ``{line}``: the configured one, else VS Code,
    else $VISUAL/$EDITOR, else "" (the system opener)."""
    if configured.strip():
        return configured.strip()
    if shutil.which("code"):
        return "code -g {file}:{line}"
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if editor:
        return f"{editor} +{{line}} {{file}}"
    return ""


def open_in_editor(configured: str, path: Path, line: int, parent: QWidget) -> None:
    command = editor_command(configured)
    if not command:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        return
    try:
        args = [a.format(file=str(path), line=line) for a in shlex.split(command)]
        subprocess.Popen(args, start_new_session=sys.platform != "win32",
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)  # fmt: skip
    except (OSError, ValueError, KeyError, IndexError) as exc:
        QMessageBox.warning(parent, "Open in editor",
                            f"Could not run “{command}”: {exc}.\nSet the editor command in "
                            "Settings; {file} and {line} are filled in.")  # fmt: skip


def ago(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    seconds = max(0, int(time.time() - timestamp))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return time.strftime("%H:%M", time.localtime(timestamp))
