"""File > Publish to Media Server…: train a local database's entries into a Media Server database, after a confirmation listing what will be sent."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSpinBox,
    QVBoxLayout,
)

from app.domain import HashlensError
from app.mediaserver.client import MediaServerClient
from app.mediaserver.publish import DEFAULT_IN_FLIGHT, plan, publish
from app.mediaserver_codec import names
from app.mediaserver_codec.request import aci_line
from ui.job_dialog import JobDialog
from ui.mirror_dialog import REMEMBERED_URLS, SETTINGS_URLS
from ui.prompts import Prompter

SHOWN_IN_CONFIRMATION = 8  # example actions and entries without image data named in the question


class PublishDialog(JobDialog):
    """Choose a local database, a server and its database; Publish… asks for confirmation
    (how many TrainImageHash actions go where, which entries cannot go), then runs the
    publish on the task lane with progress and Cancel, and shows the report."""

    published = Signal(object)  # PublishReport

    def __init__(self, store, database: str | None, databases: list[str], parent=None, workers=None,
                 prompter: Prompter | None = None):
        super().__init__(workers, parent)
        self.setWindowTitle("Publish to Media Server")
        self.resize(760, 520)
        self.store = store
        self.prompter = prompter or Prompter(self)
        self.settings = QSettings()
        self._build(database, databases)

    def _build(self, database: str | None, databases: list[str]) -> None:
        self.database_combo = QComboBox()
        self.database_combo.addItems(databases)
        if database in databases:
            self.database_combo.setCurrentText(database)
        self.url_combo = QComboBox()
        self.url_combo.setEditable(True)
        self.url_combo.lineEdit().setPlaceholderText("http://mediaserver:14000")
        for url in self.settings.value(SETTINGS_URLS, [], type=list):
            self.url_combo.addItem(url)
        self.remote_edit = QLineEdit()
        self.remote_edit.setPlaceholderText("the image-hash database on the server (it must exist)")
        self.remote_edit.setText(self.database_combo.currentText())
        self.database_combo.currentTextChanged.connect(self._on_database_combo_changed)
        self.in_flight_spin = QSpinBox()
        self.in_flight_spin.setRange(1, 64)
        self.in_flight_spin.setValue(DEFAULT_IN_FLIGHT)
        self.in_flight_spin.setToolTip("Trainings outstanding on the server at a time")
        self.continue_check = QCheckBox("Go on past entries the server refuses")
        form = QFormLayout()
        form.addRow("Local database", self.database_combo)
        form.addRow("Server", self.url_combo)
        form.addRow("Server database", self.remote_edit)
        form.addRow("In flight", self.in_flight_spin)
        form.addRow("", self.continue_check)
        explain = QLabel("Each entry with image data is sent as one training; entries already on the server are "
                         "skipped, so publishing again resumes an interrupted run, and nothing is trained twice.")
        explain.setWordWrap(True)
        self.publish_button = QPushButton("Publish…")
        self.publish_button.setDefault(True)
        self.publish_button.clicked.connect(self._on_publish_button_clicked)
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        self.report_view = QPlainTextEdit()
        self.report_view.setReadOnly(True)
        self.report_view.setPlaceholderText("The report of the publish appears here.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.publish_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(explain)
        layout.addWidget(self.status)
        layout.addWidget(self.report_view, 1)
        layout.addWidget(buttons)
        if not databases:
            self.status.setText("This store has no database to publish.")
            self.publish_button.setEnabled(False)

    def _on_database_combo_changed(self, name: str) -> None:
        self.remote_edit.setText(name)

    # -- publishing -----------------------------------------------------------------------

    def _on_publish_button_clicked(self) -> None:
        database = self.database_combo.currentText()
        url = self.url_combo.currentText().strip()
        remote = self.remote_edit.text()
        if not database or not url or not remote.strip():
            self.status.setText("Choose a local database and give the server's address and its database.")
            return
        try:
            client = MediaServerClient(url)
        except HashlensError as exc:
            self.status.setText(exc.description)
            return
        store = self.store
        self.publish_button.setEnabled(False)
        self.status.setText(f"Counting what '{database}' holds…")
        self.start_task(store, lambda progress, cancelled: plan(store, database), title="Publish to Media Server",
                        text=f"Counting the entries of '{database}'", total=None, cancelling="Cancelling…",
                        on_done=lambda found: self._confirm(client, database, remote, found),
                        on_error=self._on_failed)

    def _confirm(self, client: MediaServerClient, database: str, remote: str, found) -> None:
        publishable, without = found
        example = aci_line(names.TRAIN_IMAGE_HASH, {"database": remote, "identifier": "ID", "imagelabel": "LABEL",
                                                    "metadata": "METADATA"}) + "&imagedata=IMAGE"
        lines = [f"Send up to {publishable:,} {names.TRAIN_IMAGE_HASH} actions to {client.url}, database "
                 f"'{remote}'? One per entry of '{database}' with image data, each like:", "", example, "",
                 "Entries already on the server are skipped. Training changes the server; it cannot be undone "
                 "from Hashlens."]
        if without:
            shown = ", ".join(without[:SHOWN_IN_CONFIRMATION])
            more = f" and {len(without) - SHOWN_IN_CONFIRMATION:,} more" if len(without) > SHOWN_IN_CONFIRMATION else ""
            lines += ["", f"{len(without):,} entries have no image data and cannot be published: {shown}{more}."]
        if not publishable:
            self.publish_button.setEnabled(True)
            self.status.setText(f"'{database}' has no entry with image data: nothing can be published.")
            return
        if not self.prompter.confirm("Publish to Media Server", "\n".join(lines), f"Publish {publishable:,}"):
            self.publish_button.setEnabled(True)
            self.status.setText("Nothing was sent.")
            return
        self._remember(client.url)
        store, in_flight, go_on = self.store, self.in_flight_spin.value(), self.continue_check.isChecked()

        def work(progress, cancelled):
            return publish(store, client, database, remote, in_flight=in_flight, continue_on_error=go_on,
                           progress=lambda p: progress(p.done, p.total), cancelled=cancelled)

        self.status.setText(f"Publishing '{database}' to {client.url}…")
        self.start_task(store, work, title="Publish to Media Server",
                        text=f"Publishing '{database}' to {client.url} database '{remote}'", total=publishable,
                        cancelling="Cancelling: waiting for the trainings in flight; publishing again resumes…",
                        on_done=self._on_published, on_error=self._on_failed)

    def _on_published(self, report) -> None:
        self.publish_button.setEnabled(True)
        self.report_view.setPlainText(report.text(limit=200))
        if report.complete:
            self.status.setText(f"Done: every entry of '{report.database}' with image data is on the server.")
        elif report.cancelled:
            self.status.setText("Cancelled. Publish again to send the rest; nothing is sent twice.")
        else:
            self.status.setText("Not every entry is on the server: see the report. Publishing again resumes.")
        self.published.emit(report)

    def _on_failed(self, error: HashlensError) -> None:
        self.publish_button.setEnabled(True)
        self.status.setText(f"{error.description} Publishing again resumes; nothing is sent twice.")

    def _remember(self, url: str) -> None:
        urls = [url] + [u for u in self.settings.value(SETTINGS_URLS, [], type=list) if u != url]
        self.settings.setValue(SETTINGS_URLS, urls[:REMEMBERED_URLS])
