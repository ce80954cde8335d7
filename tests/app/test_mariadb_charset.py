"""A MariaDB database whose character set is not utf8mb4 is refused at open, with the
statement that fixes it (issue 14), on the real local server."""

from __future__ import annotations

import uuid

import pytest

from app.domain import HashlensError, NewEntry
from app.store import Store
from tests.conftest import MY, _my_admin

pytestmark = pytest.mark.server


@pytest.fixture
def latin1_database():
    name = f"hl_test_{uuid.uuid4().hex[:12]}"
    admin = _my_admin()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    yield name, admin
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


def _url(name: str) -> str:
    return f"mysql://{MY['user']}@{MY['host']}:{MY['port']}/{name}"


def _tables(admin, name: str) -> list[str]:
    with admin.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (name,))
        return [r[0] for r in cur.fetchall()]


def _entry(label: str) -> NewEntry:
    return NewEntry(identifier="sku-1", label=label, phash=5, image_data=None, image_format=None,
                    width=None, height=None, sha256=None, metadata=(("brand", "Acmé ✓"),))


def test_a_latin1_database_is_refused_at_open_with_the_fix_and_left_untouched(latin1_database):
    name, admin = latin1_database
    with pytest.raises(HashlensError) as raised:
        Store.open(_url(name))
    message = str(raised.value)
    assert "utf8mb4" in message and "latin1" in message
    assert f"ALTER DATABASE `{name}` CHARACTER SET utf8mb4" in message
    assert _tables(admin, name) == []  # nothing was created in it

    # The advice works: after it, the store opens and takes any label.
    with admin.cursor() as cur:
        cur.execute(f"ALTER DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    store = Store.open(_url(name))
    try:
        store.create_database("Products")
        store.add_entry("Products", _entry("red shoe ✓ 👟"))
        assert [r.label for r in store.list_page(_query("Products")).rows] == ["red shoe ✓ 👟"]
    finally:
        store.close()


def test_a_store_whose_tables_were_made_latin1_is_refused_naming_them(mysql_url):
    Store.open(mysql_url).close()
    name = mysql_url.rsplit("/", 1)[1]
    admin = _my_admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f"ALTER TABLE `{name}`.hl_journal CONVERT TO CHARACTER SET latin1")
        with pytest.raises(HashlensError) as raised:
            Store.open(mysql_url, read_only=True)
        assert "hl_journal" in str(raised.value)
        assert "ALTER TABLE `hl_journal` CONVERT TO CHARACTER SET utf8mb4" in str(raised.value)
        with admin.cursor() as cur:
            cur.execute(f"ALTER TABLE `{name}`.hl_journal CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        Store.open(mysql_url).close()
    finally:
        admin.close()


def _query(database: str):
    from app.domain import ListingQuery

    return ListingQuery(database=database)
