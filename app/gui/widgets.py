"""The window's smaller parts: the memory gauge and opening a result in the editor. The
results are in results_view.py, the preview in preview.py."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

from app.core.memory import MemoryReading, pressure, read_memory
from app.core.models import human_size


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
        level = pressure(
            reading, self.settings.memory_high_percent, self.settings.memory_critical_percent
        )
        self.setText(f"RAM {human_size(reading.rss)} · {human_size(reading.available)} free")
        colour = {
            "normal": "",
            "high": "color: #c77c02;",
            "critical": "color: #d32f2f; font-weight: bold;",
        }[level]
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
            self.level_changed.emit(
                level,
                f"Memory is {level}: {reading.used_percent:.0f}% "
                f"in use, {human_size(reading.available)} free.",
            )


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


EDITOR_HINT = (
    "Set one in Settings ▸ Editor command: {file} and {line} are filled in, as in "
    "“code -g {file}:{line}”."
)


def start_editor(configured: str, path: Path, line: int) -> str:
    """Open ``path`` at ``line`` with :func:`editor_command`'s command, or the system's
    opener without one. "" once it has started, else what went wrong, to show."""
    command = editor_command(configured)
    if not command:
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            return ""
        return (
            f"No editor was found to open {path.name}: no editor command is set, VS Code "
            "(code) is not on the PATH, $VISUAL and $EDITOR are empty, and the system "
            f"has no program for this file.\n\n{EDITOR_HINT}"
        )
    try:
        args = [a.format(file=str(path), line=line) for a in shlex.split(command)]
    except (ValueError, KeyError, IndexError):
        return (
            f"The editor command “{command}” cannot be used: only {{file}} and {{line}} "
            f"are filled in, and quotes must be closed.\n\n{EDITOR_HINT}"
        )
    program = args[0] if args else ""
    if not shutil.which(program):
        return f"The editor command’s program “{program}” was not found.\n\n{EDITOR_HINT}"
    try:
        editor = subprocess.Popen(
            args,
            start_new_session=sys.platform != "win32",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        return f"Could not run “{command}”: {exc.strerror or exc}.\n\n{EDITOR_HINT}"
    # Reaped when it exits (a terminal editor's wrapper soon, an IDE maybe hours later),
    # so no zombie is left behind.
    threading.Thread(target=editor.wait, name="codelamp-editor", daemon=True).start()
    return ""


def open_in_editor(configured: str, path: Path, line: int, parent: QWidget) -> None:
    """:func:`start_editor`, with a message when it could not."""
    problem = start_editor(configured, path, line)
    if problem:
        QMessageBox.warning(parent, "Open in editor", problem)


def ago(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    seconds = max(0, int(time.time() - timestamp))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return time.strftime("%H:%M", time.localtime(timestamp))
