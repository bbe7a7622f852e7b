"""The writer lock: one writer per project, and messages that name the real holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core.lock import IndexBusy, holder_of, writer_lock

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from app.core.lock import set_role, writer_lock
set_role("codelamp watch")
with writer_lock(Path(sys.argv[1]), activity="watching"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder_process(tmp_path):
    """Another process holding the project's lock, as `codelamp watch` would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_lock_held_by_this_process_is_not_called_another_process(tmp_path):
    held, release = threading.Event(), threading.Event()

    def watcher_round():
        with writer_lock(tmp_path, activity="watching"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=watcher_round)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(IndexBusy) as busy, writer_lock(tmp_path, wait=False):
            pass
        message = str(busy.value)
        assert "this process" in message and "watching" in message
        assert "another" not in message and f"pid {os.getpid()}" not in message
    finally:
        release.set()
        thread.join()


def test_a_second_writer_in_this_process_waits_its_turn(tmp_path):
    order, told = [], []
    first_in = threading.Event()

    def first():
        with writer_lock(tmp_path):
            first_in.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(10)
    with writer_lock(tmp_path, on_wait=told.append) as locked:
        assert locked
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert told and "this process" in told[0]


def test_cancel_while_waiting_for_the_lock_holds_nothing(tmp_path):
    cancel = threading.Event()
    with writer_lock(tmp_path):
        threading.Timer(0.3, cancel.set).start()
        with writer_lock(tmp_path, cancelled=cancel.is_set) as locked:
            assert locked is False
    with writer_lock(tmp_path, wait=False) as locked:  # released everywhere
        assert locked


def test_a_live_holder_is_named_with_its_command_pid_and_start(tmp_path, holder_process):
    with pytest.raises(IndexBusy) as busy, writer_lock(tmp_path, wait=False):
        pass
    message = str(busy.value)
    assert "codelamp watch" in message and f"pid {holder_process.pid}" in message
    assert "since" in message and "watching" in message
    holder = holder_of(tmp_path)
    assert holder is not None and holder.pid == holder_process.pid


def test_a_lock_left_by_a_killed_process_is_taken_over_at_once(tmp_path, holder_process):
    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait()
    started = time.monotonic()
    with writer_lock(tmp_path, wait=False) as locked:
        assert locked
    assert time.monotonic() - started < 1.0
    assert holder_of(tmp_path) is None
