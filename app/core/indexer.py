"""Index a project: discover -> diff -> read and chunk -> embed (cache) -> store.

Three threads keep the model busy: a reader reads, hashes and chunks changed files and
looks their chunks up in the embedding cache; the caller's thread embeds only what the
cache lacks; a writer batches rows into LanceDB. The model never waits on disk.

Incremental: a file whose size and mtime match its record is not even opened; one whose
content hash matches only gets its record refreshed; only new chunk texts are embedded.
Pause and cancel are cooperative. A cancelled run leaves every finished file committed
and every other file as it was, so the next run picks up where this one stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from app.core import faults
from app.core.cache import EmbeddingCache
from app.core.chunking import Piece, chunk_file, chunk_limit
from app.core.embedder import Embedder
from app.core.errors import CodeLampError
from app.core.files import (
    DEFAULT_MAX_FILE_BYTES,
    FILE_RULES_VERSION,
    FileEntry,
    FileRules,
    SkipFile,
    load_text,
)
from app.core.lexical import fts_text
from app.core.location import Location
from app.core.lock import writer_lock
from app.core.models import check_dims
from app.core.project import check_root
from app.core.remote import RemoteEmbedder
from app.core.search import definition_spans
from app.core.storage import (
    FileRecord,
    ModelRecord,
    NotFinished,
    ProjectStore,
    chunks_schema,
    generation,
    index_command,
    not_finished,
    open_for_writing,
    storage_error,
)

if TYPE_CHECKING:
    from app.core.cluster import Cluster
    from app.settings import Settings

# A batch is written when it holds this many chunks or files, or is this old.
BATCH_CHUNKS = 2000
BATCH_FILES = 500
BATCH_SECONDS = 10.0
_DONE = object()
# The ETA is the bytes left divided by the rate of about the last ETA_WINDOW_S seconds of
# work (not the average since the start, nor an exponential average): the window forgets.
# A burst of cached files or a slow start no longer counts half a minute later, while the
# rate still spans many embedding steps, so it does not follow each one. Bytes, because
# embedding costs about the same per byte in a big file as in small ones (tokens follow
# bytes); a count of files made one big file look like no progress at all.
ETA_WINDOW_S = 30.0
ETA_SETTLE_S = 2.0  # no ETA in the first seconds of work: too little to go on


@dataclass
class IndexProgress:
    """Where a run is; ``current`` is the file being embedded now (the lock's holder while
    "waiting"). Progress counts bytes of source: the files of this run that changed."""

    phase: str  # "waiting", "scanning", "indexing", "finishing", "done" or "cancelled"
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0  # the sizes of the files to (re)index in this run
    bytes_done: int = 0  # finished files, and the share of a file whose chunks have vectors
    chunks_embedded: int = 0
    chunks_cached: int = 0
    chunks_per_s: float = 0.0
    eta_s: float | None = None
    current: str = ""

    @property
    def fraction(self) -> float:
        """How much of the run is done, from 0 to 1."""
        if self.bytes_total:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.files_total:  # empty files only
            return self.files_done / self.files_total
        return 1.0 if self.phase in ("finishing", "done") else 0.0


class Eta:
    """Seconds left, from the rate of the last ``window_s`` seconds (see ETA_WINDOW_S).

    Times are of any clock that only runs while there is work: the indexer's leaves out
    the time spent paused, which would otherwise read as a rate near zero."""

    def __init__(
        self, now: float, window_s: float = ETA_WINDOW_S, settle_s: float = ETA_SETTLE_S
    ) -> None:
        self.started, self.window_s, self.settle_s = now, window_s, settle_s
        self.samples: deque[tuple[float, int]] = deque([(now, 0)])

    def update(self, now: float, done: int, total: int) -> float | None:
        """The time left once ``done`` of ``total`` bytes are done at ``now``; None until
        ``settle_s`` have passed, and while nothing moved in the window."""
        self.samples.append((now, done))
        # The oldest sample kept is the newest one at least window_s old.
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()
        then, done_then = self.samples[0]
        if now - self.started < self.settle_s or done <= done_then:
            return None
        return (total - done) * (now - then) / (done - done_then)


@dataclass(frozen=True)
class IndexOptions:
    """The user's rules for an index: the largest file read, ignore patterns on top of the
    project's own, and the chunk limit (0: the model's own; None: what the index has)."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    extra_ignores: tuple[str, ...] = ()
    chunk_tokens: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexOptions:
        """The app's settings, read the same way for an index and for a watcher."""
        return cls(
            settings.max_file_bytes, tuple(settings.ignore_patterns), settings.max_chunk_tokens
        )


@dataclass
class IndexResult:
    root: Path
    files_indexed: int = 0  # read and (re)chunked
    files_unchanged: int = 0
    files_deleted: int = 0
    files_skipped: int = 0
    chunks_embedded: int = 0
    chunks_cached: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    notice: str | None = None  # what happened to the index that the user should know
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """What the run did, in the words `codelamp index`, the window's status bar and
        the watchers' updates all use."""
        return (
            f"{self.files_indexed} files read, {self.files_unchanged} unchanged, "
            f"{self.files_deleted} removed, {self.files_skipped} skipped · "
            f"{self.chunks_embedded} chunks embedded, {self.chunks_cached} from cache · "
            f"{self.seconds:.1f} s"
        )


class IndexControl:
    """Pause, resume and cancel a running index from any thread."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_if_paused(self) -> None:
        self._running.wait()


@dataclass
class _FileWork:
    record: FileRecord
    pieces: list[Piece] | None  # None: content unchanged, keep the stored chunks
    hashes: list[str] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    new_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    chunks_done: int = 0  # chunks with a vector, cached or embedded

    @property
    def bytes_done(self) -> int:
        """The share of the file's bytes that its chunks with a vector stand for."""
        return self.record.size * self.chunks_done // len(self.hashes) if self.hashes else 0


def content_key(piece: Piece) -> str:
    """Cache key of a chunk: its embedded text minus the leading path.

    The path in the header helps the model, but keying on it would re-embed every chunk of
    a moved or renamed file. A moved chunk keeps the vector it got under its old path until
    its content changes; the full-text index always has the current path.
    """
    text = piece.embed_text.removeprefix(piece.chunk.path)
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def prepare_file(
    entry: FileEntry, old: FileRecord | None, limit: int, count_tokens: Callable[[str], int]
) -> _FileWork:
    """Everything about a changed file but its vectors: read, hash and chunk it into
    pieces of at most ``limit`` tokens. Unchanged content keeps its stored chunks."""
    faults.point("chunk")
    now = time.time()
    try:
        text = load_text(entry)
    except SkipFile as skip:
        record = FileRecord(
            entry.rel, entry.size, entry.mtime_ns, "", "skipped", skip.reason, 0, now
        )
        return _FileWork(record, [])
    sha = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    if old and old.status == "indexed" and old.sha256 == sha:
        record = FileRecord(
            entry.rel, entry.size, entry.mtime_ns, sha, "indexed", "", old.chunks, now
        )
        return _FileWork(record, None)
    pieces = chunk_file(entry.rel, text, limit, count_tokens)
    record = FileRecord(entry.rel, entry.size, entry.mtime_ns, sha, "indexed", "", len(pieces), now)
    return _FileWork(record, pieces, [content_key(p) for p in pieces])


def index_project(
    root: Path,
    embedder: Embedder | RemoteEmbedder,
    *,
    cache: EmbeddingCache | None = None,
    progress: Callable[[IndexProgress], None] | None = None,
    control: IndexControl | None = None,
    options: IndexOptions | None = None,
    only: Sequence[str] | None = None,
    catch_up_only: bool = False,
    location: Location | None = None,
    cluster: Cluster | None = None,
    storage: str | None = None,
) -> IndexResult:
    """Bring the index of ``root`` up to date with its files.

    ``only`` limits the work to these paths (relative to the root, as the file watcher
    reports them); a listed path that is gone or now ignored leaves the index. While another
    process writes this project's index, this waits for it (phase "waiting").

    ``options.chunk_tokens`` caps the size of a chunk: 0 is the model's own limit, ``None``
    keeps the limit the index was built with. A changed limit re-chunks every file; pieces
    that come out the same take their vectors from the cache.

    ``catch_up_only`` (the file watcher) only brings a committed index of this model up to
    date: it never starts or resumes a build the user did not ask for, and raises
    NotFinished instead.

    ``location``: where the index is (default: the app's own index of ``root``).
    ``storage``: the backend to keep it in, "lancedb" or "lite" (app.core.storage); an
    index in the other one is rebuilt. None: the one it has, or for a new index the
    preferred one.

    ``cluster`` (:mod:`app.core.cluster`) reads, chunks and embeds the changed files on a
    Ray cluster instead of in this process; everything else stays here.

    A full or read-only disk, or a store that cannot be reached, raises a CodeLampError
    that says so; what was committed before stays as it was, searchable.
    """
    root = check_root(root)
    location = location or Location.of_project(root)
    run = _Run(
        root,
        embedder,
        cache or EmbeddingCache(),
        progress or (lambda p: None),
        control or IndexControl(),
        catch_up_only,
        location,
        cluster,
        storage,
    )
    options = options or IndexOptions()
    rules = FileRules(root, options.max_file_bytes, options.extra_ignores)
    try:
        with writer_lock(
            root,
            cancelled=lambda: run.control.cancelled,
            on_wait=run.waiting,
            activity="updating" if catch_up_only else "indexing",
            key=location.key if location.shared else None,
        ) as locked:
            if not locked:
                run.result.cancelled = True
                return run.result
            return run.execute(rules, only, options.chunk_tokens)
    except CodeLampError:
        raise
    except Exception as exc:
        if (problem := location.unavailable(exc) or storage_error(exc)) is not None:
            raise problem from exc
        raise


def effective_chunk_tokens(
    requested: int | None, recorded: int | None, model_max: int
) -> int | None:
    """The chunk limit to index with (see :func:`index_project`); None: the model's own."""
    wanted = chunk_limit((recorded if requested is None else requested) or 0)
    return wanted if 0 < wanted < model_max else None


class _Run:
    def __init__(
        self,
        root: Path,
        embedder: Embedder | RemoteEmbedder,
        cache: EmbeddingCache,
        progress: Callable[[IndexProgress], None],
        control: IndexControl,
        catch_up_only: bool,
        location: Location,
        cluster: Cluster | None,
        storage: str | None,
    ) -> None:
        self.root, self.embedder, self.cache = root, embedder, cache
        self.location, self.cluster, self.storage = location, cluster, storage
        self.chunk_tokens: int | None = None  # set by execute; None: the model's own limit
        self.report, self.control = progress, control
        self.result = IndexResult(root)
        self.catch_up_only = catch_up_only
        self.abandoned = threading.Event()  # the embedding side has stopped
        self.state = IndexProgress("scanning")
        self.errors: list[BaseException] = []
        self.paused_s = 0.0  # time spent paused, left out of the rates
        self.started = self.clock()
        self.eta = Eta(self.started)

    def _report(self) -> None:
        """Tell the listener, with a copy: the GUI reads it on another thread, and a
        listener may keep it."""
        self.report(dataclasses.replace(self.state))

    def waiting(self, message: str) -> None:
        self.state = IndexProgress("waiting", current=message)
        self._report()

    def execute(
        self, rules: FileRules, only: Sequence[str] | None, chunk_tokens: int | None
    ) -> IndexResult:
        self.started = self.clock()  # not counting any wait for the lock
        self.state = IndexProgress("scanning")
        self._report()
        self.embedder.model_id  # noqa: B018 - a server that cannot be used fails before any write
        if self.catch_up_only:
            # A deleted or damaged index is not the watcher's to make. A catch-up follows a
            # run that checked the whole index; checking every vector again for each saved
            # file would cost more than embedding it.
            store = ProjectStore.open(
                self.root, unfinished=True, location=self.location, latest=True
            )
        else:
            store, self.result.notice = open_for_writing(
                self.root, thorough=True, location=self.location, storage=self.storage
            )
        embedder = self.embedder
        if store.dims is not None and store.model_id == embedder.model_id:
            check_dims(embedder.label, embedder.dim, store.dims, store.model_id, str(self.root))
        # A server must run the model this index was built with, before it embeds anything.
        embedder.expect(store.probe_for(embedder.model_id))
        self.chunk_tokens = effective_chunk_tokens(
            chunk_tokens, store.chunk_tokens, self.embedder.max_tokens
        )
        if self.catch_up_only and store.meta.get("generation") != generation(
            self.embedder.model_id, self.chunk_tokens
        ):
            raise (
                not_finished(self.root, store)
                if not store.finished
                else NotFinished(
                    f"The index of {self.root} was built with another model or chunk size; "
                    f"re-index it (`{index_command(self.root, self.location)}`) to use "
                    f"{self.embedder.model_id}."
                )
            )
        gen = store.prepare(
            embedder.model_id, embedder.dim, self.chunk_tokens, probe=embedder.probe
        )
        previous = store.file_records(gen)
        discovery = rules.walk() if only is None else rules.discover(only)
        self.result.skipped = [(s.rel, s.reason) for s in discovery.skipped]
        self.result.files_skipped = len(discovery.skipped)

        now = time.time()
        # Rules that now skip some unchanged files (a secret found by its content): read
        # every file once more. Unchanged content keeps its chunks; nothing is re-embedded.
        reread = store.finished and store.meta.get("file_rules") != FILE_RULES_VERSION
        changed: list[FileEntry] = []
        for entry in discovery.files:
            old = previous.get(entry.rel)
            if (
                not reread
                and old
                and old.status == "indexed"
                and (old.size, old.mtime_ns)
                == (
                    entry.size,
                    entry.mtime_ns,
                )
            ):
                self.result.files_unchanged += 1
            else:
                changed.append(entry)
        present = {e.rel for e in discovery.files} | {s.rel for s in discovery.skipped}
        candidates = set(previous) if only is None else set(only) & set(previous)
        deleted = sorted(candidates - present)
        newly_skipped = [
            FileRecord(s.rel, 0, 0, "", "skipped", s.reason, 0, now)
            for s in discovery.skipped
            if (previous.get(s.rel) is None or previous[s.rel].reason != s.reason)
        ]
        self.result.files_deleted = len(deleted)
        self.state = IndexProgress(
            "indexing", files_total=len(changed), bytes_total=sum(e.size for e in changed)
        )
        self.eta = Eta(self.clock())
        self._report()

        writer = _Writer(store, gen, embedder, self.cache)
        writer.start(deleted, newly_skipped)
        try:
            if changed and self.cluster is not None:
                self.cluster.index(self, changed, previous, writer)
            elif changed:
                self._index_here(changed, previous, writer)
        finally:
            writer.stop()  # commits every file finished so far, even after an error
            self.result.chunks_embedded = self.state.chunks_embedded
            self.result.chunks_cached = self.state.chunks_cached
        if self.errors:
            raise self.errors[0]
        if writer.error is not None:
            raise writer.error

        self.result.cancelled = self.control.cancelled
        active = store.meta.get("generation") == gen
        unchanged = active and not (changed or deleted or newly_skipped or store.uncommitted())
        if self.result.cancelled:
            store.compact()
        elif not unchanged:  # nothing to commit: no new versions, no compaction
            self.state.phase = "finishing"
            self._report()
            store.finish(
                gen,
                ModelRecord.of(embedder),
                self.chunk_tokens,
                file_rules=FILE_RULES_VERSION if only is None else None,
            )
        faults.point("prune")
        self.cache.prune()
        self.result.seconds = time.monotonic() - self.started
        self.state.phase = "cancelled" if self.result.cancelled else "done"
        self._report()
        return self.result

    @property
    def chunk_limit(self) -> int:
        return self.chunk_tokens or self.embedder.max_tokens

    def clock(self) -> float:
        """Seconds of work: the monotonic clock less the time spent paused."""
        return time.monotonic() - self.paused_s

    def wait_if_paused(self) -> None:
        """Block while the run is paused; that time is not work (see :meth:`clock`)."""
        began = time.monotonic()
        self.control.wait_if_paused()
        self.paused_s += time.monotonic() - began

    def _index_here(
        self, changed: list[FileEntry], previous: dict[str, FileRecord], writer: _Writer
    ) -> None:
        self.embedder.load()  # chunking counts tokens with the model's tokenizer
        work: queue.Queue = queue.Queue(maxsize=32)
        reader = threading.Thread(
            target=self._read, args=(changed, previous, work), name="codelamp-reader", daemon=True
        )
        reader.start()
        try:
            self._embed_all(work, writer)
        finally:
            self.abandoned.set()  # the reader stops too if embedding failed
            reader.join()

    def _read(
        self, entries: list[FileEntry], previous: dict[str, FileRecord], out: queue.Queue
    ) -> None:
        """Reader thread: everything about a file except embedding it."""
        try:
            for entry in entries:
                if self.control.cancelled:
                    break
                item = self._prepare(entry, previous.get(entry.rel))
                if not self._hand_over(out, item):
                    break
        except BaseException as exc:  # noqa: BLE001 - surfaced by the caller's thread
            self.errors.append(exc)
        finally:
            self._hand_over(out, _DONE)

    def _hand_over(self, out: queue.Queue, item: object) -> bool:
        """Queue ``item`` (a _FileWork, or _DONE) for the embedding side; False once that
        side has stopped."""
        while not self.abandoned.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _prepare(self, entry: FileEntry, old: FileRecord | None) -> _FileWork:
        item = prepare_file(entry, old, self.chunk_limit, self.embedder.count_tokens)
        self.look_up(item)
        return item

    def look_up(self, item: _FileWork) -> None:
        """Take what the embedding cache has for the chunks of ``item``."""
        if item.hashes:
            item.vectors = self.cache.get_many(self.embedder.model_id, item.hashes)

    def uncached(self, item: _FileWork) -> dict[str, str]:
        """The texts of ``item`` to embed, by content key: those the cache lacks. The
        embedding side takes ``item`` up: it is the current file."""
        self.state.current = item.record.path
        if not item.pieces:
            return {}
        new = {
            h: p.embed_text
            for h, p in zip(item.hashes, item.pieces, strict=True)
            if h not in item.vectors
        }
        self.state.chunks_cached += len(item.hashes) - len(new)
        self.credit(item, len(item.hashes) - len(new))
        return new

    def credit(self, item: _FileWork, chunks: int) -> None:
        """``chunks`` more chunks of ``item`` have their vectors: so much of it is done."""
        before = item.bytes_done
        item.chunks_done += chunks
        self.state.bytes_done += item.bytes_done - before

    def _embed_all(self, work: queue.Queue, writer: _Writer) -> None:
        """The caller's thread: embed what the cache did not have, in file order.

        Files are gathered until they hold ``embedder.batch_size`` texts to embed (or the
        reader has nothing more ready): a server gets full batches, not one small file at
        a time."""
        group: list[_FileWork] = []  # read, waiting for their vectors
        todo: list[tuple[_FileWork, str, str]] = []  # (file, content key, text) to embed
        while True:
            try:
                item = work.get(timeout=0.05) if todo else work.get()
            except queue.Empty:
                item = None  # the reader is behind: embed what is here
            if item is not None and item is not _DONE and not self.control.cancelled:
                group.append(item)
                todo.extend((item, h, text) for h, text in self.uncached(item).items())
                if todo and len(todo) < self.embedder.batch_size:
                    continue
            if group:
                self._embed_group(group, todo, writer)
                group, todo = [], []
            if item is _DONE:
                break

    def _embed_group(
        self, group: list[_FileWork], todo: list[tuple[_FileWork, str, str]], writer: _Writer
    ) -> None:
        step_size = self.embedder.batch_size
        for i in range(0, len(todo), step_size):
            step = todo[i : i + step_size]
            # The files before the last one in a step end in it: the last one is in flight.
            self.state.current = step[-1][0].record.path
            self.tick()  # what is done so far, and the file being embedded now
            self.wait_if_paused()
            if self.control.cancelled:
                break
            vectors = self.embedder.embed_documents([text for _, _, text in step])
            for (item, h, _), vec in zip(step, vectors, strict=True):
                item.new_vectors[h] = vec
                self.credit(item, 1)
            self.state.chunks_embedded += len(step)
        for item in group:  # after a cancel, the files embedded whole: their work is kept
            if not self.control.cancelled or all(
                h in item.vectors or h in item.new_vectors for h in item.hashes
            ):
                self.finish(item, writer)  # a half-embedded file is not written
        self.tick()

    def finish(self, item: _FileWork, writer: _Writer) -> None:
        """``item`` has all its vectors: hand it to the writer."""
        item.vectors.update(item.new_vectors)
        if item.pieces == [] and item.record.status == "skipped":
            self.result.skipped.append((item.record.path, item.record.reason))
            self.result.files_skipped += 1
        else:
            self.result.files_indexed += 1
        writer.put(item)
        self.state.files_done += 1
        self.state.bytes_done += item.record.size - item.bytes_done

    def tick(self) -> None:
        s, now = self.state, self.clock()
        s.chunks_per_s = s.chunks_embedded / max(now - self.started, 1e-6)
        s.eta_s = self.eta.update(now, s.bytes_done, s.bytes_total)
        self._report()


class _Writer:
    """Writer thread: batches finished files into a few LanceDB commits."""

    def __init__(
        self,
        store: ProjectStore,
        gen: str,
        embedder: Embedder | RemoteEmbedder,
        cache: EmbeddingCache,
    ) -> None:
        self.store, self.gen, self.embedder, self.cache = store, gen, embedder, cache
        self.inbox: queue.Queue = queue.Queue(maxsize=256)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="codelamp-writer", daemon=True)

    def start(self, deleted: list[str], skipped: list[FileRecord]) -> None:
        self.first = (deleted, skipped)
        self.thread.start()

    def put(self, item: _FileWork) -> None:
        """Hand over a finished file; raises the writer's error if it has failed."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.inbox.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        """Write what is left and wait; a failed writer has stopped already."""
        while self.thread.is_alive():
            try:
                self.inbox.put(_DONE, timeout=0.2)
                break
            except queue.Full:
                continue
        self.thread.join()

    def _run(self) -> None:
        deleted, skipped = self.first
        batch: list[_FileWork] = [_FileWork(r, []) for r in skipped]
        last = time.monotonic()
        try:
            if deleted or batch:
                self._flush(batch, deleted)
                batch = []
            while True:
                try:
                    item = self.inbox.get(timeout=1.0)
                except queue.Empty:
                    item = None
                if item is _DONE:
                    break
                if item is not None:
                    batch.append(item)
                n_chunks = sum(len(b.pieces or ()) for b in batch)
                due = batch and time.monotonic() - last > BATCH_SECONDS
                if n_chunks >= BATCH_CHUNKS or len(batch) >= BATCH_FILES or due:
                    self._flush(batch, [])
                    batch, last = [], time.monotonic()
            self._flush(batch, [])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc  # put() and stop() see it and stop feeding this thread

    def _flush(self, batch: list[_FileWork], deleted: list[str]) -> None:
        if not batch and not deleted:
            return
        fresh = {h: v for item in batch for h, v in item.new_vectors.items()}
        if fresh:
            self.embedder.verify()  # a server may have swapped models: nothing of it is kept
        self.cache.put_many(self.embedder.model_id, fresh)
        pairs = [
            pair
            for item in batch
            if item.pieces
            for pair in zip(item.pieces, item.hashes, strict=True)
        ]
        vectors = {h: v for item in batch for h, v in item.vectors.items()}
        chunks = _chunk_rows(pairs, vectors, self.embedder.dim) if pairs else None
        replaced = [item.record.path for item in batch if item.pieces is not None]
        self.store.write(self.gen, [item.record for item in batch], chunks, replaced, deleted)


def _chunk_rows(
    pairs: list[tuple[Piece, str]], vectors: dict[str, np.ndarray], dims: int
) -> pa.Table:
    chunks = [p.chunk for p, _ in pairs]
    spans = definition_spans(chunks)
    flat = np.stack([vectors[h] for _, h in pairs]).astype(np.float32).ravel()
    columns = {
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat), dims),
        "path": [c.path for c in chunks],
        "start_line": [c.start_line for c in chunks],
        "end_line": [c.end_line for c in chunks],
        "def_start": [start for start, _ in spans],
        "def_end": [end for _, end in spans],
        "language": [c.language for c in chunks],
        "symbol": [c.symbol for c in chunks],
        "text": [c.text for c in chunks],
        "fts": [fts_text(c.path, c.symbol, c.text) for c in chunks],
        "content_hash": [h for _, h in pairs],
    }
    return pa.Table.from_pydict(columns, schema=chunks_schema(dims))
