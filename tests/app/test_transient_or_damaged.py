"""A passing trouble is not damage (issue 10 item 9, store side).

While another process uses the same SQLite file, reads can fail for a moment ("database
is locked", "disk I/O error", even "file is not a database"). The store says so as a
transient error (`HashlensError.transient`), renews its connection and works again once
the other process lets go; it reports "damaged or not a Hashlens store" only when its
check (`PRAGMA quick_check` on a fresh connection, the schema present) proves it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.sources import open_source
from app.store import dialect

# A second process that takes the file for itself (WAL with exclusive locking: nobody
# else may even read) and holds it until told to let go on stdin.
HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE hl_database SET name = name")
    print("holding", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    conn.close()
""")


def _store(path) -> None:
    with open_source(str(path), create=True) as store:
        store.create_database("D")
        for i in range(200):
            store.add_entry("D", NewEntry(f"e{i:03d}", "x" * 200, i, None, None, None, None, None, (("k", "v" * 100),)))


def test_another_process_holding_the_file_is_a_transient_error_and_the_store_recovers(tmp_path, monkeypatch):
    monkeypatch.setattr(dialect, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "shared.db"
    _store(path)
    store = open_source(str(path))
    assert store.count(ListingQuery("D")).value == 200
    store.close()  # the next statement opens a fresh connection, as a worker lane does
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(HashlensError) as caught:
            store.list_page(ListingQuery("D", maxresults=5))
        error = caught.value
        assert error.transient
        assert error.failure in (Failure.STORE_BUSY, Failure.STORE_UNAVAILABLE)
        assert "damaged" not in error.description
        assert store.check_damage() is None  # the check does not take a busy file for damage
    finally:
        holder.stdin.write("go\n")
        holder.stdin.flush()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    # The same store object works again by itself: no reopening, no restart.
    assert [r.identifier for r in store.list_page(ListingQuery("D", maxresults=2)).rows] == ["e000", "e001"]
    store.add_entry("D", NewEntry("after", "x", 1, None, None, None, None, None))
    store.close()


def test_real_damage_is_proven_and_reported_as_damage(tmp_path):
    path = tmp_path / "damaged.db"
    _store(path)
    with open_source(str(path)) as store:
        store.sql.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        store.sql.exec("PRAGMA journal_mode=DELETE")
        page = store.sql.one("PRAGMA page_size")[0]
        pages = store.sql.one("PRAGMA page_count")[0]
    data = bytearray(path.read_bytes())
    # Scribble over every page but the first (the schema): the entries' pages are gone.
    for n in range(1, pages):
        data[n * page:n * page + 64] = b"\xde\xad\xbe\xef" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(HashlensError) as caught:
        # Its small tables may already fail at opening; the listing fails at the latest.
        with open_source(str(path), read_only=True) as store:
            list(store.iter_listing(ListingQuery("D", metadata=True)))
    assert not caught.value.transient
    assert "damaged or is not a Hashlens store" in caught.value.description
    assert path.read_bytes() == bytes(data)  # reported, never repaired


def test_a_healthy_store_checks_clean(tmp_path):
    path = tmp_path / "fine.db"
    _store(path)
    with open_source(str(path)) as store:
        assert store.check_damage() is None


def test_a_store_without_its_tables_is_proven_not_a_store(tmp_path):
    path = tmp_path / "gutted.db"
    _store(path)
    with open_source(str(path)) as store:
        assert store.check_damage() is None
        store.sql.exec("DROP TABLE hl_mark")
        assert "hl_mark" in store.check_damage()
