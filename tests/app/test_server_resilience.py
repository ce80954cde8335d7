"""Cancelling a running query, and surviving a lost server connection (issue 6, item 4)."""

import threading
import time

import pytest

from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.services import actions
from app.store import Store

SLOW = {
    # Each runs for many seconds unless cancelled.
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
    "postgresql": "SELECT pg_sleep(30)",
    "mysql": "SELECT COUNT(*) FROM information_schema.COLUMNS a, information_schema.COLUMNS b, "
             "information_schema.COLUMNS c",
}


def test_cancel_stops_a_running_query_and_the_store_stays_usable(store):
    outcome = {}
    started = threading.Event()

    def work():
        try:
            with store.cancellable() as handle:
                outcome["handle"] = handle
                started.set()
                store.sql.all(SLOW[store.backend])
        except HashlensError as exc:
            outcome["error"] = exc
        finally:
            store.db.close()

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(10)
    time.sleep(0.5)
    outcome["handle"].cancel()
    thread.join(20)
    assert not thread.is_alive()
    assert outcome["error"].failure is Failure.CANCELLED
    actions.create_database(store, "AfterCancel")
    assert [d.name for d in store.list_databases()] == ["AfterCancel"]


def test_interrupt_cancels_every_running_query(sqlite_store):
    errors = []
    started = threading.Barrier(3)

    def work():
        try:
            with sqlite_store.cancellable():
                started.wait()
                sqlite_store.sql.all(SLOW["sqlite"])
        except HashlensError as exc:
            errors.append(exc.failure)
        finally:
            sqlite_store.db.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.3)
    sqlite_store.interrupt()
    for t in threads:
        t.join(20)
    assert errors == [Failure.CANCELLED, Failure.CANCELLED]


def _kill_own_session(store):
    """Ask the server to end this store's connection, as a restart or idle timeout would."""
    if store.backend == "postgresql":
        import psycopg

        pid = store.sql.one("SELECT pg_backend_pid()")[0]
        with psycopg.connect(dbname="postgres", user="postgres", host="127.0.0.1", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    else:
        import pymysql

        ident = store.sql.one("SELECT CONNECTION_ID()")[0]
        admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with admin.cursor() as cursor:
            cursor.execute(f"KILL CONNECTION {int(ident)}")
        admin.close()
    time.sleep(0.2)


@pytest.mark.server
@pytest.mark.parametrize("url_fixture", ["pg_url", "mysql_url"])
def test_lost_connection_reconnects_between_transactions(request, url_fixture):
    store = Store.open(request.getfixturevalue(url_fixture))
    actions.create_database(store, "D")
    _kill_own_session(store)
    # The next unit of work reconnects by itself.
    assert [d.name for d in store.list_databases()] == ["D"]
    store.close()


@pytest.mark.server
@pytest.mark.parametrize("url_fixture", ["pg_url", "mysql_url"])
def test_lost_connection_mid_write_keeps_nothing_and_then_recovers(request, url_fixture):
    store = Store.open(request.getfixturevalue(url_fixture))
    actions.create_database(store, "D")
    with pytest.raises(HashlensError) as info:
        with store.writing():
            store.add_entry("D", NewEntry("a", "a", 1, None, None, None, None, None))
            _kill_own_session(store)
            store.add_entry("D", NewEntry("b", "b", 2, None, None, None, None, None))
    assert info.value.failure in (Failure.STORE_UNAVAILABLE, Failure.STORE_FAILED)
    assert "Traceback" not in info.value.description
    assert store.count(ListingQuery("D")).value == 0
    actions.create_database(store, "E")
    store.close()
