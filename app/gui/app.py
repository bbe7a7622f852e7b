"""Starting the desktop app."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__

log = logging.getLogger("codelamp.gui")
ICON = Path(__file__).resolve().parent.parent.parent / "resources" / "codelamp.svg"


def _qt_messages(kind: QtMsgType, _context, message: str) -> None:
    level = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
             QtMsgType.QtWarningMsg: logging.WARNING}.get(kind, logging.ERROR)  # fmt: skip
    log.log(level, "Qt: %s", message)


def _report_crash(exc_type, exc, tb) -> None:
    """An error that escaped a handler: log it and tell the user; the app keeps running."""
    log.error("unhandled error", exc_info=(exc_type, exc, tb))
    app = QApplication.instance()
    if app is not None and threading.current_thread() is threading.main_thread():
        QMessageBox.critical(None, "CodeLamp", f"Something went wrong: {exc}\n\nThe details "
                             "are in the log; the app keeps running.")  # fmt: skip


def application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("CodeLamp")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("CodeLamp")
    app.setDesktopFileName("codelamp")
    if ICON.is_file():
        app.setWindowIcon(QIcon(str(ICON)))
    return app


def quiet_gc() -> None:
    """Keep Python's garbage collector from stalling the window.

    A full collection walks every object in the process: with LanceDB, pyarrow and the
    model loaded that is 50-90 ms, during which no thread (the GUI's included) runs
    Python. Objects alive after start-up are frozen out of collections, and full
    collections are left for idle moments (:func:`collect_when_idle`).
    """
    gc.freeze()
    gc.set_threshold(10_000, 50, 1_000)


def collect_when_idle() -> None:
    gc.collect()


def run() -> int:
    """Open the main window; returns the exit code."""
    from app import paths
    from app.core.errors import CodeLampError
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    qInstallMessageHandler(_qt_messages)
    app = application()
    try:  # a read-only home: say where CodeLamp must write, before anything is lost
        for folder in (paths.config_dir(), paths.data_dir(), paths.cache_dir()):
            paths.ensure(folder)
    except CodeLampError as exc:
        QMessageBox.critical(None, "CodeLamp cannot start", str(exc))
        return 1
    sys.excepthook = _report_crash
    window = MainWindow(Settings.load())
    window.show()
    return app.exec()
