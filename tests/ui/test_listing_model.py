"""The table model: Qt's model tester, lazy data(), paging, counts, sorting, stale pages."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from app.domain import Count, Filter, FilterOp, ListingQuery, SortKey
from app.store import Store
from tests.ui.conftest import ANIMALS_TOTAL, wait_idle
from ui.models import listing_model
from ui.models.database_model import DatabaseListModel
from ui.models.listing_model import COLUMN_INDEX, COLUMNS, ROW_ROLE, ListingModel, ListingSource
from ui.models.metadata_model import DIFFERS, MetadataModel, shared_metadata
from ui.workers import Workers

ALL_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.FontRole,
             Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.BackgroundRole,
             Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.SizeHintRole, ROW_ROLE]


class CountingStore:
    """The store with every listing-service entry point counted (and optionally gated)."""

    def __init__(self, store):
        self._store = store
        self.calls = {"list_page": 0, "count": 0, "image": 0}
        self.gate: threading.Event | None = None

    def __getattr__(self, name):
        return getattr(self._store, name)

    def list_page(self, query):
        self.calls["list_page"] += 1
        if self.gate is not None:
            self.gate.wait(5)
        return self._store.list_page(query)

    def count(self, query, bound=None):
        self.calls["count"] += 1
        return self._store.count(query, bound=bound)

    def image(self, *args):
        self.calls["image"] += 1
        return self._store.image(*args)

    def total(self):
        return sum(self.calls.values())


@pytest.fixture
def setup(qtbot, browse_url):
    store = Store.open(browse_url)
    counting = CountingStore(store)
    workers = Workers()
    model = ListingModel(ListingSource(workers, counting))
    yield model, counting, workers
    assert workers.shutdown(5000)
    assert workers.active_threads == 0
    store.close()


def load(qtbot, model, query):
    model.set_query(query)
    wait_idle(qtbot, model)


def test_qt_model_tester_on_a_loaded_page(qtbot, qtmodeltester, setup):
    model, _store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    assert model.rowCount() == 100
    qtmodeltester.check(model, force_py=True)
    model.next_page()
    wait_idle(qtbot, model)
    qtmodeltester.check(model, force_py=True)


def test_qt_model_tester_on_the_small_models(qtmodeltester):
    from app.domain import DatabaseInfo

    databases = DatabaseListModel()
    databases.set_databases([DatabaseInfo("A", 3), DatabaseInfo("B", 0)])
    qtmodeltester.check(databases, force_py=True)
    metadata = MetadataModel()
    metadata.set_items([("colour", "red"), ("size", DIFFERS)])
    qtmodeltester.check(metadata, force_py=True)


def test_data_never_queries_the_store(qtbot, setup):
    """Scrolling and reading every cell in every role costs no listing-service call."""
    from ui.record_table import RecordTable

    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    qtbot.waitUntil(lambda: store.calls["list_page"] >= 2 and _w.settled(), timeout=3000)  # the page and its prefetch
    before = dict(store.calls)
    table = RecordTable(model)
    qtbot.addWidget(table)
    table.resize(900, 400)
    table.show()
    bar = table.verticalScrollBar()
    for value in range(bar.minimum(), bar.maximum() + 1, 3):
        bar.setValue(value)
        table.viewport().repaint()
    for row in range(model.rowCount()):
        for col in range(model.columnCount()):
            for role in ALL_ROLES:
                model.data(model.index(row, col), role)
    assert store.calls == before


def test_pages_and_go_to_exact_start(qtbot, setup):
    model, _store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    assert model.count == Count(ANIMALS_TOTAL, True)
    assert [r.position for r in model.rows][:3] == [1, 2, 3]
    model.next_page()
    wait_idle(qtbot, model)
    assert model.query.start == 101
    assert model.rowCount() == ANIMALS_TOTAL - 100
    assert not model.has_next()
    model.go_to(57)
    wait_idle(qtbot, model)
    assert model.rows[0].position == 57
    assert model.rows[0].identifier == "a056"
    model.previous_page()
    wait_idle(qtbot, model)
    assert model.query.start == 1
    model.last_page()
    wait_idle(qtbot, model)
    assert model.query.start == 101
    model.go_to(10_000)
    wait_idle(qtbot, model)
    assert model.rowCount() == 0


def test_page_size_changes_the_window(qtbot, setup):
    model, _store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    model.set_page_size(50)
    wait_idle(qtbot, model)
    assert model.rowCount() == 50
    assert model.last_start() == 101
    model.set_page_size(7)  # not offered: ignored
    assert model.page_size == 50


def test_cached_pages_cost_no_query(qtbot, setup):
    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    qtbot.waitUntil(lambda: store.calls["list_page"] >= 2 and _w.settled(), timeout=3000)
    calls = store.calls["list_page"]
    model.next_page()  # prefetched
    assert model.last_from_cache
    wait_idle(qtbot, model)
    model.previous_page()  # cached
    assert model.last_from_cache
    qtbot.waitUntil(_w.settled, timeout=3000)
    assert store.calls["list_page"] == calls


def test_stale_page_is_dropped(qtbot, setup):
    """A slow first request answering after a newer one must not replace it."""
    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    qtbot.waitUntil(lambda: store.calls["list_page"] >= 2 and _w.settled(), timeout=3000)  # the page and its prefetch
    store.gate = threading.Event()
    plants = ListingQuery("Plants")
    model.set_query(ListingQuery("Animals", filters=(Filter(FilterOp.LABEL_CONTAINS, "cat"),)))
    qtbot.waitUntil(lambda: store.calls["list_page"] >= 3, timeout=3000)  # the slow one has started
    model.set_query(plants)
    with qtbot.waitSignal(model.page_loaded, timeout=5000) as blocker:
        store.gate.set()
    assert blocker.args[0].query.database == "Plants"
    with qtbot.assertNotEmitted(model.page_loaded):
        qtbot.waitUntil(_w.settled, timeout=5000)  # the slow answer, too, has been handled (dropped)
    assert model.query.database == "Plants" and model.rowCount() == 3


def test_filtered_count_is_bounded_first_then_exact(qtbot, setup, monkeypatch):
    monkeypatch.setattr(listing_model, "COUNT_BOUND", 10)
    model, _store, _w = setup
    counts = []
    model.count_changed.connect(counts.append)
    query = ListingQuery("Animals", filters=(Filter(FilterOp.LABEL_CONTAINS, "-"),))
    model.set_page_size(50)
    load(qtbot, model, query)
    qtbot.waitUntil(lambda: model.count is not None and model.count.exact, timeout=3000)
    assert model.count == Count(130, True)
    known = [c for c in counts if c is not None]
    assert known[-1] == Count(130, True)
    assert all(c == Count(10, False) for c in known[:-1])


def test_small_filtered_listing_needs_no_count_query(qtbot, setup):
    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals", filters=(Filter(FilterOp.LABEL_EQUALS, "awkward"),)))
    assert model.count == Count(4, True)
    assert store.calls["count"] == 0


def test_header_sort_requeries_in_sql(qtbot, setup):
    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    calls = store.calls["list_page"]
    model.sort(COLUMN_INDEX["identifier"], Qt.SortOrder.DescendingOrder)
    wait_idle(qtbot, model)
    assert model.query.sort is SortKey.IDENTIFIER and model.query.descending
    identifiers = [r.identifier for r in model.rows]
    assert identifiers == sorted(identifiers, reverse=True)
    assert store.calls["list_page"] > calls
    model.sort(COLUMN_INDEX["status"], Qt.SortOrder.AscendingOrder)  # not sortable: no change
    assert model.query.sort is SortKey.IDENTIFIER


def test_refresh_keeps_the_rows_in_place(qtbot, setup):
    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    resets = []
    model.modelReset.connect(lambda: resets.append(1))
    from app.services import actions

    actions.relabel_image(store._store, "Animals", "a001", "dog-001", "renamed")
    model.refresh()
    wait_idle(qtbot, model)
    qtbot.waitUntil(lambda: model.row(1).label == "renamed", timeout=3000)
    assert resets == []  # dataChanged, not a reset: the selection survives


def test_display_strings(qtbot, setup):
    model, _store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    first = [model.data(model.index(0, c)) for c in range(len(COLUMNS))]
    assert first[COLUMN_INDEX["position"]] == "1"
    assert first[COLUMN_INDEX["identifier"]] == "a000"
    assert first[COLUMN_INDEX["status"]] == "trained"
    assert first[COLUMN_INDEX["image"]] == "yes"
    assert first[COLUMN_INDEX["meta"]] == "2"
    assert len(first[COLUMN_INDEX["phash"]]) == 16
    assert "×" in first[COLUMN_INDEX["size"]]
    removed = model.index(60, COLUMN_INDEX["image"])
    assert model.data(removed) == "removed"
    assert model.data(removed, Qt.ItemDataRole.FontRole).italic()


def test_errors_are_signalled_not_raised(qtbot, setup):
    model, _store, _w = setup
    with qtbot.waitSignal(model.failed, timeout=3000) as blocker:
        model.set_query(ListingQuery("No such database"))
    assert "does not exist" in blocker.args[0].description


def test_shared_metadata():
    from tests.ui.test_detail_panes import row

    a = row("a", metadata=(("colour", "red"), ("size", "big")))
    b = row("b", metadata=(("colour", "red"), ("size", "small"), ("x", "1")))
    items, unshared = shared_metadata([a, b])
    assert items == [("colour", "red"), ("size", DIFFERS)]
    assert unshared == 1
    assert shared_metadata([a]) == ([("colour", "red"), ("size", "big")], 0)
    assert shared_metadata([]) == ([], 0)


def test_window_query_carries_metadata_for_the_panes(qtbot, setup):
    model, _store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    assert model.query.metadata and model.query.imagestatus
    assert model.row(0).metadata == (("colour", "red"), ("size", "big"))
    assert replace(model.query, start=1) == model.query


class EndlessFirstStore(CountingStore):
    """The first page request runs a statement that never ends on its own."""

    def list_page(self, query):
        self.calls["list_page"] += 1
        if self.calls["list_page"] == 1:
            self._store.sql.one("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n")
        return self._store.list_page(query)


def test_a_superseded_slow_page_is_stopped(qtbot, browse_url):
    """A newer request interrupts the running statement, so the lane is free at once."""
    store = Store.open(browse_url)
    workers = Workers()
    endless = EndlessFirstStore(store)
    model = ListingModel(ListingSource(workers, endless))
    model.set_query(ListingQuery("Animals"))
    # The newer request stops it whether or not its statement has begun yet (re-interrupted until it ends).
    qtbot.waitUntil(lambda: endless.calls["list_page"] == 1, timeout=3000)
    with qtbot.waitSignal(model.page_loaded, timeout=5000) as blocker:
        model.set_query(ListingQuery("Plants"))
    assert blocker.args[0].query.database == "Plants"
    assert workers.shutdown(5000)
    store.close()


def test_cancel_loading_keeps_the_page_shown(qtbot, setup):
    model, store, _w = setup
    load(qtbot, model, ListingQuery("Animals"))
    qtbot.waitUntil(lambda: store.calls["list_page"] >= 2 and _w.settled(), timeout=3000)
    store.gate = threading.Event()
    model.set_query(ListingQuery("Plants"))
    assert model.loading
    assert model.cancel_loading()
    assert not model.loading and model.query.database == "Animals"
    with qtbot.assertNotEmitted(model.page_loaded):
        store.gate.set()
        qtbot.waitUntil(_w.settled, timeout=5000)  # the cancelled page has come back and was dropped
    assert model.rowCount() == 100 and model.row(0).identifier == "a000"


def test_few_matches_are_counted_by_one_scan(qtbot, setup, monkeypatch):
    monkeypatch.setattr(listing_model, "COUNT_BOUND", 1000)
    model, store, _w = setup
    model.set_page_size(50)
    load(qtbot, model, ListingQuery("Animals", filters=(Filter(FilterOp.LABEL_CONTAINS, "-"),)))
    qtbot.waitUntil(lambda: model.count is not None and model.count.exact, timeout=3000)
    assert model.count == Count(130, True)
    assert store.calls["count"] == 1  # the bounded count was already exact
