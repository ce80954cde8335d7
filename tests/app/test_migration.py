"""Schema 1 -> 2 (issue 11 item 3): hl_entry.phash becomes nullable, a Media Server's own
hasimagedata gets its column, and only the entries the journal proves hold the old
`--no-phash` placeholder become "not known"; on every backend, after a backup, with
images and metadata intact."""

from __future__ import annotations

import sqlite3

import pytest

from app.domain import JournalEntry, ListingQuery, NewEntry
from app.mediaserver_codec import names
from app.services import actions, imaging
from app.store import Store
from app.store.migrations import proven_placeholders

from tests.conftest import make_image


def _v1(store: Store) -> None:
    """Turn a fresh schema-2 store into what version 1 wrote."""
    if store.backend == "sqlite":
        store.sql.exec("ALTER TABLE hl_entry DROP COLUMN declared_image_data")
        old = store.sql.one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'hl_entry'")[0]
        new = old.replace('"phash" INTEGER,', '"phash" INTEGER NOT NULL,', 1)
        assert new != old
        version = store.sql.one("PRAGMA schema_version")[0]
        with store.writing():
            store.sql.exec("PRAGMA writable_schema = ON")
            store.sql.exec("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'hl_entry'", (new,))
            store.sql.exec(f"PRAGMA schema_version = {version + 1}")
            store.sql.exec("PRAGMA writable_schema = OFF")
    elif store.backend == "postgresql":
        store.sql.exec("ALTER TABLE hl_entry DROP COLUMN declared_image_data")
        store.sql.exec("ALTER TABLE hl_entry ALTER COLUMN phash SET NOT NULL")
    else:
        store.sql.exec("ALTER TABLE hl_entry DROP COLUMN declared_image_data")
        store.sql.exec("ALTER TABLE hl_entry MODIFY phash BIGINT NOT NULL")
    with store.writing():
        store.sql.exec("UPDATE hl_store_info SET value = '1' WHERE name = 'schema_version'")


def _plain(identifier: str, phash: int, metadata=()) -> NewEntry:
    return NewEntry(identifier, identifier, phash, None, None, None, None, None, tuple(metadata), 1)


def _old_import(store: Store, database: str, identifiers: list[str], *, replaced: int = 0) -> None:
    """What a version-1 `--no-phash` import did: placeholder 0, the first 1,000
    identifiers journalled (its MAX_LISTED)."""
    with store.group(names.IMPORT_IMAGE_HASHES, database) as journal:
        for ident in identifiers:
            store.add_entry(database, _plain(ident, 0, [("from", "ms")]))
        journal.update({"added": len(identifiers), "replaced": replaced, "unknown_phash": len(identifiers),
                        "unknown_phash_identifiers": identifiers[:1000]})


def _phashes(store: Store, database: str) -> dict[str, int | None]:
    return {r.identifier: r.phash for b in store.iter_listing(ListingQuery(database)) for r in b}


def test_only_journal_proven_placeholders_become_not_known(store_url, tmp_path):
    with Store.open(store_url) as store:
        actions.create_database(store, "D")
        hashed = imaging.hash_image(make_image(3))
        store.add_entry("D", actions.prepare_entry(hashed, identifier="with-image", label="x",
                                                   metadata=[("k", "v")]))
        store.add_entry("D", _plain("real-zero", 0))  # a real image can hash to 0: trained, not imported
        _old_import(store, "D", ["a", "b", "c", "gone"])
        store.remove_entry("D", "b")
        store.add_entry("D", _plain("b", 0))  # trained again: its 0 is a real hash now
        store.rename_entry("D", "c", "c2")  # the placeholder goes with the entry
        store.remove_entry("D", "gone")
        store.rename_database("D", "E")
        _v1(store)
    with Store.open(store_url) as store:
        assert store.schema_version == 1 and store.read_only and store.needs_migration
        backup = store.migrate(tmp_path / "backup.db")
        assert store.schema_version == 2 and not store.read_only
        notes = "\n".join(store.migration_notes)
        assert "2 entries imported without a pHash" in notes and "2 entries keep the pHash 0000000000000000" in notes
        phashes = _phashes(store, "E")
        assert phashes["a"] is None and phashes["c2"] is None
        assert phashes["b"] == 0 and phashes["real-zero"] == 0 and phashes["with-image"] not in (0, None)
        # Nothing that hangs off hl_entry was lost (on SQLite the table was not rebuilt).
        assert store.image("E", "with-image").data is not None
        rows = [r for b in store.iter_listing(ListingQuery("E", metadata=True)) for r in b]
        assert dict(rows[0].metadata) == {"k": "v"} and all(r.metadata == (("from", "ms"),) for r in rows
                                                           if r.identifier in ("a", "c2"))
        # The new schema takes a NULL pHash and a declared hasimagedata.
        store.add_entry("E", NewEntry("ms", "ms", None, None, None, None, None, None, (), 1, True))
        row = store.list_page(ListingQuery("E", identifiers=("ms",))).rows[0]
        assert row.phash is None and row.declared_image_data is True and not row.has_image_data
        if store.backend == "sqlite":
            assert store.sql.one("PRAGMA integrity_check")[0] == "ok"
            assert store.check_damage() is None
    if backup is not None:  # SQLite: the backup is the version-1 store as it was
        with Store.open(f"sqlite:///{backup}", read_only=True) as old:
            assert old.schema_version == 1 and _phashes(old, "E")["a"] == 0


def test_migration_runs_twice_safely(store_url):
    """MySQL commits DDL implicitly: a step must be safe to run again (reliability D4)."""
    from app.store.migrations import to_version_2

    with Store.open(store_url) as store:
        actions.create_database(store, "D")
        _old_import(store, "D", ["a"])
        _v1(store)
    with Store.open(store_url) as store:
        store.read_only = False
        with store.writing():
            to_version_2(store)
        with store.writing():
            to_version_2(store)
        store.sql.exec("UPDATE hl_store_info SET value = '2' WHERE name = 'schema_version'")
    with Store.open(store_url) as store:
        assert _phashes(store, "D") == {"a": None}


def _record(action, database, identifier=None, **params) -> JournalEntry:
    return JournalEntry(0, "u", action, database, identifier, params)


def test_proof_rules():
    imp = names.IMPORT_IMAGE_HASHES
    assert proven_placeholders([_record(imp, "D", unknown_phash_identifiers=["a", "b"])]) == {"D": {"a", "b"}}
    # A later import that replaced entries: which ones the journal does not say, so no proof.
    assert proven_placeholders([_record(imp, "D", unknown_phash_identifiers=["a"]),
                                _record(imp, "D", replaced=3, unknown_phash_identifiers=["z"])]) == {"D": {"z"}}
    # Appends add new identifiers only; metadata changes keep the pHash.
    assert proven_placeholders([_record(imp, "D", unknown_phash_identifiers=["a"]),
                                _record(names.APPEND_IMAGE_HASHES, "D", entries=5),
                                _record(names.ADD_IMAGE_HASH_METADATA, "D", "a", key="k", value="v")]) == {"D": {"a"}}
    # A whole-database import, an unknown group, removing or re-creating the database: no proof.
    for action in (names.IMPORT_IMAGE_HASH_DATABASE, "SomethingNew", names.REMOVE_IMAGE_HASH_DATABASE,
                   names.CREATE_IMAGE_HASH_DATABASE):
        assert proven_placeholders([_record(imp, "D", unknown_phash_identifiers=["a"]), _record(action, "D")]) == {}
    # Moves carry the proof to the other database; an unknown per-entry action ends it.
    assert proven_placeholders([_record(imp, "D", unknown_phash_identifiers=["a", "b"]),
                                _record(names.MOVE_IMAGE_HASH, "D", "a", newdatabase="F"),
                                _record("Retrain", "D", "b")]) == {"F": {"a"}}
    # Junk in a journal written by another program is ignored, not trusted.
    assert proven_placeholders([_record(imp, "D", unknown_phash_identifiers=[1, None, "a"])]) == {"D": {"a"}}


def test_placeholders_past_the_journalled_names_stay(tmp_path):
    """Version 1 named at most 1,000 entries per import: the rest are not proven."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
        _old_import(store, "D", [f"e{i}" for i in range(2000)])
        _v1(store)
        before = len(store.history())
    with Store.open(url) as store:
        store.migrate(tmp_path / "b.db")
        assert len(store.history()) == before and store.list_databases()[0].entry_count == 2000
        values = list(_phashes(store, "D").values())
        assert values.count(None) == 1000 and values.count(0) == 1000
        assert "1,000 entries keep the pHash" in "\n".join(store.migration_notes)
    with sqlite3.connect(tmp_path / "s.db") as db:
        notnull = [r[3] for r in db.execute("PRAGMA table_info(hl_entry)") if r[1] == "phash"][0]
    db.close()
    assert notnull == 0
