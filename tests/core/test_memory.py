"""Memory pressure levels and whether a model fits (app/core/memory.py)."""

from __future__ import annotations

from app.core.memory import MemoryReading, model_fits, pressure

GB = 1 << 30


def test_pressure_levels_and_model_fit():
    reading = MemoryReading(rss=1 * GB, available=2 * GB, total=16 * GB)  # 87.5% in use
    assert pressure(reading) == "high"
    assert pressure(reading, high=90, critical=95) == "normal"
    assert pressure(MemoryReading(GB, GB // 4, 16 * GB)) == "critical"
    fits, needed, _ = model_fits(46 << 20, 256, 384, reading)
    assert fits and needed < 200 << 20
    fits, needed, available = model_fits(int(4.38e9), 8192, 3584, reading)  # nomic-embed-code
    assert not fits and needed > available
