"""The window's status bar: the store, the database, the count and query time, work in progress."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QStatusBar

STORE_WIDTH_PX = 280


class StatusBar(QStatusBar):
    """Permanent fields set through narrow methods; passing messages via `showMessage`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.busy = QLabel()
        self.store = QLabel()
        self.database = QLabel()
        self.count = QLabel()
        self.time = QLabel()
        for label in (self.busy, self.store, self.database, self.count, self.time):
            label.setContentsMargins(6, 0, 6, 0)
            self.addPermanentWidget(label)
        self.store.setFrameShape(QFrame.Shape.NoFrame)

    def show_store(self, description: str | None, read_only: bool = False) -> None:
        text = "no store open" if description is None else description + (" · read-only" if read_only else "")
        # A long path is shortened in the middle (the whole is in the tooltip): the status
        # bar must never make the window wider than the screen.
        metrics = self.store.fontMetrics()
        self.store.setText(metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, STORE_WIDTH_PX))
        self.store.setToolTip(text)

    def show_database(self, name: str | None) -> None:
        self.database.setText(f"Database: {name}" if name else "")

    def show_count(self, count) -> None:
        """A `Count` (bounded or exact) or None."""
        self.count.setText(f"{count} entries" if count is not None else "")

    def show_timing(self, elapsed_ms: float | None, from_cache: bool) -> None:
        if elapsed_ms is None:
            self.time.setText("")
        else:
            self.time.setText("page from cache" if from_cache else f"query {elapsed_ms:,.0f} ms")

    def set_busy(self, busy: bool) -> None:
        self.busy.setText("Working…" if busy else "")
