"""How many cores indexing may use: the ones other processes leave free.

llama.cpp splits each embedding over its threads and joins them at a spinning barrier
after every operation. When another process takes one of those cores, every barrier waits
for the descheduled thread while the others spin: five indexers on 2 cores ran at a tenth
of their fair share (docs/PERFORMANCE.md). One thread has no barrier at all, so on a busy
CPU indexing drops to the cores that are actually free, and at least to one thread, which
the OS scheduler shares fairly. Queries, short and interactive, still use every core.
"""

from __future__ import annotations

import os
import threading
import time

import psutil

SAMPLE_S = 1.0  # how often the load is measured while indexing


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def usable_cores() -> int:
    """Cores this process may run on (its affinity), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class FairShare:
    """Threads for the next piece of indexing work: ``limit`` on an idle machine, fewer
    while other processes keep cores busy, never fewer than one."""

    def __init__(self, limit: int, sample_s: float = SAMPLE_S) -> None:
        self.limit = max(1, limit)
        self.sample_s = sample_s
        self._cores = usable_cores()
        self._me = psutil.Process()
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None  # wall, busy, own (seconds)
        self._threads = self.limit

    def threads(self) -> int:
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.sample_s:
                self._measure(now)
            return self._threads

    def _measure(self, now: float) -> None:
        total = psutil.cpu_times()
        waiting = ("idle", "iowait", "guest", "guest_nice")  # guest time is also user time
        busy = sum(v for k, v in total._asdict().items() if k not in waiting)
        own = sum(self._me.cpu_times()[:2])
        if self._last is not None:
            wall, busy0, own0 = self._last
            others = max(0.0, (busy - busy0) - (own - own0)) / max(now - wall, 1e-6)
            free = self._cores - others
            self._threads = max(1, min(self.limit, int(free + 0.5)))
        self._last = (now, busy, own)
