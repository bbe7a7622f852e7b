"""Searching in the real window, offscreen, with the real model and a real index: the
results grouped by file, the keyboard flow, the modes and filters, and a display that
never shows something stale."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QContextMenuEvent, QTextCursor
from PySide6.QtWidgets import QApplication
from window_helpers import close, wait_indexed

from app.core.modes import SearchMode
from app.gui.main_window import MainWindow
from app.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def indexed(qtbot, window, project) -> MainWindow:
    window.add_project(str(project))
    wait_indexed(qtbot, window, project)
    return window


def search(qtbot, win: MainWindow, query: str, mode: SearchMode | None = None) -> list:
    s = win.search
    if mode is not None:
        s.mode.setCurrentIndex(s.mode.findData(mode.value))
    s.query.setText(query)
    s.search_now()
    qtbot.waitUntil(lambda: s.shown is not None and s.shown.serial == s.serial, timeout=60_000)
    return s.results.all_results()


def related(qtbot, win: MainWindow, action: QAction) -> list:
    """Trigger a Find related action; the results it brings."""
    s = win.search
    action.trigger()
    qtbot.waitUntil(
        lambda: s.shown is not None and s.shown.serial == s.serial and s.shown.related is not None,
        timeout=60_000,
    )
    return s.results.all_results()


def test_results_are_grouped_by_file_and_counted(qtbot, indexed):
    found = search(qtbot, indexed, "upload a blob and retry")
    files = {r.path for r in found}
    assert indexed.search.results.summary() == f"{len(found)} results in {len(files)} files"
    assert indexed.search.summary.text().startswith(indexed.search.results.summary())
    assert indexed.status.message.text().startswith(indexed.search.results.summary())
    top = indexed.search.results.current_result()
    assert top is found[0] and top.path == "src/upload.py"
    assert top.snippet and top.snippet_line >= top.start_line
    preview = indexed.search.preview
    qtbot.waitUntil(lambda: preview.path is not None)
    marked = {
        preview.document().findBlockByNumber(n - 1).text()[a:b].lower()
        for n, a, b in preview.highlights
    }
    assert {"upload", "retry"} <= marked  # the query's words, in the result's lines


def test_keyboard_only_type_down_down_enter_opens_the_editor(qtbot, indexed, project, tmp_path):
    """Quick Open: the keys work in the search box itself, with no Tab dance."""
    opened = tmp_path / "opened.txt"
    script = tmp_path / "editor.py"
    script.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(' '.join(sys.argv[1:]))\n")
    indexed.settings.editor_command = f"{sys.executable} {script} {{file}} {{line}}"
    s = indexed.search
    s.query.setFocus()
    qtbot.keyClicks(s.query, "load settings from a json file")
    qtbot.waitUntil(lambda: s.results.result_count() >= 3, timeout=60_000)
    found = s.results.all_results()
    assert s.results.current_result() is found[0]  # a new query selects the top result
    qtbot.keyClick(s.query, Qt.Key.Key_Down)
    qtbot.keyClick(s.query, Qt.Key.Key_Down)
    assert s.results.current_result() is found[2] and s.query.hasFocus()
    qtbot.keyClick(s.query, Qt.Key.Key_Up)
    assert s.results.current_result() is found[1]
    qtbot.keyClick(s.query, Qt.Key.Key_Return)
    qtbot.waitUntil(opened.exists, timeout=10_000)
    assert opened.read_text() == f"{project.resolve() / found[1].path} {found[1].start_line}"
    assert indexed.settings.query_history[0] == "load settings from a json file"


def test_earlier_queries_come_back_with_up_in_an_empty_box(qtbot, indexed):
    search(qtbot, indexed, "parse config")
    indexed.search.remember_query()
    indexed.search.clear()
    qtbot.keyClick(indexed.search.query, Qt.Key.Key_Up)
    popup = indexed.search.history.popup()
    assert popup.isVisible() and popup.model().index(0, 0).data() == "parse config"
    assert Settings.load().query_history[0] == "parse config"


def test_nothing_stale_after_esc_a_project_switch_or_no_results(qtbot, indexed, tmp_path):
    s = indexed.search
    search(qtbot, indexed, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: s.preview_panel.header.text() != "")
    assert "src/upload.py" in s.preview_panel.header.text()

    indexed.escape_action.trigger()  # Esc
    assert s.preview_panel.header.text() == "" and s.preview.toPlainText() == ""

    found = search(qtbot, indexed, "where do we retry failed uploads?")
    assert found
    assert search(qtbot, indexed, "zqxjv", SearchMode.TEXT) == []  # no results at all
    assert s.preview.toPlainText() == "" and s.preview_panel.header.text() == ""
    assert indexed.status.message.text() == "No results for “zqxjv”"
    assert "Keywords" in s.empty.text()  # another mode is worth a try...
    search(qtbot, indexed, "zqxjv", SearchMode.KEYWORDS)
    assert "Keywords" not in s.empty.text()  # ...but not the one in use

    other = tmp_path / "other"
    other.mkdir()
    (other / "a.py").write_text("def nothing():\n    pass\n")
    search(qtbot, indexed, "where do we retry failed uploads?", SearchMode.HYBRID)
    indexed.add_project(str(other))  # selects it
    assert s.preview_panel.header.text() == "" and s.results.result_count() == 0
    wait_indexed(qtbot, indexed, other)


def test_result_actions_need_a_result(qtbot, indexed):
    """Find related, Open and Copy are greyed on a file row or with no results (they did
    nothing there)."""
    actions = (indexed.related_action, indexed.open_action, indexed.copy_action)
    assert not any(a.isEnabled() for a in actions)
    search(qtbot, indexed, "where do we retry failed uploads?")
    assert all(a.isEnabled() for a in actions)
    results = indexed.search.results
    results.setCurrentItem(results.topLevelItem(0))  # a file row
    assert not any(a.isEnabled() for a in actions)


def test_a_mode_switch_selects_the_new_top_result(qtbot, indexed):
    s = indexed.search
    search(qtbot, indexed, "password")
    s.results.move(2)
    search(qtbot, indexed, "password", SearchMode.KEYWORDS)
    assert s.results.current_result() is s.results.all_results()[0]


def test_a_save_to_another_file_keeps_the_preview_where_it_was(qtbot, indexed, project):
    s = indexed.search
    root = str(project.resolve())
    qtbot.waitUntil(lambda: root in indexed.controller.watch_hub.watchers, timeout=30_000)
    search(qtbot, indexed, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: s.preview.path is not None)
    bar = s.preview.verticalScrollBar()
    bar.setValue(bar.maximum())  # the user scrolled away from the result
    where = bar.value()
    updated: list[str] = []
    indexed.controller.updated.connect(updated.append)
    (project / "src" / "config.py").write_text("def parse_config(path):\n    return {}\n")
    qtbot.waitUntil(lambda: bool(updated), timeout=30_000)
    qtbot.wait(500)  # the refreshed results have arrived and been shown
    assert s.preview.path == project.resolve() / "src" / "upload.py"
    assert bar.value() == where


def test_text_mode_is_exact_and_keywords_is_bm25(qtbot, indexed, project):
    (project / "src" / "decode.py").write_text(
        "import json\n\n\ndef load_with_hook(text, object_hook):\n"
        "    return json.loads(text, object_hook=object_hook)\n\n\n"
        "def only_an_object(value):\n    return object()\n\n\n"
        "def only_a_hook(hook):\n    return hook\n"
    )
    indexed.reindex_current()
    wait_indexed(qtbot, indexed, project)
    assert indexed.search.mode.itemText(2) == "Keywords"
    found = search(qtbot, indexed, "object_hook", SearchMode.TEXT)
    assert found and all("object_hook" in r.snippet for r in found)
    assert {r.start_line for r in found} == {4, 5}
    first = found[0]
    assert [first.snippet[a:b] for a, b in first.highlights] == ["object_hook"]
    assert first.symbol == "load_with_hook"
    preview = indexed.search.preview
    qtbot.waitUntil(lambda: preview.lines == (first.start_line, first.start_line))
    col = "def load_with_hook(text, object_hook):".index("object_hook")
    assert preview.highlights == [(4, col, col + len("object_hook"))]

    found = search(qtbot, indexed, r"def only_\w+", SearchMode.REGEX)
    assert [r.snippet for r in found] == ["def only_an_object(value):", "def only_a_hook(hook):"]


def test_find_related_from_a_result_and_at_the_preview_cursor(qtbot, indexed, project):
    w, s = indexed, indexed.search
    keys = [a.shortcut().toString() for a in w.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert "Ctrl+R" in keys and len(keys) == len(set(keys)), "Ctrl+R is no other action's"
    assert s.results.actions()[0] is w.related_action  # first in the results' context menu

    found = search(qtbot, w, "load settings from a json file")
    s.results.move(next(i for i, r in enumerate(found) if r.symbol == "parse_config"))
    similar = related(qtbot, w, w.related_action)  # Ctrl+R
    assert s.summary.text() == f"Related to parse_config (src/config.py:5) · {s.results.summary()}"
    assert (
        w.status.message.text()
        == f"{s.results.summary()} related to parse_config (src/config.py:5)"
    )
    assert "save_config" in {r.symbol for r in similar}
    assert not any(r.path == "src/config.py" and r.start_line == 5 for r in similar)
    qtbot.waitUntil(lambda: s.preview.path == project.resolve() / similar[0].path)
    assert s.preview.highlights == [], "no query words to mark"

    s.results.move(1)
    kept = s.results.current_result()
    s.search_now(refresh=True)  # the files changed: related code again, not the query
    qtbot.waitUntil(lambda: s.shown.serial == s.serial and s.shown.refresh, timeout=60_000)
    assert s.shown.related == ("src/config.py", 5)
    assert (s.results.current_result().path, s.results.current_result().symbol) == (
        kept.path,
        kept.symbol,
    )

    # The preview's context menu, for the line right-clicked.
    search(qtbot, w, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: s.preview.path == project.resolve() / "src/upload.py")
    send = s.preview.document().findBlockByNumber(13 - 1)  # in UploadClient.send
    at = s.preview.cursorRect(QTextCursor(send)).center()
    s.preview.contextMenuEvent(
        QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, s.preview.viewport().mapToGlobal(at))
    )
    menu = QApplication.activePopupWidget()
    texts = [a.text() for a in menu.actions()]
    menu.close()
    assert texts[-1] == "Find related code" and any("Select All" in t for t in texts)
    assert s.preview.cursor_line() == 13
    related(qtbot, w, s.preview_panel.related_action)
    assert s.summary.text().startswith("Related to UploadClient.send (src/upload.py:12) · ")

    # Ctrl+R in the preview: the definition at its cursor, not the selected result's.
    search(qtbot, w, "where do we retry failed uploads?")
    qtbot.waitUntil(lambda: s.preview.path == project.resolve() / "src/upload.py")
    s.preview.setTextCursor(QTextCursor(s.preview.document().findBlockByNumber(10 - 1)))
    w.activateWindow()  # offscreen, closing a popup leaves no window active
    s.preview.setFocus()
    qtbot.waitUntil(s.preview.hasFocus)
    related(qtbot, w, w.related_action)
    assert s.summary.text().startswith("Related to UploadClient.__init__ (src/upload.py:9) · ")


def test_a_mistyped_language_is_flagged_and_filters_are_shown(qtbot, indexed):
    s = indexed.search
    assert "python" in s.languages.stringList() and "go" in s.languages.stringList()
    s.language.setText("pyhton")
    assert "Did you mean 'python'?" in s.language.toolTip()
    s.language.setText("python")
    assert "Did you mean" not in s.language.toolTip()
    s.path_glob.setText("src/")
    found = search(qtbot, indexed, "read the configuration")
    assert found and all(r.language == "python" for r in found)
    assert s.summary.text().endswith("· language: python · path: src/")


def test_search_across_all_projects(qtbot, indexed, tmp_path):
    other = tmp_path / "billing"
    (other / "src").mkdir(parents=True)
    (other / "src" / "invoice.py").write_text(
        "def send_overdue_invoice_reminders(customers):\n"
        "    for c in customers:\n        if c.overdue:\n            c.email('reminder')\n"
    )
    indexed.add_project(str(other))
    wait_indexed(qtbot, indexed, other)
    s = indexed.search
    s.everywhere.setChecked(True)
    found = search(qtbot, indexed, "retry a failed upload")
    assert {Path(r.project).name for r in found} == {"demo", "billing"}
    assert found[0].path == "src/upload.py"
    # Related code of a result in another project than the selected one is of that project.
    assert Path(found[0].project).name == "demo" and s.root == str(other.resolve())
    similar = related(qtbot, indexed, indexed.related_action)
    assert similar and s.shown.root == found[0].project
    qtbot.waitUntil(lambda: s.preview.path == Path(found[0].project) / similar[0].path)
    found = search(qtbot, indexed, "remind customers about overdue invoices")
    assert (Path(found[0].project).name, found[0].path) == ("billing", "src/invoice.py")
    qtbot.waitUntil(lambda: s.preview.path == other.resolve() / "src" / "invoice.py")


def test_project_buttons_need_a_project_and_remove_defaults_to_no(
    qtbot, window, project, monkeypatch
):
    from PySide6.QtWidgets import QMessageBox

    p = window.projects
    assert not p.reindex_button.isEnabled() and not p.remove_button.isEnabled()
    window.add_project(str(project))
    assert p.reindex_button.isEnabled() and p.remove_button.isEnabled()
    asked: list = []

    def answer(*args):
        asked.append(args)
        return args[-1]  # the default button, as Enter would

    monkeypatch.setattr(QMessageBox, "question", answer)
    p.remove_button.click()
    assert asked[0][-1] == QMessageBox.StandardButton.No
    assert p.list.count() == 1  # Enter kept it
    wait_indexed(qtbot, window, project)


def test_the_panels_sizes_are_restored(qtbot, window, memory):
    window.main_split.setSizes([400, 880])
    left = window.main_split.sizes()[0]
    close(qtbot, window)
    again = MainWindow(Settings.load(), memory_reader=memory)
    qtbot.addWidget(again)
    again.show()
    assert again.main_split.sizes()[0] == left
    close(qtbot, again)
