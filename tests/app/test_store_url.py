"""Store URLs and opening stores: defaults, refusals and read-only opens."""

from pathlib import Path

import pytest

from app.domain import Failure, HashlensError
from app.services import actions
from app.store import Store, parse_store_url, resolve_store_url


@pytest.mark.parametrize("url, backend, detail", [
    ("sqlite:///rel/x.db", "sqlite", Path("rel/x.db")),
    ("sqlite:////abs/x.db", "sqlite", Path("/abs/x.db")),
    ("sqlite:///a%20b%23c.db", "sqlite", Path("a b#c.db")),
    ("plain/file.db", "sqlite", Path("plain/file.db")),
    ("postgresql://u:p@h:5433/db", "postgresql", "h"),
    ("postgres://h/db", "postgresql", "h"),
    ("mysql://root@127.0.0.1/test", "mysql", "127.0.0.1"),
    ("mariadb://root@127.0.0.1/test", "mysql", "127.0.0.1"),
])
def test_parse(url, backend, detail):
    location = parse_store_url(url)
    assert location.backend == backend
    assert (location.path if backend == "sqlite" else location.host) == detail


@pytest.mark.parametrize("url, fragment", [
    ("sqlite://x.db", "three slashes"),
    ("sqlite:///:memory:", "in-memory"),
    ("oracle://x/y", "unknown scheme"),
    ("postgresql://host", "name the database"),
    ("postgresql://host:notaport/db", "port"),
    ("", "empty"),
])
def test_refused(url, fragment):
    with pytest.raises(HashlensError, match=fragment):
        parse_store_url(url)


def test_password_never_displayed():
    assert "secret" not in parse_store_url("postgresql://u:secret@h/db").display()


def test_resolution_order(monkeypatch):
    monkeypatch.setenv("HASHLENS_STORE", "sqlite:///env.db")
    assert resolve_store_url("sqlite:///flag.db") == "sqlite:///flag.db"
    assert resolve_store_url(None) == "sqlite:///env.db"
    monkeypatch.delenv("HASHLENS_STORE")
    assert resolve_store_url(None).endswith("hashlens.db")


def test_read_only_open_creates_nothing(tmp_path):
    target = tmp_path / "we?ird #name.db"
    with pytest.raises(HashlensError, match="does not exist"):
        Store.open(f"sqlite:///{target}", read_only=True)
    assert list(tmp_path.iterdir()) == []
    with Store.open(f"sqlite:///{target}") as store:
        actions.create_database(store, "D")
    with Store.open(f"sqlite:///{target}", read_only=True) as store:
        assert [d.name for d in store.list_databases()] == ["D"]
        with pytest.raises(HashlensError, match="read-only"):
            actions.create_database(store, "E")


@pytest.mark.parametrize("content, fragment", [
    (b"this is not a database at all" * 100, "is damaged or is not a Hashlens store"),
    (b"", "is not a Hashlens store"),
])
def test_foreign_or_damaged_files_are_refused_and_left_alone(tmp_path, content, fragment):
    path = tmp_path / "foreign.db"
    path.write_bytes(content)
    with pytest.raises(HashlensError, match=fragment):
        Store.open(f"sqlite:///{path}", read_only=True)
    assert path.read_bytes() == content


def test_other_sqlite_database_is_not_taken_over(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE hl_entry (x)")
    conn.commit()
    conn.close()
    with pytest.raises(HashlensError, match="not a complete Hashlens store"):
        Store.open(f"sqlite:///{path}")


def test_newer_schema_opens_read_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with Store.open(url) as store:
        store.sql.exec("UPDATE hl_store_info SET value = '99' WHERE name = 'schema_version'")
    with Store.open(url) as store:
        assert store.read_only
        with pytest.raises(HashlensError, match="newer Hashlens"):
            actions.create_database(store, "X")


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(HashlensError, match="Cannot open the store"):
        Store.open("postgresql://nobody@127.0.0.1:1/none")


def test_text_that_is_not_utf8_lists_and_exports_refuse_it_by_name(tmp_path):
    """A foreign writer stored invalid UTF-8 as TEXT (reliability S4)."""
    import sqlite3

    from app.aci.actions import handle
    from app.domain import ListingQuery, NewEntry

    url = f"sqlite:///{tmp_path / 's4.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
        with store.writing():
            store.add_entry("D", NewEntry("good", "g", 1, None, None, None, None, None))
            store.add_entry("D", NewEntry("bad", "b", 2, None, None, None, None, None))
    conn = sqlite3.connect(tmp_path / "s4.db")
    conn.execute("UPDATE hl_entry SET identifier = CAST(X'6261649F' AS TEXT) WHERE identifier = 'bad'")
    conn.commit()
    conn.close()
    with Store.open(url) as store:
        rows = store.list_page(ListingQuery("D")).rows
        assert rows[0].identifier == "good" and rows[1].identifier == "bad\udc9f"
        answer = handle(store, "action=ListImageHashes&database=D")
        assert not answer.ok
        assert "cannot carry" in answer.error.description and "bad" in answer.error.description


def test_older_store_is_read_only_until_migrated_with_a_backup(tmp_path, monkeypatch, capsys):
    from app.cli import main
    from app.store import schema

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")

    def add_notes_table(store):
        store.sql.exec("CREATE TABLE hl_notes (id INTEGER PRIMARY KEY, text TEXT)")

    ours = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", ours + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", {ours: add_notes_table})
    with Store.open(url) as store:
        assert store.read_only and store.needs_migration
        with pytest.raises(HashlensError, match="hashlens migrate"):
            actions.create_database(store, "E")
        assert [d.name for d in store.list_databases()] == ["D"]
    assert main(["--store", url, "migrate"]) == 0
    out = capsys.readouterr().out
    assert "Backed up" in out and f"from schema version {ours} to {ours + 1}" in out
    backup = tmp_path / f"old.v{ours}-backup.db"
    with Store.open(f"sqlite:///{backup}", read_only=True) as old:
        assert old.schema_version == ours and [d.name for d in old.list_databases()] == ["D"]
    with Store.open(url) as store:
        assert not store.read_only and store.schema_version == ours + 1
        assert "hl_notes" in store.db.get_tables()
        actions.create_database(store, "E")


def test_failed_migration_step_keeps_the_last_good_version(tmp_path, monkeypatch):
    from app.store import schema

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store.open(url).close()

    def broken(store):
        store.sql.exec("CREATE TABLE hl_half (x)")
        raise HashlensError(Failure.STORE_FAILED, "step failed")

    ours = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", ours + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", {ours: broken})
    with Store.open(url) as store:
        with pytest.raises(HashlensError, match="step failed"):
            store.migrate(tmp_path / "b.db")
    with Store.open(url) as store:
        assert store.schema_version == ours and "hl_half" not in store.db.get_tables()
