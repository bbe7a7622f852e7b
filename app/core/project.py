"""A project's identity and folder checks: whether a folder can be one, where its index
lives (its folder is named with every other one, in app/paths.py, which the lock and the
storage use without importing this module), what state it is in, and how it is forgotten."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from app.core.errors import CodeLampError
from app.paths import project_dir, project_key

__all__ = ["check_root", "forget", "project_dir", "project_key", "project_status"]

if TYPE_CHECKING:
    from app.core.location import Location


def check_root(root: str | Path) -> Path:
    """The project folder ``root``, resolved; else a CodeLampError that says what is wrong
    with it. Every way in (the CLI, the window, the indexer, the watcher, the MCP server)
    asks here, so a folder is refused in the same words wherever it is given."""
    root = Path(root).expanduser()
    if not root.exists():
        raise CodeLampError(f"No folder at {root}: it does not exist.")
    if not root.is_dir():
        kind = "a file, not a folder" if root.is_file() else "not a folder"
        raise CodeLampError(f"{root} is {kind}: point CodeLamp at the folder of your code.")
    if not os.access(root, os.R_OK | os.X_OK):
        raise CodeLampError(f"{root} cannot be read (permission denied).")
    return root.resolve()


def project_status(
    root: Path | None, thorough: bool = True, location: Location | None = None
) -> dict:
    """What `codelamp status` and the app's project list show. Raises NotIndexed or
    IndexDamaged. ``thorough`` checks every vector (:meth:`ProjectStore.verify`).
    ``location``: a named store (``root`` None: the root it was built from).

    ``state`` is "ready" (a committed index), or "unfinished" (the first index was
    interrupted; the counts are what it committed so far). ``building`` is true while a
    newer index (another model or chunk limit) is being built or was interrupted."""
    from app.core.storage import ProjectStore

    store = ProjectStore.open(root, unfinished=True, thorough=thorough, location=location)
    gen = store.meta.get("generation") or store.meta.get("building")
    records = store.file_records(gen) if gen else {}
    skipped = sorted((r.path, r.reason) for r in records.values() if r.status == "skipped")
    last = float(store.meta.get("last_indexed", 0))
    model, dims = store.model_id, store.dims
    chunks = store.chunks(gen) if records else None
    languages = chunks.scan(["language"]).column("language") if chunks else None
    if not store.finished:
        model = store.meta.get("building_model_id")
        dims = int(store.meta["building_dims"]) if "building_dims" in store.meta else None
    return {
        "root": str(store.root),
        "store": store.location.uri if store.location.shared else None,
        "storage": store.backend,
        "state": "ready" if store.finished else "unfinished",
        "building": "building" in store.meta,
        "files": sum(r.status == "indexed" for r in records.values()),
        "chunks": len(languages) if languages is not None else 0,
        "languages": sorted(pc.unique(languages).to_pylist()) if languages else [],
        "skipped": [{"path": p, "reason": why} for p, why in skipped],
        "model": model,
        "dims": dims,
        "chunk_tokens": store.chunk_tokens,
        "index_bytes": store.size_on_disk(),
        "last_indexed": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else None,
    }


def forget(root: Path) -> bool:
    """Delete a project's index. Returns False when there was none; raises IndexBusy
    while it is being written or watched (stop the watcher first)."""
    from app.core.lock import IndexBusy, watchers_of, writer_lock

    folder = project_dir(root)
    if not folder.exists():
        return False
    if watchers := watchers_of(root):
        raise IndexBusy(f"{watchers[0].describe(root)}; stop it before deleting the index.")
    with writer_lock(root, wait=False, activity="deleting"):
        shutil.rmtree(folder)
    return True
