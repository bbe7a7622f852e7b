"""Damaged index files, against the real CLI: `status` and `search` say in one line that
the index is damaged and how to fix it (never a traceback, a Rust panic or a numpy
warning), and `codelamp index` rebuilds it by itself, from the embedding cache.

LanceDB's files (an index of the default storage) and the lite storage's SQLite file (an
index built with `--storage lite`, whatever the default) are damaged each in their ways;
the rebuild is in the storage new indexes get."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import lance_folder, lite_file
from sample_project import make_project

from app.core.storage import preferred

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


def scribble(path: Path, nbytes: int, at: int | None = None) -> None:
    """Overwrite ``nbytes`` in the middle of ``path`` (at most half of a small file), or
    from offset ``at``, with seeded random bytes: the same damage on every run."""
    size = path.stat().st_size
    n = min(nbytes, size // 2)
    with path.open("r+b") as fh:
        fh.seek((size - n) // 2 if at is None else at)
        fh.write(random.Random(20261130).randbytes(n))


def only(lance: Path, pattern: str) -> Path:
    """The one file that matches (a fresh index is compacted: one file per kind)."""
    (found,) = lance.glob(pattern)
    return found


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def scribble_root_page(path: Path, table: str) -> None:
    """Overwrite the root page of the SQLite table named like ``table`` (LIKE, ! escapes),
    but its first bytes, found as SQLite finds it: from the schema on page 1."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        ((page_size,),) = conn.execute("PRAGMA page_size").fetchall()
        ((root,),) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '!'",
            (table,),
        ).fetchall()
    finally:
        conn.close()
    scribble(path, page_size - 16, at=(root - 1) * page_size + 16)


FILES, CHUNKS = "files_*.lance", "chunks_*.lance"
LANCE_DAMAGE: dict[str, Callable[[Path], None]] = {
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
LITE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "sqlite-header": lambda db: scribble(db, 100, at=0),
    "sqlite-middle-4KB": lambda db: scribble(db, 4096),
    "sqlite-chunks-root": lambda db: scribble_root_page(db, "chunks!_%"),
    "sqlite-fts-data": lambda db: scribble_root_page(db, "fts!_%!_data"),
    "sqlite-truncated": truncate,
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


@pytest.mark.parametrize(
    "damage",
    [
        *(
            pytest.param(name, marks=pytest.mark.lancedb_only("LanceDB's files"))
            for name in LANCE_DAMAGE
        ),
        *LITE_DAMAGE,
    ],
)
def test_damage_is_reported_then_rebuilt(tmp_path, default_model, damage):
    root = make_project(tmp_path / "demo").resolve()
    lite = damage in LITE_DAMAGE
    first = codelamp("index", str(root), *(["--storage", "lite"] if lite else []))
    assert first.returncode == 0, first.stderr
    if lite:
        LITE_DAMAGE[damage](lite_file(root))
    else:
        LANCE_DAMAGE[damage](lance_folder(root))

    assert_one_clear_line(codelamp("status", str(root)), root)
    assert_one_clear_line(codelamp("search", str(root), QUERY), root)
    assert_one_clear_line(codelamp("search", str(root), QUERY, "--mode", "lexical"), root)

    rebuilt = codelamp("index", str(root), "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr and "panicked" not in rebuilt.stderr
    assert "damaged" in rebuilt.stderr and "rebuilt" in rebuilt.stderr, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["chunks_embedded"] == 0, "the cache kept the vectors"
    assert top_path(root, "hybrid") == top_path(root, "lexical") == "src/upload.py"
    status = codelamp("status", str(root), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["storage"] == preferred()
