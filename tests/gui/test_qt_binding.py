"""The Qt binding must not corrupt the interpreter: PySide6 6.12.0 on Python 3.11 released
one reference to None on every call of a Qt method that returns nothing, and the app
aborted ("Fatal Python error: none_dealloc") once None's count ran out: after a few dozen
previews, or an hour of the memory gauge. The pinned version must not do that."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel


def test_qt_calls_that_return_nothing_keep_nones_references(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for i in range(10_000):
        label.setText(str(i))
        label.setEnabled(True)
    lost = before - sys.getrefcount(None)
    assert lost < 100, f"{lost} references to None lost in 20,000 calls"
