"""The Store: the SQL source of image hashes, on SQLite, PostgreSQL and MySQL/MariaDB.

A thin facade over the store's parts, each in its own module: connections and dialects
(`dialect.py`), the public SQL runner (`sql.py`), the listing compiler (`listing.py`),
changes with their counts and position marks (`entries.py`), the journal
(`journal.py`), the tables (`schema.py`) and error translation (`errors.py`). Here live
opening, the schema check, migration, transactions and the rule that every write action
is atomic and journalled (the `Source` protocol, `app/source.py`). It runs a little past
500 lines because every Source method needs its one-line delegation here; the logic
behind them lives in the modules above.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import peewee

from app import faults
from app.mediaserver_codec import names
from app.domain import (
    Count,
    DatabaseInfo,
    EntryRow,
    Failure,
    HashlensError,
    ImageInfo,
    JournalEntry,
    ListingPage,
    ListingQuery,
    MirrorSource,
    NewEntry,
    SnapshotInfo,
)
from app.source import SchemaPolicy, schema_version_policy
from app.store import schema
from app.store.dialect import BUSY_TIMEOUT_MS, HashlensDialect, connect
from app.store.entries import MARK_SPACING, Entries
from app.store.errors import reason, transient_read_error
from app.store import journal as journal_module
from app.store import migrations  # noqa: F401  (fills schema.MIGRATIONS)
from app.store.journal import Journal, journal_entry, now_ms, touches
from app.store.listing import ENTRY_COLUMNS, Listing, to_signed64
from app.store.sql import IN_CHUNK, SqlRunner
from app.store.url import StoreLocation, parse_store_url

__all__ = [
    "BUSY_TIMEOUT_MS", "ENTRY_COLUMNS", "IN_CHUNK", "MARK_SPACING", "QueryHandle", "Store",
    "journal_entry", "now_ms", "to_signed64", "touches",
]

# A change that lost a deadlock or a serialization check is tried again inside the store,
# this many times in all, after a short random pause: never shown to a person (issue 10).
WRITE_ATTEMPTS = 8


class QueryHandle:
    """Cancels the statement a worker thread is running on its own connection: SQLite
    interrupt, PostgreSQL cancel, MySQL KILL QUERY from a second connection."""

    def __init__(self, store: "Store"):
        self.store = store
        self.connection = store.db.connection()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        with contextlib.suppress(Exception):
            self.store.db.cancel_statement(self.connection, self.store.location)


class Store:
    """A Hashlens store: its databases of image hashes, their entries and the journal.

    Thread use: peewee keeps one connection per thread, so workers each get their own.
    Each write action runs in its own transaction that takes the write lock up front
    (SQLite `BEGIN IMMEDIATE`, row locks on servers), so concurrent writers wait for each
    other instead of failing; `group()` makes several changes one."""

    def __init__(self, db: HashlensDialect, location: StoreLocation, read_only: bool):
        self.db = db
        self.location = location
        self.backend = db.backend
        self.read_only = read_only
        self.sql = SqlRunner(db, self.describe, self._confirm_damage)
        self.journal = Journal(self.sql)
        self.entries = Entries(self.sql)
        self.listing = Listing(self.sql, self.entries.database_id, self.reading)
        self._lock = threading.Lock()
        self._handles: set[QueryHandle] = set()
        # Per thread: how deep in caller-opened write transactions (`writing`, `group`)
        # this thread is; a change made inside one is journalled by the group instead.
        self._local = threading.local()
        self.schema_version: int | None = None
        # What the last `migrate()` did that a person should hear about, in sentences.
        self.migration_notes: list[str] = []
        self.replica_of: str | None = None
        # Whether the mirror tables exist; once they do they stay (never dropped).
        self._mirror_tables = False

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, read_only: bool = False, create: bool = True) -> "Store":
        location = parse_store_url(url)
        db = connect(location, read_only=read_only, create=create)
        store = cls(db, location, read_only)
        try:
            store._prepare(create=create and not read_only)
        except BaseException:
            db.close()
            raise
        return store

    def _prepare(self, *, create: bool) -> None:
        """Check (or create) the schema: a foreign or damaged file is refused, never altered."""
        try:
            tables = set(self.db.get_tables())
        except peewee.DatabaseError as exc:
            raise HashlensError(
                Failure.STORE_UNAVAILABLE,
                f"'{self.location.display()}' is not a readable Hashlens store: {reason(exc)}",
            ) from None
        wanted = {m._meta.table_name for m in schema.ALL_TABLES}
        if not tables & wanted:
            if not create or tables:
                # Only an empty file or database becomes a store; anything else is left
                # exactly as it was (issue 10 item 10).
                others = f" (it holds other tables: {', '.join(sorted(tables)[:5])})" if tables else ""
                raise HashlensError(
                    Failure.STORE_UNAVAILABLE,
                    f"'{self.location.display()}' is not a Hashlens store{others}; Hashlens leaves it untouched"
                    + (" (it was opened read-only)." if self.read_only and not tables else "."),
                )
            self._create_schema()
        elif not wanted <= tables:
            missing = ", ".join(sorted(wanted - tables))
            raise HashlensError(
                Failure.STORE_UNAVAILABLE,
                f"'{self.location.display()}' is not a complete Hashlens store (missing tables: {missing}).",
            )
        row = self.sql.one("SELECT value FROM hl_store_info WHERE name = ?", ("schema_version",))
        self.schema_version = int(row[0]) if row else None
        if self.schema_version is None:
            raise HashlensError(Failure.STORE_UNAVAILABLE, "The store records no schema version.")
        self.listing.for_schema(self.schema_version)
        self.db.mark_verified()
        self.replica_of = self.db.replica_of()
        if self.replica_of is not None:
            self.read_only = True
        if not self.schema_policy.writable:
            # A newer Hashlens wrote this store: read it, never write it. An older one is
            # migrated only on request, after a backup (reliability D4).
            self.read_only = True
        self._mirror_tables = {m._meta.table_name for m in schema.MIRROR_TABLES} <= tables
        if not self.read_only:
            self._prepare_mirrors()

    def _create_schema(self) -> None:
        tables = schema.ALL_TABLES + schema.MIRROR_TABLES
        with self.db.bind_ctx(tables), self.db.atomic():
            self.db.create_tables(tables, safe=True)
            self.db.execute_sql(self.db.no_image_index())
            for name, value in (("schema_version", str(schema.SCHEMA_VERSION)), ("created_at", str(journal_module.now_ms())),
                                (schema.MIRRORS_AS_DATABASES, "1")):
                self.sql.exec("INSERT INTO hl_store_info (name, value) VALUES (?, ?)", (name, value))

    def _prepare_mirrors(self) -> None:
        """On a writable open: make the mirror tables if missing, and once per store turn
        mirrors kept only as snapshots (written before mirrors were databases) into
        ordinary databases holding their latest snapshot (see `mirrors.materialize_all`)."""
        if not self._mirror_tables:
            try:
                with self.db.bind_ctx(schema.MIRROR_TABLES), self.writing():
                    self.db.create_tables(schema.MIRROR_TABLES, safe=True)
            except HashlensError:
                # A server account that may change rows but not create tables still opens
                # the store; it holds no mirrors, and a pull says why it cannot make one.
                return
            self._mirror_tables = True
        if self.sql.one("SELECT 1 FROM hl_store_info WHERE name = ?", (schema.MIRRORS_AS_DATABASES,)) is None:
            from app.store import mirrors  # mirrors builds on Store: imported when needed

            mirrors.materialize_all(self)

    @property
    def schema_policy(self) -> SchemaPolicy:
        return schema_version_policy(self.schema_version, schema.SCHEMA_VERSION)

    @property
    def needs_migration(self) -> bool:
        return self.schema_policy.needs_migration

    def migrate(self, backup_to: Path | None = None) -> Path | None:
        """Bring an older store up to this version's schema. An SQLite store is first
        copied through the backup API (never by copying files, which would miss the WAL);
        each step then runs in its own transaction and the version is recorded with it,
        so a failed step leaves the store at the last good version. Returns the backup."""
        if not self.needs_migration:
            return None
        backup = None
        if self.file_path is not None:
            source = self.file_path
            backup = Path(backup_to) if backup_to else source.with_name(
                f"{source.stem}.v{self.schema_version}-backup{source.suffix}")
            if backup.exists():
                raise HashlensError(Failure.FILE_FAILED, f"The backup '{backup}' exists already; move it away first.")
            target = sqlite3.connect(backup)
            try:
                self.db.connection().backup(target)
            finally:
                target.close()
        self.read_only = False
        for version in range(self.schema_version, schema.SCHEMA_VERSION):
            step = schema.MIGRATIONS.get(version)
            if step is None:
                raise HashlensError(Failure.STORE_FAILED, f"No migration from schema version {version} exists.")
            with self.writing():
                step(self)
                self.sql.exec("UPDATE hl_store_info SET value = ? WHERE name = ?", (str(version + 1), "schema_version"))
            self.schema_version = version + 1
            self.listing.for_schema(self.schema_version)
        self._prepare_mirrors()
        return backup

    def read_only_reason(self) -> str:
        if self.replica_of is not None:
            return (f"The store {self.describe()} is a read-only replica of {self.replica_of}: it lists what "
                    "its primary holds once replayed, and every change must be made on the primary.")
        return self.schema_policy.reason(self.describe()) or (
            f"The store {self.describe()} is open read-only; reopen it for writing to change it.")

    def close(self) -> None:
        """Close this thread's connection (peewee keeps one per thread); the store stays
        usable and reconnects on its next statement."""
        if not self.db.is_closed():
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        return self.location.display()

    @property
    def file_path(self) -> Path | None:
        return self.location.path.resolve() if self.location.path is not None else None

    # -- damage or a passing trouble ------------------------------------------------------

    def check_damage(self) -> str | None:
        """Why the store is proven damaged or not a Hashlens store, or None when its check
        passes. SQLite: a fresh read-only connection runs `PRAGMA quick_check` and looks for
        the schema. A server checks its own files, so there this is always None."""
        if self.file_path is None:
            return None
        try:
            conn = sqlite3.connect(self.file_path.as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            return None if not _proves_damage(exc) else reason(exc)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = {m._meta.table_name for m in schema.ALL_TABLES} - tables
            if missing:
                return f"the Hashlens tables {', '.join(sorted(missing))} are missing"
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)") if r[0] != "ok"]
            return "; ".join(problems) or None
        except sqlite3.Error as exc:
            return reason(exc) if _proves_damage(exc) else None
        finally:
            conn.close()

    def _confirm_damage(self, error: HashlensError) -> HashlensError:
        """An error that looks like damage: this thread's connection is renewed, and the
        error stands only when `check_damage` proves it (issue 10 item 9)."""
        if self.file_path is None:
            return error
        if self.db.in_transaction():
            # Renewed once the transaction has ended (its own exit still needs the connection).
            self._local.renew = True
        else:
            self._drop_connection()
        if self.check_damage() is not None:
            return error
        return transient_read_error(self.describe(), error.suspect)

    # -- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self):
        """One write transaction, holding the write lock from its first statement. The
        changes made inside it are one group: the caller journals them with `record()`
        (each write method journals itself only when it opens its own transaction)."""
        if self.read_only:
            raise HashlensError(Failure.READ_ONLY, self.read_only_reason())
        self._local.grouped = getattr(self._local, "grouped", 0) + 1
        try:
            with self._transaction(**self.db.write_begin) as txn:
                yield txn
                # Kill tests stop here: every change of the transaction made, none committed.
                faults.checkpoint("store.commit")
        finally:
            self._local.grouped -= 1

    @contextlib.contextmanager
    def group(self, action: str, database: str | None, params: dict | None = None):
        """Several changes as one: one transaction and one journal record, written as the
        block ends with the params dict the block may have filled in."""
        params = dict(params or {})
        with self.writing():
            yield params
            self.record(action, database, None, params)

    def _change(self, action: str, database: str | None, identifier: str | None, params: dict,
                apply: Callable[[], object], guard: tuple[str, ...] = ()):
        """One write action: its own transaction and journal record, tried again after a
        deadlock or serialization failure; inside a caller's group, part of that group
        (which is then the atomic unit and journals itself). The databases in `guard` are
        refused inside the transaction when they are mirrors (`refuse_mirror_write`),
        except for the write actions Media Server has for an existing entry: on a mirror
        those change the local copy and stage the action to push (`changes.stager`)."""
        from app.store import changes  # a mirror's change-set (imports this module)

        if guard and not (action in changes.STAGEABLE and self.mirror_of(database) is not None):
            change = apply

            def apply():
                self.refuse_mirror_write(*guard)
                return change()

        if getattr(self._local, "grouped", 0):
            stage = changes.stager(self, action, database, identifier, params)
            result = apply()
            if stage is not None:
                stage()
            return result
        if action in changes.STAGEABLE and changes.is_mirror(self, database):
            changes.ensure_table(self)  # DDL outside the write: MySQL commits it implicitly
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.writing():
                    # A write on a mirror changes the local copy and stages its Media Server
                    # action in the same transaction (issue 12).
                    stage = changes.stager(self, action, database, identifier, params)
                    result = apply()
                    if stage is not None:
                        stage()
                    self.record(action, database, identifier, params)
                return result
            except HashlensError as exc:
                if not getattr(exc, "retry", False) or attempt == WRITE_ATTEMPTS:
                    raise
            # Jitter, so writers that collided do not collide again in step.
            time.sleep(random.uniform(0.002, 0.01) * attempt)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def reading(self):
        """One read transaction: a consistent snapshot for listings that span batches
        (WAL snapshot on SQLite, REPEATABLE READ on PostgreSQL, InnoDB consistent read)."""
        if self.db.in_transaction():
            yield
            return
        with self._transaction(**self.db.read_isolation):
            yield

    @contextlib.contextmanager
    def _transaction(self, *args, **kwargs):
        """A peewee transaction whose failures all surface as HashlensError. When the
        connection died mid-way, the rollback fails too: the connection is dropped (the
        server has already discarded the transaction) and the original error reported."""
        with self._renewing():
            yield from self._atomic(*args, **kwargs)

    def _atomic(self, *args, **kwargs):
        try:
            txn = self.db.atomic(*args, **kwargs)
            txn.__enter__()
        except peewee.PeeweeException as exc:
            raise self.sql.translate(exc) from exc
        try:
            yield txn
        except BaseException as exc:
            try:
                txn.__exit__(type(exc), exc, exc.__traceback__)
            except peewee.PeeweeException:
                self._drop_connection()
            if isinstance(exc, peewee.PeeweeException):
                raise self.sql.translate(exc) from exc
            raise
        else:
            try:
                txn.__exit__(None, None, None)
            except peewee.PeeweeException as exc:
                raise self.sql.translate(exc) from exc

    @contextlib.contextmanager
    def _renewing(self):
        """Drop this thread's connection once its outermost transaction has ended, when an
        error inside it asked for a fresh one (a passing trouble, see _confirm_damage)."""
        try:
            yield
        finally:
            if getattr(self._local, "renew", False) and not self.db.in_transaction():
                self._local.renew = False
                self._drop_connection()

    def _drop_connection(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        self.db._state.reset()

    @contextlib.contextmanager
    def cancellable(self):
        """Run work whose statements another thread may cancel with `handle.cancel()`.

        A cancel is not an error for the user: it surfaces as Failure.CANCELLED, and the
        connection stays usable (reliability P4)."""
        self.db.connect(reuse_if_open=True)
        handle = QueryHandle(self)
        with self._lock:
            self._handles.add(handle)
        try:
            yield handle
            if handle.cancelled:
                # Some statements end "normally" when killed (MariaDB's BENCHMARK returns 0),
                # so their result cannot be trusted either.
                raise HashlensError(Failure.CANCELLED, "The query was cancelled.")
        except HashlensError as exc:
            if handle.cancelled and exc.failure is not Failure.CANCELLED:
                raise HashlensError(Failure.CANCELLED, "The query was cancelled.") from exc
            raise
        finally:
            with self._lock:
                self._handles.discard(handle)

    def interrupt(self) -> None:
        """Cancel every statement running inside `cancellable()` on this store (at close)."""
        with self._lock:
            handles = list(self._handles)
        for handle in handles:
            handle.cancel()

    # -- reads ------------------------------------------------------------------------

    def database_id(self, name: str) -> int:
        return self.entries.database_id(name)

    def list_databases(self) -> list[DatabaseInfo]:
        rows = self.sql.all("SELECT name, entry_count FROM hl_database ORDER BY name")
        latest = self.latest_snapshots() if rows else {}
        return [DatabaseInfo(name, count, latest.get(name)) for name, count in rows]

    def ensure_tables(self, tables: list[type[peewee.Model]]) -> None:
        """Create whichever of `tables` this store does not have yet. The optional tables
        (mirrors, change-sets, publications) appear on first use, so a store that never
        uses them stays as it was; this runs outside any write transaction, because
        MySQL commits DDL implicitly."""
        if all(self.db.table_exists(t._meta.table_name) for t in tables):
            return
        if self.read_only:
            raise HashlensError(Failure.READ_ONLY, self.read_only_reason())
        with self.db.bind_ctx(tables), self.writing():
            self.db.create_tables(tables, safe=True)

    # -- mirrors: the store-level questions (the rest is app/store/mirrors.py) ----------------

    def has_mirror_tables(self) -> bool:
        if not self._mirror_tables:
            self._mirror_tables = self.db.table_exists("hl_snapshot_entry")
        return self._mirror_tables

    def mirror_of(self, name: str) -> MirrorSource | None:
        """Where the database `name` is mirrored from (a Media Server's URL and database),
        or None when it is a local database (or no database at all).

        This is THE question for anything that changes a database: a mirror's entries are
        the server's, so the local write actions refuse it (`refuse_mirror_write`) until
        a write-back gives them a meaning (issue 12: a local write on a mirror becomes a
        staged change to push; that code asks this, in the write's own transaction)."""
        if not self.has_mirror_tables():
            return None
        row = self.sql.one("SELECT server_url, remote_database FROM hl_mirror WHERE name = ?", (name,))
        return MirrorSource(row[0], row[1]) if row else None

    def refuse_mirror_write(self, *databases: str) -> None:
        """Raise READ_ONLY (parameter `database`) when any of `databases` is a mirror. Every
        write action calls it inside its transaction, before changing anything."""
        for name in databases:
            source = self.mirror_of(name)
            if source is not None:
                raise HashlensError(
                    Failure.READ_ONLY,
                    f"'{name}' is a mirror of {source.describe()}, so it is read-only here: change it on "
                    f"the Media Server, then pull again to see the change.", parameter="database")

    def latest_snapshots(self) -> dict[str, SnapshotInfo]:
        """Every mirror's latest snapshot, by the mirror's name (one query)."""
        if not self.has_mirror_tables():
            return {}
        rows = self.sql.all(
            "SELECT m.name, s.number, s.taken_at, s.server_url, s.remote_database, s.entry_count "
            "FROM hl_mirror m JOIN hl_snapshot s ON s.mirror_id = m.id "
            "WHERE s.number = (SELECT MAX(t.number) FROM hl_snapshot t WHERE t.mirror_id = m.id)")
        return {name: SnapshotInfo(n, t, MirrorSource(u, d), c) for name, n, t, u, d, c in rows}

    def database_exists(self, name: str) -> bool:
        return self.entries.database_exists(name)

    def entry_exists(self, database: str, identifier: str) -> bool:
        db_id = self.database_id(database)
        return self.sql.one(
            "SELECT 1 FROM hl_entry WHERE database_id = ? AND identifier = ?", (db_id, identifier)
        ) is not None

    def image(self, database: str, identifier: str) -> ImageInfo:
        return self.entries.image(database, identifier)

    def images_by_key(self, keys: list[int]) -> dict[int, bytes]:
        return self.listing.images_by_key(keys)

    def list_page(self, query: ListingQuery) -> ListingPage:
        return self.listing.list_page(query)

    def page_identifiers(self, query: ListingQuery) -> list[str]:
        return self.listing.page_identifiers(query)

    def iter_listing(self, query: ListingQuery, batch: int = 2000) -> Iterator[list[EntryRow]]:
        return self.listing.iter_listing(query, batch)

    def count(self, query: ListingQuery, bound: int | None = None) -> Count:
        return self.listing.count(query, bound)

    def metadata_keys(self, database: str, limit: int = 500) -> list[str]:
        return self.listing.metadata_keys(database, limit)

    def record(self, action: str, database: str | None, identifier: str | None, params: dict) -> None:
        """Append one change to the journal; call inside the change's own transaction."""
        self.journal.record(action, database, identifier, params)

    def iter_journal(self, since: int | None = None, until: int | None = None, database: str | None = None,
                     batch: int = 5000) -> Iterator[list[JournalEntry]]:
        return self.journal.iter(since, until, database, batch)

    def history(self, since: int | None = None, until: int | None = None, limit: int | None = None,
                database: str | None = None) -> list[JournalEntry]:
        return self.journal.history(since, until, limit, database)

    def change_token(self) -> int:
        return self.journal.change_token()

    # -- writes: each atomic and journalled (the Media Server action's name) -----------------

    def create_database(self, name: str) -> None:
        self._change(names.CREATE_IMAGE_HASH_DATABASE, name, None, {}, lambda: self.entries.create_database(name))

    def rename_database(self, name: str, new_name: str) -> None:
        self._change(names.RENAME_IMAGE_HASH_DATABASE, name, None, {"newdatabase": new_name},
                     lambda: self.entries.rename_database(name, new_name), (name,))

    def remove_database(self, name: str) -> int:
        params: dict = {}

        def apply() -> int:
            params["entries"] = removed = self.entries.remove_database(name)
            return removed

        return self._change(names.REMOVE_IMAGE_HASH_DATABASE, name, None, params, apply, (name,))

    def add_entry(self, database: str, entry: NewEntry, *, source: str | None = None) -> int:
        """TrainImageHash: append one entry at the end of the database; returns its key."""
        params = {"imagelabel": entry.label, "metadata": [list(p) for p in entry.metadata]}
        if source:
            params["imagepath"] = source

        def apply() -> int:
            key = self.entries.add_entry(database, entry)
            faults.checkpoint("train.commit")
            return key

        return self._change(names.TRAIN_IMAGE_HASH, database, entry.identifier, params, apply, (database,))

    def add_entries(self, database: str, entries: list[tuple[NewEntry, str | None]]) -> None:
        """TrainImageHash of several entries (each with its image's path or None) in one
        transaction, through the bulk path, each journalled as its own TrainImageHash: all
        of them or none. A batch of trained images costs one transaction instead of one
        each (0.5 ms of the parent's CPU per image, issue 15 item 5)."""
        from app.store import bulk  # bulk builds on this module

        if not entries:
            return
        records = []
        for entry, source in entries:
            params = {"imagelabel": entry.label, "metadata": [list(p) for p in entry.metadata]}
            if source:
                params["imagepath"] = source
            records.append((entry.identifier, params))

        def apply() -> None:
            db_id = self.entries.database_id(database, lock=True)
            self.refuse_mirror_write(database)  # as add_entry does
            bulk.append_batch(self, db_id, [entry for entry, _ in entries])
            self.journal.record_many(names.TRAIN_IMAGE_HASH, database, records)
            for _ in entries:  # kill tests count entries, as they do for add_entry
                faults.checkpoint("train.commit")

        if getattr(self._local, "grouped", 0):
            apply()
            return
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.writing():
                    apply()
                return
            except HashlensError as exc:
                if not getattr(exc, "retry", False) or attempt == WRITE_ATTEMPTS:
                    raise
            time.sleep(random.uniform(0.002, 0.01) * attempt)

    def remove_entry(self, database: str, identifier: str) -> None:
        self._change(names.REMOVE_IMAGE_HASH, database, identifier, {},
                     lambda: self.entries.remove_entry(database, identifier), (database,))

    def attach_image(self, database: str, identifier: str, phash: int, image: bytes | None = None,
                     image_format: str | None = None, width: int | None = None, height: int | None = None,
                     sha256: str | None = None) -> None:
        """Hashlens's own change (no ACI action): an entry's pHash, and optionally its image,
        computed from an image file (`hashlens attach-images`)."""
        params = {"phash": f"{phash:016x}", "image": image is not None}
        self._change(names.ATTACH_IMAGES, database, identifier, params,
                     lambda: self.entries.attach_image(database, identifier, phash, image, image_format, width,
                                                       height, sha256))

    def null_image_data(self, database: str, identifier: str) -> None:
        self._change(names.NULL_IMAGE_HASH_IMAGE_DATA, database, identifier, {},
                     lambda: self.entries.null_image_data(database, identifier), (database,))

    def rename_entry(self, database: str, identifier: str, new_identifier: str) -> None:
        self._change(names.RENAME_IMAGE_HASH, database, identifier, {"newidentifier": new_identifier},
                     lambda: self.entries.rename_entry(database, identifier, new_identifier), (database,))

    def move_entry(self, database: str, identifier: str, new_database: str) -> None:
        self._change(names.MOVE_IMAGE_HASH, database, identifier, {"newdatabase": new_database},
                     lambda: self.entries.move_entry(database, identifier, new_database),
                     (database, new_database))

    def relabel(self, database: str, identifier: str, label: str, new_label: str) -> None:
        self._change(names.RELABEL_IMAGE_HASH_IMAGE, database, identifier, {"imagelabel": label, "newimagelabel": new_label},
                     lambda: self.entries.relabel(database, identifier, label, new_label), (database,))

    def add_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        self._change(names.ADD_IMAGE_HASH_METADATA, database, identifier, {"key": key_name, "value": value},
                     lambda: self.entries.add_metadata(database, identifier, key_name, value), (database,))

    def update_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        self._change(names.UPDATE_IMAGE_HASH_METADATA, database, identifier, {"key": key_name, "newvalue": value},
                     lambda: self.entries.update_metadata(database, identifier, key_name, value), (database,))

    def remove_metadata(self, database: str, identifier: str, key_name: str) -> None:
        self._change(names.REMOVE_IMAGE_HASH_METADATA, database, identifier, {"key": key_name},
                     lambda: self.entries.remove_metadata(database, identifier, key_name), (database,))

    def rebuild_marks(self, database: str) -> None:
        """Recompute a database's position marks and count after a bulk change (inside
        the bulk change's own transaction)."""
        self.entries.rebuild_marks(database)


def _proves_damage(exc: BaseException) -> bool:
    """Whether a fresh connection's failure shows the file itself is bad (not a lock or
    another process's passing state)."""
    low = str(exc).lower()
    return "not a database" in low or "malformed" in low or "corrupt" in low
