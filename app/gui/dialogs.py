"""Settings and About."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core.chunking import MIN_CHUNK_TOKENS, chunk_limit
from app.core.errors import CodeLampError
from app.gui.widgets import editor_command


def describe_model(path: Path) -> tuple[bool, str]:
    """(usable, a description or the reason it is not) without loading the model."""
    from app.core.memory import model_fits
    from app.core.models import human_size, inspect_model

    try:
        info = inspect_model(path)
    except CodeLampError as exc:
        return False, str(exc)
    fits, needed, available = model_fits(info.file_size, info.max_tokens, info.embedding_dim)
    text = (
        f"{info.name} · {info.architecture} · {info.param_count / 1e6:.0f}M parameters\n"
        f"{info.embedding_dim} dims · {info.quantization} · {human_size(info.file_size)} · "
        f"{info.max_tokens} tokens · {info.pooling} pooling\n"
    )
    if fits:
        return (
            True,
            text + f"Fits in memory: needs ~{human_size(needed)}, {human_size(available)} free.",
        )
    return False, text + (
        f"Does not fit in memory now: needs ~{human_size(needed)}, only "
        f"{human_size(available)} free."
    )


class SettingsDialog(QDialog):
    def __init__(self, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CodeLamp Settings")
        self.settings = settings

        self.use_default = QRadioButton(
            "The default model (CodeLamp's own, trained on code; built in)"
        )
        self.use_file = QRadioButton("A GGUF embedding model file:")
        group = QButtonGroup(self)
        group.addButton(self.use_default)
        group.addButton(self.use_file)
        self.model_file = QLineEdit(settings.model_path)
        self.model_file.setReadOnly(True)
        self.model_file.setPlaceholderText("no file chosen")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.choose_model)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        (self.use_file if settings.model_path else self.use_default).setChecked(True)
        self.use_default.toggled.connect(self._describe)

        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic (one per core)")
        self.threads.setValue(settings.threads)
        self.max_file_kb = QSpinBox()
        self.max_file_kb.setRange(1, 1 << 20)
        self.max_file_kb.setSuffix(" KiB")
        self.max_file_kb.setValue(settings.max_file_kb)
        self.chunk_tokens = QSpinBox()
        self.chunk_tokens.setRange(0, 8192)
        self.chunk_tokens.setSingleStep(MIN_CHUNK_TOKENS)
        self.chunk_tokens.setSpecialValueText("the model's limit")
        self.chunk_tokens.setSuffix(" tokens")
        self.chunk_tokens.setToolTip(
            f"Largest chunk embedded, at least {MIN_CHUNK_TOKENS} tokens and never more than "
            "the model allows. Smaller chunks point at smaller pieces of code but see less "
            "context. A change applies when a project is next re-indexed (F5)."
        )
        self.chunk_tokens.setValue(settings.max_chunk_tokens)
        self.ignores = QPlainTextEdit("\n".join(settings.ignore_patterns))
        self.ignores.setPlaceholderText("one .gitignore pattern per line, e.g. *.generated.ts")
        self.ignores.setMaximumHeight(90)
        self.editor = QLineEdit(settings.editor_command)
        self.editor.setPlaceholderText(f"detected: {editor_command('') or 'system opener'}")
        self.demote = QCheckBox("Rank tests, vendored code, shims and .d.ts stubs lower")
        self.demote.setToolTip(
            'In hybrid search, unless the query asks for them ("tests of…", "stub", "vendored").'
        )
        self.demote.setChecked(settings.demote_tests)
        self.storage = QComboBox()
        self.storage.addItem("LanceDB (any size)", "lancedb")
        self.storage.addItem("Lite (SQLite, for small projects)", "lite")
        self.storage.setCurrentIndex(1 if settings.storage == "lite" else 0)
        from app.core.storage import lancedb_problem

        if (why := lancedb_problem()) is not None:  # an installer without LanceDB
            self.storage.model().item(0).setEnabled(False)
            self.storage.setCurrentIndex(1)
            self.storage.setItemData(
                0, f"LanceDB cannot be used here ({why})", Qt.ItemDataRole.ToolTipRole
            )
        self.storage.setToolTip(
            "Where new indexes are kept; both find the same results. An index keeps its "
            "storage until it is rebuilt (forget the project and add it again)."
        )
        self.high = self._percent(settings.memory_high_percent)
        self.critical = self._percent(settings.memory_critical_percent)

        server = self._server_box(settings)

        model_row = QHBoxLayout()
        model_row.addWidget(self.model_file, 1)
        model_row.addWidget(browse)
        form = QFormLayout()
        form.addRow(self.use_default)
        form.addRow(self.use_file)
        form.addRow(model_row)
        form.addRow(self.model_info)
        form.addRow("Threads", self.threads)
        form.addRow("Largest file indexed", self.max_file_kb)
        form.addRow("Largest chunk", self.chunk_tokens)
        form.addRow("Also ignore", self.ignores)
        form.addRow("Editor command", self.editor)
        form.addRow(self.demote)
        form.addRow("Index storage", self.storage)
        form.addRow("Memory warning at", self.high)
        form.addRow("Pause indexing at", self.critical)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(server)
        layout.addWidget(buttons)
        self._describe()

    def _server_box(self, settings) -> QGroupBox:
        """Embedding servers (OpenAI-compatible), instead of the model on this computer."""
        from app.core.remote import API_KEY_ENV

        box = QGroupBox("Embedding server (optional)")
        self.server_urls = QPlainTextEdit("\n".join(settings.embedder_urls))
        self.server_urls.setPlaceholderText(
            "e.g. http://gpu-box:8080/v1, one per line; empty: embed on this computer"
        )
        self.server_urls.setMaximumHeight(60)
        self.server_urls.setToolTip(
            "Any OpenAI-compatible /v1/embeddings server: llama.cpp, vLLM, "
            "text-embeddings-inference, Ollama, LM Studio. Several are load-balanced. Your "
            "code is sent to them: use only servers you trust. The model file chosen above, "
            "if any, must be the one the server runs."
        )
        self.server_model = QLineEdit(settings.embedder_model)
        self.server_model.setPlaceholderText("the model the server lists")
        self.server_concurrency = QSpinBox()
        self.server_concurrency.setRange(1, 64)
        self.server_concurrency.setValue(settings.embedder_concurrency)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(
            f"from ${API_KEY_ENV} or the system keyring; type one to store it there"
        )
        form = QFormLayout(box)
        form.addRow("Servers", self.server_urls)
        form.addRow("Model name", self.server_model)
        form.addRow("Requests in flight", self.server_concurrency)
        form.addRow("API key", self.api_key)
        return box

    def _server_urls(self) -> list[str] | None:
        """The server URLs typed, normalised; None (after saying why) if one is wrong or
        the key cannot be stored."""
        from app.core.remote import endpoint_url, save_api_key

        try:
            urls = list(
                dict.fromkeys(
                    endpoint_url(line)
                    for line in self.server_urls.toPlainText().splitlines()
                    if line.strip()
                )
            )
            if key := self.api_key.text().strip():
                for url in urls:
                    save_api_key(url, key)
        except CodeLampError as exc:
            QMessageBox.warning(self, "Embedding server", str(exc))
            return None
        return urls

    @staticmethod
    def _percent(value: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(10, 100)
        box.setDecimals(0)
        box.setSuffix(" % of memory in use")
        box.setValue(value)
        return box

    def choose_model(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF embedding model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if name:
            self.set_model_file(name)

    def set_model_file(self, name: str) -> None:
        self.model_file.setText(name)
        self.use_file.setChecked(True)
        self._describe()

    def _describe(self) -> None:
        if self.use_default.isChecked():
            from app.core.default_model import shipped_model_path

            # The same figures as for any file: one estimate of the memory it needs.
            usable, text = describe_model(shipped_model_path())
            self.model_info.setText(
                f"CodeLamp's own code-search model (all-MiniLM-L6-v2 fine-tuned on code)\n{text}"
                if usable
                else text
            )
            return
        name = self.model_file.text()
        if not name:
            self.model_info.setText("Choose a .gguf file.")
            return
        usable, text = describe_model(Path(name))
        self.model_info.setText(text if usable else f"Not usable: {text}")

    def accept(self) -> None:
        if self.use_file.isChecked():
            name = self.model_file.text()
            usable, text = describe_model(Path(name)) if name else (False, "No file chosen.")
            if not usable:
                QMessageBox.warning(
                    self, "Model not usable", f"{text}\n\nThe current model stays in use."
                )
                return
        if self.critical.value() <= self.high.value():
            QMessageBox.warning(
                self,
                "Memory thresholds",
                "The pause threshold must be above the warning threshold.",
            )
            return
        urls = self._server_urls()
        if urls is None:
            return
        s = self.settings
        s.embedder_urls = urls
        s.embedder_model = self.server_model.text().strip()
        s.embedder_concurrency = self.server_concurrency.value()
        s.model_path = self.model_file.text() if self.use_file.isChecked() else ""
        s.threads = self.threads.value()
        s.max_file_kb = self.max_file_kb.value()
        s.max_chunk_tokens = chunk_limit(self.chunk_tokens.value())
        s.ignore_patterns = [
            x.strip() for x in self.ignores.toPlainText().splitlines() if x.strip()
        ]
        s.editor_command = self.editor.text().strip()
        s.demote_tests = self.demote.isChecked()
        s.storage = self.storage.currentData()
        from app.core import storage

        storage.choose(s.storage)
        s.memory_high_percent = self.high.value()
        s.memory_critical_percent = self.critical.value()
        super().accept()


class SharedIndexDialog(QDialog):
    """File ▸ Open shared index…: the URI of an index that another machine builds."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open shared index")
        self.uri = QLineEdit()
        self.uri.setPlaceholderText("s3://bucket/prefix or /path/to/folder")
        self.uri.setMinimumWidth(420)
        hint = QLabel(
            "A shared index is searched here, read-only; the machine that builds "
            "it runs <tt>codelamp index PATH --store URI</tt>. For S3, CodeLamp "
            "reads the endpoint and keys from the AWS_* environment variables "
            "(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_REGION)."
        )
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Where the index is:"))
        layout.addWidget(self.uri)
        layout.addWidget(hint)
        layout.addWidget(buttons)

    def accept(self) -> None:
        from app.core.location import Location

        try:
            self.location = Location.parse(self.uri.text())
        except CodeLampError as exc:
            QMessageBox.warning(self, "Open shared index", str(exc))
            return
        super().accept()


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About CodeLamp",
        f"<h3>CodeLamp {__version__}</h3><p>Offline semantic code search. "
        "Your code and your queries never leave this computer.</p>"
        "<p>Apache-2.0</p>",
    )
