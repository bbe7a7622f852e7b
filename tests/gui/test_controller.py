"""The app's controller without widgets, with the real model and real indexes: removing,
switching the model and shutting down never wait on the GUI thread, and a watcher's
catch-up is shown, pausable and cancellable like an index."""

from __future__ import annotations

import time

import pytest
from sample_project import make_project
from window_helpers import Heartbeat

from app.core.embedder import Embedder
from app.core.indexer import index_project
from app.core.project import project_dir
from app.gui.controller import Controller
from app.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def controller(qtbot, default_model):
    c = Controller(Settings.load())
    yield c
    if not c.done:
        c.shutdown()
        qtbot.waitUntil(lambda: c.done, timeout=120_000)


def embedding(c: Controller, seen: list) -> bool:
    """The index run is embedding (``seen``: the progress reports so far)."""
    return c.indexing is not None and any(p.chunks_embedded for p in seen)


def reports(c: Controller) -> list:
    seen: list = []
    c.progress.connect(lambda _root, p: seen.append(p))
    return seen


def test_remove_during_indexing_returns_at_once_and_finishes_in_the_background(
    qtbot, controller, stdlib_copy
):
    root = str(stdlib_copy)
    removed: list[str] = []
    controller.project_removed.connect(removed.append)
    seen = reports(controller)
    controller.add(root)
    qtbot.waitUntil(lambda: embedding(controller, seen), timeout=120_000)
    with Heartbeat() as beat:
        started = time.perf_counter()
        controller.remove(root)
        took = time.perf_counter() - started
        assert "removing" in controller.line(root)
        qtbot.waitUntil(lambda: removed == [root], timeout=120_000)
    assert took < 0.1, f"remove() took {took * 1000:.0f} ms"
    assert beat.longest_ms < 100, f"the GUI thread stalled {beat.longest_ms:.0f} ms"
    assert controller.indexing is None and root not in controller.settings.projects
    assert not project_dir(stdlib_copy).exists()
    assert Settings.load().projects == []


def test_remove_while_the_watcher_catches_up(qtbot, controller, default_model, stdlib_copy):
    """The reported freeze: Remove while the watcher is busy."""
    with Embedder(default_model) as embedder:
        index_project(stdlib_copy, embedder)
    for path in sorted(stdlib_copy.rglob("*.py"))[:40]:  # changed while the app was closed
        path.write_text(path.read_text() + "\n\ndef added_later():\n    return 42\n")
    root = str(stdlib_copy)
    settings = controller.settings
    settings.projects.append(root)
    settings.save()
    progress: list[object] = []
    controller.progress.connect(lambda r, p: progress.append(p))
    removed: list[str] = []
    controller.project_removed.connect(removed.append)
    controller.restore()
    qtbot.waitUntil(lambda: controller.catching_up == root, timeout=60_000)
    qtbot.waitUntil(lambda: any(p.phase == "indexing" for p in progress), timeout=60_000)
    assert controller.active_control() is not None  # what Pause and Cancel act on
    assert controller.line(root) == "updating…"
    with Heartbeat() as beat:
        started = time.perf_counter()
        controller.remove(root)
        took = time.perf_counter() - started
        qtbot.waitUntil(lambda: removed == [root], timeout=120_000)
    assert took < 0.1 and beat.longest_ms < 100, (took, beat.longest_ms)
    assert not project_dir(stdlib_copy).exists() and not controller.watch_hub.watchers


def test_a_watchers_catch_up_can_be_paused_and_cancelled(
    qtbot, controller, default_model, stdlib_copy
):
    with Embedder(default_model) as embedder:
        index_project(stdlib_copy, embedder)
    for path in sorted(stdlib_copy.rglob("*.py"))[:60]:
        path.write_text(path.read_text() + "\n\ndef added_later():\n    return 42\n")
    root = str(stdlib_copy)
    controller.settings.projects.append(root)
    controller.restore()
    qtbot.waitUntil(lambda: controller.active_control() is not None, timeout=60_000)
    controller.toggle_pause()
    assert controller.active_control().paused
    controller.toggle_pause()
    assert not controller.active_control().paused
    controller.cancel()
    qtbot.waitUntil(lambda: controller.catching_up is None, timeout=60_000)
    assert root in controller.watch_hub.watchers  # cancelled the round, not the watching


def test_shutdown_during_indexing_never_waits_and_stops_everything(
    qtbot, default_model, stdlib_copy
):
    c = Controller(Settings.load())
    seen = reports(c)
    c.add(str(stdlib_copy))
    qtbot.waitUntil(lambda: embedding(c, seen), timeout=120_000)
    with Heartbeat() as beat:
        started = time.perf_counter()
        c.shutdown()
        took = time.perf_counter() - started
        qtbot.waitUntil(lambda: c.done, timeout=120_000)
    assert took < 0.1 and beat.longest_ms < 100, (took, beat.longest_ms)
    assert not c.index_thread.isRunning() and not c.engine_thread.isRunning()
    assert c.gate.embedder is None


def test_switching_the_model_while_watching_never_waits(
    qtbot, controller, default_model, base_model, tmp_path
):
    project = make_project(tmp_path / "demo")
    root = str(project)
    controller.add(root)
    qtbot.waitUntil(lambda: root in controller.watch_hub.watchers, timeout=120_000)
    old = controller.gate
    controller.settings.model_path = str(base_model)
    with Heartbeat() as beat:
        started = time.perf_counter()
        controller.switch_model()
        took = time.perf_counter() - started
        qtbot.waitUntil(lambda: old.embedder is None, timeout=60_000)  # freed in the end
    assert took < 0.1 and beat.longest_ms < 100, (took, beat.longest_ms)
    assert controller.gate is not old and not controller.watch_hub.watchers
