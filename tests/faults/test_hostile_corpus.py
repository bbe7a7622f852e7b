"""Indexing a hostile project with the real model and a real LanceDB.

Over a thousand files that are built to break an indexer: binaries posing as source, broken
encodings, huge and minified files, nesting thousands deep, names no index can store,
symlinks that loop or lead out, FIFOs, folders that cannot be read, ignore lines pathspec
rejects, and files that vanish or change between the scan and the read. Indexing must not
crash or hang; every file is indexed or listed with the reason it was skipped; nothing from
outside the project gets in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from deep_sources import deep_sources

from app.core.files import FileRules
from app.core.indexer import index_project
from app.core.project import project_status
from app.core.search import Searcher
from app.core.storage import ProjectStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OUTSIDE_MARKER = "quuxoutsidesecret"
NORMAL_MARKER = "reticulate_splines"
SPARSE_BYTES = 1 << 30  # what the files that "grow" after the scan grow to (sparse)

WEIRD_NAMES = [
    "new\nline.py",
    " spaced name .py",
    "-rf.py",
    "--help.py",
    "it's.py",
    'say "hi".py',
    "back\\slash.py",
    "ünïcödé.py",
    "日本語.py",
    "rocket🚀.py",
    "tab\there.py",
    "semi;colon.py",
    "100%.py",
    "star*.py",
    "what?.py",
    "trailing.py ",
]
DEEP = deep_sources(2000)


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def write_raw(folder: Path, name: bytes, content: bytes) -> None:
    """A file whose name is not valid UTF-8: only a bytes path can create it."""
    fd = os.open(os.fsencode(folder) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, content)
    os.close(fd)


def build_outside(folder: Path) -> Path:
    write(folder / "secret.py", f"{OUTSIDE_MARKER} = 'must never be indexed'\n")
    write(folder / "dir" / "leak.py", f"def leak():\n    return '{OUTSIDE_MARKER}'\n")
    return folder


def build_corpus(root: Path, outside: Path) -> None:
    write(
        root / "normal" / "splines.py",
        f"def {NORMAL_MARKER}(curve, tension):\n"
        '    """Smooth a curve through its control points."""\n'
        "    return [p * tension for p in curve]\n",
    )
    for i in range(150):
        write(root / "normal" / f"handler_{i}.py", f"def handler_{i}(x):\n    return x + {i}\n")
    for i in range(400):  # binaries named .py
        write(root / "binaries" / f"blob_{i}.py", b"\x7fELF\x00" + os.urandom(400))
    for i in range(50):  # text with a NUL byte
        write(root / "nul" / f"nul_{i}.py", f"x = {i}\x00\ny = 2\n")
    for i in range(20):  # not UTF-8: Latin-1 text, and raw bytes without a NUL
        write(root / "latin1" / f"cafe_{i}.py", f"name_{i} = 'café crème'\n".encode("latin-1"))
        write(root / "latin1" / f"raw_{i}.txt", bytes(range(1, 256)) * 2)
    for i in range(20):
        write(root / "utf16" / f"wide_{i}.py", f"wide_{i} = 'ünïcödé'\n".encode("utf-16"))
    # 200 folders deep, a likely secret at every level and one source file at the bottom.
    folder = root / "deep"
    for i in range(200):
        folder = folder / f"d{i:03}"
        write(folder / ".env", f"TOKEN={i}\n")
    write(folder / "bottom.py", "def bottom():\n    return 'deepest'\n")
    # Ignore lines git accepts and pathspec rejects; the good lines still apply.
    write(root / ".gitignore", "[z-a]\r\nfoo\\\r\n*.log\r\n")
    for i in range(150):
        write(root / "logs" / f"run_{i}.log", f"log line {i}\n")
    write(root / "nested" / ".gitignore", "!\n*.gen\n")
    for i in range(20):
        write(root / "nested" / f"out_{i}.gen", f"generated {i}\n")
    write(root / "nested" / "keep.py", "KEEP = True\n")
    for i, name in enumerate(WEIRD_NAMES):
        write(root / "names" / name, f"weird_{i} = {i}\n")
    write_raw(root, b"img\xff.png", b"\x89PNG")
    write_raw(root, b"code\xfe.py", b"x = 1\n")
    os.mkdir(os.fsencode(root) + b"/dir\xfd")
    write_raw(root / os.fsdecode(b"dir\xfd"), b"inner.py", b"y = 2\n")
    with open(root / "bundle.js", "wb") as f:  # 50 MB on one line, written sparsely
        f.write(b"var a=1;")
        f.truncate(50 << 20)
    write(root / "one_line.js", "var a=1;" * 25000)
    for name, source in DEEP.items():
        write(root / "nesting" / name, source)
    links = root / "links"
    links.mkdir()
    (links / "loop").symlink_to(links, target_is_directory=True)
    (links / "ping").symlink_to(links / "pong")
    (links / "pong").symlink_to(links / "ping")
    (links / "outdir").symlink_to(outside / "dir", target_is_directory=True)
    (links / "outfile.py").symlink_to(outside / "secret.py")
    (links / "dangling.py").symlink_to(links / "missing.py")
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "pipe.py")
    os.mkfifo(root / "fifo" / ".gitignore")
    write(root / "fifo" / "ok.py", "OK = 1\n")
    for i in range(10):
        write(root / "locked" / f"hidden_{i}.py", f"h = {i}\n")
    for i in range(40):
        write(root / "vanishing" / f"v_{i:02}.py", f"v = {i}\n")


def change_after_scan(root: Path, outside: Path) -> dict[str, str]:
    """What happens to files between the scan and the read; the reasons to expect."""
    expected = {}
    for i in range(40):
        rel = f"vanishing/v_{i:02}.py"
        path = root / rel
        path.unlink()
        if i < 10:
            expected[rel] = "deleted before it could be read"
        elif i < 20:
            os.mkfifo(path)
            expected[rel] = "not a regular file"
        elif i < 30:
            with open(path, "wb") as f:
                f.write(b"v = 1\n")
                f.truncate(SPARSE_BYTES)
            expected[rel] = "too large (1024.0 MB > 1.0 MB)"
        elif i < 35:
            path.mkdir()
            expected[rel] = "not a regular file"
        else:
            path.symlink_to(outside / "secret.py")
            expected[rel] = "replaced by a symlink"
    return expected


def everything_but_folders(root: Path) -> dict[str, Path]:
    """Files, symlinks and FIFOs below the root, by the path the index shows for them."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            rel = os.fsencode(path.relative_to(root).as_posix())
            found[rel.decode("utf-8", errors="backslashreplace")] = path
    return found


class Hostile(NamedTuple):
    root: Path
    corpus: dict[str, Path]  # as built, before anything changed
    changed: dict[str, str]  # filled in by the first scan: path -> the reason to expect


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hostile:
    """The corpus, with an unreadable folder (we run as root, where chmod 000 denies
    nothing) and a hook that changes files right after the first scan."""
    outside = build_outside(tmp_path / "outside")
    root = tmp_path / "proj"
    root.mkdir()
    build_corpus(root, outside)
    corpus = everything_but_folders(root)
    real_scandir, real_stat, real_walk = os.scandir, os.stat, FileRules.walk

    def scandir(path="."):
        if str(path).endswith("/locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    def stat(path, *args, **kw):
        if str(path).endswith("/locked/pyvenv.cfg"):
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kw)

    changed: dict[str, str] = {}

    def walk(self):
        found = real_walk(self)
        if not changed:
            changed.update(change_after_scan(root, outside))
        return found

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(FileRules, "walk", walk)
    return Hostile(root, corpus, changed)


def test_a_hostile_project_is_indexed_without_crash_hang_or_leak(hostile, embedder):
    root, corpus, changed = hostile
    assert len(corpus) >= 1000
    # What the walk must account for: all but FIFOs and what .gitignore files exclude.
    on_disk = {
        rel
        for rel, path in corpus.items()
        if (path.is_symlink() or path.is_file()) and not rel.endswith((".log", ".gen"))
    }

    started = time.monotonic()
    result = index_project(root, embedder)
    first_run = time.monotonic() - started
    assert not result.cancelled and changed

    status = project_status(root)
    skipped = {s["path"]: s["reason"] for s in status["skipped"]}
    assert all(skipped.values())
    store = ProjectStore.open(root)
    rows = store.chunks().scan(["path", "text"])
    indexed = set(rows.column("path").to_pylist())
    assert status["files"] == len(indexed) > 200

    # Every file is indexed, or skipped with a reason (itself or a folder above it).
    def accounted(rel: str) -> bool:
        parts = rel.split("/")
        return rel in indexed or any(
            "/".join(parts[:n]) in skipped for n in range(1, len(parts) + 1)
        )

    missing = sorted(rel for rel in on_disk | set(changed) if not accounted(rel))
    assert not missing, missing[:20]
    assert {rel: skipped.get(rel) for rel in changed} == changed
    expected = {
        "img\\xff.png": "file name is not valid UTF-8",
        "code\\xfe.py": "file name is not valid UTF-8",
        "dir\\xfd": "folder name is not valid UTF-8",
        "bundle.js": "too large (50.0 MB > 1.0 MB)",
        "one_line.js": "minified",
        "nesting/brackets.py": "minified",
        "locked": "unreadable: Permission denied",
        "links/outdir": "symlink outside the project",
        "links/outfile.py": "symlink outside the project",
        "links/loop": "symlink loop",
        "links/ping": "broken symlink",
        "links/dangling.py": "broken symlink",
        "binaries/blob_0.py": "binary",
        "nul/nul_0.py": "binary",
        "deep/d000/.env": "likely secret",
    }
    assert {rel: skipped.get(rel) for rel in expected} == expected
    assert {f"names/{name}" for name in WEIRD_NAMES} <= indexed
    assert {
        "deep/" + "/".join(f"d{i:03}" for i in range(200)) + "/bottom.py",
        "latin1/cafe_0.py",
        "utf16/wide_0.py",
        "nested/keep.py",
        "fifo/ok.py",
        *(
            f"nesting/{name}"
            for name in (
                "ifs.py",
                "classes.py",
                "ifdefs.c",
                "namespaces.cpp",
                "mods.rs",
                "blocks.c",
            )
        ),
    } <= indexed

    # Nothing from outside the root.
    real_root = root.resolve()
    assert all((root / rel).resolve().is_relative_to(real_root) for rel in indexed)
    assert not any(OUTSIDE_MARKER in text for text in rows.column("text").to_pylist())
    lexical = Searcher(store, None)
    assert lexical.search(OUTSIDE_MARKER, mode="lexical") == []
    # ... and the ordinary code is found, by words and by meaning.
    assert lexical.search(NORMAL_MARKER, mode="lexical")[0].path == "normal/splines.py"
    semantic = Searcher(store, embedder).search("smooth a curve through control points", k=5)
    assert "normal/splines.py" in [r.path for r in semantic]

    # A second run over the changed tree; names that need quoting leave the index cleanly.
    for name in ("it's.py", "new\nline.py", 'say "hi".py'):
        (root / "names" / name).unlink()
    started = time.monotonic()
    again = index_project(root, embedder)
    second_run = time.monotonic() - started
    assert again.files_deleted >= 3 and again.chunks_embedded == 0
    paths = set(ProjectStore.open(root).chunks().scan(["path"]).column("path").to_pylist())
    assert "names/it's.py" not in paths and "names/-rf.py" in paths
    print(
        f"\n{len(corpus)} files; first index {first_run:.1f} s "
        f"({result.files_indexed} read, {result.files_skipped} skipped, "
        f"{result.chunks_embedded} chunks embedded); second {second_run:.1f} s"
    )
