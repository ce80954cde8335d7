"""The paging bar under the table: first/previous/next/last, page size, go to entry N."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QSizePolicy, QToolButton, QWidget

from app.domain import Count, ListingQuery
from ui.elided_label import ElidedLabel
from ui.icons import set_icon


def page_text(query: ListingQuery | None, shown: int, count: Count | None, loading: bool = False) -> str:
    """'entries 1,001–1,050 of 2,000,000' (the count may be '10,000+' or not known yet)."""
    if query is None:
        return "no database chosen"
    total = "…" if count is None else str(count)
    if shown == 0:
        if count is not None and count.exact and count.value == 0:
            return "no entries match" if query.is_filtered else "this database has no entries"
        if loading:
            return "loading…"
        return f"no entries from {query.start:,} (of {total})"
    first, last = query.start, query.start + shown - 1
    if shown == 1:
        return f"entry {first:,} of {total}"
    return f"entries {first:,}–{last:,} of {total}"


# The widest text the indicator grows to fit; longer ones are shortened (whole in the tooltip).
INDICATOR_SAMPLE = "entries 1,000,001–1,001,000 of 10,000,000+"
# The narrowest it gets: a short listing's text whole, a long one's shortened in the middle.
INDICATOR_MINIMUM = "entries 1–100 of 240"
# What people type between digit groups: '1,000', '1 000', '1_000', '1.000', '1'000'.
GROUP_SEPARATORS = ",._' \u00a0\u202f"


def parse_entry_number(text: str) -> int:
    """The entry number typed into 'go to entry'; ValueError says why it is refused."""
    digits = text.strip()
    for separator in GROUP_SEPARATORS:
        digits = digits.replace(separator, "")
    if not digits:
        raise ValueError("Go to entry: type an entry number, such as 1,001.")
    if not digits.isdigit():
        raise ValueError(f"Go to entry: '{text.strip()}' is not a number; type an entry number, such as 1,001.")
    number = int(digits)
    if number < 1:
        raise ValueError(f"Go to entry: entries are numbered from 1, so {number} is not one.")
    return number


class PagerBar(QWidget):
    """Emits what the person asked for; the model decides what that means."""

    first_requested = Signal()
    previous_requested = Signal()
    next_requested = Signal()
    last_requested = Signal()
    go_to_requested = Signal(int)
    page_size_changed = Signal(int)
    stop_requested = Signal()
    go_to_refused = Signal(str)  # why the typed entry number was not used

    def __init__(self, page_sizes=(50, 100, 500, 1000), page_size: int = 100, parent=None):
        super().__init__(parent)
        self.first = self._button("first", "First page", self.first_requested)
        self.previous = self._button("previous", "Previous page", self.previous_requested)
        self.next = self._button("next", "Next page", self.next_requested)
        self.last = self._button("last", "Last page (once the exact count is known)", self.last_requested)
        self.stop = self._button("clear", "Stop loading this page and keep the one shown (Esc)", self.stop_requested)
        # Hidden, it keeps its place: Next and Last must not jump while a page loads.
        policy = self.stop.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.stop.setSizePolicy(policy)
        self.stop.hide()
        self.indicator = ElidedLabel("no database chosen")
        self.indicator.setObjectName("pageIndicator")
        # Its width follows the bar's, never the text: the Next and Last buttons stay put as
        # the text changes (a second click on the same spot hits the same button), and in a
        # narrow window it shrinks, shortening its text, rather than overlap "go to entry".
        self.indicator.setMinimumWidth(self.indicator.fontMetrics().horizontalAdvance(INDICATOR_MINIMUM))
        self.indicator.setMaximumWidth(self.indicator.fontMetrics().horizontalAdvance(INDICATOR_SAMPLE) + 8)
        self.indicator.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.indicator.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.go_to = QLineEdit()
        self.go_to.setPlaceholderText("go to entry…")
        self.go_to.setToolTip("Show the page starting exactly at entry N (ListImageHashes start=N)")
        self.go_to.setMaximumWidth(110)
        # Never narrower than its hint, which a squeezed bar had cut to "g…".
        self.go_to.setMinimumWidth(self.go_to.fontMetrics().horizontalAdvance(self.go_to.placeholderText()) + 16)
        self.go_to.returnPressed.connect(self._on_go_to_return_pressed)
        self.page_size = QComboBox()
        for size in page_sizes:
            self.page_size.addItem(f"{size:,} / page", size)
        self.page_size.setCurrentIndex(max(0, self.page_size.findData(page_size)))
        self.page_size.setToolTip("Entries per page (ListImageHashes maxresults)")
        self.page_size.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.page_size.currentIndexChanged.connect(
            lambda _i: self.page_size_changed.emit(int(self.page_size.currentData()))
        )

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(4)
        for w in (self.first, self.previous):
            layout.addWidget(w)
        layout.addWidget(self.indicator, 1)
        layout.addWidget(self.stop)
        for w in (self.next, self.last):
            layout.addWidget(w)
        layout.addStretch(1)
        layout.addWidget(self.go_to)
        layout.addWidget(self.page_size)

    def _button(self, name: str, tip: str, signal) -> QToolButton:
        button = QToolButton()
        set_icon(button, name)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(signal.emit)
        return button

    def _on_go_to_return_pressed(self) -> None:
        try:
            number = parse_entry_number(self.go_to.text())
        except ValueError as refused:
            self.go_to.selectAll()  # kept, so the person can correct it
            self.go_to_refused.emit(str(refused))
            return
        self.go_to.clear()  # a stale number would read as where the page starts
        self.go_to_requested.emit(number)

    def set_page_size(self, size: int) -> None:
        index = self.page_size.findData(size)
        if index >= 0 and index != self.page_size.currentIndex():
            self.page_size.blockSignals(True)
            self.page_size.setCurrentIndex(index)
            self.page_size.blockSignals(False)

    def update_state(self, query: ListingQuery | None, shown: int, count: Count | None,
                     has_next: bool, last_start: int | None, loading: bool = False) -> None:
        self.indicator.setText(page_text(query, shown, count, loading))
        at_start = query is None or query.start <= 1
        self.first.setEnabled(not at_start)
        self.previous.setEnabled(not at_start)
        self.next.setEnabled(query is not None and has_next)
        # Only when entries lie beyond this page: from a page started by "go to entry",
        # the aligned last page may begin before it.
        self.last.setEnabled(query is not None and has_next and last_start is not None and last_start != query.start)
        self.go_to.setEnabled(query is not None)
        self.stop.setVisible(loading)
