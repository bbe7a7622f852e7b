"""Memory pressure, for the app's gauge, and whether a model will fit before it loads.

Levels come from the share of system memory in use: "high" warns, "critical" pauses
indexing until pressure drops. A model needs roughly its file (the weights are read into
memory), its context's KV cache and compute buffers; the estimate errs on the large side
so that "it fits" is believable.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

HIGH_PERCENT = 85.0
CRITICAL_PERCENT = 95.0


@dataclass(frozen=True)
class MemoryReading:
    rss: int  # this process, bytes
    available: int  # the system's, bytes
    total: int

    @property
    def used_percent(self) -> float:
        return 100.0 * (self.total - self.available) / self.total if self.total else 0.0


def read_memory() -> MemoryReading:
    vm = psutil.virtual_memory()
    return MemoryReading(psutil.Process().memory_info().rss, vm.available, vm.total)


def pressure(
    reading: MemoryReading, high: float = HIGH_PERCENT, critical: float = CRITICAL_PERCENT
) -> str:
    used = reading.used_percent
    return "critical" if used >= critical else "high" if used >= high else "normal"


def model_needs(file_size: int, context_tokens: int, embedding_dim: int) -> int:
    """Bytes a model takes once loaded: weights, a float32 KV cache for the context (an
    upper bound for any layer count up to 64), compute buffers, and 64 MiB of slack."""
    kv = 2 * 64 * context_tokens * embedding_dim * 4
    compute = 16 * context_tokens * embedding_dim * 4
    return file_size + kv + compute + (64 << 20)


def model_fits(
    file_size: int, context_tokens: int, embedding_dim: int, reading: MemoryReading | None = None
) -> tuple[bool, int, int]:
    """(fits, bytes needed, bytes available now)."""
    reading = reading or read_memory()
    needed = model_needs(file_size, context_tokens, embedding_dim)
    return needed <= reading.available, needed, reading.available
