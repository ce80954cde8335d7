"""The entry table view: fixed row heights, header sorting via the store, TSV copy, menus."""

from __future__ import annotations

import csv
import io

from PySide6.QtCore import QItemSelectionModel, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QFontDatabase, QFontMetrics, QGuiApplication, QKeySequence, QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView

from app.domain import EntryRow
from ui.models.listing_model import COLUMN_INDEX, COLUMNS, ListingModel


class RecordTable(QTableView):
    """Shows a ListingModel. Sorting asks the model to re-query in SQL; the vertical
    header has fixed sizes because ResizeToContents measures every row (4.7 s at 10,000)."""

    rows_selected = Signal(list)  # list[EntryRow] in table order
    copied = Signal(int)  # number of rows copied

    def __init__(self, model: ListingModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self._listing = model
        self._context_actions: list = []
        self._sized = False
        self._placeholder = ""
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setShowGrid(False)
        self.setCornerButtonEnabled(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_context_menu_requested)

        vertical = self.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        vertical.setMinimumSectionSize(self.fontMetrics().height() + 4)
        vertical.hide()

        header = self.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_menu_requested)
        for section, width in enumerate(self.default_widths()):
            header.resizeSection(section, width)
            header.setSectionHidden(section, not COLUMNS[section].shown_by_default)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        header.sortIndicatorChanged.connect(self._on_sort_indicator_changed)

        self.copy_action = QAction("Copy rows", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.copy_action.triggered.connect(self.copy_selection)
        self.addAction(self.copy_action)

        self.selectionModel().selectionChanged.connect(self._emit_selection)
        model.modelReset.connect(self._emit_selection)
        model.page_loaded.connect(self._on_page_loaded)
        model.query_requested.connect(self._on_query_requested)
        self._near = False

    def set_placeholder(self, text: str) -> None:
        """What the empty table says (no match, empty database, past the end)."""
        if text != self._placeholder:
            self._placeholder = text
            self.viewport().update()

    @property
    def placeholder(self) -> str:
        return self._placeholder if self._listing.rowCount() == 0 else ""

    def paintEvent(self, event):
        super().paintEvent(event)
        if self._placeholder and self._listing.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.15)
            painter.setFont(font)
            painter.drawText(self.viewport().rect().adjusted(20, 20, -20, -20),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._placeholder)
            painter.end()

    # -- selection --------------------------------------------------------------------------

    def selected_row_numbers(self) -> list[int]:
        return sorted(index.row() for index in self.selectionModel().selectedRows())

    def selected_rows(self) -> list[EntryRow]:
        return [self._listing.row(r) for r in self.selected_row_numbers() if r < self._listing.rowCount()]

    def select_row(self, row: int, extend: bool = False) -> None:
        flags = QItemSelectionModel.SelectionFlag.Rows | (
            QItemSelectionModel.SelectionFlag.Select if extend else QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        index = self._listing.index(row, 0)
        self.selectionModel().select(index, flags)
        self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.scrollTo(index)

    def _emit_selection(self, *_):
        self.rows_selected.emit(self.selected_rows())

    def _on_page_loaded(self, _page):
        # A refreshed page keeps its selection but the rows under it may have changed.
        self._emit_selection()
        if not self._sized and self._listing.rowCount():
            self.size_columns()

    def _on_query_requested(self, query) -> None:
        # The arrow follows the order the model chose (nearest first for a near filter),
        # and the Distance column comes with a near filter and goes with it.
        header = self.horizontalHeader()
        header.blockSignals(True)
        header.setSortIndicator(self._listing.sort_column(), Qt.SortOrder.DescendingOrder
                                if self._listing.sort_order[1] else Qt.SortOrder.AscendingOrder)
        header.blockSignals(False)
        near = query.reference is not None
        if near != self._near:
            self._near = near
            section = COLUMN_INDEX["distance"]
            if near and header.visualIndex(section) > header.visualIndex(COLUMN_INDEX["label"]) + 1:
                header.moveSection(header.visualIndex(section), header.visualIndex(COLUMN_INDEX["label"]) + 1)
            header.setSectionHidden(section, not near)
            if near:
                self._fit_to_width()

    # -- columns ----------------------------------------------------------------------------

    def default_widths(self) -> list[int]:
        """Widths that fit typical values without looking at any row: a 32-hex-digit
        identifier, a 16-digit pHash, a timestamp (ours)."""
        fm = self.fontMetrics()
        mono = QFontMetrics(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        pad = 16
        samples = {
            "position": fm.horizontalAdvance("10,000,000") + pad,
            "identifier": fm.horizontalAdvance("0123456789abcdef" * 2) + pad,
            "label": fm.horizontalAdvance("x" * 16) + pad,
            "status": fm.horizontalAdvance("trained") + pad,
            "image": fm.horizontalAdvance("Image data") + pad,
            "meta": fm.horizontalAdvance("Metadata") + pad,
            "phash": mono.horizontalAdvance("0" * 16) + pad,
            "size": fm.horizontalAdvance("1920 × 1080 JPEG") + pad,
            "trained": fm.horizontalAdvance("2000-00-00 00:00:00") + pad,
            "distance": fm.horizontalAdvance("Distance") + pad + 12,
        }
        return [samples[c.name] for c in COLUMNS]

    def size_columns(self) -> None:
        """Fit columns to the first page once (Qt samples up to 1,000 rows, about 200 ms),
        never narrower than the typical-value widths and never wider than 360 px."""
        self._sized = True
        header = self.horizontalHeader()
        header.setResizeContentsPrecision(200)
        self.resizeColumnsToContents()
        for section, minimum in enumerate(self.default_widths()):
            header.resizeSection(section, max(minimum, min(header.sectionSize(section) + 12, 360)))
        self._fit_to_width()

    def _fit_to_width(self) -> None:
        """Give back width from the identifier and label (they elide, with the whole in a
        tooltip) until every shown column fits the view: a 32-digit identifier must not push
        pHash, Image size and Trained at off-screen, nor must the Distance column of near
        results cut Trained at (issue 14, at 1280×800)."""
        header = self.horizontalHeader()
        # Right after the first page arrives the vertical scroll bar may not be laid out yet.
        bar = self.verticalScrollBar()
        available = self.viewport().width() - (0 if bar.isVisible() else bar.sizeHint().width())
        shown = [s for s in range(header.count()) if not header.isSectionHidden(s)]
        excess = sum(header.sectionSize(s) for s in shown) - available
        fm = self.fontMetrics()
        # First the spare room of fixed-format columns and what the widths for unseen typical
        # values added beyond this page's contents, then the two columns that elide.
        typical = dict(zip((c.name for c in COLUMNS), self.default_widths()))
        floors = {"trained": typical["trained"] - 8, "phash": typical["phash"] - 8,
                  "meta": fm.horizontalAdvance(COLUMNS[COLUMN_INDEX["meta"]].title) + 16,
                  "distance": header.sectionSizeHint(COLUMN_INDEX["distance"]),
                  "size": max(self.sizeHintForColumn(COLUMN_INDEX["size"]) + 12,
                              header.sectionSizeHint(COLUMN_INDEX["size"])),
                  "identifier": fm.horizontalAdvance("01234567…") + 16,
                  "label": fm.horizontalAdvance("x" * 9) + 16}
        for name in ("trained", "phash", "meta", "distance", "size", "identifier", "label"):
            section = COLUMN_INDEX[name]
            if excess <= 0 or header.isSectionHidden(section):
                continue
            size = header.sectionSize(section)
            give = min(excess, max(0, size - floors[name]))
            header.resizeSection(section, size - give)
            excess -= give

    def restore_header(self, state) -> bool:
        if state is None or state.isEmpty():
            return False
        ok = self.horizontalHeader().restoreState(state)
        if ok:
            self._sized = True
            self.horizontalHeader().setSortIndicator(
                self._listing.sort_column(), Qt.SortOrder.DescendingOrder
                if self._listing.sort_order[1] else Qt.SortOrder.AscendingOrder
            )
        return ok

    def save_header(self):
        return self.horizontalHeader().saveState()

    def _on_sort_indicator_changed(self, column: int, order) -> None:
        if COLUMNS[column].sort is None or self._listing.sort_column() != column:
            # The status column has one value, and Distance needs a near filter: put the
            # indicator back where the data is.
            key_column = self._listing.sort_column()
            desc = self._listing.sort_order[1]
            header = self.horizontalHeader()
            header.blockSignals(True)
            header.setSortIndicator(key_column, Qt.SortOrder.DescendingOrder if desc else Qt.SortOrder.AscendingOrder)
            header.blockSignals(False)

    def _on_header_menu_requested(self, pos: QPoint) -> None:
        menu = QMenu(self)
        header = self.horizontalHeader()
        for logical, column in enumerate(COLUMNS):
            action = menu.addAction(column.title if column.name != "position" else "# (position)")
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(logical))
            action.setEnabled(column.name != "identifier")  # the one column never hidden
            action.toggled.connect(lambda on, s=logical: header.setSectionHidden(s, not on))
        menu.addSeparator()
        menu.addAction("Fit columns to contents", self.size_columns)
        self.popup_menu(menu, header.mapToGlobal(pos))

    # -- copy and context menu ----------------------------------------------------------------

    def set_context_actions(self, actions: list) -> None:
        """QActions (None for a separator) shown on right-click, owned by the window."""
        self._context_actions = list(actions)

    def _on_context_menu_requested(self, pos: QPoint) -> None:
        index = self.indexAt(pos)
        if index.isValid() and not self.selectionModel().isRowSelected(index.row(), index.parent()):
            self.select_row(index.row())
        menu = QMenu(self)
        menu.addAction(self.copy_action)
        for action in self._context_actions:
            if action is None:
                menu.addSeparator()
            elif isinstance(action, QMenu):
                menu.addMenu(action)
            else:
                menu.addAction(action)
        self.popup_menu(menu, self.viewport().mapToGlobal(pos))

    def popup_menu(self, menu: QMenu, where: QPoint) -> None:
        """Show a menu modally (one seam: tests record the menu instead of blocking on it)."""
        menu.exec(where)

    def visible_columns(self) -> list[int]:
        header = self.horizontalHeader()
        logical = [header.logicalIndex(v) for v in range(header.count())]
        return [c for c in logical if not header.isSectionHidden(c)]

    def selection_tsv(self) -> str:
        return table_tsv(self._listing, self.selected_row_numbers(), self.visible_columns())

    def copy_selection(self) -> str:
        """Ctrl+C: the selected rows as tab-separated text with a header line."""
        rows = self.selected_row_numbers()
        if not rows:
            return ""
        text = self.selection_tsv()
        QGuiApplication.clipboard().setText(text)
        self.copied.emit(len(rows))
        return text


def table_tsv(model: ListingModel, rows: list[int], columns: list[int]) -> str:
    """Rows of the model as tab-separated text with a header line, in the columns given.
    Fields holding a tab, newline or quote are quoted as in CSV, which spreadsheets
    understand on paste, so nothing is lost (ours)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([COLUMNS[c].title if COLUMNS[c].name != "position" else "position" for c in columns])
    position = COLUMN_INDEX["position"]
    for r in rows:
        entry = model.row(r)
        # Plain digits for the position: '1,001' would not read back as a number.
        writer.writerow([str(entry.position) if c == position else model.data(model.index(r, c)) for c in columns])
    return buf.getvalue()

