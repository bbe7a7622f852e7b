#!/usr/bin/env python3
"""Save PNGs of the app's main states, offscreen, with the real model and a real index:

    empty.png        no project yet
    indexing.png     a first index under way: progress by bytes, the file being read
    interrupted.png  a cancelled first index: "not finished · Resume (F5)"
    results.png      hybrid results grouped by file, the query's words marked, the preview
    regex.png        Regex mode: every matching line, each match marked
    stopping.png     closing while the index runs: "Stopping…"
    settings.png     the settings dialog

    .venv/bin/python scripts/screenshot.py OUTDIR

A temporary CODELAMP_HOME is used; the model is the default one that comes with CodeLamp.
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
    big = copy_packages(work / "email-lib", ["email"])

    from app.core.modes import SearchMode
    from app.gui.app import application
    from app.gui.dialogs import SettingsDialog
    from app.gui.main_window import MainWindow
    from app.settings import Settings

    app = application()
    window = MainWindow(Settings(model_path=str(model)))
    c, s, bar = window.controller, window.search, window.status
    window.resize(1280, 800)
    window.show()
    wait(app, lambda: True, 0.5)
    shot(window, out / "empty.png")

    window.add_project(str(project))
    wait(
        app,
        lambda: (
            bar.message.text().startswith("Indexing stdlib-sample: ") and bar.progress.value() > 30
        ),
        120,
    )
    shot(window, out / "indexing.png")
    wait(app, lambda: c.indexing is None and c.statuses.get(str(project)), 600)

    window.add_project(str(big))
    wait(app, lambda: bar.progress.value() > 30, 120)
    c.cancel()
    wait(app, lambda: c.indexing is None and c.statuses.get(str(big)), 120)
    shot(window, out / "interrupted.png")

    window.projects.select(str(project))
    s.query.setText("read the http response headers")
    s.search_now()
    wait(app, lambda: s.results.result_count() > 0, 60)
    wait(app, lambda: s.preview.path is not None, 10)
    shot(window, out / "results.png")

    s.mode.setCurrentIndex(s.mode.findData(SearchMode.REGEX.value))
    s.query.setText(r"def \w*header\w*\(")
    s.search_now()
    wait(app, lambda: s.results.result_count() > 0 and s.shown.mode == "regex", 60)
    wait(app, lambda: s.preview.path is not None, 10)
    shot(window, out / "regex.png")

    dialog = SettingsDialog(window.settings, window)
    dialog.show()
    wait(app, lambda: True, 0.3)
    shot(dialog, out / "settings.png")
    dialog.reject()

    window.projects.select(str(big))
    window.reindex_current()
    wait(app, lambda: bar.progress.value() > 30, 120)
    window.close()
    wait(app, lambda: True, 0.2)
    shot(window, out / "stopping.png")
    wait(app, lambda: c.done, 120)
    shutil.rmtree(work, ignore_errors=True)
    print(f"saved {', '.join(sorted(p.name for p in out.glob('*.png')))} in {out}")
    return 0


def shot(widget, path: Path) -> None:
    widget.grab().save(str(path))


def wait(app, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        app.processEvents()
        if done() or time.monotonic() > deadline:
            return
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
