"""Every directory CodeLamp reads or writes, in one place.

By default the platform's conventional locations are used (platformdirs). Setting
``CODELAMP_HOME`` moves all of them under one folder: tests do this always, and users
can do it to keep CodeLamp on another disk or in a portable folder.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "codelamp"
HOME_ENV = "CODELAMP_HOME"


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def _dir(kind: str) -> Path:
    home = _home_override()
    if home is not None:
        return home / kind
    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    return {
        "config": Path(dirs.user_config_dir),
        "data": Path(dirs.user_data_dir),
        "models": Path(dirs.user_data_dir) / "models",
        "cache": Path(dirs.user_cache_dir),
        "logs": Path(dirs.user_log_dir),
    }[kind]


def config_dir() -> Path:
    """Settings and the project list."""
    return _dir("config")


def data_dir() -> Path:
    """Per-project indexes."""
    return _dir("data")


def project_key(root: Path) -> str:
    """What a project's folders are named by: a hash of its absolute root."""
    return hashlib.sha256(str(root).encode()).hexdigest()[:16]


def project_dir(root: Path) -> Path:
    """A project's own folder: its index, and what readers note about it."""
    return data_dir() / "projects" / project_key(root)


def models_dir() -> Path:
    """GGUF models that CodeLamp built or that the user copied in."""
    return _dir("models")


def cache_dir() -> Path:
    """Things that can be rebuilt, e.g. downloads in progress."""
    return _dir("cache")


def logs_dir() -> Path:
    return _dir("logs")


def bundle_dir() -> Path | None:
    """The data folder of a packaged (PyInstaller) build; None when running from source."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) if getattr(sys, "frozen", False) and bundle else None


def resources_dir() -> Path:
    """CodeLamp's own read-only files: ``resources/`` of the source tree or of the build."""
    bundle = bundle_dir()
    return bundle / "resources" if bundle else Path(__file__).resolve().parent.parent / "resources"


def bundled_models_dir() -> Path:
    """The models that come with CodeLamp (the default model)."""
    return resources_dir() / "models"


def ensure(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and return it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from app.core.errors import CodeLampError

        raise CodeLampError(
            f"CodeLamp needs to write to {path} ({exc.strerror or exc}). Make it writable, "
            f"or set {HOME_ENV} to a folder you can write to, e.g. {HOME_ENV}=/tmp/codelamp."
        ) from exc
    return path
