"""Starting the app: what a user sees when X11 libraries are missing, and the log file."""

from __future__ import annotations

import logging

from app.gui.app import ICON, application, log_to_file, missing_libraries, x11_problem

LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
"""


def test_the_icon_ships_inside_the_package(qapp):
    """Package data, so a wheel (not only a source checkout) has it; the bundle too."""
    assert ICON.is_file() and ICON.parent.parts[-2:] == ("app", "gui")
    assert not application().windowIcon().isNull()


def test_missing_libraries_are_read_from_ldd_once_each():
    assert missing_libraries(LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_x11_is_only_checked_when_qt_would_use_it():
    assert x11_problem({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}) is None
    assert x11_problem({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}) is None
    assert x11_problem({}) is None  # no display at all: Qt's own message is the right one


def test_x11_problem_names_the_packages(monkeypatch):
    import subprocess

    monkeypatch.setattr(
        subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=LDD, stderr="")
    )
    problem = x11_problem({"QT_QPA_PLATFORM": "xcb"})
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in problem
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in problem


def test_the_log_file_gets_info_and_errors(tmp_path):
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        log_to_file(tmp_path / "codelamp.log")
        logging.getLogger("codelamp.test").info("indexed %d files", 3)
        logging.getLogger("codelamp.test").error("it broke")
        for handler in root.handlers:
            handler.flush()
        text = (tmp_path / "codelamp.log").read_text(encoding="utf-8")
        assert "INFO codelamp.test: indexed 3 files" in text and "ERROR" in text
    finally:
        for handler in root.handlers[len(before[0]) :]:
            handler.close()
        root.handlers[:] = before[0]
        root.setLevel(before[1])
