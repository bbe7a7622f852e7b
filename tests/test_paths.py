"""Every directory comes from app.paths, and CODELAMP_HOME moves all of them."""

from pathlib import Path

import pytest

from app import paths

ALL = (paths.config_dir, paths.data_dir, paths.models_dir, paths.cache_dir, paths.logs_dir)


def test_codelamp_home_redirects_every_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CODELAMP_HOME", str(tmp_path / "h"))
    dirs = [f() for f in ALL]
    assert all(d.is_relative_to(tmp_path / "h") for d in dirs)
    assert len(set(dirs)) == len(dirs), "each kind of data gets its own folder"


def test_codelamp_home_expands_user_and_is_absolute(monkeypatch):
    monkeypatch.setenv("CODELAMP_HOME", "~/portable-codelamp")
    assert paths.models_dir() == Path.home() / "portable-codelamp" / "models"


def test_without_override_platform_dirs_are_used(monkeypatch, tmp_path):
    monkeypatch.delenv("CODELAMP_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    assert paths.data_dir() == tmp_path / "xdg-data" / "codelamp"
    assert paths.models_dir() == tmp_path / "xdg-data" / "codelamp" / "models"
    assert paths.config_dir() == tmp_path / "xdg-config" / "codelamp"


def test_tests_never_see_the_real_home():
    """The autouse fixture is in force: a test that forgot it would write to ~."""
    assert not paths.data_dir().is_relative_to(Path.home() / ".local")


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_override_is_ignored(monkeypatch, tmp_path, blank):
    monkeypatch.setenv("CODELAMP_HOME", blank)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert paths.data_dir() == tmp_path / "codelamp"
