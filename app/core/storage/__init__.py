"""Where indexes are kept: one interface (base.py), two backends.

* ``lancedb`` (lance.py, the default): any size, an approximate vector index beyond the
  RAM budget, and shared stores in a folder or on S3.
* ``lite`` (lite.py): Python's own sqlite3, with FTS5 for the words and every vector in
  RAM: small projects, constrained machines, and the installer without LanceDB.

Both give the same results: the same chunks, the same vectors searched the same way, and
the same BM25 (lite computes LanceDB's, fulltext.py).

The storage of a new index is the one asked for (``codelamp index --storage``), else
``CODELAMP_STORAGE``, else the app's setting (:func:`choose`), else LanceDB. An index
keeps the storage it was built with until one is asked for explicitly. When LanceDB
cannot be imported, or cannot commit in the data folder (a filesystem that refuses what
it needs), a new index falls back to lite, and the run says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.core import faults
from app.core.errors import CodeLampError, UsageError
from app.core.location import Location
from app.core.storage.base import (
    Chunks,
    FileRecord,
    Filter,
    IndexDamaged,
    ModelRecord,
    NotFinished,
    NotIndexed,
    ProjectStore,
    chunks_schema,
    files_phrase,
    generation,
    index_command,
    not_finished,
    not_indexed,
    storage_error,
)

__all__ = [
    "BACKENDS",
    "Chunks",
    "FileRecord",
    "Filter",
    "IndexDamaged",
    "ModelRecord",
    "NotFinished",
    "NotIndexed",
    "ProjectStore",
    "chunks_schema",
    "backend_of",
    "choose",
    "files_phrase",
    "generation",
    "index_command",
    "not_finished",
    "open_for_writing",
    "preferred",
    "storage_error",
]

BACKENDS = ("lancedb", "lite")
ENV = "CODELAMP_STORAGE"
_chosen: str | None = None


def check_name(name: str, where: str) -> str:
    name = name.strip().lower()
    if name not in BACKENDS:
        raise UsageError(f"Unknown storage {name!r} ({where}); use lancedb or lite.")
    return name


def choose(name: str | None) -> None:
    """The app's setting: the storage of new indexes unless CODELAMP_STORAGE says."""
    global _chosen
    _chosen = check_name(name, "settings") if name else None


def preferred() -> str:
    """The storage new indexes get."""
    if value := os.environ.get(ENV, "").strip():
        return check_name(value, ENV)
    return _chosen or "lancedb"


def lancedb_problem() -> str | None:
    """Why LanceDB cannot be used in this process; None when it can."""
    try:
        faults.point("lancedb.import")
        import lancedb  # noqa: F401 - the import is the check
    except (ImportError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _backends() -> dict[str, type[ProjectStore]]:
    from app.core.storage.lance import LanceStore
    from app.core.storage.lite import LiteStore

    return {"lancedb": LanceStore, "lite": LiteStore}


def backend_of(location: Location, root: Path | None) -> type[ProjectStore]:
    """The backend of the index at ``location``; NotIndexed when there is none."""
    from app.core.storage.lance import LanceStore
    from app.core.storage.lite import LiteStore

    if location.remote:
        return LanceStore
    found = [b for b in (LanceStore, LiteStore) if b.exists(location)]
    if not found:
        raise not_indexed(root or location.uri, location)
    if len(found) == 2:
        found = [b for b in found if b.backend == preferred()]
    if found[0] is LanceStore and (why := lancedb_problem()) is not None:
        raise NotIndexed(
            f"The index of {root or location.uri} was built with LanceDB, which cannot be "
            f"used here ({why}). Index it again to keep it in the lite storage."
        )
    return found[0]


def open_for_writing(
    root: Path,
    thorough: bool = True,
    location: Location | None = None,
    storage: str | None = None,
) -> tuple[ProjectStore, str | None]:
    """Open or create the index of ``root`` (in ``location``, default the app's own). A
    damaged one is rebuilt from scratch (it only holds derived data, and the embedding
    cache makes that cheap), and so is one in another storage than ``storage`` asks for.
    The second value is a sentence for the user about what happened, or None.
    ``thorough``: see :meth:`ProjectStore.verify`."""
    location = location or Location.of_project(root)
    want = check_name(storage, "--storage") if storage else preferred()
    if location.remote:
        if storage == "lite":
            raise UsageError(
                "The lite storage keeps an index in a local file; an s3:// store needs "
                "LanceDB (--storage lancedb)."
            )
        want = "lancedb"
    backends = _backends()
    notes = []
    if want == "lancedb" and (why := lancedb_problem()) is not None:
        if location.remote:
            raise CodeLampError(f"An s3:// store needs LanceDB, which cannot be used here ({why}).")
        notes.append(f"LanceDB cannot be used here ({why}), so the lite storage keeps it")
        want = "lite"
    try:
        store = ProjectStore.open(
            root, unfinished=True, thorough=thorough, location=location, latest=True
        )
    except NotIndexed:
        pass
    except IndexDamaged as exc:
        notes.append(f"The index for {root} was damaged ({exc.detail}); rebuilt it")
        for backend in backends.values():
            if location.remote or backend.exists(location):
                backend.wipe(location)
    else:
        if storage is None or store.backend == want:
            return store, None
        notes.append(f"The index for {root} moves to the {want} storage; rebuilt it")
        type(store).wipe(location)
    store = _create(backends, want, root, location, notes)
    return store, ". ".join(notes) + "." if notes else None


def _create(
    backends: dict[str, type[ProjectStore]],
    want: str,
    root: Path,
    location: Location,
    notes: list[str],
) -> ProjectStore:
    meta = ProjectStore.new_meta(root)
    try:
        return backends[want].create(root, location, meta)
    except Exception as exc:
        if want != "lancedb" or location.remote or storage_error(exc) is not None:
            raise
        # The filesystem refuses something LanceDB needs (renames, locks, mmap):
        # the lite storage needs only what SQLite does.
        backends["lancedb"].wipe(location)
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        notes.append(
            f"LanceDB cannot commit in {location.folder} ({detail}), so the lite storage keeps it"
        )
        return backends["lite"].create(root, location, meta)
