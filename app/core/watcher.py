"""Keeps a project's index equal to its files, seconds after each save.

One recursive watchdog observer per project feeds a small pending set: path -> time of
its last event. A path is indexed once it has been quiet for ``quiet_s`` (an editor's
save is often several events). Events that say "many things changed" (a folder created,
deleted or moved, an ignore file edited, or more than ``burst`` pending paths, as a
``git checkout`` or ``rm -rf`` makes) collapse into one re-scan of the whole project once
the burst is over. The pending set never grows beyond ``burst`` entries, and no update is
lost: a re-scan covers everything.

All index writes go through :func:`index_project`, which takes the project's writer lock,
so the GUI and ``codelamp watch`` can watch the same project. A watcher only catches up a
committed index: a first index that was cancelled or interrupted, or a rebuild for another
model, is never started or resumed behind the user's back ("unfinished" until the user
finishes it). Each round reports progress like an index and can be paused or cancelled
through :attr:`ProjectWatcher.control`.

When the OS cannot watch the tree (the inotify watch limit, ENOSPC), the project is
re-scanned every ``poll_s`` seconds instead; an unchanged 10k-file tree takes ~0.3 s.
When the folder disappears (deleted, unmounted), its index is left untouched and the
watcher waits for it to come back.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from app.core.errors import CodeLampError
from app.core.files import ALWAYS_IGNORED_DIRS, IGNORE_FILES, is_editor_temp
from app.core.indexer import (
    IndexControl,
    IndexOptions,
    IndexProgress,
    IndexResult,
    index_project,
)
from app.core.lock import register_watcher, unregister_watcher
from app.core.project import check_root
from app.core.storage import NotIndexed

if TYPE_CHECKING:
    from app.core.embedder import Embedder
    from app.core.location import Location
    from app.core.remote import RemoteEmbedder

log = logging.getLogger(__name__)

QUIET_S = 0.3
BURST = 256
POLL_S = 10.0
PRESENCE_S = 2.0  # how often the folder is checked for being there
MAX_BACKOFF_S = 300.0  # the longest wait between two retries of a failing round


@dataclass
class WatchEvent:
    """What a watcher tells its owner; ``kind`` is one of "watching", "polling",
    "updated", "unfinished", "unavailable", "error" or "stopped"."""

    root: Path
    kind: str
    message: str
    paths: list[str] = field(default_factory=list)  # updated: the paths that changed
    result: IndexResult | None = None


class ProjectWatcher:
    """Watches one project folder and re-indexes what changes, on its own thread."""

    def __init__(
        self,
        root: Path,
        embedder: Embedder | RemoteEmbedder,
        on_event: Callable[[WatchEvent], None],
        *,
        quiet_s: float = QUIET_S,
        burst: int = BURST,
        poll_s: float = POLL_S,
        options: IndexOptions | None = None,
        location: Location | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
    ) -> None:
        self.root = check_root(root)
        self.embedder = embedder
        self.on_event = on_event
        self.progress = progress
        self.control: IndexControl | None = None  # the running round's, while one runs
        self.quiet_s, self.burst, self.poll_s = quiet_s, burst, poll_s
        # A catch-up keeps the index's chunk limit: a new one waits for the user's re-index.
        self.options = replace(options or IndexOptions(), chunk_tokens=None)
        self.location = location
        self.mode = "starting"  # "watching", "polling", "unavailable" or "stopped"
        self.unfinished = False  # the index is not one this watcher may catch up
        self.last_update: float | None = None  # time.time() of the last finished round
        self.busy = False  # a round is running
        self.last_round_s = 0.0  # how long the last re-index took
        self._pending: dict[str, float] = {}
        self._rescan = True  # the first round brings the index up to date
        self._held = False  # a cancelled round's re-scan waits for the next change
        self._hurry = threading.Event()  # stop: cancel the running round now
        self._failures, self._last_error = 0, ""  # consecutive failed rounds, and why
        self._mark: Path | None = None
        self._last_event = 0.0
        self._wake = threading.Condition()
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"codelamp-watch-{root.name}", daemon=True
        )

    # --- the owner's side -----------------------------------------------------------------

    def start(self) -> None:
        self._start_observer()
        self._mark = register_watcher(self.root)  # forget refuses while it is there
        self._thread.start()

    def stop(self, flush: bool = True, timeout: float | None = None) -> None:
        """Stop watching; with ``flush``, pending changes are indexed first."""
        self.request_stop(flush)
        self.join(timeout)

    def request_stop(self, flush: bool = True, hurry_s: float | None = None) -> None:
        """Ask the watcher to stop without waiting. With ``flush``, pending changes are
        indexed first, but with ``hurry_s`` only for that long: then the round is
        cancelled, keeping what it committed (the next index catches up the rest)."""
        with self._wake:
            self._stopping = True
            if not flush:
                self._pending.clear()
                self._rescan = False
                self._hurry.set()
            self._wake.notify_all()
        if hurry_s is not None:
            timer = threading.Timer(hurry_s, self._hurry_up)
            timer.daemon = True
            timer.start()
        if self._hurry.is_set():
            self._hurry_up()
        self._stop_observer()

    def _hurry_up(self) -> None:
        """Cancel the running round (and any later one: _round checks the flag after it
        has published its control, so one of the two always sees the other)."""
        self._hurry.set()
        if (control := self.control) is not None:
            control.cancel()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self._pending) + (1 if self._rescan else 0)

    # --- events, on watchdog's thread ---------------------------------------------------

    def _note(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path] + ([event.dest_path] if event.event_type == "moved" else [])
        rels = [rel for p in paths if (rel := self._relative(p, event.is_directory)) is not None]
        if not rels:
            return
        whole_tree = (event.is_directory and event.event_type != "modified") or any(
            rel.rsplit("/", 1)[-1] in IGNORE_FILES for rel in rels
        )
        if event.is_directory and not whole_tree:
            return  # a folder's own "modified" just echoes a change inside it
        with self._wake:
            now = time.monotonic()
            self._last_event = now
            self._held = False
            if whole_tree or len(self._pending) + len(rels) > self.burst:
                self._rescan = True
                self._pending.clear()
            elif not self._rescan:
                for rel in rels:
                    self._pending[rel] = now
            self._wake.notify_all()

    def _relative(self, path: str | bytes, is_dir: bool) -> str | None:
        """The path relative to the root, or None for what is never indexed (editors'
        temp files, anything in .git, node_modules, build output...)."""
        if isinstance(path, bytes):
            path = path.decode(errors="surrogateescape")
        try:
            parts = Path(path).relative_to(self.root).parts
        except ValueError:
            return None
        if not parts or (not is_dir and is_editor_temp(parts[-1])):
            return None
        if ALWAYS_IGNORED_DIRS.intersection(parts if is_dir else parts[:-1]):
            return None
        return "/".join(parts)

    # --- the watcher's thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                batch, rescan, stopping = self._next_batch()
                if stopping and not (batch or rescan):
                    break
                try:
                    self._round(batch, rescan)
                finally:
                    self.busy = False
        finally:
            if self._mark is not None:  # start() set it before it started this thread
                unregister_watcher(self._mark)
        self.mode = "stopped"
        self._emit("stopped", f"Stopped watching {self.root}")

    def _round(self, batch: list[str], rescan: bool) -> None:
        if not self.root.is_dir() or self._emptied():
            self._unavailable()
            return
        self.control = IndexControl()
        if self._hurry.is_set():  # stopping in a hurry: no new work
            self.control.cancel()
        try:
            result = index_project(
                self.root,
                self.embedder,
                only=None if rescan else batch,
                control=self.control,
                progress=self.progress,
                catch_up_only=True,
                options=self.options,
                location=self.location,
            )
        except NotIndexed as exc:
            # Not ours to build (deleted, or never finished): wait for the user's index,
            # then catch up everything.
            if not self.unfinished:
                self.unfinished = True
                self._emit("unfinished", str(exc))
            self._retry_later()
            return
        except Exception as exc:
            if not isinstance(exc, CodeLampError):
                log.exception("re-indexing %s failed", self.root)
            self._failed(f"Re-indexing {self.root} failed: {exc}")
            return
        finally:
            self.control = None
        self._failures, self._last_error = 0, ""
        if result.cancelled and not self._stopping:
            # The user cancelled this round: catch up again at the next change, not sooner.
            with self._wake:
                self._rescan, self._held = True, True
            return
        self.unfinished = False
        self.last_update, self.last_round_s = time.time(), result.seconds
        if result.files_indexed or result.files_deleted or not rescan:
            paths = batch[0] if len(batch) == 1 else f"{len(batch)} paths"
            what = "re-scan" if rescan else paths
            self._emit("updated", f"{what}: {result.summary()}", batch, result)

    def _next_batch(self) -> tuple[list[str], bool, bool]:
        """Wait for paths that have been quiet long enough, or for a re-scan whose burst
        is over, or for the poll interval in polling mode."""
        with self._wake:
            while True:
                now = time.monotonic()
                if self._stopping:
                    batch, rescan = list(self._pending), self._rescan and not self._held
                    self._pending.clear()
                    self._rescan = False
                    self.busy = bool(batch or rescan)
                    return batch, rescan, True
                if self._rescan and not self._held and now - self._last_event >= self.quiet_s:
                    self._rescan = False
                    self._pending.clear()
                    self.busy = True
                    return [], True, False
                ready = [p for p, t in self._pending.items() if now - t >= self.quiet_s]
                if ready and not self._rescan:
                    for p in ready:
                        del self._pending[p]
                    self.busy = True
                    return ready, False, False
                if self.mode == "polling" and not self._pending and not self._rescan:
                    self._wake.wait(self.poll_s)
                    self._rescan = not self._stopping
                    continue
                if self._pending or (self._rescan and not self._held):
                    self._wake.wait(self.quiet_s / 3)
                elif not self._wake.wait(PRESENCE_S) and not self.root.is_dir():
                    # the root's own removal or unmount is not always an event
                    self.busy = True
                    return [], True, False

    def _failed(self, message: str) -> None:
        """Say it once (the same error again only counts), and wait longer each time."""
        self._failures += 1
        if message != self._last_error:
            self._last_error = message
            self._emit("error", message)
        self._retry_later(min(MAX_BACKOFF_S, self.poll_s * 2 ** (self._failures - 1)))

    def _retry_later(self, seconds: float | None = None) -> None:
        """A full re-scan after the poll interval (or the next change), losing nothing.
        Not once stopping: that round was the last try (retrying would never end while
        the cause lasts), and the next start catches up."""
        with self._wake:
            if self._stopping:
                return
            self._rescan = True
            self._last_event = time.monotonic()
        self._wait(self.poll_s if seconds is None else seconds)

    def _wait(self, seconds: float) -> None:
        with self._wake:
            if not self._stopping:
                self._wake.wait(seconds)

    def _emptied(self) -> bool:
        """An empty folder where files were indexed looks like an unmounted disk: better
        to wait than to wipe the index."""
        if self.mode == "unavailable" or self.last_update is None:
            return False
        try:
            return next(self.root.iterdir(), None) is None
        except OSError:
            return True

    def _unavailable(self) -> None:
        """Leave the index alone until the folder is back, then catch up."""
        if self.mode != "unavailable":
            self._stop_observer()
            self.mode = "unavailable"
            self._emit(
                "unavailable",
                f"{self.root} is not available; its index is kept, "
                "and watching resumes when it is back.",
            )
        while not self._stopping:
            self._wait(PRESENCE_S)
            try:
                back = self.root.is_dir() and next(self.root.iterdir(), None) is not None
            except OSError:
                back = False
            if back:
                self._start_observer()
                with self._wake:
                    self._rescan = True
                    self._last_event = 0.0
                return

    def _start_observer(self) -> None:
        observer = Observer()
        handler = _Handler(self._note)
        try:
            observer.schedule(handler, str(self.root), recursive=True)
            observer.start()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            _stop(observer)
            self.mode = "polling"
            self._emit(
                "polling",
                f"The system's file-watch limit is reached (inotify); "
                f"{self.root} is re-scanned every {self.poll_s:g} s "
                "instead. Raise fs.inotify.max_user_watches to watch it "
                "live.",
            )
            return
        self._observer = observer
        self.mode = "watching"
        self._emit("watching", f"Watching {self.root}")

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            _stop(observer)

    def _emit(
        self,
        kind: str,
        message: str,
        paths: Iterable[str] = (),
        result: IndexResult | None = None,
    ) -> None:
        try:
            self.on_event(WatchEvent(self.root, kind, message, list(paths), result))
        except Exception:
            log.exception("watch listener failed")


class _Handler(FileSystemEventHandler):
    """Hands every event to ``note``."""

    def __init__(self, note: Callable[[FileSystemEvent], None]) -> None:
        super().__init__()
        self.note = note

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.note(event)


def _stop(observer: BaseObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join()
    except Exception:
        log.debug("observer stop failed", exc_info=True)
