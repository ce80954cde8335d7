"""Database ▸ Attach images…: pHashes (and optionally images) for a database's entries from
a folder of the image files they were trained from."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QFileDialog

from app.services.attach import attach_images
from ui.errors import message_box
from ui.job_dialog import ChooserDialog

_SETTING_FOLDER = "attach/last_folder"
MATCH_CHOICES = [
    ("The entry's identifier (file name, stem or path in the folder)", "identifier"),
    ("The entry's label", "label"),
    ("The stem of the identifier or label (paths and suffixes ignored)", "stem"),
]


class AttachDialog(ChooserDialog):
    """Choose a folder and how files match entries; the work runs on the task lane with
    progress and Cancel, in one transaction."""

    attached = Signal(str, int)  # database, entries that got a pHash

    def __init__(self, store, database: str | None, parent=None, workers=None, databases: list[str] | None = None):
        super().__init__(store, "Attach images", workers, parent)
        self.match_combo = QComboBox()
        for label, value in MATCH_CHOICES:
            self.match_combo.addItem(label, value)
        self.store_images_check = QCheckBox("Also store each matched image in Hashlens (as training does)")
        self.build(
            path=("Folder:", "The folder of the images the entries were trained from"),
            database=("Database:", database, databases),
            rows=[("A file belongs to:", self.match_combo), self.store_images_check],
            note="Entries pulled or imported from a Media Server have no pHash (Media Server never lists one). "
                 "An entry with several candidate files, or a file claimed by several entries, is left alone "
                 "and listed. Everything is one transaction: Cancel changes nothing.",
            action="Attach",
            report_placeholder="What matched, what did not and what was ambiguous appears here.",
            read_only_text="The store is open read-only, so nothing can be attached.")
        self.folder_edit, self.attach_button = self.path_edit, self.action_button

    @Slot()
    def _on_browse_clicked(self) -> None:
        start = self.settings.value(_SETTING_FOLDER, "", type=str)
        folder = QFileDialog.getExistingDirectory(self, "Attach images from", start)
        if folder:
            self.folder_edit.setText(folder)

    @Slot()
    def _on_action_clicked(self) -> None:
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

        self.settings.setValue(_SETTING_FOLDER, str(folder))
        self.run(work, title="Attaching images", text=f"Attaching images from {folder.name}",
                 on_done=self._on_job_done, cancelled_text="Cancelled; nothing was changed.",
                 failed_title="Attach images failed")

    def _on_job_done(self, result) -> None:
        database, lines, count = result
        self.show_report(lines)
        self.attached.emit(database, count)
