"""`codelamp --selftest`, as the packaged build's smoke test runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.settings import settings_path

pytestmark = pytest.mark.slow


def test_selftest_opens_the_window_indexes_and_finds_the_sample(default_model, codelamp_home):
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--selftest"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["top"] == "uploads.py"
    assert report["window_shown_s"] < 10
    assert not settings_path().exists()  # the user's settings were not touched
    assert not (codelamp_home / "data" / "projects").exists()


def test_selftest_without_a_model_reports_why_instead_of_crashing(packaged_build, capsys):
    """A packaged build whose model was lost: the report says so, no traceback."""
    from app.gui.selftest import selftest

    assert selftest() == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] is False
    assert "Reinstall" in report["error"]
