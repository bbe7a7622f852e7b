"""The app's settings: typed, with a schema version, in one JSON file in the config dir.

A missing file gives the defaults. An unreadable or damaged one is set aside as
``settings.json.bad`` (never silently lost) and the defaults are used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from app import paths
from app.core.files import DEFAULT_MAX_FILE_BYTES
from app.core.memory import CRITICAL_PERCENT, HIGH_PERCENT

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass
class Settings:
    projects: list[str] = field(default_factory=list)  # absolute folder paths, in order
    unwatched: list[str] = field(default_factory=list)  # projects with watching turned off
    shared: list[str] = field(default_factory=list)  # projects that are a store's URI
    model_path: str = ""  # "" = the default model
    threads: int = 0  # 0 = one per physical core
    # Embedding servers (OpenAI-compatible); none = the local model. Their API key lives
    # in $CODELAMP_API_KEY or the system keyring, never here.
    embedder_urls: list[str] = field(default_factory=list)
    embedder_model: str = ""  # "" = the model the server lists
    embedder_concurrency: int = 2  # requests in flight per server
    max_file_kb: int = DEFAULT_MAX_FILE_BYTES // 1024
    max_chunk_tokens: int = 0  # 0 = the model's own limit
    ignore_patterns: list[str] = field(default_factory=list)  # .gitignore syntax, all projects
    editor_command: str = ""  # "" = detected: code -g, $VISUAL/$EDITOR, the system opener
    memory_high_percent: float = HIGH_PERCENT
    memory_critical_percent: float = CRITICAL_PERCENT
    window_geometry: str = ""  # Qt's saveGeometry(), base64
    splitter_state: str = ""  # results | preview
    main_splitter_state: str = ""  # projects | search
    query_history: list[str] = field(default_factory=list)  # newest first
    search_mode: str = "hybrid"
    demote_tests: bool = True  # hybrid ranks tests, vendored code, shims and stubs lower
    storage: str = ""  # new indexes: "lancedb" or "lite" (app/core/storage); "" = lancedb
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def load(cls) -> Settings:
        path = settings_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("settings at %s unreadable (%s); using defaults", path, exc)
            _set_aside(path)
            return cls()
        known = {f.name: f for f in fields(cls)}
        values = {}
        defaults = cls()
        for name, value in data.items():
            if name in known and isinstance(value, type(getattr(defaults, name))):
                values[name] = value
            elif (
                name in known
                and isinstance(value, int)
                and isinstance(getattr(defaults, name), float)
            ):
                values[name] = float(value)
        values["schema_version"] = SCHEMA_VERSION
        return cls(**values)

    def save(self) -> None:
        """Atomically: a crash mid-write leaves the previous file."""
        path = settings_path()
        paths.ensure(path.parent)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)

    @property
    def embedding(self) -> tuple:
        """Everything that chooses the embedder: a change means another model."""
        return (
            self.model_path,
            self.threads,
            tuple(self.embedder_urls),
            self.embedder_model,
            self.embedder_concurrency,
        )

    @property
    def max_file_bytes(self) -> int:
        return max(1, self.max_file_kb) * 1024


def settings_path() -> Path:
    return paths.config_dir() / "settings.json"


def _set_aside(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_suffix(".json.bad"))
