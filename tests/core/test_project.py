"""The one check of a project folder, which the CLI, the window and the indexer share."""

from __future__ import annotations

import os
import socket

import pytest

from app.core.errors import CodeLampError
from app.core.project import check_root


def test_a_folder_comes_back_resolved(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "code")
    assert check_root(tmp_path / "link") == (tmp_path / "code").resolve()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_root("~/code") == (tmp_path / "code").resolve()


def test_a_missing_path_says_so(tmp_path):
    with pytest.raises(CodeLampError, match="No folder at .*nowhere: it does not exist"):
        check_root(tmp_path / "nowhere")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(CodeLampError, match="does not exist"):
        check_root(tmp_path / "dangling")


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CodeLampError, match="notes.txt is a file, not a folder"):
        check_root(tmp_path / "notes.txt")


def test_something_else_that_is_not_a_folder(tmp_path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(CodeLampError, match="sock is not a folder"):
            check_root(tmp_path / "sock")


def test_an_unreadable_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root could read it anyway
    with pytest.raises(CodeLampError, match="cannot be read \\(permission denied\\)"):
        check_root(tmp_path)
