"""Invariants of the listing: windows concatenate, filters keep database order, and the
position marks that let `start` seek stay exact through removals and moves."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import Filter, FilterOp, ListingQuery, NewEntry, SortKey
from app.services import actions
from app.store import Store
from app.store import entries as entries_module

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fill(store, database, n, seed=0):
    rng = random.Random(seed)
    actions.create_database(store, database)
    with store.writing():
        for i in range(n):
            meta = (("k", str(i % 3)),) if i % 2 else ()
            store.add_entry(database, NewEntry(f"e{i:05d}", f"label{i % 7}", rng.getrandbits(64), None, None,
                                               None, None, None, meta))


@pytest.fixture(scope="module")
def listing_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("listing") / "s.db"
    store = Store.open(f"sqlite:///{path}")
    _fill(store, "D", 257)
    yield store
    store.close()


def _ids(rows):
    return [r.identifier for r in rows]


@PROPS
@given(start=st.integers(1, 300), size=st.integers(1, 60))
def test_windows_concatenate_to_the_whole_listing(listing_store, start, size):
    full = _ids(listing_store.list_page(ListingQuery("D")).rows)
    assert len(full) == 257
    got = []
    position = start
    while True:
        page = listing_store.list_page(ListingQuery("D", start=position, maxresults=size)).rows
        assert len(page) == min(size, max(0, 257 - position + 1))
        assert [r.position for r in page] == list(range(position, position + len(page)))
        if not page:
            break
        got += _ids(page)
        position += len(page)
    assert got == full[start - 1:]


@PROPS
@given(ids=st.lists(st.one_of(st.integers(0, 300).map(lambda i: f"e{i:05d}"), st.text(min_size=1, max_size=5)),
                    max_size=80),
       start=st.integers(1, 40), size=st.one_of(st.none(), st.integers(1, 40)))
def test_identifier_filter_is_database_order_then_window(listing_store, ids, start, size):
    ids = [i for i in ids if i.strip() and all(c.isprintable() for c in i)]
    full = _ids(listing_store.list_page(ListingQuery("D")).rows)
    wanted = set(ids)
    expected = [i for i in full if i in wanted][start - 1:]
    if size is not None:
        expected = expected[:size]
    page = listing_store.list_page(ListingQuery("D", identifiers=tuple(ids), start=start, maxresults=size))
    assert _ids(page.rows) == expected
    assert [r.position for r in page.rows] == list(range(start, start + len(expected)))


@PROPS
@given(sort=st.sampled_from([k for k in SortKey if k is not SortKey.DISTANCE]), descending=st.booleans(), batch=st.integers(1, 50),
       start=st.integers(1, 100), label=st.sampled_from([None, "label3", "el"]))
def test_iter_listing_matches_one_page_for_every_order(listing_store, sort, descending, batch, start, label):
    filters = (Filter(FilterOp.LABEL_CONTAINS, label),) if label else ()
    query = ListingQuery("D", filters=filters, sort=sort, descending=descending, start=start)
    whole = listing_store.list_page(query).rows
    streamed = [r for b in listing_store.iter_listing(query, batch=batch) for r in b]
    assert _ids(streamed) == _ids(whole)
    assert [r.position for r in streamed] == list(range(start, start + len(whole)))


@PROPS
@given(sort=st.sampled_from([k for k in SortKey if k is not SortKey.DISTANCE]), descending=st.booleans(), start=st.integers(1, 270),
       size=st.one_of(st.none(), st.integers(1, 60)))
def test_any_window_of_a_sorted_listing_is_a_slice_of_the_whole(listing_store, sort, descending, start, size):
    whole = _ids(listing_store.list_page(ListingQuery("D", sort=sort, descending=descending)).rows)
    page = listing_store.list_page(ListingQuery("D", sort=sort, descending=descending, start=start, maxresults=size))
    assert _ids(page.rows) == whole[start - 1:None if size is None else start - 1 + size]
    assert [r.position for r in page.rows] == list(range(start, start + len(page.rows)))


def test_sorted_listing_is_total_and_stable(listing_store):
    rows = listing_store.list_page(ListingQuery("D", sort=SortKey.LABEL)).rows
    keys = [(r.label, r.key) for r in rows]
    assert keys == sorted(keys)
    desc = listing_store.list_page(ListingQuery("D", sort=SortKey.LABEL, descending=True)).rows
    assert _ids(desc) == _ids(rows)[::-1]


def test_huge_identifier_list_is_chunked(listing_store):
    ids = [f"e{i:05d}" for i in range(0, 257, 2)] + [f"missing{i}" for i in range(50_000)]
    rows = listing_store.list_page(ListingQuery("D", identifiers=tuple(ids))).rows
    assert _ids(rows) == [f"e{i:05d}" for i in range(0, 257, 2)]


class _Model:
    """The listing as a plain list, to check marks against."""

    def __init__(self, store, database):
        self.store, self.database = store, database

    def full(self):
        return _ids(self.store.list_page(ListingQuery(self.database)).rows)


@pytest.mark.parametrize("seed", range(6))
def test_marks_stay_exact_through_removals_moves_and_appends(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(entries_module, "MARK_SPACING", 4)
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    _fill(store, "A", 60, seed)
    actions.create_database(store, "B")
    rng = random.Random(seed)
    expected = {"A": [f"e{i:05d}" for i in range(60)], "B": []}
    counter = 1000
    for _ in range(80):
        op = rng.choice(["remove", "move", "append", "append"])
        src = rng.choice(["A", "B"])
        if op == "append":
            counter += 1
            ident = f"n{counter}"
            with store.writing():
                store.add_entry(src, NewEntry(ident, "x", 1, None, None, None, None, None))
            expected[src].append(ident)
        elif expected[src]:
            ident = rng.choice(expected[src])
            if op == "remove":
                actions.remove_image_hash(store, src, ident)
                expected[src].remove(ident)
            else:
                dst = "B" if src == "A" else "A"
                actions.move_image_hash(store, src, ident, dst)
                expected[src].remove(ident)
                # A moved entry keeps its training time: it takes its place by age.
                order = {i: r.key for d in ("A", "B") for r in store.list_page(ListingQuery(d)).rows for i in [r.identifier]}
                expected[dst] = sorted(expected[dst] + [ident], key=order.get)
        for db in ("A", "B"):
            full = expected[db]
            assert store.count(ListingQuery(db)).value == len(full)
            for start in range(1, len(full) + 2):
                page = store.list_page(ListingQuery(db, start=start, maxresults=3)).rows
                assert _ids(page) == full[start - 1:start + 2], (db, start)
    store.close()


def test_every_mark_holds_its_entrys_true_position(tmp_path, monkeypatch):
    monkeypatch.setattr(entries_module, "MARK_SPACING", 5)
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    _fill(store, "A", 40)
    for ident in ("e00003", "e00004", "e00010", "e00011", "e00039"):
        actions.remove_image_hash(store, "A", ident)

    def check():
        position = {r.key: r.position for r in store.list_page(ListingQuery("A")).rows}
        marks = store.sql.all("SELECT ordinal, entry_id FROM hl_mark ORDER BY ordinal")
        assert marks and all(position[key] == ordinal for ordinal, key in marks)
        return marks

    maintained = check()
    with store.writing():
        store.rebuild_marks("A")
    rebuilt = check()
    assert [o for o, _ in rebuilt] == list(range(5, 36, 5))
    assert len(maintained) >= len(rebuilt) - 1
    store.close()
