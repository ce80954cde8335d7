"""Every filter operation, alone and combined, gives the same entries on every backend as a
plain Python model of the listing: in order, windowed, streamed and counted."""

import itertools
import random

import pytest

from app.domain import Filter, FilterOp, ListingQuery, NewEntry, SortKey, hamming
from app.services import actions

LABELS = ["Cat", "cat", "black cat", "dog", "50%_off", "naïve", "Ünïcode", "a!b", "x"]


@pytest.fixture
def model(store):
    rng = random.Random(5)
    actions.create_database(store, "F")
    actions.create_database(store, "Other")
    entries = []
    with store.writing():
        for i in range(60):
            meta = []
            if i % 2:
                meta.append(("colour", rng.choice(["red", "blue", ""])))
            if i % 3 == 0:
                meta.append(("size", str(i % 4)))
            phash = rng.getrandbits(64) if i % 5 else 0xF0F0F0F0F0F0F0F0 ^ (1 << (i % 64))
            e = NewEntry(f"id{i:03d}", LABELS[i % len(LABELS)], phash, b"x" if i % 4 else None,
                         None, None, None, None, tuple(meta))
            store.add_entry("F", e)
            # The other database holds look-alikes that must never leak into F's listings.
            store.add_entry("Other", NewEntry(f"o{i}", e.label, phash, None, None, None, None, None, tuple(meta)))
            entries.append(e)
    return store, entries


def matches(e: NewEntry, f: Filter) -> bool:
    meta = dict(e.metadata)
    if f.op is FilterOp.LABEL_CONTAINS:
        # Case is ignored for ASCII letters on every backend (ours).
        return f.value.lower() in e.label.lower() if f.value.isascii() and e.label.isascii() else f.value in e.label
    if f.op is FilterOp.LABEL_EQUALS:
        return e.label == f.value
    if f.op is FilterOp.HAS_IMAGE_DATA:
        return (e.image_data is not None) == f.value
    if f.op is FilterOp.META_PRESENT:
        return f.key in meta
    if f.op is FilterOp.META_ABSENT:
        return f.key not in meta
    if f.op is FilterOp.META_EQUALS:
        return meta.get(f.key) == f.value
    if f.op is FilterOp.PHASH_WITHIN:
        return hamming(e.phash, f.value) <= f.distance
    raise AssertionError(f.op)


FILTERS = [
    Filter(FilterOp.LABEL_CONTAINS, "cat"),
    Filter(FilterOp.LABEL_CONTAINS, "%_"),
    Filter(FilterOp.LABEL_CONTAINS, "!"),
    Filter(FilterOp.LABEL_EQUALS, "cat"),
    Filter(FilterOp.HAS_IMAGE_DATA, True),
    Filter(FilterOp.HAS_IMAGE_DATA, False),
    Filter(FilterOp.META_PRESENT, key="size"),
    Filter(FilterOp.META_ABSENT, key="colour"),
    Filter(FilterOp.META_EQUALS, "red", key="colour"),
    Filter(FilterOp.META_EQUALS, "", key="colour"),
    Filter(FilterOp.PHASH_WITHIN, 0xF0F0F0F0F0F0F0F0, distance=1),
    Filter(FilterOp.PHASH_WITHIN, 0xF0F0F0F0F0F0F0F0, distance=64),
]


@pytest.mark.parametrize("combo", [(f,) for f in FILTERS] + list(itertools.combinations(FILTERS[::3], 2))
                         + [(FILTERS[8], FILTERS[4], FILTERS[0])], ids=lambda c: " & ".join(f.describe() for f in c))
def test_filters_match_the_model(model, combo):
    store, entries = model
    expected = [e.identifier for e in entries if all(matches(e, f) for f in combo)]
    query = ListingQuery("F", filters=combo)
    assert [r.identifier for r in store.list_page(query).rows] == expected
    assert [r.identifier for b in store.iter_listing(query, batch=7) for r in b] == expected
    assert store.count(query).value == len(expected)
    bounded = store.count(query, bound=5)
    assert (bounded.value, bounded.exact) == (min(len(expected), 5), len(expected) <= 5)
    window = store.list_page(query.window(3, 4)).rows
    assert [r.identifier for r in window] == expected[2:6]
    assert [r.position for r in window] == list(range(3, 3 + len(window)))
    backwards = ListingQuery("F", filters=combo, descending=True)
    assert [r.identifier for r in store.list_page(backwards).rows] == expected[::-1]


@pytest.mark.parametrize("sort", list(SortKey))
def test_sorted_and_filtered_streams_agree(model, sort):
    store, _ = model
    filters = (FILTERS[8],)
    if sort is SortKey.DISTANCE:  # a distance is measured from the near filter's hash
        filters += (Filter(FilterOp.PHASH_WITHIN, 0x0123456789ABCDEF, distance=64),)
    query = ListingQuery("F", filters=filters, sort=sort)
    whole = [r.identifier for r in store.list_page(query).rows]
    assert [r.identifier for b in store.iter_listing(query, batch=3) for r in b] == whole
    assert sorted(whole) == sorted(r.identifier for r in store.list_page(ListingQuery("F", filters=filters)).rows)


def test_metadata_keys_are_those_of_the_database(model):
    store, _ = model
    actions.create_database(store, "Third")
    with store.writing():
        store.add_entry("Third", NewEntry("t", "t", 1, None, None, None, None, None, (("zeta", "1"), ("alpha", "2"))))
    assert store.metadata_keys("F") == ["colour", "size"]
    assert store.metadata_keys("Third") == ["alpha", "zeta"]
    assert store.metadata_keys("Third", limit=1) == ["alpha"]
    actions.create_database(store, "Empty")
    assert store.metadata_keys("Empty") == []


@pytest.mark.parametrize("size", [1, 2, 3])
def test_counts_of_every_combination_match_the_model(model, size):
    """Counts take their own paths (a metadata index drives them; a key absent and image data
    kept are counted as the rest minus their opposite): every combination of the filter
    panel's conditions, up to three, exact and bounded, against the model."""
    store, entries = model
    panel = [f for f in FILTERS if f.op is not FilterOp.LABEL_CONTAINS] + [Filter(FilterOp.META_ABSENT, key="size"),
                                                                          Filter(FilterOp.META_PRESENT, key="colour")]
    combos = list(itertools.combinations(panel, size))
    if size == 3:
        combos = random.Random(3).sample(combos, 40)
    for combo in combos:
        expected = sum(all(matches(e, f) for f in combo) for e in entries)
        query = ListingQuery("F", filters=combo)
        assert store.count(query).value == expected, combo
        for bound in (0, 3, expected, expected + 1):
            got = store.count(query, bound=bound)
            assert (got.value, got.exact) == (min(expected, bound), expected <= bound), (combo, bound)
