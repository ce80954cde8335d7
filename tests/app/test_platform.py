"""The platform facts the code relies on, logged, and checked where an assumption exists
(reliability plan, section 9)."""

import logging
import sqlite3

import pyexpat

from app.store import store as store_module


def test_platform_assumptions(sqlite_store, caplog):
    caplog.set_level(logging.INFO)
    conn = sqlite_store.db.connection()
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    logging.getLogger("hashlens.platform").info(
        "sqlite %s, expat %s, variable limit %s", sqlite3.sqlite_version, pyexpat.EXPAT_VERSION, limit)
    # IN lists are chunked under the reported limit (and MySQL/PostgreSQL's 65,535).
    assert store_module.IN_CHUNK + 8 < min(limit, 65535)
    # Row values (keyset paging) need 3.15, window functions (rebuild_marks) 3.25,
    # subqueries in OFFSET and WITH (the one-statement page) are older still.
    assert sqlite3.sqlite_version_info >= (3, 25, 0)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == store_module.BUSY_TIMEOUT_MS


def test_identifier_chunking_under_a_lowered_limit(sqlite_store):
    """A server or build with a small variable limit still gets exact answers (P4)."""
    from app.domain import ListingQuery, NewEntry
    from app.services import actions

    actions.create_database(sqlite_store, "D")
    with sqlite_store.writing():
        for i in range(50):
            sqlite_store.add_entry("D", NewEntry(f"i{i}", "l", i, None, None, None, None, None))
    conn = sqlite_store.db.connection()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, store_module.IN_CHUNK + 8)
    ids = tuple(f"i{i}" for i in range(0, 50, 3)) + tuple(f"x{i}" for i in range(5000))
    rows = sqlite_store.list_page(ListingQuery("D", identifiers=ids)).rows
    assert [r.identifier for r in rows] == [f"i{i}" for i in range(0, 50, 3)]
