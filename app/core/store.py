"""One LanceDB database per project: its chunks, its files, and what built them.

Layout: ``<data>/projects/<hash of the absolute root>/index.lance/`` with tables

* ``meta``: schema version, project root, active model id and dims, last indexed;
* ``chunks_<gen>``: vector, text, identifier-split text for BM25, path, lines (of the piece
  and of the whole definition it belongs to), language, symbol, content hash;
* ``files_<gen>``: path, size, mtime, sha256, status or skip reason, chunk count.

``<gen>`` is derived from the model id and chunk limit. A new model writes a fresh pair
of tables, so vectors of different models or dims never mix, and the old index keeps
answering until the new one is complete. ``meta`` names the committed generation
(``generation``) and the one being built (``building``), so an interrupted build, even
the very first, is a state of its own: "not finished", resumed by the next run.

Crash safety without transactions: a batch first replaces the chunks of its files, then
upserts their ``files`` rows. The ``files`` row is the commit record: if the process dies
in between, the file still looks changed on the next run and is simply done again
(deleting whatever rows it has first, so there are never duplicates).

Every write is batched (a few versions per batch, not per file) and :meth:`finish`
compacts and prunes old versions, because per-file writes leave thousands of versions.

Readers see commits only: :meth:`finish` records the versions of the tables it commits
in ``meta`` (``chunks_version``, ``files_version``), and a store opened for reading checks
out exactly those, so a writer's batches (an index run, a watcher's round) become visible
all at once, at its commit. The writer reads the newest versions (``latest``). Pruning
keeps the committed versions; a reader whose version was pruned after a newer commit
opens the newest meta and asks again.

The index can live elsewhere than the data folder (app/core/location.py): in a folder or
on S3 that the user names, where it is shared. Its meta records the root it was built from,
so a reader needs no source tree.

A damaged index (see app/core/damage.py) is reported as :class:`IndexDamaged`, and
:meth:`ProjectStore.open_for_writing` rebuilds it: it only holds derived data.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from app import paths
from app.core import damage, faults
from app.core.errors import CodeLampError
from app.core.lexical import fts_query
from app.core.location import Location

OPEN_ATTEMPTS = 3
SCHEMA_VERSION = 3  # 2: def_start/def_end; 3: new chunk boundaries, symbol-weighted full text
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
PRUNE_MARGIN = timedelta(seconds=1)  # see ProjectStore._prune_age


class IndexDamaged(CodeLampError):
    def __init__(self, root: Path, detail: str, location: Location | None = None) -> None:
        if location is not None and location.shared:
            super().__init__(
                f"The index at {location.uri} is damaged ({detail}). Rebuild it "
                f"with `{index_command(root, location)}`."
            )
        else:
            super().__init__(
                f"The index for {root} is damaged ({detail}). Rebuild it with "
                f"`codelamp index {root}`, or delete it with `codelamp forget {root}`."
            )
        self.detail = detail


class NotIndexed(CodeLampError):
    pass


class NotFinished(NotIndexed):
    """The first index of a project was interrupted before it committed."""


@dataclass
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str  # "indexed" | "skipped"
    reason: str
    chunks: int
    indexed_at: float


FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("sha256", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("chunks", pa.int32()),
        ("indexed_at", pa.float64()),
    ]
)
META_SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])


def chunks_schema(dims: int) -> pa.Schema:
    return pa.schema(
        [
            ("vector", pa.list_(pa.float32(), dims)),
            ("path", pa.string()),
            ("start_line", pa.int32()),
            ("end_line", pa.int32()),
            # The whole definition a piece belongs to (a split function's parts share it).
            ("def_start", pa.int32()),
            ("def_end", pa.int32()),
            ("language", pa.string()),
            ("symbol", pa.string()),
            ("text", pa.string()),
            ("fts", pa.string()),
            ("content_hash", pa.string()),
        ]
    )


def needs_ann(rows: int, dims: int) -> bool:
    return rows * dims * 4 > EXACT_SEARCH_BYTES


def project_key(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:16]


def project_dir(root: Path) -> Path:
    return paths.data_dir() / "projects" / project_key(root)


def index_command(root: Path | str, location: Location | None = None) -> str:
    """The command that builds or updates this index, for messages."""
    shared = location is not None and location.shared
    return f"codelamp index {root}" + (f" --store {location.uri}" if shared else "")


def generation(model_id: str, chunk_tokens: int | None = None) -> str:
    """Tables are per model and chunk limit: changing either re-chunks or re-embeds every
    file. ``None`` is the model's own limit (the name indexes had before it was a choice)."""
    key = model_id if chunk_tokens is None else f"{model_id}|chunk_tokens={chunk_tokens}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def sql_in(column: str, values: list[str]) -> str:
    quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


@contextmanager
def _unreadable_is_damage(root: Path, location: Location) -> Iterator[None]:
    """Any failure to read the index means damage, a Rust panic included; except a remote
    store that cannot be reached or refuses this machine."""
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, CodeLampError) or not (
            isinstance(exc, Exception) or damage.is_panic(exc)
        ):
            raise  # ours (not indexed), Ctrl+C, exit
        if (problem := location.unavailable(exc)) is not None:
            raise problem from exc
        raise IndexDamaged(root, damage.lance_detail(exc), location) from exc


class ProjectStore:
    """The index of one project folder. One writer at a time; any number of readers."""

    def __init__(
        self, root: Path, db, meta: dict[str, str], location: Location, latest: bool = False
    ) -> None:
        self.root, self.db, self.meta = root, db, meta
        self.location, self.latest = location, latest

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        root: Path | None,
        unfinished: bool = False,
        thorough: bool = False,
        location: Location | None = None,
        latest: bool = False,
    ) -> ProjectStore:
        """Open an existing index for reading; verifies it is intact (``thorough``: see
        :meth:`verify`). A first index that has not committed raises NotFinished, unless
        ``unfinished`` (status, resuming).

        ``location``: a named store (default: the app's own index of ``root``); there
        ``root`` may be None, for the root the index was built from. ``latest``: read
        the newest versions of the tables, not the committed ones (the writer).

        A writer in another thread or process may compact away the files of the version
        being read, which looks like damage for a moment: only damage that persists over
        a few tries is reported, and noted for the opens that check less.
        """
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            store = None
            try:
                with damage.native_stderr_held():
                    store = cls._open(root, location or Location.of_project(root), latest)
                    store.verify(thorough)
            except IndexDamaged as exc:
                if attempt == OPEN_ATTEMPTS:
                    if store is not None:
                        store.damage_found(exc.detail)
                    raise
                time.sleep(0.1 * attempt)
                continue
            if "generation" not in store.meta and not unfinished:
                raise not_finished(store.root, store)
            return store
        raise AssertionError("unreachable")

    @classmethod
    def _open(cls, root: Path | None, location: Location, latest: bool) -> ProjectStore:
        where = root or location.uri
        if location.folder is not None and not (location.folder / "meta.lance").is_dir():
            raise not_indexed(where, location)
        with _unreadable_is_damage(where, location):
            db = location.connect()
            if location.remote and "meta" not in set(db.list_tables().tables):
                raise not_indexed(where, location)
            meta = _read_meta(db)
        root = root or Path(meta.get("root", location.uri))
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            found = meta.get("schema_version")
            raise IndexDamaged(
                root, f"made by a different CodeLamp version (schema {found})", location
            )
        store = cls(root, db, meta, location, latest)
        if (detail := damage.noted(location.notes, store._damage_id())) is not None:
            raise IndexDamaged(root, detail, location)
        return store

    def reopen(self) -> ProjectStore:
        """The same index as it is now committed."""
        return ProjectStore.open(self.root, location=self.location, latest=self.latest)

    @classmethod
    def open_for_writing(
        cls,
        root: Path,
        thorough: bool = True,
        location: Location | None = None,
    ) -> tuple[ProjectStore, str | None]:
        """Open or create the index (in ``location``, default the app's own). A damaged
        or outdated one is rebuilt from scratch (it only holds derived data, and the
        embedding cache makes that cheap); the second value says why, for the user.
        ``thorough``: see :meth:`verify`."""
        location = location or Location.of_project(root)
        rebuilt = None
        try:
            store = cls.open(
                root, unfinished=True, thorough=thorough, location=location, latest=True
            )
        except NotIndexed:
            pass
        except IndexDamaged as exc:
            rebuilt = f"The index for {root} was damaged ({exc.detail})"
            _wipe(location)
        else:
            return store, None
        if location.folder is not None:
            paths.ensure(location.folder)
        db = location.connect()
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "root": str(root),
            "created": str(time.time()),
        }
        # A wiped shared store may keep a "meta" it could not drop. (Overwriting a table that
        # is not there makes Lance log a warning to the terminal.)
        leftover = "meta" in db.list_tables().tables
        db.create_table("meta", _meta_rows(meta), mode="overwrite" if leftover else "create")
        return cls(root, db, meta, location, latest=True), rebuilt

    def verify(self, thorough: bool = False) -> None:
        """Read one small column of every table: that opens every data file, so a
        truncated or missing file shows up now rather than in the middle of a search.
        Then look up the words of a stored path, which reads their posting lists in the
        full-text index (a word it lacks would read nothing).

        ``thorough`` (indexing, `codelamp status`) reads every column and checks every
        vector: garbage inside a data file shows up there, not in the middle of a search
        or of the compaction after an index run. That takes about 0.3 s at 100k chunks
        of 384 dims (warm disk cache), against 0.03 s without: too slow for every search."""
        gen = self.meta.get("generation") or self.meta.get("building")
        if not gen:
            return
        with _unreadable_is_damage(self.root, self.location):
            names = self.table_names()
            for kind, column in (("chunks", "start_line"), ("files", "size")):
                if not self.finished and f"{kind}_{gen}" not in names:
                    continue  # a first build killed before it made its tables
                table = self.db.open_table(f"{kind}_{gen}")
                _read_every_row(table, table.schema.names if thorough else [column])
            if self.meta.get("fts") == "1":
                chunks = self.chunks_table(gen)
                path = chunks.search().select(["path"]).limit(1).to_arrow().column("path")
                if words := fts_query(" ".join(path.to_pylist())):
                    chunks.search(words, query_type="fts", fts_columns="fts").limit(1).to_arrow()

    def damage_found(self, detail: str) -> IndexDamaged:
        """Note damage found in this index (by a search, or by a check that most opens
        skip), so that every later open reports it and the next index rebuilds instead
        of trusting checks that pass; returns the error to raise."""
        damage.note(self.location.notes, self._damage_id(), detail)
        return IndexDamaged(self.root, detail, self.location)

    def _damage_id(self) -> str | None:
        """What a damage note is about: the index (its creation). A named store's note
        is this machine's, which its writer never sees: it holds until the next commit."""
        created = self.meta.get("created")
        return f"{created}@{self.meta.get('last_indexed')}" if self.location.shared else created

    # --- reading -------------------------------------------------------------------------

    @property
    def model_id(self) -> str | None:
        return self.meta.get("model_id")

    @property
    def finished(self) -> bool:
        """A complete index has been committed (it may be updating to a newer one)."""
        return "generation" in self.meta

    @property
    def dims(self) -> int | None:
        return int(self.meta["dims"]) if "dims" in self.meta else None

    @property
    def chunk_tokens(self) -> int | None:
        """The chunk limit the index was built with; None: the model's own."""
        return int(self.meta["chunk_tokens"]) if "chunk_tokens" in self.meta else None

    def chunks_table(self, gen: str | None = None):
        return self._table("chunks", gen)

    def files_table(self, gen: str | None = None):
        return self._table("files", gen)

    def _table(self, kind: str, gen: str | None):
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
        """Another commit has been made since this store was opened."""
        return _read_meta(self.db).get("last_indexed") != self.meta.get("last_indexed")

    def files_done(self, gen: str) -> int:
        """Files committed to generation ``gen`` so far."""
        if f"files_{gen}" not in self.table_names():
            return 0
        return self.files_table(gen).count_rows("status = 'indexed'")

    def file_records(self, gen: str) -> dict[str, FileRecord]:
        if f"files_{gen}" not in self.table_names():
            return {}
        rows = self.files_table(gen).search().limit(None).to_arrow().to_pylist()
        return {r["path"]: FileRecord(**r) for r in rows}

    def table_names(self) -> set[str]:
        return set(self.db.list_tables().tables)

    def size_on_disk(self) -> int:
        """Bytes in the index folder; on a remote store, the committed tables' data."""
        if (folder := self.location.folder) is None:
            gens = {self.meta.get("generation"), self.meta.get("building")} - {None}
            names = self.table_names()
            return sum(
                self._table(kind, gen).stats()["total_bytes"]
                for gen in gens
                for kind in ("chunks", "files")
                if f"{kind}_{gen}" in names
            )
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    # --- writing -------------------------------------------------------------------------

    def probe_for(self, model_id: str) -> list[float] | None:
        """The probe vector (app.core.embedder.PROBE_TEXT) recorded for ``model_id``, by
        the committed index or the one being built; None if none was."""
        for prefix in ("", "building_"):
            if self.meta.get(f"{prefix}model_id") == model_id and f"{prefix}probe" in self.meta:
                return json.loads(self.meta[f"{prefix}probe"])
        return None

    def prepare(
        self,
        model_id: str,
        dims: int,
        chunk_tokens: int | None = None,
        probe: Callable[[], Sequence[float]] | None = None,
    ) -> str:
        """Tables for ``model_id`` and the chunk limit: the active ones, or a fresh (or
        resumed) pair. A fresh pair records ``probe()``, the model's probe vector."""
        gen = generation(model_id, chunk_tokens)
        names = self.table_names()
        if gen != self.meta.get("generation") and self.meta.get("building") != gen:
            # Recorded first: a build interrupted from here on is "not finished".
            extra = {"building_probe": _probe_json(probe())} if probe else {}
            self._write_meta(
                dict(
                    self.meta,
                    building=gen,
                    building_model_id=model_id,
                    building_dims=str(dims),
                    **extra,
                )
            )
        if f"chunks_{gen}" not in names:
            self.db.create_table(f"chunks_{gen}", schema=chunks_schema(dims))
        if f"files_{gen}" not in names:
            self.db.create_table(f"files_{gen}", schema=FILES_SCHEMA)
        return gen

    def write(
        self,
        gen: str,
        records: list[FileRecord],
        chunks: pa.Table | None,
        replaced: list[str],
        deleted: list[str],
    ) -> None:
        """Apply one batch: chunks first, then the ``files`` rows that commit them."""
        chunks_table, files_table = self.chunks_table(gen), self.files_table(gen)
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
        """After a complete run: make ``gen`` active, drop older generations, keep the
        full-text and vector indexes current, and compact. ``file_rules``: the version of
        the rules every file was last judged by (None: unchanged, a partial run)."""
        from lancedb.index import FTS

        chunks = self.chunks_table(gen)
        rows = chunks.count_rows()
        dims = model.dims
        meta = dict(
            self.meta,
            model_id=model.model_id,
            dims=str(dims),
            generation=gen,
            model_path=str(model.path),
            model_name=model.name,
            probe=_probe_json(model.probe),
            last_indexed=str(time.time()),
        )
        for key in (
            "chunk_tokens",
            "building",
            "building_model_id",
            "building_dims",
            "building_probe",
        ):
            meta.pop(key, None)
        if file_rules is not None:
            meta["file_rules"] = file_rules
        if chunk_tokens is not None:
            meta["chunk_tokens"] = str(chunk_tokens)
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
        meta["root"] = str(self.root)  # a shared index may be built from another checkout
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
                table.stats()["fragment_stats"]["num_fragments"] > MAX_FRAGMENTS
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

    def _prune_age(self, name: str, table) -> timedelta:
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


@dataclass
class ModelRecord:
    """What an index records of the model that built it."""

    model_id: str
    name: str
    dims: int
    path: Path | str  # the GGUF file, "" when only a server had it
    probe: Sequence[float]

    @classmethod
    def of(cls, embedder) -> ModelRecord:
        """The record of a local or remote embedder (app.core.embedder, app.core.remote)."""
        return cls(
            embedder.model_id, embedder.name, embedder.dim, embedder.model_path, embedder.probe()
        )


def _probe_json(probe: Sequence[float]) -> str:
    return json.dumps([round(float(x), 6) for x in probe])


def _read_every_row(table, columns: list[str]) -> None:
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


def _wipe(location: Location) -> None:
    """Delete a damaged index: the app's own folder for it, or every table of a named
    store (never the folder the user named, which may hold more)."""
    if not location.shared:
        shutil.rmtree(location.notes, ignore_errors=True)
        return
    db = location.connect()
    for name in db.list_tables().tables:
        _drop(db, location, name)


def _drop(db, location: Location, name: str) -> None:
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


def not_finished(root: Path, store: ProjectStore) -> NotFinished:
    done = store.files_done(store.meta["building"]) if "building" in store.meta else 0
    return NotFinished(
        f"Indexing {root} has not finished ({files_phrase(done)} done so far). Run "
        f"`{index_command(root, store.location)}` to finish it; only what is missing gets "
        "embedded."
    )


def not_indexed(where: Path | str, location: Location) -> NotIndexed:
    if location.shared:
        return NotIndexed(
            f"There is no index at {location.uri} yet. Build it with "
            f"`codelamp index PATH --store {location.uri}`."
        )
    return NotIndexed(f"{where} is not indexed yet. Run `codelamp index {where}` first.")


_STORAGE_PROBLEMS = {  # errno -> (words LanceDB and SQLite use for it, what to say)
    errno.ENOSPC: (
        ("no space left", "disk is full", "database or disk is full"),
        "the disk is full",
    ),
    errno.EDQUOT: (("quota exceeded",), "the disk quota is used up"),
    errno.EROFS: (("read-only file system",), "the disk is read-only"),
    errno.EACCES: (("permission denied",), "CodeLamp may not write there"),
}


def storage_error(exc: BaseException) -> CodeLampError | None:
    """A full, read-only or forbidden data folder, however LanceDB, SQLite or Python
    reports it, as one message that says what to do; None for anything else."""
    for err in _causes(exc):
        text = str(err).lower()
        for code, (words, what) in _STORAGE_PROBLEMS.items():
            if getattr(err, "errno", None) == code or any(w in text for w in words):
                where = paths.data_dir()
                return CodeLampError(
                    f"Cannot write the index: {what} ({where}). Free some space or fix "
                    f"the folder, or set {paths.HOME_ENV} to another folder, then index "
                    "again; the index as it was before this run is kept and searchable."
                )
    return None


def _causes(exc: BaseException | None):
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def files_phrase(n: int) -> str:
    """ "1 file", "2 files" (for messages)."""
    return f"{n} file" if n == 1 else f"{n} files"


def _read_meta(db) -> dict[str, str]:
    rows = db.open_table("meta").search().limit(None).to_arrow().to_pylist()
    return {r["key"]: r["value"] for r in rows}


def project_status(
    root: Path | None, thorough: bool = True, location: Location | None = None
) -> dict:
    """What `codelamp status` and the app's project list show. Raises NotIndexed or
    IndexDamaged. ``thorough`` checks every vector (:meth:`ProjectStore.verify`).
    ``location``: a named store (``root`` None: the root it was built from).

    ``state`` is "ready" (a committed index), or "unfinished" (the first index was
    interrupted; the counts are what it committed so far). ``building`` is true while a
    newer index (another model or chunk limit) is being built or was interrupted."""
    store = ProjectStore.open(root, unfinished=True, thorough=thorough, location=location)
    gen = store.meta.get("generation") or store.meta.get("building")
    records = store.file_records(gen) if gen else {}
    skipped = sorted((r.path, r.reason) for r in records.values() if r.status == "skipped")
    last = float(store.meta.get("last_indexed", 0))
    model, dims = store.model_id, store.dims
    chunks = store.chunks_table(gen) if records else None
    languages = chunks.search().select(["language"]).limit(None).to_arrow() if chunks else None
    if not store.finished:
        model = store.meta.get("building_model_id")
        dims = int(store.meta["building_dims"]) if "building_dims" in store.meta else None
    return {
        "root": str(store.root),
        "store": store.location.uri if store.location.shared else None,
        "state": "ready" if store.finished else "unfinished",
        "building": "building" in store.meta,
        "files": sum(r.status == "indexed" for r in records.values()),
        "chunks": chunks.count_rows() if chunks else 0,
        "languages": sorted(pc.unique(languages.column("language")).to_pylist())
        if languages
        else [],
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
