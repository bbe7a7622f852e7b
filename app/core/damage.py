"""How a damaged index shows itself.

LanceDB reports a damaged file as RuntimeError, OSError or ValueError, or as a Rust panic:
``RustPanic`` ("rust future panicked: unknown error") from inside its async tasks, or
pyo3's ``PanicException`` on the calling thread. The latter derives from BaseException
(``except Exception`` misses it, and the process ends in a traceback). Both are classes
of their own in each extension module, so they are recognised by name. Before any of
that, Rust's panic hook has written "thread ... panicked at ..." and a backtrace to file
descriptor 2: :func:`native_stderr_held` keeps that from the user, whose one line says
what happened and what to do.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
_stderr_swap = threading.RLock()  # file descriptor 2 belongs to the whole process


def is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ in ("PanicException", "RustPanic")


def read_failure(exc: BaseException) -> bool:
    """LanceDB could not read what its files should hold."""
    return isinstance(exc, (RuntimeError, OSError, ValueError)) or is_panic(exc)


def lance_detail(exc: BaseException) -> str:
    """LanceDB's message without its prefix and the Rust source locations. A panic's own
    message says nothing to a user ("unknown error", "range end index 407947195 out of
    range")."""
    if is_panic(exc):
        return "LanceDB gave up on a garbled file"
    text = str(exc).replace("lance error: ", "")
    return text.split(", /")[0][:160]


@contextmanager
def native_stderr_held() -> Iterator[None]:
    """Hold back what is written to stderr while the index is read: passed on when the
    block succeeds, logged at debug level when it raises (then it is a Rust panic report
    or LanceDB warnings about the damage, and the error says it better).

    One thread at a time swaps the descriptor; the others' output waits in the file."""
    with _stderr_swap:
        held = _file_for_stderr()
        if held is None:
            yield
            return
        with held:
            saved = os.dup(2)
            _flush_stderr()
            os.dup2(held.fileno(), 2)
            ok = False
            try:
                yield
                ok = True
            finally:
                _flush_stderr()
                os.dup2(saved, 2)
                os.close(saved)
                held.seek(0)
                output = held.read()
                if ok:
                    _write_stderr(output)
                elif output:
                    log.debug("stderr while reading a damaged index:\n%s",
                              output.decode(errors="replace"))  # fmt: skip


def _file_for_stderr():
    """A temporary file to hold stderr in; None without a stderr (a windowed app) or
    temporary space, when there is nothing to hold or nowhere to."""
    try:
        os.fstat(2)
        return tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    except OSError:
        return None


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


def _write_stderr(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(2, view) :]

