"""Starting the desktop app."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__

log = logging.getLogger("codelamp.gui")
ICON = Path(__file__).with_name("codelamp.svg")  # package data: in a wheel and a bundle too
LOG_NAME = "codelamp.log"


def _qt_messages(kind: QtMsgType, _context, message: str) -> None:
    level = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
    }.get(kind, logging.ERROR)
    log.log(level, "Qt: %s", message)


def log_to_file(path: Path) -> None:
    """The app's log: everything from INFO up into ``path`` (rotated at 1 MiB, two old
    files kept), warnings and errors also on stderr for whoever started it from a shell."""
    from logging.handlers import RotatingFileHandler

    to_file = RotatingFileHandler(path, maxBytes=1 << 20, backupCount=2, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_stderr = logging.StreamHandler()
    to_stderr.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(to_file)
    root.addHandler(to_stderr)


def _report_crash(exc_type, exc, tb) -> None:
    """An error that escaped a handler: log it and tell the user; the app keeps running."""
    log.error("unhandled error", exc_info=(exc_type, exc, tb))
    app = QApplication.instance()
    if app is not None and threading.current_thread() is threading.main_thread():
        from app import paths

        QMessageBox.critical(
            None,
            "CodeLamp",
            f"Something went wrong: {exc}\n\nThe details "
            f"are in {paths.logs_dir() / LOG_NAME}; the app keeps running.",
        )


def application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("CodeLamp")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("CodeLamp")
    app.setDesktopFileName("codelamp")
    if ICON.is_file():
        app.setWindowIcon(QIcon(str(ICON)))
    return app


# Libraries Qt's X11 plugin needs that a minimal desktop may lack, with their Debian and
# Ubuntu package names. (A packaged build carries its own copies.)
_XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
}


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as "not found", each once, in order."""
    names = [line.split()[0] for line in ldd_output.splitlines() if "not found" in line]
    return list(dict.fromkeys(names))


def x11_problem(env: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window on X11, before Qt tries and aborts the process with
    only "no Qt platform plugin could be initialized"; None when nothing is missing or the
    window system is not X11."""
    import os
    import shutil
    import subprocess

    env = os.environ if env is None else env
    platform = env.get("QT_QPA_PLATFORM", "")
    on_x11 = platform == "xcb" or (
        not platform and env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY")
    )
    if not on_x11 or sys.platform != "linux" or getattr(sys, "frozen", False):
        return None
    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    ldd = shutil.which("ldd")
    if not plugin.is_file() or not ldd:
        return None
    out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True).stdout
    missing = missing_libraries(out)
    if not missing:
        return None
    packages = " ".join(_XCB_PACKAGES.get(name, name) for name in missing)
    return (
        f"CodeLamp's window cannot open on X11: Qt needs {', '.join(missing)}, which "
        f"this system does not have. On Debian or Ubuntu: sudo apt install {packages}. "
        "The command line works without them (codelamp --help)."
    )


def run() -> int:
    """Open the main window; returns the exit code."""
    from app import paths
    from app.core.errors import CodeLampError
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    if problem := x11_problem():
        print(f"codelamp: {problem}", file=sys.stderr)
        return 1
    qInstallMessageHandler(_qt_messages)
    app = application()
    try:  # a read-only home: say where CodeLamp must write, before anything is lost
        for folder in (paths.config_dir(), paths.data_dir(), paths.cache_dir(), paths.logs_dir()):
            paths.ensure(folder)
    except CodeLampError as exc:
        QMessageBox.critical(None, "CodeLamp cannot start", str(exc))
        return 1
    log_to_file(paths.logs_dir() / LOG_NAME)
    log.info("CodeLamp %s started", __version__)
    sys.excepthook = _report_crash
    window = MainWindow(Settings.load())
    window.show()
    return app.exec()
