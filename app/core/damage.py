"""How a damaged index shows itself, and how a reader's finding outlives the reader.

LanceDB reports a damaged file as RuntimeError, OSError or ValueError, or as a Rust panic:
``RustPanic`` ("rust future panicked: unknown error") from inside its async tasks, or
pyo3's ``PanicException`` on the calling thread. The latter derives from BaseException
(``except Exception`` misses it, and the process ends in a traceback). Both are classes
of their own in each extension module, so they are recognised by name. Before any of
that, Rust's panic hook has written "thread ... panicked at ..." and a backtrace to file
descriptor 2: :func:`native_stderr_held` keeps that from the user, whose one line says
what happened and what to do.

Some damage shows only when it is read: garbage inside the vectors, or in the posting
list of one word. A reader that finds it leaves a note beside the index (:func:`note`),
so that every later open reports it and the next ``codelamp index`` rebuilds instead of
trusting checks that passed.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

NOTE_NAME = "damaged.json"
# Stored vectors are L2-normalised by the embedder (squared length 1 within ~1e-6 in
# float32); random bytes give NaN, inf or lengths far from 1.
UNIT_TOLERANCE = 1e-3

log = logging.getLogger(__name__)
_stderr_swap = threading.RLock()  # file descriptor 2 belongs to the whole process


def is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ in ("PanicException", "RustPanic")


def read_failure(exc: BaseException) -> bool:
    """The storage (LanceDB, SQLite) could not read what its files should hold."""
    return isinstance(exc, (RuntimeError, OSError, ValueError, sqlite3.DatabaseError)) or (
        is_panic(exc)
    )


def lance_detail(exc: BaseException) -> str:
    """LanceDB's message without its prefix and the Rust source locations. A panic's own
    message says nothing to a user ("unknown error", "range end index 407947195 out of
    range")."""
    if is_panic(exc):
        return "LanceDB gave up on a garbled file"
    text = str(exc).replace("lance error: ", "")
    return text.split(", /")[0][:160]


def corrupt_vectors(vectors: np.ndarray) -> int:
    """How many rows are not unit vectors, i.e. not what the embedder wrote. A finiteness
    check alone would pass most garbage: random float32 bytes are NaN or inf only about
    once in 256 values, and a huge finite one ranks first for every query."""
    squares = np.einsum("ij,ij->i", vectors, vectors)
    return int(np.count_nonzero(~(np.abs(squares - 1.0) <= UNIT_TOLERANCE)))


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
                    log.debug(
                        "stderr while reading a damaged index:\n%s", output.decode(errors="replace")
                    )


def _file_for_stderr() -> IO[bytes] | None:
    """A temporary file to hold stderr in; None without a stderr (a windowed app) or
    temporary space, when there is nothing to hold or nowhere to."""
    try:
        os.fstat(2)
        return tempfile.TemporaryFile()
    except OSError:
        return None


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


def _write_stderr(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(2, view) :]


def note(folder: Path, created: str | None, detail: str) -> None:
    """Record damage found in the index that was created at ``created`` (its id: a note
    left by a reader of an index rebuilt meanwhile must not condemn the new one)."""
    target = folder / NOTE_NAME
    try:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps({"created": created, "detail": detail}), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:  # a read-only home: the error message still says what to do
        log.debug("could not note the damage in %s", folder, exc_info=True)


def noted(folder: Path, created: str | None) -> str | None:
    """The damage noted for the index created at ``created``, if any."""
    try:
        found = json.loads((folder / NOTE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found.get("detail") if found.get("created") == created else None
