"""The GUI tests' fixtures: the real window with injected memory readings, dialogs
recorded instead of shown, and projects to index."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from sample_project import make_project
from window_helpers import FakeMemory, close

from app.gui.main_window import MainWindow
from app.settings import Settings


@pytest.fixture
def warnings_shown(monkeypatch) -> list[str]:
    """Modal message boxes would block an offscreen test: record them instead."""
    shown: list[str] = []

    def record(_parent, title, text, *args, **kwargs):
        shown.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Yes

    for name in ("warning", "information", "critical", "question"):
        monkeypatch.setattr(QMessageBox, name, record)
    return shown


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def window(qtbot, default_model, warnings_shown, memory):
    win = MainWindow(Settings.load(), memory_reader=memory)
    win.show()  # not qtbot.addWidget: its teardown would delete the window mid-shutdown
    yield win
    close(qtbot, win)


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "demo")


@pytest.fixture
def stdlib_copy(tmp_path) -> Path:
    """A few hundred chunks of real code: long enough to watch the window while it indexes."""
    from bench_index import copy_packages

    return copy_packages(tmp_path / "stdlib", ["json", "http", "email"])
