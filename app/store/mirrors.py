"""Mirrors of Media Server databases in the store: the mark of where each comes from, its complete snapshots, and the pull's commit.

A mirror is an ordinary database (its hl_database row, its entries as hl_entry rows with
no pHash, and their hl_metadata rows), so listing, the ACI, exports and audits read it
like any other, plus its mark (`hl_mirror`: the server's URL and database) and every
complete pull kept as a snapshot (`hl_snapshot`, `hl_snapshot_entry`) for differences.
The tables are in `app/store/schema.py`.

A pull's commit (`commit_snapshot`) writes the new snapshot AND replaces the database's
entries in one write transaction with one journal record: a pull that fails, is
cancelled or is killed leaves the database and every snapshot as they were. Rows are
derived in SQL from staged rows of one shape (`STAGED_TABLE`): entry keys are a base
plus the server position (so keys grow in server order and metadata rows need no join),
metadata rows come from the staged JSON text (`json_each`), snapshot rows go in server
order. On a SQLite store a pull opens that transaction before its first page and
stores each page while the next one is read (`SnapshotWriter`, on a second thread that
runs without Python's lock), so storing takes the second core; the store's write lock
is held for the whole pull. Entries staged in a file (`app.mediaserver.staging`) are
attached and derived the same way. Other backends, and entries given as a plain
iterable, go through the bulk path a batch at a time.

Only a pull changes a mirror's entries: the local write actions refuse a mirror
(`Store.refuse_mirror_write`; `Store.mirror_of(name)` is the question to ask). What
Hashlens adds of its own, pHashes and images attached from image files
(`hashlens attach-images`), stays with each entry whose identifier the next pull lists.

Stores written before mirrors were databases kept a mirror's entries only in its
snapshots: the first writable open turns each into a database holding its latest
snapshot (`materialize_all`, once per store; a read-only open leaves the store as it is,
so there such a mirror is listed by `hashlens mirrors` but not among the databases).

Snapshot rows are read back in identifier order (the unique index walks it; names
compare byte for byte on every backend), which is what a difference needs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from app import faults
from app.domain import MAX_TEXT_BYTES, Failure, HashlensError, MirrorSource, NewEntry, SnapshotInfo
from app.diff import DiffEntry, metadata_json
from app.mediaserver_codec.names import PULL_IMAGE_HASHES, REMOVE_IMAGE_HASH_DATABASE, RENAME_IMAGE_HASH_DATABASE
# The raw batch writer: the pull names a repeated identifier its own way (below).
from app.store.bulk import _UniqueViolation, _append_batch as append_batch, _check_metadata_keys, _write
from app.store.entries import MARK_SPACING
from app.store.schema import MIRROR_TABLES, MIRRORS_AS_DATABASES, Mirror, Snapshot, SnapshotEntry
from app.store.store import IN_CHUNK, Store

__all__ = ["Mirror", "Snapshot", "SnapshotEntry", "adopt_database", "commit_snapshot", "materialize_all", "mirror_of",
           "remove_mirror", "snapshots", "snapshot_entries", "entries_by_identifier", "list_mirrors", "check_mirror_target"]

BATCH = 5000

# The pull's staging table (app/mediaserver/staging.py): `position` is the 1-based server
# position, `metadata` the JSON text a snapshot keeps (`metadata_json`).
_STAGED_COLUMNS = ("(position INTEGER PRIMARY KEY, identifier TEXT NOT NULL, label TEXT, has_image_data INTEGER, "
                   "metadata TEXT NOT NULL)")
STAGED_TABLE = f"CREATE TABLE staged_entry {_STAGED_COLUMNS}"
_PAGE_TABLE = "hl_pull_page"  # SnapshotWriter's temporary table of the page being stored
_PAGE = f"temp.{_PAGE_TABLE}"
_STAGED = "hl_staged"  # the schema name the staging file is attached as

TABLES = MIRROR_TABLES


def _has_tables(store: Store) -> bool:
    return store.has_mirror_tables()


def _ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def mirror_of(store: Store, name: str) -> MirrorSource | None:
    """Where the mirror `name` comes from, or None when it is not a mirror (see `Store.mirror_of`)."""
    return store.mirror_of(name)


def list_mirrors(store: Store) -> list[tuple[str, MirrorSource, SnapshotInfo | None]]:
    """Every mirror by name, with its latest snapshot."""
    if not _has_tables(store):
        return []
    latest = store.latest_snapshots()
    return [(name, MirrorSource(url, remote), latest.get(name)) for name, url, remote in store.sql.all(
        "SELECT name, server_url, remote_database FROM hl_mirror ORDER BY name")]


def check_mirror_target(store: Store, name: str, source: MirrorSource) -> None:
    """Refuse to pull `source` into `name` when `name` is a local database, or a mirror of
    another source: a pull never overwrites what did not come from the same place. A
    read-only store is refused here too, before a pull spends minutes reading."""
    if store.read_only:
        raise HashlensError(Failure.READ_ONLY, f"Cannot pull into '{name}': {store.read_only_reason()}")
    current = mirror_of(store, name)
    if current is None and store.database_exists(name):
        raise HashlensError(
            Failure.DATABASE_EXISTS,
            f"'{name}' is a local database, not a mirror of {source.describe()}; nothing was pulled. "
            "Pull into another name with --into.", parameter="into")
    if current is not None and current != source:
        raise HashlensError(
            Failure.DATABASE_EXISTS,
            f"'{name}' is a mirror of {current.describe()}, not of {source.describe()}; nothing was pulled. "
            "Pull into another name with --into.", parameter="into")


def commit_snapshot(store: Store, name: str, source: MirrorSource, entries: Iterable[DiffEntry], *,
                    taken_at: int, dated: int | None = None) -> SnapshotInfo:
    """Store `entries` (in server order) as the next snapshot of mirror `name` and make
    them the database's entries (dated `dated`, by default `taken_at`), all in one
    transaction journalled once. A new mirror gets its database and mark here. A
    duplicate identifier refuses the whole pull."""
    _ensure_tables(store)
    dated = taken_at if dated is None else dated
    # No bigger page cache for the commit: the staged commit writes each index in one
    # statement, mostly appending, and took the same CPU with 16 MB as with 64 MB at a
    # million entries (measured; 256 MB was most of a pull's memory growth).
    with _attached(store, entries) as staged, store.writing():
        begun = _begin(store, name, source, taken_at)
        if staged:
            count = _fill_staged(store, name, begun, dated)
        else:
            count = _fill(store, name, begun.db_id, entries, dated, begun.snapshot_id)
        return _end(store, name, source, begun, count, taken_at)


@dataclass
class _Begun:
    """A snapshot being written: its database, mirror and snapshot rows, what was set aside."""

    db_id: int
    mirror_id: int
    created: bool
    aside: int | None
    replaced: int
    number: int
    snapshot_id: int
    base: int  # entry keys are base + the server position


def _begin(store: Store, name: str, source: MirrorSource, taken_at: int) -> _Begun:
    """Inside the write transaction: check the target again, make the mirror's database
    and mark when new, set aside what it keeps, empty it and add the snapshot row."""
    check_mirror_target(store, name, source)
    row = store.sql.one("SELECT id FROM hl_mirror WHERE name = ?", (name,))
    if row is None:
        store.entries.create_database(name)
        mirror_id = store.sql.insert(
            "INSERT INTO hl_mirror (name, server_url, remote_database, created_at) VALUES (?, ?, ?, ?)",
            (name, source.url, source.database, taken_at))
    else:
        mirror_id = row[0]
    db_id = store.entries.database_id(name, lock=True)
    aside = _set_aside_attached(store, db_id)
    replaced = _clear_entries(store, db_id)
    number = (store.sql.one("SELECT MAX(number) FROM hl_snapshot WHERE mirror_id = ?", (mirror_id,))[0] or 0) + 1
    snapshot_id = store.sql.insert(
        "INSERT INTO hl_snapshot (mirror_id, number, taken_at, server_url, remote_database, entry_count) "
        "VALUES (?, ?, ?, ?, ?, 0)", (mirror_id, number, taken_at, source.url, source.database))
    base = store.sql.one("SELECT MAX(id) FROM hl_entry")[0] or 0
    return _Begun(db_id, mirror_id, row is None, aside, replaced, number, snapshot_id, base)


def _end(store: Store, name: str, source: MirrorSource, begun: _Begun, count: int, taken_at: int) -> SnapshotInfo:
    """Give the kept pHashes back, set the counts and the time, journal the pull."""
    kept = _carry_attached(store, begun.aside, begun.db_id) if begun.aside is not None else 0
    store.sql.exec("UPDATE hl_snapshot SET entry_count = ?, taken_at = ? WHERE id = ?",
                   (count, taken_at, begun.snapshot_id))
    if begun.created:
        store.sql.exec("UPDATE hl_mirror SET created_at = ? WHERE id = ?", (taken_at, begun.mirror_id))
    store.record(PULL_IMAGE_HASHES, name, None, {
        "server": source.url, "remotedatabase": source.database, "snapshot": begun.number, "entries": count,
        "replaced": begun.replaced, "kept_phashes": kept})
    faults.checkpoint("pull.commit")
    return SnapshotInfo(begun.number, taken_at, source, count)


@contextlib.contextmanager
def _attached(store: Store, entries):
    """Attach the pull's staging file (an iterable of entries with a `path` to a SQLite file
    holding STAGED_TABLE) when the store is SQLite and no transaction is open (ATTACH
    cannot run inside one); yields whether it did."""
    path = getattr(entries, "path", None)
    if path is None or store.db.backend != "sqlite" or store.db.in_transaction():
        yield False
        return
    store.sql.exec(f"ATTACH DATABASE ? AS {_STAGED}", (path,))
    try:
        yield True
    finally:
        store.sql.exec(f"DETACH DATABASE {_STAGED}")


def _fill_statements(source: str) -> list[str]:
    """The statements that derive a snapshot's rows and the database's from staged rows in
    the table `source` (STAGED_TABLE's shape): the same rows as the bulk path writes (no
    pHash, no image held, the server's hasimagedata as declared_image_data), keys in
    server order. Parameters: (snapshot_id, base, db_id, dated)."""
    # Rows go in server order and each entry's items in theirs, so metadata ids keep it:
    # the scan of `s` is in position order (its key) and json_each walks an array in
    # order. Adding `m.key` to the ORDER BY would sort every item again (a fifth of
    # the statement's time, measured); tests/app/test_mirror_commit.py checks the order.
    # json_extract, not ->> (SQLite 3.38+): Python's SQLite is older on some systems.
    return [
        "INSERT INTO hl_snapshot_entry (snapshot_id, identifier, label, has_image_data, metadata) "
        f"SELECT :snapshot, identifier, label, has_image_data, metadata FROM {source} ORDER BY position",
        "INSERT INTO hl_entry (id, database_id, identifier, label, phash, has_image_data, meta_count, trained_at, "
        "declared_image_data) SELECT :base + position, :db, identifier, COALESCE(label, ''), NULL, 0, "
        f"json_array_length(metadata), :dated, has_image_data FROM {source} ORDER BY position",
        "INSERT INTO hl_metadata (entry_id, meta_key, meta_value) SELECT :base + s.position, "
        "json_extract(m.value, '$[0]'), json_extract(m.value, '$[1]') "
        f"FROM {source} s, json_each(s.metadata) m ORDER BY s.position",
        f"INSERT INTO hl_mark (database_id, ordinal, entry_id) SELECT :db, position, :base + position FROM {source} "
        f"WHERE position % {MARK_SPACING} = 0 ORDER BY position",
    ]


def _fill_params(begun: _Begun, dated: int) -> dict:
    return {"snapshot": begun.snapshot_id, "base": begun.base, "db": begun.db_id, "dated": dated}


def _fill_staged(store: Store, name: str, begun: _Begun, dated: int) -> int:
    """`_fill` in SQL from the attached staging file into the (empty) database. Returns how many."""
    faults.checkpoint("pull.batch")
    run, staged = store.sql, f"{_STAGED}.staged_entry"
    count = run.one(f"SELECT COUNT(*) FROM {staged}")[0]
    params = _fill_params(begun, dated)
    for n, statement in enumerate(_fill_statements(staged)):
        if n == 2:
            faults.checkpoint("pull.batch")
        try:
            run.exec(statement, params)
        except HashlensError as error:
            raise _refusal(store, name, error, staged) from None
    run.exec("UPDATE hl_database SET entry_count = ? WHERE id = ?", (count, begun.db_id))
    return count


def _refusal(store: Store, name: str, error: HashlensError, staged: str) -> HashlensError:
    """The error a failed fill statement raises: a repeated identifier or metadata key in
    the staged rows named as such, anything else as it is."""
    if "unique" not in error.description.lower():
        return error
    if "hl_metadata" in error.description:
        identifier, key = store.sql.one(
            f"SELECT s.identifier, json_extract(m.value, '$[0]') FROM {staged} s, json_each(s.metadata) m "
            "GROUP BY s.position, json_extract(m.value, '$[0]') HAVING COUNT(*) > 1 LIMIT 1")
        return HashlensError(Failure.KEY_EXISTS, f"Metadata key '{key}' is given twice for '{identifier}'; a "
                                                 "key is unique per hash.", parameter="metadata")
    return _listed_twice(name)


def writes_while_pulling(store: Store) -> bool:
    """Whether a pull stores its pages as it reads them (`SnapshotWriter`): SQLite."""
    return store.db.backend == "sqlite"


class SnapshotWriter:
    """A pull's commit made while the pull reads (SQLite): `commit_snapshot`'s transaction,
    opened before the first page and committed by `finish`, so a cancelled, failed or
    killed pull still leaves the store exactly as it was.

    Each page goes to a second thread as one JSON text; there SQLite puts it in a
    temporary table of STAGED_TABLE's columns and derives the page's rows from it
    (`_fill_statements`) while the pull reads the next page. SQLite releases Python's
    lock while a statement runs, so storing takes the second core instead of adding to
    the reading (measured: `benchmarks/mirror.py`). The two threads take turns on the
    one connection: this thread waits for the page before it touches the connection
    again. A restart (the server changed) rolls back to a savepoint after the old
    entries were removed. The price: the store's write lock is held for the whole pull,
    so another writer waits (and is told the store is busy after the busy timeout)."""

    def __init__(self, store: Store, name: str, source: MirrorSource, *, dated: int):
        self.store, self.name, self.source, self.dated = store, name, source, dated
        self.count = 0
        self._stack = contextlib.ExitStack()
        self._pool: ThreadPoolExecutor | None = None
        self._page: Future | None = None

    def __enter__(self) -> SnapshotWriter:
        _ensure_tables(self.store)
        run = self.store.sql
        with self._stack:
            self._stack.enter_context(self.store.writing())
            self._begun = _begin(self.store, self.name, self.source, self.dated)
            run.exec(f"CREATE TEMP TABLE {_PAGE_TABLE} {_STAGED_COLUMNS}")
            run.exec("SAVEPOINT hl_pull_fill")
            self._conn = self.store.db.connection()
            self._params = _fill_params(self._begun, self.dated)
            self._statements = _fill_statements(_PAGE)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hashlens-pull-store")
            self._stack = self._stack.pop_all()
        return self

    def add(self, page: str, count: int) -> None:
        """Store the next `count` entries, given as one JSON array of [identifier, label,
        hasimagedata, metadata items] (`metadata_json` of the list), in server order."""
        self._wait()
        self._page = self._pool.submit(self._store_page, page, self.count + 1)
        self.count += count

    def _store_page(self, page: str, first: int) -> None:
        # On the second thread: only statements, which run without Python's lock. The page
        # comes as JSON rather than as rows because binding rows takes that lock for each
        # value; SQLite renders an entry's items as the same text `metadata_json` makes
        # (tests/app/test_mirror_commit.py).
        faults.checkpoint("pull.batch")
        conn = self._conn
        conn.execute(f"DELETE FROM {_PAGE}")
        conn.execute(f"INSERT INTO {_PAGE} SELECT :first + key, json_extract(value, '$[0]'), "
                     "json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]') "
                     "FROM json_each(:page)", {"first": first, "page": page})
        for statement in self._statements:
            conn.execute(statement, self._params)

    def _wait(self) -> None:
        """Wait for the page being stored; raise what storing it raised."""
        page, self._page = self._page, None
        if page is None:
            return
        try:
            page.result()
        except Exception as exc:
            raise _refusal(self.store, self.name, self.store.sql.translate(exc), _PAGE) from None

    def restart(self) -> None:
        """Forget every page stored so far (the pull starts again)."""
        self._wait()
        self.store.sql.exec("ROLLBACK TO SAVEPOINT hl_pull_fill")
        self.count = 0

    def finish(self, taken_at: int) -> SnapshotInfo:
        """The pull is complete: the snapshot as of `taken_at`, committed."""
        self._wait()
        run = self.store.sql
        run.exec("RELEASE SAVEPOINT hl_pull_fill")
        run.exec(f"DROP TABLE {_PAGE}")
        run.exec("UPDATE hl_database SET entry_count = ? WHERE id = ?", (self.count, self._begun.db_id))
        snapshot = _end(self.store, self.name, self.source, self._begun, self.count, taken_at)
        self._close(True, None, None, None)
        return snapshot

    def __exit__(self, *exc) -> None:
        self._close(False, *exc)

    def _close(self, finished: bool, *exc) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            if self._page is not None:
                with contextlib.suppress(Exception):
                    self._page.result()  # the connection is this thread's again
        finally:
            pool.shutdown()
            if not finished and exc[0] is None:
                exc = (_Unfinished, _Unfinished(), None)  # left without finish: nothing is kept
            self._stack.__exit__(*exc)  # commits, or rolls back on an error


class _Unfinished(Exception):
    """Rolls back a SnapshotWriter left without `finish`."""


def _listed_twice(name: str) -> HashlensError:
    return HashlensError(Failure.STORE_FAILED, f"The pull of '{name}' listed an identifier twice; the server's "
                                               "answer cannot be a snapshot and nothing was stored.")


def adopt_database(store: Store, name: str, source: MirrorSource, entries: Iterable[DiffEntry], *,
                   taken_at: int) -> SnapshotInfo:
    """Make the local database `name` a mirror of `source` once it has been published
    there (`hashlens publish`): its mark, and the server's listing `entries` as its first
    snapshot and its entries, exactly as a pull commits them (each entry keeps its pHash
    and image by identifier), all in one transaction. The caller has checked that the
    server lists every entry of `name`, so nothing local is dropped."""
    _ensure_tables(store)
    with store.writing():
        store.database_id(name)  # NO_SUCH_DATABASE before anything is written
        current = mirror_of(store, name)
        if current is not None and current != source:
            raise HashlensError(Failure.DATABASE_EXISTS, f"'{name}' is a mirror of {current.describe()}, not of "
                                                         f"{source.describe()}.", parameter="database")
        if current is None:
            store.sql.insert("INSERT INTO hl_mirror (name, server_url, remote_database, created_at) "
                             "VALUES (?, ?, ?, ?)", (name, source.url, source.database, taken_at))
        # The mark is in place, so the pull's own check sees a mirror of this source.
        return commit_snapshot(store, name, source, entries, taken_at=taken_at)


# The name of the row that holds a mirror's attached entries while its pull commits. U+0001
# cannot be in a name a person gives (check_text refuses it), and the row never outlives
# the transaction, so no one else ever sees it.
_ASIDE = "\x01pull-aside-{}"


def _set_aside_attached(store: Store, db_id: int) -> int | None:
    """Move the entries that have a pHash (attached from image files: Media Server lists
    none) to a temporary database row of their own, with their images, so the pull can
    give them back to the entries that keep their identifier. Returns that row's key,
    or None when there are none."""
    if store.sql.one("SELECT 1 FROM hl_entry WHERE database_id = ? AND phash IS NOT NULL" + store.sql.limit(1),
                     (db_id,)) is None:
        return None
    aside = store.sql.insert("INSERT INTO hl_database (name, entry_count, created_at) VALUES (?, 0, 0)",
                             (_ASIDE.format(db_id),))
    store.sql.exec("UPDATE hl_entry SET database_id = ? WHERE database_id = ? AND phash IS NOT NULL", (aside, db_id))
    return aside


def _carry_attached(store: Store, aside: int, db_id: int) -> int:
    """Give each new entry whose identifier was set aside that entry's pHash and image
    (the image row moves, its bytes are not copied), then drop what was set aside.
    Returns how many entries kept their pHash. (Ours: an identifier names the same image
    on the server from one pull to the next; a relabel does not change the image.)"""
    kept, after = 0, 0
    while True:
        rows = store.sql.all(
            "SELECT id, identifier, phash, has_image_data, image_format, width, height, byte_size, sha256 "
            "FROM hl_entry WHERE database_id = ? AND id > ? ORDER BY id" + store.sql.limit(BATCH), (aside, after))
        if not rows:
            break
        after = rows[-1][0]
        new_keys: dict[str, int] = {}
        identifiers = [r[1] for r in rows]
        for start in range(0, len(identifiers), IN_CHUNK):
            part = identifiers[start:start + IN_CHUNK]
            marks = ", ".join("?" * len(part))
            new_keys.update(store.sql.all(
                f"SELECT identifier, id FROM hl_entry WHERE database_id = ? AND identifier IN ({marks})",
                (db_id, *part)))
        for old_key, identifier, phash, has_image, fmt, width, height, size, sha in rows:
            key = new_keys.get(identifier)
            if key is None:
                continue  # gone from the server
            store.sql.exec("UPDATE hl_entry SET phash = ?, has_image_data = ?, image_format = ?, width = ?, "
                           "height = ?, byte_size = ?, sha256 = ? WHERE id = ?",
                           (phash, has_image, fmt, width, height, size, sha, key))
            if has_image:
                store.sql.exec("UPDATE hl_image SET entry_id = ? WHERE entry_id = ?", (key, old_key))
            kept += 1
    _clear_entries(store, aside)
    store.sql.exec("DELETE FROM hl_database WHERE id = ?", (aside,))
    return kept


def _clear_entries(store: Store, db_id: int) -> int:
    """Remove every entry of the database (its images, metadata and marks too); returns how many."""
    count = store.entries.entry_count(db_id)
    entries = "SELECT id FROM hl_entry WHERE database_id = ?"
    store.sql.exec(f"DELETE FROM hl_image WHERE entry_id IN ({entries})", (db_id,))
    store.sql.exec(f"DELETE FROM hl_metadata WHERE entry_id IN ({entries})", (db_id,))
    store.sql.exec("DELETE FROM hl_mark WHERE database_id = ?", (db_id,))
    store.sql.exec("DELETE FROM hl_entry WHERE database_id = ?", (db_id,))
    store.sql.exec("UPDATE hl_database SET entry_count = 0 WHERE id = ?", (db_id,))
    return count


def _fill(store: Store, name: str, db_id: int, entries: Iterable[DiffEntry], taken_at: int,
          snapshot_id: int | None) -> int:
    """Append `entries` to the (empty) database a batch at a time, and to the snapshot
    `snapshot_id` when given; returns how many."""
    cursor = store.db.cursor()
    count = 0
    batch: list[DiffEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == BATCH:
            count += _write_batch(store, cursor, name, db_id, batch, taken_at, snapshot_id)
            batch = []
    if batch:
        count += _write_batch(store, cursor, name, db_id, batch, taken_at, snapshot_id)
    return count


def _write_batch(store: Store, cursor, name: str, db_id: int, batch: list[DiffEntry], taken_at: int,
                 snapshot_id: int | None) -> int:
    faults.checkpoint("pull.batch")
    # Media Server gives no pHash, no image bytes and no training time (MS): the pHash is
    # not known (NULL), Hashlens holds no image (the server's own hasimagedata is kept as
    # declared_image_data), and the entry is dated by the pull.
    # Server order is kept: keys grow in it, so the database lists as the server does.
    texts = [metadata_json(e.metadata) for e in batch]
    # One decode for the batch's metadata instead of one per entry (a fifth of the time
    # otherwise); each entry's items come back as [key, value] lists, which the bulk path
    # only iterates.
    items = json.loads("[" + ",".join(texts) + "]")
    rows = [NewEntry(e.identifier, e.label or "", None, None, None, None, None, None, m, taken_at,
                     declared_image_data=e.has_image_data)
            for e, m in zip(batch, items)]
    try:
        if snapshot_id is not None:
            _write(store, cursor, "hl_snapshot_entry", "snapshot_id, identifier, label, has_image_data, metadata",
                   [(snapshot_id, e.identifier, e.label, e.has_image_data, t) for e, t in zip(batch, texts)])
        _check_metadata_keys(rows)
        append_batch(store, db_id, rows)
    except _UniqueViolation:
        raise _listed_twice(name) from None
    return len(batch)


def materialize_all(store: Store) -> list[str]:
    """Make every mirror kept only as snapshots an ordinary database holding its latest
    snapshot, once per store (the hl_store_info row MIRRORS_AS_DATABASES records it), in
    one transaction journalled per mirror. A local database that took a mirror's name
    meanwhile keeps it; the mirror is renamed '<name> (mirror)' (journalled). Returns the
    names of the mirrors made databases."""
    made = []
    with store.writing():
        if store.sql.one("SELECT 1 FROM hl_store_info WHERE name = ?", (MIRRORS_AS_DATABASES,)) is not None:
            return made  # another process did it first
        for mirror_id, name in store.sql.all("SELECT id, name FROM hl_mirror ORDER BY id"):
            if store.database_exists(name):
                new_name = _free_name(store, name)
                store.sql.exec("UPDATE hl_mirror SET name = ? WHERE id = ?", (new_name, mirror_id))
                store.record(RENAME_IMAGE_HASH_DATABASE, name, None, {
                    "newdatabase": new_name, "why": "a local database holds the mirror's name"})
                name = new_name
            store.entries.create_database(name)
            db_id = store.entries.database_id(name)
            found = snapshots(store, name)
            count = _fill(store, name, db_id, snapshot_entries(store, name, found[-1].number), found[-1].taken_at,
                          None) if found else 0
            store.record(PULL_IMAGE_HASHES, name, None, {
                "snapshot": found[-1].number if found else None, "entries": count, "materialized": True})
            made.append(name)
        store.sql.exec("INSERT INTO hl_store_info (name, value) VALUES (?, ?)", (MIRRORS_AS_DATABASES, "1"))
    return made


def _free_name(store: Store, name: str) -> str:
    for n in range(1, 1000):
        suffix = " (mirror)" if n == 1 else f" (mirror {n})"
        base = name.encode("utf-8")[:MAX_TEXT_BYTES - len(suffix)].decode("utf-8", "ignore")
        candidate = base + suffix
        if not store.database_exists(candidate) and store.mirror_of(candidate) is None:
            return candidate
    raise HashlensError(Failure.DATABASE_EXISTS, f"No free name for the mirror '{name}'.")


def remove_mirror(store: Store, name: str) -> tuple[int, int]:
    """Remove the mirror `name` from this store: its database with its entries, its mark
    and its snapshots, in one transaction (the Media Server is not touched). Returns
    (entries removed, snapshots removed)."""
    with store.writing():
        source = mirror_of(store, name)
        if source is None:
            raise HashlensError(Failure.PARAM_INVALID, f"'{name}' is not a mirror.", parameter="database")
        removed = store.entries.remove_database(name) if store.database_exists(name) else 0
        mirror_id = store.sql.one("SELECT id FROM hl_mirror WHERE name = ?", (name,))[0]
        count = store.sql.one("SELECT COUNT(*) FROM hl_snapshot WHERE mirror_id = ?", (mirror_id,))[0]
        store.sql.exec("DELETE FROM hl_snapshot_entry WHERE snapshot_id IN "
                       "(SELECT id FROM hl_snapshot WHERE mirror_id = ?)", (mirror_id,))
        store.sql.exec("DELETE FROM hl_snapshot WHERE mirror_id = ?", (mirror_id,))
        store.sql.exec("DELETE FROM hl_mirror WHERE id = ?", (mirror_id,))
        store.record(REMOVE_IMAGE_HASH_DATABASE, name, None, {
            "entries": removed, "mirror": source.url, "remotedatabase": source.database, "snapshots": count})
    return removed, count


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
    # A mirror compares as its latest snapshot: that keeps Media Server's own
    # hasimagedata, which the database's rows do not hold (Hashlens holds no image).
    found = snapshots(store, name) if mirror_of(store, name) is not None else []
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
