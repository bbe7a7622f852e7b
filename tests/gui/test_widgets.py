"""The window's widgets on their own, offscreen: the preview, the results view, opening
an editor. Results are made by hand; no model or index is needed."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage, QPalette

from app.gui.preview import Preview

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
    for role, colour in (("Window", "#2b2b2b"), ("WindowText", "#dddddd"), ("Base", "#1e1e1e"),
                         ("AlternateBase", "#262626"), ("Text", "#dddddd"),
                         ("Button", "#353535"), ("ButtonText", "#dddddd"),
                         ("Highlight", "#2f65ca"), ("HighlightedText", "#ffffff"),
                         ("PlaceholderText", "#8a8a8a")):  # fmt: skip
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
    stripes = [(line, x, y) for line in range(4, 8) for y in line_rows(preview, line, scale)
               for x in range(image.width()) if image.pixel(x, y) == base]  # fmt: skip
    assert not stripes, f"base colour in marked lines at (line, x, y) {stripes[:5]}: {picture}"


def numbered_lines(count: int, long_line: int = 0) -> str:
    """Lines for a .txt file: big files are plain text here, because PySide6 6.12 on
    Python 3.11 drops a reference to None on every call of a method that returns nothing,
    such as the highlighter's setFormat for each token, and None must not run out."""
    return "".join(f"line_{n} = {'x' * 300 if n == long_line else n}\n"
                   for n in range(1, count + 1))  # fmt: skip


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
        return sum(image.pixelColor(x, y).lightness() < background - 60
                   for y in rows for x in range(image.width()))  # fmt: skip

    assert image.pixelColor(1, line_rows(preview, 10, scale)[3]) != image.pixelColor(
        1, line_rows(preview, 9, scale)[3])  # the band runs under the gutter too
    assert mark.alpha() < 255
    assert ink(12) > ink(21)  # the same digits, bold and in the text colour
