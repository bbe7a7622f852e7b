"""The status bar: what is happening (a message, progress with pause and cancel), whether
the selected project is watched, and the memory gauge."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from app.gui.widgets import MemoryGauge, ago

PROGRESS_STEPS = 1000


class StatusBar(QStatusBar):
    def __init__(self, controller, memory_reader) -> None:
        super().__init__()
        self.controller = controller
        self.message = QLabel()
        self.message.setMinimumWidth(80)  # long messages must not widen the window
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.pause_button.hide()
        self.cancel_button.hide()
        self.watch_label = QLabel()
        self.memory = MemoryGauge(controller.settings, memory_reader)
        self.addWidget(self.message, 1)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.pause_button)
        self.addPermanentWidget(self.cancel_button)
        self.addPermanentWidget(self.watch_label)
        self.addPermanentWidget(self.memory)
        self.pause_button.clicked.connect(controller.toggle_pause)
        self.cancel_button.clicked.connect(controller.cancel)
        controller.progress.connect(self.show_progress)
        controller.work_changed.connect(self.render_work)
        controller.model_progress.connect(self.model_progress)
        controller.message.connect(self.say)

    def say(self, text: str) -> None:
        if self.controller.closing:
            return  # "Stopping…" stays until the window closes
        self.message.setText(text)
        self.message.setToolTip(text)

    def render_work(self) -> None:
        """Progress, Pause and Cancel while anything runs; nothing otherwise."""
        c = self.controller
        if c.closing:
            return
        control = c.active_control()
        busy = c.indexing is not None or c.catching_up is not None
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.pause_button.setVisible(busy and control is not None)
        self.pause_button.setText("Resume" if control is not None and control.paused else "Pause")
        if busy and self.progress.maximum() != PROGRESS_STEPS:
            self.progress.setRange(0, 0)  # busy until the first figures arrive
        if c.indexing and not self.message.text().startswith("Indexing"):
            self.say(f"Indexing {Path(c.indexing).name}…")

    def show_progress(self, root: str, p) -> None:
        if self.controller.closing:
            return
        name = Path(root).name
        what = "Indexing" if self.controller.indexing == root else "Updating"
        if p.phase == "waiting":
            self.say(p.current)
            return
        if p.phase in ("scanning", "finishing"):
            self.progress.setRange(0, 0)
            self.say(f"{what} {name}: {p.phase}…")
            return
        if p.phase != "indexing":
            return
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(int(p.fraction * PROGRESS_STEPS))
        eta = f" · about {duration(p.eta_s)} left" if p.eta_s else ""
        control = self.controller.active_control()
        paused = " · paused" if control is not None and control.paused else ""
        current = f" · {p.current}" if p.current else ""
        self.say(
            f"{what} {name}: {p.fraction:.0%} · {p.files_done}/{p.files_total} files · "
            f"{p.chunks_embedded} chunks embedded ({p.chunks_cached} from cache) · "
            f"{p.chunks_per_s:.0f}/s{eta}{paused}{current}"
        )

    def model_progress(self, fraction: float, text: str) -> None:
        self.progress.show()
        self.cancel_button.show()
        self.progress.setRange(0, 100)
        self.progress.setValue(int(fraction * 100))
        self.say(f"Loading the model: {text}" if text else "Loading the model…")

    def model_done(self) -> None:
        """The model loaded or failed: back to what the rest of the work shows."""
        if self.controller.indexing is None and self.controller.catching_up is None:
            self.progress.hide()
            self.pause_button.hide()
            self.cancel_button.hide()

    def stopping(self) -> None:
        """Shutting down (call it first): say so while the work winds down."""
        self.message.setText("Stopping…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.pause_button.hide()
        self.cancel_button.hide()

    def show_watch_state(self, root: str | None) -> None:
        c = self.controller
        watcher = c.watch_hub.watchers.get(root) if root else None
        if not root:
            text = ""
        elif c.is_shared(root):
            text = "shared index: read-only"
        elif root in c.settings.unwatched:
            text = "not watching"
        elif watcher is None:
            text = "watching starts with the model" if c.gate.loaded is None else ""
        else:
            when = ago(watcher.last_update)
            text = {
                "watching": "watching",
                "polling": "re-scanning every 10 s",
                "unavailable": "folder unavailable",
            }.get(watcher.mode) or watcher.mode
            if when:
                text += f" · updated {when}"
        self.watch_label.setText(text)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
