"""Live re-indexing with the real observer, the real model and a real index: after each
kind of change, search answers from the files as they are now."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sample_project import make_project

from app.core.indexer import IndexOptions, index_project
from app.core.lock import writer_lock
from app.core.search import Searcher
from app.core.storage import ProjectStore
from app.core.watcher import ProjectWatcher, WatchEvent

pytestmark = pytest.mark.slow

NEW_FUNCTION = '''
def reconcile_ledger_balances(ledger):
    """Sum the ledger's entries and compare them with the stored balance."""
    total = sum(entry.amount for entry in ledger.entries)
    return total == ledger.balance
'''


class Recorder:
    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self.changed = threading.Condition()

    def __call__(self, event: WatchEvent) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def wait_for(self, predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; events: {[e.message for e in self.events]}"
                self.changed.wait(left)


@pytest.fixture
def project(tmp_path, embedder):
    root = make_project(tmp_path / "demo")
    index_project(root, embedder)
    return root


@pytest.fixture
def watch(project, embedder):
    watchers = []

    def start(**options) -> tuple[ProjectWatcher, Recorder]:
        recorder = Recorder()
        watcher = ProjectWatcher(project, embedder, recorder, **options)
        watcher.start()
        watchers.append(watcher)
        recorder.wait_for(lambda ev: any(e.kind in ("watching", "polling") for e in ev))
        settle(watcher)
        return watcher, recorder

    yield start
    for watcher in watchers:
        watcher.stop(flush=False, timeout=30)


def settle(watcher: ProjectWatcher, timeout: float = 30.0) -> None:
    """Wait until nothing is pending and no round is running."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if watcher.pending == 0 and not watcher.busy:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 3 * watcher.quiet_s:
                return
        else:
            quiet_since = None
        time.sleep(0.05)
    raise AssertionError("the watcher did not settle")


def indexed_paths(root: Path) -> set[str]:
    return set(ProjectStore.open(root).indexed_paths())


def top_paths(root: Path, embedder, query: str, mode: str = "hybrid") -> list[str]:
    searcher = Searcher(ProjectStore.open(root), embedder)
    return [r.path for r in searcher.search(query, k=3, mode=mode)]


def chunk_rows(root: Path) -> list[tuple]:
    rows = ProjectStore.open(root).chunks().scan(["path", "start_line", "content_hash"])
    rows = rows.to_pylist()
    return sorted((r["path"], r["start_line"], r["content_hash"]) for r in rows)


def test_create_modify_delete(project, watch, embedder):
    watcher, _ = watch()
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    settle(watcher)
    assert top_paths(project, embedder, "reconcile ledger balances")[0] == "src/ledger.py"

    (project / "src" / "ledger.py").write_text(NEW_FUNCTION.replace("ledger", "journal"))
    settle(watcher)
    assert "reconcile_journal_balances" in (
        Searcher(ProjectStore.open(project), embedder).search("reconcile journal", k=1)[0].text
    )

    (project / "src" / "ledger.py").unlink()
    settle(watcher)
    assert "src/ledger.py" not in indexed_paths(project)
    assert "src/ledger.py" not in top_paths(project, embedder, "reconcile journal balances")


def test_the_options_apply_but_a_new_chunk_limit_waits_for_a_reindex(project, watch, embedder):
    """The window's watchers get the settings' options; a chunk limit changed there applies
    when the user re-indexes, so the watcher keeps catching up the index as it was built."""
    options = IndexOptions(extra_ignores=("src/scratch.py",), chunk_tokens=64)
    watcher, recorder = watch(options=options)
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    (project / "src" / "scratch.py").write_text(NEW_FUNCTION)
    settle(watcher)
    assert {"src/ledger.py", "src/scratch.py"} & indexed_paths(project) == {"src/ledger.py"}
    assert "unfinished" not in recorder.kinds()


def test_rename_and_folder_move_reuse_vectors(project, watch, embedder):
    watcher, recorder = watch()
    (project / "src" / "upload.py").rename(project / "src" / "uploads.py")
    settle(watcher)
    assert "src/uploads.py" in indexed_paths(project)
    assert "src/upload.py" not in indexed_paths(project)
    assert top_paths(project, embedder, "retry failed uploads")[0] == "src/uploads.py"

    (project / "src").rename(project / "source")
    settle(watcher)
    paths = indexed_paths(project)
    assert not any(p.startswith("src/") for p in paths)
    assert "source/uploads.py" in paths and "source/config.py" in paths
    updates = [e.result for e in recorder.events if e.kind == "updated"]
    assert updates and all(r.chunks_embedded == 0 for r in updates)  # the cache had them all


def test_atomic_saves_and_editor_temp_files(project, watch, embedder):
    watcher, recorder = watch()
    target = project / "src" / "config.py"
    # vim: write the backup and the "4913" probe, then the new file, then remove them
    (project / "src" / "4913").write_text("")
    (project / "src" / "4913").unlink()
    shutil.copy(target, project / "src" / "config.py~")
    (project / "src" / ".config.py.swp").write_bytes(b"\0" * 64)
    # VS Code / JetBrains: write a temp file, then rename it over the original
    temp = project / "src" / "config.py___jb_tmp___"
    temp.write_text(target.read_text() + NEW_FUNCTION)
    os.replace(temp, target)
    settle(watcher)
    paths = indexed_paths(project)
    assert not {"src/config.py~", "src/.config.py.swp", "src/4913"} & paths
    assert top_paths(project, embedder, "reconcile ledger balances")[0] == "src/config.py"
    noise = [p for e in recorder.events for p in e.paths if "~" in p or "swp" in p]
    assert noise == []


def test_burst_is_one_rescan_and_matches_a_fresh_index(
    project, watch, embedder, tmp_path, monkeypatch
):
    watcher, recorder = watch(burst=50)
    before = len([e for e in recorder.events if e.kind == "updated"])
    gen = project / "generated"
    gen.mkdir()
    for i in range(400):  # like a branch switch: hundreds of files at once
        (gen / f"mod_{i:03d}.py").write_text(f"def handler_{i}(x):\n    return x + {i}\n")
    shutil.rmtree(project / "web")
    settle(watcher, timeout=120)
    updates = [e for e in recorder.events if e.kind == "updated"][before:]
    assert len(updates) <= 3, [e.message for e in updates]
    assert any(not e.paths for e in updates)  # a re-scan, not 400 single updates
    assert watcher.pending == 0

    watched = chunk_rows(project)
    fresh_home = tmp_path / "fresh-home"
    monkeypatch.setenv("CODELAMP_HOME", str(fresh_home))
    index_project(project, embedder)
    assert chunk_rows(project) == watched


def test_folder_disappears_and_comes_back(project, watch, embedder, tmp_path):
    watcher, recorder = watch()
    parked = tmp_path / "parked"
    project.rename(parked)
    recorder.wait_for(lambda ev: any(e.kind == "unavailable" for e in ev))
    assert "src/upload.py" in indexed_paths(project)  # the index is kept
    parked.rename(project)
    recorder.wait_for(lambda ev: [e.kind for e in ev].count("watching") >= 2, timeout=60)
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    settle(watcher)
    assert top_paths(project, embedder, "reconcile ledger balances")[0] == "src/ledger.py"


def test_watch_limit_falls_back_to_polling(project, watch, embedder, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr("watchdog.observers.Observer.schedule", full)
    watcher, recorder = watch(poll_s=0.5)
    assert watcher.mode == "polling"
    assert any("max_user_watches" in e.message for e in recorder.events)
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    recorder.wait_for(lambda ev: any(e.kind == "updated" for e in ev))
    settle(watcher)
    assert top_paths(project, embedder, "reconcile ledger balances")[0] == "src/ledger.py"


def test_stop_flushes_pending_changes(project, embedder):
    watcher = ProjectWatcher(project, embedder, lambda e: None, quiet_s=5.0)
    watcher.start()
    settle_initial = time.monotonic() + 30
    while watcher.busy or watcher.pending:
        assert time.monotonic() < settle_initial
        time.sleep(0.05)
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    deadline = time.monotonic() + 10
    while not watcher.pending:  # the event arrived, and waits for 5 s of quiet
        assert time.monotonic() < deadline
        time.sleep(0.02)
    watcher.stop(flush=True, timeout=60)
    assert "src/ledger.py" in indexed_paths(project)


def test_second_writer_waits_for_the_lock(project, embedder):
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    phases = []
    with writer_lock(project):
        done = threading.Event()
        worker = threading.Thread(
            target=lambda: (
                index_project(project, embedder, progress=lambda p: phases.append(p.phase)),
                done.set(),
            )
        )
        worker.start()
        time.sleep(1.0)
        assert not done.is_set() and phases == ["waiting"]
    worker.join(60)
    assert done.is_set() and "src/ledger.py" in indexed_paths(project)


def test_cli_watch_logs_updates_and_stops_cleanly_on_sigterm(project, default_model):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "watch", str(project), "--model", str(default_model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not any("Watching" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, lines
        time.sleep(0.1)
    time.sleep(1.0)
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    while not any("src/ledger.py" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, lines
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, lines
    reader.join(5)
    proc.stdout.close()
    assert any("Stopped watching" in line for line in lines), lines
    assert "src/ledger.py" in indexed_paths(project)


def test_searching_while_the_watcher_writes_never_sees_damage(project, watch, embedder):
    """Each update compacts the index and deletes old versions' files; a searcher reading
    an older version catches up instead of calling the index damaged."""
    watcher, _ = watch(quiet_s=0.05)
    searcher = Searcher(ProjectStore.open(project), embedder)
    errors, searches, stop = [], [0], threading.Event()

    def search_constantly() -> None:
        while not stop.is_set():
            try:
                searcher.search("retry failed uploads", k=5)
                searches[0] += 1
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    thread = threading.Thread(target=search_constantly)
    thread.start()
    for i in range(8):
        (project / "src" / f"ledger_{i}.py").write_text(NEW_FUNCTION)
        time.sleep(0.4)
    settle(watcher)
    stop.set()
    thread.join(30)
    assert errors == [] and searches[0] > 10
    assert "src/ledger_7.py" in indexed_paths(project)


def test_a_cancelled_first_index_is_never_finished_by_the_watcher(tmp_path, embedder):
    """Cancel means cancel: the watcher says the index is unfinished and leaves it."""
    from app.core.indexer import IndexControl
    from app.core.project import project_status

    root = tmp_path / "big"
    for i in range(30):
        (root / f"m{i:02d}").mkdir(parents=True)
        (root / f"m{i:02d}" / "mod.py").write_text(f"def f_{i}(x):\n    return x + {i}\n")
    control = IndexControl()
    result = index_project(
        root, embedder, control=control, progress=lambda p: p.files_done >= 3 and control.cancel()
    )
    assert result.cancelled
    before = project_status(root)
    assert before["state"] == "unfinished"

    recorder = Recorder()
    watcher = ProjectWatcher(root, embedder, recorder, quiet_s=0.1, poll_s=0.5)
    watcher.start()
    try:
        recorder.wait_for(lambda ev: any(e.kind == "unfinished" for e in ev))
        (root / "m00" / "mod.py").write_text("def changed(x):\n    return x\n")
        time.sleep(2.0)  # several poll intervals and a change
        after = project_status(root)
        assert after["state"] == "unfinished" and after["files"] == before["files"]
        assert recorder.kinds().count("unfinished") == 1, "said once, not every retry"
        # Once the user finishes the index, the same watcher catches up by itself.
        index_project(root, embedder)
        (root / "m01" / "mod.py").write_text(NEW_FUNCTION)
        recorder.wait_for(lambda ev: any(e.kind == "updated" for e in ev))
    finally:
        watcher.stop(flush=False, timeout=30)
    assert top_paths(root, embedder, "reconcile the ledger balances")[0] == "m01/mod.py"


def test_catch_up_reports_progress_like_an_index(project, embedder):
    """Changes made while nobody watched are caught up with visible progress."""
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    seen = []
    recorder = Recorder()
    watcher = ProjectWatcher(project, embedder, recorder, progress=seen.append)
    watcher.start()
    try:
        recorder.wait_for(lambda ev: any(e.kind == "updated" for e in ev))
    finally:
        watcher.stop(flush=False, timeout=30)
    phases = {p.phase for p in seen}
    assert {"scanning", "indexing", "done"} <= phases
    size = (project / "src" / "ledger.py").stat().st_size
    assert any(p.phase == "indexing" and p.files_total == 1 and p.bytes_total == size for p in seen)
    assert any(p.current == "src/ledger.py" for p in seen)
    assert [p.fraction for p in seen if p.phase == "done"][-1] == 1.0


def test_an_index_deleted_under_the_watcher_is_not_rebuilt_from_one_file(project, embedder):
    """Something deleted the index: the watcher says so and writes nothing, instead of
    starting a new index that holds only the next saved file."""
    from app.core.project import project_dir

    recorder = Recorder()
    watcher = ProjectWatcher(project, embedder, recorder, quiet_s=0.1, poll_s=0.5)
    watcher.start()
    try:
        recorder.wait_for(lambda ev: any(e.kind == "watching" for e in ev))
        settle(watcher)
        shutil.rmtree(project_dir(project))
        (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
        recorder.wait_for(lambda ev: any(e.kind == "unfinished" for e in ev))
        time.sleep(1.0)
        assert not project_dir(project).exists()
    finally:
        watcher.stop(flush=False, timeout=30)


def test_a_failing_round_is_reported_once_and_retried_ever_more_slowly(
    project, embedder, monkeypatch
):
    """A home that cannot be written used to print an error line per retry, forever."""
    from app.core import watcher as watcher_module
    from app.core.errors import CodeLampError

    calls = []

    def failing(*args, **kwargs):
        calls.append(time.monotonic())
        raise CodeLampError("CodeLamp needs to write to /read-only")

    monkeypatch.setattr(watcher_module, "index_project", failing)
    recorder = Recorder()
    watcher = ProjectWatcher(project, embedder, recorder, quiet_s=0.05, poll_s=0.1)
    watcher.start()
    try:
        time.sleep(2.0)
    finally:
        watcher.stop(flush=False, timeout=30)
    assert recorder.kinds().count("error") == 1
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert 2 <= len(calls) <= 6 and all(
        later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)
    )
