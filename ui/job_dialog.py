"""A dialog that runs one long job at a time through the window's job service (export,
import, attach images), and the chooser shape Import and Attach images share."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from app.domain import Failure, HashlensError
from ui.errors import message_box
from ui.workers import Task, Workers


class JobDialog(QDialog):
    """Owns the running `Task`; closing the dialog while it runs cancels it and waits, so
    no partial file is left and nothing is delivered to a closed dialog.

    Given no job service (a dialog opened on its own, as in tests) it makes a private one
    with the same behaviour and stops it when the dialog closes."""

    def __init__(self, workers: Workers | None, parent=None):
        super().__init__(parent)
        self._own_workers = workers is None
        self.workers = workers if workers is not None else Workers(self, lanes=("task",))
        self.task: Task | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None

    def start_task(self, store, work, *, title: str, text: str, total: int | None, cancelling: str,
                   on_done, on_error) -> None:
        """Run `work(progress, stop)` on the task lane with the progress dialog."""

        def finished(callback):
            def deliver(value):
                self.task = None
                callback(value)
            return deliver

        self.task = self.workers.run_task("task", work, title=title, text=text, parent=self, store=store,
                                          total=total, cancelling=cancelling, owner=self,
                                          on_done=finished(on_done), on_error=finished(on_error))

    def cancel_and_wait(self, wait_ms: int = 10000) -> None:
        task, self.task = self.task, None
        if task is not None:
            if task.dialog is not None:
                task.dialog.finish()
            self.workers.cancel_and_wait(task.job, task.stop, wait_ms)

    def reject(self) -> None:
        self.cancel_and_wait()
        super().reject()

    def done(self, result: int) -> None:
        self.cancel_and_wait()
        if self._own_workers:
            self.workers.shutdown()
        super().done(result)


class ChooserDialog(JobDialog):
    """The shape Import and Attach images share: a path with Browse…, the database, the
    dialog's own rows, a note, the report and Close beside the action button (disabled on a
    read-only store). The job runs in one transaction, so Cancel rolls back; its report
    lines, or its error, land in the report."""

    def __init__(self, store, title: str, workers=None, parent=None):
        super().__init__(workers, parent)
        self.setWindowTitle(title)
        self.store = store
        self.settings = QSettings()
        self.report_lines: list[str] = []

    def build(self, *, path: tuple[str, str], database: tuple[str, str | None, list[str] | None],
              rows: list, note: str, action: str, report_placeholder: str, read_only_text: str) -> None:
        """`path` and `database` are (row label, placeholder or current name[, names]);
        `rows` are (label, widget) pairs or widgets spanning the form."""
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText(path[1])
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        label, current, names = database
        self.database_combo = QComboBox()
        # The window passes the names it already has: no store query on the GUI thread.
        self.database_combo.addItems(names if names is not None else [i.name for i in self.store.list_databases()])
        self.database_combo.setCurrentText(current or "")

        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setPlaceholderText(report_placeholder)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.action_button = self.buttons.addButton(action, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_action_clicked)
        self.buttons.rejected.connect(self.reject)
        if self.store.read_only:
            self.action_button.setEnabled(False)
            self.report.setPlainText(read_only_text)

        form = QFormLayout()
        form.addRow(path[0], path_row)
        form.addRow(label, self.database_combo)
        for row in rows:
            if isinstance(row, tuple):
                form.addRow(*row)
            else:
                form.addRow(row)
        note_label = QLabel(note)
        note_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note_label)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 480)

    def _on_browse_clicked(self) -> None:
        raise NotImplementedError

    def _on_action_clicked(self) -> None:
        raise NotImplementedError

    def run(self, work, *, title: str, text: str, on_done, cancelled_text: str, failed_title: str) -> None:
        """Run `work` with progress and Cancel; `on_done(result)` after the button is back."""
        self.action_button.setEnabled(False)

        def done(result) -> None:
            self.action_button.setEnabled(not self.store.read_only)
            on_done(result)

        def failed(error: HashlensError) -> None:
            self.action_button.setEnabled(not self.store.read_only)
            if error.failure is Failure.CANCELLED:
                self.report.setPlainText(cancelled_text)
            else:
                self.show_error(failed_title, error)

        self.start_task(self.store, work, title=title, text=text, total=None, cancelling="Cancelling: rolling back…",
                        on_done=done, on_error=failed)

    def show_report(self, lines: list[str]) -> None:
        self.report_lines = lines
        self.report.setPlainText("\n".join(lines))

    def show_error(self, title: str, error: HashlensError) -> None:
        self.report.setPlainText(error.description)
        message_box(self, "warning", title, error.description)
