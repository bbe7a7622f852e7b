"""What a test needs to know of the storage backend an index was built with: its tables
and its files on disk (app/core/storage). Everything else goes through the interface."""

from __future__ import annotations

from pathlib import Path

from app.core.project import project_dir
from app.core.storage import ProjectStore


def table_names(store: ProjectStore) -> set[str]:
    """The tables the index holds (LanceDB's, or SQLite's own and FTS5's)."""
    from app.core.storage.lance import LanceStore
    from app.core.storage.lite import LiteStore

    if isinstance(store, LanceStore):
        return store.table_names()
    assert isinstance(store, LiteStore), type(store)
    return store._tables()


def lite_file(root: Path) -> Path:
    """The SQLite file of the lite index of ``root`` in the app's own folder."""
    from app.core.storage.lite import FILE_NAME

    return project_dir(root) / FILE_NAME


def lance_folder(root: Path) -> Path:
    """The LanceDB folder of the index of ``root`` in the app's own folder."""
    return project_dir(root) / "index.lance"


def has_written_files(root: Path) -> bool:
    """A writer has written (at least) one batch of files rows to the index of ``root``,
    whichever the backend: LanceDB's data file of a ``files`` table, or a row in one of
    SQLite's, read without opening the index (which might be being created)."""
    import sqlite3

    if list(lance_folder(root).glob("files_*.lance/data/*.lance")):
        return True
    if not lite_file(root).is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{lite_file(root)}?mode=ro", uri=True, timeout=5)
        try:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'files_%'"
            ).fetchall()
            return any(conn.execute(f"SELECT 1 FROM {n} LIMIT 1").fetchall() for (n,) in names)
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # being created
