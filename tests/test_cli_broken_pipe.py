"""`codelamp ... | head`: every command whose reader stops early exits 0, quietly.

The reader here is gone before the command writes (as with `| true`, or `| head` once the
output outgrows the pipe's buffer). Python buffers stdout on a pipe, so the write fails at
exit unless the command flushed first ("Exception ignored ... BrokenPipeError", exit 120);
with PYTHONUNBUFFERED it fails inside the command instead. Both are run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sample_project import make_project

pytestmark = pytest.mark.slow

QUERIES = "retry failed uploads\nhash a password\nload the config\n"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, default_model) -> tuple[Path, dict]:
    """A sample project indexed once, and the environment its commands run with."""
    base = tmp_path_factory.mktemp("pipes")
    project = make_project(base / "demo")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["CODELAMP_HOME"] = str(base / "home")
    subprocess.run(
        [sys.executable, "-m", "app", "index", str(project)],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return project, env


def commands(project: str, model: str) -> dict[str, list[str]]:
    return {
        "models list": ["models", "list"],
        "models list --json": ["models", "list", "--json"],
        "models inspect": ["models", "inspect", model],
        "models inspect --json": ["models", "inspect", model, "--json"],
        "models embed --json": ["models", "embed", "def retry(upload): ...", "--json"],
        "index": ["index", project],
        "index --json": ["index", project, "--json"],
        "search": ["search", project, "retry failed uploads", "-k", "20"],
        "search --json": ["search", project, "retry failed uploads", "-k", "20", "--json"],
        "search -": ["search", project, "-"],
        "status": ["status", project],
        "status --json": ["status", project, "--json"],
    }


def assert_quiet(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "BrokenPipe" not in stderr, stderr


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", list(commands("", "")))
def test_a_reader_gone_before_the_output(indexed, default_model, name, buffered):
    project, env = indexed
    env = env if buffered else env | {"PYTHONUNBUFFERED": "1"}
    args = commands(str(project), str(default_model))[name]
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    os.close(read_end)  # the reader is gone before the first byte
    _, stderr = proc.communicate(QUERIES if args[-1] == "-" else "", timeout=600)
    assert_quiet(stderr)
    assert proc.returncode == 0, (proc.returncode, stderr)


def test_watch_stops_when_its_reader_has_gone(indexed):
    project, env = indexed
    with subprocess.Popen(
        [sys.executable, "-m", "app", "watch", str(project), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert json.loads(proc.stdout.readline())["event"] == "watching"
            proc.stdout.close()  # `| head -1`
            time.sleep(1)  # past the watcher's quiet time: the edit is a round of its own
            path = project / "src" / "config.py"
            path.write_text(path.read_text() + "\nRETRIES = 3\n")
            _, stderr = proc.communicate(timeout=120)  # it stops on its own at that event
        finally:
            if proc.poll() is None:
                proc.kill()
    assert_quiet(stderr)
    assert proc.returncode == 0, stderr
