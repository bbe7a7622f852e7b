"""The LanceDB storage: one database per project, for any size and for shared stores.

Layout: ``<data>/projects/<hash of the absolute root>/index.lance/`` (or the named
store's folder or S3 prefix) with tables

* ``meta``: schema version, project root, active model id and dims, last indexed;
* ``chunks_<gen>``: vector, text, identifier-split text for BM25, path, lines (of the piece
  and of the whole definition it belongs to), language, symbol, content hash;
* ``files_<gen>``: path, size, mtime, sha256, status or skip reason, chunk count.

A new generation (app/core/storage/base.py) writes a fresh pair of tables, so vectors of
different models or dims never mix, and the old index keeps answering until the new one
is complete.

Crash safety without transactions: a batch first replaces the chunks of its files, then
upserts their ``files`` rows. The ``files`` row is the commit record: if the process dies
in between, the file still looks changed on the next run and is simply done again
(deleting whatever rows it has first, so there are never duplicates).

Every write is batched (a few versions per batch, not per file) and :meth:`finish`
compacts and prunes old versions, because per-file writes leave thousands of versions.

Readers see commits only: :meth:`finish` records the versions of the tables it commits
in ``meta`` (``chunks_version``, ``files_version``), and a store opened for reading checks
out exactly those. The writer reads the newest versions (``latest``). Pruning keeps the
committed versions; a reader whose version was pruned after a newer commit opens the
newest meta and asks again.

On S3 its meta records the root it was built from, so a reader needs no source tree.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa

from app import paths
from app.core import damage, faults
from app.core.lexical import fts_query
from app.core.location import Location
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

if TYPE_CHECKING:
    from lancedb import DBConnection
    from lancedb.query import LanceVectorQueryBuilder
    from lancedb.table import Table

# Search is exact, over all vectors in RAM, while they fit this budget (100k chunks of a
# 384-dim model take 154 MB). Beyond it an IVF index is built, and rebuilt when the table
# has doubled since (docs/PERFORMANCE.md).
EXACT_SEARCH_BYTES = 256 << 20
# The IVF index: IVF_FLAT (exact distances inside a partition) with ~1,000 rows per
# partition, searching half of them: recall@10 1.000 at 100k (a quarter gave 0.981, too
# close to the 0.98 floor), scripts/bench_search.py --ann. IVF_PQ and IVF_HNSW_SQ, with
# the settings tried, reached only 0.91 and 0.87.
ANN_ROWS_PER_PARTITION = 1000
ANN_PROBE_SHARE = 2  # probe 1/2 of the partitions
ANN_MIN_PROBES = 20
# Compact when this many fragments or versions have piled up.
MAX_FRAGMENTS = 16
MAX_VERSIONS = 24
PRUNE_MARGIN = timedelta(seconds=1)  # see LanceStore._prune_age
META_SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])


def needs_ann(rows: int, dims: int) -> bool:
    return rows * dims * 4 > EXACT_SEARCH_BYTES


def sql_in(column: str, values: list[str]) -> str:
    quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _where(flt: Filter) -> str | None:
    clauses = []
    if flt.languages:
        clauses.append(sql_in("language", flt.languages))
    if flt.paths is not None:
        clauses.append(sql_in("path", flt.paths))
    return " AND ".join(clauses) or None


class LanceChunks(Chunks):
    def __init__(self, table: Table, nprobes: int | None, fts: bool) -> None:
        self.table, self.nprobes, self.fts = table, nprobes, fts

    def count(self) -> int:
        return self.table.count_rows()

    def scan(self, columns: list[str], paths: list[str] | None = None) -> pa.Table:
        query = self.table.search()
        if paths is not None:
            query = query.where(sql_in("path", paths))
        return query.select(columns).with_row_id(True).limit(None).to_arrow()

    def take(self, row_ids: list[int], columns: list[str]) -> pa.Table:
        return self.table.take_row_ids(row_ids).select(columns).with_row_id().to_arrow()

    def full_text(self, terms: str, n: int, where: Filter) -> pa.Table:
        if not self.fts:  # an empty index has no full-text index
            return pa.table({"_rowid": pa.array([], pa.uint64())})
        query = self.table.search(terms, query_type="fts", fts_columns="fts").limit(n)
        if clause := _where(where):
            query = query.where(clause, prefilter=True)
        return query.select([*RESULT_COLUMNS, "_score"]).with_row_id(True).to_arrow()

    def nearest(self, vector: np.ndarray, n: int, where: Filter) -> pa.Table | None:
        if self.nprobes is None:
            return None
        # Table.search is declared to give the base class; a vector gives a vector query.
        query = cast(
            "LanceVectorQueryBuilder", self.table.search(vector, vector_column_name="vector")
        ).metric("cosine")
        query = query.limit(n).nprobes(self.nprobes)
        if clause := _where(where):
            query = query.where(clause, prefilter=True)
        return query.select([*RESULT_COLUMNS, "_distance"]).with_row_id(True).to_arrow()


class LanceStore(ProjectStore):
    backend = "lancedb"

    def __init__(
        self,
        root: Path,
        db: DBConnection,
        meta: dict[str, str],
        location: Location,
        latest: bool = False,
    ) -> None:
        super().__init__(root, meta, location, latest)
        self.db = db

    # --- opening -------------------------------------------------------------------------

    @staticmethod
    def exists(location: Location) -> bool:
        return location.remote or (Path(location.uri) / "meta.lance").is_dir()

    @classmethod
    def _open(cls, root: Path | None, location: Location, latest: bool) -> LanceStore:
        where = root or location.uri
        if not cls.exists(location):
            raise not_indexed(where, location)
        with unreadable_is_damage(where, location):
            db = location.connect()
            if location.remote and "meta" not in set(db.list_tables().tables):
                raise not_indexed(where, location)
            meta = _read_meta(db)
        root = root or Path(meta.get("root", location.uri))
        store = cls(root, db, meta, location, latest)
        store._checked()
        return store

    @classmethod
    def create(cls, root: Path, location: Location, meta: dict[str, str]) -> LanceStore:
        if location.folder is not None:
            paths.ensure(location.folder)
        faults.point("lance.create")
        db = location.connect()
        # A wiped shared store may keep a "meta" it could not drop. (Overwriting a table that
        # is not there makes Lance log a warning to the terminal.)
        leftover = "meta" in db.list_tables().tables
        db.create_table("meta", _meta_rows(meta), mode="overwrite" if leftover else "create")
        return cls(root, db, meta, location, latest=True)

    @classmethod
    def wipe(cls, location: Location) -> None:
        if not location.shared:
            shutil.rmtree(location.notes, ignore_errors=True)
            return
        db = location.connect()
        for name in db.list_tables().tables:
            _drop(db, location, name)

    def verify(self, thorough: bool = False) -> None:
        """Read one small column of every table: that opens every data file, so a
        truncated or missing file shows up now rather than in the middle of a search.
        Then look up the words of a stored path, which reads their posting lists in the
        full-text index (a word it lacks would read nothing). ``thorough`` reads every
        column: about 0.3 s at 100k chunks of 384 dims (warm disk cache), against 0.03 s."""
        gen = self.meta.get("generation") or self.meta.get("building")
        if not gen:
            return
        with unreadable_is_damage(self.root, self.location):
            names = self.table_names()
            for kind, column in (("chunks", "start_line"), ("files", "size")):
                if not self.finished and f"{kind}_{gen}" not in names:
                    continue  # a first build killed before it made its tables
                table = self.db.open_table(f"{kind}_{gen}")
                _read_every_row(table, table.schema.names if thorough else [column])
            if self.meta.get("fts") == "1":
                chunks = self._table("chunks", gen)
                path = chunks.search().select(["path"]).limit(1).to_arrow().column("path")
                if words := fts_query(" ".join(path.to_pylist())):
                    chunks.search(words, query_type="fts", fts_columns="fts").limit(1).to_arrow()

    # --- reading -------------------------------------------------------------------------

    def chunks(self, gen: str | None = None) -> LanceChunks:
        nprobes = (
            self.meta.get("ann_nprobes") if gen in (None, self.meta.get("generation")) else None
        )
        fts = self.meta.get("fts") == "1"
        return LanceChunks(self._table("chunks", gen), int(nprobes) if nprobes else None, fts)

    @property
    def has_ann(self) -> bool:
        return "ann_rows" in self.meta

    def indexed_paths(self) -> list[str]:
        files = self._table("files", None).search().where("status = 'indexed'")
        return files.select(["path"]).limit(None).to_arrow().column("path").to_pylist()

    def _table(self, kind: str, gen: str | None) -> Table:
        """The committed version for a reader (the newest for the writer, for a table of
        a build in progress, or of an index committed before versions were recorded)."""
        gen = gen or self.meta["generation"]
        table = self.db.open_table(f"{kind}_{gen}")
        version = self.meta.get(f"{kind}_version")
        if self.latest or not version or gen != self.meta.get("generation"):
            return table
        try:
            table.checkout(int(version))
        except ValueError:  # "Version N no longer exists": pruned after a newer commit
            if (newer := _read_meta(self.db)).get(f"{kind}_version") == version:
                raise
            self.meta = newer
            return self._table(kind, None)
        return table

    def newer_commit(self) -> bool:
        return _read_meta(self.db).get("last_indexed") != self.meta.get("last_indexed")

    def files_done(self, gen: str) -> int:
        if f"files_{gen}" not in self.table_names():
            return 0
        return self._table("files", gen).count_rows("status = 'indexed'")

    def file_records(self, gen: str) -> dict[str, FileRecord]:
        if f"files_{gen}" not in self.table_names():
            return {}
        rows = self._table("files", gen).search().limit(None).to_arrow().to_pylist()
        return {r["path"]: FileRecord(**r) for r in rows}

    def table_names(self) -> set[str]:
        return set(self.db.list_tables().tables)

    def size_on_disk(self) -> int:
        """Bytes in the index folder; on a remote store, the committed tables' data."""
        if (folder := self.location.folder) is None:
            gens = {self.meta.get("generation"), self.meta.get("building")} - {None}
            names = self.table_names()
            return sum(
                _stats(self._table(kind, gen))["total_bytes"]
                for gen in gens
                for kind in ("chunks", "files")
                if f"{kind}_{gen}" in names
            )
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    # --- writing -------------------------------------------------------------------------

    def _create_tables(self, gen: str, dims: int) -> None:
        names = self.table_names()
        if f"chunks_{gen}" not in names:
            self.db.create_table(f"chunks_{gen}", schema=chunks_schema(dims))
        if f"files_{gen}" not in names:
            self.db.create_table(f"files_{gen}", schema=FILES_SCHEMA)

    def write(
        self,
        gen: str,
        records: list[FileRecord],
        chunks: pa.Table | None,
        replaced: list[str],
        deleted: list[str],
    ) -> None:
        # Chunks first, then the ``files`` rows that commit them: killed in between, the
        # file still looks changed and is done again (its rows deleted first).
        chunks_table, files_table = self._table("chunks", gen), self._table("files", gen)
        faults.point("write.chunks")
        if replaced or deleted:
            chunks_table.delete(sql_in("path", replaced + deleted))
        if chunks is not None and chunks.num_rows:
            chunks_table.add(chunks)
        faults.point("write.files")
        if deleted:
            files_table.delete(sql_in("path", deleted))
        if records:
            data = pa.Table.from_pylist([asdict(r) for r in records], schema=FILES_SCHEMA)
            (
                files_table.merge_insert("path")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data)
            )

    def finish(
        self,
        gen: str,
        model: ModelRecord,
        chunk_tokens: int | None = None,
        file_rules: str | None = None,
    ) -> None:
        """Also keeps the full-text and vector indexes current, and compacts."""
        from lancedb.index import FTS

        chunks = self._table("chunks", gen)
        rows = chunks.count_rows()
        dims = model.dims
        meta = self.committed_meta(gen, model, chunk_tokens, file_rules)
        if meta.get("generation") != self.meta.get("generation"):
            meta.pop("fts", None)
            meta.pop("ann_rows", None)
            meta.pop("ann_nprobes", None)
        if rows and meta.get("fts") != "1":
            chunks.create_index("fts", config=FTS(stem=True, remove_stop_words=True), replace=True)
            meta["fts"] = "1"
        ann_rows = int(meta.get("ann_rows", 0))
        if needs_ann(rows, dims) and (not ann_rows or rows >= 2 * ann_rows):
            from lancedb.index import IvfFlat

            partitions = max(16, rows // ANN_ROWS_PER_PARTITION)
            chunks.create_index(
                "vector",
                replace=True,
                config=IvfFlat(distance_type="cosine", num_partitions=partitions),
            )
            meta["ann_rows"] = str(rows)
            meta["ann_nprobes"] = str(max(ANN_MIN_PROBES, partitions // ANN_PROBE_SHARE))
        self.compact(force=True)  # the commit pins compacted versions; pruned after it
        faults.point("finish.meta")
        self._write_meta(self._pinned(meta))  # the commit: from here on `gen` is the index
        self.drop_unused()
        self.compact(force=True)
        if self.uncommitted():  # the compaction's own versions, with the same rows
            self._write_meta(self._pinned(dict(self.meta)))

    def _pinned(self, meta: dict[str, str]) -> dict[str, str]:
        """``meta`` naming the newest versions of its generation's tables."""
        for kind in ("chunks", "files"):
            meta[f"{kind}_version"] = str(self._table(kind, meta["generation"]).version)
        return meta

    def uncommitted(self) -> bool:
        """Batches were written after the last commit (by a run that failed or was
        cancelled): the next run commits them even if it has nothing else to do."""
        gen = self.meta.get("generation")
        return gen is not None and any(
            self.meta.get(f"{kind}_version")
            not in (None, str(self.db.open_table(f"{kind}_{gen}").version))
            for kind in ("chunks", "files")
        )

    def drop_unused(self) -> None:
        """Drop the tables of older generations. One a crash left half-deleted is removed
        from disk directly: nothing reads it any more."""
        keep = {"meta"} | {
            f"{kind}_{self.meta[key]}"
            for kind in ("chunks", "files")
            for key in ("generation", "building")
            if key in self.meta
        }
        for name in self.table_names() - keep:
            faults.point("finish.drop")
            _drop(self.db, self.location, name)

    def compact(self, force: bool = False) -> None:
        """Merge small fragments, fold new rows into the indexes, drop old versions: those
        older than the committed one, which readers use (:meth:`_prune_age`)."""
        for name in self.table_names():
            faults.point("compact")
            table = self.db.open_table(name)
            crowded = (
                _stats(table)["fragment_stats"]["num_fragments"] > MAX_FRAGMENTS
                or len(table.list_versions()) > MAX_VERSIONS
            )
            if force or crowded:
                with warnings.catch_warnings():
                    # LanceDB warns that readers of old versions would fail. The writer
                    # lock makes this the only writer, readers read committed versions,
                    # and they retry on the newest meta (ProjectStore.open,
                    # Searcher.search) when one was pruned after a newer commit.
                    warnings.filterwarnings("ignore", "optimize.cleanup_older_than", UserWarning)
                    table.optimize(cleanup_older_than=self._prune_age(name, table))

    def _prune_age(self, name: str, table: Table) -> timedelta:
        """How old a version of ``table`` must be to be pruned. LanceDB keeps the newest
        version and those younger than the age given; the committed one may be neither
        (batches written since, a compaction's own versions), so the age is taken from
        when it was made. Old versions stay :attr:`Location.keep` longer."""
        keep = self.location.keep
        gen = self.meta.get("generation")
        kind = name.split("_")[0]
        version = self.meta.get(f"{kind}_version") if name == f"{kind}_{gen}" else None
        made = [v["timestamp"] for v in table.list_versions() if str(v["version"]) == version]
        if not made:
            return keep
        # LanceDB's timestamps are naive local time; it measures the age a moment later.
        return keep + max(timedelta(0), datetime.now() - made[0]) + PRUNE_MARGIN

    def _write_meta(self, meta: dict[str, str]) -> None:
        """Replace the meta rows in one commit (one new version of the table, never a
        moment without it)."""
        self.db.open_table("meta").add(_meta_rows(meta), mode="overwrite")
        self.meta = meta


def _read_every_row(table: Table, columns: list[str]) -> None:
    """Raise unless every row of ``columns`` reads back, every vector as it was stored."""
    readable = 0
    for batch in table.search().select(columns).limit(None).to_batches():
        readable += batch.num_rows
        if "vector" in columns:
            vectors = batch.column("vector")
            matrix = (
                vectors.flatten().to_numpy(zero_copy_only=False).reshape(-1, vectors.type.list_size)
            )
            if bad := damage.corrupt_vectors(matrix):
                raise ValueError(f"{bad} stored vectors are corrupt")
    if readable != (total := table.count_rows()):
        raise RuntimeError(f"{table.name} has {readable} readable rows of {total}")


def _stats(table: Table) -> dict[str, Any]:
    """``table.stats()``: a dict, although LanceDB declares its TableStatistics class."""
    return cast("dict[str, Any]", table.stats())


def _drop(db: DBConnection, location: Location, name: str) -> None:
    """Drop a table; one damaged beyond LanceDB's own drop is removed from disk directly
    (a remote one stays, to be reported)."""
    try:
        db.drop_table(name)
    except Exception:
        if location.folder is None:
            raise
        shutil.rmtree(location.folder / f"{name}.lance", ignore_errors=True)


def _meta_rows(meta: dict[str, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"key": k, "value": v} for k, v in meta.items()], schema=META_SCHEMA
    )


def _read_meta(db: DBConnection) -> dict[str, str]:
    rows = db.open_table("meta").search().limit(None).to_arrow().to_pylist()
    return {r["key"]: r["value"] for r in rows}
