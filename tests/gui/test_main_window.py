"""The real window, offscreen, with the real model and a real index."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl, qInstallMessageHandler
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox
from sample_project import make_project
from tiny_gguf import write_tiny_gguf

from app.core.chunking import MIN_CHUNK_TOKENS
from app.core.memory import MemoryReading
from app.core.models import human_size
from app.core.store import ProjectStore
from app.gui.dialogs import SettingsDialog
from app.gui.main_window import MainWindow
from app.settings import Settings

pytestmark = pytest.mark.slow
GB = 1 << 30


class FakeMemory:
    """Injected readings for the gauge; normal until a test says otherwise."""

    def __init__(self) -> None:
        self.reading = MemoryReading(300 << 20, 16 * GB, 24 * GB)

    def __call__(self) -> MemoryReading:
        return self.reading

    def set_used(self, percent: float) -> None:
        self.reading = MemoryReading(300 << 20, int(24 * GB * (1 - percent / 100)), 24 * GB)


@pytest.fixture
def warnings_shown(monkeypatch) -> list[str]:
    """Modal message boxes would block an offscreen test: record them instead."""
    shown: list[str] = []

    def record(_parent, title, text, *args, **kwargs):
        shown.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Yes

    for name in ("warning", "information", "critical", "question"):
        monkeypatch.setattr(QMessageBox, name, record)
    return shown


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def window(qtbot, default_model, warnings_shown, memory):
    win = MainWindow(Settings.load(), memory_reader=memory)
    qtbot.addWidget(win)
    win.show()
    yield win
    if not win.closing:
        win.close()


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "demo")


@pytest.fixture
def stdlib_copy(tmp_path) -> Path:
    """A few hundred chunks of real code: long enough to watch the window while it indexes."""
    from bench_index import copy_packages

    return copy_packages(tmp_path / "stdlib", ["json", "http", "email"])


def wait_indexed(qtbot, win: MainWindow, root: Path, timeout: int = 180_000) -> None:
    qtbot.waitUntil(lambda: win.indexing is None and win.statuses.get(str(root)) is not None,
                    timeout=timeout)  # fmt: skip


def test_starts_without_loading_the_model_and_shows_what_to_do(window):
    assert window.gate.embedder is None
    assert "Add a folder to start" in window.empty.text()
    assert window.memory.text().startswith("RAM ")


def test_add_index_search_select_preview(qtbot, window, project):
    assert window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    assert window.statuses[str(project)]["files"] >= 5
    assert "files" in window.projects.currentItem().text()

    qtbot.keyClicks(window.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.results.count() > 0, timeout=60_000)
    first = window.results.current_result()
    assert first.path == "src/upload.py" and "retry_failed_upload" in first.symbol

    qtbot.waitUntil(lambda: window.preview.path is not None)
    assert window.preview.path == project / "src" / "upload.py"
    assert window.preview.marked_lines() == (first.start_line, first.end_line)
    assert "def retry_failed_upload" in window.preview.toPlainText()

    window.results.setFocus()
    qtbot.keyClick(window.results, Qt.Key.Key_Down)
    assert window.results.currentRow() == 1
    assert window.preview.marked_lines() == (window.results.current_result().start_line,
                                             window.results.current_result().end_line)

    window.copy_location()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text().endswith(
        f"{window.results.current_result().path}:{window.results.current_result().start_line}")

    window.escape_action.trigger()
    assert window.query.text() == "" and window.results.count() == 0
    assert window.query.hasFocus() or not window.isActiveWindow()


def test_exact_words_mode_and_filters(qtbot, window, project):
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    window.mode.setCurrentIndex(2)  # exact words
    window.path_glob.setText("*.go")
    qtbot.keyClicks(window.query, "password")
    qtbot.keyClick(window.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.results.count() > 0, timeout=30_000)
    paths = {window.results.item(i).data(Qt.ItemDataRole.UserRole).path
             for i in range(window.results.count())}  # fmt: skip
    assert paths == {"src/auth.go"}


def test_gui_thread_never_stalls_while_indexing(qtbot, window, stdlib_copy):
    """A 10 ms heartbeat on the GUI thread while a real folder is indexed with the model."""
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(beat)
    window.add_project(str(stdlib_copy))
    qtbot.waitUntil(lambda: window.progress.maximum() > 1, timeout=60_000)  # embedding
    last[0] = time.perf_counter()
    timer.start()
    wait_indexed(qtbot, window, stdlib_copy, timeout=600_000)
    timer.stop()
    assert len(gaps) > 100
    assert max(gaps) < 0.100, f"longest stall {max(gaps) * 1000:.0f} ms"


def test_memory_gauge_reacts_and_critical_pauses_indexing(qtbot, window, memory, stdlib_copy,
                                                          warnings_shown):  # fmt: skip
    memory.set_used(50)
    window.memory.refresh()
    assert window.memory.level == "normal"
    assert window.memory.text() == f"RAM {human_size(300 << 20)} · {human_size(12 * GB)} free"
    assert "pressure: normal" in window.memory.toolTip()

    memory.set_used(90)
    window.memory.refresh()
    assert window.memory.level == "high"
    assert window.memory_warning.isVisible() and not window.memory_warning.isModal()
    window.memory.refresh()  # still high: no second warning
    assert window.warned_high

    window.add_project(str(stdlib_copy))
    qtbot.waitUntil(lambda: window.indexer.control is not None, timeout=60_000)
    memory.set_used(97)
    window.memory.refresh()
    assert window.memory.level == "critical"
    assert window.indexer.control.paused
    assert "paused" in window.message.text()
    memory.set_used(60)
    window.memory.refresh()
    assert not window.indexer.control.paused
    window.cancel_work()
    qtbot.waitUntil(lambda: window.indexing is None, timeout=60_000)


def test_closing_during_indexing_is_clean(qtbot, default_model, warnings_shown,
                                         memory, stdlib_copy):  # fmt: skip
    messages: list[str] = []
    previous = qInstallMessageHandler(lambda kind, ctx, msg: messages.append(msg))
    try:
        win = MainWindow(Settings.load(), memory_reader=memory)
        win.show()
        win.add_project(str(stdlib_copy))
        qtbot.waitUntil(lambda: window_is_embedding(win), timeout=60_000)
        win.close()
        assert not win.index_thread.isRunning() and not win.engine_thread.isRunning()
    finally:
        qInstallMessageHandler(previous)
    assert not [m for m in messages if "QThread" in m], messages
    from app.core.embedder import Embedder
    from app.core.indexer import index_project

    with Embedder(default_model) as embedder:  # the index is consistent: it resumes
        result = index_project(stdlib_copy, embedder)
    assert not result.cancelled and not result.rebuilt
    table = ProjectStore.open(stdlib_copy).chunks_table()
    keys = table.to_arrow().select(["path", "start_line"]).to_pylist()
    assert len(keys) == len({(k["path"], k["start_line"]) for k in keys})


def window_is_embedding(win: MainWindow) -> bool:
    return win.indexer.control is not None and win.progress.maximum() > 1 and \
        win.progress.value() >= 1  # fmt: skip


def test_dropping_a_folder_adds_it_and_a_file_is_refused(qtbot, window, project, tmp_path,
                                                        warnings_shown):  # fmt: skip
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    for target in (a_file, project):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(target))])
        event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                           Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
        window.dropEvent(event)
    assert any("is a file" in w for w in warnings_shown)
    assert window.settings.projects == [str(project.resolve())]
    wait_indexed(qtbot, window, project)


def test_missing_folder_and_unreadable_folder(qtbot, window, project, tmp_path, warnings_shown):
    assert not window.add_project(str(tmp_path / "nowhere"))
    assert any("does not exist" in w for w in warnings_shown)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o000)
        assert not window.add_project(str(locked))
        assert any("cannot be read" in w for w in warnings_shown)
        locked.chmod(0o755)
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    shutil.rmtree(project)  # the folder disappears; re-indexing says so and nothing breaks
    window.reindex_current()
    qtbot.waitUntil(lambda: window.indexing is None, timeout=60_000)
    assert any("No folder at" in w for w in warnings_shown)
    assert window.isVisible()


def test_settings_refuse_a_gguf_that_is_not_an_embedding_model(qtbot, window, tmp_path,
                                                               warnings_shown):  # fmt: skip
    clip = write_tiny_gguf(tmp_path / "vision.gguf", arch="clip")
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.set_model_file(str(clip))
    assert dialog.model_info.text().startswith("Not usable")
    dialog.accept()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    assert window.settings.model_path == ""  # the previous model stays
    assert any("current model stays" in w for w in warnings_shown)


def test_chunk_limit_from_settings_reaches_the_index(qtbot, window, project):
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    assert dialog.chunk_tokens.text() == "the model's limit"
    dialog.chunk_tokens.setValue(20)  # below the minimum: raised to it
    dialog.accept()
    assert window.settings.max_chunk_tokens == MIN_CHUNK_TOKENS
    assert window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    assert window.statuses[str(project)]["chunk_tokens"] == MIN_CHUNK_TOKENS


def test_index_and_search_on_an_embedding_server(qtbot, window, project, embedding_server,
                                                  warnings_shown, monkeypatch):  # fmt: skip
    def fill_in(dialog):  # what the user types, then OK
        dialog.server_urls.setPlainText(embedding_server.removeprefix("http://") + "/embeddings")
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(SettingsDialog, "exec", fill_in)
    window.open_settings()
    assert window.settings.embedder_urls == [embedding_server], "kept as a base URL"
    assert Settings.load().embedder_urls == [embedding_server]
    assert window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    assert window.gate.embedder.label == f"the embedding server at {embedding_server}"
    # The server runs the default model, which is installed here: the index is its own.
    assert window.statuses[str(project)]["model"].startswith("codelamp-code-v1")
    qtbot.keyClicks(window.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.results.count() > 0, timeout=60_000)
    assert window.results.current_result().path == "src/upload.py"
    assert not warnings_shown


def test_settings_say_why_a_key_cannot_be_stored(qtbot, window, warnings_shown):
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.server_urls.setPlainText("http://gpu-box:8080/v1\nnot a url://x")
    dialog.accept()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    assert any("is not an embedding server URL" in w for w in warnings_shown)
    dialog.server_urls.setPlainText("http://gpu-box:8080/v1")
    dialog.api_key.setText("s3cret")  # the tests' keyring refuses every key
    dialog.accept()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    assert any("CODELAMP_API_KEY" in w for w in warnings_shown)
    assert window.settings.embedder_urls == []
    assert "s3cret" not in Settings.load().__repr__()


def test_without_a_usable_model_exact_words_still_work(qtbot, default_model,
                                                       warnings_shown, memory, project,
                                                       tmp_path):  # fmt: skip
    from app.core.embedder import Embedder
    from app.core.indexer import index_project

    with Embedder(default_model) as embedder:
        index_project(project, embedder)
    settings = Settings.load()
    settings.projects = [str(project.resolve())]
    settings.model_path = str(write_tiny_gguf(tmp_path / "broken.gguf", arch="clip"))
    win = MainWindow(settings, memory_reader=memory)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.statuses.get(str(project.resolve())) is not None, timeout=30_000)
    qtbot.keyClicks(win.query, "parse config")
    qtbot.keyClick(win.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: any("could not be loaded" in w for w in warnings_shown),
                    timeout=30_000)  # fmt: skip
    assert win.mode.currentData() == "lexical"  # switched, so the user can go on
    qtbot.waitUntil(lambda: win.results.count() > 0, timeout=30_000)
    assert win.results.current_result().path == "src/config.py"
    win.close()


def test_projects_and_geometry_persist(qtbot, window, project):
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    window.resize(700, 500)  # within the offscreen screen, which is 800x600
    window.close()
    again = MainWindow(Settings.load())
    qtbot.addWidget(again)
    assert again.settings.projects == [str(project.resolve())]
    assert again.projects.count() == 1
    assert (again.width(), again.height()) == (700, 500)
    again.close()


def test_watching_keeps_results_fresh_and_can_be_turned_off(qtbot, window, project):
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    root = str(project.resolve())
    qtbot.waitUntil(lambda: root in window.watch_hub.watchers, timeout=30_000)
    qtbot.waitUntil(lambda: window.watch_label.text().startswith("watching"), timeout=30_000)
    qtbot.keyClicks(window.query, "reconcile ledger balances")
    qtbot.keyClick(window.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.results.count() > 0, timeout=30_000)
    assert window.results.current_result().path != "src/ledger.py"

    (project / "src" / "ledger.py").write_text(
        "def reconcile_ledger_balances(ledger):\n"
        "    return sum(e.amount for e in ledger.entries) == ledger.balance\n")
    def first_path() -> str:
        return window.results.item(0).data(Qt.ItemDataRole.UserRole).path

    before = window.results.current_result()
    qtbot.waitUntil(lambda: window.results.count() > 0 and first_path() == "src/ledger.py",
                    timeout=30_000)  # fmt: skip
    assert window.results.current_result().path == before.path  # the selection stays put
    qtbot.waitUntil(lambda: "updated" in window.watch_label.text(), timeout=10_000)

    window.watch_box.setChecked(False)
    assert root not in window.watch_hub.watchers and root in window.settings.unwatched
    assert window.watch_label.text() == "not watching"
    window.watch_box.setChecked(True)
    assert root in window.watch_hub.watchers


def test_model_loading_can_be_cancelled_and_retried(default_model):
    from app.core.embedder import LoadCancelled
    from app.gui.workers import ModelGate
    from app.settings import Settings

    gate = ModelGate(Settings(model_path=str(default_model)))
    seen: list[float] = []

    def cancel_midway(fraction: float, _message: str) -> None:
        seen.append(fraction)
        if fraction > 0.2:
            gate.cancel.set()  # what the Cancel button does

    with pytest.raises(LoadCancelled):
        gate.ensure(cancel_midway)
    assert gate.loaded is None and 0.2 < max(seen) < 1.0
    assert gate.ensure(lambda f, m: None).loaded  # a later need loads it after all
    gate.close()


def test_cancelled_first_index_is_not_finished_then_resumes_at_start(
    qtbot, default_model, warnings_shown, memory, stdlib_copy
):
    """Cancel the first index: the project says so, search says so (no KeyError), no
    watcher finishes it behind the user's back; the next start resumes it."""
    root = str(stdlib_copy)
    win = MainWindow(Settings.load(), memory_reader=memory)
    qtbot.addWidget(win)
    win.show()
    win.add_project(root)
    files_done = re.compile(r"Indexing stdlib: [1-9]\d*/")
    qtbot.waitUntil(lambda: files_done.match(win.message.text()) is not None, timeout=60_000)
    win.cancel_work()
    qtbot.waitUntil(lambda: win.indexing is None and win.statuses.get(root) is not None,
                    timeout=60_000)  # fmt: skip
    assert win.statuses[root]["state"] == "unfinished"
    assert "not finished" in win.projects.currentItem().text()
    assert "interrupted" in win.project_info.text()
    win.query.setText("parse a json document")
    win.search_now()
    qtbot.wait(1500)
    assert not any("KeyError" in w or "Unexpected" in w for w in warnings_shown)
    assert "not finished" in win.empty.text() or "interrupted" in win.empty.text()
    qtbot.wait(1500)  # the watcher would have started by now
    assert root not in win.watch_hub.watchers
    assert win.statuses[root]["state"] == "unfinished"
    win.close()

    again = MainWindow(Settings.load(), memory_reader=memory)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: (again.statuses.get(root) or {}).get("state") == "ready",
                    timeout=180_000)  # fmt: skip
    qtbot.waitUntil(lambda: root in again.watch_hub.watchers, timeout=30_000)
    again.close()


def test_open_shared_index_searchable_read_only(qtbot, window, s3_env, project, embedder,
                                                monkeypatch):  # fmt: skip
    from app.core.indexer import index_project
    from app.core.location import Location
    from app.gui.dialogs import SharedIndexDialog

    uri = f"s3://{s3_env.bucket()}/team/demo"
    index_project(project.resolve(), embedder, location=Location.parse(uri))
    shutil.rmtree(project)  # this machine has no checkout

    def fill_in(dialog) -> int:
        dialog.uri.setText(uri + "/")
        dialog.accept()
        return 1

    monkeypatch.setattr(SharedIndexDialog, "exec", fill_in)
    window.shared_action.trigger()
    qtbot.waitUntil(lambda: window.statuses.get(uri) is not None, timeout=30_000)
    assert window.settings.shared == [uri] and Settings.load().shared == [uri]
    assert "shared, read-only" in window.projects.currentItem().text()
    assert "Shared index" in window.project_info.text()
    assert not window.reindex_button.isEnabled() and not window.watch_box.isEnabled()
    assert window.watch_label.text() == "shared index: read-only"
    window.reindex_action.trigger()
    assert window.indexing is None and not window.watch_hub.watchers

    qtbot.keyClicks(window.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.results.count() > 0, timeout=60_000)
    assert window.results.current_result().path == "src/upload.py"
    qtbot.waitUntil(lambda: "def retry_failed_upload" in window.preview.toPlainText())
    if path := os.environ.get("CODELAMP_SCREENSHOT"):
        window.grab().save(path)

    window.remove_current()  # from the list only: the index stays
    assert window.projects.count() == 0 and window.settings.shared == []
    assert s3_env.keys(uri.split("/")[2])


def test_an_index_of_the_earlier_default_keeps_working_and_the_reindex_is_offered(
    qtbot, project, base_model, warnings_shown, memory
):
    """After the upgrade to CodeLamp's own model, a project indexed with all-MiniLM-L6-v2
    (the earlier default) is searched with that model, is not watched with the new one, and
    offers the re-index."""
    from app.core.embedder import Embedder
    from app.core.indexer import index_project

    with Embedder(base_model) as old:
        index_project(project, old)
        old_id = old.model_id
    root = str(project.resolve())
    settings = Settings.load()
    settings.projects.append(root)
    settings.save()
    window = MainWindow(Settings.load(), memory_reader=memory)  # the app starts again
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.statuses.get(root) is not None, timeout=30_000)
    assert window.indexing is None and not window.upgrade_button.isVisible()

    qtbot.keyClicks(window.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.results.count() > 0, timeout=60_000)
    assert window.results.current_result().path == "src/upload.py"
    qtbot.waitUntil(lambda: root in window.outdated)
    assert window.outdated[root] == old_id
    assert window.upgrade_button.isVisible() and "another model" in window.project_info.text()
    assert "another model" in window.projects.currentItem().text()
    assert root not in window.watch_hub.watchers  # its index is not the new model's

    qtbot.mouseClick(window.upgrade_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.indexing is None
                    and (window.statuses.get(root) or {}).get("model") != old_id,
                    timeout=120_000)  # fmt: skip
    assert window.statuses[root]["model"] == window.model_id
    assert window.model_id.startswith("codelamp-code-v1")
    assert root not in window.outdated and not window.upgrade_button.isVisible()
    qtbot.waitUntil(lambda: root in window.watch_hub.watchers, timeout=30_000)
    window.close()
