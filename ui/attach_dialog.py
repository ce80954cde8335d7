"""Database ▸ Attach images…: pHashes (and optionally images) for a database's entries from
a folder of the image files they were trained from."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from app.domain import Failure, HashlensError
from app.services.attach import attach_images
from ui.errors import message_box
from ui.job_dialog import JobDialog

_SETTING_FOLDER = "attach/last_folder"
MATCH_CHOICES = [
    ("The entry's identifier (file name, stem or path in the folder)", "identifier"),
    ("The entry's label", "label"),
    ("The stem of the identifier or label (paths and suffixes ignored)", "stem"),
]


class AttachDialog(JobDialog):
    """Choose a folder and how files match entries; the work runs on the task lane with
    progress and Cancel, in one transaction."""

    attached = Signal(str, int)  # database, entries that got a pHash

    def __init__(self, store, database: str | None, parent=None, workers=None, databases: list[str] | None = None):
        super().__init__(workers, parent)
        self.setWindowTitle("Attach images")
        self.store = store
        self.settings = QSettings()
        self.report_lines: list[str] = []
        self._build(database, databases)

    def _build(self, database: str | None, databases: list[str] | None) -> None:
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("The folder of the images the entries were trained from")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        self.database_combo = QComboBox()
        names = databases if databases is not None else [info.name for info in self.store.list_databases()]
        self.database_combo.addItems(names)
        if database:
            self.database_combo.setCurrentText(database)
        self.match_combo = QComboBox()
        for label, value in MATCH_CHOICES:
            self.match_combo.addItem(label, value)
        self.store_images_check = QCheckBox("Also store each matched image in Hashlens (as training does)")
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("What matched, what did not and what was ambiguous appears here.")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.attach_button = self.buttons.addButton("Attach", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_attach_clicked)
        self.buttons.rejected.connect(self.reject)
        if self.store.read_only:
            self.attach_button.setEnabled(False)
            self.report.setPlainText("The store is open read-only, so nothing can be attached.")
        form = QFormLayout()
        form.addRow("Folder:", row)
        form.addRow("Database:", self.database_combo)
        form.addRow("A file belongs to:", self.match_combo)
        form.addRow(self.store_images_check)
        note = QLabel("Entries pulled or imported from a Media Server have no pHash (Media Server never lists one). "
                      "An entry with several candidate files, or a file claimed by several entries, is left alone "
                      "and listed. Everything is one transaction: Cancel changes nothing.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 480)

    @Slot()
    def _on_browse_clicked(self) -> None:
        start = self.settings.value(_SETTING_FOLDER, "", type=str)
        folder = QFileDialog.getExistingDirectory(self, "Attach images from", start)
        if folder:
            self.folder_edit.setText(folder)

    @Slot()
    def _on_attach_clicked(self) -> None:
        if self.busy:
            return
        text = self.folder_edit.text().strip()
        database = self.database_combo.currentText()
        if not text or not database:
            message_box(self, "warning", "Attach images", "Choose the folder (Browse…) and the database.")
            return
        folder = Path(text).expanduser()
        match, store_images = self.match_combo.currentData(), self.store_images_check.isChecked()
        store = self.store

        def work(progress, cancelled):
            report = attach_images(store, database, folder, match=match, store_images=store_images,
                                   progress=progress, cancelled=cancelled)
            return database, report.lines(), report.attached_count

        self.attach_button.setEnabled(False)
        self.settings.setValue(_SETTING_FOLDER, str(folder))
        self.start_task(store, work, title="Attaching images", text=f"Attaching images from {folder.name}",
                        total=None, cancelling="Cancelling: rolling back…",
                        on_done=self._on_job_done, on_error=self._on_job_failed)

    def _on_job_done(self, result) -> None:
        self.attach_button.setEnabled(not self.store.read_only)
        database, lines, count = result
        self.report_lines = lines
        self.report.setPlainText("\n".join(lines))
        self.attached.emit(database, count)

    def _on_job_failed(self, error: HashlensError) -> None:
        self.attach_button.setEnabled(not self.store.read_only)
        if error.failure is Failure.CANCELLED:
            self.report.setPlainText("Cancelled; nothing was changed.")
            return
        self.report.setPlainText(error.description)
        message_box(self, "warning", "Attach images failed", error.description)
