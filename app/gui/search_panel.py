"""Searching: the query box (with Quick Open keys and history), the mode and filters, the
results grouped by file, and the preview with its actions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QStringListModel, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.modes import SearchMode, unknown_language
from app.gui.controller import ready
from app.gui.preview import PreviewPanel
from app.gui.results_view import ResultView
from app.gui.widgets import open_in_editor
from app.gui.workers import ALL_PROJECTS, SearchRequest

DEBOUNCE_MS = 150
RESULTS = 30  # definitions, in the ranked modes
MATCHES = 1000  # lines, in the text and regex modes
HISTORY = 50
HISTORY_AFTER_MS = 2000  # a query that stays this long with results is worth remembering


class SearchPanel(QWidget):
    def __init__(self, controller) -> None:
        super().__init__()
        self.controller = controller
        self.settings = controller.settings
        self.root: str | None = None
        self.serial = 0
        self.shown: SearchRequest | None = None  # the request whose results are shown
        self.open_when_ready = False  # Enter was pressed before the results came
        self._build()
        self._connect()

    def _build(self) -> None:
        self.query = QLineEdit()
        self.query.setPlaceholderText(
            "Describe what you are looking for, e.g. “where do we retry failed uploads?”"
        )
        self.query.setClearButtonEnabled(True)
        self.query.installEventFilter(self)
        self.history_model = QStringListModel(self.settings.query_history, self)
        self.history = QCompleter(self.history_model, self)
        self.history.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.history.setWidget(self.query)
        self.mode = QComboBox()
        for mode in SearchMode:
            self.mode.addItem(mode.label, mode.value)
            self.mode.setItemData(self.mode.count() - 1, mode.tooltip, Qt.ItemDataRole.ToolTipRole)
        self.mode.setCurrentIndex(max(0, self.mode.findData(self.settings.search_mode)))
        self.language = QLineEdit()
        self.language.setPlaceholderText("language")
        self.language.setMaximumWidth(110)
        self.languages = QStringListModel(self)
        completer = QCompleter(self.languages, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.language.setCompleter(completer)
        self.path_glob = QLineEdit()
        self.path_glob.setPlaceholderText("path, e.g. src/ or *.py")
        self.path_glob.setMaximumWidth(180)
        self.everywhere = QCheckBox("All projects")
        self.everywhere.setToolTip("Search every project, with the results merged")
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(self.mode)
        row.addWidget(self.language)
        row.addWidget(self.path_glob)
        row.addWidget(self.everywhere)

        self.summary = QLabel()
        self.summary.setMinimumWidth(10)
        self.results = ResultView()
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.result_stack = QStackedWidget()
        self.result_stack.addWidget(self.empty)
        self.result_stack.addWidget(self.results)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.summary)
        lv.addWidget(self.result_stack, 1)
        self.preview_panel = PreviewPanel()
        self.preview = self.preview_panel.preview
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.preview_panel)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.splitter, 1)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.remember = QTimer(self)
        self.remember.setSingleShot(True)
        self.remember.setInterval(HISTORY_AFTER_MS)

    def _connect(self) -> None:
        self.query.textChanged.connect(lambda _: self.debounce.start())
        self.debounce.timeout.connect(self.search_now)
        self.remember.timeout.connect(self.remember_query)
        self.history.activated.connect(self._history_chosen)
        self.mode.currentIndexChanged.connect(lambda _: self.search_now())
        self.language.textChanged.connect(self._check_language)
        self.language.editingFinished.connect(self.search_now)
        self.path_glob.editingFinished.connect(self.search_now)
        self.everywhere.toggled.connect(lambda _: self.search_now())
        self.results.result_changed.connect(self._result_selected)
        self.results.open_requested.connect(self.open_current)
        self.preview_panel.related_action.triggered.connect(self.find_related_at_cursor)
        self.preview_panel.open_button.clicked.connect(self.open_current)
        self.preview_panel.copy_button.clicked.connect(self.copy_location)
        self.controller.results.connect(self._show_results)
        self.controller.project_changed.connect(self._project_changed)

    # --- the query box: Quick Open keys and history -----------------------------------------

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.query and event.type() == QEvent.Type.KeyPress:
            return self._query_key(event.key())
        return super().eventFilter(watched, event)

    def _query_key(self, key) -> bool:
        """↑/↓/PgUp/PgDn move through the results and Enter opens one, without leaving
        the search box; ↑ in an empty box offers the earlier queries."""
        if key == Qt.Key.Key_Up and not self.query.text() and self.settings.query_history:
            self.history.setCompletionPrefix("")
            self.history.complete()
            return True
        page = self.results.page_rows()
        steps = {
            Qt.Key.Key_Up: -1,
            Qt.Key.Key_Down: 1,
            Qt.Key.Key_PageUp: -page,
            Qt.Key.Key_PageDown: page,
        }
        if key in steps and self.results.result_count():
            self.results.move(steps[key])
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self._results_current():
                self.open_current()
            else:  # the results are of an older text: open the top one when they come
                self.open_when_ready = True
                self.search_now()
            return True
        return False

    def _results_current(self) -> bool:
        return (
            self.shown is not None
            and not self.debounce.isActive()
            and self.shown.serial == self.serial
            and self.results.current_result() is not None
        )

    def _history_chosen(self, text: str) -> None:
        self.query.setText(text)
        self.search_now()

    def remember_query(self) -> None:
        query = self.query.text().strip()
        if not query:
            return
        history = [query] + [q for q in self.settings.query_history if q != query]
        self.settings.query_history = history[:HISTORY]
        self.settings.save()
        self.history_model.setStringList(self.settings.query_history)

    def focus(self) -> None:
        self.query.setFocus()
        self.query.selectAll()

    # --- searching ------------------------------------------------------------------------

    def set_root(self, root: str | None) -> None:
        """Another project was selected: its results, or its empty state."""
        self.root = root
        self._project_changed(root or "")
        self.clear_results()
        if self.query.text().strip():
            self.search_now()

    def clear(self) -> None:
        """Esc: an empty box, no results, no preview."""
        self.query.clear()
        self.clear_results()
        self.query.setFocus()

    def clear_results(self) -> None:
        self.debounce.stop()
        self.serial += 1  # results still on their way are not wanted
        self.shown = None
        self.results.clear()
        self.preview.clear_file()
        self.summary.setText("")
        self.update_empty_state()

    def search_now(self, refresh: bool = False) -> None:
        """Search for the box's text. ``refresh``: the files changed under the same query
        (or related code), so the selected result (and the preview's scroll) stay where
        they are."""
        self.debounce.stop()
        shown = self.shown
        if refresh and shown is not None and shown.related is not None:
            self._ask(shown.root, "", RESULTS, shown.mode, related=shown.related, refresh=True)
            return
        query = self.query.text().strip()
        if not query or not (self.root or self.everywhere.isChecked()):
            self.clear_results()
            return
        mode = SearchMode(self.mode.currentData())
        self.settings.search_mode = mode.value
        self._ask(
            ALL_PROJECTS if self.everywhere.isChecked() else self.root,
            query,
            MATCHES if mode.per_line else RESULTS,
            mode.value,
            refresh=refresh,
        )

    def find_related(self) -> None:
        """Ctrl+R: the definitions most like the selected result; with the preview
        focused, like the one at its text cursor."""
        if self.preview.hasFocus():
            self.find_related_at_cursor()
        elif (r := self.results.current_result()) is not None:
            self._ask(self.root_of(r), "", RESULTS, self.shown.mode, related=(r.path, r.start_line))

    def find_related_at_cursor(self) -> None:
        """The definitions most like the one at the preview's text cursor."""
        r = self.results.current_result()
        if r is not None and self.preview.path is not None:
            self._ask(
                self.root_of(r),
                "",
                RESULTS,
                self.shown.mode,
                related=(r.path, self.preview.cursor_line()),
            )

    def _ask(self, root: str, query: str, k: int, mode: str, **more) -> None:
        """Send a request, filtered as the boxes say; results still on their way for an
        earlier one are not wanted any more."""
        self.serial += 1
        request = SearchRequest(
            self.serial,
            root,
            query,
            k,
            mode,
            self.language.text().strip() or None,
            self.path_glob.text().strip() or None,
            **more,
        )
        if not self.controller.search(request):
            self.update_empty_state()

    def _show_results(self, request: SearchRequest, results, error: str) -> None:
        if request.serial != self.serial:
            return  # an older query, overtaken by typing
        previous, self.shown = self.shown, request
        keep = self.results.current_result() if request.refresh and previous else None
        self.results.show_results(results, keep=keep)
        if results:
            if request.related is None:
                self.remember.start()
            self.summary.setText(self._summary(request))
            self.controller.message.emit(f"{self.results.summary()} {_asked(request)}")
        else:
            self.summary.setText("")
            self.preview.clear_file()
            self.controller.message.emit(error or f"No results {_asked(request)}")
        self.update_empty_state(error)
        if self.open_when_ready and results:
            self.open_current()
        self.open_when_ready = False

    def _summary(self, request: SearchRequest) -> str:
        """ "30 results in 12 files", with the active filters; for related code, what it is
        related to first."""
        parts = [self.results.summary()]
        if request.related is not None:
            parts.insert(0, f"Related to {_source(request.source)}")
        if request.root == ALL_PROJECTS:
            parts[0] += f" across {len(request.roots)} projects"
        if request.total > len(self.results.all_results()):
            parts[0] += f" (the first {request.k:,} of {request.total:,} matching lines)"
        if request.language:
            parts.append(f"language: {request.language}")
        if request.path_glob:
            parts.append(f"path: {request.path_glob}")
        return " · ".join(parts)

    def _project_changed(self, root: str) -> None:
        if root and root == self.root:
            self.languages.setStringList(self.controller.languages(root))
            self._check_language()
            self.update_empty_state()

    def _check_language(self) -> None:
        """Flag a language the project does not have (a typo, say) as it is typed."""
        known = self.controller.languages(self.root)
        problem = unknown_language(self.language.text(), known, "in this project") if known else ""
        if problem:
            self.language.setStyleSheet("QLineEdit { border: 1px solid #d32f2f; }")
            self.language.setToolTip(problem)
        else:
            self.language.setStyleSheet("")
            self.language.setToolTip(f"Languages here: {', '.join(known)}" if known else "")

    def update_empty_state(self, error: str = "") -> None:
        c, root = self.controller, self.root
        if self.results.result_count():
            self.result_stack.setCurrentWidget(self.results)
            return
        status = c.statuses.get(root) if root else None
        if not c.settings.projects:
            text = "Add a folder to start.\n\nFile ▸ Add folder… (Ctrl+O), or drop a folder here."
        elif not root:
            text = "Select a project on the left."
        elif c.indexing == root and not ready(status):
            text = "Indexing this project…"
        elif status is None:
            text = (
                f"This project is not indexed yet.\n\nPress F5 to index it."
                f"\n{c.status_errors.get(root, '')}"
            )
        elif not ready(status):
            text = "Indexing this project was interrupted.\n\nResume it with F5."
        elif error:
            text = error
        elif self.shown is not None and self.shown.related is not None:
            filtered = self.shown.language or self.shown.path_glob
            text = "No related code found." + (" The filters leave none." if filtered else "")
        elif self.query.text().strip():
            mode = SearchMode(self.mode.currentData())
            other = (
                ""
                if mode is SearchMode.KEYWORDS
                else " Names and words: try “Keywords” mode; exact text: “Text”."
            )
            text = f"No results. Try other words.{other}"
        else:
            text = (
                "Type what you are looking for.\n\nCtrl+F focuses the search box; ↑/↓ "
                "move through the results, Enter opens one in your editor; ↑ in an empty "
                "box recalls earlier searches."
            )
        self.empty.setText(text)
        self.result_stack.setCurrentWidget(self.empty)

    # --- the selected result ------------------------------------------------------------

    def _result_selected(self, *_) -> None:
        r = self.results.current_result()
        if r is None:
            self.preview.clear_file()
            return
        root = self.root_of(r)
        path = self.file_of(r)
        if self.preview.showing(path, r.start_line, r.end_line):
            self.preview.reload_if_changed()  # a save elsewhere must not move the view
            return
        shared = self.controller.is_shared(root)
        self.preview.show_file(
            path,
            r.path,
            r.start_line,
            r.end_line,
            symbol=r.symbol,
            stored=r.text if shared else None,
            marker=self._marker(),
        )

    def _marker(self):
        """What the preview marks inside the result's lines: the matches of a Text or
        Regex query, the query's words (as identifier parts) otherwise."""
        if self.shown is None or self.shown.related is not None:
            return None
        mode, query = SearchMode(self.shown.mode), self.shown.query
        if mode.per_line:
            from app.core.grep import LinePattern

            return LinePattern(query, mode is SearchMode.REGEX).spans
        from app.core.lexical import word_spans

        return lambda line: word_spans(line, query)

    def open_current(self) -> None:
        if r := self.results.current_result():
            self.remember_query()
            open_in_editor(self.settings.editor_command, self.file_of(r), r.start_line, self)

    def copy_location(self) -> None:
        if r := self.results.current_result():
            QGuiApplication.clipboard().setText(f"{self.file_of(r)}:{r.start_line}")
            self.controller.message.emit(f"Copied {r.path}:{r.start_line}")

    def root_of(self, r) -> str:
        """The project a shown result is in: its own when all were searched, else the one
        its request asked, which for related code is that of the result it started from
        (not always the selected project)."""
        return r.project or self.shown.root

    def file_of(self, r) -> Path:
        return self.source(self.root_of(r)) / r.path

    def source(self, root: str) -> Path:
        """The folder a project's result paths are relative to: a shared index's is the
        one it was built from (the same checkout path here, if there is one)."""
        status = self.controller.statuses.get(root)
        return Path(status["root"]) if self.controller.is_shared(root) and status else Path(root)


def _asked(request: SearchRequest) -> str:
    """What was asked, for the status bar: 'for “query”', 'related to parse_config
    (src/config.py:5)'."""
    return f"related to {_source(request.source)}" if request.related else f"for “{request.query}”"


def _source(definition) -> str:
    """'parse_config (src/config.py:5)', or 'src/config.py:1' for code with no name."""
    where = f"{definition.path}:{definition.start_line}"
    return f"{definition.symbol} ({where})" if definition.symbol else where
