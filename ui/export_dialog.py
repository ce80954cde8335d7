"""File ▸ Export…: format, scope and options, then the export on a worker with progress."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from app.domain import EntryRow, Failure, HashlensError, ListingQuery
from app.exports.export import export_listing, scope_query, suggested_name
from app.exports import registry
from app.exports.formats import ExportOptions
from ui.errors import message_box
from ui.job_dialog import JobDialog

log = logging.getLogger("hashlens.ui")


def format_choices() -> list[tuple[str, str, str, str]]:
    """(label, format, suffix, file-dialog filter) of every registered export format; a
    folder format that can also be a zip file is offered twice ("images", "images-zip")."""
    choices = []
    for fmt in registry.formats():
        if fmt.exportable and fmt.listing_export:
            choices.append((fmt.label, fmt.name, fmt.suffix, fmt.file_filter))
            if fmt.archive_label:
                choices.append((fmt.archive_label, f"{fmt.name}-zip", ".zip", "Zip files (*.zip)"))
    return choices
_SETTING_FOLDER = "export/last_folder"
_SETTING_FORMAT = "export/last_format"


# -- the dialog ---------------------------------------------------------------------------------------


class ExportDialog(JobDialog):
    """Export the listing the user is looking at: every entry, this page, or the selection."""

    exported = Signal(str)  # the path written

    def __init__(self, store, query: ListingQuery, selected_identifiers: list[str] | None,
                 page_rows: list[EntryRow] | None, parent=None, workers=None, listing_count: int | None = None):
        """`listing_count`: the listing's exact entry count if known, so progress shows
        the share done and the time left."""
        super().__init__(workers, parent)
        self.listing_count = listing_count
        self.setWindowTitle("Export")
        self.store = store
        self.query = query
        self.selected = list(selected_identifiers or [])
        self.page_rows = list(page_rows or [])
        self.exported_path: str | None = None
        self.settings = QSettings()
        self._build()
        self._restore_settings()
        self._on_format_changed()

    # -- widgets --------------------------------------------------------------------------------

    def _build(self) -> None:
        self.format_combo = QComboBox()
        for label, fmt, _suffix, _filter in format_choices():
            self.format_combo.addItem(label, fmt)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)

        what = QLabel(f"Database '{self.query.database}': {self.query.describe()}")
        what.setWordWrap(True)

        scope_box = QGroupBox("Entries")
        self.scope_all = QRadioButton("The whole listing (every entry that matches, not only those loaded)")
        self.scope_page = QRadioButton(f"This page only ({len(self.page_rows):,} entries)")
        self.scope_selected = QRadioButton(f"The selected rows ({len(self.selected):,})")
        self.scope_page.setEnabled(bool(self.page_rows))
        self.scope_selected.setEnabled(bool(self.selected))
        self.scope_group = QButtonGroup(self)
        for i, button in enumerate((self.scope_all, self.scope_page, self.scope_selected)):
            self.scope_group.addButton(button, i)
        # The whole listing, as the README says: a selection is often just the current row.
        self.scope_all.setChecked(True)
        scope_layout = QVBoxLayout(scope_box)
        for button in (self.scope_all, self.scope_page, self.scope_selected):
            scope_layout.addWidget(button)

        options_box = QGroupBox("Options")
        self.imagestatus_check = QCheckBox("Image status: label and whether image data is stored (imagestatus)")
        self.imagestatus_check.setChecked(True)
        self.metadata_check = QCheckBox("Custom metadata (metadata)")
        self.metadata_check.setChecked(True)
        self.metadata_check.toggled.connect(self._on_format_changed)
        self.metadata_layout = QComboBox()
        self.metadata_layout.addItem("as one JSON column (exact, reads back)", "json")
        self.metadata_layout.addItem("as one column per key (for spreadsheets)", "keys")
        self.safe_check = QCheckBox("Spreadsheet-safe cells (a ' before =, +, -, @, tab, CR)")
        self.safe_check.setChecked(True)
        self.safe_check.toggled.connect(self._on_format_changed)
        self.safe_warning = QLabel("Raw cells: a spreadsheet may run a cell such as =HYPERLINK(…) as a formula. "
                                   "Do not open this file in a spreadsheet.")
        self.safe_warning.setWordWrap(True)
        self.safe_warning.setStyleSheet("color: #b35900;")
        self.manifest_check = QCheckBox("Write NAME.manifest.json (SHA-256, filter and request, for audits)")
        self.manifest_check.setChecked(True)
        options = QFormLayout(options_box)
        options.addRow(self.imagestatus_check)
        options.addRow(self.metadata_check)
        options.addRow("Metadata in CSV/TSV:", self.metadata_layout)
        options.addRow(self.safe_check)
        options.addRow(self.safe_warning)
        options.addRow(self.manifest_check)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("Where to write the export")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_export_clicked)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Format:", self.format_combo)
        form.addRow("File:", path_row)
        layout = QVBoxLayout(self)
        layout.addWidget(what)
        layout.addLayout(form)
        layout.addWidget(scope_box)
        layout.addWidget(options_box)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    def _restore_settings(self) -> None:
        fmt = self.settings.value(_SETTING_FORMAT, "csv", type=str)
        index = self.format_combo.findData(fmt)
        if index >= 0:
            self.format_combo.setCurrentIndex(index)
        self._set_default_path()

    def _folder(self) -> Path:
        folder = self.settings.value(_SETTING_FOLDER, "", type=str)
        return Path(folder) if folder and Path(folder).is_dir() else Path.home()

    def _set_default_path(self) -> None:
        fmt = self.format_combo.currentData()
        suffix = next(c[2] for c in format_choices() if c[1] == fmt)
        stem = suggested_name(self.query, "xml").removesuffix(".xml")
        self.path_edit.setText(str(self._folder() / (stem + ("-images" if fmt.startswith("images") else "") + suffix)))

    @Slot()
    def _on_format_changed(self) -> None:
        fmt = self.format_combo.currentData()
        tabular = fmt in ("csv", "tsv")
        self.metadata_layout.setEnabled(tabular and self.metadata_check.isChecked())
        self.safe_check.setEnabled(tabular or fmt.startswith("images"))
        self.safe_warning.setVisible(self.safe_check.isEnabled() and not self.safe_check.isChecked())
        # Keep the chosen name, with the suffix the new format wants.
        current = self.path_edit.text().strip()
        if current:
            path = Path(current)
            stem = path.name
            for _label, _fmt, suffix, _filter in format_choices():
                if suffix and stem.lower().endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            new_suffix = next(c[2] for c in format_choices() if c[1] == fmt)
            self.path_edit.setText(str(path.with_name(stem + new_suffix)))

    @Slot()
    def _on_browse_clicked(self) -> None:
        fmt = self.format_combo.currentData()
        file_filter = next(c[3] for c in format_choices() if c[1] == fmt)
        path, _chosen = QFileDialog.getSaveFileName(self, "Export to", self.path_edit.text(), file_filter)
        if path:
            self.path_edit.setText(path)

    # -- running ---------------------------------------------------------------------------------

    def chosen_query(self) -> tuple[ListingQuery, str]:
        base = replace(self.query, imagestatus=self.imagestatus_check.isChecked(),
                       metadata=self.metadata_check.isChecked())
        if self.scope_selected.isChecked():
            return scope_query(base, "selected", selected=self.selected), "selected"
        if self.scope_page.isChecked():
            return scope_query(base, "page", page_rows=self.page_rows), "page"
        return scope_query(base, "listing"), "listing"

    def chosen_options(self) -> ExportOptions:
        fmt = self.format_combo.currentData()
        return ExportOptions("images" if fmt == "images-zip" else fmt, spreadsheet_safe=self.safe_check.isChecked(),
                             metadata_columns=self.metadata_layout.currentData(),
                             manifest=self.manifest_check.isChecked())

    @Slot()
    def _on_export_clicked(self) -> None:
        if self.busy:
            return
        text = self.path_edit.text().strip()
        if not text:
            message_box(self, "warning", "Export", "Choose where to write the export (Browse…).")
            return
        path = Path(text).expanduser()
        if self.format_combo.currentData() == "images-zip" and path.suffix.lower() != ".zip":
            path = path.with_name(path.name + ".zip")
        try:
            query, scope = self.chosen_query()
            options = self.chosen_options().validated()
        except HashlensError as exc:
            message_box(self, "warning", "Export", exc.description)
            return
        totals = {"page": len(self.page_rows), "selected": len(query.identifiers or ()), "listing": self.listing_count}
        total = totals[scope]
        store = self.store

        def work(progress, stop):
            return export_listing(store, query, path, options, scope=scope, progress=progress, cancelled=stop)

        self.export_button.setEnabled(False)
        self.status.setText("")
        self.start_task(store, work, title="Exporting", text=f"Exporting to {path}", total=total,
                        cancelling="Cancelling: the partial file is being removed…",
                        on_done=self._on_job_done, on_error=self._on_job_failed)

    def _on_job_done(self, result) -> None:
        self.export_button.setEnabled(True)
        self.exported_path = str(result.path)
        self.settings.setValue(_SETTING_FOLDER, str(result.path.parent))
        self.settings.setValue(_SETTING_FORMAT, self.format_combo.currentData())
        self.status.setText(f"Exported {result.entries:,} entries to {result.path}.")
        self.exported.emit(self.exported_path)
        self.accept()

    def _on_job_failed(self, error: HashlensError) -> None:
        self.export_button.setEnabled(True)
        if error.failure is Failure.CANCELLED:
            self.status.setText("Export cancelled; no file was written.")
            return
        self.status.setText(error.description)
        message_box(self, "warning", "Export failed", error.description)
