"""What the app is doing, without a widget in sight: the projects and their statuses, the
model, the indexing queue, the watchers, search requests, and stopping it all.

The window's panels render this state and call these methods; every change comes back as
a signal. Nothing here ever waits for a worker on the GUI thread: removing a project,
switching the model and shutting down cancel what runs and finish in the background
(:meth:`Controller.remove`, :meth:`Controller.switch_model`, :meth:`Controller.shutdown`).
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.gui.workers import (
    ALL_PROJECTS,
    Engine,
    IndexWorker,
    ModelGate,
    SearchRequest,
    WatchHub,
    start_thread,
)

IDLE_GC_MS = 1000


def quiet_gc() -> None:
    """Keep Python's garbage collector from stalling the window.

    A full collection walks every object in the process: with LanceDB, pyarrow and the
    model loaded that is 50-90 ms, during which no thread (the GUI's included) runs
    Python. Objects alive after start-up are frozen out of collections, and full
    collections are left for idle moments (after an index run).
    """
    gc.freeze()
    gc.set_threshold(10_000, 50, 1_000)


def ready(status: dict | None) -> bool:
    """The project has a complete index (searchable, and safe to watch)."""
    return bool(status) and status["state"] == "ready"


class Controller(QObject):
    # Requests to the worker threads (queued).
    _request_search = Signal(object)
    _request_status = Signal(str)
    _request_index = Signal(str)
    _request_forget_searcher = Signal(str)
    _request_forget_all = Signal()
    _request_close_gate = Signal(object)
    _request_warm_up = Signal()
    _request_model = Signal()
    # From background threads to this one.
    _removal_done = Signal(str, str)  # root, error
    _watchers_joined = Signal(object)  # the gate they used, or None at shutdown

    # To the window.
    project_changed = Signal(str)  # root: status, work or errors changed; render it again
    project_removed = Signal(str)
    results = Signal(object, object, str)  # SearchRequest, results, error
    message = Signal(str)
    problem = Signal(str, str)  # title, text: worth a dialog
    work_changed = Signal()  # what runs (and whether it is paused) changed
    progress = Signal(str, object)  # root, IndexProgress: an index or a watcher's catch-up
    index_finished = Signal(str, object, str)  # root, IndexResult or None, error
    model_progress = Signal(float, str)
    model_ready = Signal(str)
    model_failed = Signal(str)
    watch_changed = Signal(str)  # root
    updated = Signal(str)  # root: a watcher committed changes to its files
    outdated = Signal(str, str)  # root, the model its index was built with
    stopped = Signal()  # shutdown finished: the window may close

    def __init__(self, settings) -> None:
        super().__init__()
        quiet_gc()  # now, and again once the engine is imported (warm_up)
        from app.core.lock import set_role

        set_role("the CodeLamp app")
        from app.core import storage

        storage.choose(settings.storage or None)
        self.settings = settings
        self.gate = ModelGate(settings)
        self.engine = Engine(self.gate, settings)
        self.indexer = IndexWorker(self.gate, settings)
        self.watch_hub = WatchHub()
        self.statuses: dict[str, dict | None] = {}
        self.status_errors: dict[str, str] = {}
        self.resume_at_start: set[str] = set()  # projects whose first status is pending
        self.index_queue: list[str] = []
        self.indexing: str | None = None
        self.catching_up: str | None = None  # a watcher bringing its project up to date
        self.removing: set[str] = set()
        self.outdated_models: dict[str, str] = {}  # root -> the model its index was built with
        self.model_id: str | None = None  # the current model's, once loaded
        self.paused_by_memory = False
        self.closing = False
        self.done = False  # shut down: every thread has stopped
        self._retired: list[ModelGate] = []  # replaced gates, closed once nothing uses them
        self._joining = 0  # background joins of watchers still running
        self._finished_threads: set[str] = set()  # at shutdown
        self._model_asked = False
        self._connect()
        self.engine_thread = start_thread(self.engine, "codelamp-engine")
        self.index_thread = start_thread(self.indexer, "codelamp-index")
        self._request_warm_up.emit()

    def _connect(self) -> None:
        self._request_search.connect(self.engine.search)
        self._request_status.connect(self.engine.project_status)
        self._request_forget_searcher.connect(self.engine.forget_project)
        self._request_forget_all.connect(self.engine.forget_all)
        self._request_close_gate.connect(self.engine.close_gate)
        self._request_index.connect(self.indexer.index)
        self._request_warm_up.connect(self.engine.warm_up)
        self._request_model.connect(self.engine.load_model)
        self._removal_done.connect(self._removed)
        self._watchers_joined.connect(self._joined)
        self.engine.warmed.connect(quiet_gc)
        self.engine.results.connect(self.results)
        self.engine.status.connect(self._status)
        self.engine.model_progress.connect(self.model_progress)
        self.engine.model_ready.connect(self._model_ready)
        self.engine.model_failed.connect(self._model_failed)
        self.engine.outdated.connect(self._outdated)
        self.indexer.progress.connect(self.progress)
        self.indexer.model_progress.connect(self.model_progress)
        self.indexer.model_ready.connect(self._model_ready)
        self.indexer.finished.connect(self._index_finished)
        self.watch_hub.event.connect(self._watch_event)
        self.watch_hub.progress.connect(self._watch_progress)

    # --- projects -------------------------------------------------------------------------

    def restore(self) -> None:
        """Ask for every saved project's status; an index the last quit interrupted
        resumes when its status arrives."""
        for root in self.settings.projects:
            self.resume_at_start.add(root)
            self._request_status.emit(root)

    def is_shared(self, root: str | None) -> bool:
        return root in self.settings.shared

    def add(self, root: str) -> None:
        """A checked, resolved folder: remember it and index it."""
        if root not in self.settings.projects:
            self.settings.projects.append(root)
            self.settings.save()
        self.start_index(root)

    def add_shared(self, uri: str) -> None:
        """A shared index (a store's URI): searchable here, never written."""
        if uri not in self.settings.projects:
            self.settings.projects.append(uri)
            self.settings.shared.append(uri)
            self.settings.save()
        self._request_status.emit(uri)

    def remove(self, root: str) -> None:
        """Forget a project and delete its index, without waiting: its index run or
        watcher round is cancelled, and the rest happens in the background."""
        if root in self.removing:
            return
        self.removing.add(root)
        self.index_queue = [r for r in self.index_queue if r != root]
        self._request_forget_searcher.emit(root)
        if self.indexing == root and self.indexer.control is not None:
            self.indexer.control.cancel()  # _index_finished goes on with the removal
        else:
            self._finish_removal(root)
        self.project_changed.emit(root)

    def _finish_removal(self, root: str) -> None:
        watcher = self.watch_hub.watchers.pop(root, None)
        if watcher is not None:
            watcher.request_stop(flush=False)
        shared = self.is_shared(root)

        def work() -> None:
            error = ""
            try:
                if watcher is not None:
                    watcher.join()
                if not shared:
                    from app.core.project import forget

                    forget(Path(root))
            except Exception as exc:  # noqa: BLE001 - e.g. another process is indexing it
                error = str(exc)
            self._removal_done.emit(root, error)

        threading.Thread(target=work, name="codelamp-remove", daemon=True).start()

    @Slot(str, str)
    def _removed(self, root: str, error: str) -> None:
        self.removing.discard(root)
        self._check_stopped()
        if error:
            self.problem.emit("Remove project", error)
            self.project_changed.emit(root)
            return
        for name in ("projects", "shared", "unwatched"):
            setattr(self.settings, name, [r for r in getattr(self.settings, name) if r != root])
        self.settings.save()
        self.statuses.pop(root, None)
        self.status_errors.pop(root, None)
        self.outdated_models.pop(root, None)
        self.project_removed.emit(root)
        self.message.emit(f"Removed {Path(root).name}.")

    def line(self, root: str) -> str:
        """The project's state in a few words, for the project list."""
        status = self.statuses.get(root)
        if root in self.removing:
            line = "stopping and removing…"
        elif self.indexing == root:
            line = "indexing…"
        elif root in self.index_queue:
            line = "waiting to index"
        elif self.catching_up == root:
            line = "updating…"
        elif status and status["state"] == "unfinished":
            from app.core.storage import files_phrase  # loaded by then: status came from it

            line = f"not finished ({files_phrase(status['files'])}) · Resume (F5)"
        elif status:
            line = f"{status['files']} files · {status['chunks']} chunks"
        else:
            line = self.status_errors.get(root, "…")
        if self.is_shared(root):
            line = f"shared, read-only · {line}"
        elif root in self.outdated_models and status:
            line = f"{line} · another model"
        return line

    def info(self, root: str) -> str:
        """What the project panel says about the selected project."""
        status = self.statuses.get(root)
        if status and status["state"] == "unfinished" and self.indexing == root:
            return f"{root}\nIndexing: resumed where it was interrupted."
        if status and status["state"] == "unfinished":
            from app.core.storage import files_phrase

            return (
                f"{root}\nIndexing was interrupted after {files_phrase(status['files'])}. "
                "Resume (F5) embeds only what is missing."
            )
        if not status:
            return f"{root}\n{self.status_errors.get(root, '')}"
        from app.core.models import human_size

        where = f"Shared index {root}\nbuilt from {status['root']}" if status["store"] else root
        older = (
            (
                "\nBuilt with another model than the current one: searched with it, and "
                "not watched, until you re-index."
            )
            if root in self.outdated_models
            else ""
        )
        return (
            f"{where}\n{status['files']} files, {status['chunks']} chunks, "
            f"{len(status['skipped'])} skipped\nmodel: {status['model']}\nindex: "
            f"{human_size(status['index_bytes'])}, last indexed {status['last_indexed']}"
            f"{older}"
        )

    def languages(self, root: str | None) -> list[str]:
        """The languages a project's index holds (for the filter's completions)."""
        status = self.statuses.get(root) if root else None
        return list(status.get("languages", [])) if status else []

    @Slot(str, object, str)
    def _status(self, root: str, status, error: str) -> None:
        if root in self.removing or root not in self.settings.projects:
            return
        self.statuses[root] = status
        if status and self.model_id and status["model"] == self.model_id:
            self.outdated_models.pop(root, None)
        if error:
            self.status_errors[root] = error
        at_start = root in self.resume_at_start
        self.resume_at_start.discard(root)
        self.project_changed.emit(root)
        if ready(status):
            self._start_watching(root)
            if root not in self.settings.unwatched and not self.is_shared(root):
                self.load_model()  # a watched project is kept fresh from the start
        elif status and at_start and not self.closing:
            self.start_index(root)  # an index interrupted by the last quit resumes

    @Slot(str, str)
    def _outdated(self, root: str, model: str) -> None:
        if root in self.outdated_models:
            return
        self.outdated_models[root] = model
        self.outdated.emit(root, model)
        self.project_changed.emit(root)

    # --- indexing -------------------------------------------------------------------------

    def start_index(self, root: str) -> None:
        if (
            self.indexing == root
            or root in self.index_queue
            or self.is_shared(root)
            or root in self.removing
            or self.closing
        ):
            return
        if self.indexing is None:
            self.indexing = root
            self._request_index.emit(root)
            self.work_changed.emit()
        else:
            self.index_queue.append(root)
        self.project_changed.emit(root)

    @Slot(str, object, str)
    def _index_finished(self, root: str, result, error: str) -> None:
        self.indexing = None
        self.paused_by_memory = False
        self.index_finished.emit(root, result, error)
        self._request_forget_searcher.emit(root)
        QTimer.singleShot(IDLE_GC_MS, gc.collect)
        self._close_retired()
        if root in self.removing:
            self._finish_removal(root)
        elif not self.closing:
            self._request_status.emit(root)
        if self.index_queue and not self.closing:
            self.start_index(self.index_queue.pop(0))
        self.work_changed.emit()
        self.project_changed.emit(root)

    def active_control(self):
        """The IndexControl of what runs now: the user's index, else a watcher's
        catch-up; None when nothing does."""
        if self.indexing is not None:
            return self.indexer.control
        watcher = self.watch_hub.watchers.get(self.catching_up) if self.catching_up else None
        return watcher.control if watcher is not None else None

    def toggle_pause(self) -> None:
        control = self.active_control()
        if control is None:
            return
        (control.resume if control.paused else control.pause)()
        self.paused_by_memory = False
        self.work_changed.emit()

    def cancel(self) -> None:
        """Cancel a model load, the running index (and the queue) or a watcher's round."""
        self.gate.cancel.set()
        self.index_queue.clear()
        if (control := self.active_control()) is not None:
            control.cancel()
        self.work_changed.emit()

    def memory_level(self, level: str) -> str:
        """Pause indexing while memory is critical, resume after; returns what was done
        ("paused", "resumed" or "")."""
        control = self.active_control()
        if level == "critical" and control and not control.paused:
            control.pause()
            self.paused_by_memory = True
            self.work_changed.emit()
            return "paused"
        if level != "critical" and self.paused_by_memory and control:
            control.resume()
            self.paused_by_memory = False
            self.work_changed.emit()
            return "resumed"
        return ""

    # --- watching -------------------------------------------------------------------------

    def set_watching(self, root: str, on: bool) -> None:
        unwatched = set(self.settings.unwatched)
        (unwatched.discard if on else unwatched.add)(root)
        self.settings.unwatched = sorted(unwatched)
        self.settings.save()
        if on:
            self._start_watching(root)
        elif (watcher := self.watch_hub.watchers.pop(root, None)) is not None:
            self._join_in_background([watcher], flush=True, gate=None)
        self.watch_changed.emit(root)

    def _start_watching(self, root: str) -> None:
        """Watch a project whose index is complete; never one whose first index the user
        cancelled (the watcher would finish it behind their back)."""
        embedder, status = self.gate.loaded, self.statuses.get(root)
        if (
            root in self.settings.unwatched
            or embedder is None
            or not ready(status)
            or self.is_shared(root)
            or root in self.removing
            or self.closing
        ):
            return
        if status["model"] != embedder.model_id:  # its own model's index: not ours to update
            self._outdated(root, status["model"])
            return
        if error := self.watch_hub.start(root, embedder, self.settings):
            self.status_errors[root] = error
            self.project_changed.emit(root)
        self.watch_changed.emit(root)

    @Slot(str, object)
    def _watch_progress(self, root: str, p) -> None:
        """A watcher catching up (after a branch switch, or changes made while closed):
        shown like an index, and pausable and cancellable like one."""
        # A round that only scans and finds nothing changed is not worth showing.
        busy = (p.phase == "indexing" and p.files_total > 0) or (
            p.phase == "finishing" and self.catching_up == root
        )
        if busy and self.catching_up is None and self.indexing is None:
            self.catching_up = root
            self.work_changed.emit()
            self.project_changed.emit(root)
        elif not busy and self.catching_up == root:
            self._catch_up_over(root)
        if self.catching_up == root:
            self.progress.emit(root, p)

    def _catch_up_over(self, root: str) -> None:
        self.catching_up = None
        self.paused_by_memory = False
        self.work_changed.emit()
        self.project_changed.emit(root)

    @Slot(object)
    def _watch_event(self, event) -> None:
        root = str(event.root)
        if self.catching_up == root and event.kind != "polling":
            self._catch_up_over(root)
        if event.kind == "updated":
            self._request_forget_searcher.emit(root)
            self._request_status.emit(root)
            self.updated.emit(root)
        elif event.kind in ("polling", "unavailable", "error", "unfinished"):
            self.message.emit(event.message)
        self.watch_changed.emit(root)

    # --- the model ------------------------------------------------------------------------

    def load_model(self) -> None:
        """Load the model in the background (once), if it is not loaded or loading."""
        if self.gate.embedder is None and not self._model_asked and not self.closing:
            self._model_asked = True
            self._request_model.emit()

    @Slot(str)
    def _model_ready(self, model_id: str) -> None:
        self.model_id = model_id
        self.model_ready.emit(model_id)
        for root in self.settings.projects:
            self._start_watching(root)

    @Slot(str)
    def _model_failed(self, error: str) -> None:
        self._model_asked = False  # the next need tries again
        self.model_failed.emit(error)

    def switch_model(self) -> None:
        """Use the model now in the settings from the next search or index on. The old
        one is freed once its watchers (stopped now, in the background) and any running
        index are done with it."""
        old = self.gate
        watchers = list(self.watch_hub.watchers.values())
        self.watch_hub.watchers.clear()
        self.model_id = None
        self.outdated_models.clear()
        self.gate = ModelGate(self.settings)
        self.engine.gate = self.indexer.gate = self.gate
        self._model_asked = False
        self._request_forget_all.emit()
        self._join_in_background(watchers, flush=True, gate=old)
        for root in self.settings.projects:
            self.watch_changed.emit(root)

    def forget_searchers(self) -> None:
        """Search settings changed (test demotion): searchers are made again."""
        self._request_forget_all.emit()

    def _join_in_background(self, watchers: list, flush: bool, gate: ModelGate | None) -> None:
        for watcher in watchers:
            watcher.request_stop(flush=flush, hurry_s=5.0 if flush else None)
        self._joining += 1

        def work() -> None:
            for watcher in watchers:
                watcher.join()
            self._watchers_joined.emit(gate)

        threading.Thread(target=work, name="codelamp-stop-watchers", daemon=True).start()

    @Slot(object)
    def _joined(self, gate: ModelGate | None) -> None:
        self._joining -= 1
        if gate is not None:
            self._retired.append(gate)
        self._close_retired()
        self._check_stopped()

    def _close_retired(self) -> None:
        """Close replaced models that nothing uses any more: no watcher (joined), no
        index run, and on the engine thread, after the search it may be running."""
        if self.indexing is None:
            retired, self._retired = self._retired, []
            for gate in retired:
                self._request_close_gate.emit(gate)

    # --- search ---------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> bool:
        """Ask for results (they come back through :attr:`results`); False when the
        project (or, for all projects, every one) cannot be searched yet."""
        if request.root == ALL_PROJECTS:
            request.roots = tuple(r for r in self.settings.projects if self.statuses.get(r))
            if not request.roots:
                return False
        elif self.statuses.get(request.root) is None:
            return False
        self._request_search.emit(request)
        return True

    # --- shutting down ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel everything and stop every thread, without waiting here; :attr:`stopped`
        is emitted once all is done."""
        if self.closing:
            return
        self.closing = True
        self.index_queue.clear()
        self.cancel()
        watchers = list(self.watch_hub.watchers.values())
        self.watch_hub.watchers.clear()
        self._join_in_background(watchers, flush=False, gate=None)
        for thread in (self.index_thread, self.engine_thread):
            thread.finished.connect(lambda t=thread: self._thread_done(t))
            thread.quit()  # after the slot running now, which the cancel cuts short

    def _thread_done(self, thread) -> None:
        self._finished_threads.add(thread.objectName())
        self._check_stopped()

    @Slot()
    def _check_stopped(self) -> None:
        if not self.closing or self.done or self._joining or self.removing:
            return
        if len(self._finished_threads) < 2:
            return
        for thread in (self.index_thread, self.engine_thread):
            thread.wait()  # it has emitted finished: returning is all that is left
        self.done = True
        self.gate.close()
        for gate in self._retired:
            gate.close()
        self.engine.forget_all()  # the threads are done: this closes the older models
        self.stopped.emit()
