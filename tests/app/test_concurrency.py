"""Several users at once (issue 6, reliability C1): three writer processes of 300
transactions each beside a reader paging the listing, on an SQLite file and on PostgreSQL
(and MariaDB). Nothing committed is lost, no writer sees "database is locked", the reader
never fails and never sees half a change."""

from __future__ import annotations

import multiprocessing
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from app.domain import Failure, HashlensError, ListingQuery
from app.services import actions
from app.store import Store
from app.store.store import MARK_SPACING

WRITERS = 3
TRANSACTIONS = 300
READER_LIMIT_S = 120


def writer(url: str, w: int) -> dict:
    """300 "read, then write" transactions through the actions: train an image, add a
    prepared entry, add metadata to an entry made two steps before. Returns what committed."""
    from tests.conftest import make_image

    store = Store.open(url)
    committed: dict[str, list] = {}
    errors = []
    try:
        for j in range(TRANSACTIONS):
            identifier = f"w{w}-{j:03d}"
            try:
                if j % 3 == 0:
                    actions.train_image(store, "db", data=make_image(w * 1000 + j), identifier=identifier,
                                        metadata=[("writer", str(w))])
                    committed[identifier] = [("writer", str(w))]
                elif j % 3 == 1:
                    items = [("writer", str(w)), ("step", str(j))]
                    entry = actions.prepare_entry(None, identifier=identifier, label=f"label {j}",
                                                  metadata=items, phash=(w << 40) + j)
                    actions.add_entry(store, "db", entry)
                    committed[identifier] = items
                else:
                    target = f"w{w}-{j - 2:03d}"
                    actions.add_metadata(store, "db", target, "extra", str(j))
                    committed[target] = committed[target] + [("extra", str(j))]
            except HashlensError as exc:
                errors.append(f"{identifier}: {exc.failure.name}: {exc.description}")
            except Exception:
                errors.append(f"{identifier}: {traceback.format_exc()}")
    finally:
        store.close()
    return {"committed": committed, "errors": errors}


def reader(url: str, stop: str) -> dict:
    """Page the listing as the window does, and take whole snapshots as exports do, until
    told to stop; check every row it sees for half-made changes."""
    store = Store.open(url)
    pages = snapshots = 0
    errors = []
    began = time.monotonic()
    start = 1
    try:
        while not Path(stop).exists() and time.monotonic() - began < READER_LIMIT_S:
            try:
                # The window's own path: Store.list_page takes one snapshot per page.
                page = actions.list_image_hashes(store, ListingQuery("db", start=start, maxresults=50, metadata=True))
                pages += 1
                for offset, row in enumerate(page.rows):
                    if row.position != start + offset:
                        errors.append(f"page at {start}: position {row.position} at offset {offset}")
                    if row.meta_count != len(row.metadata):
                        errors.append(f"page: {row.identifier} meta_count {row.meta_count} but {row.metadata}")
                start = start + 50 if len(page.rows) == 50 else 1
                if pages % 10 == 0:
                    query = ListingQuery("db", metadata=True)
                    with store.reading():
                        count = store.count(query).value
                        rows = [r for batch in store.iter_listing(query, batch=97) for r in batch]
                    snapshots += 1
                    if len(rows) != count:
                        errors.append(f"snapshot: count {count} but {len(rows)} rows")
                    if [r.position for r in rows] != list(range(1, len(rows) + 1)):
                        errors.append("snapshot: positions are not 1..n")
                    if [r.key for r in rows] != sorted(r.key for r in rows):
                        errors.append("snapshot: not in database order")
                    errors.extend(f"snapshot: {r.identifier} meta_count {r.meta_count} but {r.metadata}"
                                  for r in rows if r.meta_count != len(r.metadata))
            except HashlensError as exc:
                errors.append(f"reader: {exc.failure.name}: {exc.description}")
            except Exception:
                errors.append(f"reader: {traceback.format_exc()}")
    finally:
        store.close()
    return {"pages": pages, "snapshots": snapshots, "errors": errors}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server),
                        pytest.param("mysql", marks=pytest.mark.server)])
def shared_url(request):
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param])


@pytest.mark.timeout(240)
def test_three_writers_and_a_reader(shared_url, tmp_path):
    with Store.open(shared_url) as store:
        actions.create_database(store, "db")
    stop = tmp_path / "stop"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WRITERS + 1, mp_context=context) as pool:
        watching = pool.submit(reader, shared_url, str(stop))
        writing = [pool.submit(writer, shared_url, w) for w in range(WRITERS)]
        results = [f.result() for f in writing]
        stop.touch()
        seen = watching.result()

    errors = [e for r in results for e in r["errors"]]
    locked = [e for e in errors if "locked" in e.lower() or "busy" in e.lower()]
    assert not locked, f"{len(locked)} busy errors reached callers: {locked[:3]}"
    assert not errors, errors[:5]
    assert not seen["errors"], seen["errors"][:5]
    assert seen["pages"] >= 10 and seen["snapshots"] >= 1, seen  # it really read alongside

    expected = {}
    for r in results:
        expected.update(r["committed"])
    assert len(expected) == WRITERS * TRANSACTIONS * 2 // 3
    with Store.open(shared_url) as store:
        rows = actions.list_image_hashes(store, ListingQuery("db", metadata=True)).rows
        found = {r.identifier: list(r.metadata) for r in rows}
        assert found == expected  # zero lost rows, zero lost metadata, nothing extra
        assert store.count(ListingQuery("db")).value == len(rows)
        assert [r.position for r in rows] == list(range(1, len(rows) + 1))
        db_id = store.database_id("db")
        marks = store.sql.all("SELECT ordinal, entry_id FROM hl_mark WHERE database_id = ? ORDER BY ordinal", (db_id,))
        assert [tuple(m) for m in marks] == [(r.position, r.key) for r in rows if r.position % MARK_SPACING == 0]
        # Each writer's own entries keep the order it made them in.
        for w in range(WRITERS):
            mine = [r.identifier for r in rows if r.identifier.startswith(f"w{w}-")]
            assert mine == sorted(mine)
        journal = store.history()
        assert len(journal) == 1 + WRITERS * TRANSACTIONS
        if store.backend == "sqlite":
            assert store.sql.one("PRAGMA integrity_check")[0] == "ok"


def metadata_flipper(url: str, stop: str) -> int:
    """Add and remove one metadata item on entry after entry until told to stop."""
    store = Store.open(url)
    done = 0
    try:
        while not Path(stop).exists() and done < 3000:
            identifier = f"e{done % 50:02d}"
            actions.add_metadata(store, "db", identifier, "flag", "on")
            actions.remove_metadata(store, "db", identifier, "flag")
            done += 1
    finally:
        store.close()
    return done


def test_a_page_never_shows_half_a_change(sqlite_url, tmp_path):
    """The window's own path (actions.list_image_hashes, no snapshot of the caller's)."""
    with Store.open(sqlite_url) as store:
        actions.create_database(store, "db")
        for i in range(50):
            actions.add_entry(store, "db", actions.prepare_entry(
                None, identifier=f"e{i:02d}", label="l", metadata=[("k", "v")], phash=i))
    stop = tmp_path / "stop"
    half = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        flipping = pool.submit(metadata_flipper, sqlite_url, str(stop))
        with Store.open(sqlite_url) as store:
            began = time.monotonic()
            while not half and not flipping.done() and time.monotonic() - began < 60:
                rows = actions.list_image_hashes(store, ListingQuery("db", metadata=True)).rows
                half = [r for r in rows if r.meta_count != len(r.metadata)]
        stop.touch()
        flipping.result()
    assert not half, f"{half[0].identifier}: meta_count {half[0].meta_count} but metadata {half[0].metadata}"


# -- sharing a store: the roles docs/scale.md documents ---------------------------------------


def _seeded(url):
    with Store.open(url) as store:
        actions.create_database(store, "db")
        actions.add_entry(store, "db", actions.prepare_entry(None, identifier="a", label="l", metadata=[("k", "v")],
                                                             phash=1))


def _check_roles(editor_url, auditor_url, server_refusal):
    """An editor changes entries (one by one and in bulk); an auditor reads and is refused
    every write with a HashlensError, never a traceback, and nothing changes."""
    from app.store.bulk import append_entries

    with Store.open(editor_url) as editor:
        actions.add_metadata(editor, "db", "a", "seen", "yes")
        actions.add_entry(editor, "db", actions.prepare_entry(None, identifier="b", label="l", phash=2))
        append_entries(editor, "db", [actions.prepare_entry(None, identifier=f"c{i}", label="l", phash=i)
                                      for i in range(10)])
    for read_only in (True, False):
        with Store.open(auditor_url, read_only=read_only) as auditor:
            rows = actions.list_image_hashes(auditor, ListingQuery("db", metadata=True)).rows
            assert [r.identifier for r in rows][:2] == ["a", "b"] and len(rows) == 12
            assert rows[0].metadata == (("k", "v"), ("seen", "yes"))
            for change in (lambda: actions.add_metadata(auditor, "db", "a", "x", "y"),
                           lambda: actions.remove_image_hash(auditor, "db", "b"),
                           lambda: actions.create_database(auditor, "other")):
                with pytest.raises(HashlensError) as caught:
                    change()
                assert "Traceback" not in caught.value.description
                if read_only:  # Hashlens refuses before the server is asked
                    assert caught.value.failure is Failure.READ_ONLY
                else:
                    assert server_refusal(caught.value), caught.value.description
    with Store.open(editor_url) as editor:
        assert editor.count(ListingQuery("db")).value == 12
        assert [d.name for d in editor.list_databases()] == ["db"]


@pytest.mark.server
def test_postgresql_editor_and_auditor_roles(pg_url):
    import uuid

    import psycopg

    from tests.conftest import PG

    _seeded(pg_url)  # as the owner, which creates the tables
    name = pg_url.rsplit("/", 1)[1]
    editor, auditor = f"hl_editor_{uuid.uuid4().hex[:8]}", f"hl_auditor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname=name, autocommit=True, **PG) as admin:
        for sql in (
            f"CREATE ROLE {editor} LOGIN",
            f'GRANT CONNECT ON DATABASE "{name}" TO {editor}',
            f"GRANT USAGE ON SCHEMA public TO {editor}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {editor}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {editor}",
            f"CREATE ROLE {auditor} LOGIN",
            f'GRANT CONNECT ON DATABASE "{name}" TO {auditor}',
            f"GRANT USAGE ON SCHEMA public TO {auditor}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {auditor}",
            f"ALTER ROLE {auditor} SET default_transaction_read_only = on",
        ):
            admin.execute(sql)
        try:
            _check_roles(pg_url.replace("postgres@", f"{editor}@"), pg_url.replace("postgres@", f"{auditor}@"),
                         lambda error: error.failure is Failure.READ_ONLY and "read-only transaction" in error.description)
        finally:
            for role in (editor, auditor):
                admin.execute(f"DROP OWNED BY {role}")
                admin.execute(f"DROP ROLE {role}")


@pytest.mark.server
def test_mariadb_editor_and_auditor_accounts(mysql_url):
    import uuid

    import pymysql

    from tests.conftest import MY

    _seeded(mysql_url)
    name = mysql_url.rsplit("/", 1)[1]
    editor, auditor = f"hl_ed_{uuid.uuid4().hex[:8]}", f"hl_au_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(autocommit=True, **MY)
    try:
        with admin.cursor() as cur:
            for account in (editor, auditor):
                cur.execute(f"CREATE USER '{account}'@'127.0.0.1' IDENTIFIED BY 'pw-{account}'")
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO '{editor}'@'127.0.0.1'")
            cur.execute(f"GRANT SELECT ON `{name}`.* TO '{auditor}'@'127.0.0.1'")
        # MariaDB names the refused command; Hashlens reports it as read-only with a hint.
        _check_roles(mysql_url.replace("root@", f"{editor}:pw-{editor}@"),
                     mysql_url.replace("root@", f"{auditor}:pw-{auditor}@"),
                     lambda error: error.failure is Failure.READ_ONLY and "command denied" in error.description
                     and "write rights" in error.description)
    finally:
        with admin.cursor() as cur:
            for account in (editor, auditor):
                cur.execute(f"DROP USER IF EXISTS '{account}'@'127.0.0.1'")
        admin.close()
