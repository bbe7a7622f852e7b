"""Damaged index files, against the real CLI: `status` and `search` say in one line that
the index is damaged and how to fix it (never a traceback, a Rust panic or a numpy
warning), and `codelamp index` rebuilds it by itself, from the embedding cache."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sample_project import make_project

from app.core.project import project_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

QUERY = "where do we retry failed uploads?"


def codelamp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )


def scribble(path: Path, nbytes: int) -> None:
    """Overwrite ``nbytes`` in the middle of ``path`` (at most half of a small file) with
    seeded random bytes: the same damage on every run."""
    size = path.stat().st_size
    n = min(nbytes, size // 2)
    with path.open("r+b") as fh:
        fh.seek((size - n) // 2)
        fh.write(random.Random(20261130).randbytes(n))


def only(lance: Path, pattern: str) -> Path:
    """The one file that matches (a fresh index is compacted: one file per kind)."""
    (found,) = lance.glob(pattern)
    return found


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


FILES, CHUNKS = "files_*.lance", "chunks_*.lance"
DAMAGE: dict[str, Callable[[Path], None]] = {
    "files-data-2KB": lambda lance: scribble(only(lance, f"{FILES}/data/*.lance"), 2048),
    "chunks-data-4KB": lambda lance: scribble(only(lance, f"{CHUNKS}/data/*.lance"), 4096),
    "meta-data": lambda lance: scribble(only(lance, "meta.lance/data/*.lance"), 2048),
    "fts-postings": lambda lance: scribble(
        only(lance, f"{CHUNKS}/_indices/*/part_0_invert.lance"), 2048
    ),
    "fts-metadata": lambda lance: scribble(
        only(lance, f"{CHUNKS}/_indices/*/metadata.lance"), 2048
    ),
    "chunks-manifest": lambda lance: scribble(only(lance, f"{CHUNKS}/_versions/*.manifest"), 2048),
    "files-manifest": lambda lance: scribble(only(lance, f"{FILES}/_versions/*.manifest"), 2048),
    "chunks-data-deleted": lambda lance: only(lance, f"{CHUNKS}/data/*.lance").unlink(),
    "files-data-truncated": lambda lance: truncate(only(lance, f"{FILES}/data/*.lance")),
}


def assert_one_clear_line(proc: subprocess.CompletedProcess, root: Path) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "panicked" not in proc.stderr, proc.stderr
    assert "damaged" in proc.stderr and f"`codelamp index {root}`" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def top_path(root: Path, mode: str) -> str:
    proc = codelamp("search", str(root), QUERY, "--mode", mode, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["results"][0]["path"]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_reported_then_rebuilt(tmp_path, default_model, damage):
    root = make_project(tmp_path / "demo").resolve()
    first = codelamp("index", str(root))
    assert first.returncode == 0, first.stderr
    DAMAGE[damage](project_dir(root) / "index.lance")

    assert_one_clear_line(codelamp("status", str(root)), root)
    assert_one_clear_line(codelamp("search", str(root), QUERY), root)
    assert_one_clear_line(codelamp("search", str(root), QUERY, "--mode", "lexical"), root)

    rebuilt = codelamp("index", str(root), "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr and "panicked" not in rebuilt.stderr
    assert "damaged" in rebuilt.stderr and "rebuilt" in rebuilt.stderr, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["chunks_embedded"] == 0, "the cache kept the vectors"
    assert top_path(root, "hybrid") == top_path(root, "lexical") == "src/upload.py"
    assert codelamp("status", str(root)).returncode == 0
