"""The Store: every SQL statement Hashlens runs, on SQLite, PostgreSQL and MySQL/MariaDB.

Queries are plain SQL with bound parameters rather than peewee query objects: a page of
fifty rows through model instances costs about ten times raw `sqlite3`, and the hot paths
(listing, paging, exports) must stay within a small factor of it. peewee still owns the
connections, transactions and the schema (`schema.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import peewee
from playhouse.shortcuts import ReconnectMixin

from app import faults
from app.domain import (
    Count,
    DatabaseInfo,
    EntryRow,
    Failure,
    FilterOp,
    HashlensError,
    ImageInfo,
    JournalEntry,
    ListingPage,
    ListingQuery,
    NewEntry,
    PHASH_MASK,
    SortKey,
    no_such_database,
)
from app.source import SchemaPolicy, schema_version_policy
from app.store import schema
from app.store.drivers import load_driver
from app.store.url import StoreLocation, parse_store_url

# One position mark every MARK_SPACING entries: a seek steps at most this far.
MARK_SPACING = 1024
# Bound parameters per IN list, well under SQLite's default limit of 32766 and
# MySQL's/PostgreSQL's 65535 (reliability P2).
IN_CHUNK = 900
BUSY_TIMEOUT_MS = 5000

_ENTRY_COLUMNS = (
    "e.id, e.identifier, e.label, e.has_image_data, e.phash, e.image_format, "
    "e.width, e.height, e.byte_size, e.meta_count, e.trained_at"
)

_SORT_COLUMNS = {
    SortKey.IDENTIFIER: "e.identifier",
    SortKey.LABEL: "e.label",
    SortKey.HAS_IMAGE_DATA: "e.has_image_data",
    SortKey.META_COUNT: "e.meta_count",
    SortKey.PHASH: "e.phash",
    SortKey.WIDTH: "COALESCE(e.width, -1)",
    SortKey.TRAINED_AT: "e.trained_at",
}

# Per-backend column types for the schema's custom fields. Binary collations make
# names compare byte for byte everywhere (reliability S5); "C" does it on PostgreSQL.
_FIELD_TYPES = {
    "sqlite": {"HLNAME": "VARCHAR(254)", "HLBLOB": "BLOB"},
    "postgresql": {"HLNAME": 'VARCHAR(254) COLLATE "C"', "HLBLOB": "BYTEA"},
    "mysql": {"HLNAME": "VARCHAR(254) CHARACTER SET utf8mb4 COLLATE {bin}", "HLBLOB": "LONGBLOB"},
}


def to_signed64(value: int) -> int:
    value &= PHASH_MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def now_ms() -> int:
    return int(time.time() * 1000)


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers and services
        return "unknown"


def _hamming_sql(a, b):
    if a is None or b is None:
        return None
    return ((a ^ b) & PHASH_MASK).bit_count()


class _HashlensSqlite(peewee.SqliteDatabase):
    """SQLite with Hashlens's connection setup."""

    def __init__(self, *args, read_only: bool = False, **kwargs):
        self._read_only = read_only
        super().__init__(*args, **kwargs)

    def _add_conn_hooks(self, conn):
        super()._add_conn_hooks(conn)
        conn.create_function("hl_hamming", 2, _hamming_sql, deterministic=True)
        if not self._read_only:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")


class _ReconnectingServer(ReconnectMixin):
    """Reconnects after a lost server connection, but only between transactions, so a
    half-done change is rolled back and reported, never silently replayed (peewee's rule)."""

    reconnect_errors = ReconnectMixin.reconnect_errors + (
        (peewee.OperationalError, "terminating connection"),
        (peewee.OperationalError, "the connection is closed"),
        (peewee.InterfaceError, "the connection is closed"),
        (peewee.OperationalError, "server closed the connection"),
        (peewee.OperationalError, "consuming input failed"),
    )

    def __init__(self, *args, read_only: bool = False, **kwargs):
        self._read_only = read_only
        super().__init__(*args, **kwargs)


class _HashlensPostgres(_ReconnectingServer, peewee.PostgresqlDatabase):
    def _initialize_connection(self, conn):
        super()._initialize_connection(conn)
        if self._read_only:
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")


class _HashlensMySQL(_ReconnectingServer, peewee.MySQLDatabase):
    def _initialize_connection(self, conn):
        super()._initialize_connection(conn)
        if self._read_only:
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")


class QueryHandle:
    """Cancels the statement a worker thread is running on its own connection: SQLite
    interrupt, PostgreSQL cancel, MySQL KILL QUERY from a second connection."""

    def __init__(self, store: "Store"):
        self.store = store
        self.connection = store.db.connection()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        conn, backend = self.connection, self.store.backend
        with contextlib.suppress(Exception):
            if backend == "sqlite":
                conn.interrupt()
            elif backend == "postgresql":
                (getattr(conn, "cancel_safe", None) or conn.cancel)()
            else:
                import pymysql

                loc = self.store.location
                killer = pymysql.connect(host=loc.host, port=loc.port or 3306, user=loc.user or "root",
                                         password=loc.password or "", connect_timeout=5)
                try:
                    with killer.cursor() as cursor:
                        cursor.execute(f"KILL QUERY {int(conn.thread_id())}")
                finally:
                    killer.close()


class Store:
    """A Hashlens store: its databases of image hashes, their entries and the journal.

    Thread use: peewee keeps one connection per thread, so workers each get their own.
    Writes run in `writing()` transactions that take the write lock up front (SQLite
    `BEGIN IMMEDIATE`), so concurrent writers wait for each other instead of failing."""

    def __init__(self, db: peewee.Database, location: StoreLocation, read_only: bool):
        self.db = db
        self.location = location
        self.backend = location.backend
        self.read_only = read_only
        self._sql_cache: dict[str, str] = {}
        self._db_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._handles: set[QueryHandle] = set()
        # Per thread: how deep in caller-opened write transactions (`writing`, `group`)
        # this thread is; a change made inside one is journalled by the group instead.
        self._local = threading.local()
        self.schema_version: int | None = None

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, read_only: bool = False, create: bool = True) -> "Store":
        location = parse_store_url(url)
        db = cls._connect(location, read_only=read_only, create=create)
        store = cls(db, location, read_only)
        try:
            store._prepare(create=create and not read_only)
        except BaseException:
            db.close()
            raise
        return store

    @staticmethod
    def _connect(location: StoreLocation, *, read_only: bool, create: bool) -> peewee.Database:
        if location.backend == "sqlite":
            path = location.path.resolve()
            if read_only or not create:
                if not path.exists():
                    raise HashlensError(
                        Failure.STORE_UNAVAILABLE, f"The store file '{path}' does not exist."
                    )
            if read_only:
                # A file URI from Path.as_uri() escapes '?' and '#'; an f-string would
                # not, and could silently create a new empty file.
                target, kwargs = path.as_uri() + "?mode=ro", {"uri": True}
            else:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise HashlensError(
                        Failure.STORE_UNAVAILABLE, f"Cannot create the folder for '{path}': {exc.strerror}."
                    ) from None
                target, kwargs = str(path), {}
            db = _HashlensSqlite(
                target, read_only=read_only, timeout=BUSY_TIMEOUT_MS / 1000, field_types=_FIELD_TYPES["sqlite"], **kwargs
            )
        elif location.backend == "postgresql":
            load_driver("postgresql")
            db = _HashlensPostgres(
                location.name,
                read_only=read_only,
                host=location.host,
                port=location.port or 5432,
                user=location.user,
                password=location.password,
                field_types=_FIELD_TYPES["postgresql"],
                connect_timeout=10,
            )
        else:
            load_driver("mysql")
            db = _HashlensMySQL(
                location.name,
                read_only=read_only,
                host=location.host,
                port=location.port or 3306,
                user=location.user or "root",
                password=location.password or "",
                charset="utf8mb4",
                connect_timeout=10,
                field_types=dict(_FIELD_TYPES["mysql"]),
            )
        try:
            db.connect(reuse_if_open=True)
        except (peewee.PeeweeException, sqlite3.Error, UnicodeDecodeError) as exc:
            # A damaged file can fail its first PRAGMA in odd ways (even UnicodeDecodeError).
            with contextlib.suppress(Exception):
                db.close()
            reason = _reason(exc)
            if isinstance(exc, UnicodeDecodeError):
                reason = "file is not a database"
            if "not a database" in reason or "malformed" in reason:
                raise HashlensError(
                    Failure.STORE_UNAVAILABLE,
                    f"'{location.display()}' is damaged or is not a Hashlens store ({reason}). "
                    "Hashlens never repairs a store in place.",
                ) from None
            raise HashlensError(
                Failure.STORE_UNAVAILABLE, f"Cannot open the store {location.display()}: {reason}"
            ) from None
        if location.backend == "mysql":
            # MariaDB's NO PAD binary collation keeps 'a' and 'a ' apart; MySQL 8's
            # utf8mb4_0900_bin is NO PAD already (reliability S5).
            version = db.execute_sql("SELECT VERSION()").fetchone()[0]
            binary = "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"
            db._field_types["HLNAME"] = _FIELD_TYPES["mysql"]["HLNAME"].format(bin=binary)
        return db

    def _prepare(self, *, create: bool) -> None:
        """Check (or create) the schema: a foreign or damaged file is refused, never altered."""
        try:
            tables = set(self.db.get_tables())
        except peewee.DatabaseError as exc:
            raise HashlensError(
                Failure.STORE_UNAVAILABLE,
                f"'{self.location.display()}' is not a readable Hashlens store: {_reason(exc)}",
            ) from None
        wanted = {m._meta.table_name for m in schema.ALL_TABLES}
        if not tables & wanted:
            if not create:
                raise HashlensError(
                    Failure.STORE_UNAVAILABLE,
                    f"'{self.location.display()}' holds no Hashlens store"
                    + (" and was opened read-only." if self.read_only else "."),
                )
            self._create_schema()
        elif not wanted <= tables:
            missing = ", ".join(sorted(wanted - tables))
            raise HashlensError(
                Failure.STORE_UNAVAILABLE,
                f"'{self.location.display()}' is not a complete Hashlens store (missing tables: {missing}).",
            )
        row = self._one("SELECT value FROM hl_store_info WHERE name = ?", ("schema_version",))
        self.schema_version = int(row[0]) if row else None
        if self.schema_version is None:
            raise HashlensError(Failure.STORE_UNAVAILABLE, "The store records no schema version.")
        if not self.schema_policy.writable:
            # A newer Hashlens wrote this store: read it, never write it. An older one is
            # migrated only on request, after a backup (reliability D4).
            self.read_only = True

    def _create_schema(self) -> None:
        with self.db.bind_ctx(schema.ALL_TABLES), self.db.atomic():
            self.db.create_tables(schema.ALL_TABLES, safe=True)
            if self.backend in ("sqlite", "postgresql"):
                # Entries without image data are few and audited often (reliability notes:
                # a partial index turned a 550 ms count into 32 ms at 10 million).
                self.db.execute_sql(
                    "CREATE INDEX IF NOT EXISTS hl_entry_no_image ON hl_entry (database_id, id) "
                    "WHERE NOT has_image_data"
                    if self.backend == "postgresql"
                    else "CREATE INDEX IF NOT EXISTS hl_entry_no_image ON hl_entry (database_id, id) "
                    "WHERE has_image_data = 0"
                )
            else:
                self.db.execute_sql("CREATE INDEX hl_entry_no_image ON hl_entry (database_id, has_image_data, id)")
            self._exec(
                "INSERT INTO hl_store_info (name, value) VALUES (?, ?)", ("schema_version", str(schema.SCHEMA_VERSION))
            )
            self._exec("INSERT INTO hl_store_info (name, value) VALUES (?, ?)", ("created_at", str(now_ms())))

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
        if self.backend == "sqlite":
            source = self.location.path.resolve()
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
                self._exec("UPDATE hl_store_info SET value = ? WHERE name = ?", (str(version + 1), "schema_version"))
            self.schema_version = version + 1
        return backup

    def read_only_reason(self) -> str:
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
        return self.location.path.resolve() if self.backend == "sqlite" else None

    # -- SQL plumbing -------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        """Our SQL uses `?` placeholders; psycopg and pymysql want `%s`."""
        if self.backend == "sqlite":
            return sql
        cached = self._sql_cache.get(sql)
        if cached is None:
            cached = self._sql_cache[sql] = sql.replace("%", "%%").replace("?", "%s")
        return cached

    def _exec(self, sql: str, params=()):
        try:
            return self.db.execute_sql(self._sql(sql), params)
        except peewee.DatabaseError as exc:
            raise _translate(exc, self) from exc

    def _one(self, sql: str, params=()):
        return self._fetch(sql, params, "fetchone")

    def _all(self, sql: str, params=()) -> list:
        return self._fetch(sql, params, "fetchall")

    def _fetch(self, sql: str, params, how: str):
        try:
            return getattr(self._exec(sql, params), how)()
        except (HashlensError, peewee.DatabaseError, sqlite3.DatabaseError) as exc:
            # sqlite3 raises from fetchall() itself (a damaged page), outside peewee's wrapper.
            if self.backend != "sqlite" or "could not decode" not in str(exc).lower():
                raise _translate(exc, self) from exc
        # Another program stored bytes that are not UTF-8 as TEXT; by default that fails
        # the whole read (reliability S4). Read them with surrogate escapes instead: the
        # listing works, and any export refuses exactly the undecodable entry by name.
        conn = self.db.connection()
        conn.text_factory = _tolerant_text
        try:
            return getattr(self._exec(sql, params), how)()
        finally:
            conn.text_factory = str

    def _insert(self, sql: str, params) -> int:
        if self.backend == "postgresql":
            return self._one(sql + " RETURNING id", params)[0]
        cursor = self._exec(sql, params)
        return cursor.lastrowid

    def _limit(self, limit: int | None, offset: int = 0) -> str:
        if limit is None and not offset:
            return ""
        if limit is None:
            limit = {"sqlite": -1, "postgresql": None, "mysql": 18446744073709551615}[self.backend]
        text = f" LIMIT {int(limit)}" if limit is not None else ""
        return text + (f" OFFSET {int(offset)}" if offset else "")

    @contextlib.contextmanager
    def writing(self):
        """One write transaction, holding the write lock from its first statement. The
        changes made inside it are one group: the caller journals them with `record()`
        (each write method journals itself only when it opens its own transaction)."""
        if self.read_only:
            raise HashlensError(Failure.READ_ONLY, self.read_only_reason())
        self._local.grouped = getattr(self._local, "grouped", 0) + 1
        try:
            with self._transaction(*(("IMMEDIATE",) if self.backend == "sqlite" else ())) as txn:
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

    @contextlib.contextmanager
    def _change(self, action: str, database: str | None, identifier: str | None, params: dict):
        """One write action: its own transaction and journal record, or, inside a caller's
        group, part of that group (which is then the atomic unit and journals itself)."""
        if getattr(self._local, "grouped", 0):
            yield
            return
        with self.writing():
            yield
            self.record(action, database, identifier, params)

    @contextlib.contextmanager
    def reading(self):
        """One read transaction: a consistent snapshot for listings that span batches
        (WAL snapshot on SQLite, REPEATABLE READ on PostgreSQL, InnoDB consistent read)."""
        if self.db.in_transaction():
            yield
            return
        kwargs = {"isolation_level": "REPEATABLE READ"} if self.backend == "postgresql" else {}
        with self._transaction(**kwargs):
            yield

    @contextlib.contextmanager
    def _transaction(self, *args, **kwargs):
        """A peewee transaction whose failures all surface as HashlensError. When the
        connection died mid-way, the rollback fails too: the connection is dropped (the
        server has already discarded the transaction) and the original error reported."""
        try:
            txn = self.db.atomic(*args, **kwargs)
            txn.__enter__()
        except peewee.PeeweeException as exc:
            raise _translate(exc, self) from exc
        try:
            yield txn
        except BaseException as exc:
            try:
                txn.__exit__(type(exc), exc, exc.__traceback__)
            except peewee.PeeweeException:
                self._drop_connection()
            if isinstance(exc, peewee.PeeweeException):
                raise _translate(exc, self) from exc
            raise
        else:
            try:
                txn.__exit__(None, None, None)
            except peewee.PeeweeException as exc:
                raise _translate(exc, self) from exc

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

    # -- databases ------------------------------------------------------------------------

    def database_id(self, name: str) -> int:
        row = self._one("SELECT id FROM hl_database WHERE name = ?", (name,))
        if row is None:
            raise no_such_database(name)
        return row[0]

    def list_databases(self) -> list[DatabaseInfo]:
        rows = self._all("SELECT name, entry_count FROM hl_database ORDER BY name")
        return [DatabaseInfo(name, count) for name, count in rows]

    def database_exists(self, name: str) -> bool:
        return self._one("SELECT 1 FROM hl_database WHERE name = ?", (name,)) is not None

    def create_database(self, name: str) -> None:
        with self._change("CreateImageHashDatabase", name, None, {}):
            self._create_database(name)

    def _create_database(self, name: str) -> None:
        if self.database_exists(name):
            raise HashlensError(Failure.DATABASE_EXISTS, f"'database={name}' already exists", parameter="database")
        try:
            self._exec("INSERT INTO hl_database (name, entry_count, created_at) VALUES (?, 0, ?)", (name, now_ms()))
        except HashlensError as exc:
            if exc.failure is Failure.STORE_FAILED and "unique" in exc.description.lower():
                raise HashlensError(
                    Failure.DATABASE_EXISTS, f"'database={name}' already exists", parameter="database"
                ) from None
            raise

    def rename_database(self, name: str, new_name: str) -> None:
        with self._change("RenameImageHashDatabase", name, None, {"newdatabase": new_name}):
            self._rename_database(name, new_name)

    def _rename_database(self, name: str, new_name: str) -> None:
        db_id = self.database_id(name)
        if self.database_exists(new_name):
            raise HashlensError(
                Failure.DATABASE_EXISTS, f"'newdatabase={new_name}' already exists", parameter="newdatabase"
            )
        self._exec("UPDATE hl_database SET name = ? WHERE id = ?", (new_name, db_id))

    def remove_database(self, name: str) -> int:
        params: dict = {}
        with self._change("RemoveImageHashDatabase", name, None, params):
            params["entries"] = removed = self._remove_database(name)
        return removed

    def _remove_database(self, name: str) -> int:
        db_id = self.database_id(name)
        count = self._one("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,))[0]
        entries = "SELECT id FROM hl_entry WHERE database_id = ?"
        self._exec(f"DELETE FROM hl_image WHERE entry_id IN ({entries})", (db_id,))
        self._exec(f"DELETE FROM hl_metadata WHERE entry_id IN ({entries})", (db_id,))
        self._exec("DELETE FROM hl_mark WHERE database_id = ?", (db_id,))
        self._exec("DELETE FROM hl_entry WHERE database_id = ?", (db_id,))
        self._exec("DELETE FROM hl_database WHERE id = ?", (db_id,))
        return count

    # -- entries ----------------------------------------------------------------------------

    def _entry_key(self, db_id: int, identifier: str, parameter: str = "identifier") -> int:
        row = self._one("SELECT id FROM hl_entry WHERE database_id = ? AND identifier = ?", (db_id, identifier))
        if row is None:
            raise HashlensError(
                Failure.NO_SUCH_IDENTIFIER, f"'{parameter}={identifier}' does not exist in this database",
                parameter=parameter,
            )
        return row[0]

    def entry_exists(self, database: str, identifier: str) -> bool:
        db_id = self.database_id(database)
        return self._one(
            "SELECT 1 FROM hl_entry WHERE database_id = ? AND identifier = ?", (db_id, identifier)
        ) is not None

    def _bump_count(self, db_id: int, delta: int) -> int:
        # The UPDATE takes the database row's lock first, so entries of one database are
        # numbered in commit order on PostgreSQL and MySQL too (ours).
        self._exec("UPDATE hl_database SET entry_count = entry_count + ? WHERE id = ?", (delta, db_id))
        return self._one("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,))[0]

    def add_entry(self, database: str, entry: NewEntry, *, source: str | None = None) -> int:
        """TrainImageHash: append one entry at the end of the database."""
        params = {"imagelabel": entry.label, "metadata": [list(p) for p in entry.metadata]}
        if source:
            params["imagepath"] = source
        with self._change("TrainImageHash", database, entry.identifier, params):
            key = self._add_entry(database, entry)
            faults.checkpoint("train.commit")
        return key

    def _add_entry(self, database: str, entry: NewEntry) -> int:
        db_id = self.database_id(database)
        if self._one(
            "SELECT 1 FROM hl_entry WHERE database_id = ? AND identifier = ?", (db_id, entry.identifier)
        ):
            raise _identifier_exists(entry.identifier)
        ordinal = self._bump_count(db_id, 1)
        try:
            key = self._insert(
                "INSERT INTO hl_entry (database_id, identifier, label, phash, has_image_data, image_format, "
                "width, height, byte_size, sha256, meta_count, trained_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    db_id, entry.identifier, entry.label, to_signed64(entry.phash), entry.image_data is not None,
                    entry.image_format, entry.width, entry.height,
                    len(entry.image_data) if entry.image_data is not None else None,
                    entry.sha256, len(entry.metadata), entry.trained_at or now_ms(),
                ),
            )
        except HashlensError as exc:
            if "unique" in exc.description.lower() or "duplicate" in exc.description.lower():
                raise _identifier_exists(entry.identifier) from None
            raise
        if entry.image_data is not None:
            self._exec("INSERT INTO hl_image (entry_id, data) VALUES (?, ?)", (key, entry.image_data))
        if entry.metadata:
            self._insert_metadata(key, entry.metadata)
        if ordinal % MARK_SPACING == 0:
            self._exec("INSERT INTO hl_mark (database_id, ordinal, entry_id) VALUES (?, ?, ?)", (db_id, ordinal, key))
        return key

    def _insert_metadata(self, key: int, items) -> None:
        seen = set()
        for k, _ in items:
            if k in seen:
                raise HashlensError(
                    Failure.KEY_EXISTS, f"Metadata key '{k}' is given twice; a key is unique per hash.", parameter="metadata"
                )
            seen.add(k)
        sql = self._sql("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (?, ?, ?)")
        try:
            cursor = self.db.cursor()
            cursor.executemany(sql, [(key, k, v) for k, v in items])
        except (peewee.DatabaseError, sqlite3.DatabaseError) as exc:
            raise _translate(exc, self) from exc
        except Exception as exc:  # driver-specific error classes from executemany
            raise _translate(exc, self) from exc

    def remove_entry(self, database: str, identifier: str) -> None:
        with self._change("RemoveImageHash", database, identifier, {}):
            self._remove_entry(database, identifier)

    def _remove_entry(self, database: str, identifier: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        self._exec("DELETE FROM hl_image WHERE entry_id = ?", (key,))
        self._exec("DELETE FROM hl_metadata WHERE entry_id = ?", (key,))
        self._exec("DELETE FROM hl_entry WHERE id = ?", (key,))
        self._bump_count(db_id, -1)
        self._marks_after_removal(db_id, key)

    def _marks_after_removal(self, db_id: int, key: int) -> None:
        # Later entries move up one place. A mark on the removed entry passes to the next
        # entry, which now holds that same position, so marks stay evenly spaced.
        self._exec("UPDATE hl_mark SET ordinal = ordinal - 1 WHERE database_id = ? AND entry_id > ?", (db_id, key))
        nxt = self._one(
            "SELECT id FROM hl_entry WHERE database_id = ? AND id > ? ORDER BY id" + self._limit(1), (db_id, key)
        )
        if nxt is None:
            self._exec("DELETE FROM hl_mark WHERE database_id = ? AND entry_id = ?", (db_id, key))
        else:
            self._exec("UPDATE hl_mark SET entry_id = ? WHERE database_id = ? AND entry_id = ?", (nxt[0], db_id, key))

    def null_image_data(self, database: str, identifier: str) -> None:
        with self._change("NullImageHashImageData", database, identifier, {}):
            self._null_image_data(database, identifier)

    def _null_image_data(self, database: str, identifier: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        self._exec("DELETE FROM hl_image WHERE entry_id = ?", (key,))
        self._exec("UPDATE hl_entry SET has_image_data = ? WHERE id = ?", (False, key))

    def rename_entry(self, database: str, identifier: str, new_identifier: str) -> None:
        with self._change("RenameImageHash", database, identifier, {"newidentifier": new_identifier}):
            self._rename_entry(database, identifier, new_identifier)

    def _rename_entry(self, database: str, identifier: str, new_identifier: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        if new_identifier != identifier and self._one(
            "SELECT 1 FROM hl_entry WHERE database_id = ? AND identifier = ?", (db_id, new_identifier)
        ):
            raise _identifier_exists(new_identifier, "newidentifier")
        self._exec("UPDATE hl_entry SET identifier = ? WHERE id = ?", (new_identifier, key))

    def move_entry(self, database: str, identifier: str, new_database: str) -> None:
        with self._change("MoveImageHash", database, identifier, {"newdatabase": new_database}):
            self._move_entry(database, identifier, new_database)

    def _move_entry(self, database: str, identifier: str, new_database: str) -> None:
        """Move an entry to another database. It keeps its training time, so it takes its
        place among the target's entries by age (ours; MS does not document the order)."""
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        try:
            target = self.database_id(new_database)
        except HashlensError:
            raise HashlensError(
                Failure.NO_SUCH_DATABASE, f"'newdatabase={new_database}' does not exist", parameter="newdatabase"
            ) from None
        if target == db_id:
            return
        if self._one("SELECT 1 FROM hl_entry WHERE database_id = ? AND identifier = ?", (target, identifier)):
            raise _identifier_exists(identifier, "identifier", new_database)
        self._bump_count(db_id, -1)
        self._marks_after_removal(db_id, key)
        self._bump_count(target, 1)
        self._exec("UPDATE hl_mark SET ordinal = ordinal + 1 WHERE database_id = ? AND entry_id > ?", (target, key))
        self._exec("UPDATE hl_entry SET database_id = ? WHERE id = ?", (target, key))

    def relabel(self, database: str, identifier: str, label: str, new_label: str) -> None:
        with self._change("RelabelImageHashImage", database, identifier, {"imagelabel": label, "newimagelabel": new_label}):
            self._relabel(database, identifier, label, new_label)

    def _relabel(self, database: str, identifier: str, label: str, new_label: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        current = self._one("SELECT label FROM hl_entry WHERE id = ?", (key,))[0]
        if current != label:
            raise HashlensError(
                Failure.NO_SUCH_LABEL,
                f"'imagelabel={label}' does not exist for '{identifier}' (its image is labelled '{current}')",
                parameter="imagelabel",
            )
        self._exec("UPDATE hl_entry SET label = ? WHERE id = ?", (new_label, key))

    def add_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        with self._change("AddImageHashMetadata", database, identifier, {"key": key_name, "value": value}):
            self._add_metadata(database, identifier, key_name, value)

    def _add_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        if self._one("SELECT 1 FROM hl_metadata WHERE entry_id = ? AND meta_key = ?", (key, key_name)):
            raise HashlensError(
                Failure.KEY_EXISTS,
                f"'key={key_name}' already exists for '{identifier}'; use UpdateImageHashMetadata to change it",
                parameter="key",
            )
        self._exec("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (?, ?, ?)", (key, key_name, value))
        self._exec("UPDATE hl_entry SET meta_count = meta_count + 1 WHERE id = ?", (key,))

    def update_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        with self._change("UpdateImageHashMetadata", database, identifier, {"key": key_name, "newvalue": value}):
            self._update_metadata(database, identifier, key_name, value)

    def _update_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        self._metadata_key_exists(key, identifier, key_name)
        self._exec("UPDATE hl_metadata SET meta_value = ? WHERE entry_id = ? AND meta_key = ?", (value, key, key_name))

    def remove_metadata(self, database: str, identifier: str, key_name: str) -> None:
        with self._change("RemoveImageHashMetadata", database, identifier, {"key": key_name}):
            self._remove_metadata(database, identifier, key_name)

    def _remove_metadata(self, database: str, identifier: str, key_name: str) -> None:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        self._metadata_key_exists(key, identifier, key_name)
        self._exec("DELETE FROM hl_metadata WHERE entry_id = ? AND meta_key = ?", (key, key_name))
        self._exec("UPDATE hl_entry SET meta_count = meta_count - 1 WHERE id = ?", (key,))

    def _metadata_key_exists(self, key: int, identifier: str, key_name: str) -> None:
        if not self._one("SELECT 1 FROM hl_metadata WHERE entry_id = ? AND meta_key = ?", (key, key_name)):
            raise HashlensError(
                Failure.NO_SUCH_KEY, f"'key={key_name}' does not exist for '{identifier}'", parameter="key"
            )

    def image(self, database: str, identifier: str) -> ImageInfo:
        db_id = self.database_id(database)
        key = self._entry_key(db_id, identifier)
        row = self._one(
            "SELECT e.identifier, e.label, e.image_format, e.width, e.height, i.data FROM hl_entry e "
            "LEFT JOIN hl_image i ON i.entry_id = e.id WHERE e.id = ?",
            (key,),
        )
        data = bytes(row[5]) if row[5] is not None else None
        return ImageInfo(row[0], row[1], row[2], row[3], row[4], data)

    def images_by_key(self, keys: list[int]) -> dict[int, bytes]:
        """Image bytes for a batch of entries, one query per chunk (exports, audits)."""
        found: dict[int, bytes] = {}
        for chunk in _chunks(keys, IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            for key, data in self._all(f"SELECT entry_id, data FROM hl_image WHERE entry_id IN ({marks})", chunk):
                found[key] = bytes(data)
        return found

    # -- listing ------------------------------------------------------------------------------

    def list_page(self, query: ListingQuery) -> ListingPage:
        """One window of a listing: `start`/`maxresults` of the filtered, ordered entries."""
        if (not query.is_filtered and query.sort is SortKey.POSITION and not query.descending
                and not query.metadata and self.backend != "mysql"):
            return self._plain_page(query)
        # One snapshot for every statement of the page (mark seek, rows, metadata, total),
        # so a change committed meanwhile is seen whole or not at all.
        with self.reading():
            db_id = self.database_id(query.database)
            if query.identifiers is not None:
                rows = self._rows_by_identifiers(db_id, query)
            else:
                rows = self._window_rows(db_id, query, query.start, query.maxresults)
            total = None if query.is_filtered else self._entry_count(db_id)
        return ListingPage(query, rows, total)

    def _plain_page(self, query: ListingQuery) -> ListingPage:
        """The browsing hot path, a page of all entries in database order, as one statement:
        the database, its position mark, the page and the total are read together, so the
        page needs no transaction and one round trip to a server. (MySQL cannot take a
        subquery in OFFSET; it uses the general path.)"""
        sql = (
            "WITH d AS (SELECT id, entry_count FROM hl_database WHERE name = ?), "
            "mk AS (SELECT ordinal, entry_id FROM hl_mark WHERE database_id = (SELECT id FROM d) "
            "AND ordinal <= ? ORDER BY ordinal DESC LIMIT 1) "
            f"SELECT {_ENTRY_COLUMNS}, (SELECT entry_count FROM d) FROM hl_entry e "
            "WHERE e.database_id = (SELECT id FROM d) AND e.id >= COALESCE((SELECT entry_id FROM mk), 0) "
            "ORDER BY e.id"
        )
        limit = query.maxresults if query.maxresults is not None else {"sqlite": -1, "postgresql": None}[self.backend]
        sql += (f" LIMIT {int(limit)}" if limit is not None else "") + \
            " OFFSET (? - COALESCE((SELECT ordinal FROM mk), 1))"
        raw = self._all(sql, (query.database, query.start, query.start))
        if not raw:
            # Past the end, an empty database, or no such database: one more look says which.
            db_id = self.database_id(query.database)
            return ListingPage(query, [], self._entry_count(db_id))
        return ListingPage(query, _rows(raw, query.start), raw[0][-1])

    def iter_listing(self, query: ListingQuery, batch: int = 2000) -> Iterator[list[EntryRow]]:
        """The whole window of a listing in batches, by keyset, in one read snapshot:
        memory stays flat and an export sees no half-made change (reliability C3)."""
        db_id = self.database_id(query.database)
        with self.reading():
            if query.identifiers is not None:
                yield from _chunks(self._rows_by_identifiers(db_id, query), batch)
                return
            remaining = query.maxresults
            position = query.start
            after = None
            while remaining is None or remaining > 0:
                size = batch if remaining is None else min(batch, remaining)
                if after is None:
                    rows = self._window_rows(db_id, query, position, size)
                else:
                    rows = self._rows_after(db_id, query, after, position, size)
                if not rows:
                    return
                yield rows
                position += len(rows)
                if remaining is not None:
                    remaining -= len(rows)
                after = self._sort_value(query, rows[-1])
                if len(rows) < size:
                    return

    def _entry_count(self, db_id: int) -> int:
        return self._one("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,))[0]

    def count(self, query: ListingQuery, bound: int | None = None) -> Count:
        """Entries in the whole (unwindowed) listing; with `bound`, stop counting past it."""
        db_id = self.database_id(query.database)
        if not query.is_filtered:
            return Count(self._entry_count(db_id), True)
        if query.identifiers is not None:
            return Count(len(self._rows_by_identifiers(db_id, query.unwindowed())), True)
        where, params = self._where(db_id, query)
        if bound is None:
            return Count(self._one(f"SELECT COUNT(*) FROM {where}", params)[0], True)
        n = self._one(
            f"SELECT COUNT(*) FROM (SELECT 1 AS one FROM {where}{self._limit(bound + 1)}) AS bounded",
            params,
        )[0]
        return Count(min(n, bound), n <= bound)

    def _order(self, query: ListingQuery) -> str:
        direction = " DESC" if query.descending else ""
        if query.sort is SortKey.POSITION:
            return f"{'dm.entry_id' if self._driver(query) else 'e.id'}{direction}"
        return f"{_SORT_COLUMNS[query.sort]}{direction}, e.id{direction}"

    def _window_rows(self, db_id: int, query: ListingQuery, start: int, limit: int | None) -> list[EntryRow]:
        where, params = self._where(db_id, query)
        offset = start - 1
        if not query.filters and query.sort is SortKey.POSITION and not query.descending and offset:
            # Seek to the nearest position mark instead of stepping over `start` rows.
            mark = self._one(
                "SELECT ordinal, entry_id FROM hl_mark WHERE database_id = ? AND ordinal <= ? "
                "ORDER BY ordinal DESC" + self._limit(1),
                (db_id, start),
            )
            if mark is not None:
                where += " AND e.id >= ?"
                params = params + [mark[1]]
                offset = start - mark[0]
        if not query.filters and query.sort is not SortKey.POSITION and offset:
            # A deep page of a sorted listing: OFFSET walks from whichever end is nearer,
            # so the last page costs what the first does.
            total = self._entry_count(db_id)
            if offset > total // 2:
                if start > total:
                    return []
                size = total - offset if limit is None else min(limit, total - offset)
                reverse = dataclasses.replace(query, descending=not query.descending)
                sql = f"SELECT {_ENTRY_COLUMNS} FROM {where} ORDER BY {self._order(reverse)}"
                raw = self._all(sql + self._limit(size, total - offset - size), params)
                return self._build(raw[::-1], start, query)
        sql = f"SELECT {_ENTRY_COLUMNS} FROM {where} ORDER BY {self._order(query)}"
        raw = self._all(sql + self._limit(limit, offset), params)
        return self._build(raw, start, query)

    def _rows_after(self, db_id, query, after, position, limit) -> list[EntryRow]:
        where, params = self._where(db_id, query)
        op = "<" if query.descending else ">"
        if query.sort is SortKey.POSITION:
            key = "dm.entry_id" if self._driver(query) else "e.id"
            where += f" AND {key} {op} ?"
            params = params + [after[1]]
        else:
            column = _SORT_COLUMNS[query.sort]
            # Row-value comparison (SQLite 3.15+, PostgreSQL, MySQL) keeps the keyset exact.
            where += f" AND ({column}, e.id) {op} (?, ?)"
            params = params + list(after)
        sql = f"SELECT {_ENTRY_COLUMNS} FROM {where} ORDER BY {self._order(query)}"
        return self._build(self._all(sql + self._limit(limit), params), position, query)

    @staticmethod
    def _sort_value(query: ListingQuery, row: EntryRow) -> tuple:
        if query.sort is SortKey.POSITION:
            return (None, row.key)
        value = {
            SortKey.IDENTIFIER: row.identifier,
            SortKey.LABEL: row.label,
            SortKey.HAS_IMAGE_DATA: row.has_image_data,
            SortKey.META_COUNT: row.meta_count,
            SortKey.PHASH: to_signed64(row.phash),
            SortKey.WIDTH: -1 if row.width is None else row.width,
            SortKey.TRAINED_AT: row.trained_at,
        }[query.sort]
        return (value, row.key)

    def _rows_by_identifiers(self, db_id: int, query: ListingQuery) -> list[EntryRow]:
        """ListImageHashes' identifier filter: unknown ones are left out, repeats count once,
        database order is kept, then start/maxresults window the result (ours, after MS)."""
        wanted = list(dict.fromkeys(query.identifiers))
        where, params = self._where(db_id, query)
        found = []
        for chunk in _chunks(wanted, IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            found.extend(
                self._all(
                    f"SELECT {_ENTRY_COLUMNS} FROM {where} AND e.identifier IN ({marks})",
                    params + chunk,
                )
            )
        rows = _rows(found, 1)
        if query.sort is SortKey.POSITION:
            rows.sort(key=lambda r: r.key, reverse=query.descending)
        else:
            rows.sort(key=lambda r: self._sort_value(query, r), reverse=query.descending)
        window = rows[query.start - 1:]
        if query.maxresults is not None:
            window = window[: query.maxresults]
        window = [row._replace(position=query.start + i) for i, row in enumerate(window)]
        return self._with_metadata(window) if query.metadata else window

    def _driver(self, query: ListingQuery):
        """The metadata equality filter that should drive an SQLite scan, if any.

        `e.id IN (SELECT entry_id …)` makes SQLite collect and sort every match before the
        first page (0.9 s for 400,000 matches at 10M). Walking the (key, value, entry_id)
        index instead yields matches already in database order, so a page stops after its
        rows whether the value is common or rare. CROSS JOIN fixes that loop order."""
        if self.backend != "sqlite" or query.sort is not SortKey.POSITION:
            return None
        return next((f for f in query.filters if f.op is FilterOp.META_EQUALS), None)

    def _where(self, db_id: int, query: ListingQuery) -> tuple[str, list]:
        """`FROM … WHERE …` for a listing, with every value a bound parameter."""
        driver = self._driver(query)
        source, clauses, params = "hl_entry e", ["e.database_id = ?"], [db_id]
        if driver is not None:
            source = "hl_metadata dm CROSS JOIN hl_entry e ON e.id = dm.entry_id"
            clauses.insert(0, "dm.meta_key = ? AND dm.meta_value = ?")
            params.insert(0, driver.value)
            params.insert(0, driver.key)
        for f in query.filters:
            if f is driver:
                continue
            sql, values = self._filter_sql(f)
            clauses.append(sql)
            params.extend(values)
        return f"{source} WHERE {' AND '.join(clauses)}", params

    def _filter_sql(self, f) -> tuple[str, list]:
        """The one table of filter operations; values are always bound parameters."""
        op = f.op
        if op is FilterOp.LABEL_CONTAINS:
            pattern = "%" + _escape_like(f.value) + "%"
            if self.backend == "postgresql":
                return "e.label ILIKE ? ESCAPE '!'", [pattern]
            if self.backend == "mysql":
                return "LOWER(e.label) LIKE LOWER(?) ESCAPE '!'", [pattern]
            return "e.label LIKE ? ESCAPE '!'", [pattern]
        if op is FilterOp.LABEL_EQUALS:
            return "e.label = ?", [f.value]
        if op is FilterOp.HAS_IMAGE_DATA:
            # A literal, not a parameter, so the planner can use the partial index on
            # entries without image data (a bool is never user text).
            if self.backend == "postgresql":
                return ("e.has_image_data" if f.value else "NOT e.has_image_data"), []
            return f"e.has_image_data = {1 if f.value else 0}", []
        if op in (FilterOp.META_PRESENT, FilterOp.META_ABSENT):
            # A probe of the (entry, key) index per entry: a page of a common key stops after
            # its rows, where IN (SELECT …) would first collect every entry having the key.
            exists = "EXISTS (SELECT 1 FROM hl_metadata m WHERE m.entry_id = e.id AND m.meta_key = ?)"
            return (exists if op is FilterOp.META_PRESENT else "NOT " + exists), [f.key]
        if op is FilterOp.META_EQUALS:
            return "e.id IN (SELECT m.entry_id FROM hl_metadata m WHERE m.meta_key = ? AND m.meta_value = ?)", [f.key, f.value]
        if op is FilterOp.PHASH_WITHIN:
            target = to_signed64(f.value)
            if self.backend == "postgresql":
                return "bit_count((e.phash # ?)::bit(64)) <= ?", [target, f.distance]
            if self.backend == "mysql":
                return "BIT_COUNT(e.phash ^ ?) <= ?", [target, f.distance]
            return "hl_hamming(e.phash, ?) <= ?", [target, f.distance]
        raise AssertionError(op)

    def _build(self, raw: list, first_position: int, query: ListingQuery) -> list[EntryRow]:
        """Rows from raw entry tuples, with their metadata when the query asks for it: each
        row is built once, in one pass."""
        if not query.metadata:
            return _rows(raw, first_position)
        return _rows(raw, first_position, self._metadata_of([r[0] for r in raw if r[9]]))

    def _with_metadata(self, rows: list[EntryRow]) -> list[EntryRow]:
        items = self._metadata_of([r.key for r in rows if r.meta_count])
        return [r._replace(metadata=tuple(items.get(r.key, ()))) for r in rows]

    def _metadata_of(self, keys: list[int]) -> dict[int, list]:
        """Entries' metadata in the order it was added. Keys in a dense increasing run (a
        keyset batch of a listing in database order) take one range query; others one IN
        query per chunk."""
        items: dict[int, list] = {}
        sql = "SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE "
        # Only a dense run of keys: 100 scattered keys may span the whole database.
        if len(keys) > 8 and keys[-1] - keys[0] < 4 * len(keys) and all(a < b for a, b in zip(keys, keys[1:])):
            wanted = set(keys)
            # The range may hold other databases' entries too: keep only ours.
            for key, k, v in self._all(sql + "entry_id BETWEEN ? AND ? ORDER BY entry_id, id", (keys[0], keys[-1])):
                if key in wanted:
                    items.setdefault(key, []).append((k, v))
        else:
            for chunk in _chunks(keys, IN_CHUNK):
                marks = ",".join("?" * len(chunk))
                for key, k, v in self._all(sql + f"entry_id IN ({marks}) ORDER BY entry_id, id", chunk):
                    items.setdefault(key, []).append((k, v))
        return items

    def metadata_keys(self, database: str, limit: int = 500) -> list[str]:
        """The metadata keys a database uses, in order (the filter panel's suggestions)."""
        db_id = self.database_id(database)
        in_database = ("EXISTS (SELECT 1 FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id "
                       "WHERE m.meta_key = k.name AND e.database_id = ?)")
        if self.backend == "mysql":
            sql = ("SELECT k.name FROM (SELECT DISTINCT meta_key AS name FROM hl_metadata) AS k "
                   f"WHERE {in_database} ORDER BY k.name")
        else:
            # A loose index scan: one probe of the (key, value, entry) index per distinct
            # key, where DISTINCT over the join read every metadata row (7 s at 10M).
            sql = ("WITH RECURSIVE k(name) AS (SELECT MIN(meta_key) FROM hl_metadata UNION ALL "
                   "SELECT (SELECT MIN(meta_key) FROM hl_metadata WHERE meta_key > k.name) FROM k "
                   f"WHERE k.name IS NOT NULL) SELECT k.name FROM k WHERE k.name IS NOT NULL AND {in_database}")
        return [r[0] for r in self._all(sql + self._limit(limit), (db_id,))]

    def rebuild_marks(self, database: str) -> None:
        """Recompute a database's position marks and count after a bulk change."""
        db_id = self.database_id(database)
        self._exec("DELETE FROM hl_mark WHERE database_id = ?", (db_id,))
        self._exec(
            "INSERT INTO hl_mark (database_id, ordinal, entry_id) SELECT ?, n, id FROM "
            "(SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM hl_entry WHERE database_id = ?) AS numbered "
            f"WHERE n % {MARK_SPACING} = 0",
            (db_id, db_id),
        )
        self._exec(
            "UPDATE hl_database SET entry_count = (SELECT COUNT(*) FROM hl_entry WHERE database_id = ?) WHERE id = ?",
            (db_id, db_id),
        )

    # -- journal --------------------------------------------------------------------------

    def record(self, action: str, database: str | None, identifier: str | None, params: dict) -> None:
        """Append one change to the journal; call inside the change's own transaction."""
        self._exec(
            "INSERT INTO hl_journal (at_ms, username, action, database_name, identifier, params) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (now_ms(), _current_user(), action, database, identifier, json.dumps(params, ensure_ascii=False)),
        )

    def journal_where(self, since: int | None, until: int | None, database: str | None) -> tuple[str, list]:
        """The WHERE clause of a journal range; a database also matches the moves and
        renames that name it only in their parameters (filtered exactly by `touches`)."""
        clauses, params = ["1 = 1"], []
        if since is not None:
            clauses.append("at_ms >= ?")
            params.append(since)
        if until is not None:
            clauses.append("at_ms < ?")
            params.append(until)
        if database is not None:
            clauses.append("(database_name = ? OR action IN ('MoveImageHash', 'RenameImageHashDatabase'))")
            params.append(database)
        return " AND ".join(clauses), params

    def iter_journal(self, since: int | None = None, until: int | None = None, database: str | None = None,
                     batch: int = 5000) -> Iterator[list[JournalEntry]]:
        """The journal in the order changes were made, a batch at a time (keyset on id)."""
        where, params = self.journal_where(since, until, database)
        sql = (
            "SELECT id, at_ms, username, action, database_name, identifier, params FROM hl_journal "
            f"WHERE {where} AND id > ? ORDER BY id" + self._limit(batch)
        )
        after = -1
        while True:
            rows = self._all(sql, [*params, after])
            if not rows:
                return
            entries = [journal_entry(r) for r in rows]
            if database is not None:
                entries = [e for e in entries if touches(e, database)]
            if entries:
                yield entries
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def history(self, since: int | None = None, until: int | None = None, limit: int | None = None,
                database: str | None = None) -> list[JournalEntry]:
        found: list[JournalEntry] = []
        for batch in self.iter_journal(since, until, database):
            found.extend(batch)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def change_token(self) -> int:
        """Grows whenever anyone changes the store: windows poll it to notice others' edits."""
        row = self._one("SELECT MAX(id) FROM hl_journal")
        return row[0] or 0


# -- helpers ---------------------------------------------------------------------------


def _rows(raw, first_position: int, metadata: dict[int, list] | None = None) -> list[EntryRow]:
    """EntryRows from raw entry tuples (the columns of _ENTRY_COLUMNS); with `metadata`,
    every row gets its items, () when it has none."""
    mask = PHASH_MASK
    if metadata is None:
        return [
            EntryRow(first_position + i, r[0], r[1], r[2], bool(r[3]), r[4] & mask, r[5], r[6], r[7], r[8], r[9], r[10])
            for i, r in enumerate(raw)
        ]
    get, empty = metadata.get, ()
    return [
        EntryRow(first_position + i, r[0], r[1], r[2], bool(r[3]), r[4] & mask, r[5], r[6], r[7], r[8], r[9], r[10],
                 tuple(get(r[0], empty)))
        for i, r in enumerate(raw)
    ]


def journal_entry(r) -> JournalEntry:
    """A journal row (id, at_ms, username, action, database_name, identifier, params)."""
    try:
        params = json.loads(r[6]) if r[6] else {}
    except ValueError:  # written by another program: show it rather than fail
        params = {"raw": r[6]}
    return JournalEntry(int(r[1]), r[2], r[3], r[4], r[5], params if isinstance(params, dict) else {"value": params})


def touches(entry: JournalEntry, database: str) -> bool:
    """Whether a journal entry changed `database` (a move names its target in params)."""
    return entry.database == database or entry.params.get("newdatabase") == database


def _tolerant_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _chunks(items, size):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _escape_like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _identifier_exists(identifier: str, parameter: str = "identifier", database: str | None = None) -> HashlensError:
    where = f" in '{database}'" if database else ""
    return HashlensError(
        Failure.IDENTIFIER_EXISTS, f"'{parameter}={identifier}' already exists{where}", parameter=parameter
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def _translate(exc: BaseException, store: Store) -> HashlensError:
    """A driver error as a HashlensError a person can act on."""
    if isinstance(exc, HashlensError):
        return exc
    text = _reason(exc)
    low = text.lower()
    if "locked" in low or "busy" in low or "lock wait timeout" in low or "deadlock" in low:
        return HashlensError(
            Failure.STORE_BUSY,
            f"The store {store.describe()} is busy (locked by another program); nothing was written. Retry in a moment.",
        )
    if "conflict with recovery" in low:
        return HashlensError(
            Failure.STORE_BUSY,
            f"The replica {store.describe()} stopped the query to apply changes from its primary; "
            "try again, or ask for hot_standby_feedback on the replica for long audits.",
        )
    if "command denied" in low or "permission denied" in low:
        return HashlensError(
            Failure.READ_ONLY,
            f"Your account may not change {store.describe()} ({text}). "
            "Open the store read-only, or ask its owner for write rights.",
        )
    if "interrupted" in low or "canceling statement" in low or "cancelled" in low:
        return HashlensError(Failure.CANCELLED, "The operation was cancelled; nothing was changed.")
    if "disk is full" in low or "no space" in low or "database or disk is full" in low:
        return HashlensError(Failure.STORE_FAILED, f"The disk holding {store.describe()} is full; nothing was written.")
    if "readonly" in low or "read-only" in low or "read only" in low:
        return HashlensError(Failure.READ_ONLY, f"The store {store.describe()} cannot be written: {text}.")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return HashlensError(
            Failure.STORE_UNAVAILABLE,
            f"The store {store.describe()} is damaged or is not a Hashlens store ({text}). "
            "Run 'hashlens audit' for an integrity report; Hashlens never repairs it in place.",
        )
    if "server has gone away" in low or "lost connection" in low or "connection" in low and "closed" in low \
            or "terminating connection" in low:
        return HashlensError(
            Failure.STORE_UNAVAILABLE,
            f"The connection to {store.describe()} was lost ({text}); nothing half-done was kept. Try again to reconnect.",
        )
    return HashlensError(Failure.STORE_FAILED, f"The store reported an error: {text}")

