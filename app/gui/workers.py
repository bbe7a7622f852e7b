"""The app's background work, each on its own QThread, reporting only through signals.

* :class:`Engine` owns the model: it loads it on first need (with real progress) and runs
  searches, so the window never waits for llama.cpp.
* :class:`IndexWorker` runs :func:`index_project` with pause, resume and cancel.
* :class:`WatchHub` turns the file watchers' callbacks (on their own threads) into
  signals.

Every slot catches everything and emits it: an exception escaping a slot can abort the
process. The core is imported lazily, so the window opens before LanceDB is loaded.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.errors import CodeLampError

log = logging.getLogger(__name__)


def _message(exc: BaseException) -> str:
    if isinstance(exc, CodeLampError):
        return str(exc)
    log.error("unexpected error in a worker:\n%s", "".join(traceback.format_exception(exc)))
    return f"Unexpected error: {exc.__class__.__name__}: {exc}"


class ModelGate:
    """The shared model: found or built, checked against free memory, and loaded once,
    by whichever worker needs it first, with progress and cancel."""

    def __init__(self, settings) -> None:
        self.model_path, self.threads = settings.model_path, settings.threads
        self.urls = list(settings.embedder_urls)
        self.remote_model = settings.embedder_model or None
        self.concurrency = settings.embedder_concurrency
        self.embedder = None
        self.cancel = threading.Event()
        self._lock = threading.Lock()

    def ensure(self, progress) -> object:
        """The loaded embedder. Raises CodeLampError (no usable model, not enough memory)
        or LoadCancelled."""
        with self._lock:
            if self.embedder is None:
                self.embedder = self._open(progress)
        self.cancel.clear()
        self.embedder.load(progress=progress, cancelled=self.cancel.is_set)
        return self.embedder

    @property
    def loaded(self):
        """The embedder if it is loaded, else None; never loads."""
        embedder = self.embedder
        return embedder if embedder is not None and embedder.loaded else None

    def _open(self, progress):
        from app.core.default_model import resolve_model
        from app.core.embedder import Embedder
        from app.core.memory import model_fits
        from app.core.models import find_model_file, human_size

        if self.urls:  # embedding servers: nothing big is loaded here
            from app.core.remote import RemoteEmbedder

            return RemoteEmbedder(
                self.urls,
                model=self.remote_model,
                local_model=self.model_path or None,
                find_local=find_model_file,
                concurrency=self.concurrency,
            )
        path = resolve_model(self.model_path)
        embedder = Embedder(path, threads=self.threads or None)
        info = embedder.info
        fits, needed, available = model_fits(info.file_size, info.max_tokens, info.embedding_dim)
        if not fits:
            raise CodeLampError(
                f"{path.name} needs about {human_size(needed)} of memory, and "
                f"{human_size(available)} is free. Close other programs or choose a smaller "
                "model in Settings; exact-word search works without a model."
            )
        return embedder

    def close(self) -> None:
        embedder, self.embedder = self.embedder, None
        if embedder is not None:
            embedder.close()


@dataclass
class SearchRequest:
    """``root`` is one project, or ``ALL_PROJECTS`` to search every one of ``roots``.
    With ``related``, (path, line) in ``root``: the definitions like the one there, not
    ``query``."""

    serial: int
    root: str
    query: str
    k: int
    mode: str
    language: str | None
    path_glob: str | None
    refresh: bool = False  # the files changed: keep the user where they were
    total: int = 0  # matching lines in all, in the text and regex modes (set by the engine)
    roots: tuple[str, ...] = ()
    related: tuple[str, int] | None = None
    source: object = None  # with related: the definition there, a SearchResult (the engine's)


ALL_PROJECTS = "*"


class Engine(QObject):
    """Model loading and search, on the engine thread."""

    model_progress = Signal(float, str)
    model_ready = Signal(str)  # model id
    model_failed = Signal(str)
    results = Signal(object, object, str)  # SearchRequest, list[SearchResult], error
    status = Signal(str, object, str)  # root, project_status() dict or None, error
    warmed = Signal()
    # root, model: searched with the older model that built its index, not the current one
    outdated = Signal(str, str)

    def __init__(self, gate: ModelGate, settings) -> None:
        super().__init__()
        self.gate = gate
        self.settings = settings
        self._searchers: dict[str, object] = {}
        self._older: dict[str, object] = {}  # model file -> Embedder, for outdated indexes

    def _where(self, root: str) -> dict:
        """How to open a project: a folder's own index, or a shared store (its URI)."""
        if root not in self.settings.shared:
            return {"root": Path(root)}
        from app.core.location import Location

        return {"root": None, "location": Location.parse(root)}

    def _load(self):
        """The loaded embedder, or None after telling the window why not."""
        from app.core.embedder import LoadCancelled

        already = self.gate.loaded
        if already is not None:
            return already
        try:
            embedder = self.gate.ensure(lambda f, m: self.model_progress.emit(f, m))
        except LoadCancelled:
            self.model_failed.emit("Model loading cancelled; exact-word search still works.")
            return None
        except Exception as exc:  # noqa: BLE001 - reported to the window
            self.model_failed.emit(_message(exc))
            return None
        self.model_ready.emit(embedder.model_id)
        return embedder

    @Slot()
    def load_model(self) -> None:
        self._load()

    @Slot()
    def warm_up(self) -> None:
        """Import the engine now, while the user looks at the window, rather than in the
        middle of the first search or index."""
        try:
            import llama_cpp  # noqa: F401
            import pyarrow  # noqa: F401

            import app.core.indexer
            import app.core.search
            import app.core.watcher  # noqa: F401
        except Exception:
            log.warning("warm-up import failed", exc_info=True)
        self.warmed.emit()

    @Slot(str)
    def project_status(self, root: str) -> None:
        from app.core.project import project_status
        from app.core.storage import NotIndexed

        try:
            # Asked after every update: the thorough check (every vector) is for the
            # index runs; a search still finds damaged vectors.
            self.status.emit(root, project_status(**self._where(root), thorough=False), "")
        except NotIndexed:
            self.status.emit(root, None, "not indexed yet")
        except Exception as exc:  # noqa: BLE001 - shown next to the project
            self.status.emit(root, None, _message(exc))

    @Slot(str)
    def forget_project(self, root: str) -> None:
        """Drop the cached searcher (after a re-index, a model change or removal)."""
        self._searchers.pop(root, None)

    @Slot()
    def forget_all(self) -> None:
        self._searchers.clear()
        older, self._older = self._older, {}
        for embedder in older.values():
            embedder.close()

    @Slot(object)
    def close_gate(self, gate: ModelGate) -> None:
        """Free a replaced model here, where no search can be using it."""
        gate.close()

    @Slot(object)
    def search(self, request: SearchRequest) -> None:
        from app.core.modes import SearchMode
        from app.core.storage import NotFinished

        try:
            embedder = None
            if request.related is None and SearchMode(request.mode).needs_model:
                embedder = self._load()
                if embedder is None:
                    self.results.emit(
                        request,
                        [],
                        "Semantic search needs the model; Keywords and Text work meanwhile.",
                    )
                    return
            if request.related is not None:
                found = self._related(request)
            elif request.root == ALL_PROJECTS:
                found = self._search_everywhere(request, embedder)
            else:
                found = self._search(request.root, request, embedder)
            self.results.emit(request, found, "")
        except NotFinished:  # the CLI's message names a command; here F5 does it
            self.results.emit(
                request,
                [],
                "Indexing this project has not finished. Press F5 "
                "to resume it; only what is missing gets embedded.",
            )
        except Exception as exc:  # noqa: BLE001 - reported to the window
            self._searchers.pop(request.root, None)
            self.results.emit(request, [], _message(exc))

    def _search(self, root: str, request: SearchRequest, embedder) -> list:
        searcher = self._searcher(root, embedder)
        found = searcher.search(
            request.query,
            k=request.k,
            mode=request.mode,
            language=request.language,
            path_glob=request.path_glob,
        )
        request.total += searcher.last_total
        return found

    def _related(self, request: SearchRequest) -> list:
        """Related code compares the vectors the index stores: no model is needed."""
        searcher = self._searcher(request.root, None)
        path, line = request.related
        request.source = searcher.definition_at(path, line)
        return searcher.related(
            path, line, k=request.k, language=request.language, path_glob=request.path_glob
        )

    def _search_everywhere(self, request: SearchRequest, embedder) -> list:
        """Every project's results, merged by score (file order for text and regex).
        A project that lacks the language asked for, or cannot be searched now, is left
        out; an error only when none could answer."""
        from app.core.errors import CodeLampError
        from app.core.modes import SearchMode

        found, errors = [], []
        for root in request.roots:
            try:
                results = self._search(root, request, embedder)
            except CodeLampError as exc:
                errors.append(f"{Path(root).name}: {exc}")
                continue
            found += [replace(r, project=root) for r in results]
        if errors and len(errors) == len(request.roots):
            raise CodeLampError("\n".join(errors))
        if SearchMode(request.mode).per_line:
            return sorted(found, key=lambda r: (r.project, r.path, r.start_line))[: request.k]
        return sorted(found, key=lambda r: r.score, reverse=True)[: request.k]

    def _searcher(self, root: str, embedder):
        """The project's searcher. An index built with another model that is still on this
        machine (the earlier default, say) is searched with that model until it is
        re-indexed, and the window is told so it can offer the re-index."""
        from app.core.ranking import Ranking
        from app.core.search import ModelMismatch, Searcher
        from app.core.storage import ProjectStore

        searcher = self._searchers.get(root)
        if searcher is not None and (
            embedder is None
            or searcher.embedder is embedder
            or searcher.embedder in self._older.values()
        ):
            return searcher
        store = ProjectStore.open(**self._where(root))
        ranking = Ranking.configured(self.settings.demote_tests)
        try:
            searcher = Searcher(store, embedder, ranking)
        except ModelMismatch:
            older = self._older_model(store.meta.get("model_path"))
            if older is None:
                raise
            searcher = Searcher(store, older, ranking)
            self.outdated.emit(root, store.model_id)
        self._searchers[root] = searcher
        return searcher

    def _older_model(self, path: str | None):
        from app.core.embedder import Embedder

        if not path or not Path(path).is_file():
            return None
        if path not in self._older:
            embedder = Embedder(path, threads=self.settings.threads or None)
            embedder.load()
            self._older[path] = embedder
        return self._older[path]


class IndexWorker(QObject):
    """Indexing, on the index thread. One project at a time; the window queues the rest."""

    progress = Signal(str, object)  # root, IndexProgress
    model_progress = Signal(float, str)
    model_ready = Signal(str)
    finished = Signal(str, object, str)  # root, IndexResult or None, error

    def __init__(self, gate: ModelGate, settings) -> None:
        super().__init__()
        self.gate = gate
        self.settings = settings
        self.control = None

    @Slot(str)
    def index(self, root: str) -> None:
        from app.core.embedder import LoadCancelled
        from app.core.indexer import IndexControl, IndexOptions, index_project

        self.control = control = IndexControl()
        try:
            embedder = self.gate.ensure(lambda f, m: self.model_progress.emit(f, m))
            self.model_ready.emit(embedder.model_id)
            result = index_project(
                Path(root),
                embedder,
                control=control,
                progress=lambda p: self.progress.emit(root, p),
                options=IndexOptions.from_settings(self.settings),
            )
            self.finished.emit(root, result, "")
        except LoadCancelled:
            self.finished.emit(root, None, "Model loading cancelled.")
        except Exception as exc:  # noqa: BLE001 - reported to the window
            self.finished.emit(root, None, _message(exc))
        finally:
            self.control = None


class WatchHub(QObject):
    """File watchers' events as a signal on the GUI thread."""

    event = Signal(object)  # WatchEvent
    progress = Signal(str, object)  # root, IndexProgress of a watcher's catch-up

    def __init__(self) -> None:
        super().__init__()
        self.watchers: dict[str, object] = {}

    def start(self, root: str, embedder, settings) -> str:
        """Start watching; returns an error message, or ""."""
        from app.core.indexer import IndexOptions
        from app.core.watcher import ProjectWatcher

        if root in self.watchers or embedder is None:
            return ""
        try:
            watcher = ProjectWatcher(
                Path(root),
                embedder,
                self.event.emit,
                options=IndexOptions.from_settings(settings),
                progress=lambda p: self.progress.emit(root, p),
            )
            watcher.start()
        except Exception as exc:  # noqa: BLE001 - shown next to the project
            return _message(exc)
        self.watchers[root] = watcher
        return ""


def start_thread(worker: QObject, name: str) -> QThread:
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.start()
    return thread
