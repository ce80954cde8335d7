"""The one progress dialog for long jobs (training, sample data, export, import): count,
percentage and time left when the total is known, the phase, and a working Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QVBoxLayout


def describe_progress(done: int, total: int | None, elapsed_s: float, phase: str | None = None) -> str:
    """'1,200 of 5,000 (24%) · 300 per second · about 13 s left', or without a total
    '1,200 done · 300 per second'; the phase, if any, comes first."""
    rate = done / max(elapsed_s, 1e-6)
    if total:
        share = min(done, total) / total
        text = f"{done:,} of {total:,} ({share:.0%})"
    else:
        text = f"{done:,} done"
    text += f" · {rate:,.0f} per second"
    if total and 0 < done < total and rate > 0:
        text += f" · about {_duration((total - done) / rate)} left"
    return f"{phase}: {text}" if phase else text


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class TaskProgressDialog(QDialog):
    """Window-modal while it runs; Cancel asks the job to stop and the dialog stays until
    the job has ended (so nothing half-done is left behind a closed dialog)."""

    cancel_requested = Signal()

    def __init__(self, title: str, text: str, parent=None, *, total: int | None = None,
                 cancelling: str = "Cancelling: finishing the item in progress…"):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(420)
        self._started = time.monotonic()
        self._cancelling = cancelling
        self._total = total
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.rate = QLabel(" ")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self._on_cancel_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.rate)
        layout.addWidget(self.buttons)
        self.cancelled = False
        self._show_total(total)

    def _show_total(self, total: int | None) -> None:
        if total:
            self.bar.setRange(0, total)
        else:
            self.bar.setRange(0, 0)  # busy until a total is known

    def update_progress(self, progress) -> None:
        """Show a `ui.workers.Progress`."""
        total = progress.total if progress.total is not None else self._total
        if total and total != self.bar.maximum():
            self._show_total(total)
        if total:
            self.bar.setValue(min(progress.done, total))
        self.rate.setText(describe_progress(progress.done, total, time.monotonic() - self._started, progress.phase))

    def _on_cancel_clicked(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.label.setText(self.label.text() + "\n\n" + self._cancelling)
            self.buttons.setEnabled(False)
            self.cancel_requested.emit()

    def reject(self) -> None:
        # Escape or the close button mean Cancel; the dialog closes when the job stops.
        self._on_cancel_clicked()

    def finish(self) -> None:
        self.done(QDialog.DialogCode.Accepted)
