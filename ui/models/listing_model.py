"""The entry table's item model: one page of a listing, fetched off the GUI thread and cached.

`data()` reads only rows already in memory (formatting each once, when first shown): it
never touches the store (a test counts the listing service's calls while scrolling).
Pages are requested through
a `ListingSource`, newest request wins, and the next page is prefetched so paging forward
is served from memory. Sorting re-queries the store with a `SortKey`; the model never
sorts rows itself (a sort proxy over a million rows took over a minute here).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase

from app.domain import Count, EntryRow, Failure, HashlensError, ListingPage, ListingQuery, SortKey, hamming
from app.services import actions

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
# Counting a filtered listing stops here first ("10,000+"); the exact figure follows
# from a slower background count (ours, after the house guide).
COUNT_BOUND = 10_000
CACHE_PAGES = 48
PREFETCH_DELAY_MS = 120


@dataclass(frozen=True)
class Column:
    name: str
    title: str
    sort: SortKey | None
    numeric: bool = False
    tooltip: str = ""
    # Off by default (the header menu shows them) so pHash, Image size and Trained at fit.
    shown_by_default: bool = True


COLUMNS = (
    Column("position", "#", SortKey.POSITION, True,
           "Position in this listing: the 1-based index ListImageHashes' start= would use", False),
    Column("identifier", "Identifier", SortKey.IDENTIFIER, tooltip="The image hash's identifier"),
    Column("label", "Label", SortKey.LABEL, tooltip="The training image's label"),
    Column("status", "Status", None, tooltip="Always 'trained' (Media Server)", shown_by_default=False),
    Column("image", "Image data", SortKey.HAS_IMAGE_DATA,
           tooltip="Whether Hashlens holds the training image; 'on server only': the Media Server it came "
                   "from holds it (its hasimagedata)", shown_by_default=False),
    Column("meta", "Metadata", SortKey.META_COUNT, True, "Number of custom metadata items"),
    Column("phash", "pHash", SortKey.PHASH,
           tooltip="Hashlens's own 64-bit perceptual hash (not a Media Server value); 'not known' for "
                   "entries from a Media Server until Attach images computes it"),
    Column("size", "Image size", SortKey.WIDTH, tooltip="Pixel size and format of the training image"),
    Column("trained", "Trained at", SortKey.TRAINED_AT, tooltip="When the hash was trained (local time)"),
    # Shown by the table while a near-pHash filter is on (last, so saved layouts still fit).
    Column("distance", "Distance", SortKey.DISTANCE, True,
           "Bits that differ from the near-pHash filter's hash, 0 to 64 (Hashlens's pHash)", False),
)
COLUMN_INDEX = {c.name: i for i, c in enumerate(COLUMNS)}


def image_words(row: EntryRow) -> str:
    """Whether Hashlens holds the image, and what a Media Server declared, in a word or
    two: a mirror's or an imported response's entry holds no bytes here (ours)."""
    if row.has_image_data:
        return "yes"
    if row.declared_image_data is None:
        return "removed"
    return "on server only" if row.declared_image_data else "no"


def format_row(row: EntryRow, reference: int | None = None) -> tuple[str, ...]:
    """The strings a row shows, computed once per page so `data()` only indexes;
    `reference` is the near-pHash filter's hash the distance is measured from."""
    if row.width is not None and row.height is not None:
        size = f"{row.width} × {row.height}" + (f" {row.image_format}" if row.image_format else "")
    else:
        size = ""
    trained = datetime.fromtimestamp(row.trained_at / 1000).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{row.position:,}",
        row.identifier,
        row.label,
        "trained",
        image_words(row),
        str(row.meta_count),
        row.phash_text,
        size,
        trained,
        "" if reference is None or row.phash is None else str(hamming(row.phash, reference)),
    )


def count_key(query: ListingQuery) -> ListingQuery:
    """What a count depends on: the database and filters, not the window or the order."""
    return replace(query, start=1, maxresults=None, sort=SortKey.POSITION, descending=False,
                   imagestatus=False, metadata=False)


class ListingSource:
    """Runs listing requests on the window's workers against one store."""

    def __init__(self, workers, store):
        self.workers = workers
        self.store = store

    def page(self, query: ListingQuery, on_done, on_error, kind: str):
        store = self.store
        return self.workers.submit(
            "ui", lambda: actions.list_image_hashes(store, query),
            on_done=on_done, on_error=on_error, kind=kind, store=store,
        )

    def count(self, query: ListingQuery, bound: int | None, on_done, on_error, kind: str):
        # Counts have a lane of their own: a slow count never delays the next page.
        store = self.store
        return self.workers.submit(
            "count", lambda: store.count(query, bound=bound),
            on_done=on_done, on_error=on_error, kind=kind, store=store,
        )

    def stop(self, job) -> None:
        """A request no longer wanted: its result is dropped and its statement stopped
        (SQLite interrupt, PostgreSQL cancel), so the lane is free for the next one."""
        self.workers.stop(job)


class ListingModel(QAbstractTableModel):
    """One page of a listing as a table. Owned by the window; it never touches a view."""

    query_requested = Signal(object)  # ListingQuery: the windowed request now wanted
    page_loaded = Signal(object)  # ListingPage now shown
    count_changed = Signal(object)  # Count, or None while unknown
    loading_changed = Signal(bool)
    failed = Signal(object)  # HashlensError

    PAGE_SIZES = (50, 100, 500, 1000)

    def __init__(self, source: ListingSource | None = None, parent=None, page_size: int = 100):
        super().__init__(parent)
        self._source = source
        self._page_size = page_size if page_size in self.PAGE_SIZES else 100
        self._sort = SortKey.POSITION
        self._descending = False
        self._query: ListingQuery | None = None
        self._shown: ListingPage | None = None
        self._reference: int | None = None  # the shown page's near-pHash hash
        self._rows: list[EntryRow] = []
        self._display: list[tuple[str, ...]] = []
        self._cache: OrderedDict[ListingQuery, ListingPage] = OrderedDict()
        self._counts: dict[ListingQuery, Count] = {}
        self._count_key: ListingQuery | None = None
        self._count: Count | None = None
        self._counting: ListingQuery | None = None
        self._count_job = None
        self._page_job = None
        self._loading = False
        self.last_elapsed_ms: float | None = None
        self.last_from_cache = False
        # Built once: data() must not create fonts or brushes per call.
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        italic = QFont()
        italic.setItalic(True)
        self._fonts = [None] * len(COLUMNS)
        self._fonts[COLUMN_INDEX["phash"]] = mono
        self._removed_font = italic
        right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        left = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._align = [right if c.numeric else left for c in COLUMNS]
        self._image_col = COLUMN_INDEX["image"]
        self._flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        self._prefetch_wanted: ListingQuery | None = None
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(PREFETCH_DELAY_MS)
        self._prefetch_timer.timeout.connect(self._on_prefetch_timer_timeout)

    # -- Qt model interface -----------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if row >= len(self._rows):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._shown_row(row)[col]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._align[col]
        if role == Qt.ItemDataRole.FontRole:
            if col == self._image_col and not self._rows[row].has_image_data:
                return self._removed_font
            return self._fonts[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == self._image_col and not self._rows[row].has_image_data:
                return "The training image was removed (NullImageHashImageData); the hash remains."
            return self._shown_row(row)[col] or None
        if role == ROW_ROLE:
            return self._rows[row]
        return None

    def _shown_row(self, row: int) -> tuple[str, ...]:
        # Formatted on first sight and kept: only the rows a view paints pay for it
        # (strftime for a 1,000-row page cost 11 ms), and never from the store.
        shown = self._display[row]
        if shown is None:
            shown = self._display[row] = format_row(self._rows[row], self._reference)
        return shown

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            column = COLUMNS[section]
            return column.tooltip + ("" if column.sort else " (not sortable)")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._align[section]
        return None

    def flags(self, index):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return self._flags

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Called by the header: re-query in the store's order (never sort rows here)."""
        if not 0 <= column < len(COLUMNS) or COLUMNS[column].sort is None:
            return
        key = COLUMNS[column].sort
        if key is SortKey.DISTANCE and (self._query is None or self._query.reference is None):
            return  # a distance needs a near-pHash filter; the header puts its arrow back
        descending = order == Qt.SortOrder.DescendingOrder
        if (key, descending) == (self._sort, self._descending):
            return
        self._sort, self._descending = key, descending
        if self._query is not None:
            self._request(replace(self._query, sort=key, descending=descending, start=1))

    # -- what the window asks -----------------------------------------------------------------

    @property
    def query(self) -> ListingQuery | None:
        """The windowed request most recently made (shown, or on its way)."""
        return self._query

    @property
    def page(self) -> ListingPage | None:
        return self._shown

    @property
    def rows(self) -> list[EntryRow]:
        return list(self._rows)

    @property
    def count(self) -> Count | None:
        return self._count

    @property
    def page_size(self) -> int:
        return self._page_size

    @property
    def sort_order(self) -> tuple[SortKey, bool]:
        return self._sort, self._descending

    @property
    def loading(self) -> bool:
        return self._loading

    def row(self, i: int) -> EntryRow:
        return self._rows[i]

    def sort_column(self) -> int:
        return next(i for i, c in enumerate(COLUMNS) if c.sort is self._sort)

    def set_source(self, source: ListingSource | None) -> None:
        """A new store: forget every page and count."""
        self._drop_count()
        self._source = source
        self._cache.clear()
        self._counts.clear()
        self._query = None
        self._count_key = None
        self._set_count(None)
        self._show(None)

    def set_query(self, query: ListingQuery) -> None:
        """A new filter from the panel: the first page in the current order and page size.

        Turning a near-pHash filter on sorts nearest first (a person may sort otherwise
        after); turning it off leaves a distance order for training order."""
        near, was_near = query.reference is not None, self._query is not None and self._query.reference is not None
        if near and not was_near:
            self._sort, self._descending = SortKey.DISTANCE, False
        elif not near and self._sort is SortKey.DISTANCE:
            self._sort, self._descending = SortKey.POSITION, False
        self._request(replace(query, sort=self._sort, descending=self._descending, start=1,
                              maxresults=self._page_size, imagestatus=True, metadata=True))

    def clear(self) -> None:
        self._query = None
        self._count_key = None
        self._set_count(None)
        self._show(None)

    def go_to(self, start: int) -> None:
        """Show the page starting exactly at entry `start` (ListImageHashes' start=N)."""
        if self._query is not None:
            self._request(replace(self._query, start=max(1, int(start))))

    def first_page(self) -> None:
        self.go_to(1)

    def previous_page(self) -> None:
        if self._query is not None:
            self.go_to(max(1, self._query.start - self._page_size))

    def next_page(self) -> None:
        if self._query is not None and self.has_next():
            self.go_to(self._query.start + self._page_size)

    def last_page(self) -> None:
        start = self.last_start()
        if start is not None:
            self.go_to(start)

    def last_start(self) -> int | None:
        """Where the last page starts, aligned to page size; None until the count is exact."""
        if self._count is None or not self._count.exact:
            return None
        total = self._count.value
        if total == 0:
            return 1
        return (total - 1) // self._page_size * self._page_size + 1

    def has_next(self) -> bool:
        if self._query is None:
            return False
        if self._count is not None and self._count.exact:
            return self._query.start + self._page_size <= self._count.value
        return self._shown is not None and len(self._rows) >= self._page_size

    def set_page_size(self, size: int) -> None:
        if size not in self.PAGE_SIZES or size == self._page_size:
            return
        self._page_size = size
        if self._query is not None:
            self._request(replace(self._query, maxresults=size))

    def refresh(self) -> None:
        """The store changed: forget cached pages and counts, reload the current page."""
        self._cache.clear()
        self._counts.clear()
        self._count_key = None
        self._drop_count()
        if self._query is not None:
            self._request(self._query)

    # -- fetching ----------------------------------------------------------------------------

    def _request(self, query: ListingQuery) -> None:
        self._query = query
        self.query_requested.emit(query)
        key = count_key(query)
        if key != self._count_key:
            self._count_key = key
            self._drop_count()
            self._set_count(self._counts.get(key))
        if self._source is None:
            return
        # An older request still in flight must not replace what we show now, nor keep
        # the lane busy (a slow filter on a big store): stop it.
        self._source.stop(self._page_job)
        self._page_job = None
        cached = self._cache.get(query)
        if cached is not None:
            self._cache.move_to_end(query)
            self.last_elapsed_ms, self.last_from_cache = 0.0, True
            self._set_loading(False)
            self._show(cached)
            self._after_page(query, cached)
            return
        began = time.perf_counter()
        self._set_loading(True)
        self._page_job = self._source.page(
            query,
            on_done=lambda page: self._on_page(query, page, began),
            on_error=self._on_error,
            kind="page",
        )

    def cancel_loading(self) -> bool:
        """Stop the page being fetched and keep showing the last one (Esc / the stop button)."""
        if not self._loading or self._source is None:
            return False
        self._source.stop(self._page_job)
        self._page_job = None
        self._set_loading(False)
        if self._shown is not None:
            self._query = self._shown.query
            self._count_key = count_key(self._query)
            self._set_count(self._counts.get(self._count_key))
            self.query_requested.emit(self._query)
        return True

    def _on_page(self, query: ListingQuery, page: ListingPage, began: float) -> None:
        self._page_job = None
        self.last_elapsed_ms = (time.perf_counter() - began) * 1000
        self.last_from_cache = False
        self._remember(query, page)
        self._set_loading(False)
        self._show(page)
        self._after_page(query, page)

    def _after_page(self, query: ListingQuery, page: ListingPage) -> None:
        key = count_key(query)
        if page.total is not None:
            self._known_count(key, Count(page.total, True))
        elif query.start == 1 and query.maxresults and len(page.rows) < query.maxresults:
            self._known_count(key, Count(len(page.rows), True))
        elif key not in self._counts or not self._counts[key].exact:
            self._start_count(key)
        self._prefetch(query, page)

    def _prefetch(self, query: ListingQuery, page: ListingPage) -> None:
        # Paging forward is the common move: have the next page in memory before asked.
        # It starts a moment after the page is shown, so building its rows (Python, on a
        # worker) does not compete for the GIL with the view painting this one.
        if not query.maxresults or len(page.rows) < query.maxresults:
            return
        following = replace(query, start=query.start + len(page.rows))
        if following in self._cache or self._source is None:
            return
        self._prefetch_wanted = following
        self._prefetch_timer.start()

    def _on_prefetch_timer_timeout(self) -> None:
        following, self._prefetch_wanted = self._prefetch_wanted, None
        if following is None or self._source is None or following in self._cache:
            return
        if self._query is None or count_key(following) != count_key(self._query):
            return  # the person moved on to another listing
        self._source.page(following, on_done=lambda p: self._remember(following, p),
                          on_error=lambda _e: None, kind="prefetch")

    def _remember(self, query: ListingQuery, page: ListingPage) -> None:
        self._cache[query] = page
        self._cache.move_to_end(query)
        while len(self._cache) > CACHE_PAGES:
            self._cache.popitem(last=False)

    def _on_error(self, error: HashlensError) -> None:
        self._page_job = None
        self._set_loading(False)
        self.failed.emit(error)

    # -- counting ----------------------------------------------------------------------------

    def _drop_count(self) -> None:
        # A count for a filter no longer shown is not wanted: stop its statement.
        if self._count_job is not None and self._source is not None:
            self._source.stop(self._count_job)
        self._count_job = None
        self._counting = None

    def _start_count(self, key: ListingQuery) -> None:
        """Bounded first ("10,000+"), then exact only if the bound was reached: a filter
        with few matches is counted by one scan, not two."""
        if self._counting == key or self._source is None:
            return
        self._drop_count()
        self._counting = key

        def bounded(count: Count):
            self._known_count(key, count)
            if not count.exact and self._counting == key:
                self._count_job = self._source.count(key, None, on_done=lambda c: self._known_count(key, c),
                                                     on_error=self._on_count_error, kind="count")

        self._count_job = self._source.count(key, COUNT_BOUND, on_done=bounded, on_error=self._on_count_error,
                                             kind="count")

    def _on_count_error(self, error: HashlensError) -> None:
        self._counting = None
        self._count_job = None
        if error.failure is not Failure.CANCELLED:
            self.failed.emit(error)

    def _known_count(self, key: ListingQuery, count: Count) -> None:
        previous = self._counts.get(key)
        if previous is not None and previous.exact and not count.exact:
            return  # the exact count arrived first; a bound adds nothing
        self._counts[key] = count
        if count.exact and self._counting == key:
            self._counting = None
            self._count_job = None
        if key == self._count_key:
            self._set_count(count)

    def _set_count(self, count: Count | None) -> None:
        if count != self._count:
            self._count = count
            self.count_changed.emit(count)

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loading_changed.emit(loading)

    # -- showing -----------------------------------------------------------------------------

    def _show(self, page: ListingPage | None) -> None:
        rows = list(page.rows) if page is not None else []
        self._reference = page.query.reference if page is not None else None
        display: list = [None] * len(rows)
        same_view = (
            page is not None and self._shown is not None and page.query == self._shown.query
        )
        if same_view:
            # A refresh of the page on screen: keep the selection and scroll position.
            self._replace_rows(rows, display)
        else:
            self.beginResetModel()
            self._rows, self._display = rows, display
            self.endResetModel()
        self._shown = page
        self.page_loaded.emit(page)

    def _replace_rows(self, rows, display) -> None:
        old, new = len(self._rows), len(rows)
        if new < old:
            self.beginRemoveRows(QModelIndex(), new, old - 1)
            self._rows, self._display = self._rows[:new], self._display[:new]
            self.endRemoveRows()
        elif new > old:
            self.beginInsertRows(QModelIndex(), old, new - 1)
            self._rows = self._rows + rows[old:]
            self._display = self._display + display[old:]
            self.endInsertRows()
        self._rows, self._display = rows, display
        if new:
            self.dataChanged.emit(self.index(0, 0), self.index(new - 1, len(COLUMNS) - 1))
