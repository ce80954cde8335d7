"""A pHash that is not known is NULL in the store on every backend (issue 11 item 3):
stored by single and bulk writes, listed as None, sorted in one stable place, and never
within any distance of anything."""

from __future__ import annotations

from app.domain import Filter, FilterOp, ListingQuery, NewEntry, SortKey
from app.services import actions
from app.store.bulk import append_entries


def _entry(identifier: str, phash: int | None, declared: bool | None = None) -> NewEntry:
    return NewEntry(identifier, identifier, phash, None, None, None, None, None, (), 1, declared)


def test_null_pHashes_are_stored_listed_sorted_and_never_near(store):
    actions.create_database(store, "D")
    store.add_entry("D", _entry("one", None, True))
    store.add_entry("D", _entry("zero", 0))
    store.add_entry("D", _entry("top", 2**64 - 1))
    store.add_entry("D", _entry("low", 1 << 63))  # the lowest signed value: ties with NULL, broken by key
    append_entries(store, "D", [_entry(f"bulk{i}", None if i % 2 else i, i % 3 == 0 or None) for i in range(6)])
    rows = {r.identifier: r for b in store.iter_listing(ListingQuery("D", imagestatus=True)) for r in b}
    assert rows["one"].phash is None and rows["one"].declared_image_data is True
    assert rows["zero"].phash == 0 and rows["zero"].declared_image_data is None
    assert [rows[f"bulk{i}"].phash for i in range(6)] == [0, None, 2, None, 4, None]
    assert [rows[f"bulk{i}"].declared_image_data for i in range(6)] == [True, None, None, True, None, None]
    # Near any hash at any distance: only entries with a pHash.
    near = store.list_page(ListingQuery("D", filters=(Filter(FilterOp.PHASH_WITHIN, 0, distance=64),))).rows
    assert {r.identifier for r in near} == {"zero", "top", "low", "bulk0", "bulk2", "bulk4"}
    # Sorted by pHash, page by page (keyset after the first page), both ways: every entry
    # exactly once, in one order.
    for descending in (False, True):
        query = ListingQuery("D", sort=SortKey.PHASH, descending=descending)
        whole = [r.identifier for b in store.iter_listing(query) for r in b]
        paged = []
        for start in range(1, 11, 3):
            paged += [r.identifier for r in store.list_page(query.window(start, 3)).rows]
        assert paged == whole and sorted(whole) == sorted(rows)
        small = [r.identifier for b in store.iter_listing(query, batch=2) for r in b]
        assert small == whole
    ascending = [r.identifier for b in store.iter_listing(ListingQuery("D", sort=SortKey.PHASH)) for r in b]
    assert ascending.index("one") < ascending.index("zero")  # not known sorts lowest
