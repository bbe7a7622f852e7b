"""The results, grouped by file like an editor's search panel.

A file row (its name, its folder dimmed, the count of its results) holds its results: files
in the order of their best result, results in rank order. A result row shows the symbol in
bold (or path:line), its lines dimmed, the score as a bar relative to the best one, and the
snippet under it with the query's words marked. A delegate paints both kinds of row from
the palette, and cuts whatever does not fit with "…".
"""

from __future__ import annotations

from pathlib import PurePosixPath

from PySide6.QtCore import QModelIndex, QRect, QRectF, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics, QFontMetricsF, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from app.gui.highlight import bolder, dimmed, match_background, mix

RESULT = Qt.ItemDataRole.UserRole  # a result row's SearchResult
SHARE = Qt.ItemDataRole.UserRole + 1  # a result row's score / the best score, 0..1
PATH = Qt.ItemDataRole.UserRole + 2  # a file row's path

PAD = 6  # pixels left and right of a row's contents, and above and below them
GAP = 8  # pixels between the parts of a row
BAR = QSize(36, 4)  # the score bar
LEAD = 8  # characters kept before a marked word when the start of a snippet is cut


def fit_snippet(
    text: str, spans: list[tuple[int, int]], metrics: QFontMetricsF, width: float
) -> tuple[str, list[tuple[int, int]]]:
    """The snippet as shown in ``width`` pixels: cut with "…" at the end, and at the start
    too when the first marked word would not be in view; ``spans`` ([start, end) character
    offsets) moved to match and cut to what is shown."""
    text = text.replace("\t", " ")  # one character for one: the offsets still hold
    spans = sorted((s, e) for s, e in spans if 0 <= s < e)
    cut = 0
    if spans and metrics.horizontalAdvance(text[: spans[0][1]]) > width:
        cut = max(0, spans[0][0] - LEAD)
    shown = "…" + text[cut:] if cut else text
    shift = 1 - cut if cut else 0
    elided = metrics.elidedText(shown, Qt.TextElideMode.ElideRight, width)
    first, last = (1 if cut else 0), (len(elided) - 1 if elided != shown else len(shown))
    moved = [(max(s + shift, first), min(e + shift, last)) for s, e in spans]
    return elided, [(s, e) for s, e in moved if s < e]


class ResultDelegate(QStyledItemDelegate):
    """Paints file rows and result rows (see the module's docstring)."""

    def result_height(self, font: QFont) -> int:
        return QFontMetrics(bolder(font)).height() + QFontMetrics(_mono()).height() + 2 * PAD

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        if index.data(RESULT) is None:
            return QSize(0, QFontMetrics(option.font).height() + 2 * PAD)
        return QSize(0, self.result_height(option.font))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        group = (
            QPalette.ColorGroup.Normal
            if opt.state & QStyle.StateFlag.State_Active
            else QPalette.ColorGroup.Inactive
        )
        ink = opt.palette.color(
            group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        paper = opt.palette.color(
            group, QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Base
        )
        painter.save()
        painter.setClipRect(opt.rect)
        inside = opt.rect.adjusted(PAD, 0, -PAD, 0)
        if index.data(RESULT) is None:
            self._paint_file(painter, opt, inside, index, ink, paper)
        else:
            self._paint_result(painter, opt, inside, index, ink, paper, selected, group)
        painter.restore()

    def _paint_file(
        self,
        painter: QPainter,
        opt: QStyleOptionViewItem,
        rect: QRect,
        index: QModelIndex,
        ink,
        paper,
    ) -> None:
        path = PurePosixPath(index.data(PATH))
        folder = "" if str(path.parent) == "." else str(path.parent)
        metrics = QFontMetrics(opt.font)
        count = str(index.model().rowCount(index))
        badge = QRect(0, 0, metrics.horizontalAdvance(count) + 2 * PAD, metrics.height())
        badge.moveCenter(rect.center())
        badge.moveRight(rect.right())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(mix(ink, paper, 0.85))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawRoundedRect(QRectF(badge), badge.height() / 2, badge.height() / 2)
        painter.setPen(ink)
        painter.setFont(opt.font)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, count)

        room = badge.left() - GAP - rect.left()
        name = metrics.elidedText(path.name, Qt.TextElideMode.ElideMiddle, room)
        used = metrics.horizontalAdvance(name)
        painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter, name)
        left = room - used - GAP
        if folder and left > metrics.horizontalAdvance("…/"):
            painter.setPen(dimmed(ink, paper))
            painter.drawText(
                rect.adjusted(used + GAP, 0, 0, 0),
                Qt.AlignmentFlag.AlignVCenter,
                metrics.elidedText(folder, Qt.TextElideMode.ElideLeft, left),
            )

    def _paint_result(
        self,
        painter: QPainter,
        opt: QStyleOptionViewItem,
        rect: QRect,
        index: QModelIndex,
        ink,
        paper,
        selected: bool,
        group,
    ) -> None:
        r = index.data(RESULT)
        bold, mono = bolder(opt.font), _mono()
        title_metrics, plain_metrics = QFontMetrics(bold), QFontMetrics(opt.font)
        first = QRect(rect.left(), rect.top() + PAD, rect.width(), title_metrics.height())

        bar = QRect(0, 0, BAR.width(), BAR.height())
        bar.moveCenter(first.center())
        bar.moveRight(first.right())
        painter.fillRect(bar, mix(ink, paper, 0.8))
        filled = round(BAR.width() * max(0.0, min(1.0, index.data(SHARE))))
        accent = ink if selected else opt.palette.color(group, QPalette.ColorRole.Highlight)
        painter.fillRect(QRect(bar.left(), bar.top(), filled, bar.height()), accent)

        lines = f"{r.start_line}–{r.end_line}" if r.end_line > r.start_line else f"{r.start_line}"
        lines_width = plain_metrics.horizontalAdvance(lines)
        room = bar.left() - GAP - first.left() - lines_width - GAP
        title = title_metrics.elidedText(
            r.symbol or f"{r.path}:{r.start_line}", Qt.TextElideMode.ElideRight, max(0, room)
        )
        painter.setFont(bold)
        painter.setPen(ink)
        painter.drawText(first, Qt.AlignmentFlag.AlignVCenter, title)
        painter.setFont(opt.font)
        painter.setPen(dimmed(ink, paper))
        painter.drawText(
            first.adjusted(title_metrics.horizontalAdvance(title) + GAP, 0, 0, 0),
            Qt.AlignmentFlag.AlignVCenter,
            lines,
        )

        metrics = QFontMetricsF(mono)
        second = QRectF(rect.left(), first.bottom() + 1, rect.width(), metrics.height())
        text, spans = fit_snippet(r.snippet, r.highlights, metrics, second.width())
        for start, end in spans:
            x = second.left() + metrics.horizontalAdvance(text[:start])
            box = QRectF(
                x, second.top(), metrics.horizontalAdvance(text[start:end]), second.height()
            )
            if selected:  # amber on the selection colour is mud: a frame in the text colour
                painter.setPen(ink)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(box.adjusted(0.5, 0.5, -0.5, -0.5), 2, 2)
            else:
                painter.fillRect(box, match_background(opt.palette))
        painter.setFont(mono)
        painter.setPen(ink)
        painter.drawText(second, Qt.AlignmentFlag.AlignVCenter, text)


def _mono() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class ResultView(QTreeWidget):
    """Results grouped by file. Enter or a double click on a result asks to open it; Enter
    on a file row folds or unfolds it. Its context menu holds the actions added to it,
    which act on the result right-clicked (it becomes the current one)."""

    open_requested = Signal()
    result_changed = Signal(object)  # the current SearchResult, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setUniformRowHeights(False)
        self.setIndentation(14)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QTreeWidget.SelectionMode.SingleSelection)
        self.setItemDelegate(ResultDelegate(self))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.announced = None  # the result result_changed last gave
        self.count_shown = 0
        self.currentItemChanged.connect(self._announce)
        self.itemDoubleClicked.connect(self._double_clicked)

    def show_results(self, results: list, keep=None) -> None:
        """Show ``results`` (best first). The one equal to ``keep`` (same path, symbol and
        first line) stays selected, so a refresh does not move the user, and the files
        folded stay folded; else the first is selected."""
        chosen = None
        rows = [self.topLevelItem(n) for n in range(self.topLevelItemCount())]
        folded = (
            {row.data(0, PATH) for row in rows if not row.isExpanded()}
            if keep is not None
            else set()
        )
        with QSignalBlocker(self):
            super().clear()
            self.count_shown = len(results)
            best = max((r.score for r in results), default=0.0)
            files: dict[tuple[str, str], QTreeWidgetItem] = {}
            for r in results:
                key = (r.project, r.path)  # the project matters when all are searched
                if key not in files:
                    shown = f"{PurePosixPath(r.project).name}/{r.path}" if r.project else r.path
                    files[key] = _file_row(self, shown)
                item = _result_row(files[key], r, r.score / best if best > 0 else 1.0)
                if chosen is None and keep is not None and _same(r, keep):
                    chosen = item
            for row in files.values():
                row.setToolTip(0, f"{row.data(0, PATH)}\n{_plural(row.childCount(), 'result')}")
            self.expandAll()
            if files:
                chosen = chosen or next(iter(files.values())).child(0)
                self.setCurrentItem(chosen)
            for row in files.values():
                row.setExpanded(row.data(0, PATH) not in folded or row is chosen.parent())
        self._announce()
        if chosen is not None:
            self.scrollToItem(chosen)

    def clear(self) -> None:
        super().clear()
        self.count_shown = 0
        self._announce()

    def current_result(self):
        """The selected result; None with nothing or a file row selected."""
        item = self.currentItem()
        return item.data(0, RESULT) if item is not None else None

    def result_count(self) -> int:
        return self.count_shown

    def all_results(self) -> list:
        """The results in the order shown (the order :meth:`move` goes through)."""
        return [
            self.topLevelItem(f).child(n).data(0, RESULT)
            for f in range(self.topLevelItemCount())
            for n in range(self.topLevelItem(f).childCount())
        ]

    def summary(self) -> str:
        """'30 results in 12 files', or '' when there are none."""
        if not self.count_shown:
            return ""
        return (
            f"{_plural(self.count_shown, 'result')} in {_plural(self.topLevelItemCount(), 'file')}"
        )

    def move(self, rows: int) -> None:
        """Select the result ``rows`` results below (above, if negative) the current row,
        stopping at the last (first) one; file rows and folded files' results are skipped."""
        order = [
            item
            for file in range(self.topLevelItemCount())
            for item in _with_children(self.topLevelItem(file))
        ]
        current = self.currentItem()
        here = order.index(current) if current is not None else -1
        targets = [
            (n, item)
            for n, item in enumerate(order)
            if item.parent() is not None and item.parent().isExpanded()
        ]
        after = [item for n, item in targets if n > here]
        before = [item for n, item in targets if n < here]
        if rows > 0 and after:
            target = after[min(rows, len(after)) - 1]
        elif rows < 0 and before:
            target = before[-min(-rows, len(before))]
        else:
            return
        self.setCurrentItem(target)
        self.scrollToItem(target)

    def page_rows(self) -> int:
        """How many results a page holds (for Page Up and Page Down)."""
        height = self.itemDelegate().result_height(self.font())
        return max(1, self.viewport().height() // height)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        item = self.currentItem()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and item is not None:
            if item.data(0, RESULT) is None:
                item.setExpanded(not item.isExpanded())
            else:
                self.open_requested.emit()
            return
        super().keyPressEvent(event)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, RESULT) is not None:
            self.open_requested.emit()

    def _announce(self, *_) -> None:
        result = self.current_result()
        if result is not self.announced:
            self.announced = result
            self.result_changed.emit(result)


def _file_row(view: ResultView, path: str) -> QTreeWidgetItem:
    row = QTreeWidgetItem(view, [path])
    row.setData(0, PATH, path)
    return row


def _result_row(file_row: QTreeWidgetItem, r, share: float) -> QTreeWidgetItem:
    item = QTreeWidgetItem(file_row, [r.symbol or f"{r.path}:{r.start_line}"])
    item.setData(0, RESULT, r)
    item.setData(0, SHARE, share)
    item.setToolTip(0, f"{r.path}:{r.start_line}–{r.end_line}\n{r.language} · score {r.score:.4f}")
    return item


def _with_children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    return [item] + [item.child(n) for n in range(item.childCount())]


def _same(r, other) -> bool:
    return (r.project, r.path, r.symbol, r.start_line) == (
        other.project,
        other.path,
        other.symbol,
        other.start_line,
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
