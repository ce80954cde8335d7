"""Concurrent changes never corrupt a store (issue 10 item 1), on every backend.

Three writer threads, each with its own store and connection, mix moves, removals,
renames, training and metadata changes over one shared pool of identifiers, beside a
reader paging both databases. Afterwards every recorded entry count equals the rows,
every position mark holds its entry's true position, `start=N` returns the N-th entry
by an independent query, and every entry's metadata count is true. Losing a race
(the entry was removed or moved by another writer first) is a legitimate answer;
anything else reaching a caller (busy, deadlock, a driver error) is a failure.

Before the fix, two removals of one entry on PostgreSQL or MariaDB both passed their
existence check: the count dropped by two for one row and every later mark shifted twice.
"""

from __future__ import annotations

import random
import threading

import pytest

from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.sources import open_source
from app.store import entries as entries_module

WRITERS = 3
POOL = 60  # identifiers p000..p059, each also in a renamed form pNNN-r
MARKS = 4  # a position mark every 4 entries, so marks move all the time

# Outcomes of losing a race to another writer: the person is told the plain truth.
RACE_OUTCOMES = {Failure.NO_SUCH_IDENTIFIER, Failure.IDENTIFIER_EXISTS, Failure.NO_SUCH_KEY, Failure.KEY_EXISTS,
                 Failure.NO_SUCH_LABEL}


def _new(identifier: str, rng: random.Random) -> NewEntry:
    return NewEntry(identifier, "label", rng.getrandbits(64), None, None, None, None, None,
                    (("k", "0"),) if rng.random() < 0.5 else ())


def _names(base: int) -> tuple[str, str]:
    return f"p{base:03d}", f"p{base:03d}-r"


def writer(url: str, seed: int, operations: int, errors: list) -> None:
    rng = random.Random(seed)
    store = open_source(url)
    try:
        for _ in range(operations):
            plain, renamed = _names(rng.randrange(POOL))
            ident = rng.choice((plain, renamed))
            db, other = rng.sample(("A", "B"), 2)
            op = rng.choice(("move", "move", "remove", "rename", "train", "train", "meta_add", "meta_update",
                             "meta_remove", "relabel"))
            try:
                if op == "move":
                    store.move_entry(db, ident, other)
                elif op == "remove":
                    store.remove_entry(db, ident)
                elif op == "rename":
                    store.rename_entry(db, ident, renamed if ident == plain else plain)
                elif op == "train":
                    store.add_entry(db, _new(ident, rng))
                elif op == "meta_add":
                    store.add_metadata(db, ident, "k", str(rng.randrange(9)))
                elif op == "meta_update":
                    store.update_metadata(db, ident, "k", str(rng.randrange(9)))
                elif op == "meta_remove":
                    store.remove_metadata(db, ident, "k")
                else:
                    store.relabel(db, ident, "label", "label")
            except HashlensError as exc:
                if exc.failure not in RACE_OUTCOMES:
                    errors.append(f"{op} {db}/{ident}: {exc.failure.name}: {exc.description}")
            except Exception as exc:  # anything else escaping is a defect too
                errors.append(f"{op} {db}/{ident}: {type(exc).__name__}: {exc}")
    finally:
        store.close()


def reader(url: str, stop: threading.Event, errors: list) -> None:
    store = open_source(url, read_only=True)
    rng = random.Random(7)
    try:
        while not stop.is_set():
            db = rng.choice(("A", "B"))
            start = rng.randrange(1, POOL + 2)
            try:
                page = store.list_page(ListingQuery(db, start=start, maxresults=5, metadata=True))
                if [r.position for r in page.rows] != list(range(start, start + len(page.rows))):
                    errors.append(f"reader: positions {[r.position for r in page.rows]} from {start}")
                for row in page.rows:
                    if row.meta_count != len(row.metadata):
                        errors.append(f"reader: {row.identifier} meta_count {row.meta_count} of {row.metadata}")
            except Exception as exc:
                errors.append(f"reader: {type(exc).__name__}: {exc}")
    finally:
        store.close()


def check_store(url: str) -> None:
    """Counts, marks, `start=N` and metadata counts against independent queries."""
    store = open_source(url)
    try:
        sql = store.sql
        for name in ("A", "B"):
            db_id, recorded = sql.one("SELECT id, entry_count FROM hl_database WHERE name = ?", (name,))
            keys = [r[0] for r in sql.all("SELECT id FROM hl_entry WHERE database_id = ? ORDER BY id", (db_id,))]
            assert recorded == len(keys), f"{name}: entry_count {recorded} but {len(keys)} rows"
            position = {key: i + 1 for i, key in enumerate(keys)}
            marks = sql.all("SELECT ordinal, entry_id FROM hl_mark WHERE database_id = ? ORDER BY ordinal", (db_id,))
            wrong = [(o, k, position.get(k)) for o, k in marks if position.get(k) != o]
            assert not wrong, f"{name}: marks not at their entries' positions (ordinal, key, true): {wrong[:5]}"
            identifiers = dict(sql.all("SELECT id, identifier FROM hl_entry WHERE database_id = ?", (db_id,)))
            for n in range(1, len(keys) + 1):
                rows = store.list_page(ListingQuery(name, start=n, maxresults=1)).rows
                assert [r.identifier for r in rows] == [identifiers[keys[n - 1]]], f"{name}: start={n}"
            bad_meta = sql.all(
                "SELECT e.identifier FROM hl_entry e WHERE e.database_id = ? AND e.meta_count <> "
                "(SELECT COUNT(*) FROM hl_metadata m WHERE m.entry_id = e.id)", (db_id,))
            assert not bad_meta, f"{name}: meta_count wrong for {bad_meta[:5]}"
    finally:
        store.close()


def run_campaign(url: str, operations: int, seed: int) -> list[str]:
    with open_source(url, create=True) as store:
        store.create_database("A")
        store.create_database("B")
        rng = random.Random(seed)
        for base in range(POOL):
            store.add_entry(("A", "B")[base % 2], _new(_names(base)[0], rng))
    errors: list[str] = []
    stop = threading.Event()
    readers = [threading.Thread(target=reader, args=(url, stop, errors))]
    writers = [threading.Thread(target=writer, args=(url, seed * 100 + w, operations, errors)) for w in range(WRITERS)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    check_store(url)
    return errors


@pytest.fixture
def small_marks(monkeypatch):
    monkeypatch.setattr(entries_module, "MARK_SPACING", MARKS)


@pytest.mark.timeout(600)
def test_three_writers_mixing_every_change_leave_no_drift(store_url, small_marks):
    errors = run_campaign(store_url, operations=300, seed=1)
    assert errors == []


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("seed", range(3))
def test_three_writers_soak(store_url, small_marks, seed):
    errors = run_campaign(store_url, operations=300 * 3, seed=seed)
    assert errors == []


@pytest.mark.parametrize("operation", ["remove", "move"])
def test_two_removals_of_one_entry_count_once(store_url, small_marks, operation):
    """The regression itself: the same entry removed (or moved) by two writers at once."""
    with open_source(store_url, create=True) as store:
        store.create_database("A")
        store.create_database("B")
        rng = random.Random(3)
        for i in range(12):
            store.add_entry("A", _new(f"e{i:02d}", rng))
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def race():
        store = open_source(store_url)
        try:
            for i in range(12):
                barrier.wait()
                try:
                    if operation == "remove":
                        store.remove_entry("A", f"e{i:02d}")
                    else:
                        store.move_entry("A", f"e{i:02d}", "B")
                except HashlensError as exc:
                    if exc.failure is not Failure.NO_SUCH_IDENTIFIER:
                        errors.append(f"{exc.failure.name}: {exc.description}")
        finally:
            store.close()

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check_store(store_url)
    with open_source(store_url) as store:
        assert {d.name: d.entry_count for d in store.list_databases()} == (
            {"A": 0, "B": 0} if operation == "remove" else {"A": 0, "B": 12})
