#!/usr/bin/env python3
"""Save PNGs of the app's main states, offscreen, with the real model and a real index:
empty.png, indexing.png, results.png (with the preview), settings.png.

    .venv/bin/python scripts/screenshot.py OUTDIR

A temporary CODELAMP_HOME is used, with the default model copied from yours (or built).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_index import copy_packages


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    from app import paths
    from app.core.default_model import install_default_model

    model = install_default_model().path
    work = Path(tempfile.mkdtemp(prefix="codelamp-shots-"))
    os.environ[paths.HOME_ENV] = str(work / "home")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    project = copy_packages(work / "stdlib-sample", ["json", "http", "logging"])

    from app.gui.app import application
    from app.gui.dialogs import SettingsDialog
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    app = application()
    window = MainWindow(Settings(model_path=str(model)))
    window.resize(1280, 800)
    window.show()
    wait(app, lambda: True, 0.5)
    window.grab().save(str(out / "empty.png"))

    window.add_project(str(project))
    wait(app, lambda: window.message.text().startswith("Indexing stdlib-sample: ")
         and window.progress.value() > 3, 120)  # fmt: skip
    window.grab().save(str(out / "indexing.png"))
    wait(app, lambda: window.indexing is None and window.statuses.get(str(project)), 600)

    window.query.setText("read the http response headers")
    window.search_now()
    wait(app, lambda: window.results.count() > 0, 60)
    window.results.setCurrentRow(0)
    wait(app, lambda: window.preview.path is not None, 10)
    window.grab().save(str(out / "results.png"))

    dialog = SettingsDialog(window.settings, window)
    dialog.show()
    wait(app, lambda: True, 0.3)
    dialog.grab().save(str(out / "settings.png"))
    dialog.reject()
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"saved {', '.join(sorted(p.name for p in out.glob('*.png')))} in {out}")
    return 0


def wait(app, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        app.processEvents()
        if done() or time.monotonic() > deadline:
            return
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
