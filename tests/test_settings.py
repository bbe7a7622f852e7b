"""Settings survive restarts; a damaged file never loses data or stops the app."""

from __future__ import annotations

import json

from app.core.indexer import IndexOptions
from app.settings import SCHEMA_VERSION, Settings, settings_path


def test_round_trip_and_defaults():
    assert Settings.load() == Settings()
    s = Settings(projects=["/src/a", "/src/b"], model_path="/m.gguf", threads=3)
    s.save()
    loaded = Settings.load()
    assert loaded.projects == ["/src/a", "/src/b"] and loaded.threads == 3
    assert json.loads(settings_path().read_text())["schema_version"] == SCHEMA_VERSION


def test_damaged_file_is_set_aside_not_lost():
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("{ not json")
    assert Settings.load() == Settings()
    assert settings_path().with_suffix(".json.bad").read_text() == "{ not json"


def test_unknown_and_mistyped_values_are_ignored():
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(
        json.dumps(
            {"threads": "many", "future_option": 1, "memory_high_percent": 80, "projects": ["/x"]}
        )
    )
    s = Settings.load()
    assert s.threads == 0 and s.memory_high_percent == 80.0 and s.projects == ["/x"]


def test_index_options_come_from_the_settings():
    assert IndexOptions.from_settings(Settings()) == IndexOptions(chunk_tokens=0)
    s = Settings(max_file_kb=0, ignore_patterns=["*.sql", "tmp/"], max_chunk_tokens=128)
    assert IndexOptions.from_settings(s) == IndexOptions(1024, ("*.sql", "tmp/"), 128)
