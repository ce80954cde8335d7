"""Changes to databases and entries, with their entry counts and position marks.

Every method here runs inside a write transaction the store opened (and journals); none
commits. Each takes the locks it needs before it reads what it will change: the database
row first (`SELECT ... FOR UPDATE` on servers; SQLite's BEGIN IMMEDIATE already holds the
whole file), then the entry. Two removals of one entry on PostgreSQL or MariaDB used to
both pass their existence check and both count down (issue 10 item 1); now the second
waits for the first, then finds no entry. A move locks both databases in key order, so
two moves in opposite directions cannot wait for each other forever.

Position marks: one mark every MARK_SPACING entries records (ordinal, entry key), so
`start=N` seeks to the nearest mark and steps at most MARK_SPACING rows.
"""

from __future__ import annotations

from app.domain import Failure, HashlensError, ImageInfo, NewEntry, no_such_database
from app.store.errors import identifier_exists, no_such_identifier
from app.store import journal
from app.store.listing import to_signed64
from app.store.sql import SqlRunner

# One position mark every MARK_SPACING entries: a seek steps at most this far.
MARK_SPACING = 1024


class Entries:
    """The store's changes, as statements on one runner."""

    def __init__(self, sql: SqlRunner):
        self.sql = sql
        self.lock = sql.dialect.lock_rows

    # -- finding and locking ---------------------------------------------------------------

    def database_id(self, name: str, *, lock: bool = False, parameter: str = "database") -> int:
        """The database's key; with `lock`, its row stays locked until commit."""
        row = self.sql.one("SELECT id FROM hl_database WHERE name = ?" + (self.lock if lock else ""), (name,))
        if row is None:
            if parameter != "database":
                raise HashlensError(Failure.NO_SUCH_DATABASE, f"'{parameter}={name}' does not exist",
                                    parameter=parameter)
            raise no_such_database(name)
        return row[0]

    def database_exists(self, name: str) -> bool:
        return self.sql.one("SELECT 1 FROM hl_database WHERE name = ?", (name,)) is not None

    def entry_key(self, db_id: int, identifier: str, parameter: str = "identifier", *, lock: bool = False) -> int:
        row = self.sql.one(
            "SELECT id FROM hl_entry WHERE database_id = ? AND identifier = ?" + (self.lock if lock else ""),
            (db_id, identifier),
        )
        if row is None:
            raise no_such_identifier(identifier, parameter)
        return row[0]

    def _identifier_taken(self, db_id: int, identifier: str) -> bool:
        return self.sql.one(
            "SELECT 1 FROM hl_entry WHERE database_id = ? AND identifier = ?", (db_id, identifier)
        ) is not None

    def _locked_entry(self, database: str, identifier: str) -> tuple[int, int]:
        db_id = self.database_id(database, lock=True)
        return db_id, self.entry_key(db_id, identifier, lock=True)

    def entry_count(self, db_id: int) -> int:
        return self.sql.one("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,))[0]

    # -- databases ---------------------------------------------------------------------------

    def create_database(self, name: str) -> None:
        if self.database_exists(name):
            raise HashlensError(Failure.DATABASE_EXISTS, f"'database={name}' already exists", parameter="database")
        try:
            self.sql.exec("INSERT INTO hl_database (name, entry_count, created_at) VALUES (?, 0, ?)", (name, journal.now_ms()))
        except HashlensError as exc:
            if exc.failure is Failure.STORE_FAILED and ("unique" in exc.description.lower()
                                                        or "duplicate" in exc.description.lower()):
                raise HashlensError(
                    Failure.DATABASE_EXISTS, f"'database={name}' already exists", parameter="database"
                ) from None
            raise

    def rename_database(self, name: str, new_name: str) -> None:
        db_id = self.database_id(name, lock=True)
        if self.database_exists(new_name):
            raise HashlensError(
                Failure.DATABASE_EXISTS, f"'newdatabase={new_name}' already exists", parameter="newdatabase"
            )
        self.sql.exec("UPDATE hl_database SET name = ? WHERE id = ?", (new_name, db_id))

    def remove_database(self, name: str) -> int:
        db_id = self.database_id(name, lock=True)
        count = self.entry_count(db_id)
        entries = "SELECT id FROM hl_entry WHERE database_id = ?"
        self.sql.exec(f"DELETE FROM hl_image WHERE entry_id IN ({entries})", (db_id,))
        self.sql.exec(f"DELETE FROM hl_metadata WHERE entry_id IN ({entries})", (db_id,))
        self.sql.exec("DELETE FROM hl_mark WHERE database_id = ?", (db_id,))
        self.sql.exec("DELETE FROM hl_entry WHERE database_id = ?", (db_id,))
        self.sql.exec("DELETE FROM hl_database WHERE id = ?", (db_id,))
        return count

    # -- entries -----------------------------------------------------------------------------

    def _bump_count(self, db_id: int, delta: int) -> int:
        # The database row is locked already, so entries of one database are numbered in
        # commit order on PostgreSQL and MySQL too (ours).
        self.sql.exec("UPDATE hl_database SET entry_count = entry_count + ? WHERE id = ?", (delta, db_id))
        return self.entry_count(db_id)

    def add_entry(self, database: str, entry: NewEntry) -> int:
        """Append one entry at the end of the database; returns its key."""
        db_id = self.database_id(database, lock=True)
        if self._identifier_taken(db_id, entry.identifier):
            raise identifier_exists(entry.identifier)
        ordinal = self._bump_count(db_id, 1)
        try:
            key = self.sql.insert(
                "INSERT INTO hl_entry (database_id, identifier, label, phash, has_image_data, image_format, "
                "width, height, byte_size, sha256, meta_count, trained_at, declared_image_data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    db_id, entry.identifier, entry.label, to_signed64(entry.phash), entry.image_data is not None,
                    entry.image_format, entry.width, entry.height,
                    len(entry.image_data) if entry.image_data is not None else None,
                    entry.sha256, len(entry.metadata), entry.trained_at or journal.now_ms(),
                    entry.declared_image_data,
                ),
            )
        except HashlensError as exc:
            if "unique" in exc.description.lower() or "duplicate" in exc.description.lower():
                raise identifier_exists(entry.identifier) from None
            raise
        if entry.image_data is not None:
            self.sql.exec("INSERT INTO hl_image (entry_id, data) VALUES (?, ?)", (key, entry.image_data))
        if entry.metadata:
            self._insert_metadata(key, entry.metadata)
        if ordinal % MARK_SPACING == 0:
            self.sql.exec("INSERT INTO hl_mark (database_id, ordinal, entry_id) VALUES (?, ?, ?)", (db_id, ordinal, key))
        return key

    def _insert_metadata(self, key: int, items) -> None:
        seen = set()
        for k, _ in items:
            if k in seen:
                raise HashlensError(
                    Failure.KEY_EXISTS, f"Metadata key '{k}' is given twice; a key is unique per hash.", parameter="metadata"
                )
            seen.add(k)
        self.sql.executemany("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (?, ?, ?)",
                             [(key, k, v) for k, v in items])

    def remove_entry(self, database: str, identifier: str) -> None:
        db_id, key = self._locked_entry(database, identifier)
        self.sql.exec("DELETE FROM hl_image WHERE entry_id = ?", (key,))
        self.sql.exec("DELETE FROM hl_metadata WHERE entry_id = ?", (key,))
        self.sql.exec("DELETE FROM hl_entry WHERE id = ?", (key,))
        self._bump_count(db_id, -1)
        self._marks_after_removal(db_id, key)

    def _marks_after_removal(self, db_id: int, key: int) -> None:
        # Later entries move up one place. A mark on the removed entry passes to the next
        # entry, which now holds that same position, so marks stay evenly spaced.
        self.sql.exec("UPDATE hl_mark SET ordinal = ordinal - 1 WHERE database_id = ? AND entry_id > ?", (db_id, key))
        nxt = self.sql.one(
            "SELECT id FROM hl_entry WHERE database_id = ? AND id > ? ORDER BY id" + self.sql.limit(1), (db_id, key)
        )
        if nxt is None:
            self.sql.exec("DELETE FROM hl_mark WHERE database_id = ? AND entry_id = ?", (db_id, key))
        else:
            self.sql.exec("UPDATE hl_mark SET entry_id = ? WHERE database_id = ? AND entry_id = ?", (nxt[0], db_id, key))

    def attach_image(self, database: str, identifier: str, phash: int, image: bytes | None,
                     image_format: str | None, width: int | None, height: int | None, sha256: str | None) -> None:
        """Give an entry the pHash computed from its image file and, with `image`, the
        image bytes too (what training would have stored)."""
        _, key = self._locked_entry(database, identifier)
        if image is None:
            self.sql.exec("UPDATE hl_entry SET phash = ? WHERE id = ?", (to_signed64(phash), key))
            return
        self.sql.exec("DELETE FROM hl_image WHERE entry_id = ?", (key,))
        self.sql.exec("INSERT INTO hl_image (entry_id, data) VALUES (?, ?)", (key, image))
        self.sql.exec(
            "UPDATE hl_entry SET phash = ?, has_image_data = ?, image_format = ?, width = ?, height = ?, "
            "byte_size = ?, sha256 = ? WHERE id = ?",
            (to_signed64(phash), True, image_format, width, height, len(image), sha256, key))

    def null_image_data(self, database: str, identifier: str) -> None:
        _, key = self._locked_entry(database, identifier)
        self.sql.exec("DELETE FROM hl_image WHERE entry_id = ?", (key,))
        self.sql.exec("UPDATE hl_entry SET has_image_data = ? WHERE id = ?", (False, key))

    def rename_entry(self, database: str, identifier: str, new_identifier: str) -> None:
        db_id, key = self._locked_entry(database, identifier)
        if new_identifier != identifier and self._identifier_taken(db_id, new_identifier):
            raise identifier_exists(new_identifier, "newidentifier")
        self.sql.exec("UPDATE hl_entry SET identifier = ? WHERE id = ?", (new_identifier, key))

    def move_entry(self, database: str, identifier: str, new_database: str) -> None:
        """Move an entry to another database. It keeps its training time, so it takes its
        place among the target's entries by age (ours; MS does not document the order)."""
        db_id = self.database_id(database)
        self.entry_key(db_id, identifier)  # a missing entry is named before a missing target
        target = self.database_id(new_database, parameter="newdatabase")
        if target == db_id:
            return
        # Both database rows, in key order (no two moves wait for each other), then the entry.
        for locked in sorted((db_id, target)):
            self.sql.one("SELECT id FROM hl_database WHERE id = ?" + self.lock, (locked,))
        key = self.entry_key(db_id, identifier, lock=True)
        if self._identifier_taken(target, identifier):
            raise identifier_exists(identifier, "identifier", new_database)
        self._bump_count(db_id, -1)
        self._marks_after_removal(db_id, key)
        self._bump_count(target, 1)
        self.sql.exec("UPDATE hl_mark SET ordinal = ordinal + 1 WHERE database_id = ? AND entry_id > ?", (target, key))
        self.sql.exec("UPDATE hl_entry SET database_id = ? WHERE id = ?", (target, key))

    def relabel(self, database: str, identifier: str, label: str, new_label: str) -> None:
        _, key = self._locked_entry(database, identifier)
        current = self.sql.one("SELECT label FROM hl_entry WHERE id = ?", (key,))[0]
        if current != label:
            raise HashlensError(
                Failure.NO_SUCH_LABEL,
                f"'imagelabel={label}' does not exist for '{identifier}' (its image is labelled '{current}')",
                parameter="imagelabel",
            )
        self.sql.exec("UPDATE hl_entry SET label = ? WHERE id = ?", (new_label, key))

    def add_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        _, key = self._locked_entry(database, identifier)
        if self.sql.one("SELECT 1 FROM hl_metadata WHERE entry_id = ? AND meta_key = ?", (key, key_name)):
            raise HashlensError(
                Failure.KEY_EXISTS,
                f"'key={key_name}' already exists for '{identifier}'; use UpdateImageHashMetadata to change it",
                parameter="key",
            )
        self.sql.exec("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (?, ?, ?)", (key, key_name, value))
        self.sql.exec("UPDATE hl_entry SET meta_count = meta_count + 1 WHERE id = ?", (key,))

    def update_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        _, key = self._locked_entry(database, identifier)
        self._metadata_key_exists(key, identifier, key_name)
        self.sql.exec("UPDATE hl_metadata SET meta_value = ? WHERE entry_id = ? AND meta_key = ?", (value, key, key_name))

    def remove_metadata(self, database: str, identifier: str, key_name: str) -> None:
        _, key = self._locked_entry(database, identifier)
        self._metadata_key_exists(key, identifier, key_name)
        self.sql.exec("DELETE FROM hl_metadata WHERE entry_id = ? AND meta_key = ?", (key, key_name))
        self.sql.exec("UPDATE hl_entry SET meta_count = meta_count - 1 WHERE id = ?", (key,))

    def _metadata_key_exists(self, key: int, identifier: str, key_name: str) -> None:
        if not self.sql.one("SELECT 1 FROM hl_metadata WHERE entry_id = ? AND meta_key = ?", (key, key_name)):
            raise HashlensError(
                Failure.NO_SUCH_KEY, f"'key={key_name}' does not exist for '{identifier}'", parameter="key"
            )

    def rebuild_marks(self, database: str) -> None:
        """Recompute a database's position marks and count after a bulk change."""
        db_id = self.database_id(database, lock=True)
        self.sql.exec("DELETE FROM hl_mark WHERE database_id = ?", (db_id,))
        self.sql.exec(
            "INSERT INTO hl_mark (database_id, ordinal, entry_id) SELECT ?, n, id FROM "
            "(SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM hl_entry WHERE database_id = ?) AS numbered "
            f"WHERE n % {MARK_SPACING} = 0",
            (db_id, db_id),
        )
        self.sql.exec(
            "UPDATE hl_database SET entry_count = (SELECT COUNT(*) FROM hl_entry WHERE database_id = ?) WHERE id = ?",
            (db_id, db_id),
        )

    # -- reads of one entry ------------------------------------------------------------------

    def image(self, database: str, identifier: str) -> ImageInfo:
        key = self.entry_key(self.database_id(database), identifier)
        row = self.sql.one(
            "SELECT e.identifier, e.label, e.image_format, e.width, e.height, i.data FROM hl_entry e "
            "LEFT JOIN hl_image i ON i.entry_id = e.id WHERE e.id = ?",
            (key,),
        )
        data = bytes(row[5]) if row[5] is not None else None
        return ImageInfo(row[0], row[1], row[2], row[3], row[4], data)
