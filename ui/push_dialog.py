"""Push…: the confirmation that lists every action to be sent, then the push itself with progress, cancel and its report."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from app.domain import Failure, HashlensError
from app.mediaserver import changeset
from app.mediaserver import push as push_module
from app.mediaserver.client import MediaServerClient
from ui.job_dialog import JobDialog


class PushDialog(JobDialog):
    """Nothing is sent until the person presses Push (issue 12: confirmation in the
    window). The push runs on the task lane with the one progress dialog; Cancel stops
    it between actions (an action in flight is finished and checked). The report stays
    in the dialog; `pushed` tells the window to reload."""

    pushed = Signal(object)  # PushReport

    def __init__(self, store, mirror: str, server: str, changes: list, parent=None, workers=None):
        super().__init__(workers, parent)
        self.store, self.mirror, self.server = store, mirror, server
        self.setWindowTitle(f"Push the changes of '{mirror}'")
        self.resize(820, 460)
        self.report = None
        self.heading = QLabel(
            f"Send these {len(changes)} change(s) to {server}, one at a time? Each is confirmed on the server "
            "before the next is sent; a refused one stops the push.")
        self.heading.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setPlainText("\n".join(
            f"{n}. {changeset.describe(c.action, dict(c.params))}\n   {c.line()}" for n, c in enumerate(changes, 1)))
        self.buttons = QDialogButtonBox()
        self.push_button = QPushButton(f"Push {len(changes)} change(s)")
        self.push_button.setDefault(True)
        self.force_button = QPushButton("Push anyway")
        self.force_button.setToolTip("Someone else changed these entries on the server; send the changes regardless")
        self.buttons.addButton(self.push_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.force_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.force_button.hide()  # after addButton, which shows it
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.push_button.clicked.connect(lambda: self.start_push(force=False))
        self.force_button.clicked.connect(lambda: self.start_push(force=True))
        self.close_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.buttons)

    def start_push(self, force: bool = False) -> None:
        try:
            client = MediaServerClient(self.server)
        except HashlensError as exc:
            self.heading.setText(exc.description)
            return
        store, mirror = self.store, self.mirror

        def work(progress, cancelled):
            return push_module.push(store, client, mirror, force=force, cancelled=cancelled,
                                    progress=lambda done, total: progress(done, total))

        self.push_button.setEnabled(False)
        self.force_button.setEnabled(False)
        self.start_task(store, work, title="Push to Media Server", text=f"Pushing the changes of '{mirror}' to "
                                                                        f"{client.url}",
                        total=None, cancelling="Cancelling: the action in flight is finished and checked…",
                        on_done=self._on_push_done, on_error=self._on_push_failed)

    def _on_push_done(self, report) -> None:
        self.report = report
        self.heading.setText("Every change is on the server." if report.ok else
                             "The push stopped; what was confirmed stays confirmed. Push again to go on.")
        self.text.setPlainText("\n".join(report.lines()))
        self.push_button.hide()
        self.force_button.hide()
        self.close_button.setText("Close")
        self.pushed.emit(report)

    def _on_push_failed(self, error: HashlensError) -> None:
        self.heading.setText(error.description)
        self.push_button.setEnabled(True)
        if error.failure is Failure.SERVER_CHANGED:
            self.force_button.show()
            self.force_button.setEnabled(True)
        self.pushed.emit(None)
