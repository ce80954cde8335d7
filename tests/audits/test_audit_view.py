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
    # Findings come grouped by kind, errors first, each kind with its count.
    kinds = {f.kind for f in result.findings}
    tree = window.findings_tree
    tops = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert len(tops) == len(kinds) and len(result.findings) == 20
    assert sum(int(t.text(2).replace(",", "")) for t in tops) == 20
    levels = [t.text(0) for t in tops]
    order = {"error": 0, "warning": 1, "info": 2}
    assert levels == sorted(levels, key=order.get) and levels[0] == "error"
    assert window.groups_tree.topLevelItemCount() == 5  # bytes, pHash, two near, one across
    assert window.history_tree.topLevelItemCount() == len(result.history.latest) > 0
    assert "photos" in window.summary_view.toPlainText()
    assert [window.chart_database.itemText(i) for i in range(window.chart_database.count())] == ["archive", "photos"]
    assert window.run_button.isEnabled() and not window.cancel_button.isEnabled()
    assert "2 errors" in window.status.text()


def test_one_click_on_a_finding_filters_the_table(qtbot, window):
    result = _run(qtbot, window)
    tree = window.findings_tree
    top = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
               if tree.topLevelItem(i).text(1) == "likely-mislabel")
    top.setExpanded(True)  # its findings are added when the kind is opened
    item = next(top.child(i) for i in range(top.childCount())
                if result.findings[top.child(i).data(0, audit_view._ROLE)].identifiers[:1] == ("coffee",))
    with qtbot.waitSignal(window.show_filter, timeout=2000) as blocker:
        window.findings_tree.itemClicked.emit(item, 4)
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
    def fake(store, database, options, *, progress=None, cancelled=None, cache=None, overall=None):
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


def test_progress_is_one_bar_for_the_whole_audit_that_never_goes_back(store):
    """Each phase counts from 0 again; the overall fraction must not (issue 14), and it
    reaches 1 only when the audit is done."""
    from app.audits.audit import run_audit
    from app.audits.model import AuditOptions

    events = []
    run_audit(store, None, AuditOptions(), progress=lambda phase, done, total: events.append(("phase", phase, done)),
              overall=lambda fraction: events.append(("overall", fraction)))
    fractions = [e[1] for e in events if e[0] == "overall"]
    phases = [e for e in events if e[0] == "phase"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(f < 1.0 for f in fractions[:-1]) and len(set(fractions)) > 3
    # The phases themselves did restart (otherwise this would prove nothing).
    assert sum(1 for _, _, done in phases if done == 0) > 2
    distinct = {p for _, p, _ in phases}
    assert any("checking images" in p for p in distinct) and "near-duplicates" in distinct


def test_the_bar_and_words_show_overall_progress_and_the_phase(qtbot, window):
    from ui.workers import Progress

    window.run()
    window._overall[0] = 0.42
    window._on_worker_progress(Progress(500, 2000, "photos: reading entries"))
    assert window.progress.maximum() == 1000 and window.progress.value() == 420
    assert "photos: reading entries: 500 of 2,000 (25%)" in window.status.text()
    assert "42%" in window.status.text()
    # A new phase starting at 0 leaves the bar where it was.
    window._on_worker_progress(Progress(0, None, "store integrity"))
    assert window.progress.value() == 420
    with qtbot.waitSignal(window.finished, timeout=WAIT):
        pass
    assert window.progress.value() == window.progress.maximum()


def test_findings_filter_by_level_and_a_big_kind_is_capped(qtbot, window, monkeypatch):
    monkeypatch.setattr(audit_view, "FINDINGS_SHOWN_PER_KIND", 1)
    result = _run(qtbot, window)
    tree = window.findings_tree
    tops = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    errors = window.level_filter.findText("Errors")
    window.level_filter.setCurrentIndex(errors)
    assert [t.text(0) for t in tops if not t.isHidden()] == ["error"] * sum(t.text(0) == "error" for t in tops)
    assert "2 findings" in window.findings_label.text()
    window.level_filter.setCurrentIndex(0)
    assert not any(t.isHidden() for t in tops)
    big = next(t for t in tops if int(t.text(2)) > 1)
    big.setExpanded(True)
    assert big.childCount() == 2 and big.child(1).text(4).startswith(f"…and {int(big.text(2)) - 1:,} more")
    assert len(result.findings) == 20


def test_the_window_opens_within_the_screen(qtbot, store):
    from PySide6.QtGui import QGuiApplication

    area = QGuiApplication.primaryScreen().availableGeometry()
    w = AuditWindow(store, "photos")
    qtbot.addWidget(w)
    w.resize(area.width() + 400, area.height() + 300)
    w.move(area.right() - 50, area.bottom() - 50)
    w.show()
    qtbot.waitUntil(lambda: w._placed, timeout=2000)
    assert area.contains(w.frameGeometry()), (area, w.frameGeometry())
    w.shutdown()
