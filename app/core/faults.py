"""Named points in the indexing pipeline where the reliability suite injects faults.

The suite (tests/faults/, scripts/torture.py) runs real ``codelamp`` processes with
``CODELAMP_FAULT`` set and checks what survives:

* ``POINT:N`` or ``POINT:N:kill``: SIGKILL this process at the N-th time ``POINT`` is
  reached (a crash, a power cut, the OOM killer);
* ``POINT:N:enospc`` / ``POINT:N:erofs``: raise the OSError a full or read-only disk gives;
  ``POINT:N:enotsup``: the one a filesystem gives for an operation it does not support;
* ``count:FILE``: write how often each point was reached to FILE (JSON) at exit, so a
  test can pick its kill points among the real ones.

Unset (always, outside the suite), :func:`point` is a dictionary lookup and a return.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import signal
import threading
from collections import Counter

ENV = "CODELAMP_FAULT"
_plan = os.environ.get(ENV, "")
_hits: Counter[str] = Counter()
_guard = threading.Lock()
_target, _nth, _action, _count_file = "", 0, "kill", ""
if _plan.startswith("count:"):
    _count_file = _plan.removeprefix("count:")

    @atexit.register
    def _write_counts() -> None:
        with open(_count_file, "w", encoding="utf-8") as fh:
            json.dump(dict(_hits), fh)

elif _plan:
    _target, _n, *_rest = _plan.split(":")
    _nth, _action = int(_n), (_rest[0] if _rest else "kill")


def point(name: str) -> None:
    """Mark a place where a fault may strike (see the module docstring)."""
    if not _plan:
        return
    with _guard:
        _hits[name] += 1
        strike = name == _target and _hits[name] == _nth
    if not strike:
        return
    if _action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    code = {"enospc": errno.ENOSPC, "erofs": errno.EROFS, "enotsup": errno.ENOTSUP}[_action]
    raise OSError(code, os.strerror(code))
