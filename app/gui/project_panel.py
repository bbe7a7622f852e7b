"""The projects on the left: the list with each one's state, the selected one's details,
and the buttons that act on it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.controller import ready


class ProjectPanel(QWidget):
    selected = Signal(str)  # the selected project's root, "" for none

    def __init__(self, controller) -> None:
        super().__init__()
        self.controller = controller
        self.list = QListWidget()
        self.list.setMinimumWidth(200)
        self.list.setAcceptDrops(False)
        self.add_button = QPushButton("Add folder…")
        self.reindex_button = QPushButton("Re-index")
        self.remove_button = QPushButton("Remove")
        self.watch_box = QCheckBox("Watch for changes")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.upgrade_button = QPushButton("Re-index with the current model")
        self.upgrade_button.setToolTip(
            "This project's index was built with another model "
            "(an earlier default, say). Re-indexing embeds it again "
            "with the current one."
        )
        self.upgrade_button.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Projects</b>"))
        layout.addWidget(self.list, 1)
        layout.addWidget(self.info)
        layout.addWidget(self.upgrade_button)
        layout.addWidget(self.watch_box)
        row = QHBoxLayout()
        for b in (self.add_button, self.reindex_button, self.remove_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.list.currentItemChanged.connect(lambda *_: self._selection_changed())
        self.watch_box.toggled.connect(self._watch_toggled)
        controller.project_changed.connect(self.render)
        controller.project_removed.connect(self.remove_item)
        self._selection_changed()

    def add_item(self, root: str) -> None:
        if self.item(root) is None:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, root)
            item.setToolTip(root)
            self.list.addItem(item)
            self.render(root)

    def select(self, root: str) -> None:
        if (item := self.item(root)) is not None:
            self.list.setCurrentItem(item)

    def remove_item(self, root: str) -> None:
        if (item := self.item(root)) is not None:
            self.list.takeItem(self.list.row(item))
            self._selection_changed()

    def item(self, root: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == root:
                return self.list.item(i)
        return None

    def current_root(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def render(self, root: str) -> None:
        item = self.item(root)
        if item is None:
            return
        item.setText(f"{Path(root).name}\n    {self.controller.line(root)}")
        if item is self.list.currentItem():
            self._render_selected()

    def _selection_changed(self) -> None:
        self._render_selected()
        self.selected.emit(self.current_root() or "")

    def _render_selected(self) -> None:
        c, root = self.controller, self.current_root()
        shared, removing = c.is_shared(root), root in c.removing
        self.watch_box.blockSignals(True)
        self.watch_box.setChecked(bool(root) and root not in c.settings.unwatched and not shared)
        self.watch_box.blockSignals(False)
        self.watch_box.setEnabled(bool(root) and not shared and not removing)
        self.reindex_button.setEnabled(bool(root) and not shared and not removing)
        self.remove_button.setEnabled(bool(root) and not removing)
        status = c.statuses.get(root) if root else None
        resumable = bool(status) and not ready(status) and c.indexing != root
        self.reindex_button.setText("Resume" if resumable else "Re-index")
        self.upgrade_button.setVisible(
            bool(root)
            and root in c.outdated_models
            and not shared
            and c.indexing != root
            and not removing
        )
        self.info.setText(c.info(root) if root else "")

    def _watch_toggled(self, on: bool) -> None:
        if root := self.current_root():
            self.controller.set_watching(root, on)
