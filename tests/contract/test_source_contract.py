"""The Source contract: what every source must do, run against the SQL store on SQLite,
PostgreSQL and MariaDB and against the in-memory test source. A new source (a Media
Server mirror) adds itself to the `source` fixture and must pass all of this."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import (
    Failure,
    Filter,
    FilterOp,
    HashlensError,
    ListingQuery,
    NewEntry,
    SortKey,
)
from app.source import SOURCE_MEMBERS, Source

N = 23


def _entry(i: int, *, label: str | None = None, image: bool = False, metadata=()) -> NewEntry:
    data = b"\x89PNG fake " + bytes([i]) if image else None
    return NewEntry(f"id-{i:03d}", label if label is not None else f"label {i % 4}", (i * 0x9E3779B97F4A7C15) & (2**64 - 1),
                    data, "PNG" if image else None, 8 if image else None, 8 if image else None,
                    None, tuple(metadata), 1_700_000_000_000 + i)


def _fill(source, database: str = "D", n: int = N) -> list[str]:
    source.create_database(database)
    for i in range(n):
        meta = [("colour", "red" if i % 3 == 0 else "blue")] + ([("odd", "yes")] if i % 2 else [])
        source.add_entry(database, _entry(i, image=i % 5 == 0, metadata=meta))
    return [f"id-{i:03d}" for i in range(n)]


def _ids(page) -> list[str]:
    return [r.identifier for r in page.rows]


def _error(call, *args) -> HashlensError:
    with pytest.raises(HashlensError) as caught:
        call(*args)
    return caught.value


def test_it_is_a_source(source):
    assert isinstance(source, Source)
    assert all(hasattr(source, name) for name in SOURCE_MEMBERS)
    assert source.describe()


# -- listing order and windows -----------------------------------------------------------


def test_listing_is_in_database_order_with_positions(source):
    ids = _fill(source)
    page = source.list_page(ListingQuery("D"))
    assert _ids(page) == ids
    assert [r.position for r in page.rows] == list(range(1, N + 1))
    assert page.total == N
    assert source.list_databases()[0].entry_count == N


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(1, N + 3), maxresults=st.one_of(st.none(), st.integers(1, N + 3)))
def test_start_and_maxresults_window_the_listing(source, start, maxresults):
    if not source.database_exists("D"):
        _fill(source)
    whole = _ids(source.list_page(ListingQuery("D")))
    page = source.list_page(ListingQuery("D", start=start, maxresults=maxresults))
    end = None if maxresults is None else start - 1 + maxresults
    assert _ids(page) == whole[start - 1:end]
    assert [r.position for r in page.rows] == list(range(start, start + len(page.rows)))
    batches = list(source.iter_listing(ListingQuery("D", start=start, maxresults=maxresults), batch=4))
    assert [r.identifier for b in batches for r in b] == whole[start - 1:end]
    assert source.page_identifiers(ListingQuery("D", start=start, maxresults=maxresults)) == whole[start - 1:end]


def test_page_identifiers_are_the_pages_identifiers(source):
    _fill(source)
    for query in (ListingQuery("D", start=3, maxresults=4), ListingQuery("D", identifiers=("id-009", "id-002")),
                  ListingQuery("D", sort=SortKey.LABEL, descending=True, start=2, maxresults=6),
                  ListingQuery("D", start=N + 1, maxresults=5)):
        assert source.page_identifiers(query) == _ids(source.list_page(query)), query
    assert _error(source.page_identifiers, ListingQuery("nope", maxresults=5)).failure is \
        _error(source.list_page, ListingQuery("nope", maxresults=5)).failure


@pytest.mark.parametrize("sort", [SortKey.IDENTIFIER, SortKey.LABEL, SortKey.META_COUNT, SortKey.TRAINED_AT, SortKey.PHASH])
@pytest.mark.parametrize("descending", [False, True])
def test_sorted_listings_page_consistently(source, sort, descending):
    _fill(source)
    whole = _ids(source.list_page(ListingQuery("D", sort=sort, descending=descending)))
    assert sorted(whole) == sorted(f"id-{i:03d}" for i in range(N))
    pages = []
    for start in range(1, N + 1, 5):
        pages += _ids(source.list_page(ListingQuery("D", sort=sort, descending=descending, start=start, maxresults=5)))
    assert pages == whole


@pytest.mark.parametrize("descending", [False, True])
def test_phash_order_is_the_order_the_hex_reads(source, descending):
    """Unsigned order on every backend although the store keeps pHashes signed (issue 14):
    0000… first, 7fff… before 8000…, ffff… last; pages and batches by keyset agree."""
    source.create_database("H")
    hashes = [0xFFFFFFFFFFFFFFFF, 0x0000000000000000, 0x8000000000000000, 0x7FFFFFFFFFFFFFFF,
              0x0000000000000001, 0xC3C3E1E1F0F0B4B4, 0x8000000000000001, 0x3FFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF]
    for i, value in enumerate(hashes):
        source.add_entry("H", NewEntry(f"h-{i}", "x", value, None, None, None, None, None, (), 1_700_000_000_000 + i))
    # A pHash not known (NULL) sorts before every known one (after them when descending).
    source.add_entry("H", NewEntry("h-unknown", "x", None, None, None, None, None, None, (), 1_700_000_000_100))
    query = ListingQuery("H", sort=SortKey.PHASH, descending=descending)
    rows = source.list_page(query).rows
    shown = [r.phash_hex for r in rows]
    assert shown == sorted([""] + [f"{h:016x}" for h in hashes], reverse=descending)
    # Equal hashes keep database order (reversed when descending), so the order is total.
    twins = [r.identifier for r in rows if r.phash == 0x7FFFFFFFFFFFFFFF]
    assert twins == (["h-8", "h-3"] if descending else ["h-3", "h-8"])
    pages = []
    for start in range(1, len(hashes) + 2, 2):
        pages += _ids(source.list_page(ListingQuery("H", sort=SortKey.PHASH, descending=descending,
                                                    start=start, maxresults=2)))
    assert pages == _ids(source.list_page(query))
    assert [r.identifier for b in source.iter_listing(query, batch=2) for r in b] == pages


@pytest.mark.parametrize("descending", [False, True])
def test_near_results_sort_by_distance_nearest_first(source, descending):
    """Sort by distance from the near filter's hash (the window's near results, issue 14),
    with hashes on both sides of the sign bit; ties keep database order."""
    reference = 0x8000000000000F0F
    source.create_database("N")
    hashes = [reference ^ 0b111, reference, 0x7FFFFFFFFFFFFFFF, reference ^ (1 << 63), reference ^ 0b1,
              reference ^ (0b11 << 62), reference ^ 0b10, reference]
    for i, value in enumerate(hashes):
        source.add_entry("N", NewEntry(f"n-{i}", "x", value, None, None, None, None, None, (), 1_700_000_000_000 + i))
    near = Filter(FilterOp.PHASH_WITHIN, reference, distance=3)
    query = ListingQuery("N", filters=(near,), sort=SortKey.DISTANCE, descending=descending).validated()
    expected = sorted((bin(h ^ reference).count("1"), i) for i, h in enumerate(hashes)
                      if bin(h ^ reference).count("1") <= 3)
    if descending:
        expected.reverse()
    assert _ids(source.list_page(query)) == [f"n-{i}" for _, i in expected]
    assert [r.identifier for b in source.iter_listing(query, batch=2) for r in b] == [f"n-{i}" for _, i in expected]
    pages = []
    for start in (1, 3, 5, 7):
        pages += _ids(source.list_page(query.window(start, 2)))
    assert pages == [f"n-{i}" for _, i in expected]


def test_sorting_by_distance_without_a_near_filter_is_refused():
    error = _error(ListingQuery("N", sort=SortKey.DISTANCE).validated)
    assert error.failure is Failure.PARAM_INVALID and error.parameter == "sort"


def test_identifier_filter_keeps_database_order_and_drops_unknown(source):
    _fill(source)
    query = ListingQuery("D", identifiers=("id-009", "nope", "id-002", "id-009"))
    assert _ids(source.list_page(query)) == ["id-002", "id-009"]
    assert source.count(query).value == 2


# -- filters and counts ---------------------------------------------------------------------


FILTER_CASES = [
    (Filter(FilterOp.LABEL_CONTAINS, "BEL 1"), lambda i: i % 4 == 1),
    (Filter(FilterOp.LABEL_EQUALS, "label 2"), lambda i: i % 4 == 2),
    (Filter(FilterOp.HAS_IMAGE_DATA, True), lambda i: i % 5 == 0),
    (Filter(FilterOp.HAS_IMAGE_DATA, False), lambda i: i % 5 != 0),
    (Filter(FilterOp.META_PRESENT, key="odd"), lambda i: i % 2 == 1),
    (Filter(FilterOp.META_ABSENT, key="odd"), lambda i: i % 2 == 0),
    (Filter(FilterOp.META_EQUALS, "red", key="colour"), lambda i: i % 3 == 0),
    (Filter(FilterOp.PHASH_WITHIN, (7 * 0x9E3779B97F4A7C15) & (2**64 - 1), distance=0), lambda i: i == 7),
]


@pytest.mark.parametrize("flt, wanted", FILTER_CASES, ids=[f.op.value + str(f.value)[:6] for f, _ in FILTER_CASES])
def test_each_filter_selects_exactly_its_entries(source, flt, wanted):
    _fill(source)
    expected = [f"id-{i:03d}" for i in range(N) if wanted(i)]
    query = ListingQuery("D", filters=(flt,))
    page = source.list_page(query)
    assert _ids(page) == expected
    assert page.total is None  # a filtered page does not claim a total
    assert source.count(query).value == len(expected) and source.count(query).exact
    assert flt.describe()  # every filter has its words


def test_bounded_counts_stop_at_the_bound(source):
    _fill(source)
    query = ListingQuery("D", filters=(Filter(FilterOp.META_PRESENT, key="colour"),))
    bounded = source.count(query, bound=5)
    assert (bounded.value, bounded.exact) == (5, False)
    assert source.count(query, bound=N).exact
    assert source.count(ListingQuery("D")).value == N


def test_metadata_rows_and_keys(source):
    _fill(source)
    page = source.list_page(ListingQuery("D", maxresults=2, metadata=True))
    assert page.rows[1].metadata == (("colour", "blue"), ("odd", "yes"))
    assert page.rows[1].meta_count == 2
    assert source.metadata_keys("D") == ["colour", "odd"]


def test_images(source):
    _fill(source)
    info = source.image("D", "id-005")
    assert info.data == b"\x89PNG fake " + bytes([5])
    assert source.image("D", "id-001").data is None
    keys = {r.identifier: r.key for r in source.list_page(ListingQuery("D")).rows}
    assert source.images_by_key([keys["id-005"], keys["id-001"]]) == {keys["id-005"]: info.data}


# -- each write: atomic, journalled, token moves -------------------------------------------------


WRITES = [
    ("remove_entry", ("D", "id-003"), "RemoveImageHash"),
    ("null_image_data", ("D", "id-005"), "NullImageHashImageData"),
    ("rename_entry", ("D", "id-003", "renamed"), "RenameImageHash"),
    ("move_entry", ("D", "id-003", "E"), "MoveImageHash"),
    ("relabel", ("D", "id-003", "label 3", "new label"), "RelabelImageHashImage"),
    ("add_metadata", ("D", "id-003", "new", "v"), "AddImageHashMetadata"),
    ("update_metadata", ("D", "id-003", "colour", "green"), "UpdateImageHashMetadata"),
    ("remove_metadata", ("D", "id-003", "colour"), "RemoveImageHashMetadata"),
    ("rename_database", ("E", "F"), "RenameImageHashDatabase"),
    ("remove_database", ("E",), "RemoveImageHashDatabase"),
    ("create_database", ("G",), "CreateImageHashDatabase"),
]


@pytest.mark.parametrize("method, args, action", WRITES, ids=[w[0] for w in WRITES])
def test_each_write_is_journalled_once_and_moves_the_token(source, method, args, action):
    _fill(source, n=8)
    source.create_database("E")
    token, journal = source.change_token(), len(source.history())
    getattr(source, method)(*args)
    history = source.history()
    assert len(history) == journal + 1
    assert history[-1].action == action and history[-1].database == args[0]
    assert source.change_token() != token


def test_add_entry_is_journalled_with_its_source_and_appends(source):
    _fill(source, n=3)
    source.add_entry("D", _entry(50), source="/pictures/x.png")
    last = source.history()[-1]
    assert (last.action, last.identifier, last.params.get("imagepath")) == ("TrainImageHash", "id-050",
                                                                            "/pictures/x.png")
    assert _ids(source.list_page(ListingQuery("D", start=4))) == ["id-050"]


def test_moves_and_removals_keep_positions_exact(source):
    ids = _fill(source)
    source.create_database("E")
    source.remove_entry("D", "id-004")
    source.move_entry("D", "id-010", "E")
    source.move_entry("D", "id-002", "E")
    left = [i for i in ids if i not in ("id-004", "id-010", "id-002")]
    assert _ids(source.list_page(ListingQuery("D"))) == left
    for start in (1, 7, len(left)):
        assert _ids(source.list_page(ListingQuery("D", start=start, maxresults=1))) == [left[start - 1]]
    # A moved entry takes its place among the target's entries by age.
    source.add_entry("E", _entry(60))
    source.move_entry("D", "id-006", "E")
    assert _ids(source.list_page(ListingQuery("E"))) == ["id-002", "id-006", "id-010", "id-060"]
    assert [d.entry_count for d in source.list_databases()] == [len(left) - 1, 4]


REFUSED = [
    ("remove_entry", ("nodb", "id-001"), Failure.NO_SUCH_DATABASE),
    ("remove_entry", ("D", "nope"), Failure.NO_SUCH_IDENTIFIER),
    ("rename_entry", ("D", "id-001", "id-002"), Failure.IDENTIFIER_EXISTS),
    ("move_entry", ("D", "id-001", "nodb"), Failure.NO_SUCH_DATABASE),
    ("move_entry", ("D", "nope", "E"), Failure.NO_SUCH_IDENTIFIER),
    ("relabel", ("D", "id-001", "wrong", "x"), Failure.NO_SUCH_LABEL),
    ("add_metadata", ("D", "id-001", "colour", "x"), Failure.KEY_EXISTS),
    ("update_metadata", ("D", "id-001", "nokey", "x"), Failure.NO_SUCH_KEY),
    ("remove_metadata", ("D", "id-001", "nokey"), Failure.NO_SUCH_KEY),
    ("create_database", ("D",), Failure.DATABASE_EXISTS),
    ("rename_database", ("D", "E"), Failure.DATABASE_EXISTS),
    ("remove_database", ("nodb",), Failure.NO_SUCH_DATABASE),
    ("image", ("D", "nope"), Failure.NO_SUCH_IDENTIFIER),
    ("list_page", (ListingQuery("nodb"),), Failure.NO_SUCH_DATABASE),
    ("metadata_keys", ("nodb",), Failure.NO_SUCH_DATABASE),
]


@pytest.mark.parametrize("method, args, failure", REFUSED, ids=[f"{m}-{f.name}" for m, _, f in REFUSED])
def test_refused_changes_name_the_problem_and_change_nothing(source, method, args, failure):
    _fill(source, n=4)
    source.create_database("E")
    token, before = source.change_token(), _ids(source.list_page(ListingQuery("D", metadata=True)))
    error = _error(getattr(source, method), *args)
    assert error.failure is failure
    assert error.description
    assert source.change_token() == token
    assert _ids(source.list_page(ListingQuery("D", metadata=True))) == before


def test_a_duplicate_entry_is_refused_whole(source):
    _fill(source, n=2)
    error = _error(source.add_entry, "D", _entry(1))
    assert error.failure is Failure.IDENTIFIER_EXISTS
    assert source.count(ListingQuery("D")).value == 2


def test_a_group_is_one_journalled_change_or_nothing(source):
    _fill(source, n=2)
    token = source.change_token()
    with source.group("ImportImageHashes", "D", {"file": "f"}) as params:
        source.add_entry("D", _entry(10))
        source.add_entry("D", _entry(11))
        params["added"] = 2
    assert source.history()[-1].action == "ImportImageHashes"
    assert source.history()[-1].params == {"file": "f", "added": 2}
    assert source.count(ListingQuery("D")).value == 4
    token = source.change_token()
    with pytest.raises(HashlensError):
        with source.group("ImportImageHashes", "D"):
            source.add_entry("D", _entry(12))
            source.add_entry("D", _entry(0))  # a duplicate: the whole group is refused
    assert source.count(ListingQuery("D")).value == 4
    assert source.change_token() == token
