"""Embedding cache: an unchanged text is never embedded twice.

Vectors are keyed by (model id, sha256 of the exact text that was embedded), so they
survive edits elsewhere in a file, renames, moves, branch switches, and even a second
clone of the same repository. One SQLite file serves every project: it is a key-value
workload (LanceDB's versioned tables would grow with every small write), it is safe
with several processes (WAL), and it lives in the cache dir because it can be rebuilt.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from app import paths

DEFAULT_MAX_BYTES = 2 << 30  # about 1.4M vectors of the default model
_BATCH = 500  # SQLite's variable limit is 32766; stay well below


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, hash TEXT NOT NULL, "
        "vector BLOB NOT NULL, used REAL NOT NULL, PRIMARY KEY (model, hash))"
    )
    return db


class EmbeddingCache:
    def __init__(self, path: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path or paths.ensure(paths.cache_dir()) / "embeddings.sqlite"
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            self._db = _connect(self.path)
        except sqlite3.DatabaseError:
            # A damaged cache only costs re-embedding: start a new one.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._db = _connect(self.path)

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(wanted), _BATCH):
                part = wanted[i : i + _BATCH]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                    (model, *part),
                ).fetchall()
                for h, blob in rows:
                    found[h] = np.frombuffer(blob, dtype=np.float32)
            if found:  # recently used vectors are the last to be pruned
                now = time.time()
                self._db.executemany(
                    "UPDATE vectors SET used = ? WHERE model = ? AND hash = ?",
                    [(now, model, h) for h in found],
                )
                self._db.commit()
            self.hits += len(found)
            self.misses += len(wanted) - len(found)
        return found

    def put_many(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        if not vectors:
            return
        now = time.time()
        rows = [
            (model, h, np.asarray(v, dtype=np.float32).tobytes(), now) for h, v in vectors.items()
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
            self._db.commit()

    def size_bytes(self) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(vector)) + COUNT(*) * 100, 0) FROM vectors"
            ).fetchone()
        return int(n)

    def prune(self) -> int:
        """Drop the least recently used vectors beyond ``max_bytes``; returns how many."""
        excess = self.size_bytes() - self.max_bytes
        if excess <= 0:
            return 0
        with self._lock:
            (avg,) = self._db.execute("SELECT AVG(LENGTH(vector)) + 100 FROM vectors").fetchone()
            n = math.ceil(excess / avg)
            self._db.execute(
                "DELETE FROM vectors WHERE rowid IN "
                "(SELECT rowid FROM vectors ORDER BY used LIMIT ?)",
                (n,),
            )
            self._db.commit()
        return n

    def close(self) -> None:
        with self._lock:
            self._db.close()
