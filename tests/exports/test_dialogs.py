"""The Export and Import dialogs with pytest-qt: choices, workers, Cancel, errors."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton  # noqa: E402

from app.domain import ListingQuery  # noqa: E402
from app.exports.export import export_listing  # noqa: E402
from app.exports.formats import ExportOptions  # noqa: E402
from app.store import Store  # noqa: E402

from .conftest import add_plain, parts_in  # noqa: E402


@pytest.fixture
def settings(tmp_path, qapp):
    QCoreApplication.setOrganizationName("HashlensTests")
    QCoreApplication.setApplicationName("exports")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield QSettings()


@pytest.fixture
def boxes(monkeypatch):
    shown = []
    for name in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, _n=name: shown.append((_n, a[2])) or 0))
    return shown


@pytest.fixture
def store(sqlite_store):
    add_plain(sqlite_store, "D", [(f"id{i}", "=x" if i == 3 else f"label {i}", i, [("k", str(i))], i)
                                  for i in range(1, 301)])
    return sqlite_store


def _rows(store, query):
    return [r for b in store.iter_listing(query) for r in b]


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_export_whole_listing_to_csv(qtbot, settings, store, out, boxes):
    from ui.export_dialog import ExportDialog

    query = ListingQuery("D", maxresults=50)
    page = _rows(store, query)
    dialog = ExportDialog(store, query, None, page, listing_count=300)
    qtbot.addWidget(dialog)
    assert not dialog.scope_selected.isEnabled() and dialog.scope_all.isChecked()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("csv"))
    target = out / "all.csv"
    dialog.path_edit.setText(str(target))
    with qtbot.waitSignal(dialog.exported, timeout=20000) as signal:
        dialog.export_button.click()
        progress = dialog.task.dialog
        # The known count makes a determinate bar: count, percentage and time left.
        assert progress.bar.maximum() == 300
    assert signal.args == [str(target)] and dialog.exported_path == str(target)
    lines = target.read_bytes().decode().splitlines()
    assert len(lines) == 301 and "'=x" in lines[3]  # every entry, not the loaded page; spreadsheet-safe
    assert settings.value("export/last_folder", type=str) == str(out)
    assert settings.value("export/last_format", type=str) == "csv"
    assert not boxes


def test_page_and_selected_scopes_and_browse(qtbot, settings, store, out, monkeypatch):
    from ui.export_dialog import ExportDialog

    query = ListingQuery("D", start=11, maxresults=10)
    page = _rows(store, query)
    dialog = ExportDialog(store, query, ["id200", "id12"], page)
    qtbot.addWidget(dialog)
    assert dialog.scope_all.isChecked() and dialog.scope_selected.isEnabled()  # the README's default
    dialog.scope_selected.setChecked(True)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("ndjson"))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a: (str(out / "sel.ndjson"), "")))
    dialog._on_browse_clicked()
    assert dialog.path_edit.text() == str(out / "sel.ndjson")
    with qtbot.waitSignal(dialog.exported, timeout=20000):
        dialog.export_button.click()
    ids = [json.loads(x)["identifier"] for x in (out / "sel.ndjson").read_text().splitlines()]
    assert ids == ["id12", "id200"]  # in the listing's order
    manifest = json.loads((out / "sel.ndjson.manifest.json").read_text())
    assert manifest["scope"] == "selected"

    dialog = ExportDialog(store, query, None, page)
    qtbot.addWidget(dialog)
    dialog.scope_page.setChecked(True)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("xml"))
    dialog.path_edit.setText(str(out / "page.xml"))
    with qtbot.waitSignal(dialog.exported, timeout=20000):
        dialog.export_button.click()
    manifest = json.loads((out / "page.xml.manifest.json").read_text())
    assert manifest["entries"] == 10 and "start=11&maxresults=10" in manifest["request"]


def test_format_change_keeps_the_name_and_warns_for_raw(qtbot, settings, store, out):
    from ui.export_dialog import ExportDialog

    dialog = ExportDialog(store, ListingQuery("D"), None, None)
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(out / "mine.csv"))
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("xlsx"))
    assert dialog.path_edit.text() == str(out / "mine.xlsx")
    assert not dialog.safe_check.isEnabled()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("csv"))
    assert dialog.safe_warning.isHidden()
    dialog.safe_check.setChecked(False)
    assert not dialog.safe_warning.isHidden()
    assert not dialog.chosen_options().spreadsheet_safe


def test_cancel_leaves_no_file(qtbot, settings, store, out, boxes, monkeypatch):
    import ui.export_dialog as module

    gate = threading.Event()

    def gated(*args, **kwargs):
        gate.wait(10)  # the test presses Cancel before the export starts writing
        return export_listing(*args, **kwargs)

    monkeypatch.setattr(module, "export_listing", gated)
    dialog = module.ExportDialog(store, ListingQuery("D"), None, None)
    qtbot.addWidget(dialog)
    target = out / "x.json"
    target.write_text("previous")
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("json"))
    dialog.path_edit.setText(str(target))
    dialog.export_button.click()
    progress = dialog.task.dialog
    assert progress is not None and progress.isVisible() and not dialog.export_button.isEnabled()
    progress.findChild(QPushButton).click()  # the progress dialog's Cancel button
    gate.set()
    qtbot.waitUntil(lambda: "cancelled" in dialog.status.text(), timeout=20000)
    assert target.read_text() == "previous" and not progress.isVisible() and dialog.task is None
    assert not parts_in(out) and not boxes and dialog.export_button.isEnabled()


def test_failure_is_a_message_not_a_traceback(qtbot, settings, store, tmp_path, boxes):
    from ui.export_dialog import ExportDialog

    dialog = ExportDialog(store, ListingQuery("D"), None, None)
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(tmp_path / "missing" / "x.csv"))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: bool(boxes), timeout=20000)
    kind, text = boxes[0]
    assert kind == "warning" and "does not exist" in text and "Traceback" not in text
    # The dialog stays usable: a follow-up export works.
    dialog.path_edit.setText(str(tmp_path / "x.csv"))
    with qtbot.waitSignal(dialog.exported, timeout=20000):
        dialog.export_button.click()


def test_closing_during_an_export_cancels_and_waits(qtbot, settings, store, out, monkeypatch):
    import ui.export_dialog as module

    started = threading.Event()

    def slow(*args, cancelled, **kwargs):
        started.set()
        while not cancelled():
            threading.Event().wait(0.01)
        return export_listing(*args, cancelled=cancelled, **kwargs)

    monkeypatch.setattr(module, "export_listing", slow)
    dialog = module.ExportDialog(store, ListingQuery("D"), None, None)
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(out / "x.csv"))
    dialog.export_button.click()
    assert started.wait(10)
    job = dialog.task.job
    dialog.reject()
    assert job.ended.is_set() and dialog.workers.active_threads == 0
    assert not (out / "x.csv").exists() and not parts_in(out)


# -- import ---------------------------------------------------------------------------------------------


def test_import_into_a_new_database(qtbot, settings, store, out, boxes, monkeypatch):
    from ui.import_dialog import ImportDialog

    export_listing(store, ListingQuery("D", imagestatus=True, metadata=True), out / "d.csv", ExportOptions("csv"))
    dialog = ImportDialog(store, "D")
    qtbot.addWidget(dialog)
    assert dialog.database_combo.currentText() == "D"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a: (str(out / "d.csv"), "")))
    dialog._on_browse_clicked()
    dialog.database_combo.setCurrentText("Copy")
    with qtbot.waitSignal(dialog.imported, timeout=20000) as signal:
        dialog.import_button.click()
    assert signal.args == ["Copy", 300]
    assert "300 added" in dialog.report.toPlainText()
    assert boxes and boxes[0][0] == "information"
    assert _rows(store, ListingQuery("Copy", imagestatus=True))[2].label == "=x"

    # Again into the same database: duplicates abort by default, with a message.
    boxes.clear()
    dialog.import_button.click()
    qtbot.waitUntil(lambda: bool(boxes), timeout=20000)
    assert boxes[0][0] == "warning" and "already exist" in boxes[0][1]
    assert "Nothing was imported" in dialog.report.toPlainText()
    # ...and skip works
    boxes.clear()
    dialog.policy_combo.setCurrentIndex(dialog.policy_combo.findData("skip"))
    with qtbot.waitSignal(dialog.imported, timeout=20000):
        dialog.import_button.click()
    assert "300 skipped" in dialog.report.toPlainText()


def test_import_of_a_bad_file_and_read_only(qtbot, settings, store, out, boxes, sqlite_url):
    from ui.import_dialog import ImportDialog

    bad = out / "bad.xml"
    bad.write_text('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><autnresponse/>')
    dialog = ImportDialog(store, "D")
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(bad))
    dialog.import_button.click()
    qtbot.waitUntil(lambda: bool(boxes), timeout=20000)
    assert "DTD" in boxes[0][1] and "Traceback" not in boxes[0][1]

    read_only = Store.open(sqlite_url, read_only=True)
    try:
        dialog = ImportDialog(read_only, "D")
        qtbot.addWidget(dialog)
        assert not dialog.import_button.isEnabled() and "read-only" in dialog.report.toPlainText()
    finally:
        read_only.close()


def test_import_a_whole_database_file(qtbot, settings, store, out, boxes):
    from app.exports.database_file import export_database
    from ui.import_dialog import ImportDialog

    export_database(store, "D", out / "d.hldb")
    dialog = ImportDialog(store, None)
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(out / "d.hldb"))
    dialog.database_combo.setCurrentText("Restored")
    with qtbot.waitSignal(dialog.imported, timeout=20000) as signal:
        dialog.import_button.click()
    assert signal.args[0] == "Restored" and store.database_exists("Restored")
