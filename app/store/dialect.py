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
from app.store.drivers import load_driver
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

    def hamming(self, column: str, value: int) -> str:
        """Bits of `column` that differ from a pHash given as a signed 64-bit integer. The
        value is written into the SQL (an int, so nothing can be injected): it sits in
        ORDER BY and in the keyset's row value, where a bound parameter would have to
        be threaded through every statement."""
        return f"hl_hamming({column}, {int(value)})"

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

    # -- capabilities some backends have ------------------------------------------------------

    @contextlib.contextmanager
    def stop_when(self, cancelled):
        """Let a long statement on this thread's connection stop when `cancelled()` turns
        true. Only SQLite can (a progress handler); elsewhere work stops between batches."""
        yield

    @contextlib.contextmanager
    def page_cache(self, megabytes: int):
        """A bigger page cache on this thread's connection for a bulk load (SQLite only)."""
        yield

    # -- bulk loads (app/store/bulk.py) -----------------------------------------------------

    def write_rows(self, cursor, table: str, columns: str, rows: list[tuple]) -> None:
        """Insert many rows in one go (one executemany; COPY on PostgreSQL)."""
        marks = ", ".join("?" * (columns.count(",") + 1))
        cursor.executemany(self.placeholders(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), rows)

    def append_entry_rows(self, run, write, db_id: int, columns: str, rows: list[tuple],
                          identifiers: list[str]) -> list[int]:
        """Insert a batch of entry rows with `write(table, columns, rows)` and return their
        keys in batch order. SQLite: explicit keys from MAX(id)+1; the IMMEDIATE transaction
        holds the only write lock, so nobody else can take them, and no statement per entry
        is needed to learn its key."""
        first = (run.one("SELECT MAX(id) FROM hl_entry")[0] or 0) + 1
        keys = list(range(first, first + len(rows)))
        try:
            write("hl_entry", f"id, {columns}", [(k, *r) for k, r in zip(keys, rows)])
        except Exception as violation:
            if hasattr(violation, "below"):
                violation.below = first  # rows from `first` on are this batch's own, half inserted
            raise
        return keys

    def integrity_check(self, run, full: bool, max_messages: int) -> tuple[str, list[str], str]:
        """The backend's own check of its files, through `run` (the store's SQL runner):
        (status "ok" | "failed" | "not applicable", messages, the check that ran)."""
        return "not applicable", [], "no built-in integrity check"

    # -- connections ------------------------------------------------------------------------

    def after_connect(self) -> None:
        """Settle what can only be known once connected (MySQL's binary collation)."""

    def replica_of(self) -> str | None:
        """Words naming the primary when this server is a read-only replica, else None."""
        return None

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

    @contextlib.contextmanager
    def stop_when(self, cancelled):
        if cancelled is None:
            yield
            return
        conn = self.connection()
        conn.set_progress_handler(lambda: 1 if cancelled() else 0, 20_000)
        try:
            yield
        finally:
            # The connection may have been renewed meanwhile (after a passing trouble).
            with contextlib.suppress(sqlite3.Error):
                conn.set_progress_handler(None, 0)

    @contextlib.contextmanager
    def page_cache(self, megabytes: int):
        before = self.execute_sql("PRAGMA cache_size").fetchone()[0]
        self.execute_sql(f"PRAGMA cache_size={-int(megabytes) * 1024}")
        try:
            yield
        finally:
            self.execute_sql(f"PRAGMA cache_size={int(before)}")

    def integrity_check(self, run, full: bool, max_messages: int) -> tuple[str, list[str], str]:
        pragma = "integrity_check" if full else "quick_check"
        messages = [str(r[0]) for r in run.all(f"PRAGMA {pragma}({int(max_messages)})")]
        problems = [m for m in messages if m != "ok"]
        fk = run.all("PRAGMA foreign_key_check")
        problems += [f"row {r[1]} of {r[0]} points at a missing row of {r[2]}" for r in fk[:max_messages]]
        check = f"PRAGMA {pragma}, PRAGMA foreign_key_check"
        return ("failed" if problems else "ok"), problems, check


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

    def hamming(self, column: str, value: int) -> str:
        # Parenthesised and cast: "# -5" would lex as jsonb's "#-" operator.
        return f"bit_count(({column} # CAST(({int(value)}) AS BIGINT))::bit(64))"

    def truth(self, column: str, value: bool) -> str:
        return column if value else f"NOT {column}"

    def byte_length(self, column: str) -> str:
        return f"OCTET_LENGTH({column})"

    def no_image_index(self) -> str:
        return ("CREATE INDEX IF NOT EXISTS hl_entry_no_image ON hl_entry (database_id, id) "
                "WHERE NOT has_image_data")

    def cancel_statement(self, conn, location: StoreLocation) -> None:
        (getattr(conn, "cancel_safe", None) or conn.cancel)()

    def write_rows(self, cursor, table: str, columns: str, rows: list[tuple]) -> None:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def append_entry_rows(self, run, write, db_id, columns, rows, identifiers) -> list[int]:
        # Keys from the table's own sequence, which every other writer draws from too, so
        # they never clash; then COPY, PostgreSQL's bulk path.
        keys = sorted(r[0] for r in run.all(
            "SELECT nextval(pg_get_serial_sequence('hl_entry', 'id')) FROM generate_series(1, ?)", (len(rows),)
        ))
        write("hl_entry", f"id, {columns}", [(k, *r) for k, r in zip(keys, rows)])
        return keys

    def replica_of(self) -> str | None:
        # A hot standby replays its primary's WAL and refuses every change.
        if not self.execute_sql("SELECT pg_is_in_recovery()").fetchone()[0]:
            return None
        row = self.execute_sql("SELECT sender_host, sender_port FROM pg_stat_wal_receiver").fetchone()
        return f"{row[0]}:{row[1]}" if row and row[0] else "its primary server"

    def integrity_check(self, run, full: bool, max_messages: int) -> tuple[str, list[str], str]:
        return "not applicable", [], ("PostgreSQL has no built-in integrity check (the amcheck extension is "
                                      "outside Hashlens)")


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

    def hamming(self, column: str, value: int) -> str:
        return f"BIT_COUNT({column} ^ CAST(({int(value)}) AS SIGNED))"

    def byte_length(self, column: str) -> str:
        return f"LENGTH({column})"

    def no_image_index(self) -> str:
        # No partial indexes: the flag leads instead.
        return "CREATE INDEX hl_entry_no_image ON hl_entry (database_id, has_image_data, id)"

    def metadata_keys(self, in_database: str) -> str:
        return ("SELECT k.name FROM (SELECT DISTINCT meta_key AS name FROM hl_metadata) AS k "
                f"WHERE {in_database} ORDER BY k.name")

    def append_entry_rows(self, run, write, db_id, columns, rows, identifiers) -> list[int]:
        # AUTO_INCREMENT is shared with other writers, and explicit keys could collide with
        # theirs. Insert without keys (pymysql folds executemany into multi-row INSERTs),
        # then read ours back: under the database row's lock only this batch adds entries
        # above the previous maximum.
        before = run.one("SELECT MAX(id) FROM hl_entry WHERE database_id = ?", (db_id,))[0] or 0
        write("hl_entry", columns, rows)
        found = dict((ident, key) for key, ident in run.all(
            "SELECT id, identifier FROM hl_entry WHERE database_id = ? AND id > ?", (db_id, before)))
        return [found[i] for i in identifiers]

    def integrity_check(self, run, full: bool, max_messages: int) -> tuple[str, list[str], str]:
        tables = "hl_store_info, hl_database, hl_entry, hl_image, hl_metadata, hl_mark, hl_journal"
        rows = run.all(f"CHECK TABLE {tables}" + ("" if full else " QUICK"))
        problems = [f"{r[0]}: {r[3]}" for r in rows if str(r[2]).lower() in ("error", "warning")
                    and str(r[3]).lower() != "ok"]
        return ("failed" if problems else "ok"), problems[:max_messages], "CHECK TABLE"

    def after_connect(self) -> None:
        version = self.execute_sql("SELECT VERSION()").fetchone()[0]
        binary = "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"
        self._field_types["HLNAME"] = _MYSQL_NAME.format(bin=binary)
        self._check_character_set()

    def _check_character_set(self) -> None:
        """Refuse, at open, a database or store tables whose character set is not utf8mb4.

        Names carry utf8mb4 on their own columns, but the journal, the image format and the
        user name take the database's default: in a latin1 database the first label
        outside latin1 failed mid-change with the server's "Incorrect string value"
        (issue 14). Saying so at open, with the statement that fixes it, loses nothing."""
        name, charset = self.execute_sql(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME = DATABASE()").fetchone()
        tables = [row[0] for row in self.execute_sql(
            "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME LIKE %s AND CHARACTER_SET_NAME IS NOT NULL "
            "AND CHARACTER_SET_NAME <> 'utf8mb4' ORDER BY TABLE_NAME", ("hl\\_%",)).fetchall()]
        if charset == "utf8mb4" and not tables:
            return
        fixes = []
        if charset != "utf8mb4":
            fixes.append(f"ALTER DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;")
        fixes.extend(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
                     for table in tables)
        what = (f"the database '{name}' uses the character set {charset}" if charset != "utf8mb4"
                else f"its tables {', '.join(tables)} use another character set than utf8mb4")
        with contextlib.suppress(Exception):
            self.close()
        raise HashlensError(
            Failure.STORE_UNAVAILABLE,
            f"Hashlens needs the utf8mb4 character set, but {what}, so a label or metadata value "
            f"outside it would be refused. Run this as the database's owner, then open it again: "
            + " ".join(fixes)
            + (" (converting rewrites the tables; back them up first)" if tables else ""),
        )

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
        load_driver("postgresql")
        db = HashlensPostgres(
            location.name, read_only=read_only, host=location.host, port=location.port or 5432,
            user=location.user, password=location.password,
            field_types={"HLNAME": 'VARCHAR(254) COLLATE "C"', "HLBLOB": "BYTEA"}, connect_timeout=10,
        )
    else:
        load_driver("mysql")
        db = HashlensMySQL(
            location.name, read_only=read_only, host=location.host, port=location.port or 3306,
            user=location.user or "root", password=location.password or "", charset="utf8mb4",
            connect_timeout=10, field_types={"HLNAME": _MYSQL_NAME, "HLBLOB": "LONGBLOB"},
        )
    try:
        db.connect(reuse_if_open=True)
        db.after_connect()
    except (peewee.PeeweeException, sqlite3.Error, UnicodeDecodeError, MemoryError) as exc:
        # A damaged file can fail its first PRAGMA in odd ways (even UnicodeDecodeError,
        # or SQLite's "out of memory" for a schema it cannot parse: MemoryError).
        if isinstance(exc, MemoryError) and location.backend != "sqlite":
            raise
        with contextlib.suppress(Exception):
            db.close()
        from app.store.errors import reason

        why = ("file is not a database" if isinstance(exc, UnicodeDecodeError)
               else "malformed: SQLite ran out of memory reading its schema" if isinstance(exc, MemoryError)
               else reason(exc))
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
    # Each thread still opens its own connection; a pull's commit lends its connection to
    # a second thread, taking turns (app.store.mirrors.SnapshotWriter).
    return HashlensSqlite(target, read_only=read_only, timeout=BUSY_TIMEOUT_MS / 1000,
                          field_types={"HLNAME": "VARCHAR(254)", "HLBLOB": "BLOB"}, check_same_thread=False,
                          **kwargs)
