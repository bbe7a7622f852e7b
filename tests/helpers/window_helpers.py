"""Helpers for tests of the real window: how long the GUI thread stalls, closing and
waiting as a user would, and memory readings to inject."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer

from app.core.memory import MemoryReading

GB = 1 << 30


class Heartbeat:
    """A 10 ms timer on the GUI thread: the longest gap between beats is the longest
    stall of the event loop."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def __enter__(self) -> Heartbeat:
        self.last = time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *_) -> None:
        self.timer.stop()

    @property
    def longest_ms(self) -> float:
        return max(self.gaps, default=0) * 1000


class FakeMemory:
    """Injected readings for the gauge; normal until a test says otherwise."""

    def __init__(self) -> None:
        self.reading = MemoryReading(300 << 20, 16 * GB, 24 * GB)

    def __call__(self) -> MemoryReading:
        return self.reading

    def set_used(self, percent: float) -> None:
        self.reading = MemoryReading(300 << 20, int(24 * GB * (1 - percent / 100)), 24 * GB)


def close(qtbot, win) -> None:
    """Close as the user does, then wait for the work to wind down (the window itself
    never waits)."""
    win.close()
    qtbot.waitUntil(lambda: win.controller.done, timeout=120_000)
    assert not win.isVisible()


def wait_indexed(qtbot, win, root: Path, timeout: int = 180_000) -> None:
    c = win.controller
    qtbot.waitUntil(
        lambda: c.indexing is None and c.statuses.get(str(root)) is not None, timeout=timeout
    )
