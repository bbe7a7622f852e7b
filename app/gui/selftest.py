"""`codelamp --selftest`: open the real window offscreen, index a small sample, search it.

For checking an installation (the packaged build's smoke test runs it) and for timing
start-up. Everything it writes goes to a temporary folder; the user's projects, settings
and indexes are not touched. Prints one JSON line; exit code 0 when the search found the
expected function.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

SAMPLE = {
    "uploads.py": """import time


def retry_failed_upload(client, blob, attempts=5):
    for attempt in range(attempts):
        if client.put(blob):
            return True
        time.sleep(2 ** attempt)
    return False
""",
    "config.py": """import json


def parse_config(path):
    with open(path) as handle:
        return json.load(handle)
""",
}
QUERY, EXPECTED = "where do we retry failed uploads?", "uploads.py"
TIMEOUT_S = 300


def selftest() -> int:
    from app import paths
    from app.core.default_model import install_default_model

    started = psutil.Process().create_time()
    report: dict = {"ok": False}
    work = None
    try:
        model = install_default_model().path  # the installed (or bundled) one, real home
        work = Path(tempfile.mkdtemp(prefix="codelamp-selftest-"))
        os.environ[paths.HOME_ENV] = str(work / "home")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        report |= _run(work, model, started)
    except Exception as exc:  # noqa: BLE001 - the report says what failed
        report["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


def _run(work: Path, model: Path, started: float) -> dict:
    from app.gui.app import application
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    app = application()
    window = MainWindow(Settings(model_path=str(model)))
    window.show()
    app.processEvents()
    shown = time.time() - started
    project = work / "project"
    project.mkdir()
    for name, text in SAMPLE.items():
        (project / name).write_text(text, encoding="utf-8")
    c, search = window.controller, window.search
    try:
        window.add_project(str(project))
        _wait(app, lambda: c.indexing is None and c.statuses.get(str(project)))
        search.query.setText(QUERY)
        search.search_now()
        _wait(
            app, lambda: search.results.result_count() > 0 or "rror" in window.status.message.text()
        )
        top = search.results.current_result()
        return {
            "ok": top is not None and top.path == EXPECTED,
            "window_shown_s": round(shown, 3),
            "top": top.path if top else None,
            "message": window.status.message.text(),
        }
    finally:
        window.close()
        _wait(app, lambda: c.done)


def _wait(app, done) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer in {TIMEOUT_S} s")
        app.processEvents()
        time.sleep(0.01)
