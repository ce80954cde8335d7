"""The SQL the audit runs: streaming scans, profiles, consistency and integrity checks.

Every function takes a `Store` and runs portable SQL through its public runner
(`store.sql`: `?` placeholders, `limit`), so the same audit works on SQLite, PostgreSQL and MySQL/MariaDB. Scans walk the
(database_id, id) index by keyset, a batch at a time, so memory stays flat at any size.
Nothing here writes: the auditor reports, it never repairs.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator

import peewee

from app.domain import JournalEntry, PHASH_MASK
from app.mediaserver_codec.names import MOVE_IMAGE_HASH, RENAME_IMAGE_HASH_DATABASE
from app.store.journal import journal_entry, touches
from app.store.sql import IN_CHUNK
from app.store.store import Store

# Changes that carry entries into another database, named in their `newdatabase`.
_RENAMING = (MOVE_IMAGE_HASH, RENAME_IMAGE_HASH_DATABASE)

ENTRY_SCAN_COLUMNS = (
    "e.id, e.identifier, e.label, e.phash, e.sha256, e.has_image_data, e.image_format, "
    "e.width, e.height, e.byte_size, e.meta_count"
)


def _chunks(items, size=IN_CHUNK):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def byte_length(store: Store, column: str) -> str:
    """SQL for the UTF-8 byte length of a text column (the 254-byte rule is in bytes)."""
    return store.db.byte_length(column)


@contextlib.contextmanager
def translated(store: Store):
    """Driver errors as HashlensErrors. The store translates errors of `execute`; a
    damaged SQLite page can also fail later, in `fetchall`, as a bare sqlite3 error."""
    try:
        yield
    except (sqlite3.DatabaseError, peewee.DatabaseError) as exc:
        raise store.sql.translate(exc) from exc


def cancellable(store: Store, cancelled: Callable[[], bool] | None):
    """Let a long statement on this thread's connection stop when `cancelled()` turns true
    where the backend can (SQLite; the store turns the interrupt into CANCELLED). Server
    backends are checked between batches only."""
    return store.db.stop_when(cancelled)


# -- databases and entries --------------------------------------------------------------------


def databases(store: Store) -> list[tuple[int, str, int]]:
    """(id, name, recorded entry count) of every database, by name."""
    return [tuple(r) for r in store.sql.all("SELECT id, name, entry_count FROM hl_database ORDER BY name")]


def iter_entries(store: Store, db_id: int, batch: int = 5000) -> Iterator[list[tuple]]:
    """Every entry of a database in database order, as tuples of ENTRY_SCAN_COLUMNS with
    the pHash unsigned (None when not known) and has_image_data a bool."""
    after = -1
    sql = (
        f"SELECT {ENTRY_SCAN_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND e.id > ? ORDER BY e.id"
        + store.sql.limit(batch)
    )
    while True:
        rows = store.sql.all(sql, (db_id, after))
        if not rows:
            return
        yield [
            (r[0], r[1], r[2], None if r[3] is None else r[3] & PHASH_MASK, r[4], bool(r[5]), r[6], r[7], r[8],
             r[9], r[10]) for r in rows
        ]
        if len(rows) < batch:
            return
        after = rows[-1][0]


def shape_profile(store: Store, db_id: int) -> tuple[list[tuple[str, int]], tuple]:
    """(image format -> entries, by count) and the (min, max) width, height and byte size,
    each None when no entry records it: aggregates, so no row reaches Python."""
    formats = store.sql.all(
        "SELECT image_format, COUNT(*) AS n FROM hl_entry WHERE database_id = ? AND image_format IS NOT NULL "
        "GROUP BY image_format ORDER BY n DESC, image_format",
        (db_id,),
    )
    r = store.sql.one(
        "SELECT MIN(width), MAX(width), MIN(height), MAX(height), MIN(byte_size), MAX(byte_size) "
        "FROM hl_entry WHERE database_id = ?",
        (db_id,),
    )
    spans = tuple(None if r[i] is None else (int(r[i]), int(r[i + 1])) for i in (0, 2, 4))
    return [(f, int(n)) for f, n in formats], spans


def iter_hashes(store: Store, db_id: int, batch: int = 50_000) -> Iterator[tuple[list[int], list[int]]]:
    """(keys, unsigned pHashes) of a database in database order, a batch at a time; entries
    whose pHash is not known (NULL) are left out, as nothing can be compared with them."""
    after = -1
    sql = ("SELECT id, phash FROM hl_entry WHERE database_id = ? AND id > ? AND phash IS NOT NULL ORDER BY id"
           + store.sql.limit(batch))
    while True:
        rows = store.sql.all(sql, (db_id, after))
        if not rows:
            return
        yield [r[0] for r in rows], [r[1] & PHASH_MASK for r in rows]
        if len(rows) < batch:
            return
        after = rows[-1][0]


def entry_details(store: Store, keys) -> dict[int, tuple]:
    """key -> (key, database name, identifier, label, unsigned pHash or None, has_image_data,
    sha256, image_format, width, height) for the entries named."""
    found = {}
    for chunk in _chunks(sorted(set(keys))):
        marks = ",".join("?" * len(chunk))
        for r in store.sql.all(
            "SELECT e.id, d.name, e.identifier, e.label, e.phash, e.has_image_data, e.sha256, e.image_format, "
            f"e.width, e.height FROM hl_entry e JOIN hl_database d ON d.id = e.database_id WHERE e.id IN ({marks})",
            chunk,
        ):
            found[r[0]] = (r[0], r[1], r[2], r[3], None if r[4] is None else r[4] & PHASH_MASK, bool(r[5]), r[6],
                           r[7], r[8], r[9])
    return found


def metadata_of(store: Store, keys) -> dict[int, list[tuple[str, str]]]:
    """key -> its metadata items in the order they were added."""
    items: dict[int, list] = {}
    for chunk in _chunks(sorted(set(keys))):
        marks = ",".join("?" * len(chunk))
        for key, k, v in store.sql.all(
            f"SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE entry_id IN ({marks}) ORDER BY entry_id, id",
            chunk,
        ):
            items.setdefault(key, []).append((k, v))
    return items


def shared_labels(store: Store, db_id: int, limit: int) -> tuple[int, list[tuple[str, int]]]:
    """(how many labels are shared, the `limit` most shared with their entry counts)."""
    grouped = "SELECT label, COUNT(*) AS n FROM hl_entry WHERE database_id = ? GROUP BY label HAVING COUNT(*) > 1"
    total = store.sql.one(f"SELECT COUNT(*) FROM ({grouped}) AS shared", (db_id,))[0]
    rows = store.sql.all(f"SELECT label, n FROM ({grouped}) AS shared ORDER BY n DESC, label" + store.sql.limit(limit), (db_id,))
    return total, [(r[0], r[1]) for r in rows]


def sha256_groups(store: Store, db_id: int, limit: int) -> tuple[int, list[list[int]]]:
    """Entries whose stored SHA-256 of the training image is the same: (how many groups,
    the first `limit` groups as keys in database order, groups ordered by first key)."""
    grouped = (
        "SELECT sha256, MIN(id) AS first_key FROM hl_entry WHERE database_id = ? AND sha256 IS NOT NULL "
        "GROUP BY sha256 HAVING COUNT(*) > 1"
    )
    total = store.sql.one(f"SELECT COUNT(*) FROM ({grouped}) AS dup", (db_id,))[0]
    if not total:
        return 0, []
    digests = [r[0] for r in store.sql.all(f"SELECT sha256 FROM ({grouped}) AS dup ORDER BY first_key" + store.sql.limit(limit), (db_id,))]
    members: dict[str, list[int]] = {d: [] for d in digests}
    for chunk in _chunks(digests):
        marks = ",".join("?" * len(chunk))
        for key, digest in store.sql.all(
            f"SELECT id, sha256 FROM hl_entry WHERE database_id = ? AND sha256 IN ({marks}) ORDER BY id", [db_id, *chunk]
        ):
            members[digest].append(key)
    return total, [members[d] for d in digests]


# -- metadata ----------------------------------------------------------------------------------


def metadata_profile(store: Store, db_id: int, near_bytes: int, limit: int = 1000) -> list[tuple]:
    """Per key: (key, entries having it, distinct values, longest value in bytes, values
    of `near_bytes` bytes or more), by key."""
    length = byte_length(store, "m.meta_value")
    rows = store.sql.all(
        f"SELECT m.meta_key, COUNT(*), COUNT(DISTINCT m.meta_value), MAX({length}), "
        f"SUM(CASE WHEN {length} >= ? THEN 1 ELSE 0 END) "
        "FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id WHERE e.database_id = ? "
        "GROUP BY m.meta_key ORDER BY m.meta_key" + store.sql.limit(limit),
        (near_bytes, db_id),
    )
    return [(r[0], int(r[1]), int(r[2]), int(r[3] or 0), int(r[4] or 0)) for r in rows]


def top_values(store: Store, db_id: int, key: str, n: int = 5) -> list[tuple[str, int]]:
    rows = store.sql.all(
        "SELECT m.meta_value, COUNT(*) AS c FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id "
        "WHERE e.database_id = ? AND m.meta_key = ? GROUP BY m.meta_value ORDER BY c DESC, m.meta_value"
        + store.sql.limit(n),
        (db_id, key),
    )
    return [(r[0], int(r[1])) for r in rows]


def entries_lacking_key(store: Store, db_id: int, key: str, limit: int) -> list[str]:
    """Identifiers (database order) of the first `limit` entries without metadata `key`."""
    rows = store.sql.all(
        "SELECT e.identifier FROM hl_entry e WHERE e.database_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM hl_metadata m WHERE m.entry_id = e.id AND m.meta_key = ?) ORDER BY e.id" + store.sql.limit(limit),
        (db_id, key),
    )
    return [r[0] for r in rows]


def entries_with_long_values(store: Store, db_id: int, key: str, near_bytes: int, limit: int) -> list[str]:
    length = byte_length(store, "m.meta_value")
    rows = store.sql.all(
        "SELECT e.identifier FROM hl_entry e JOIN hl_metadata m ON m.entry_id = e.id "
        f"WHERE e.database_id = ? AND m.meta_key = ? AND {length} >= ? ORDER BY e.id" + store.sql.limit(limit),
        (db_id, key, near_bytes),
    )
    return [r[0] for r in rows]


# -- integrity ----------------------------------------------------------------------------------


def iter_image_entries(store: Store, db_id: int, batch: int = 64) -> Iterator[list[tuple]]:
    """(key, identifier, unsigned pHash, sha256) of entries that say they have image data,
    in database order; each batch is its own short query, not one long transaction."""
    after = -1
    sql = (
        "SELECT id, identifier, phash, sha256 FROM hl_entry WHERE database_id = ? AND has_image_data = ? "
        "AND id > ? ORDER BY id" + store.sql.limit(batch)
    )
    while True:
        rows = store.sql.all(sql, (db_id, True, after))
        if not rows:
            return
        yield [(r[0], r[1], None if r[2] is None else r[2] & PHASH_MASK, r[3]) for r in rows]
        if len(rows) < batch:
            return
        after = rows[-1][0]


def count_with_image_flag(store: Store, db_id: int) -> int:
    return store.sql.one("SELECT COUNT(*) FROM hl_entry WHERE database_id = ? AND has_image_data = ?", (db_id, True))[0]


def image_flag_mismatches(store: Store, db_id: int, limit: int) -> tuple[int, list[tuple[str, bool]]]:
    """Entries whose has_image_data flag disagrees with the image table: (count, first
    `limit` as (identifier, flag))."""
    where = (
        "FROM hl_entry e LEFT JOIN hl_image i ON i.entry_id = e.id WHERE e.database_id = ? AND "
        "((e.has_image_data = ? AND i.entry_id IS NULL) OR (e.has_image_data = ? AND i.entry_id IS NOT NULL))"
    )
    params = (db_id, True, False)
    total = store.sql.one(f"SELECT COUNT(*) {where}", params)[0]
    rows = store.sql.all(f"SELECT e.identifier, e.has_image_data {where} ORDER BY e.id" + store.sql.limit(limit), params) if total else []
    return total, [(r[0], bool(r[1])) for r in rows]


def entry_count(store: Store, db_id: int) -> int:
    return store.sql.one("SELECT COUNT(*) FROM hl_entry WHERE database_id = ?", (db_id,))[0]


def meta_count_mismatches(store: Store, db_id: int, limit: int) -> tuple[int, list[tuple[str, int, int]]]:
    """Entries whose recorded metadata count differs from their metadata rows:
    (count, first `limit` as (identifier, recorded, actual))."""
    where = (
        "FROM hl_entry e LEFT JOIN (SELECT m.entry_id, COUNT(*) AS n FROM hl_metadata m "
        "JOIN hl_entry x ON x.id = m.entry_id WHERE x.database_id = ? GROUP BY m.entry_id) c "
        "ON c.entry_id = e.id WHERE e.database_id = ? AND e.meta_count <> COALESCE(c.n, 0)"
    )
    params = (db_id, db_id)
    total = store.sql.one(f"SELECT COUNT(*) {where}", params)[0]
    rows = (
        store.sql.all(f"SELECT e.identifier, e.meta_count, COALESCE(c.n, 0) {where} ORDER BY e.id" + store.sql.limit(limit), params)
        if total else []
    )
    return total, [(r[0], int(r[1]), int(r[2])) for r in rows]


def orphan_rows(store: Store) -> dict[str, int]:
    """Rows that point at something that no longer exists (foreign keys were off, or
    another program wrote the store): table -> count."""
    checks = {
        "hl_image": "SELECT COUNT(*) FROM hl_image i LEFT JOIN hl_entry e ON e.id = i.entry_id WHERE e.id IS NULL",
        "hl_metadata": "SELECT COUNT(*) FROM hl_metadata m LEFT JOIN hl_entry e ON e.id = m.entry_id WHERE e.id IS NULL",
        "hl_entry": "SELECT COUNT(*) FROM hl_entry e LEFT JOIN hl_database d ON d.id = e.database_id WHERE d.id IS NULL",
        "hl_mark": "SELECT COUNT(*) FROM hl_mark k LEFT JOIN hl_database d ON d.id = k.database_id WHERE d.id IS NULL",
    }
    return {table: int(store.sql.one(sql)[0]) for table, sql in checks.items()}


def store_integrity(store: Store, full: bool = True, max_messages: int = 100) -> tuple[str, list[str], str]:
    """The backend's own check of its files: (status "ok" | "failed" | "not applicable",
    messages, the check that ran). SQLite: PRAGMA integrity_check (or quick_check) and
    foreign_key_check; MariaDB/MySQL: CHECK TABLE; PostgreSQL has no built-in one."""
    return store.db.integrity_check(store.sql, full, max_messages)


# -- journal ------------------------------------------------------------------------------------


def iter_journal(
    store: Store, since: int | None = None, until: int | None = None, database: str | None = None, batch: int = 5000
) -> Iterator[list[JournalEntry]]:
    return store.iter_journal(since, until, database, batch)


def journal_summary(
    store: Store, since: int | None, until: int | None, database: str | None
) -> list[tuple[str, str, int, int, int]]:
    """(action, user, changes, first at_ms, last at_ms) in the range, by action and user."""
    where, params = store.journal.where(since, until, database)
    rows = store.sql.all(
        f"SELECT action, username, COUNT(*), MIN(at_ms), MAX(at_ms) FROM hl_journal WHERE {where} "
        "GROUP BY action, username ORDER BY action, username",
        params,
    )
    result = [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]
    if database is not None and any(r[0] in _RENAMING for r in result):
        # Moves and renames were counted by action only; count the ones that touch it.
        exact: dict[tuple[str, str], list[int]] = {}
        for batch in iter_journal(store, since, until, database):
            for e in batch:
                slot = exact.setdefault((e.action, e.user), [0, e.at, e.at])
                slot[0] += 1
                slot[1], slot[2] = min(slot[1], e.at), max(slot[2], e.at)
        result = [(a, u, n, lo, hi) for (a, u), (n, lo, hi) in sorted(exact.items())]
    return result


def journal_latest(
    store: Store, since: int | None, until: int | None, database: str | None, limit: int
) -> list[JournalEntry]:
    """The last `limit` changes in the range, oldest first."""
    where, params = store.journal.where(since, until, database)
    sql = (
        "SELECT id, at_ms, username, action, database_name, identifier, params FROM hl_journal "
        f"WHERE {where} AND id < ? ORDER BY id DESC" + store.sql.limit(max(limit, 1) * 2)
    )
    found: list[JournalEntry] = []
    before = None
    while len(found) < limit:
        rows = store.sql.all(sql, [*params, before if before is not None else 1 << 62])
        if not rows:
            break
        for r in rows:
            entry = journal_entry(r)
            if database is None or touches(entry, database):
                found.append(entry)
        before = rows[-1][0]
    return list(reversed(found[:limit]))


def changed_databases(store: Store, since_token: int) -> set[str] | None:
    """Names of the databases changed since a `change_token()`, or None when a change
    touched the store as a whole (then nothing cached can be trusted). Three small
    queries, however many changes were made since."""
    names = {r[0] for r in store.sql.all("SELECT DISTINCT database_name FROM hl_journal WHERE id > ?", (since_token,))}
    if None in names:
        return None
    for (params,) in store.sql.all(
        "SELECT params FROM hl_journal WHERE id > ? AND action IN (?, ?)",
        (since_token, *_RENAMING),
    ):
        try:
            other = json.loads(params or "{}").get("newdatabase")
        except (ValueError, AttributeError):
            return None
        if other:
            names.add(other)
    return names
