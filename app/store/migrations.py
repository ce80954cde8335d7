"""The steps that bring an older store up to this version's schema (`schema.MIGRATIONS`).

Each step runs inside the one write transaction `Store.migrate` opens, after the backup,
and records nothing itself: the new version is written in the same transaction. On
MySQL/MariaDB DDL commits implicitly, so every step there is safe to run twice
(reliability D4).
"""

from __future__ import annotations

from collections.abc import Iterable

from app.domain import JournalEntry, counted
from app.mediaserver_codec import names
from app.store import schema
from app.store.sql import IN_CHUNK, chunks

# The placeholder version 1 stored for an entry imported without a pHash (`--no-phash`).
OLD_PLACEHOLDER = 0

# Per-entry actions that leave the entry's pHash as it was.
_KEEPS_PHASH = {
    names.NULL_IMAGE_HASH_IMAGE_DATA, names.RELABEL_IMAGE_HASH_IMAGE, names.ADD_IMAGE_HASH_METADATA,
    names.UPDATE_IMAGE_HASH_METADATA, names.REMOVE_IMAGE_HASH_METADATA,
}


def proven_placeholders(records: Iterable[JournalEntry]) -> dict[str, set[str]]:
    """Which entries, by database name and identifier, the journal proves still hold the
    placeholder pHash a version-1 `--no-phash` import stored.

    A real image can hash to 0, so only what the journal proves counts (ours): an import
    names the entries it stored with the placeholder (`unknown_phash_identifiers`); a
    later change that may have given such an entry a real hash ends the proof, and
    renames and moves carry it along. A change the journal does not describe entry by
    entry (a later import that replaced entries, a whole-database import, an action this
    version does not know) ends the proof for its whole database."""
    proven: dict[str, set[str]] = {}
    for r in records:
        database, identifier, params = r.database, r.identifier, r.params
        if database is None:
            continue
        if r.action == names.IMPORT_IMAGE_HASHES:
            if params.get("replaced"):
                proven.pop(database, None)
            listed = params.get("unknown_phash_identifiers") or ()
            if listed:
                proven.setdefault(database, set()).update(i for i in listed if isinstance(i, str))
        elif r.action == names.APPEND_IMAGE_HASHES:
            continue  # appends new identifiers only; a taken one fails the whole batch
        elif r.action in (names.CREATE_IMAGE_HASH_DATABASE, names.REMOVE_IMAGE_HASH_DATABASE):
            proven.pop(database, None)
        elif r.action == names.RENAME_IMAGE_HASH_DATABASE:
            moved = proven.pop(database, None)
            new = params.get("newdatabase")
            if moved and isinstance(new, str):
                proven[new] = moved
        elif identifier is None:
            proven.pop(database, None)
        elif r.action in _KEEPS_PHASH:
            continue
        elif r.action in (names.RENAME_IMAGE_HASH, names.MOVE_IMAGE_HASH):
            held = proven.get(database)
            if held is not None and identifier in held:
                held.discard(identifier)
                target = params.get("newdatabase", database) if r.action == names.MOVE_IMAGE_HASH else database
                new_identifier = params.get("newidentifier", identifier)
                if isinstance(target, str) and isinstance(new_identifier, str):
                    proven.setdefault(target, set()).add(new_identifier)
        else:  # trained again, removed, or an action this version does not know
            held = proven.get(database)
            if held is not None:
                held.discard(identifier)
    return {d: ids for d, ids in proven.items() if ids}


def _nullable_phash_sqlite(store) -> None:
    """SQLite cannot drop a NOT NULL with ALTER TABLE. Its documented procedure for removing
    a NOT NULL constraint (which does not change the file format) edits the table's
    definition in place; the table is not rebuilt, so the images and metadata that refer
    to its rows (ON DELETE CASCADE) are never touched."""
    columns = {r[1]: r for r in store.sql.all("PRAGMA table_info(hl_entry)")}
    if not columns["phash"][3]:
        return  # already nullable
    old = store.sql.one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'hl_entry'")[0]
    new = old.replace('"phash" INTEGER NOT NULL', '"phash" INTEGER', 1)
    if new == old:
        raise RuntimeError("the definition of hl_entry is not the one version 1 wrote")
    version = store.sql.one("PRAGMA schema_version")[0]
    store.sql.exec("PRAGMA writable_schema = ON")
    try:
        store.sql.exec("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'hl_entry'", (new,))
        store.sql.exec(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        store.sql.exec("PRAGMA writable_schema = OFF")
    if [r for r in store.sql.all("PRAGMA table_info(hl_entry)") if r[1] == "phash"][0][3]:
        raise RuntimeError("hl_entry.phash is still NOT NULL")


def to_version_2(store) -> None:
    """hl_entry.phash may be NULL and hl_entry.declared_image_data exists; the entries the
    journal proves hold the `--no-phash` placeholder get NULL (their pHash is not known)."""
    backend = store.backend
    columns = {c.name for c in store.db.get_columns("hl_entry")}
    boolean = {"sqlite": "INTEGER", "postgresql": "BOOLEAN", "mysql": "BOOL"}[backend]
    if "declared_image_data" not in columns:
        store.sql.exec(f"ALTER TABLE hl_entry ADD COLUMN declared_image_data {boolean} NULL")
    if backend == "sqlite":
        _nullable_phash_sqlite(store)
    elif backend == "postgresql":
        store.sql.exec("ALTER TABLE hl_entry ALTER COLUMN phash DROP NOT NULL")
    else:
        store.sql.exec("ALTER TABLE hl_entry MODIFY phash BIGINT NULL")
    proven = proven_placeholders(r for batch in store.journal.iter() for r in batch)
    nulled = 0
    for database, identifiers in sorted(proven.items()):
        row = store.sql.one("SELECT id FROM hl_database WHERE name = ?", (database,))
        if row is None:
            continue
        for chunk in chunks(sorted(identifiers), IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            nulled += store.sql.exec(
                f"UPDATE hl_entry SET phash = NULL WHERE database_id = ? AND phash = ? AND identifier IN ({marks})",
                (row[0], OLD_PLACEHOLDER, *chunk)).rowcount
    zeros = store.sql.one("SELECT COUNT(*) FROM hl_entry WHERE phash = ?", (OLD_PLACEHOLDER,))[0]
    notes = store.migration_notes
    notes.append(f"{counted(nulled, 'entry', 'entries')} imported without a pHash (the journal names them) "
                 f"{'now says' if nulled == 1 else 'now say'} 'not known' "
                 "instead of the placeholder 0000000000000000.")
    if zeros:
        notes.append(f"{counted(zeros, 'entry', 'entries')} {'keeps' if zeros == 1 else 'keep'} the pHash "
                     "0000000000000000: the journal does not prove it a "
                     "placeholder (a real image can hash to 0). 'hashlens attach-images' can compute them.")


schema.MIGRATIONS[1] = to_version_2
