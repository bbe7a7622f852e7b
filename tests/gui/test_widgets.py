"""The window's widgets on their own, offscreen: the preview, the results view, opening
an editor. Results are made by hand; no model or index is needed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QDesktopServices, QFontDatabase, QFontMetricsF, QImage, QPalette
from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.search import SearchResult
from app.gui.highlight import match_background
from app.gui.preview import Preview, PreviewPanel
from app.gui.results_view import BAR, PAD, PATH, RESULT, ResultView, fit_snippet
from app.gui.widgets import open_in_editor, start_editor

# Lines that end in an italic comment or a bold name: glyphs whose ink reaches past their
# advance, the case that left a gap at the end of marked lines.
STRIPES_SOURCE = """import os


class Uploader:  # a comment ending in f
    def retry(self, blob):  # until told
        # proof of a fl
        return self.send
plain = 1
"""


def dark_palette(light: QPalette) -> QPalette:
    palette = QPalette(light)
    for role, colour in (
        ("Window", "#2b2b2b"),
        ("WindowText", "#dddddd"),
        ("Base", "#1e1e1e"),
        ("AlternateBase", "#262626"),
        ("Text", "#dddddd"),
        ("Button", "#353535"),
        ("ButtonText", "#dddddd"),
        ("Highlight", "#2f65ca"),
        ("HighlightedText", "#ffffff"),
        ("PlaceholderText", "#8a8a8a"),
    ):
        palette.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    return palette


@pytest.fixture(params=["light", "dark"])
def palette(request, qapp) -> str:
    """The whole app in a light or a dark palette, as a desktop theme would set it."""
    before = qapp.palette()
    light = qapp.style().standardPalette()
    qapp.setPalette(light if request.param == "light" else dark_palette(light))
    yield request.param
    qapp.setPalette(before)


def shown(qtbot, widget, width: int = 600, height: int = 240):
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def viewport_image(preview: Preview) -> QImage:
    image = preview.viewport().grab().toImage()
    image.setDevicePixelRatio(1)
    return image


def line_rows(preview: Preview, line: int, scale: float) -> range:
    """The image rows inside a 1-based line (not its edges)."""
    block = preview.document().findBlockByNumber(line - 1)
    rect = preview.blockBoundingGeometry(block).translated(preview.contentOffset())
    return range(int(rect.top() * scale) + 1, int(rect.bottom() * scale) - 1)


def test_marked_lines_have_no_stripes_at_their_ends(qtbot, palette, tmp_path):
    """The base colour never shows through a marked line, after italic or bold tokens too."""
    source = tmp_path / "sample.py"
    source.write_text(STRIPES_SOURCE)
    preview = shown(qtbot, Preview())
    preview.show_file(source, "sample.py", 4, 7)
    preview.verticalScrollBar().setValue(0)
    image = viewport_image(preview)
    scale = preview.viewport().devicePixelRatioF()
    base = preview.palette().color(QPalette.ColorRole.Base).rgb()
    picture = tmp_path / f"marked-{palette}.png"
    image.save(str(picture))
    stripes = [
        (line, x, y)
        for line in range(4, 8)
        for y in line_rows(preview, line, scale)
        for x in range(image.width())
        if image.pixel(x, y) == base
    ]
    assert not stripes, f"base colour in marked lines at (line, x, y) {stripes[:5]}: {picture}"


def numbered_lines(count: int, long_line: int = 0) -> str:
    """Lines for a .txt file: big files are plain text here, because PySide6 6.12 on
    Python 3.11 drops a reference to None on every call of a method that returns nothing,
    such as the highlighter's setFormat for each token, and None must not run out."""
    return "".join(
        f"line_{n} = {'x' * 300 if n == long_line else n}\n" for n in range(1, count + 1)
    )


def test_gutter_grows_with_the_line_count(qtbot, tmp_path):
    preview = shown(qtbot, Preview())
    widths = []
    for count in (9, 99_999):
        source = tmp_path / f"{count}.txt"
        source.write_text(numbered_lines(count))
        preview.show_file(source, source.name, 1, 1)
        widths.append(preview.gutter.width())
    assert widths[1] > widths[0]
    assert preview.viewportMargins().left() == widths[1]
    digit = preview.gutter.bold_metrics().horizontalAdvance("9")
    assert widths[1] - widths[0] == 4 * digit  # four more digits


def test_marked_line_numbers_are_emphasised(qtbot, tmp_path):
    source = tmp_path / "lines.txt"
    source.write_text(numbered_lines(30))
    preview = shown(qtbot, Preview())
    preview.show_file(source, "lines.txt", 10, 12)
    assert preview.marked_lines() == (10, 12)
    image = preview.gutter.grab().toImage()
    image.setDevicePixelRatio(1)
    scale = preview.gutter.devicePixelRatioF()
    mark = preview.mark_colour()

    def ink(line: int) -> int:
        """How many pixels of the number are darker than the line's background."""
        rows = line_rows(preview, line, scale)
        background = image.pixelColor(1, rows[len(rows) // 2]).lightness()
        return sum(
            image.pixelColor(x, y).lightness() < background - 60
            for y in rows
            for x in range(image.width())
        )

    assert image.pixelColor(1, line_rows(preview, 10, scale)[3]) != image.pixelColor(
        1, line_rows(preview, 9, scale)[3]
    )  # the band runs under the gutter too
    assert mark.alpha() < 255
    assert ink(12) > ink(21)  # the same digits, bold and in the text colour


def test_reload_keeps_the_scroll_and_the_marks(qtbot, tmp_path):
    source = tmp_path / "long.txt"
    source.write_text(numbered_lines(400, long_line=205))
    preview = shown(qtbot, Preview(), 400, 200)
    preview.show_file(source, "long.txt", 200, 210, highlights=[(205, 0, 8)])
    preview.verticalScrollBar().setValue(198)
    preview.horizontalScrollBar().setValue(120)
    assert preview.horizontalScrollBar().value() == 120
    source.write_text("# a new first line\n" + numbered_lines(400, long_line=205))
    preview.reload_keep_scroll()
    assert preview.toPlainText().startswith("# a new first line")
    assert preview.verticalScrollBar().value() == 198
    assert preview.horizontalScrollBar().value() == 120
    assert preview.marked_lines() == (200, 210)
    [span] = preview.extraSelections()
    assert (span.cursor.blockNumber() + 1, span.cursor.selectedText()) == (205, "line_204")


def test_showing_names_the_shown_file_and_lines(qtbot, tmp_path):
    source = tmp_path / "a.txt"
    source.write_text(numbered_lines(20))
    preview = shown(qtbot, Preview())
    assert not preview.showing(source, 3, 5)
    preview.show_file(source, "a.txt", 3, 5)
    assert preview.showing(source, 3, 5)
    assert not preview.showing(source, 3, 6)
    assert not preview.showing(tmp_path / "b.py", 3, 5)
    preview.clear_file()
    assert not preview.showing(source, 3, 5)


def test_highlights_mark_spans_inside_lines(qtbot, tmp_path):
    source = tmp_path / "a.py"
    source.write_text("def retry_upload():\n    return upload(retry=True)\n")
    preview = shown(qtbot, Preview())
    preview.show_file(
        source, "a.py", 1, 2, highlights=[(1, 4, 9), (2, 11, 17), (2, 18, 99), (9, 0, 3), (1, 5, 5)]
    )
    marked = [
        (s.cursor.blockNumber() + 1, s.cursor.selectedText()) for s in preview.extraSelections()
    ]
    # past the line's end is cut there; a line that is not there or an empty span is skipped
    assert marked == [(1, "retry"), (2, "upload"), (2, "retry=True)")]
    assert {s.format.background().color().name() for s in preview.extraSelections()} == {
        match_background(preview.palette()).name()
    }


def test_clear_file_clears_the_header(qtbot, tmp_path):
    source = tmp_path / "src" / "upload.txt"
    source.parent.mkdir()
    source.write_text(numbered_lines(40))
    panel = shown(qtbot, PreviewPanel())
    assert panel.header.text() == "" and not panel.open_button.isEnabled()
    panel.preview.show_file(source, "src/upload.txt", 17, 25, symbol="retry_failed_upload")
    assert panel.header.full_text == "src/upload.txt:17–25  retry_failed_upload"
    assert panel.open_button.isEnabled() and panel.copy_button.isEnabled()
    panel.preview.clear_file()
    assert panel.header.text() == "" and panel.header.full_text == ""
    assert panel.preview.toPlainText() == "" and not panel.copy_button.isEnabled()


def test_a_long_header_is_elided_and_does_not_widen_the_panel(qtbot, tmp_path):
    source = tmp_path / "a.txt"
    source.write_text(numbered_lines(5))
    panel = shown(qtbot, PreviewPanel(), 360, 200)
    rel = "/".join(["a_very_long_folder_name"] * 12) + "/a.txt"
    panel.preview.show_file(source, rel, 1, 2, symbol="some_function")
    assert panel.header.text().startswith("…") and panel.header.text().endswith("some_function")
    assert panel.header.toolTip() == panel.header.full_text
    assert panel.minimumSizeHint().width() < 360
    assert panel.header.minimumSizeHint().width() == 0


# --- the results view ---------------------------------------------------------------------


def result(
    path: str,
    start: int,
    symbol: str = "",
    score: float = 0.5,
    snippet: str = "",
    highlights: list[tuple[int, int]] | None = None,
) -> SearchResult:
    return SearchResult(
        path, start, start + 5, symbol, "python", score, snippet, highlights=highlights or []
    )


RANKED = [
    result("src/a.py", 10, "first", 0.9),
    result("lib/b.py", 3, "second", 0.8),
    result("src/a.py", 40, "third", 0.7),
    result("c.py", 1, "", 0.3),
]


@pytest.fixture
def view(qtbot) -> ResultView:
    return shown(qtbot, ResultView(), 420, 600)


def rows(view: ResultView) -> list[tuple[str, list[str]]]:
    files = [view.topLevelItem(n) for n in range(view.topLevelItemCount())]
    return [
        (f.data(0, PATH), [f.child(n).data(0, RESULT).symbol for n in range(f.childCount())])
        for f in files
    ]


def test_results_are_grouped_by_file_in_rank_order(view):
    view.show_results(RANKED)
    assert rows(view) == [
        ("src/a.py", ["first", "third"]),
        ("lib/b.py", ["second"]),
        ("c.py", [""]),
    ]
    assert view.result_count() == 4
    assert view.summary() == "4 results in 3 files"
    view.show_results(RANKED[1:2])
    assert view.summary() == "1 result in 1 file"
    view.show_results([])
    assert (view.summary(), view.result_count(), view.current_result()) == ("", 0, None)


def test_a_refresh_keeps_folded_files_folded(qtbot, view):
    view.show_results(RANKED)
    view.topLevelItem(1).setExpanded(False)  # the user folds lib/b.py
    again = [result(r.path, r.start_line, r.symbol, r.score) for r in RANKED]
    view.show_results(again, keep=RANKED[0])  # the files changed: a refresh
    assert [view.topLevelItem(n).isExpanded() for n in range(3)] == [True, False, True]
    view.show_results(again)  # a new search unfolds everything
    assert all(view.topLevelItem(n).isExpanded() for n in range(3))


def test_the_first_result_is_selected_or_the_kept_one(qtbot, view):
    changes = []
    view.result_changed.connect(changes.append)
    view.show_results(RANKED)
    assert view.current_result() is RANKED[0] and changes == [RANKED[0]]
    again = [result(r.path, r.start_line, r.symbol, r.score / 2) for r in RANKED]
    view.show_results(again, keep=RANKED[2])  # same path, symbol and line; a new object
    assert view.current_result() is again[2] and changes[-1] is again[2]
    view.show_results(again, keep=result("gone.py", 1, "gone"))
    assert view.current_result() is again[0]
    view.setCurrentItem(view.topLevelItem(1))  # a file row
    assert view.current_result() is None and changes[-1] is None
    view.show_results(again)
    view.clear()
    assert changes[-1] is None and view.summary() == ""


def test_move_skips_file_rows_and_folded_files(view):
    view.show_results(RANKED)
    symbols = []
    for _ in range(4):
        view.move(1)
        symbols.append(view.current_result().symbol)
    assert symbols == ["third", "second", "", ""]  # clamped at the last
    view.move(-2)
    assert view.current_result().symbol == "third"
    view.move(-10)
    assert view.current_result().symbol == "first"
    view.move(10)
    assert view.current_result().symbol == ""
    view.topLevelItem(1).setExpanded(False)  # lib/b.py
    view.move(-1)
    assert view.current_result().symbol == "third"
    view.move(1)
    assert view.current_result().symbol == ""
    view.setCurrentItem(view.topLevelItem(1))  # from a file row: the next result after it
    view.move(1)
    assert view.current_result().symbol == ""
    view.setCurrentItem(view.topLevelItem(1))
    view.move(-1)
    assert view.current_result().symbol == "third"


def test_page_rows_is_a_page_of_results(view):
    height = view.itemDelegate().result_height(view.font())
    assert view.page_rows() == view.viewport().height() // height > 5


def test_enter_opens_a_result_and_folds_a_file(qtbot, view):
    view.show_results(RANKED)
    view.setFocus()
    with qtbot.waitSignal(view.open_requested):
        qtbot.keyClick(view, Qt.Key.Key_Return)
    file_row = view.topLevelItem(0)
    view.setCurrentItem(file_row)
    with qtbot.assertNotEmitted(view.open_requested):
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert not file_row.isExpanded()
    qtbot.keyClick(view, Qt.Key.Key_Enter)
    assert file_row.isExpanded()
    second = view.visualItemRect(file_row.child(1)).center()
    with qtbot.waitSignal(view.open_requested):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=second)
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=second)
    assert view.current_result() is RANKED[2]


def test_tooltips_give_the_exact_score_language_and_path(view):
    view.show_results(RANKED)
    tip = view.topLevelItem(0).child(1).toolTip(0)
    assert tip == "src/a.py:40–45\npython · score 0.7000"
    assert view.topLevelItem(0).toolTip(0) == "src/a.py\n2 results"


def test_fit_snippet_keeps_the_marked_words_in_view(qapp):
    metrics = QFontMetricsF(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    char = metrics.horizontalAdvance("x")
    text = "x = retry(upload)"
    assert fit_snippet(text, [(4, 9), (10, 16)], metrics, 100 * char) == (text, [(4, 9), (10, 16)])
    shown, spans = fit_snippet(text, [(10, 16), (4, 9)], metrics, 12.5 * char)
    assert shown.endswith("…") and len(shown) <= 12
    assert spans == [(4, 9), (10, len(shown) - 1)]  # the second cut where the text is
    long = "a" * 80 + " retry(upload)"
    shown, spans = fit_snippet(long, [(81, 86)], metrics, 30.5 * char)
    assert shown.startswith("…") and shown[spans[0][0] : spans[0][1]] == "retry"
    assert spans[0][0] == 1 + 8  # the ellipsis, then eight characters before the word


def amber_pixels(image: QImage, rect) -> int:
    """Pixels where red is high and blue low: the marked words' background, in any palette."""
    return sum(
        1
        for y in range(rect.top(), rect.bottom())
        for x in range(rect.left(), rect.right())
        if (c := image.pixelColor(x, y)).red() - c.blue() > 60 and c.green() > 60
    )


def test_the_query_words_are_marked_in_the_snippets(qtbot, palette, view):
    snippet = "def retry_failed_upload(client, blob):"
    view.show_results(
        [
            result("a.py", 1, "first", 0.9, "def first():"),
            result("a.py", 9, "upload", 0.8, snippet, [(4, 9), (17, 23)]),
            result("a.py", 30, "plain", 0.7, snippet),
        ]
    )
    image = view.viewport().grab().toImage()
    image.setDevicePixelRatio(1)
    marked, plain = (view.visualItemRect(view.topLevelItem(0).child(n)) for n in (1, 2))
    metrics = QFontMetricsF(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    char = metrics.horizontalAdvance("x")
    assert amber_pixels(image, marked) > 0.5 * 11 * char * metrics.height()  # 2 words' boxes
    assert amber_pixels(image, plain) == 0


def test_long_rows_are_cut_not_pushed_off_the_edge(qtbot, view):
    name = "deep/" * 30 + "module_with_a_long_name.py"
    view.show_results(
        [
            result("a.py", 1, "first", 1.0),
            result(
                name,
                1,
                "a_function_with_a_very_long_name_" * 3,
                0.5,
                "x = 1  # " + "a comment that goes on " * 10,
            ),
        ]
    )
    view.resize(240, 300)
    row = view.visualItemRect(view.topLevelItem(1).child(0))  # not selected
    image = view.viewport().grab().toImage()
    image.setDevicePixelRatio(1)
    accent = view.palette().color(QPalette.ColorRole.Highlight).rgb()  # the bar's fill
    bar = [
        x
        for y in range(row.top(), row.bottom())
        for x in range(row.left(), row.right())
        if image.pixel(x, y) == accent
    ]
    assert bar and max(bar) <= row.right() - PAD + 1  # the score bar is there, inside
    assert BAR.width() // 2 - 1 <= len(set(bar)) <= BAR.width() // 2 + 1  # half the best


# --- opening an editor --------------------------------------------------------------------


@pytest.fixture
def no_editor_here(monkeypatch, tmp_path) -> list[str]:
    """No code on the PATH, no $VISUAL or $EDITOR, and a system opener that declines; the
    URLs it was asked to open."""
    asked: list[str] = []

    def decline(url) -> bool:
        asked.append(url.toLocalFile())
        return False

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.setattr(QDesktopServices, "openUrl", decline)
    return asked


def test_no_editor_and_no_opener_says_so(no_editor_here, tmp_path):
    source = tmp_path / "a.py"
    problem = start_editor("", source, 3)
    assert no_editor_here == [str(source)]
    assert problem.startswith("No editor was found to open a.py")
    assert "Settings ▸ Editor command" in problem


def test_the_system_opener_is_used_without_a_command(no_editor_here, monkeypatch, tmp_path):
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: True)
    assert start_editor("", tmp_path / "a.py", 3) == ""


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("no-such-editor-here +{line} {file}", "program “no-such-editor-here” was not found"),
        ("edit {filename}", "cannot be used: only {file} and {line} are filled in"),
        ("edit '{file}", "cannot be used"),
    ],
)
def test_a_command_that_cannot_run_says_why(no_editor_here, tmp_path, command, says):
    problem = start_editor(command, tmp_path / "a.py", 3)
    assert says in problem and "Settings ▸ Editor command" in problem
    assert no_editor_here == []


def test_a_command_that_runs_opens_quietly(tmp_path):
    """A real editor command (quoted program, placeholders inside an argument) starts,
    gets the file and line, and is reaped when it exits."""
    seen = tmp_path / "argv.txt"
    editor = tmp_path / "editor.py"
    editor.write_text(f"import sys\nopen({str(seen)!r}, 'w').write(repr(sys.argv[1:]))\n")
    command = f"'{sys.executable}' -X utf8 {editor} {{file}}:{{line}}"
    assert start_editor(command, tmp_path / "my file.py", 7) == ""
    deadline = time.monotonic() + 30
    while not seen.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen.read_text() == repr([f"{tmp_path / 'my file.py'}:7"])


def test_a_command_that_fails_to_start_says_why(monkeypatch, tmp_path):
    def refuse(args, **_):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    problem = start_editor(f"'{sys.executable}' {{file}}", tmp_path / "a.py", 1)
    assert "Could not run" in problem and "Permission denied" in problem
    assert "Settings ▸ Editor command" in problem


def test_open_in_editor_shows_the_problem(no_editor_here, monkeypatch, qtbot, tmp_path):
    shown_boxes = []
    monkeypatch.setattr(
        QMessageBox,
        "warning",
        lambda parent, title, text: shown_boxes.append((parent, title, text)),
    )
    parent = QWidget()
    qtbot.addWidget(parent)
    open_in_editor("", tmp_path / "a.py", 3, parent)
    [(where, title, text)] = shown_boxes
    assert (where, title) == (parent, "Open in editor")
    assert text == start_editor("", tmp_path / "a.py", 3)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: True)
    open_in_editor("", tmp_path / "a.py", 3, parent)
    assert len(shown_boxes) == 1
