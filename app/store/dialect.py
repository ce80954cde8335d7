"""Connections and dialects: what differs between SQLite, PostgreSQL and MySQL/MariaDB.

Dialect knowledge lives here as data and small methods on the peewee `Database`
subclasses, the way peewee itself carries it (`param`, `limit_max`, `returning_clause`,
`for_update`): query code asks the database for a piece of SQL and never branches on the
backend's name.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import peewee
from playhouse.shortcuts import ReconnectMixin

from app.domain import PHASH_MASK, Failure, HashlensError
from app.store.url import StoreLocation

BUSY_TIMEOUT_MS = 5000

# Binary collations make names compare byte for byte everywhere (reliability S5); "C" does it
# on PostgreSQL. MariaDB's NO PAD binary collation keeps 'a' and 'a ' apart; MySQL 8's
# utf8mb4_0900_bin is NO PAD already.
_MYSQL_NAME = "VARCHAR(254) CHARACTER SET utf8mb4 COLLATE {bin}"


def _hamming_sql(a, b):
    if a is None or b is None:
        return None
    return ((a ^ b) & PHASH_MASK).bit_count()


class HashlensDialect:
    """The SQL pieces every backend answers for; the defaults are SQLite's and portable SQL."""

    backend = "sqlite"
    # Whether one statement can read a page with its total (a subquery in OFFSET).
    one_statement_page = True
    # Whether a metadata equality filter should drive the scan (SQLite's planner; see listing).
    metadata_driven_scan = False
    # Whether text that is not UTF-8 can be read again with surrogate escapes (sqlite3 only).
    tolerant_text = False
    # Whether each batch of a bulk load gets its own savepoint (cheap on servers; on SQLite it
    # copies every page a batch touches into a sub-journal: half the speed, measured).
    savepoint_per_batch = True
    # How a write transaction and a read snapshot begin (keywords of peewee's `begin`).
    write_begin: dict = {}
    read_isolation: dict = {}

    def __init__(self, *args, read_only: bool = False, **kwargs):
        self.read_only = read_only
        # Set once the schema check proved this is a Hashlens store: until then nothing
        # may change the file (not even its journal mode).
        self.verified = False
        self._placeholders: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    # -- statement text ---------------------------------------------------------------------

    def placeholders(self, sql: str) -> str:
        """Our SQL uses `?` placeholders; the driver may want `%s` (peewee's `param`)."""
        if self.param == "?":
            return sql
        cached = self._placeholders.get(sql)
        if cached is None:
            cached = self._placeholders[sql] = sql.replace("%", "%%").replace("?", self.param)
        return cached

    def limit(self, limit: int | None, offset: int = 0) -> str:
        """` LIMIT n OFFSET m`; "no limit" with an offset is the backend's `limit_max`."""
        if limit is None and not offset:
            return ""
        if limit is None:
            limit = self.limit_max
        text = f" LIMIT {int(limit)}" if limit is not None else ""
        return text + (f" OFFSET {int(offset)}" if offset else "")

    @property
    def lock_rows(self) -> str:
        """What makes a SELECT lock the rows it reads until commit (peewee's `for_update`).
        SQLite needs none: a write transaction holds the whole file from BEGIN IMMEDIATE."""
        return " FOR UPDATE" if self.for_update else ""

    def contains(self, column: str) -> str:
        """Case-insensitive "contains" of a bound, escaped LIKE pattern ('!' escapes)."""
        return f"{column} LIKE ? ESCAPE '!'"

    def hamming_within(self, column: str) -> str:
        """Hamming distance of `column` to a bound signed pHash, at most a bound distance."""
        return f"hl_hamming({column}, ?) <= ?"

    def truth(self, column: str, value: bool) -> str:
        """A boolean test as a literal, so the planner can use the partial index on entries
        without image data (a bool is never user text)."""
        return f"{column} = {1 if value else 0}"

    def byte_length(self, column: str) -> str:
        """The UTF-8 byte length of a text column (the 254-byte rule is in bytes)."""
        return f"LENGTH(CAST({column} AS BLOB))"

    def no_image_index(self) -> str:
        # Entries without image data are few and audited often (a partial index turned a
        # 550 ms count into 32 ms at 10 million).
        return ("CREATE INDEX IF NOT EXISTS hl_entry_no_image ON hl_entry (database_id, id) "
                "WHERE has_image_data = 0")

    def metadata_keys(self, in_database: str) -> str:
        """The distinct metadata keys passing `in_database`, sorted: a loose index scan, one
        probe of the (key, value, entry) index per distinct key, where DISTINCT over the
        join read every metadata row (7 s at 10M)."""
        return ("WITH RECURSIVE k(name) AS (SELECT MIN(meta_key) FROM hl_metadata UNION ALL "
                "SELECT (SELECT MIN(meta_key) FROM hl_metadata WHERE meta_key > k.name) FROM k "
                f"WHERE k.name IS NOT NULL) SELECT k.name FROM k WHERE k.name IS NOT NULL AND {in_database}")

    # -- connections ------------------------------------------------------------------------

    def after_connect(self) -> None:
        """Settle what can only be known once connected (MySQL's binary collation)."""

    def mark_verified(self) -> None:
        """The schema check passed: settings that change the store may now be made."""
        self.verified = True

    def cancel_statement(self, conn, location: StoreLocation) -> None:
        """Stop the statement running on `conn` from another thread."""
        conn.interrupt()


class HashlensSqlite(HashlensDialect, peewee.SqliteDatabase):
    """SQLite with Hashlens's connection setup. WAL mode is switched on only once the file
    is known to be a Hashlens store: an unrelated file is left byte for byte as it was."""

    metadata_driven_scan = True
    tolerant_text = True
    savepoint_per_batch = False
    write_begin = {"lock_type": "IMMEDIATE"}

    def _add_conn_hooks(self, conn):
        super()._add_conn_hooks(conn)
        conn.create_function("hl_hamming", 2, _hamming_sql, deterministic=True)
        if not self.read_only and self.verified:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")

    def mark_verified(self) -> None:
        super().mark_verified()
        if not self.read_only:
            self.execute_sql("PRAGMA journal_mode=WAL")


class _ReconnectingServer(ReconnectMixin, HashlensDialect):
    """Reconnects after a lost server connection, but only between transactions, so a
    half-done change is rolled back and reported, never silently replayed (peewee's rule)."""

    reconnect_errors = ReconnectMixin.reconnect_errors + (
        (peewee.OperationalError, "terminating connection"),
        (peewee.OperationalError, "the connection is closed"),
        (peewee.InterfaceError, "the connection is closed"),
        (peewee.OperationalError, "server closed the connection"),
        (peewee.OperationalError, "consuming input failed"),
    )


class HashlensPostgres(_ReconnectingServer, peewee.PostgresqlDatabase):
    backend = "postgresql"
    read_isolation = {"isolation_level": "REPEATABLE READ"}

    def _initialize_connection(self, conn):
        super()._initialize_connection(conn)
        if self.read_only:
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    def contains(self, column: str) -> str:
        return f"{column} ILIKE ? ESCAPE '!'"

    def hamming_within(self, column: str) -> str:
        return f"bit_count(({column} # ?)::bit(64)) <= ?"

    def truth(self, column: str, value: bool) -> str:
        return column if value else f"NOT {column}"

    def byte_length(self, column: str) -> str:
        return f"OCTET_LENGTH({column})"

    def no_image_index(self) -> str:
        return ("CREATE INDEX IF NOT EXISTS hl_entry_no_image ON hl_entry (database_id, id) "
                "WHERE NOT has_image_data")

    def cancel_statement(self, conn, location: StoreLocation) -> None:
        (getattr(conn, "cancel_safe", None) or conn.cancel)()


class HashlensMySQL(_ReconnectingServer, peewee.MySQLDatabase):
    backend = "mysql"
    # MySQL cannot take a subquery in OFFSET.
    one_statement_page = False
    # A change reads what it will change after taking its locks; under InnoDB's default
    # REPEATABLE READ a plain SELECT would still see the snapshot of the transaction's
    # first read, from before another writer's commit (issue 10 item 1). Reads keep it.
    write_begin = {"isolation_level": "READ COMMITTED"}

    def begin(self, isolation_level: str | None = None):
        if isolation_level:
            # Applies to the next transaction only (outside a transaction, as here).
            self.execute_sql(f"SET TRANSACTION ISOLATION LEVEL {isolation_level}")
        super().begin()

    def _initialize_connection(self, conn):
        super()._initialize_connection(conn)
        if self.read_only:
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")

    def contains(self, column: str) -> str:
        return f"LOWER({column}) LIKE LOWER(?) ESCAPE '!'"

    def hamming_within(self, column: str) -> str:
        return f"BIT_COUNT({column} ^ ?) <= ?"

    def byte_length(self, column: str) -> str:
        return f"LENGTH({column})"

    def no_image_index(self) -> str:
        # No partial indexes: the flag leads instead.
        return "CREATE INDEX hl_entry_no_image ON hl_entry (database_id, has_image_data, id)"

    def metadata_keys(self, in_database: str) -> str:
        return ("SELECT k.name FROM (SELECT DISTINCT meta_key AS name FROM hl_metadata) AS k "
                f"WHERE {in_database} ORDER BY k.name")

    def after_connect(self) -> None:
        version = self.execute_sql("SELECT VERSION()").fetchone()[0]
        binary = "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"
        self._field_types["HLNAME"] = _MYSQL_NAME.format(bin=binary)

    def cancel_statement(self, conn, location: StoreLocation) -> None:
        import pymysql

        killer = pymysql.connect(host=location.host, port=location.port or 3306, user=location.user or "root",
                                 password=location.password or "", connect_timeout=5)
        try:
            with killer.cursor() as cursor:
                cursor.execute(f"KILL QUERY {int(conn.thread_id())}")
        finally:
            killer.close()


def connect(location: StoreLocation, *, read_only: bool, create: bool) -> HashlensDialect:
    """A connected peewee database for `location`. A missing SQLite file is an error
    unless `create`; a read-only open never creates or changes anything."""
    if location.backend == "sqlite":
        db = _sqlite(location.path.resolve(), read_only=read_only, create=create)
    elif location.backend == "postgresql":
        db = HashlensPostgres(
            location.name, read_only=read_only, host=location.host, port=location.port or 5432,
            user=location.user, password=location.password,
            field_types={"HLNAME": 'VARCHAR(254) COLLATE "C"', "HLBLOB": "BYTEA"}, connect_timeout=10,
        )
    else:
        db = HashlensMySQL(
            location.name, read_only=read_only, host=location.host, port=location.port or 3306,
            user=location.user or "root", password=location.password or "", charset="utf8mb4",
            connect_timeout=10, field_types={"HLNAME": _MYSQL_NAME, "HLBLOB": "LONGBLOB"},
        )
    try:
        db.connect(reuse_if_open=True)
        db.after_connect()
    except (peewee.PeeweeException, sqlite3.Error, UnicodeDecodeError) as exc:
        # A damaged file can fail its first PRAGMA in odd ways (even UnicodeDecodeError).
        with contextlib.suppress(Exception):
            db.close()
        from app.store.errors import reason

        why = "file is not a database" if isinstance(exc, UnicodeDecodeError) else reason(exc)
        if "not a database" in why or "malformed" in why:
            raise HashlensError(
                Failure.STORE_UNAVAILABLE,
                f"'{location.display()}' is damaged or is not a Hashlens store ({why}). "
                "Hashlens never repairs a store in place.",
            ) from None
        raise HashlensError(Failure.STORE_UNAVAILABLE, f"Cannot open the store {location.display()}: {why}") from None
    return db


def _sqlite(path: Path, *, read_only: bool, create: bool) -> HashlensSqlite:
    if (read_only or not create) and not path.exists():
        raise HashlensError(Failure.STORE_UNAVAILABLE, f"The store file '{path}' does not exist.")
    if read_only:
        # A file URI from Path.as_uri() escapes '?' and '#'; an f-string would not, and
        # could silently create a new empty file.
        target, kwargs = path.as_uri() + "?mode=ro", {"uri": True}
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HashlensError(
                Failure.STORE_UNAVAILABLE, f"Cannot create the folder for '{path}': {exc.strerror}."
            ) from None
        target, kwargs = str(path), {}
    return HashlensSqlite(target, read_only=read_only, timeout=BUSY_TIMEOUT_MS / 1000,
                          field_types={"HLNAME": "VARCHAR(254)", "HLBLOB": "BLOB"}, **kwargs)
