"""The main window: projects on the left, search and results in the middle, the preview on
the right, and what is happening in the status bar.

All signals are wired in :meth:`MainWindow._connect_signals`. Work happens on the engine
thread (model, search, status) and the index thread; watchers have their own threads.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QMetaObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.app import collect_when_idle, quiet_gc
from app.gui.dialogs import SettingsDialog, SharedIndexDialog, show_about
from app.gui.widgets import MemoryGauge, Preview, ResultList, ago, open_in_editor
from app.gui.workers import Engine, IndexWorker, ModelGate, SearchRequest, WatchHub, start_thread

MODES = (("Hybrid", "hybrid"), ("Semantic", "vector"), ("Exact words", "lexical"))
DEBOUNCE_MS = 150
RESULTS = 30
IDLE_GC_MS = 1000


class MainWindow(QMainWindow):
    # Cross-thread requests: queued to the workers' threads.
    request_search = Signal(object)
    request_status = Signal(str)
    request_index = Signal(str)
    request_model = Signal()
    request_forget_searcher = Signal(str)
    request_warm_up = Signal()

    def __init__(self, settings, memory_reader=None) -> None:
        super().__init__()
        quiet_gc()  # now, and again once the engine is imported (warm_up)
        self.settings = settings
        self.setWindowTitle("CodeLamp")
        self.gate = ModelGate(settings)
        self.engine = Engine(self.gate, settings)
        self.indexer = IndexWorker(self.gate, settings)
        self.watch_hub = WatchHub()
        self.statuses: dict[str, dict | None] = {}
        self.status_errors: dict[str, str] = {}
        self.resume_at_start: set[str] = set()  # projects whose first status is pending
        self.index_queue: list[str] = []
        self.indexing: str | None = None
        self.paused_by_memory = False
        self.search_serial = 0
        self.model_id: str | None = None  # the current model's, once loaded
        self.outdated: dict[str, str] = {}  # root -> the other model its index was built with
        self.warned_high = False
        self.closing = False

        from app.core.lock import set_role

        set_role("the CodeLamp app")
        self._build(memory_reader)
        self._connect_signals()
        self.engine_thread = start_thread(self.engine, "codelamp-engine")
        self.index_thread = start_thread(self.indexer, "codelamp-index")
        self._restore()
        self.request_warm_up.emit()
        self.memory.start()
        self.tick = QTimer(self)  # "updated 3 s ago" stays current
        self.tick.setInterval(5000)
        self.tick.timeout.connect(self._refresh_watch_label)
        self.tick.start()

    # --- layout ---------------------------------------------------------------------------

    def _build(self, memory_reader) -> None:
        self.projects = QListWidget()
        self.projects.setMinimumWidth(220)
        self.projects.setAcceptDrops(False)
        self.add_button = QPushButton("Add folder…")
        self.reindex_button = QPushButton("Re-index")
        self.remove_button = QPushButton("Remove")
        self.watch_box = QCheckBox("Watch for changes")
        self.project_info = QLabel()
        self.project_info.setWordWrap(True)
        self.project_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.upgrade_button = QPushButton("Re-index with the current model")
        self.upgrade_button.setToolTip("This project's index was built with another model "
                                       "(an earlier default, say). Re-indexing embeds it again "
                                       "with the current one.")
        self.upgrade_button.hide()
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(QLabel("<b>Projects</b>"))
        lv.addWidget(self.projects, 1)
        lv.addWidget(self.project_info)
        lv.addWidget(self.upgrade_button)
        lv.addWidget(self.watch_box)
        row = QHBoxLayout()
        for b in (self.add_button, self.reindex_button, self.remove_button):
            row.addWidget(b)
        lv.addLayout(row)

        self.query = QLineEdit()
        self.query.setPlaceholderText("Describe what you are looking for, e.g. “where do we "
                                      "retry failed uploads?”")  # fmt: skip
        self.query.setClearButtonEnabled(True)
        self.mode = QComboBox()
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.mode.setCurrentIndex(max(0, [v for _, v in MODES].index(self.settings.search_mode)
                                      if self.settings.search_mode in dict(MODES).values()
                                      else 0))  # fmt: skip
        self.language = QLineEdit()
        self.language.setPlaceholderText("language")
        self.language.setMaximumWidth(110)
        self.path_glob = QLineEdit()
        self.path_glob.setPlaceholderText("path, e.g. src/ or *.py")
        self.path_glob.setMaximumWidth(180)
        search_row = QHBoxLayout()
        search_row.addWidget(self.query, 1)
        search_row.addWidget(self.mode)
        search_row.addWidget(self.language)
        search_row.addWidget(self.path_glob)

        self.results = ResultList()
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.result_stack = QStackedWidget()
        self.result_stack.addWidget(self.empty)
        self.result_stack.addWidget(self.results)

        self.preview = Preview()
        self.preview_title = QLabel()
        self.open_button = QPushButton("Open in editor")
        self.copy_button = QPushButton("Copy path:line")
        preview_panel = QWidget()
        pv = QVBoxLayout(preview_panel)
        pv.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(self.preview_title, 1)
        header.addWidget(self.copy_button)
        header.addWidget(self.open_button)
        pv.addLayout(header)
        pv.addWidget(self.preview, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.result_stack)
        self.splitter.addWidget(preview_panel)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        center = QWidget()
        cv = QVBoxLayout(center)
        cv.addLayout(search_row)
        cv.addWidget(self.splitter, 1)

        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(left)
        self.main_split.addWidget(center)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setSizes([250, 1030])
        self.setCentralWidget(self.main_split)

        self.message = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.pause_button.hide()
        self.cancel_button.hide()
        self.watch_label = QLabel()
        from app.core.memory import read_memory

        self.memory = MemoryGauge(self.settings, memory_reader or read_memory)
        bar = self.statusBar()
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.pause_button)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.watch_label)
        bar.addPermanentWidget(self.memory)

        menu = self.menuBar().addMenu("&File")
        self.add_action = self._action(menu, "&Add folder…", QKeySequence.StandardKey.Open)
        self.shared_action = self._action(menu, "Open &shared index…", None)
        self.settings_action = self._action(menu, "&Settings…", QKeySequence("Ctrl+,"))
        menu.addSeparator()
        self.quit_action = self._action(menu, "&Quit", QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = self._action(help_menu, "&About CodeLamp", None)
        self.focus_actions = [self._action(None, "Search", QKeySequence(k))
                              for k in ("Ctrl+F", "Ctrl+L")]  # fmt: skip
        self.escape_action = self._action(None, "Clear", QKeySequence(Qt.Key.Key_Escape))
        self.reindex_action = self._action(None, "Re-index", QKeySequence(Qt.Key.Key_F5))
        self.open_action = self._action(None, "Open in editor", QKeySequence("Ctrl+E"))
        self.copy_action = self._action(None, "Copy path:line", QKeySequence("Ctrl+Shift+C"))

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.setAcceptDrops(True)
        self.resize(1280, 800)

    def _action(self, menu, text: str, shortcut) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        (menu or self).addAction(action)
        return action

    def _connect_signals(self) -> None:
        self.add_button.clicked.connect(self.choose_folder)
        self.add_action.triggered.connect(self.choose_folder)
        self.shared_action.triggered.connect(self.choose_shared)
        self.reindex_button.clicked.connect(self.reindex_current)
        self.upgrade_button.clicked.connect(self.reindex_current)
        self.reindex_action.triggered.connect(self.reindex_current)
        self.remove_button.clicked.connect(self.remove_current)
        self.watch_box.toggled.connect(self.set_watching)
        self.projects.currentItemChanged.connect(self._project_selected)
        self.settings_action.triggered.connect(self.open_settings)
        self.quit_action.triggered.connect(self.close)
        self.about_action.triggered.connect(lambda: show_about(self))
        for action in self.focus_actions:
            action.triggered.connect(self.focus_search)
        self.escape_action.triggered.connect(self.clear_search)

        self.query.textChanged.connect(lambda _: self.debounce.start())
        self.query.returnPressed.connect(self.search_now)
        self.debounce.timeout.connect(self.search_now)
        self.mode.currentIndexChanged.connect(lambda _: self.search_now())
        self.language.editingFinished.connect(self.search_now)
        self.path_glob.editingFinished.connect(self.search_now)
        self.results.currentItemChanged.connect(self._result_selected)
        self.results.open_requested.connect(self.open_current)
        self.results.itemDoubleClicked.connect(lambda _: self.open_current())
        self.open_button.clicked.connect(self.open_current)
        self.open_action.triggered.connect(self.open_current)
        self.copy_button.clicked.connect(self.copy_location)
        self.copy_action.triggered.connect(self.copy_location)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel_work)
        self.memory.level_changed.connect(self._memory_level)

        self.request_search.connect(self.engine.search)
        self.request_status.connect(self.engine.project_status)
        self.request_model.connect(self.engine.load_model)
        self.request_forget_searcher.connect(self.engine.forget_project)
        self.request_index.connect(self.indexer.index)
        self.request_warm_up.connect(self.engine.warm_up)
        self.engine.warmed.connect(quiet_gc)
        self.engine.results.connect(self._show_results)
        self.engine.status.connect(self._show_status)
        self.engine.model_progress.connect(self._model_progress)
        self.engine.model_ready.connect(self._model_ready)
        self.engine.model_failed.connect(self._model_failed)
        self.engine.outdated.connect(self._project_outdated)
        self.indexer.progress.connect(self._index_progress)
        self.indexer.model_progress.connect(self._model_progress)
        self.indexer.model_ready.connect(self._model_ready)
        self.indexer.finished.connect(self._index_finished)
        self.watch_hub.event.connect(self._watch_event)
        self.watch_hub.progress.connect(self._watch_progress)

    # --- projects -------------------------------------------------------------------------

    def _restore(self) -> None:
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.window_geometry.encode()))
        if self.settings.splitter_state:
            self.splitter.restoreState(QByteArray.fromBase64(
                self.settings.splitter_state.encode()))  # fmt: skip
        for root in self.settings.projects:
            self._add_item(root)
            self.resume_at_start.add(root)
            self.request_status.emit(root)
        if self.projects.count():
            self.projects.setCurrentRow(0)
        self._update_empty_state()

    def _add_item(self, root: str) -> QListWidgetItem:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, root)
        self.projects.addItem(item)
        self._render_project(item)
        return item

    def current_root(self) -> str | None:
        item = self.projects.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _item(self, root: str) -> QListWidgetItem | None:
        for i in range(self.projects.count()):
            if self.projects.item(i).data(Qt.ItemDataRole.UserRole) == root:
                return self.projects.item(i)
        return None

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of code", str(Path.home()))
        if folder:
            self.add_project(folder)

    def add_project(self, folder: str) -> bool:
        """Add a folder and index it; a clear message (and no change) for anything else."""
        path = Path(folder).expanduser()
        problem = None
        if not path.exists():
            problem = f"{path} does not exist."
        elif not path.is_dir():
            problem = f"{path} is a file. Add the folder that holds your code."
        elif not os.access(path, os.R_OK | os.X_OK):
            problem = f"{path} cannot be read (permission denied)."
        if problem:
            QMessageBox.warning(self, "Cannot add this folder", problem)
            return False
        root = str(path.resolve())
        existing = self._item(root)
        if existing is None:
            self.settings.projects.append(root)
            self.settings.save()
            existing = self._add_item(root)
        self.projects.setCurrentItem(existing)
        self.start_index(root)
        self._update_empty_state()
        return True

    def choose_shared(self) -> None:
        dialog = SharedIndexDialog(self)
        if dialog.exec():
            self.open_shared(dialog.location.uri)

    def open_shared(self, uri: str) -> None:
        """Add a shared index (a store's URI): searchable here, never written."""
        if self._item(uri) is None:
            self.settings.projects.append(uri)
            self.settings.shared.append(uri)
            self.settings.save()
            self._add_item(uri)
        self.projects.setCurrentItem(self._item(uri))
        self.request_status.emit(uri)
        self._update_empty_state()

    def is_shared(self, root: str | None) -> bool:
        return root in self.settings.shared

    def reindex_current(self) -> None:
        if (root := self.current_root()) and not self.is_shared(root):
            self.start_index(root)

    def remove_current(self) -> None:
        root = self.current_root()
        if not root:
            return
        shared = self.is_shared(root)
        answer = QMessageBox.question(
            self, "Remove project",
            f"Remove the shared index {root} from this list? The index itself stays."
            if shared else
            f"Remove {root} from CodeLamp and delete its index?\nYour files are not touched.",
        )  # fmt: skip
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self.indexing == root:
            QMessageBox.information(self, "Remove project",
                                    "It is being indexed; cancel that first.")  # fmt: skip
            return
        from app.core.store import forget

        self.watch_hub.stop(root, flush=False)
        self.index_queue = [r for r in self.index_queue if r != root]
        self.request_forget_searcher.emit(root)
        try:
            if not shared:
                forget(Path(root))
        except Exception as exc:  # noqa: BLE001 - e.g. another process is indexing it
            QMessageBox.warning(self, "Remove project", str(exc))
            return
        self.projects.takeItem(self.projects.row(self._item(root)))
        self.settings.projects = [r for r in self.settings.projects if r != root]
        self.settings.shared = [r for r in self.settings.shared if r != root]
        self.settings.unwatched = [r for r in self.settings.unwatched if r != root]
        self.settings.save()
        self.statuses.pop(root, None)
        self.results.clear()
        self.preview.clear_file()
        self._update_empty_state()

    def set_watching(self, on: bool) -> None:
        root = self.current_root()
        if not root:
            return
        unwatched = set(self.settings.unwatched)
        (unwatched.discard if on else unwatched.add)(root)
        self.settings.unwatched = sorted(unwatched)
        self.settings.save()
        if on:
            self._start_watching(root)
        else:
            self.watch_hub.stop(root, flush=True)
        self._refresh_watch_label()

    def _start_watching(self, root: str) -> None:
        """Watch a project whose index is complete; never one whose first index the user
        cancelled (the watcher would finish it behind their back)."""
        embedder, status = self.gate.loaded, self.statuses.get(root)
        if (root in self.settings.unwatched or embedder is None or not _ready(status)
                or self.is_shared(root)):  # fmt: skip
            return
        if status["model"] != embedder.model_id:  # its own model's index: not ours to update
            self._project_outdated(root, status["model"])
            return
        if error := self.watch_hub.start(root, embedder, self.settings):
            self.status_errors[root] = error
            self._render_project(self._item(root))

    def _project_selected(self, item) -> None:
        root = self.current_root()
        shared = self.is_shared(root)
        self.watch_box.blockSignals(True)
        self.watch_box.setChecked(bool(root) and root not in self.settings.unwatched
                                  and not shared)  # fmt: skip
        self.watch_box.blockSignals(False)
        self.watch_box.setEnabled(not shared)  # a shared index is read-only here
        self.reindex_button.setEnabled(not shared)
        self._render_info()
        self._refresh_watch_label()
        self.results.clear()
        self.preview.clear_file()
        self._update_empty_state()
        if self.query.text().strip():
            self.search_now()

    def _render_project(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        root = item.data(Qt.ItemDataRole.UserRole)
        status = self.statuses.get(root)
        if self.indexing == root:
            line = "indexing…"
        elif root in self.index_queue:
            line = "waiting to index"
        elif status and status["state"] == "unfinished":
            from app.core.store import files_phrase  # loaded by then: status came from it

            line = f"not finished ({files_phrase(status['files'])}) · F5 resumes"
        elif status:
            line = f"{status['files']} files · {status['chunks']} chunks"
        else:
            line = self.status_errors.get(root, "…")
        if self.is_shared(root):
            line = f"shared, read-only · {line}"
        elif root in self.outdated and status:
            line = f"{line} · another model"
        item.setText(f"{Path(root).name}\n    {line}")
        item.setToolTip(root)
        if item is self.projects.currentItem():
            self._render_info()

    def _render_info(self) -> None:
        root = self.current_root()
        status = self.statuses.get(root) if root else None
        self.upgrade_button.setVisible(root in self.outdated and not self.is_shared(root)
                                       and self.indexing != root)  # fmt: skip
        if not root:
            self.project_info.setText("")
        elif status and status["state"] == "unfinished":
            from app.core.store import files_phrase

            self.project_info.setText(
                f"{root}\nIndexing was interrupted after {files_phrase(status['files'])}. Press F5 "
                "to resume; only what is missing gets embedded."
            )
        elif status:
            from app.core.models import human_size

            where = f"Shared index {root}\nbuilt from {status['root']}" if status["store"] \
                else root  # fmt: skip
            older = ("\nBuilt with another model than the current one: searched with it, "
                     "and not watched, until you re-index."
                     if root in self.outdated else "")  # fmt: skip
            self.project_info.setText(
                f"{where}\n{status['files']} files, {status['chunks']} chunks, "
                f"{len(status['skipped'])} skipped\nmodel: {status['model']}\nindex: "
                f"{human_size(status['index_bytes'])}, last indexed {status['last_indexed']}"
                f"{older}"
            )
        else:
            self.project_info.setText(f"{root}\n{self.status_errors.get(root, '')}")

    @Slot(str, str)
    def _project_outdated(self, root: str, model: str) -> None:
        """Its index was built with another model than the current one (the earlier
        default, say): offer the re-index."""
        if root in self.outdated:
            return
        self.outdated[root] = model
        if root == self.current_root():
            self.message.setText(f"{Path(root).name} was indexed with another model "
                                 f"({model}); re-index it to use the current one.")
        self._render_project(self._item(root))

    @Slot(str, object, str)
    def _show_status(self, root: str, status, error: str) -> None:
        self.statuses[root] = status
        if status and self.model_id and status["model"] == self.model_id:
            self.outdated.pop(root, None)
        if error:
            self.status_errors[root] = error
        at_start = root in self.resume_at_start
        self.resume_at_start.discard(root)
        self._render_project(self._item(root))
        self._update_empty_state()
        if _ready(status):
            self._start_watching(root)
        elif status and at_start and not self.closing:
            self.start_index(root)  # an index interrupted by the last quit resumes

    # --- indexing -------------------------------------------------------------------------

    def start_index(self, root: str) -> None:
        if self.indexing == root or root in self.index_queue or self.is_shared(root):
            return
        if self.indexing is None:
            self.indexing = root
            self._show_work("Indexing " + Path(root).name + "…", pausable=True)
            self.request_index.emit(root)
        else:
            self.index_queue.append(root)
        self._render_project(self._item(root))

    @Slot(str, object)
    def _index_progress(self, root: str, p) -> None:
        name = Path(root).name
        if p.phase == "waiting":
            self.message.setText(p.current)
            return
        if p.phase in ("scanning", "finishing"):
            self.progress.setRange(0, 0)
            self.message.setText(f"{name}: {p.phase}…")
            return
        if p.phase != "indexing":
            return
        self.progress.setRange(0, max(1, p.files_total))
        self.progress.setValue(p.files_done)
        eta = f" · about {_duration(p.eta_s)} left" if p.eta_s else ""
        paused = " · paused" if self.indexer.control and self.indexer.control.paused else ""
        self.message.setText(
            f"Indexing {name}: {p.files_done}/{p.files_total} files · {p.chunks_embedded} "
            f"chunks embedded ({p.chunks_cached} from cache) · {p.chunks_per_s:.0f}/s"
            f"{eta}{paused}"
        )

    @Slot(str, object, str)
    def _index_finished(self, root: str, result, error: str) -> None:
        self.indexing = None
        self.paused_by_memory = False
        self._hide_work()
        name = Path(root).name
        if error:
            self.message.setText(f"{name}: {error}")
            if not self.closing:
                QMessageBox.warning(self, "Indexing stopped", f"{name}: {error}")
        elif result.cancelled:
            self.message.setText(f"Indexing {name} cancelled; re-index to finish (nothing "
                                 "done so far is lost).")  # fmt: skip
        else:
            self.message.setText(
                f"Indexed {name}: {result.files_indexed} files read, {result.files_unchanged} "
                f"unchanged, {result.files_deleted} removed · {result.chunks_embedded} chunks "
                f"embedded · {result.seconds:.1f} s"
            )
        self.request_forget_searcher.emit(root)
        QTimer.singleShot(IDLE_GC_MS, collect_when_idle)
        if not self.closing:
            self.request_status.emit(root)
            if self.index_queue:
                self.start_index(self.index_queue.pop(0))
            if root == self.current_root() and self.query.text().strip():
                self.search_now()
        self._render_project(self._item(root))

    def toggle_pause(self) -> None:
        control = self.indexer.control
        if control is None:
            return
        if control.paused:
            control.resume()
            self.pause_button.setText("Pause")
        else:
            control.pause()
            self.pause_button.setText("Resume")

    def cancel_work(self) -> None:
        self.gate.cancel.set()  # a model load in progress
        if self.indexer.control:
            self.indexer.control.cancel()
        self.index_queue.clear()

    def _show_work(self, text: str, pausable: bool) -> None:
        self.message.setText(text)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.pause_button.setVisible(pausable)
        self.pause_button.setText("Pause")

    def _hide_work(self) -> None:
        if self.indexing is None:
            self.progress.hide()
            self.pause_button.hide()
            self.cancel_button.hide()

    # --- the model ------------------------------------------------------------------------

    @Slot(float, str)
    def _model_progress(self, fraction: float, text: str) -> None:
        self.progress.show()
        self.cancel_button.show()
        self.progress.setRange(0, 100)
        self.progress.setValue(int(fraction * 100))
        self.message.setText(f"Loading the model: {text}" if text else "Loading the model…")

    @Slot(str)
    def _model_ready(self, model_id: str) -> None:
        self.model_id = model_id
        embedder = self.gate.embedder
        if embedder is not None:
            self.memory.model_bytes = embedder.resident_bytes
        if self.indexing is None:
            self._hide_work()
            if self.message.text().startswith("Loading the model"):
                self.message.setText(f"Model ready: {model_id}")
        for root in self.settings.projects:
            self._start_watching(root)

    @Slot(str)
    def _model_failed(self, error: str) -> None:
        self._hide_work()
        self.message.setText(error)
        if not self.closing and "cancelled" not in error:
            QMessageBox.warning(self, "The model could not be loaded",
                                f"{error}\n\nExact-word search works without a model.")
            self.mode.setCurrentIndex(len(MODES) - 1)

    def open_settings(self) -> None:
        before = self.settings.embedding
        chunks_before = self.settings.max_chunk_tokens
        demote_before = self.settings.demote_tests
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        self.settings.save()
        self.memory.refresh()
        if self.settings.demote_tests != demote_before:
            QMetaObject.invokeMethod(self.engine, "forget_all", Qt.ConnectionType.QueuedConnection)
            self.search_now()
        if self.settings.embedding != before:
            self._switch_model()
        elif self.settings.max_chunk_tokens != chunks_before:
            self.message.setText("The new chunk limit applies when a project is next "
                                 "re-indexed (F5).")  # fmt: skip

    def _switch_model(self) -> None:
        """Use the new model from the next search or index on; the old one is freed."""
        if self.indexing:
            QMessageBox.information(self, "Model changed", "The new model is used from the "
                                    "next index; the current one finishes first.")  # fmt: skip
        self.watch_hub.stop_all(flush=True)
        self.model_id = None
        self.outdated.clear()
        old = self.gate
        self.gate = ModelGate(self.settings)
        self.engine.gate = self.indexer.gate = self.gate
        QMetaObject.invokeMethod(self.engine, "forget_all", Qt.ConnectionType.QueuedConnection)
        if self.indexing is None:
            old.close()
        self.message.setText("Model changed: projects are re-indexed with it when you "
                             "re-index them (F5).")  # fmt: skip

    # --- search ---------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.query.setFocus()
        self.query.selectAll()

    def clear_search(self) -> None:
        self.query.clear()
        self.results.clear()
        self.preview.clear_file()
        self.query.setFocus()
        self._update_empty_state()

    def search_now(self) -> None:
        self.debounce.stop()
        root, query = self.current_root(), self.query.text().strip()
        if not root or not query or self.statuses.get(root) is None:
            self._update_empty_state()
            return
        self.search_serial += 1
        mode = self.mode.currentData()
        self.settings.search_mode = mode
        self.request_search.emit(SearchRequest(
            self.search_serial, root, query, RESULTS, mode,
            self.language.text().strip() or None, self.path_glob.text().strip() or None,
        ))  # fmt: skip

    @Slot(object, object, str)
    def _show_results(self, request: SearchRequest, results, error: str) -> None:
        if request.serial != self.search_serial:
            return  # an older query, overtaken by typing
        if error:
            self.message.setText(error)
        selected = self.results.current_result()
        self.results.show_results(results, keep=selected)
        self._update_empty_state(error)
        if results:
            self.message.setText(f"{len(results)} results for “{request.query}”")

    def _result_selected(self, *_) -> None:
        r = self.results.current_result()
        root = self.current_root()
        if r is None or root is None:
            return
        self.preview.show_file(self._source(root) / r.path, r.path, r.start_line, r.end_line,
                               stored=r.text if self.is_shared(root) else None)  # fmt: skip
        self.preview_title.setText(f"<b>{r.path}</b>:{r.start_line}–{r.end_line}  {r.symbol}")

    def open_current(self) -> None:
        r, root = self.results.current_result(), self.current_root()
        if r and root:
            open_in_editor(self.settings.editor_command, self._source(root) / r.path,
                           r.start_line, self)  # fmt: skip

    def copy_location(self) -> None:
        r, root = self.results.current_result(), self.current_root()
        if r and root:
            QGuiApplication.clipboard().setText(f"{self._source(root) / r.path}:{r.start_line}")
            self.message.setText(f"Copied {r.path}:{r.start_line}")

    def _source(self, root: str) -> Path:
        """The folder a project's result paths are relative to: a shared index's is the
        one it was built from (the same checkout path here, if there is one)."""
        status = self.statuses.get(root)
        return Path(status["root"]) if self.is_shared(root) and status else Path(root)

    def _update_empty_state(self, error: str = "") -> None:
        root = self.current_root()
        if self.results.count():
            self.result_stack.setCurrentWidget(self.results)
            return
        if not self.projects.count():
            text = "Add a folder to start.\n\nFile ▸ Add folder… (Ctrl+O), or drop a folder here."
        elif root and not _ready(self.statuses.get(root)) and self.indexing == root:
            text = "Indexing this project…"
        elif root and self.statuses.get(root) is None:
            text = (f"This project is not indexed yet.\n\nPress F5 to index it."
                    f"\n{self.status_errors.get(root, '')}")  # fmt: skip
        elif root and not _ready(self.statuses.get(root)):
            text = "Indexing this project was interrupted.\n\nPress F5 to resume it."
        elif error:
            text = error
        elif self.query.text().strip():
            text = "No results. Try other words, or “Exact words” mode for names."
        else:
            text = "Type what you are looking for.\n\nCtrl+F focuses the search box; ↑/↓ move " \
                   "through results, Enter opens one in your editor."  # fmt: skip
        self.empty.setText(text)
        self.result_stack.setCurrentWidget(self.empty)

    # --- watching and memory ----------------------------------------------------------

    @Slot(str, object)
    def _watch_progress(self, root: str, p) -> None:
        """A watcher catching up (after a branch switch, or changes made while closed)."""
        if p.phase == "indexing" and p.files_total and self.indexing is None:
            self.message.setText(f"Updating {Path(root).name}: {p.files_done}/"
                                 f"{p.files_total} changed files")  # fmt: skip

    @Slot(object)
    def _watch_event(self, event) -> None:
        root = str(event.root)
        if event.kind == "updated":
            self.request_forget_searcher.emit(root)
            self.request_status.emit(root)
            if root == self.current_root():
                self.search_now()  # results (and the preview) follow the files
        elif event.kind in ("polling", "unavailable", "error", "unfinished"):
            self.message.setText(event.message)
        self._refresh_watch_label()

    def _refresh_watch_label(self) -> None:
        root = self.current_root()
        watcher = self.watch_hub.watchers.get(root) if root else None
        if not root:
            text = ""
        elif self.is_shared(root):
            text = "shared index: read-only"
        elif root in self.settings.unwatched:
            text = "not watching"
        elif watcher is None:
            text = "watching starts with the model" if self.gate.loaded is None else ""
        else:
            when = ago(watcher.last_update)
            text = {"watching": "watching", "polling": "re-scanning every 10 s",
                    "unavailable": "folder unavailable"}.get(watcher.mode, watcher.mode)
            if when:
                text += f" · updated {when}"
        self.watch_label.setText(text)

    @Slot(str, str)
    def _memory_level(self, level: str, text: str) -> None:
        control = self.indexer.control
        if level == "critical" and control and not control.paused:
            control.pause()
            self.paused_by_memory = True
            self.message.setText(f"{text} Indexing paused until memory frees up.")
        elif level != "critical" and self.paused_by_memory and control:
            control.resume()
            self.paused_by_memory = False
            self.message.setText(f"{text} Indexing resumed.")
        if level == "high" and not self.warned_high:
            self.warned_high = True
            box = QMessageBox(QMessageBox.Icon.Warning, "Memory is running low",
                              f"{text}\nCodeLamp keeps working; closing other programs "
                              "helps. Indexing pauses by itself if it gets critical.",
                              QMessageBox.StandardButton.Ok, self)  # fmt: skip
            box.setModal(False)
            box.show()
            self.memory_warning = box

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
        """Cancel the work, wait for the threads, save where things were."""
        self.closing = True
        self.settings.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        self.settings.splitter_state = bytes(self.splitter.saveState().toBase64()).decode()
        self.settings.save()
        self.memory.timer.stop()
        self.tick.stop()
        self.index_queue.clear()
        self.cancel_work()
        self.watch_hub.stop_all(flush=False)
        for thread in (self.index_thread, self.engine_thread):
            thread.quit()
            thread.wait()
        self.gate.close()
        self.engine.forget_all()  # the threads are done: this closes the older models
        event.accept()


def _ready(status: dict | None) -> bool:
    """The project has a complete index (searchable, and safe to watch)."""
    return bool(status) and status["state"] == "ready"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
