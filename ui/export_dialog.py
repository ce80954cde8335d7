"""File ▸ Export…: format, scope and options, then the export on a worker with progress."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSettings, QThreadPool, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.domain import EntryRow, Failure, HashlensError, ListingQuery
from app.exports.export import export_listing, scope_query, suggested_name
from app.exports import registry
from app.exports.formats import ExportOptions

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
_PROGRESS_EVERY_S = 0.1


# -- a one-shot job on a worker thread ------------------------------------------------------------


class JobRelay(QObject):
    """Lives on the GUI thread; the worker's signals are queued to it."""

    progress = Signal(int)
    done = Signal(object)
    failed = Signal(object)  # HashlensError


class StoreJob(QRunnable):
    """Runs `fn(progress, cancelled)` on a pool thread with its own store connection,
    which it closes when done; the result or error comes back through `relay`."""

    def __init__(self, store, fn):
        super().__init__()
        self.setAutoDelete(False)
        self.store = store
        self.fn = fn
        self.relay = JobRelay()
        self.cancel = threading.Event()
        self._last = 0.0

    def _progress(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= _PROGRESS_EVERY_S:
            self._last = now
            self.relay.progress.emit(done)

    def run(self) -> None:  # Qt override
        try:
            result = self.fn(self._progress, self.cancel.is_set)
        except HashlensError as exc:
            self.relay.failed.emit(exc)
        except Exception as exc:  # the window must never die from a worker's surprise
            log.exception("Unexpected error in an export or import job")
            self.relay.failed.emit(HashlensError(
                Failure.STORE_FAILED,
                f"An unexpected error stopped the operation ({type(exc).__name__}: {exc}); nothing was written. "
                "The details are in the log.",
            ))
        else:
            self.relay.done.emit(result)
        finally:
            # This thread's connection; the pool may drop the thread state after run().
            try:
                self.store.close()
            except Exception:
                log.debug("closing a job connection failed", exc_info=True)


class JobProgress(QProgressDialog):
    """Entries done and entries per second, with a Cancel that asks the job to stop."""

    def __init__(self, title: str, text: str, total: int | None, parent: QWidget):
        super().__init__(text, "Cancel", 0, total or 0, parent)
        self.setWindowTitle(title)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setMinimumWidth(420)
        self._text = text
        self._total = total
        self._started = time.monotonic()

    def show_done(self, done: int) -> None:
        if self._total:
            self.setValue(min(done, self._total))
        rate = done / max(time.monotonic() - self._started, 1e-6)
        of = f" of {self._total:,}" if self._total else ""
        self.setLabelText(f"{self._text}\n{done:,}{of} entries · {rate:,.0f} entries/s")


class JobRunner(QObject):
    """Runs one StoreJob at a time in a private pool, with a progress dialog whose Cancel
    stops it; closing the owning dialog can cancel the job and wait for it."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.job: StoreJob | None = None
        self.progress: JobProgress | None = None
        self._on_done = self._on_failed = None
        self._cancelling = ""

    def run(self, store, fn, *, title: str, text: str, total: int | None, cancelling: str,
            on_done, on_failed) -> None:
        """Start `fn(progress, cancelled)`; the progress dialog is closed before
        `on_done(result)` or `on_failed(HashlensError)` is called on the GUI thread."""
        job = StoreJob(store, fn)
        job.relay.progress.connect(self._on_job_progress)
        job.relay.done.connect(self._on_job_done)
        job.relay.failed.connect(self._on_job_failed)
        self.progress = JobProgress(title, text, total, self.parent())
        self.progress.canceled.connect(self._on_progress_canceled)
        self.job, self._on_done, self._on_failed, self._cancelling = job, on_done, on_failed, cancelling
        self.progress.show()
        self.pool.start(job)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def cancel_and_wait(self, ms: int = 10000) -> None:
        if self.job is not None:
            self.job.cancel.set()
        self.pool.waitForDone(ms)

    @Slot(int)
    def _on_job_progress(self, done: int) -> None:
        if self.progress is not None:
            self.progress.show_done(done)

    @Slot()
    def _on_progress_canceled(self) -> None:
        if self.job is not None:
            self.job.cancel.set()
            if self.progress is not None:
                self.progress.setLabelText(self._cancelling)

    @Slot(object)
    def _on_job_done(self, result) -> None:
        self._finish()
        self._on_done(result)

    @Slot(object)
    def _on_job_failed(self, error) -> None:
        self._finish()
        self._on_failed(error)

    def _finish(self) -> None:
        self.job = None
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None


# -- the dialog ---------------------------------------------------------------------------------------


class ExportDialog(QDialog):
    """Export the listing the user is looking at: every entry, this page, or the selection."""

    exported = Signal(str)  # the path written

    def __init__(self, store, query: ListingQuery, selected_identifiers: list[str] | None,
                 page_rows: list[EntryRow] | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.store = store
        self.query = query
        self.selected = list(selected_identifiers or [])
        self.page_rows = list(page_rows or [])
        self.exported_path: str | None = None
        self.settings = QSettings()
        self.runner = JobRunner(self)
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
        (self.scope_selected if self.selected else self.scope_all).setChecked(True)
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
        if self.runner.busy:
            return
        text = self.path_edit.text().strip()
        if not text:
            QMessageBox.warning(self, "Export", "Choose where to write the export (Browse…).")
            return
        path = Path(text).expanduser()
        if self.format_combo.currentData() == "images-zip" and path.suffix.lower() != ".zip":
            path = path.with_name(path.name + ".zip")
        try:
            query, scope = self.chosen_query()
            options = self.chosen_options().validated()
        except HashlensError as exc:
            QMessageBox.warning(self, "Export", exc.description)
            return
        total = len(self.page_rows) if scope == "page" else len(query.identifiers or ()) if scope == "selected" else None
        store = self.store

        def work(progress, cancelled):
            return export_listing(store, query, path, options, scope=scope, progress=progress, cancelled=cancelled)

        self.export_button.setEnabled(False)
        self.status.setText("")
        self.runner.run(store, work, title="Exporting", text=f"Exporting to {path}", total=total,
                        cancelling="Cancelling: the partial file is being removed…",
                        on_done=self._on_job_done, on_failed=self._on_job_failed)

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
        QMessageBox.warning(self, "Export failed", error.description)

    def reject(self) -> None:
        # Closing while an export runs cancels it and waits, so no partial file is left.
        if self.runner.busy:
            self.runner.cancel_and_wait()
        super().reject()

    def done(self, result: int) -> None:
        self.runner.cancel_and_wait()
        super().done(result)
