"""The real window, offscreen, with the real model and a real index."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl, qInstallMessageHandler
from PySide6.QtGui import QDropEvent
from tiny_gguf import write_tiny_gguf
from window_helpers import GB, Heartbeat, close, wait_indexed

from app.core.chunking import MIN_CHUNK_TOKENS
from app.core.models import human_size
from app.core.storage import ProjectStore
from app.gui.dialogs import SettingsDialog
from app.gui.main_window import MainWindow
from app.settings import Settings

pytestmark = pytest.mark.slow


def test_starts_without_loading_the_model_and_shows_what_to_do(window):
    assert window.controller.gate.embedder is None
    assert "Add a folder to start" in window.search.empty.text()
    assert window.status.memory.text().startswith("RAM ")


def test_add_index_search_select_preview(qtbot, window, project):
    assert window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    assert window.controller.statuses[str(project)]["files"] >= 5
    assert "files" in window.projects.list.currentItem().text()

    qtbot.keyClicks(window.search.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.search.results.result_count() > 0, timeout=60_000)
    first = window.search.results.current_result()
    assert first.path == "src/upload.py" and "retry_failed_upload" in first.symbol

    qtbot.waitUntil(lambda: window.search.preview.path is not None)
    assert window.search.preview.path == project / "src" / "upload.py"
    assert window.search.preview.marked_lines() == (first.start_line, first.end_line)
    assert "def retry_failed_upload" in window.search.preview.toPlainText()

    window.search.results.setFocus()
    qtbot.keyClick(window.search.results, Qt.Key.Key_Down)
    assert window.search.results.current_result() == window.search.results.all_results()[1]
    current = window.search.results.current_result()
    assert window.search.preview.marked_lines() == (current.start_line, current.end_line)

    window.search.copy_location()
    from PySide6.QtGui import QGuiApplication

    assert (
        QGuiApplication.clipboard()
        .text()
        .endswith(
            f"{window.search.results.current_result().path}:{window.search.results.current_result().start_line}"
        )
    )

    window.escape_action.trigger()
    assert window.search.query.text() == "" and window.search.results.result_count() == 0
    assert window.search.query.hasFocus() or not window.isActiveWindow()


def test_exact_words_mode_and_filters(qtbot, window, project):
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    window.search.mode.setCurrentIndex(2)  # exact words
    window.search.path_glob.setText("*.go")
    qtbot.keyClicks(window.search.query, "password")
    window.search.search_now()
    qtbot.waitUntil(lambda: window.search.results.result_count() > 0, timeout=30_000)
    paths = {r.path for r in window.search.results.all_results()}
    assert paths == {"src/auth.go"}


def test_gui_thread_never_stalls_while_indexing(qtbot, window, stdlib_copy):
    """A 10 ms heartbeat on the GUI thread while a real folder is indexed with the model."""
    window.add_project(str(stdlib_copy))
    qtbot.waitUntil(lambda: window.status.progress.maximum() > 1, timeout=60_000)  # embedding
    with Heartbeat() as beat:
        wait_indexed(qtbot, window, stdlib_copy, timeout=600_000)
    assert len(beat.gaps) > 100
    assert beat.longest_ms < 100, f"longest stall {beat.longest_ms:.0f} ms"


def test_remove_during_indexing_never_freezes_the_window(
    qtbot, window, stdlib_copy, warnings_shown
):
    """The reported freeze: Remove while work runs. It says "removing…" at once, and the
    project goes when its work has stopped."""
    window.add_project(str(stdlib_copy))
    qtbot.waitUntil(lambda: window_is_embedding(window), timeout=60_000)
    with Heartbeat() as beat:
        qtbot.mouseClick(window.projects.remove_button, Qt.MouseButton.LeftButton)
        assert "removing" in window.projects.list.currentItem().text()
        assert not window.projects.remove_button.isEnabled()
        qtbot.waitUntil(lambda: window.projects.list.count() == 0, timeout=120_000)
    assert beat.longest_ms < 100, f"longest stall {beat.longest_ms:.0f} ms"
    assert warnings_shown[-1].startswith("Remove project: Remove ")
    assert window.controller.indexing is None and window.settings.projects == []


def test_memory_gauge_reacts_and_critical_pauses_indexing(
    qtbot, window, memory, stdlib_copy, warnings_shown
):
    memory.set_used(50)
    window.status.memory.refresh()
    assert window.status.memory.level == "normal"
    expected = f"RAM {human_size(300 << 20)} · {human_size(12 * GB)} free"
    assert window.status.memory.text() == expected
    assert "pressure: normal" in window.status.memory.toolTip()

    memory.set_used(90)
    window.status.memory.refresh()
    assert window.status.memory.level == "high"
    assert window.memory_warning.isVisible() and not window.memory_warning.isModal()
    window.status.memory.refresh()  # still high: no second warning
    assert window.memory_warning is not None

    window.add_project(str(stdlib_copy))
    qtbot.waitUntil(lambda: window.controller.indexer.control is not None, timeout=60_000)
    memory.set_used(97)
    window.status.memory.refresh()
    assert window.status.memory.level == "critical"
    assert window.controller.indexer.control.paused
    assert "paused" in window.status.message.text()
    memory.set_used(60)
    window.status.memory.refresh()
    assert not window.controller.indexer.control.paused
    window.controller.cancel()
    qtbot.waitUntil(lambda: window.controller.indexing is None, timeout=60_000)


def test_closing_during_indexing_is_clean(
    qtbot, default_model, warnings_shown, memory, stdlib_copy
):
    messages: list[str] = []
    previous = qInstallMessageHandler(lambda kind, ctx, msg: messages.append(msg))
    try:
        win = MainWindow(Settings.load(), memory_reader=memory)
        win.show()
        win.add_project(str(stdlib_copy))
        qtbot.waitUntil(lambda: window_is_embedding(win), timeout=60_000)
        with Heartbeat() as beat:
            win.close()
            assert win.status.message.text() == "Stopping…" and win.isVisible()
            qtbot.waitUntil(lambda: win.controller.done, timeout=120_000)
        assert not win.isVisible()
        assert beat.longest_ms < 100, f"the GUI thread stalled {beat.longest_ms:.0f} ms"
        c = win.controller
        assert not c.index_thread.isRunning() and not c.engine_thread.isRunning()
    finally:
        qInstallMessageHandler(previous)
    assert not [m for m in messages if "QThread" in m], messages
    from app.core.embedder import Embedder
    from app.core.indexer import index_project

    with Embedder(default_model) as embedder:  # the index is consistent: it resumes
        result = index_project(stdlib_copy, embedder)
    assert not result.cancelled and not result.notice
    keys = ProjectStore.open(stdlib_copy).chunks().scan(["path", "start_line"]).to_pylist()
    assert len(keys) == len({(k["path"], k["start_line"]) for k in keys})


def window_is_embedding(win: MainWindow) -> bool:
    return (
        win.controller.indexer.control is not None
        and win.status.progress.maximum() > 1
        and win.status.progress.value() >= 1
    )


def test_dropping_a_folder_adds_it_and_a_file_is_refused(
    qtbot, window, project, tmp_path, warnings_shown
):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    for target in (a_file, project):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(target))])
        event = QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        )
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
    qtbot.waitUntil(lambda: window.controller.indexing is None, timeout=60_000)
    assert any("No folder at" in w for w in warnings_shown)
    assert window.isVisible()


def test_settings_give_one_memory_figure_for_the_default_model(qtbot, window, default_model):
    """It said "~90 MB in memory" in one place and "needs ~169.6 MB" in another."""
    from app.core.memory import model_fits
    from app.core.models import inspect_model

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    info = inspect_model(default_model)
    needed = model_fits(info.file_size, info.max_tokens, info.embedding_dim)[1]
    text = dialog.model_info.text()
    assert human_size(info.file_size) in text and f"needs ~{human_size(needed)}" in text
    assert text.count("needs") == 1 and "MB in memory" not in text  # one estimate, not two


def test_settings_refuse_a_gguf_that_is_not_an_embedding_model(
    qtbot, window, tmp_path, warnings_shown
):
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
    assert window.controller.statuses[str(project)]["chunk_tokens"] == MIN_CHUNK_TOKENS


def test_index_and_search_on_an_embedding_server(
    qtbot, window, project, embedding_server, warnings_shown, monkeypatch
):
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
    assert window.controller.gate.embedder.label == f"the embedding server at {embedding_server}"
    # The server runs the default model, which is installed here: the index is its own.
    assert window.controller.statuses[str(project)]["model"].startswith("codelamp-code-v1")
    qtbot.keyClicks(window.search.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.search.results.result_count() > 0, timeout=60_000)
    assert window.search.results.current_result().path == "src/upload.py"
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


def test_without_a_usable_model_exact_words_still_work(
    qtbot, default_model, warnings_shown, memory, project, tmp_path
):
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
    qtbot.waitUntil(
        lambda: win.controller.statuses.get(str(project.resolve())) is not None, timeout=30_000
    )
    qtbot.keyClicks(win.search.query, "parse config")
    win.search.search_now()
    qtbot.waitUntil(lambda: any("could not be loaded" in w for w in warnings_shown), timeout=30_000)
    assert win.search.mode.currentData() == "lexical"  # switched, so the user can go on
    qtbot.waitUntil(lambda: win.search.results.result_count() > 0, timeout=30_000)
    assert win.search.results.current_result().path == "src/config.py"
    close(qtbot, win)


def test_projects_and_geometry_persist(qtbot, window, project):
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    window.resize(700, 500)  # within the offscreen screen, which is 800x600
    close(qtbot, window)
    again = MainWindow(Settings.load())
    qtbot.addWidget(again)
    assert again.settings.projects == [str(project.resolve())]
    assert again.projects.list.count() == 1
    assert (again.width(), again.height()) == (700, 500)
    close(qtbot, again)


def test_watching_keeps_results_fresh_and_can_be_turned_off(qtbot, window, project):
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    root = str(project.resolve())
    qtbot.waitUntil(lambda: root in window.controller.watch_hub.watchers, timeout=30_000)
    qtbot.waitUntil(lambda: window.status.watch_label.text().startswith("watching"), timeout=30_000)
    qtbot.keyClicks(window.search.query, "reconcile ledger balances")
    window.search.search_now()
    qtbot.waitUntil(lambda: window.search.results.result_count() > 0, timeout=30_000)
    assert window.search.results.current_result().path != "src/ledger.py"

    (project / "src" / "ledger.py").write_text(
        "def reconcile_ledger_balances(ledger):\n"
        "    return sum(e.amount for e in ledger.entries) == ledger.balance\n"
    )

    def first_path() -> str:
        found = window.search.results.all_results()
        return found[0].path if found else ""

    before = window.search.results.current_result()
    qtbot.waitUntil(lambda: first_path() == "src/ledger.py", timeout=30_000)
    assert window.search.results.current_result().path == before.path  # the selection stays put
    qtbot.waitUntil(lambda: "updated" in window.status.watch_label.text(), timeout=10_000)

    window.projects.watch_box.setChecked(False)
    assert root not in window.controller.watch_hub.watchers and root in window.settings.unwatched
    assert window.status.watch_label.text() == "not watching"
    window.projects.watch_box.setChecked(True)
    assert root in window.controller.watch_hub.watchers


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
    files_done = re.compile(r"Indexing stdlib: \d+% · [1-9]\d*/")
    qtbot.waitUntil(lambda: files_done.match(win.status.message.text()) is not None, timeout=60_000)
    win.controller.cancel()
    qtbot.waitUntil(
        lambda: win.controller.indexing is None and win.controller.statuses.get(root) is not None,
        timeout=60_000,
    )
    assert win.controller.statuses[root]["state"] == "unfinished"
    assert "not finished" in win.projects.list.currentItem().text()
    assert win.projects.reindex_button.text() == "Resume"
    assert "interrupted" in win.projects.info.text()
    win.search.query.setText("parse a json document")
    win.search.search_now()
    qtbot.wait(1500)
    assert not any("KeyError" in w or "Unexpected" in w for w in warnings_shown)
    assert "not finished" in win.search.empty.text() or "interrupted" in win.search.empty.text()
    qtbot.wait(1500)  # the watcher would have started by now
    assert root not in win.controller.watch_hub.watchers
    assert win.controller.statuses[root]["state"] == "unfinished"
    close(qtbot, win)

    again = MainWindow(Settings.load(), memory_reader=memory)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(
        lambda: (again.controller.statuses.get(root) or {}).get("state") == "ready", timeout=180_000
    )
    qtbot.waitUntil(lambda: root in again.controller.watch_hub.watchers, timeout=30_000)
    close(qtbot, again)


def test_open_shared_index_searchable_read_only(
    qtbot, window, s3_env, project, embedder, monkeypatch
):
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
    qtbot.waitUntil(lambda: window.controller.statuses.get(uri) is not None, timeout=30_000)
    assert window.settings.shared == [uri] and Settings.load().shared == [uri]
    assert "shared, read-only" in window.projects.list.currentItem().text()
    assert "Shared index" in window.projects.info.text()
    assert not window.projects.reindex_button.isEnabled()
    assert not window.projects.watch_box.isEnabled()
    assert window.status.watch_label.text() == "shared index: read-only"
    window.reindex_action.trigger()
    assert window.controller.indexing is None and not window.controller.watch_hub.watchers

    qtbot.keyClicks(window.search.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.search.results.result_count() > 0, timeout=60_000)
    assert window.search.results.current_result().path == "src/upload.py"
    qtbot.waitUntil(lambda: "def retry_failed_upload" in window.search.preview.toPlainText())
    if path := os.environ.get("CODELAMP_SCREENSHOT"):
        window.grab().save(path)

    window.remove_current()  # from the list only: the index stays
    qtbot.waitUntil(lambda: window.projects.list.count() == 0)
    assert window.settings.shared == []
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
    qtbot.waitUntil(lambda: window.controller.statuses.get(root) is not None, timeout=30_000)
    assert window.controller.indexing is None and not window.projects.upgrade_button.isVisible()

    qtbot.keyClicks(window.search.query, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: window.search.results.result_count() > 0, timeout=60_000)
    assert window.search.results.current_result().path == "src/upload.py"
    qtbot.waitUntil(lambda: root in window.controller.outdated_models)
    assert window.controller.outdated_models[root] == old_id
    assert window.projects.upgrade_button.isVisible()
    assert "another model" in window.projects.info.text()
    assert "another model" in window.projects.list.currentItem().text()
    assert root not in window.controller.watch_hub.watchers  # its index is not the new model's

    qtbot.mouseClick(window.projects.upgrade_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            window.controller.indexing is None
            and (window.controller.statuses.get(root) or {}).get("model") != old_id
        ),
        timeout=120_000,
    )
    assert window.controller.statuses[root]["model"] == window.controller.model_id
    assert window.controller.model_id.startswith("codelamp-code-v1")
    assert root not in window.controller.outdated_models
    assert not window.projects.upgrade_button.isVisible()
    qtbot.waitUntil(lambda: root in window.controller.watch_hub.watchers, timeout=30_000)
    close(qtbot, window)
