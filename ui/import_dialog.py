"""File ▸ Import…: a listing file into a new or existing database, all or nothing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QFileDialog

from app.domain import HashlensError
from app.exports import database_file, registry
from app.exports.fileformats.database_format import FORMAT as DATABASE
from app.exports.importer import ImportOptions, detect_format, import_file
from app.mediaserver_codec.names import LIST_IMAGE_HASHES
from ui.errors import message_box
from ui.job_dialog import ChooserDialog

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


class ImportDialog(ChooserDialog):
    """Choose a file and a target database; the import runs on a worker in one transaction."""

    imported = Signal(str, int)  # database, entries added or replaced

    def __init__(self, store, database: str | None, parent=None, workers=None, databases: list[str] | None = None):
        super().__init__(store, "Import", workers, parent)
        self.policy_combo = QComboBox()
        for label, value in POLICY_CHOICES:
            self.policy_combo.addItem(label, value)
        self.dialect_combo = QComboBox()
        for label, value in DIALECT_CHOICES:
            self.dialect_combo.addItem(label, value)
        self.build(
            path=("File:", f"A Hashlens export or a saved {LIST_IMAGE_HASHES} response"),
            database=("Into database:", database, databases),
            rows=[("An identifier already there:", self.policy_combo), ("CSV/TSV cells:", self.dialect_combo)],
            note="The whole file is imported in one transaction: a bad entry, a refused duplicate or Cancel "
                 "leaves the store as it was. A whole-database file becomes a new database.",
            action="Import",
            report_placeholder="The import report appears here.",
            read_only_text="The store is open read-only, so nothing can be imported into it.")
        self.database_combo.setEditable(True)
        self.database_combo.setCurrentText(database or "")
        self.database_combo.setToolTip("An existing database, or type a new name to create it")
        self.import_button = self.action_button

    @Slot()
    def _on_browse_clicked(self) -> None:
        folder = self.settings.value(_SETTING_FOLDER, "", type=str)
        path, _chosen = QFileDialog.getOpenFileName(
            self, "Import from", folder,
            registry.import_file_filter(f"Hashlens exports and {LIST_IMAGE_HASHES} responses"))
        if path:
            self.path_edit.setText(path)

    @Slot()
    def _on_action_clicked(self) -> None:
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
            self.show_error("Import failed", exc)
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

        self.settings.setValue(_SETTING_FOLDER, str(path.parent))
        self.run(work, title="Importing", text=f"Importing {path.name}", on_done=self._on_job_done,
                 cancelled_text="Import cancelled; nothing was imported.", failed_title="Import failed")

    def _on_job_done(self, result) -> None:
        database, lines, count = result
        self.show_report(lines)
        self.imported.emit(database, count)
        message_box(self, "information", "Import finished", "\n".join(lines[:3]))
