"""The lite storage: one SQLite file per project, with FTS5 for the words.

It needs nothing beyond Python's own ``sqlite3`` (and a pure-Python stemmer), so the app
runs where LanceDB cannot, and its installer is smaller. Search is exact: every vector is
read into RAM (app/core/search.py), as LanceDB's is below its RAM budget; there is no
approximate index, so it suits indexes that fit in memory.

Layout: ``<data>/projects/<hash of the root>/index.sqlite`` (WAL mode: one writer, any
number of readers, in any processes), or ``index.sqlite`` in a named folder, with

* ``meta``: as LanceDB's, plus ``commit``, the number of the last commit;
* ``chunks_<gen>``: LanceDB's columns, the vector as float32 bytes, ``words`` (the length
  BM25 counts), and ``added``/``removed``: the commits from which a row is seen and
  from which it is not;
* ``fts_<gen>``: the words of each chunk (fulltext.py), keyed by the chunk's row id;
* ``files_<gen>``: LanceDB's columns, and ``added``/``removed``.

A batch is one transaction, so a crash leaves it whole or absent. Readers see commits
only: a reader at commit C sees the rows added at or before C and not removed by then.
A batch adds rows as of the next commit and marks the rows it replaces as removed from
it; :meth:`LiteStore.finish` commits by writing ``commit`` into ``meta``. Rows removed
before the previous commit are deleted then: a reader one commit behind still finds
every row it sees, and one further behind opens the newest commit when it asks.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from dataclasses import astuple
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from app.core import damage, faults
from app.core.location import Location
from app.core.storage import fulltext
from app.core.storage.base import (
    FILES_SCHEMA,
    RESULT_COLUMNS,
    Chunks,
    FileRecord,
    Filter,
    ModelRecord,
    ProjectStore,
    chunks_schema,
    not_indexed,
    unreadable_is_damage,
)

FILE_NAME = "index.sqlite"
BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another process's write
_SCHEMA = chunks_schema(1)  # the vector's width does not matter here
_CHUNK_COLUMNS = [f.name for f in _SCHEMA]
_FILE_COLUMNS = [f.name for f in FILES_SCHEMA]
_MAX_VARIABLES = 900  # bound parameters per statement (SQLite's limit is 999 on old builds)


def _file(location: Location) -> Path:
    return (Path(location.uri) if location.shared else location.notes) / FILE_NAME


def _connect(path: Path) -> sqlite3.Connection:
    if not os.access(path.parent, os.W_OK):
        # A read-only folder (a read-only home or mount): SQLite opens a WAL database
        # only where it can make its -shm file, or where one is (a writer elsewhere has
        # it open), else only when told that the file cannot change.
        shm = Path(f"{path}-shm").exists()
        uri = f"file:{quote(str(path))}?mode=ro" + ("" if shm else "&immutable=1")
        return sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    # With WAL, a killed process loses nothing committed; a power cut may lose the last
    # commits, never the database's consistency.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _sql_type(f: pa.Field) -> str:
    if pa.types.is_integer(f.type):
        return "INTEGER"
    if pa.types.is_floating(f.type):
        return "REAL"
    return "BLOB" if pa.types.is_fixed_size_list(f.type) else "TEXT"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _slices(values: list, size: int = _MAX_VARIABLES):
    for i in range(0, len(values), size):
        yield values[i : i + size]


class LiteChunks(Chunks):
    """The chunks of one generation, as of one commit (``commit`` None: as written)."""

    def __init__(self, store: LiteStore, gen: str, commit: int | None) -> None:
        self.store, self.table, self.fts = store, f"chunks_{gen}", f"fts_{gen}"
        self.visible = _visible(commit)
        self._stats: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _query(self, sql: str, args=()) -> list[tuple]:
        return self.store.query(sql, args)

    def count(self) -> int:
        return self._query(f"SELECT count(*) FROM {self.table} WHERE {self.visible}")[0][0]

    def scan(self, columns: list[str], paths: list[str] | None = None) -> pa.Table:
        base = f"SELECT id, {', '.join(columns)} FROM {self.table} WHERE {self.visible}"
        if paths is None:
            rows = self._query(base + " ORDER BY id")
        else:
            rows = []
            for part in _slices(paths):
                rows += self._query(f"{base} AND path IN ({_marks(len(part))})", part)
            rows.sort()
        return self._arrow(columns, rows)

    def take(self, row_ids: list[int], columns: list[str]) -> pa.Table:
        rows = []
        for part in _slices([int(i) for i in row_ids]):
            rows += self._query(
                f"SELECT id, {', '.join(columns)} FROM {self.table} "
                f"WHERE id IN ({_marks(len(part))}) AND {self.visible}",
                part,
            )
        return self._arrow(columns, rows)

    def _arrow(self, columns: list[str], rows: list[tuple]) -> pa.Table:
        data = list(zip(*rows, strict=True)) or [()] * (len(columns) + 1)
        arrays = [pa.array(data[0], pa.uint64())]
        for name, values in zip(columns, data[1:], strict=True):
            if name == "vector":
                flat = np.frombuffer(b"".join(values), dtype=np.float32)
                dims = len(values[0]) // 4 if values else 1
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, dims))
            else:
                arrays.append(pa.array(values, _SCHEMA.field(name).type))
        return pa.Table.from_arrays(arrays, names=["_rowid", *columns])

    def _corpus(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every visible row's id, word count, path and language, by id (for BM25's
        statistics, which LanceDB takes over the whole index, whatever the filter)."""
        if self._stats is None:
            rows = self._query(
                f"SELECT id, words, path, language FROM {self.table} WHERE {self.visible} "
                "ORDER BY id"
            )
            ids, words, paths, languages = zip(*rows, strict=True) if rows else ([],) * 4
            self._stats = (
                np.array(ids, dtype=np.int64),
                np.array(words, dtype=np.float64),
                np.array(paths, dtype=object),
                np.array(languages, dtype=object),
            )
        return self._stats

    def full_text(self, terms: str, n: int, where: Filter) -> pa.Table:
        ids, words, paths, languages = self._corpus()
        wanted = fulltext.query_terms(terms)
        scores = np.zeros(len(ids))
        if len(ids) and wanted:
            mean = words.sum() / len(ids)
            for term, times in wanted.items():
                rows = self._query(
                    f"SELECT doc, count(*) FROM {self.fts}_words WHERE term = ? GROUP BY doc",
                    (term,),
                )
                if not rows:
                    continue
                docs, tf = (np.array(c) for c in zip(*rows, strict=True))
                at = np.searchsorted(ids, docs)
                seen = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == docs)
                at, tf = at[seen], tf[seen].astype(np.float64)
                if len(at):
                    scores[at] += times * fulltext.bm25(tf, words[at], len(at), len(ids), mean)
        keep = scores > 0
        if where.languages:
            keep &= np.isin(languages, where.languages)
        if where.paths is not None:
            keep &= np.isin(paths, where.paths)
        found = np.flatnonzero(keep)
        best = found[np.lexsort((ids[found], -scores[found]))][:n]
        table = self.take(ids[best].tolist(), RESULT_COLUMNS)
        row = {row_id: i for i, row_id in enumerate(table.column("_rowid").to_pylist())}
        # Typed: an empty list is a null array, which pyarrow cannot take by (no match).
        table = table.take(pa.array([row[i] for i in ids[best].tolist()], pa.int64()))
        return table.append_column("_score", pa.array(scores[best], pa.float32()))


def _visible(commit: int | None) -> str:
    if commit is None:
        return "removed IS NULL"
    return f"added <= {int(commit)} AND (removed IS NULL OR removed > {int(commit)})"


class LiteStore(ProjectStore):
    backend = "lite"

    def __init__(
        self,
        root: Path,
        conn: sqlite3.Connection,
        meta: dict[str, str],
        location: Location,
        latest: bool = False,
    ) -> None:
        super().__init__(root, meta, location, latest)
        self.conn = conn
        self._lock = threading.RLock()  # one connection, used by a searcher's threads

    def query(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, args).fetchall()

    @property
    def commit(self) -> int:
        return int(self.meta.get("commit", 0))

    # --- opening -------------------------------------------------------------------------

    @staticmethod
    def exists(location: Location) -> bool:
        return not location.remote and _file(location).is_file()

    @classmethod
    def _open(cls, root: Path | None, location: Location, latest: bool) -> LiteStore:
        where = root or location.uri
        if not cls.exists(location):
            raise not_indexed(where, location)
        with unreadable_is_damage(where, location):
            conn = _connect(_file(location))
            meta = _read_meta(conn)
        root = root or Path(meta.get("root", location.uri))
        store = cls(root, conn, meta, location, latest)
        store._checked()
        return store

    @classmethod
    def create(cls, root: Path, location: Location, meta: dict[str, str]) -> LiteStore:
        path = _file(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path)
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        store = cls(root, conn, {}, location, latest=True)
        store._write_meta(meta)
        return store

    @classmethod
    def wipe(cls, location: Location) -> None:
        if not location.shared:
            shutil.rmtree(location.notes, ignore_errors=True)
            return
        for suffix in ("", "-wal", "-shm"):
            Path(f"{_file(location)}{suffix}").unlink(missing_ok=True)

    def verify(self, thorough: bool = False) -> None:
        """Read a row of every table and look up the words of a stored path in the
        full-text index. ``thorough`` has SQLite check every page, and checks every
        vector."""
        gen = self.meta.get("generation") or self.meta.get("building")
        if not gen:
            return
        with unreadable_is_damage(self.root, self.location):
            names = self._tables()
            if f"chunks_{gen}" not in names:
                if self.finished:
                    raise ValueError(f"chunks_{gen} is missing")
                return  # a first build killed before it made its tables
            for table in (f"chunks_{gen}", f"files_{gen}"):
                self.query(f"SELECT * FROM {table} LIMIT 1")
            if path := self.query(f"SELECT path FROM chunks_{gen} LIMIT 1"):
                for term in fulltext.query_terms(path[0][0]):
                    self.query(f"SELECT doc FROM fts_{gen}_words WHERE term = ? LIMIT 1", (term,))
            if thorough:
                # quick_check reads every page; integrity_check and FTS5's own check also
                # compare every index with its table: 2.5 s at 100k chunks, most of a
                # no-change run (docs/PERFORMANCE.md).
                problems = [r[0] for r in self.query("PRAGMA quick_check") if r[0] != "ok"]
                if problems:
                    raise sqlite3.DatabaseError(problems[0])
                vectors = self.chunks(gen).scan(["vector"]).column("vector").combine_chunks()
                matrix = vectors.values.to_numpy().reshape(-1, vectors.type.list_size)
                if bad := damage.corrupt_vectors(matrix):
                    raise ValueError(f"{bad} stored vectors are corrupt")

    # --- reading -------------------------------------------------------------------------

    def _view(self, gen: str | None) -> tuple[str, int | None]:
        """A generation and the commit to read it as of (None: as written)."""
        gen = gen or self.meta["generation"]
        committed = not self.latest and gen == self.meta.get("generation")
        return gen, self.commit if committed else None

    def chunks(self, gen: str | None = None) -> LiteChunks:
        gen, commit = self._view(gen)
        return LiteChunks(self, gen, commit)

    def _tables(self) -> set[str]:
        return {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")}

    def file_records(self, gen: str) -> dict[str, FileRecord]:
        if f"files_{gen}" not in self._tables():
            return {}
        gen, commit = self._view(gen)
        rows = self.query(
            f"SELECT {', '.join(_FILE_COLUMNS)} FROM files_{gen} WHERE {_visible(commit)}"
        )
        return {r[0]: FileRecord(*r) for r in rows}

    def indexed_paths(self) -> list[str]:
        gen, commit = self._view(None)
        rows = self.query(
            f"SELECT path FROM files_{gen} WHERE status = 'indexed' AND {_visible(commit)} "
            "ORDER BY id"
        )
        return [r[0] for r in rows]

    def files_done(self, gen: str) -> int:
        if f"files_{gen}" not in self._tables():
            return 0
        gen, commit = self._view(gen)
        sql = f"SELECT count(*) FROM files_{gen} WHERE status = 'indexed' AND {_visible(commit)}"
        return self.query(sql)[0][0]

    def newer_commit(self) -> bool:
        with self._lock:
            return _read_meta(self.conn).get("commit") != self.meta.get("commit")

    def size_on_disk(self) -> int:
        path = _file(self.location)
        return sum(
            p.stat().st_size
            for p in (Path(f"{path}{s}") for s in ("", "-wal", "-shm"))
            if p.exists()
        )

    # --- writing -------------------------------------------------------------------------

    def _create_tables(self, gen: str, dims: int) -> None:
        chunk_columns = ", ".join(f"{f.name} {_sql_type(f)}" for f in _SCHEMA)
        file_columns = ", ".join(f"{f.name} {_sql_type(f)}" for f in FILES_SCHEMA)
        with self._transaction():
            for statement in (
                f"CREATE TABLE IF NOT EXISTS chunks_{gen} (id INTEGER PRIMARY KEY, "
                f"{chunk_columns}, words INTEGER, added INTEGER, removed INTEGER)",
                f"CREATE INDEX IF NOT EXISTS chunks_{gen}_path ON chunks_{gen} (path)",
                f"CREATE TABLE IF NOT EXISTS files_{gen} (id INTEGER PRIMARY KEY, "
                f"{file_columns}, added INTEGER, removed INTEGER)",
                f"CREATE INDEX IF NOT EXISTS files_{gen}_path ON files_{gen} (path)",
                f"CREATE VIRTUAL TABLE IF NOT EXISTS fts_{gen} USING fts5(words, "
                "tokenize='unicode61 remove_diacritics 0')",
                f"CREATE VIRTUAL TABLE IF NOT EXISTS fts_{gen}_words "
                f"USING fts5vocab(fts_{gen}, instance)",
            ):
                self.conn.execute(statement)

    def write(
        self,
        gen: str,
        records: list[FileRecord],
        chunks: pa.Table | None,
        replaced: list[str],
        deleted: list[str],
    ) -> None:
        upcoming = self.commit + 1
        with self._transaction():
            faults.point("write.chunks")
            self._remove(gen, "chunks", replaced + deleted, upcoming)
            if chunks is not None and chunks.num_rows:
                self._insert_chunks(gen, chunks, upcoming)
            faults.point("write.files")
            self._remove(gen, "files", deleted + [r.path for r in records], upcoming)
            self.conn.executemany(
                f"INSERT INTO files_{gen} ({', '.join(_FILE_COLUMNS)}, added) "
                f"VALUES ({_marks(len(_FILE_COLUMNS) + 1)})",
                [(*astuple(r), upcoming) for r in records],
            )

    def _remove(self, gen: str, kind: str, paths: list[str], upcoming: int) -> None:
        """The rows of ``paths`` go: those not committed yet at once, the others as of
        the upcoming commit."""
        table = f"{kind}_{gen}"
        for part in _slices(paths):
            where = f"path IN ({_marks(len(part))}) AND removed IS NULL"
            if kind == "chunks":
                self.conn.execute(
                    f"DELETE FROM fts_{gen} WHERE rowid IN "
                    f"(SELECT id FROM {table} WHERE {where} AND added >= ?)",
                    (*part, upcoming),
                )
            self.conn.execute(
                f"DELETE FROM {table} WHERE {where} AND added >= ?", (*part, upcoming)
            )
            self.conn.execute(f"UPDATE {table} SET removed = ? WHERE {where}", (upcoming, *part))

    def _insert_chunks(self, gen: str, chunks: pa.Table, upcoming: int) -> None:
        columns = chunks.to_pydict()
        vectors = chunks.column("vector").combine_chunks()
        matrix = vectors.values.to_numpy().reshape(-1, vectors.type.list_size).astype(np.float32)
        documents = [fulltext.document(text) for text in columns["fts"]]
        rows = [
            (
                *(columns[c][i] for c in _CHUNK_COLUMNS if c != "vector"),
                matrix[i].tobytes(),
                documents[i][1],
                upcoming,
            )
            for i in range(chunks.num_rows)
        ]
        names = [c for c in _CHUNK_COLUMNS if c != "vector"]
        first = self.conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM chunks_{gen}").fetchone()[
            0
        ]
        self.conn.executemany(
            f"INSERT INTO chunks_{gen} (id, {', '.join(names)}, vector, words, added) "
            f"VALUES (?, {_marks(len(names) + 3)})",
            [(first + i, *row) for i, row in enumerate(rows)],
        )
        self.conn.executemany(
            f"INSERT INTO fts_{gen} (rowid, words) VALUES (?, ?)",
            [(first + i, doc) for i, (doc, _) in enumerate(documents)],
        )

    def finish(
        self,
        gen: str,
        model: ModelRecord,
        chunk_tokens: int | None = None,
        file_rules: str | None = None,
    ) -> None:
        meta = self.committed_meta(gen, model, chunk_tokens, file_rules)
        previous = self.commit
        meta["commit"] = str(previous + 1)
        with self._transaction():
            faults.point("finish.meta")
            self._write_meta(meta)  # the commit: from here on `gen` is the index
            for kind in ("chunks", "files"):
                gone = f"removed IS NOT NULL AND removed <= {previous}"
                if kind == "chunks":
                    self.conn.execute(
                        f"DELETE FROM fts_{gen} WHERE rowid IN "
                        f"(SELECT id FROM chunks_{gen} WHERE {gone})"
                    )
                self.conn.execute(f"DELETE FROM {kind}_{gen} WHERE {gone}")
            self._drop_unused()
        self.compact()

    def _drop_unused(self) -> None:
        keep = {self.meta[key] for key in ("generation", "building") if key in self.meta}
        for name in sorted(self._tables()):
            kind, _, gen = name.partition("_")
            if kind in ("chunks", "files", "fts") and "_" not in gen and gen not in keep:
                faults.point("finish.drop")
                if kind == "fts":
                    self.conn.execute(f"DROP TABLE IF EXISTS fts_{gen}_words")
                self.conn.execute(f"DROP TABLE IF EXISTS {name}")

    def uncommitted(self) -> bool:
        gen = self.meta.get("generation")
        if gen is None:
            return False
        upcoming = self.commit + 1
        return any(
            self.query(
                f"SELECT 1 FROM {kind}_{gen} WHERE added >= ? OR removed >= ? LIMIT 1",
                (upcoming, upcoming),
            )
            for kind in ("chunks", "files")
        )

    def compact(self, force: bool = False) -> None:
        """Fold the write-ahead log into the database file."""
        faults.point("compact")
        self.query("PRAGMA wal_checkpoint(TRUNCATE)" if force else "PRAGMA wal_checkpoint(PASSIVE)")

    def _write_meta(self, meta: dict[str, str]) -> None:
        with self._transaction():
            self.conn.execute("DELETE FROM meta")
            self.conn.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        self.meta = meta

    def _transaction(self):
        return _Transaction(self)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; nested ones join the outer."""

    def __init__(self, store: LiteStore) -> None:
        self.store = store
        self.outer = False

    def __enter__(self) -> None:
        self.store._lock.acquire()
        if not self.store.conn.in_transaction:
            self.store.conn.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if self.outer:
                self.store.conn.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.store._lock.release()


def _read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())
