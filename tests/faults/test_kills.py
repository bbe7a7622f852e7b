"""SIGKILL at instrumented points of a real `codelamp index` (scripts/torture.py, short
mode): after every kill the index opens, has no duplicate chunks, still answers when it
had committed, and one more `codelamp index` makes it equal to a fresh index."""

from __future__ import annotations

import pytest
import torture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("kind", ["first", "incremental"])
def test_killed_index_recovers(kind, tmp_path, default_model):
    report = torture.kills(kind, 4, tmp_path, default_model, seed=7)
    # The drawn hits come from a dry run's real counts, so every run must die.
    assert len(report.killed) == 4 and report.completed == 0
    assert len({point for point, _ in report.killed}) == 4
