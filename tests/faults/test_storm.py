"""`codelamp watch`, a second writer and searches while files churn (scripts/torture.py,
short mode): afterwards the index equals a fresh index of the final tree."""

from __future__ import annotations

import pytest
import torture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_storm_leaves_an_index_equal_to_a_fresh_one(tmp_path, default_model):
    report = torture.storm(tmp_path, default_model, operations=150, seconds=10.0)
    assert report.operations == 150 and report.searches > 0
    assert report.second_writer == "exit 0"
