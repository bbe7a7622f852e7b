"""A full disk, a read-only home and a data folder deleted mid-run, against the real CLI
(scripts/torture.py): a clear one-line error, no hang, and the last good index kept."""

from __future__ import annotations

import os

import pytest
import torture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_full_disk_is_one_clear_error_and_keeps_the_index(tmp_path, default_model):
    done = torture.disk_full(tmp_path, default_model)
    assert "injected" in done
    if os.geteuid() == 0:  # root can mount the small tmpfs this needs
        assert "tmpfs" in done


@pytest.mark.parametrize("storage", ["lancedb", "lite"])
def test_read_only_home_searches_and_refuses_writes_in_one_line(
    tmp_path, default_model, storage, monkeypatch
):
    """Lite: SQLite cannot open a WAL database whose folder is read-only unless it is told
    the file cannot change (both storages, whatever CODELAMP_STORAGE says)."""
    monkeypatch.setenv("CODELAMP_STORAGE", storage)  # the CLI runs it inherit
    torture.read_only_home(tmp_path, default_model)


def test_data_folder_deleted_while_indexing(tmp_path, default_model):
    torture.data_deleted_mid_run(tmp_path, default_model)
