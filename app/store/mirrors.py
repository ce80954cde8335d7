"""Mirrors of Media Server databases in the store: the mark of where each comes from, and its complete snapshots.

A mirror is named like a database but kept apart from the local databases (`hl_mirror`)
until entries with no pHash can live among them (issue 11 item 4): its entries are the
rows of its snapshots. Each snapshot is written whole in one write transaction, so a
pull that fails, is cancelled or is killed leaves every earlier snapshot as it was.
Snapshot rows are read back in identifier order (the unique index walks it; names
compare byte for byte on every backend), which is what a difference needs.

The tables are created the first time a store holds a mirror; older versions of
Hashlens ignore them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from peewee import AutoField, BigAutoField, BigIntegerField, BooleanField, ForeignKeyField, IntegerField, TextField

from app import faults
from app.domain import Failure, HashlensError, MirrorSource, SnapshotInfo
from app.diff import DiffEntry, metadata_json
from app.store.bulk import _write
from app.store.schema import BaseModel, NameField
from app.store.store import IN_CHUNK, Store

BATCH = 5000


class Mirror(BaseModel):
    """A mirror: its local name and the Media Server database it copies."""

    id = AutoField()
    name = NameField(max_length=254, unique=True)
    server_url = TextField()
    remote_database = NameField(max_length=254)
    created_at = BigIntegerField()

    class Meta:
        table_name = "hl_mirror"


class Snapshot(BaseModel):
    """One complete pull of a mirror."""

    id = AutoField()
    mirror = ForeignKeyField(Mirror, column_name="mirror_id", on_delete="CASCADE", index=False)
    number = IntegerField()
    taken_at = BigIntegerField()
    server_url = TextField()
    remote_database = NameField(max_length=254)
    entry_count = BigIntegerField(default=0)

    class Meta:
        table_name = "hl_snapshot"
        indexes = ((("mirror", "number"), True),)


class SnapshotEntry(BaseModel):
    """An entry as Media Server listed it: no pHash, no image bytes (MS). `metadata` is
    the items as a JSON array of [key, value] pairs, in the server's order."""

    id = BigAutoField()
    snapshot = ForeignKeyField(Snapshot, column_name="snapshot_id", on_delete="CASCADE", index=False)
    identifier = NameField(max_length=254)
    label = NameField(max_length=254, null=True)
    has_image_data = BooleanField(null=True)
    metadata = TextField()

    class Meta:
        table_name = "hl_snapshot_entry"
        indexes = ((("snapshot", "identifier"), True),)


TABLES = [Mirror, Snapshot, SnapshotEntry]


def _has_tables(store: Store) -> bool:
    return store.db.table_exists("hl_snapshot_entry")


def _ensure_tables(store: Store) -> None:
    if _has_tables(store):
        return
    if store.read_only:
        raise HashlensError(Failure.READ_ONLY, store.read_only_reason())
    with store.db.bind_ctx(TABLES), store.writing():
        store.db.create_tables(TABLES, safe=True)


def mirror_of(store: Store, name: str) -> MirrorSource | None:
    """Where the mirror `name` comes from, or None when there is no such mirror."""
    if not _has_tables(store):
        return None
    row = store.sql.one("SELECT server_url, remote_database FROM hl_mirror WHERE name = ?", (name,))
    return MirrorSource(row[0], row[1]) if row else None


def list_mirrors(store: Store) -> list[tuple[str, MirrorSource, SnapshotInfo | None]]:
    """Every mirror by name, with its latest snapshot."""
    if not _has_tables(store):
        return []
    out = []
    for name, url, remote in store.sql.all("SELECT name, server_url, remote_database FROM hl_mirror ORDER BY name"):
        found = snapshots(store, name)
        out.append((name, MirrorSource(url, remote), found[-1] if found else None))
    return out


def check_mirror_target(store: Store, name: str, source: MirrorSource) -> None:
    """Refuse to pull `source` into `name` when `name` is a local database, or a mirror of
    another source: a pull never overwrites what did not come from the same place. A
    read-only store is refused here too, before a pull spends minutes reading."""
    if store.read_only:
        raise HashlensError(Failure.READ_ONLY, f"Cannot pull into '{name}': {store.read_only_reason()}")
    if store.database_exists(name):
        raise HashlensError(
            Failure.DATABASE_EXISTS,
            f"'{name}' is a local database, not a mirror of {source.describe()}; nothing was pulled. "
            "Pull into another name with --into.", parameter="into")
    current = mirror_of(store, name)
    if current is not None and current != source:
        raise HashlensError(
            Failure.DATABASE_EXISTS,
            f"'{name}' is a mirror of {current.describe()}, not of {source.describe()}; nothing was pulled. "
            "Pull into another name with --into.", parameter="into")


def commit_snapshot(store: Store, name: str, source: MirrorSource, entries: Iterable[DiffEntry], *,
                    taken_at: int) -> SnapshotInfo:
    """Store `entries` as the next snapshot of mirror `name` (made if new), all in one
    transaction. A duplicate identifier refuses the whole snapshot."""
    _ensure_tables(store)
    with store.writing():
        check_mirror_target(store, name, source)
        row = store.sql.one("SELECT id FROM hl_mirror WHERE name = ?", (name,))
        if row is None:
            mirror_id = store.sql.insert(
                "INSERT INTO hl_mirror (name, server_url, remote_database, created_at) VALUES (?, ?, ?, ?)",
                (name, source.url, source.database, taken_at))
        else:
            mirror_id = row[0]
        number = (store.sql.one("SELECT MAX(number) FROM hl_snapshot WHERE mirror_id = ?", (mirror_id,))[0] or 0) + 1
        snapshot_id = store.sql.insert(
            "INSERT INTO hl_snapshot (mirror_id, number, taken_at, server_url, remote_database, entry_count) "
            "VALUES (?, ?, ?, ?, ?, 0)", (mirror_id, number, taken_at, source.url, source.database))
        cursor = store.db.cursor()
        count = 0
        batch: list[tuple] = []
        for entry in entries:
            batch.append((snapshot_id, entry.identifier, entry.label, entry.has_image_data,
                          metadata_json(entry.metadata)))
            if len(batch) == BATCH:
                count += _write_batch(store, cursor, batch, name)
                batch = []
        if batch:
            count += _write_batch(store, cursor, batch, name)
        store.sql.exec("UPDATE hl_snapshot SET entry_count = ? WHERE id = ?", (count, snapshot_id))
        faults.checkpoint("pull.commit")
    return SnapshotInfo(number, taken_at, source, count)


def _write_batch(store: Store, cursor, batch: list[tuple], name: str) -> int:
    faults.checkpoint("pull.batch")
    try:
        _write(store, cursor, "hl_snapshot_entry", "snapshot_id, identifier, label, has_image_data, metadata", batch)
    except HashlensError as exc:
        if "unique" in exc.description.lower() or "duplicate" in exc.description.lower():
            raise HashlensError(Failure.STORE_FAILED, f"The pull of '{name}' listed an identifier twice; the server's "
                                                      "answer cannot be a snapshot and nothing was stored.") from None
        raise
    return len(batch)


def snapshots(store: Store, name: str) -> list[SnapshotInfo]:
    """The mirror's snapshots, oldest first; [] when `name` is not a mirror."""
    if not _has_tables(store):
        return []
    rows = store.sql.all(
        "SELECT s.number, s.taken_at, s.server_url, s.remote_database, s.entry_count FROM hl_snapshot s "
        "JOIN hl_mirror m ON m.id = s.mirror_id WHERE m.name = ? ORDER BY s.number", (name,))
    return [SnapshotInfo(n, t, MirrorSource(u, d), c) for n, t, u, d, c in rows]


def snapshot_entries(store: Store, name: str, number: int) -> Iterator[DiffEntry]:
    """A snapshot's entries in identifier order, a batch of rows at a time (keyset
    paging on the unique index: no long-held cursor, memory of one batch)."""
    row = store.sql.one("SELECT s.id FROM hl_snapshot s JOIN hl_mirror m ON m.id = s.mirror_id "
                     "WHERE m.name = ? AND s.number = ?", (name, number)) if _has_tables(store) else None
    if row is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{name}' has no snapshot {number}.", parameter="database")
    snapshot_id = row[0]
    after = None
    while True:
        if after is None:
            rows = store.sql.all("SELECT identifier, label, has_image_data, metadata FROM hl_snapshot_entry "
                              f"WHERE snapshot_id = ? ORDER BY identifier LIMIT {BATCH}", (snapshot_id,))
        else:
            rows = store.sql.all("SELECT identifier, label, has_image_data, metadata FROM hl_snapshot_entry "
                              f"WHERE snapshot_id = ? AND identifier > ? ORDER BY identifier LIMIT {BATCH}",
                              (snapshot_id, after))
        for identifier, label, has_image_data, metadata in rows:
            yield DiffEntry(identifier, label, None if has_image_data is None else bool(has_image_data), metadata)
        if len(rows) < BATCH:
            return
        after = rows[-1][0]


def entries_by_identifier(store: Store, name: str) -> Iterator[DiffEntry]:
    """A database's entries in identifier order, as a difference compares them: a local
    database's rows, or a mirror's latest snapshot."""
    if not store.database_exists(name):
        found = snapshots(store, name)
        if found:
            yield from snapshot_entries(store, name, found[-1].number)
            return
    db_id = store.database_id(name)
    after = None
    while True:
        where, params = ("", (db_id,)) if after is None else (" AND identifier > ?", (db_id, after))
        rows = store.sql.all(f"SELECT id, identifier, label, has_image_data FROM hl_entry WHERE database_id = ?{where} "
                          f"ORDER BY identifier LIMIT {BATCH}", params)
        metadata: dict[int, list[tuple[str, str]]] = {}
        keys = [r[0] for r in rows]
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start:start + IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for entry_id, key, value in store.sql.all(
                    f"SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE entry_id IN ({marks}) "
                    "ORDER BY entry_id, id", chunk):
                metadata.setdefault(entry_id, []).append((key, value))
        for key, identifier, label, has_image_data in rows:
            yield DiffEntry(identifier, label, bool(has_image_data), tuple(metadata.get(key, ())))
        if len(rows) < BATCH:
            return
        after = rows[-1][1]
