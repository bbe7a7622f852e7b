"""What every storage backend shares: the index's records and errors, its meta, and the
opening rules (damage retried and noted, unfinished first builds, rebuilds).

An index holds, per *generation* (a model and chunk limit), the chunks of the project's
files and one row per file; ``meta`` says which generation is committed (``generation``)
and which is being built (``building``), so an interrupted build, even the very first, is
a state of its own: "not finished", resumed by the next run. Readers see commits only: a
writer's batches (an index run, a watcher's round) become visible all at once, when
:meth:`ProjectStore.finish` commits them.

A backend implements the abstract methods of :class:`ProjectStore` and :class:`Chunks`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from app import paths
from app.core import damage
from app.core.errors import CodeLampError
from app.core.location import Location

if TYPE_CHECKING:
    import numpy as np

    from app.core.embedder import Embedder
    from app.core.remote import RemoteEmbedder

OPEN_ATTEMPTS = 3
# What a ranked result needs of a chunk (app.core.search): a hit on one part of a split
# function is that function, so the whole definition's lines.
RESULT_COLUMNS = ["path", "def_start", "def_end", "language", "symbol"]
SCHEMA_VERSION = 3  # 2: def_start/def_end; 3: new chunk boundaries, symbol-weighted full text


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


@dataclass
class ModelRecord:
    """What an index records of the model that built it."""

    model_id: str
    name: str
    dims: int
    path: Path | str  # the GGUF file, "" when only a server had it
    probe: np.ndarray | Sequence[float]

    @classmethod
    def of(cls, embedder: Embedder | RemoteEmbedder) -> ModelRecord:
        """The record of a local or remote embedder (app.core.embedder, app.core.remote)."""
        return cls(
            embedder.model_id, embedder.name, embedder.dim, embedder.model_path, embedder.probe()
        )


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


def chunks_schema(dims: int) -> pa.Schema:
    """The chunks a batch writes (:meth:`ProjectStore.write`), whatever the backend."""
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


def generation(model_id: str, chunk_tokens: int | None = None) -> str:
    """Tables are per model and chunk limit: changing either re-chunks or re-embeds every
    file. ``None`` is the model's own limit (the name indexes had before it was a choice)."""
    key = model_id if chunk_tokens is None else f"{model_id}|chunk_tokens={chunk_tokens}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def index_command(root: Path | str, location: Location | None = None) -> str:
    """The command that builds or updates this index, for messages."""
    if location is not None and location.shared:
        return f"codelamp index {root} --store {location.uri}"
    return f"codelamp index {root}"


def probe_json(probe: np.ndarray | Sequence[float]) -> str:
    return json.dumps([round(float(x), 6) for x in probe])


@dataclass
class Filter:
    """Language and path restrictions, each a list of values taken from the index (never
    what the user typed); None: no restriction."""

    languages: list[str] | None = None
    paths: list[str] | None = None


class Chunks(ABC):
    """The committed chunks of an index, as a searcher reads them. Rows have ids that
    :meth:`take` accepts; :meth:`scan` gives them as ``_rowid``, in stored order."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def scan(self, columns: list[str], paths: list[str] | None = None) -> pa.Table:
        """``columns`` (and ``_rowid``) of every chunk, or of the chunks of ``paths``."""

    @abstractmethod
    def take(self, row_ids: list[int], columns: list[str]) -> pa.Table:
        """``columns`` (and ``_rowid``) of the rows named; any that are gone are left out."""

    @abstractmethod
    def full_text(self, terms: str, n: int, where: Filter) -> pa.Table:
        """The ``n`` best chunks by BM25 for ``terms`` (plain words), with ``_rowid``,
        ``_score`` and :data:`RESULT_COLUMNS`; the best first, ties by row id."""

    def nearest(self, vector: np.ndarray, n: int, where: Filter) -> pa.Table | None:
        """The ``n`` nearest chunks by an approximate index, with ``_rowid``,
        ``_distance`` (cosine) and :data:`RESULT_COLUMNS`; None when there is no such
        index and search is exact."""
        return None


class ProjectStore(ABC):
    """The index of one project folder. One writer at a time; any number of readers.

    :meth:`open` and :meth:`open_for_writing` pick the backend (app.core.storage)."""

    backend: ClassVar[str]

    def __init__(
        self, root: Path, meta: dict[str, str], location: Location, latest: bool = False
    ) -> None:
        self.root, self.meta = root, meta
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
        what the writer has written, not only what it committed (the writer).

        A writer in another thread or process may compact away the files of the version
        being read, which looks like damage for a moment: only damage that persists over
        a few tries is reported, and noted for the opens that check less.
        """
        from app.core.storage import backend_of

        if location is None:
            if root is None:
                raise ValueError("open needs a root or a location")
            location = Location.of_project(root)
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            store = None
            try:
                with damage.native_stderr_held():
                    store = backend_of(location, root)._open(root, location, latest)
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

    @staticmethod
    @abstractmethod
    def exists(location: Location) -> bool:
        """This backend has an index at ``location`` (a remote one: maybe, ask it)."""

    @classmethod
    @abstractmethod
    def _open(cls, root: Path | None, location: Location, latest: bool) -> ProjectStore:
        """The existing index at ``location``: NotIndexed when there is none."""

    def _checked(self) -> ProjectStore:
        """This store, once its schema and the damage noted for it say it can be read."""
        if self.meta.get("schema_version") != str(SCHEMA_VERSION):
            found = self.meta.get("schema_version")
            raise IndexDamaged(
                self.root, f"made by a different CodeLamp version (schema {found})", self.location
            )
        if (detail := damage.noted(self.location.notes, self._damage_id())) is not None:
            raise IndexDamaged(self.root, detail, self.location)
        return self

    def reopen(self) -> ProjectStore:
        """The same index as it is now committed."""
        return ProjectStore.open(self.root, location=self.location, latest=self.latest)

    @classmethod
    @abstractmethod
    def create(cls, root: Path, location: Location, meta: dict[str, str]) -> ProjectStore:
        """A new, empty index at ``location`` holding ``meta``."""

    @classmethod
    @abstractmethod
    def wipe(cls, location: Location) -> None:
        """Delete the index at ``location`` (a damaged one): the app's own folder for it,
        or what this backend keeps in a named store (never the folder the user named,
        which may hold more)."""

    @staticmethod
    def new_meta(root: Path) -> dict[str, str]:
        return {
            "schema_version": str(SCHEMA_VERSION),
            "root": str(root),
            "created": str(time.time()),
        }

    @abstractmethod
    def verify(self, thorough: bool = False) -> None:
        """Check that the index can be read. ``thorough`` (indexing, `codelamp status`)
        reads every row and checks every vector: damage inside a data file shows up
        there rather than in the middle of a search; too slow for every search."""

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
        if self.location.shared:
            return f"{created}@{self.meta.get('last_indexed')}"
        return created

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

    def probe_for(self, model_id: str) -> list[float] | None:
        """The probe vector (app.core.embedder.PROBE_TEXT) recorded for ``model_id``, by
        the committed index or the one being built; None if none was."""
        for prefix in ("", "building_"):
            if self.meta.get(f"{prefix}model_id") == model_id and f"{prefix}probe" in self.meta:
                return json.loads(self.meta[f"{prefix}probe"])
        return None

    @abstractmethod
    def chunks(self, gen: str | None = None) -> Chunks:
        """The chunks of generation ``gen`` (default: the committed one)."""

    @abstractmethod
    def file_records(self, gen: str) -> dict[str, FileRecord]: ...

    @abstractmethod
    def indexed_paths(self) -> list[str]:
        """The committed files that were indexed (not skipped)."""

    @abstractmethod
    def files_done(self, gen: str) -> int:
        """Files committed to generation ``gen`` so far."""

    @abstractmethod
    def newer_commit(self) -> bool:
        """Another commit has been made since this store was opened."""

    @abstractmethod
    def size_on_disk(self) -> int: ...

    @property
    def has_ann(self) -> bool:
        """Vector search goes through an approximate index (:meth:`Chunks.nearest`)."""
        return False

    # --- writing -------------------------------------------------------------------------

    def prepare(
        self,
        model_id: str,
        dims: int,
        chunk_tokens: int | None = None,
        probe: Callable[[], np.ndarray | Sequence[float]] | None = None,
    ) -> str:
        """Tables for ``model_id`` and the chunk limit: the active ones, or a fresh (or
        resumed) pair. A fresh pair records ``probe()``, the model's probe vector."""
        gen = generation(model_id, chunk_tokens)
        if gen != self.meta.get("generation") and self.meta.get("building") != gen:
            # Recorded first: a build interrupted from here on is "not finished".
            extra = {"building_probe": probe_json(probe())} if probe else {}
            self._write_meta(
                dict(
                    self.meta,
                    building=gen,
                    building_model_id=model_id,
                    building_dims=str(dims),
                    **extra,
                )
            )
        self._create_tables(gen, dims)
        return gen

    @abstractmethod
    def _create_tables(self, gen: str, dims: int) -> None:
        """Make the tables of generation ``gen``, unless they are there."""

    @abstractmethod
    def write(
        self,
        gen: str,
        records: list[FileRecord],
        chunks: pa.Table | None,
        replaced: list[str],
        deleted: list[str],
    ) -> None:
        """Apply one batch: the chunks of ``replaced`` and ``deleted`` files go, the new
        ``chunks`` (:func:`chunks_schema`) come, then the ``files`` rows that commit them.
        Readers see none of it before :meth:`finish`."""

    @abstractmethod
    def finish(
        self,
        gen: str,
        model: ModelRecord,
        chunk_tokens: int | None = None,
        file_rules: str | None = None,
    ) -> None:
        """After a complete run: make ``gen`` active and visible, drop older generations.
        ``file_rules``: the version of the rules every file was last judged by (None:
        unchanged, a partial run)."""

    def committed_meta(
        self, gen: str, model: ModelRecord, chunk_tokens: int | None, file_rules: str | None
    ) -> dict[str, str]:
        """The meta that :meth:`finish` commits."""
        meta = dict(
            self.meta,
            model_id=model.model_id,
            dims=str(model.dims),
            generation=gen,
            model_path=str(model.path),
            model_name=model.name,
            probe=probe_json(model.probe),
            last_indexed=str(time.time()),
            root=str(self.root),  # a shared index may be built from another checkout
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
        return meta

    @abstractmethod
    def uncommitted(self) -> bool:
        """Batches were written after the last commit (by a run that failed or was
        cancelled): the next run commits them even if it has nothing else to do."""

    @abstractmethod
    def compact(self, force: bool = False) -> None:
        """Tidy up what batches left (after a run, or one that committed nothing new)."""

    @abstractmethod
    def _write_meta(self, meta: dict[str, str]) -> None:
        """Replace the meta in one commit."""


@contextmanager
def unreadable_is_damage(root: Path | str, location: Location) -> Iterator[None]:
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
        raise IndexDamaged(Path(root), damage.lance_detail(exc), location) from exc


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


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def files_phrase(n: int) -> str:
    """ "1 file", "2 files" (for messages)."""
    return f"{n} file" if n == 1 else f"{n} files"
