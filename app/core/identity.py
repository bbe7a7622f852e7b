"""Which bytes a model file holds: the SHA-256 of all of it, remembered per file version.

The embedding cache and the index generations are keyed by the model id, so two files
that differ anywhere must never share one. Hashing only the ends did: a copy with 2 MiB
changed in the middle got the original's id, and its vectors were then reused by indexes
built with the original. Hashing every byte costs about 1 s per GB on a CPU with SHA
instructions (several times that without), so each digest is remembered per file version
(path, size, mtime, ctime, inode, device) in a small JSON file in the cache dir.

ctime is part of the version because no program can set it: a copy that keeps the old
mtime (``cp -p``, ``touch -r``) is still hashed again. A digest is remembered only when
the file had been still for ``SETTLED_NS`` before it was hashed: timestamps are coarse
(a kernel tick; 2 s on FAT), and a file written again within that time could keep its
version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path

from app import paths
from app.core.errors import ModelError

log = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes hashed between two calls of ``on_block``
SETTLED_NS = 2_000_000_000
_CACHE_FILE = "model-digests.json"

# on_block(bytes hashed so far); it may raise to stop hashing.
OnBlock = Callable[[int], None]


@dataclass(frozen=True)
class FileVersion:
    """Changes whenever the file's bytes do (short of two writes within one timestamp tick)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: Path) -> FileVersion:
        """Raises OSError when the file is gone or unreadable."""
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def hash_file(path: Path, on_block: OnBlock | None = None) -> str:
    """SHA-256 of the whole file, read once, in ``BLOCK``-sized pieces."""
    digest, done = hashlib.sha256(), 0
    with path.open("rb", buffering=0) as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            done += len(block)
            if on_block is not None:
                on_block(done)
    return digest.hexdigest()


def identify(path: Path, on_block: OnBlock | None = None) -> tuple[FileVersion, str]:
    """The file's version and SHA-256: remembered for this version, or hashed now.

    Raises ModelError when the file cannot be read or changes while it is hashed.
    """
    try:
        version = FileVersion.of(path)
        digest = _remembered(path, version)
        if digest is None:
            started = time.time_ns()
            digest = hash_file(path, on_block)
            if FileVersion.of(path) != version:
                raise ModelError(
                    f"{path} changed while CodeLamp was reading it. If it is still being "
                    "copied or downloaded, wait until that has finished, then try again."
                )
            if started - max(version.mtime_ns, version.ctime_ns) >= SETTLED_NS:
                _remember(path, version, digest)
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    return version, digest


def _cache_path() -> Path:
    return paths.cache_dir() / _CACHE_FILE


def _load() -> dict:
    try:
        entries = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or damaged: digests are only recomputed
    return entries if isinstance(entries, dict) else {}


def _remembered(path: Path, version: FileVersion) -> str | None:
    entry = _load().get(str(path))
    if isinstance(entry, dict) and entry.get("version") == list(astuple(version)):
        return entry.get("sha256")
    return None


def _remember(path: Path, version: FileVersion, digest: str) -> None:
    """Keep the digest of this version; entries for files that are gone are dropped.
    Failing to write only costs hashing again next time."""
    entries = {p: e for p, e in _load().items() if os.path.exists(p)}
    entries[str(path)] = {"version": list(astuple(version)), "sha256": digest}
    target = _cache_path()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        os.replace(tmp, target)  # atomic: another process reads the old or the new file
    except OSError as exc:
        log.debug("could not remember the digest of %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
