"""The projects a ``codelamp mcp`` server serves, each searchable at once and kept fresh.

A project answers from its committed index. Keeping the index fresh is the job of one
process: the first server sharing the project that finds no other watcher claims it
(:func:`app.core.lock.claim_watching`) and runs the same :class:`ProjectWatcher` as
``codelamp watch``, which only ever catches up a committed index. Every other server only
reads: it looks for a newer commit at most every :data:`FRESH_CHECK_S`, and tries to take
the claim over every :data:`CLAIM_RETRY_S` (its holder may have gone). Writes still go
through ``index_project`` and its writer lock, so ``codelamp index``, ``codelamp watch`` and
the app can work on the same project meanwhile, one at a time, and no chunk is embedded
twice.

A project without a committed index (never indexed, or a first index that was
interrupted) is indexed in the background by the server that holds the claim, and
watched once that index commits. Meanwhile ``search`` answers in Text mode (Regex for a
regex) over the files the index will hold, as they are on disk (:meth:`grep_disk`).

The model loads once per process (one :class:`Embedder` per model file), on the first
semantic query or the first chunk to embed: Keywords, Text and Regex never load it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.default_model import resolve_model
from app.core.embedder import Embedder
from app.core.errors import CodeLampError, UsageError
from app.core.files import FileRules
from app.core.indexer import IndexControl, IndexProgress, index_project
from app.core.languages import language_for
from app.core.lock import claim_watching, holder_of, release_watching, watchers_of
from app.core.project import check_root, project_status
from app.core.search import Searcher, SearchResult, grep_unindexed
from app.core.storage import IndexDamaged, NotIndexed, ProjectStore
from app.core.watcher import ProjectWatcher, WatchEvent

log = logging.getLogger(__name__)

FRESH_CHECK_S = 0.5  # a searcher looks for a newer commit at most this often
CLAIM_RETRY_S = 5.0  # a reader tries to become the writer at most this often
STOP_S = 1.5  # at exit, a running round is cancelled this soon (as `codelamp watch` does)
_RUNNING = ("waiting", "scanning", "indexing", "finishing")


class Models:
    """One embedder per model file for the life of the process; each loads on first use."""

    def __init__(self) -> None:
        self._embedders: dict[Path, Embedder] = {}
        self._lock = threading.Lock()

    def for_index(self, store: ProjectStore | None) -> Embedder:
        """The embedder of the model that built ``store`` (None: the default model)."""
        path = resolve_model(None, store)
        with self._lock:
            if path not in self._embedders:
                self._embedders[path] = Embedder(path)
            return self._embedders[path]

    def loaded(self) -> Embedder | None:
        """A model that is loaded already, if any (its tokenizer counts tokens for free)."""
        with self._lock:
            return next((e for e in self._embedders.values() if e.loaded), None)

    def close(self) -> None:
        with self._lock:
            for embedder in self._embedders.values():
                embedder.close()


class ServedProject:
    def __init__(self, root: Path, models: Models) -> None:
        self.root = check_root(root)
        self.models = models
        self.writer = False  # this process holds the claim: it indexes and watches
        self.progress: IndexProgress | None = None  # of the index or round running
        self.error = ""  # why the last attempt to index failed
        self._search_lock = threading.Lock()  # a Searcher serves one query at a time
        self._searcher: Searcher | None = None
        self._checked = 0.0
        self._state = threading.Lock()  # the claim, the thread, the watcher
        self._claim: int | None = None
        self._claim_tried = -CLAIM_RETRY_S
        self._thread: threading.Thread | None = None
        self._watcher: ProjectWatcher | None = None
        self._control = IndexControl()
        self._stopping = False

    @property
    def name(self) -> str:
        return self.root.name

    def keep_fresh(self) -> None:
        """Become the writer, unless another process watches the project (tried again at
        most every CLAIM_RETRY_S)."""
        with self._state:
            now = time.monotonic()
            if self.writer or self._stopping or now - self._claim_tried < CLAIM_RETRY_S:
                return
            self._claim_tried = now
            if watchers_of(self.root) or (claim := claim_watching(self.root)) is None:
                return
            self._claim, self.writer, self.error = claim, True, ""
            self._thread = threading.Thread(
                target=self._index_then_watch, daemon=True, name=f"codelamp-mcp-{self.name}"
            )
            self._thread.start()

    def _index_then_watch(self) -> None:
        try:
            try:
                store = ProjectStore.open(self.root)
            except (NotIndexed, IndexDamaged):  # index_project builds, resumes or rebuilds
                result = index_project(
                    self.root,
                    self.models.for_index(None),
                    control=self._control,
                    progress=self._on_progress,
                )
                if result.cancelled:
                    return
                store = ProjectStore.open(self.root)
            watcher = ProjectWatcher(
                self.root, self.models.for_index(store), self._on_event, progress=self._on_progress
            )
            with self._state:
                if not self._stopping:
                    self._watcher = watcher
                    watcher.start()
        except Exception as exc:
            if not isinstance(exc, CodeLampError):
                log.exception("indexing %s failed", self.root)
            with self._state:
                self.error = f"Indexing {self.root} failed: {exc}"
                self.writer = False
                release_watching(self._claim)
                self._claim = None

    def _on_progress(self, progress: IndexProgress) -> None:
        self.progress = progress

    def _on_event(self, event: WatchEvent) -> None:
        log.info("%s", event.message)

    @contextmanager
    def searching(self, semantic: bool = False) -> Iterator[Searcher]:
        """The searcher of the committed index, caught up with its latest commit, for one
        query. Raises NotIndexed while there is no committed index."""
        self.keep_fresh()
        with self._search_lock:
            now = time.monotonic()
            if self._searcher is None:
                self._searcher = Searcher(ProjectStore.open(self.root))
                self._checked = now
            elif now - self._checked >= FRESH_CHECK_S:
                self._checked = now
                if self._searcher.store.newer_commit():
                    self._searcher.store = self._searcher.store.reopen()
                    self._searcher.refresh()
            if semantic and self._searcher.embedder is None:
                store = self._searcher.store
                self._searcher = Searcher(store, self.models.for_index(store))
            yield self._searcher

    def grep_disk(
        self, query: str, k: int, regex: bool, language: str | None, path_glob: str | None
    ) -> tuple[list[SearchResult], int]:
        """Text (or Regex) search of the files the index will hold, as they are on disk."""
        files = {entry.rel: language_for(entry.rel) for entry in FileRules(self.root).walk().files}
        return grep_unindexed(self.root, files, query, k, regex, language, path_glob)

    def indexing(self) -> bool:
        """This process is indexing the project now (a first index, or a watcher's round)."""
        if not self.writer:
            return False
        watcher = self._watcher
        return (
            watcher.busy
            if watcher is not None
            else (self.progress is None or self.progress.phase in _RUNNING)
        )

    def not_ready(self) -> str:
        """Why there is no committed index to search yet, and how far indexing is."""
        if self.error:
            return self.error
        if self.writer:
            p = self.progress
            if p is not None and p.phase == "waiting":
                return f"indexing waits for its turn: {p.current}"
            return f"indexing, {int(p.fraction * 100) if p else 0}% done; try again shortly"
        holder = holder_of(self.root)
        if holder is not None:
            return f"indexing: {holder.describe(self.root)}; try again shortly"
        return f"{self.root} has no index yet; this server indexes it when it can"

    def status(self) -> dict:
        self.keep_fresh()
        try:
            info = project_status(self.root, thorough=False)
        except NotIndexed:
            info = {
                "root": str(self.root),
                "state": "not indexed",
                "files": 0,
                "chunks": 0,
                "languages": [],
                "model": None,
                "last_indexed": None,
            }
        running = self.indexing()
        p = self.progress
        watcher = self._watcher
        info |= {
            "role": "writer" if self.writer else "reader",
            "indexing": running,
            "progress": {
                "phase": p.phase,
                "percent": int(p.fraction * 100),
                "files_done": p.files_done,
                "files_total": p.files_total,
                "eta_s": round(p.eta_s) if p.eta_s else None,
            }
            if running and p
            else None,
            "watching": watcher.mode if watcher else None,
            "last_update": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(watcher.last_update))
            if watcher and watcher.last_update
            else None,
            "pending_changes": watcher.pending if watcher else 0,
            "kept_fresh_by": None if self.writer else _keeper(self.root),
            "error": self.error or None,
        }
        info.pop("skipped", None)
        return info

    def relative(self, path: str) -> str:
        """``path`` (relative to the root, or absolute) as a path inside the project;
        a UsageError for one that leads outside it, also through a symlink."""
        given = Path(path).expanduser()
        normal = Path(os.path.normpath(given if given.is_absolute() else self.root / given))
        if not normal.is_relative_to(self.root):
            raise UsageError(f"{path!r} is outside the project {self.root}: give a path inside it.")
        rel = normal.relative_to(self.root).as_posix()
        try:
            real = normal.resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # a loop of symlinks; a NUL
            raise UsageError(f"No file {rel!r} in {self.root}.") from None
        if not real.is_relative_to(self.root):
            raise UsageError(
                f"{rel!r} is a link to {real}, outside the project {self.root}: "
                "CodeLamp reads nothing outside it."
            )
        if not real.is_file():
            raise UsageError(f"{rel!r} in {self.root} is not a file.")
        return rel

    def close(self) -> None:
        """Stop indexing and watching, keeping what is committed (the next index or watch
        catches up the rest)."""
        with self._state:
            self._stopping = True
            watcher, thread = self._watcher, self._thread
        self._control.cancel()
        if watcher is not None:
            watcher.request_stop(flush=True, hurry_s=STOP_S)
            watcher.join()
        if thread is not None:
            thread.join()
        with self._state:
            if self._claim is not None:
                release_watching(self._claim)
                self._claim = None


def _keeper(root: Path) -> str | None:
    """Who keeps the index fresh, when it is another process."""
    watchers = watchers_of(root)
    holder = watchers[0] if watchers else holder_of(root)
    return holder.describe(root) if holder else None


class ServedProjects:
    """The roots a server serves, and the model(s) they share."""

    def __init__(self, roots: list[Path]) -> None:
        self.models = Models()
        self.projects: list[ServedProject] = []
        for root in dict.fromkeys(roots):
            self.projects.append(ServedProject(root, self.models))
        for project in self.projects:
            project.keep_fresh()

    def chosen(self, project: str | None) -> list[ServedProject]:
        """The project named by its path or folder name; every one when None."""
        if project is None:
            return self.projects
        wanted = Path(project).expanduser()
        found = [
            p
            for p in self.projects
            if p.name == project
            or (wanted.is_absolute() and Path(os.path.normpath(wanted)) == p.root)
        ]
        if len(found) == 1:
            return found
        served = ", ".join(str(p.root) for p in self.projects)
        if found:
            raise UsageError(
                f"Several served projects are named {project!r}: give its full path ({served})."
            )
        raise UsageError(f"No served project {project!r}. Served: {served}.")

    def for_path(self, path: str, project: str | None) -> tuple[ServedProject, str]:
        """The project holding ``path`` and the path relative to its root."""
        candidates = self.chosen(project)
        if Path(path).expanduser().is_absolute() and len(candidates) > 1:
            normal = Path(os.path.normpath(Path(path).expanduser()))
            candidates = sorted(
                (p for p in candidates if normal.is_relative_to(p.root)),
                key=lambda p: -len(p.root.parts),
            )  # the innermost first
            if not candidates:
                served = ", ".join(str(p.root) for p in self.projects)
                raise UsageError(f"{path!r} is outside every served project ({served}).")
        elif len(candidates) > 1:
            raise UsageError(
                "Several projects are served: name one with `project`, or give an absolute path."
            )
        chosen = candidates[0]
        return chosen, chosen.relative(path)

    def close(self) -> None:
        for project in self.projects:
            project.close()
        self.models.close()
