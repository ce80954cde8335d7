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
        self.messageChanged.connect(self._on_message_changed)

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 (Qt's name)
        """Show `text`, shortened in the middle with an ellipsis where it does not fit; the whole is in the tooltip."""
        permanent = sum(label.sizeHint().width() for label in (self.busy, self.store, self.database,
                                                                 self.count, self.time) if label.text())
        room = max(80, self.width() - permanent - 40)
        # Middle: the start names the action, the end often says what came of it.
        shown = self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, room)
        self.setToolTip(text if shown != text else "")
        super().showMessage(shown, timeout)

    def _on_message_changed(self, text: str) -> None:
        if not text:
            self.setToolTip("")

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
        if count is None:
            self.count.setText("")
        else:
            self.count.setText(f"{count} {'entry' if count.exact and count.value == 1 else 'entries'}")

    def show_timing(self, elapsed_ms: float | None, from_cache: bool) -> None:
        if elapsed_ms is None:
            self.time.setText("")
        else:
            self.time.setText("page from cache" if from_cache else f"query {elapsed_ms:,.0f} ms")

    def set_busy(self, busy: bool) -> None:
        self.busy.setText("Working…" if busy else "")
