"""One writer per project, across processes: the GUI, `codelamp watch` and `codelamp index`
can all point at the same folder without corrupting its index.

The lock is an OS file lock (``flock`` / ``msvcrt.locking``) on a file outside the index
folder, so rebuilding or forgetting the index never deletes a held lock. The OS releases it
when the holder dies, so a killed process never leaves a project locked.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app import paths
from app.core.errors import CodeLampError

POLL_S = 0.2


class IndexBusy(CodeLampError):
    """Another process is writing this project's index."""


def lock_path(root: Path) -> Path:
    from app.core.store import project_key

    return paths.ensure(paths.data_dir() / "locks") / f"{project_key(root)}.lock"


@contextmanager
def writer_lock(
    root: Path,
    *,
    wait: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[bool]:
    """Hold the project's writer lock for the ``with`` block; yields False (and holds
    nothing) when ``cancelled()`` turned true while waiting. Without ``wait``, a held lock
    raises :class:`IndexBusy`. ``on_wait`` is told once, with who holds it."""
    fd = os.open(lock_path(root), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = False
        while not _try_lock(fd):
            holder = _holder(fd)
            if not wait:
                raise IndexBusy(f"{root} is being indexed by another CodeLamp process "
                                f"({holder}); try again when it has finished.")  # fmt: skip
            if on_wait and not told:
                on_wait(f"Waiting for another CodeLamp process ({holder}) that is indexing "
                        f"{root}…")  # fmt: skip
                told = True
            if cancelled():
                yield False
                return
            time.sleep(POLL_S)
        try:
            _record_holder(fd)
            yield True
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":
    import msvcrt

    def _holder(fd: int) -> str:
        return "another process"  # the locked byte cannot be read from outside

    def _record_holder(fd: int) -> None:
        pass

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _holder(fd: int) -> str:
        try:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown pid"
        except OSError:
            return "unknown pid"

    def _record_holder(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
