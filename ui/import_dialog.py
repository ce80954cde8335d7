"""File ▸ Import…: a listing file into a new or existing database, all or nothing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import (
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
from app.exports import database_file, registry
from app.exports.fileformats.database_format import FORMAT as DATABASE
from app.exports.importer import ImportOptions, detect_format, import_file
from app.mediaserver_codec.names import LIST_IMAGE_HASHES
from ui.errors import message_box
from ui.job_dialog import JobDialog

_SETTING_FOLDER = "import/last_folder"
POLICY_CHOICES = [
    ("Abort the import (nothing is imported)", "abort"),
    ("Skip the file's entry (keep the stored one)", "skip"),
    ("Replace the stored entry with the file's", "replace"),
]
DIALECT_CHOICES = [
    ("As recorded in its manifest (else spreadsheet-safe)", "auto"),
    ("Spreadsheet-safe (a leading ' is removed)", "safe"),
    ("Raw (cells exactly as written)", "raw"),
]


class ImportDialog(JobDialog):
    """Choose a file and a target database; the import runs on a worker in one transaction."""

    imported = Signal(str, int)  # database, entries added or replaced

    def __init__(self, store, database: str | None, parent=None, workers=None, databases: list[str] | None = None):
        super().__init__(workers, parent)
        self.setWindowTitle("Import")
        self.store = store
        self.settings = QSettings()
        self.report_lines: list[str] = []
        self._build(database, databases)

    def _build(self, database: str | None, databases: list[str] | None) -> None:
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText(f"A Hashlens export or a saved {LIST_IMAGE_HASHES} response")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)

        self.database_combo = QComboBox()
        self.database_combo.setEditable(True)
        self.database_combo.setToolTip("An existing database, or type a new name to create it")
        # The window passes the names it already has: no store query on the GUI thread.
        names = databases if databases is not None else [info.name for info in self.store.list_databases()]
        self.database_combo.addItems(names)
        self.database_combo.setCurrentText(database or "")

        self.policy_combo = QComboBox()
        for label, value in POLICY_CHOICES:
            self.policy_combo.addItem(label, value)
        self.dialect_combo = QComboBox()
        for label, value in DIALECT_CHOICES:
            self.dialect_combo.addItem(label, value)

        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("The import report appears here.")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_import_clicked)
        self.buttons.rejected.connect(self.reject)
        if self.store.read_only:
            self.import_button.setEnabled(False)
            self.report.setPlainText("The store is open read-only, so nothing can be imported into it.")

        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Into database:", self.database_combo)
        form.addRow("An identifier already there:", self.policy_combo)
        form.addRow("CSV/TSV cells:", self.dialect_combo)
        note = QLabel("The whole file is imported in one transaction: a bad entry, a refused duplicate or Cancel "
                      "leaves the store as it was. A whole-database file becomes a new database.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 480)

    @Slot()
    def _on_browse_clicked(self) -> None:
        folder = self.settings.value(_SETTING_FOLDER, "", type=str)
        path, _chosen = QFileDialog.getOpenFileName(
            self, "Import from", folder,
            registry.import_file_filter(f"Hashlens exports and {LIST_IMAGE_HASHES} responses"))
        if path:
            self.path_edit.setText(path)

    @Slot()
    def _on_import_clicked(self) -> None:
        if self.busy:
            return
        text = self.path_edit.text().strip()
        database = self.database_combo.currentText()
        if not text:
            message_box(self, "warning", "Import", "Choose the file to import (Browse…).")
            return
        path = Path(text).expanduser()
        try:
            whole_database = detect_format(path) == DATABASE.name
        except HashlensError as exc:
            self._show_error(exc)
            return
        if not database and not whole_database:
            message_box(self, "warning", "Import", "Choose or type the database to import into.")
            return
        options = ImportOptions(on_duplicate=self.policy_combo.currentData(),
                                csv_dialect=self.dialect_combo.currentData())
        store = self.store

        def work(progress, cancelled):  # `cancelled`: the person's Cancel
            if whole_database:
                name = database_file.import_database(store, path, database or None, progress=progress,
                                                     cancelled=cancelled)
                return name, [f"Imported {path} as the new database '{name}'."], -1
            report = import_file(store, path, database, options, progress=progress, cancelled=cancelled)
            return database, report.lines(), report.added + report.replaced_count

        self.import_button.setEnabled(False)
        self.settings.setValue(_SETTING_FOLDER, str(path.parent))
        self.start_task(store, work, title="Importing", text=f"Importing {path.name}", total=None,
                        cancelling="Cancelling: rolling back…",
                        on_done=self._on_job_done, on_error=self._on_job_failed)

    def _on_job_done(self, result) -> None:
        self.import_button.setEnabled(not self.store.read_only)
        database, lines, count = result
        self.report_lines = lines
        self.report.setPlainText("\n".join(lines))
        self.imported.emit(database, count)
        message_box(self, "information", "Import finished", "\n".join(lines[:3]))

    def _on_job_failed(self, error: HashlensError) -> None:
        self.import_button.setEnabled(not self.store.read_only)
        if error.failure is Failure.CANCELLED:
            self.report.setPlainText("Import cancelled; nothing was imported.")
            return
        self._show_error(error)

    def _show_error(self, error: HashlensError) -> None:
        self.report.setPlainText(error.description)
        message_box(self, "warning", "Import failed", error.description)
