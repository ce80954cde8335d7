"""Database ▸ Attach images…: the dialog runs the attach on the task lane, shows what
matched and what did not, and the table then shows the pHash instead of 'not known'."""

from __future__ import annotations

from PySide6.QtCore import QTimer

from app.domain import ListingQuery, NewEntry
from app.services import imaging
from app.store import Store
from tests.conftest import make_image
from ui.attach_dialog import AttachDialog
from ui.workers import Workers


def test_attach_from_the_dialog(qtbot, tmp_path, sqlite_url):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "ms1.png").write_bytes(make_image(7))
    store = Store.open(sqlite_url)
    store.create_database("M")
    for ident in ("ms1", "ms2"):
        store.add_entry("M", NewEntry(ident, ident, None, None, None, None, None, None, (), 1, True))
    workers = Workers()
    dialog = AttachDialog(store, "M", workers=workers, databases=["M"])
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(folder))
    dialog.store_images_check.setChecked(True)
    with qtbot.waitSignal(dialog.attached, timeout=20000) as blocker:
        dialog.attach_button.click()
    assert blocker.args == ["M", 1]
    text = dialog.report.toPlainText()
    assert "1 entry got a pHash, 1 with the image stored" in text and "'ms2'" in text and "Not matched" in text
    row = store.list_page(ListingQuery("M", identifiers=("ms1",))).rows[0]
    assert row.phash == imaging.hash_image(make_image(7)).phash and row.has_image_data
    dialog.show()
    dialog.grab().save(str(tmp_path / "attach.png"))
    dialog.accept()
    workers.shutdown()
    store.close()


def test_the_window_offers_attach_images(window, qtbot):
    from PySide6.QtWidgets import QApplication

    assert window.attach_action.isEnabled()
    menus = [a.text() for m in window.menuBar().actions() if m.menu() for a in m.menu().actions()]
    assert "&Attach images…" in menus
    seen = {}

    def drive():
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, AttachDialog) and w.isVisible())
        seen["database"] = dialog.database_combo.currentText()
        dialog.reject()

    QTimer.singleShot(0, drive)
    window.open_attach()
    assert seen["database"] == window.filter_panel.database
