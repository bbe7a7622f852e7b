"""The main window: projects on the left, search and results in the middle, the preview on
the right, and what is happening in the status bar.

It only assembles: the state and the work are the :class:`Controller`'s, and each panel
renders its part, connecting itself to the controller's signals it shows.
:meth:`MainWindow._connect_signals` wires the rest: menus, buttons and shortcuts to the
panels, and the controller's reports that the window answers itself (a dialog, a status
message, a search again after the files changed).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QSplitter

from app.core.errors import CodeLampError
from app.core.modes import SearchMode
from app.core.project import check_root
from app.gui.controller import Controller
from app.gui.dialogs import SettingsDialog, SharedIndexDialog, show_about
from app.gui.project_panel import ProjectPanel
from app.gui.search_panel import SearchPanel
from app.gui.status_bar import StatusBar


class MainWindow(QMainWindow):
    def __init__(self, settings, memory_reader=None) -> None:
        super().__init__()
        from app.core.memory import read_memory

        self.settings = settings
        self.setWindowTitle("CodeLamp")
        self.memory_warning: QMessageBox | None = None  # shown once
        self.controller = Controller(settings)
        self.projects = ProjectPanel(self.controller)
        self.search = SearchPanel(self.controller)
        self.status = StatusBar(self.controller, memory_reader or read_memory)
        self.setStatusBar(self.status)
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(self.projects)
        self.main_split.addWidget(self.search)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setChildrenCollapsible(False)
        self.main_split.setSizes([250, 1030])
        self.setCentralWidget(self.main_split)
        self._build_actions()
        self._connect_signals()
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self._restore()
        self.status.memory.start()
        self.tick = QTimer(self)  # "updated 3 s ago" stays current
        self.tick.setInterval(5000)
        self.tick.timeout.connect(self._watch_label)
        self.tick.start()

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.add_action = self._action(menu, "&Add folder…", QKeySequence.StandardKey.Open)
        self.shared_action = self._action(menu, "Open &shared index…", None)
        self.settings_action = self._action(menu, "&Settings…", QKeySequence("Ctrl+,"))
        menu.addSeparator()
        self.quit_action = self._action(menu, "&Quit", QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = self._action(help_menu, "&About CodeLamp", None)
        self.focus_actions = [
            self._action(None, "Search", QKeySequence(k)) for k in ("Ctrl+F", "Ctrl+L")
        ]
        self.escape_action = self._action(None, "Clear", QKeySequence(Qt.Key.Key_Escape))
        self.reindex_action = self._action(None, "Re-index", QKeySequence(Qt.Key.Key_F5))
        self.open_action = self._action(None, "Open in editor", QKeySequence("Ctrl+E"))
        self.copy_action = self._action(None, "Copy path:line", QKeySequence("Ctrl+Shift+C"))
        self.related_action = self._action(None, "Find related code", QKeySequence("Ctrl+R"))

    def _action(self, menu, text: str, shortcut) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        (menu or self).addAction(action)
        return action

    def _connect_signals(self) -> None:
        c, p, s = self.controller, self.projects, self.search
        p.add_button.clicked.connect(self.choose_folder)
        self.add_action.triggered.connect(self.choose_folder)
        self.shared_action.triggered.connect(self.choose_shared)
        for trigger in (
            p.reindex_button.clicked,
            p.upgrade_button.clicked,
            self.reindex_action.triggered,
        ):
            trigger.connect(self.reindex_current)
        p.remove_button.clicked.connect(self.remove_current)
        p.selected.connect(self._project_selected)
        self.settings_action.triggered.connect(self.open_settings)
        self.quit_action.triggered.connect(self.close)
        self.about_action.triggered.connect(lambda: show_about(self))
        for action in self.focus_actions:
            action.triggered.connect(s.focus)
        self.escape_action.triggered.connect(s.clear)
        self.open_action.triggered.connect(s.open_current)
        self.copy_action.triggered.connect(s.copy_location)
        self.related_action.triggered.connect(s.find_related)
        s.results.addActions([self.related_action, self.open_action, self.copy_action])
        s.results.result_changed.connect(self._result_actions)
        self._result_actions(None)
        self.status.memory.level_changed.connect(self._memory_level)
        c.index_finished.connect(self._index_finished)
        c.model_ready.connect(self._model_ready)
        c.model_failed.connect(self._model_failed)
        c.problem.connect(lambda title, text: QMessageBox.warning(self, title, text))
        c.outdated.connect(self._project_outdated)
        c.updated.connect(self._files_updated)
        c.watch_changed.connect(self._watch_label)
        c.project_removed.connect(lambda _: s.update_empty_state())

    # --- projects -------------------------------------------------------------------------

    def _restore(self) -> None:
        for state, target in (
            (self.settings.window_geometry, self.restoreGeometry),
            (self.settings.main_splitter_state, self.main_split.restoreState),
            (self.settings.splitter_state, self.search.splitter.restoreState),
        ):
            if state:
                target(QByteArray.fromBase64(state.encode()))
        for root in self.settings.projects:
            self.projects.add_item(root)
        self.controller.restore()
        if self.settings.projects:
            self.projects.select(self.settings.projects[0])
        self.search.update_empty_state()

    def current_root(self) -> str | None:
        return self.projects.current_root()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of code", str(Path.home()))
        if folder:
            self.add_project(folder)

    def add_project(self, folder: str) -> bool:
        """Add a folder and index it; a clear message (and no change) for anything else."""
        try:
            root = str(check_root(folder))
        except CodeLampError as exc:
            QMessageBox.warning(self, "Cannot add this folder", str(exc))
            return False
        self.projects.add_item(root)
        self.controller.add(root)
        self.projects.select(root)
        return True

    def choose_shared(self) -> None:
        dialog = SharedIndexDialog(self)
        if dialog.exec():
            self.open_shared(dialog.location.uri)

    def open_shared(self, uri: str) -> None:
        self.projects.add_item(uri)
        self.controller.add_shared(uri)
        self.projects.select(uri)

    def reindex_current(self) -> None:
        if root := self.current_root():
            self.controller.start_index(root)

    def remove_current(self) -> None:
        root = self.current_root()
        if not root or root in self.controller.removing:
            return
        text = (
            f"Remove the shared index {root} from this list? The index itself stays."
            if self.controller.is_shared(root)
            else f"Remove {root} from CodeLamp and delete its index?\nYour files are not touched."
        )
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        if QMessageBox.question(self, "Remove project", text, yes | no, no) == yes:
            self.controller.remove(root)  # cancels its work; finishes in the background
            self.search.clear_results()

    def _result_actions(self, result) -> None:
        """Find related, Open and Copy act on a result: greyed without one (in the
        results' context menu too, on a file row)."""
        for action in (self.related_action, self.open_action, self.copy_action):
            action.setEnabled(result is not None)

    def _project_selected(self, root: str) -> None:
        self.search.set_root(root or None)
        self._watch_label()

    # --- what the controller reports ------------------------------------------------------

    def _index_finished(self, root: str, result, error: str) -> None:
        c, name = self.controller, Path(root).name
        if root in c.removing or c.closing:
            return
        if error:
            self.status.say(f"{name}: {error}")
            QMessageBox.warning(self, "Indexing stopped", f"{name}: {error}")
        elif result.cancelled:
            self.status.say(
                f"Indexing {name} cancelled; Resume (F5) finishes it, and nothing "
                "done so far is lost."
            )
        else:
            notice = f" · {result.notice}" if result.notice else ""
            self.status.say(f"Indexed {name}: {result.summary()}{notice}")
        if root == self.current_root() and self.search.query.text().strip():
            self.search.search_now(refresh=True)

    def _files_updated(self, root: str) -> None:
        if root == self.current_root():
            self.search.search_now(refresh=True)  # results (and the preview) follow the files

    def _model_ready(self, model_id: str) -> None:
        if (embedder := self.controller.gate.embedder) is not None:
            self.status.memory.model_bytes = embedder.resident_bytes
        self.status.model_done()
        if self.status.message.text().startswith("Loading the model"):
            self.status.say(f"Model ready: {model_id}")
        self._watch_label()

    def _model_failed(self, error: str) -> None:
        self.status.model_done()
        self.status.say(error)
        if not self.controller.closing and "cancelled" not in error:
            QMessageBox.warning(
                self,
                "The model could not be loaded",
                f"{error}\n\nKeywords and Text search work without a model.",
            )
            self.search.mode.setCurrentIndex(self.search.mode.findData(SearchMode.KEYWORDS.value))

    def _project_outdated(self, root: str, model: str) -> None:
        if root == self.current_root():
            self.status.say(
                f"{Path(root).name} was indexed with another model ({model}); "
                "re-index it to use the current one."
            )

    def _watch_label(self, *_) -> None:
        self.status.show_watch_state(self.current_root())

    def _memory_level(self, level: str, text: str) -> None:
        done = self.controller.memory_level(level)
        if done:
            self.status.say(
                f"{text} Indexing paused until memory frees up."
                if done == "paused"
                else f"{text} Indexing resumed."
            )
        if level == "high" and self.memory_warning is None:
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                "Memory is running low",
                f"{text}\nCodeLamp keeps working; closing other programs "
                "helps. Indexing pauses by itself if it gets critical.",
                QMessageBox.StandardButton.Ok,
                self,
            )
            box.setModal(False)
            box.show()
            self.memory_warning = box

    def open_settings(self) -> None:
        before = (
            self.settings.embedding,
            self.settings.max_chunk_tokens,
            self.settings.demote_tests,
        )
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        self.settings.save()
        self.status.memory.refresh()
        if self.settings.demote_tests != before[2]:
            self.controller.forget_searchers()
            self.search.search_now()
        if self.settings.embedding != before[0]:
            self.controller.switch_model()
            self.status.say(
                "Model changed: projects are re-indexed with it when you re-index them (F5)."
            )
        elif self.settings.max_chunk_tokens != before[1]:
            self.status.say("The new chunk limit applies when a project is next re-indexed (F5).")

    # --- drag and drop, shutdown ----------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.add_project(url.toLocalFile())
        event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """The first close saves the layout, cancels the work and says "Stopping…"; the
        window closes when the controller has stopped, so the GUI thread never waits."""
        if self.controller.done:
            event.accept()
            return
        event.ignore()
        if self.controller.closing:
            return
        for name, widget in (
            ("window_geometry", self),
            ("main_splitter_state", self.main_split),
            ("splitter_state", self.search.splitter),
        ):
            state = widget.saveGeometry() if widget is self else widget.saveState()
            setattr(self.settings, name, bytes(state.toBase64()).decode())
        self.settings.save()
        self.status.memory.timer.stop()
        self.tick.stop()
        self.status.stopping()
        self.centralWidget().setEnabled(False)
        self.controller.stopped.connect(self.close)
        self.controller.shutdown()  # from now on, the status bar keeps saying "Stopping…"
