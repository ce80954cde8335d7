"""Tools ▸ Serve this store over ACI…: host, port and read-only; the URL while it runs.

The server itself is `app.serve.server.Server` (no Qt there); starting and stopping it
(opening the store, binding, waiting for requests in progress) run on the job service's
"serve" lane, and the outcome comes back on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout,
)

from app.domain import Failure, HashlensError
from app.serve.server import Server
from app.serve.settings import DEFAULT_PORT, ServeSettings
from ui.workers import Workers


class ServeDialog(QDialog):
    """Runs one server for the open store while the dialog is open; closing it stops the server."""

    started = Signal(str)  # the URL
    stopped = Signal()
    failed = Signal(str)

    def __init__(self, store_url: str, parent=None, *, read_only: bool = False, workers: Workers | None = None):
        super().__init__(parent)
        self.setWindowTitle("Serve this store over ACI")
        self.store_url = store_url
        self.server: Server | None = None
        self._busy = False
        # The window's job service; a dialog opened on its own (tests) makes a private one.
        self.workers = workers if workers is not None else Workers(self, lanes=("serve",))

        self.host_edit = QLineEdit("127.0.0.1")
        self.host_edit.setToolTip("127.0.0.1 serves this computer only; another address makes the store "
                                  "reachable from the network")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setValue(DEFAULT_PORT)
        self.port_spin.setToolTip("Media Server's ACI port is 14000; 0 picks a free port")
        self.read_only_check = QCheckBox("Read-only (refuse every change)")
        self._forced_read_only = read_only
        if read_only:
            self.read_only_check.setChecked(True)
            self.read_only_check.setEnabled(False)
        self.url_label = QLabel("Not running.")
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url_label.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.start_server)
        self.stop_button.clicked.connect(self.stop_server)

        form = QFormLayout()
        form.addRow("Host:", self.host_edit)
        form.addRow("Port:", self.port_spin)
        form.addRow("", self.read_only_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.url_label)
        layout.addWidget(buttons)

    # -- starting and stopping ------------------------------------------------------------

    def start_server(self) -> None:
        if self.server is not None or self._busy:
            return
        try:
            settings = ServeSettings(self.store_url, host=self.host_edit.text().strip() or "127.0.0.1",
                                     port=self.port_spin.value(), read_only=self.read_only_check.isChecked())
        except HashlensError as exc:
            self._on_server_failed(exc.description)
            return
        self._set_busy(True, "Starting…")
        server = Server(settings)

        def start() -> Server:
            try:
                server.start()
            except OSError as exc:
                raise HashlensError(Failure.FILE_FAILED,
                                    f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
            return server

        self.workers.submit("serve", start, owner=self, on_done=self._on_server_started,
                            on_error=lambda error: self._on_server_failed(error.description))

    def stop_server(self) -> None:
        server = self.server
        if server is None or self._busy:
            return
        self._set_busy(True, "Stopping: cancelling queued actions, finishing requests in progress…")
        self.workers.submit("serve", server.stop, owner=self, on_done=lambda _r: self._on_server_stopped(),
                            on_error=lambda error: self._on_server_stopped(error.description))

    def shutdown(self) -> None:
        """Stop the server and wait (the dialog closes, or the window does)."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def done(self, result: int) -> None:
        self.stop_server()  # closing the dialog stops the server, off the GUI thread
        super().done(result)

    # -- results on the GUI thread -------------------------------------------------------------

    def _on_server_started(self, server: Server) -> None:
        self.server = server
        url = server.url
        self._set_busy(False)
        mode = "read-only" if self.read_only_check.isChecked() else "changes from this computer only"
        self.url_label.setText(f"Serving at {url}  ({mode})\nTry {url}action=ListImageHashDatabases")
        self.started.emit(url)

    def _on_server_stopped(self, problem: str | None = None) -> None:
        self.server = None
        self._set_busy(False, "Not running." + (f" ({problem})" if problem else ""))
        self.stopped.emit()

    def _on_server_failed(self, message: str) -> None:
        self._set_busy(False, message)
        self.failed.emit(message)

    def _set_busy(self, busy: bool, text: str | None = None) -> None:
        self._busy = busy
        running = self.server is not None
        for widget in (self.host_edit, self.port_spin):
            widget.setEnabled(not busy and not running)
        self.read_only_check.setEnabled(not busy and not running and not self._forced_read_only)
        self.start_button.setEnabled(not busy and not running)
        self.stop_button.setEnabled(not busy and running)
        if text is not None:
            self.url_label.setText(text)
