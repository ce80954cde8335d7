"""The Audit window (pytest-qt, offscreen): runs off the GUI thread, cancels, shows
groups with images, and filters the main table with one click."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QLabel, QWidget  # noqa: E402

from app.domain import Failure, HashlensError, ListingQuery  # noqa: E402
from app.services import actions  # noqa: E402
from app.store import Store  # noqa: E402
from ui import audit_view  # noqa: E402
from ui.audit_view import AuditWindow  # noqa: E402
from ui.phash_grid import PhashGrid  # noqa: E402

WAIT = 60_000


@pytest.fixture
def store(planted_url):
    s = Store.open(planted_url)
    yield s
    s.close()


@pytest.fixture
def window(qtbot, store):
    w = AuditWindow(store, None)
    qtbot.addWidget(w)
    yield w
    w.shutdown()


def _run(qtbot, window):
    with qtbot.waitSignal(window.finished, timeout=WAIT) as blocker:
        window.run_button.click()
    return blocker.args[0]


def test_run_fills_every_tab(qtbot, window):
    result = _run(qtbot, window)
    assert window.findings_tree.topLevelItemCount() == len(result.findings) == 20
    assert window.groups_tree.topLevelItemCount() == 5  # bytes, pHash, two near, one across
    assert window.history_tree.topLevelItemCount() == len(result.history.latest) > 0
    assert "photos" in window.summary_view.toPlainText()
    assert [window.chart_database.itemText(i) for i in range(window.chart_database.count())] == ["archive", "photos"]
    assert window.run_button.isEnabled() and not window.cancel_button.isEnabled()
    assert "2 errors" in window.status.text()


def test_one_click_on_a_finding_filters_the_table(qtbot, window):
    result = _run(qtbot, window)
    row = next(i for i, f in enumerate(result.findings) if f.kind == "likely-mislabel")
    item = window.findings_tree.topLevelItem(row)
    with qtbot.waitSignal(window.show_filter, timeout=2000) as blocker:
        window.findings_tree.itemClicked.emit(item, 3)
    query = blocker.args[0]
    assert isinstance(query, ListingQuery)
    assert query.database == "photos" and query.identifiers == ("coffee", "coffee-recoloured")


def test_group_click_shows_images_side_by_side_and_filters(qtbot, window):
    _run(qtbot, window)
    top = next(window.groups_tree.topLevelItem(i) for i in range(window.groups_tree.topLevelItemCount())
               if "across" in window.groups_tree.topLevelItem(i).text(0))
    member = top.child(1)  # a member in 'photos'
    with qtbot.waitSignal(window.thumbnails_loaded, timeout=WAIT):
        with qtbot.waitSignal(window.show_filter, timeout=2000) as blocker:
            window.groups_tree.itemClicked.emit(member, 0)
    assert blocker.args[0].database == member.text(3) == "photos"
    thumbs = window.preview.findChildren(QLabel, "thumbnail")
    assert len(thumbs) == 3 and all(not t.pixmap().isNull() for t in thumbs)


def test_missing_images_show_the_bit_difference(qtbot, store, window):
    actions.null_image_data(store, "photos", "motorcycle-right")
    result = _run(qtbot, window)
    photos = {d.name: d for d in result.databases}["photos"]
    group = next(g for g in photos.groups if g.members[0].identifier == "motorcycle-left")
    index = next(i for i in range(window.groups_tree.topLevelItemCount())
                 if window.groups_tree.topLevelItem(i).child(0).text(0) == "motorcycle-left")
    with qtbot.waitSignal(window.thumbnails_loaded, timeout=WAIT):
        window.groups_tree.itemClicked.emit(window.groups_tree.topLevelItem(index), 0)
    grids = window.preview.findChildren(PhashGrid, "bitgrid")
    assert len(grids) == 1 and grids[0].differing_bits == group.max_distance == 4
    assert len(window.preview.findChildren(QLabel, "thumbnail")) == 1


def test_rerun_reuses_what_has_not_changed(qtbot, window, store):
    _run(qtbot, window)
    again = _run(qtbot, window)
    assert again.reused == ("archive", "photos") and "Reused" in window.status.text()
    actions.relabel_image(store, "archive", "retina", "Retina", "Eye")
    third = _run(qtbot, window)
    assert third.reused == ("photos",)


def _blocking_audit(started: threading.Event):
    def fake(store, database, options, *, progress=None, cancelled=None, cache=None):
        started.set()
        while not cancelled():
            progress("waiting", 0, None)
            threading.Event().wait(0.01)
        raise HashlensError(Failure.CANCELLED, "The audit was cancelled; nothing was changed.")
    return fake


def test_cancel_stops_a_running_audit(qtbot, window, monkeypatch):
    started = threading.Event()
    monkeypatch.setattr(audit_view, "run_audit", _blocking_audit(started))
    window.run_button.click()
    assert started.wait(10)
    assert window.running and window.cancel_button.isEnabled() and not window.run_button.isEnabled()
    with qtbot.waitSignal(window.cancelled, timeout=WAIT):
        window.cancel_button.click()
    assert not window.running and window.run_button.isEnabled()
    assert "Cancelled" in window.status.text()


def test_close_cancels_and_leaves_no_thread_running(qtbot, store, monkeypatch):
    started = threading.Event()
    monkeypatch.setattr(audit_view, "run_audit", _blocking_audit(started))
    w = AuditWindow(store, "photos")
    qtbot.addWidget(w)
    w.run()
    assert started.wait(10)
    w.close()
    assert w.workers.active_threads == 0


def test_with_a_parent_it_is_still_its_own_window(qtbot, store):
    parent = QWidget()
    qtbot.addWidget(parent)
    w = AuditWindow(store, "", parent)
    assert w.isWindow() and w.database is None and w.parent() is parent
    w.shutdown()


def test_an_error_is_shown_not_raised(qtbot, store):
    w = AuditWindow(store, "no such database")
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.failed, timeout=WAIT) as blocker:
        w.run()
    assert "does not exist" in blocker.args[0] and "does not exist" in w.status.text()
    w.shutdown()


def test_charts_paint_bars(qtbot, window):
    _run(qtbot, window)
    window.chart_database.setCurrentIndex(1)  # photos: 'source' covers 95 %
    window.tabs.setCurrentIndex(3)
    window.coverage_chart.resize(500, 80)
    window.histogram.resize(500, 200)
    bar = QColor("#3d7bd9").rgb()
    image = window.coverage_chart.grab().toImage()
    assert any(image.pixel(x, 30) == bar for x in range(image.width()))
    hist = window.histogram.grab().toImage()
    assert any(hist.pixel(x, y) == bar for x in range(0, hist.width(), 2) for y in range(0, hist.height(), 4))


def test_save_report(qtbot, window, tmp_path):
    _run(qtbot, window)
    target = tmp_path / "report.html"
    with qtbot.waitSignal(window.report_saved, timeout=WAIT):
        window.save_report(str(target))
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "data:image/png;base64," in text
