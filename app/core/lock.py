"""One writer per project, across processes and within one: the GUI, `codelamp watch` and
`codelamp index` can all point at the same folder without corrupting its index.

Two layers:

* within this process, a table of held projects (the app's indexer and its watcher are
  two threads of one process, and an OS file lock would not tell them apart);
* across processes, an OS file lock (``flock`` / ``msvcrt.locking``) on a file outside the
  index folder, so rebuilding or forgetting the index never deletes a held lock. The OS
  releases it when the holder dies, so a killed process never leaves a project locked.

A named store (``--store``, app/core/location.py) is locked by its URI instead of a
project root. A local lock cannot reach other machines: a shared store has one writing
machine.

The lock file records who holds it (command, activity, pid, since when), so a message
can say "codelamp watch (pid 4242) has been updating /src/app since 10:41:07" instead of
"another process".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app import paths
from app.core.errors import CodeLampError

POLL_S = 0.2
_role = "CodeLamp"  # what this process is, in lock messages; set by the CLI and the app


class IndexBusy(CodeLampError):
    """Another process, or other work in this one, is writing this project's index."""


@dataclass(frozen=True)
class Holder:
    command: str  # "codelamp watch", "the CodeLamp app", ...
    activity: str  # "indexing", "watching", "deleting"
    pid: int
    since: float
    this_process: bool = False

    def describe(self, root: Path) -> str:
        """E.g. "codelamp watch (pid 4242) has been watching /src/app since 10:41:07"."""
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        who = (
            f"this process ({self.command})"
            if self.this_process
            else f"{self.command} (pid {self.pid})"
        )
        return f"{who} has been {self.activity} {root} since {when}"


def set_role(command: str) -> None:
    """Name this process in other processes' lock messages, e.g. "codelamp watch"."""
    global _role
    _role = command


def lock_path(root: Path, key: str | None = None) -> Path:
    """The lock file of ``root``'s own index, or of the store named by ``key``."""
    return paths.ensure(paths.data_dir() / "locks") / f"{key or paths.project_key(root)}.lock"


_marks = itertools.count()  # tells apart the watchers of one process
_held: dict[str, Holder] = {}  # lock file -> holder, for locks this process holds
_held_changed = threading.Condition()


def _busy_message(root: Path, holder: Holder | None) -> str:
    who = holder.describe(root) if holder else f"another CodeLamp process is writing {root}"
    return f"Busy: {who}. Try again when it has finished."


@contextmanager
def writer_lock(
    root: Path,
    *,
    wait: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
    on_wait: Callable[[str], None] | None = None,
    activity: str = "indexing",
    key: str | None = None,
) -> Iterator[bool]:
    """Hold the project's writer lock for the ``with`` block; yields False (and holds
    nothing) when ``cancelled()`` turned true while waiting. Without ``wait``, a held lock
    raises :class:`IndexBusy`. ``on_wait`` is told once, with who holds it. ``key``: the
    lock of a named store (:attr:`Location.key`) rather than of ``root``'s own index."""
    path = lock_path(root, key)
    key = str(path)
    told = False

    def blocked(holder: Holder | None) -> bool:
        """Raise, tell, or report that the wait was cancelled (True)."""
        nonlocal told
        if not wait:
            raise IndexBusy(_busy_message(root, holder))
        if on_wait and not told:
            who = holder.describe(root) if holder else f"another CodeLamp process ({root})"
            on_wait(f"Waiting for its turn: {who}…")
            told = True
        return cancelled()

    me = None
    with _held_changed:
        while key in _held:
            if blocked(_held[key]):
                break
            _held_changed.wait(POLL_S)
        else:
            me = Holder(_role, activity, os.getpid(), time.time(), this_process=True)
            _held[key] = me
    if me is None:
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while not _try_lock(fd):
                if blocked(_read_holder(fd)):
                    yield False
                    return
                time.sleep(POLL_S)
            try:
                _record_holder(fd, me)
                yield True
            finally:
                _unlock(fd)
        finally:
            os.close(fd)
    finally:
        with _held_changed:
            del _held[key]
            _held_changed.notify_all()


def holder_of(root: Path) -> Holder | None:
    """Who holds the project's writer lock now, or None; never blocks."""
    path = lock_path(root)
    with _held_changed:
        if (mine := _held.get(str(path))) is not None:
            return mine
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if _try_lock(fd):
            _unlock(fd)
            return None
        return _read_holder(fd) or Holder("another CodeLamp process", "indexing", 0, time.time())
    finally:
        os.close(fd)


def claim_watching(root: Path) -> int | None:
    """Become the one process among those that share a project's index (``codelamp mcp``
    servers) that keeps it fresh: an OS lock held until :func:`release_watching` or the
    process ends. Returns its file descriptor, or None when another holds it (the caller
    then only reads, and may try again later)."""
    fd = os.open(lock_path(root).with_suffix(".watching"), os.O_RDWR | os.O_CREAT, 0o644)
    if _try_lock(fd):
        return fd
    os.close(fd)
    return None


def release_watching(fd: int) -> None:
    _unlock(fd)
    os.close(fd)


def register_watcher(root: Path) -> Path:
    """Mark the project as watched, between the watcher's rounds too (it holds the writer
    lock only during a round): deleting its index meanwhile would leave the watcher
    rebuilding a one-file index. One small file per watcher, named by pid and process
    start time, so a killed watcher's mark is recognised as stale. Returns the mark, for
    :func:`unregister_watcher`."""
    folder = paths.ensure(paths.data_dir() / "locks" / f"{lock_path(root).stem}.watchers")
    me = Holder(_role, "watching", os.getpid(), time.time())
    mark = folder / f"{me.pid}-{_started(me.pid)}-{next(_marks)}.json"
    with contextlib.suppress(OSError):  # a full disk: watching works, forget cannot see it
        mark.write_text(
            json.dumps(
                {"command": me.command, "activity": me.activity, "pid": me.pid, "since": me.since}
            ),
            encoding="utf-8",
        )
    return mark


def unregister_watcher(mark: Path) -> None:
    with contextlib.suppress(OSError):
        mark.unlink(missing_ok=True)


def watchers_of(root: Path) -> list[Holder]:
    """The live watchers of a project (stale marks of dead processes are removed)."""
    folder = paths.data_dir() / "locks" / f"{lock_path(root).stem}.watchers"
    found = []
    for mark in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        pid, started = (int(x) for x in mark.stem.split("-")[:2])
        if _started(pid) != started:
            mark.unlink(missing_ok=True)
            continue
        try:
            data = json.loads(mark.read_text(encoding="utf-8"))
            found.append(
                Holder(
                    data["command"],
                    data["activity"],
                    pid,
                    data["since"],
                    this_process=pid == os.getpid(),
                )
            )
        except (OSError, ValueError, KeyError):
            continue
    return found


def _started(pid: int) -> int:
    """When process ``pid`` started (to tell it from a later process with its pid), 0 when
    there is none."""
    import psutil

    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except (psutil.Error, OSError):
        return 0


def _read_holder(fd: int) -> Holder | None:
    """What the holder wrote into the lock file; None when unreadable (it may be between
    taking the lock and writing it)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return Holder(
            str(data["command"]), str(data["activity"]), int(data["pid"]), float(data["since"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record_holder(fd: int, me: Holder) -> None:
    data = json.dumps(
        {"command": me.command, "activity": me.activity, "pid": me.pid, "since": me.since}
    ).encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:  # a full disk: the lock still works, only the message is vaguer
        pass


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        # The lock covers a byte far past the record, so the record stays readable.
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
