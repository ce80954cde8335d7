"""A progress dialog for long writes (training, sample data) with a working Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QVBoxLayout


class TaskProgressDialog(QDialog):
    """Window-modal while it runs; Cancel asks the job to stop between items."""

    cancel_requested = Signal()

    def __init__(self, title: str, text: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(420)
        self._started = time.monotonic()
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the first figure arrives
        self.rate = QLabel(" ")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self._on_cancel_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.rate)
        layout.addWidget(self.buttons)
        self.cancelled = False

    def update_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        elapsed = max(time.monotonic() - self._started, 1e-6)
        of = f" of {total:,}" if total else ""
        self.rate.setText(f"{done:,}{of} done · {done / elapsed:,.0f} per second")

    def _on_cancel_clicked(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.label.setText(self.label.text() + "\n\nCancelling: finishing the item in progress…")
            self.buttons.setEnabled(False)
            self.cancel_requested.emit()

    def reject(self) -> None:
        # Escape or the close button mean Cancel; the dialog closes when the job stops.
        self._on_cancel_clicked()

    def finish(self) -> None:
        self.done(QDialog.DialogCode.Accepted)
