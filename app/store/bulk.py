"""Bulk appends: many entries at the end of a database in few statements (samples, imports).

`Store.add_entry` spends four or five statements on each entry; at a million entries that
is minutes of round trips. Here a batch of entries costs one `executemany` per table plus a
few bookkeeping statements, and every invariant of `add_entry` still holds when each batch
commits: identifiers unique per database, `hl_database.entry_count` exact, a position mark
on every MARK_SPACING-th entry, `meta_count`, `has_image_data` and `byte_size` matching the
stored image and metadata rows, and the pHash stored signed (ours).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable

from app import faults
from app.domain import Failure, HashlensError, NewEntry
from app.mediaserver_codec.names import APPEND_IMAGE_HASHES
from app.store.entries import MARK_SPACING
from app.store.errors import identifier_exists
from app.store.journal import now_ms
from app.store.listing import to_signed64
from app.store.sql import IN_CHUNK
from app.store.store import Store

DEFAULT_BATCH = 5000

_ENTRY_COLUMNS = (
    "database_id, identifier, label, phash, has_image_data, image_format, width, height, "
    "byte_size, sha256, meta_count, trained_at, declared_image_data"
)


def append_entries(
    store: Store,
    database: str,
    entries: Iterable[NewEntry],
    *,
    batch: int = DEFAULT_BATCH,
    commit_every: int | None = None,
    atomic: bool = False,
    cache_mb: int | None = None,
    total: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    action: str = APPEND_IMAGE_HASHES,
) -> int:
    """Append `entries` at the end of `database`, in their order; returns how many were added.

    Entries are written `batch` at a time (one executemany per table: memory stays at one
    batch) and committed every `commit_every` entries (default: every batch). Each
    transaction is journalled as one change (`action`, with its size and first and last
    identifiers), so windows open on the store notice it.

    The trade-off (ours): with `atomic=False` a load that fails, is cancelled or is killed
    part way keeps the transactions already committed, whole, and nothing of the one in
    flight; a huge load does not hold the write lock, or grow SQLite's WAL, for its whole
    length. With `atomic=True` the whole load is one transaction: all or nothing, and a
    cancel raises CANCELLED. Big transactions are much faster on big databases: the
    identifier, label and pHash indexes take keys at random places, so each commit
    rewrites about one index page per new entry until a transaction holds more entries
    than an index has pages. `cache_mb` raises SQLite's page cache for the load so those
    pages stay in memory between statements (it is put back afterwards).

    A duplicate identifier (already in the database, or twice in `entries`) refuses its
    transaction with the same error `add_entry` gives; in non-atomic mode the message also
    says how many entries earlier transactions added. `cancelled()` is asked between
    batches."""
    if batch < 1:
        raise ValueError("batch must be 1 or more")
    commit_every = max(batch, commit_every or batch)
    store.database_id(database)  # a missing database fails before any work
    iterator = iter(entries)
    done = 0
    if progress:
        progress(0, total)
    with contextlib.ExitStack() as stack:
        if cache_mb:
            stack.enter_context(store.db.page_cache(cache_mb))
        if atomic:
            stack.enter_context(store.writing())
        finished = stopped = False
        while not finished and not stopped:
            if cancelled and cancelled():
                stopped = True
                break
            in_flight = 0
            with store.writing():  # a savepoint inside the one transaction when atomic
                db_id = store.database_id(database)
                store.refuse_mirror_write(database)  # a mirror's entries change only by a pull
                first = last = None
                while in_flight < commit_every:
                    if in_flight and cancelled and cancelled():
                        stopped = True
                        break
                    chunk = list(itertools.islice(iterator, min(batch, commit_every - in_flight)))
                    if not chunk:
                        finished = True
                        break
                    faults.checkpoint("bulk.batch")
                    _check_metadata_keys(chunk)
                    # On a server each batch is a savepoint, so that after a failure the
                    # transaction can still answer which identifier clashed. SQLite
                    # answers anyway, and its savepoints would copy every page a batch
                    # first touches into a sub-journal (measured: half the speed).
                    step = store.writing() if store.db.savepoint_per_batch else contextlib.nullcontext()
                    try:
                        with step:
                            _append_batch(store, db_id, chunk)
                    except _UniqueViolation as violation:
                        raise _duplicate_error(store, db_id, [e.identifier for e in chunk], violation,
                                               done if not atomic else 0) from None
                    if first is None:
                        first = chunk[0].identifier
                    last = chunk[-1].identifier
                    in_flight += len(chunk)
                    if progress:
                        progress(done + in_flight, total)
                if in_flight:
                    store.record(action, database, None, {"entries": in_flight, "first": first, "last": last})
            done += in_flight
        if atomic and stopped:
            raise HashlensError(Failure.CANCELLED, "The bulk load was cancelled; nothing was added.")
    return done


def lock_database(store: Store, database: str) -> int:
    """The database's key, its row locked until the caller's write transaction ends (on
    servers; SQLite's IMMEDIATE transaction holds the whole file): no other writer adds
    to it meanwhile, so identifiers found free stay free until commit."""
    return store.entries.database_id(database, lock=True)


def holds_entries(store: Store, db_id: int) -> bool:
    """Whether the database holds any entry (one index probe)."""
    return store.sql.one("SELECT 1 FROM hl_entry WHERE database_id = ? LIMIT 1", (db_id,)) is not None


def held_identifiers(store: Store, db_id: int, identifiers: list[str]) -> set[str]:
    """Which of `identifiers` the database holds (this transaction's own rows included):
    one IN query per chunk, where `entry_exists` costs a statement per identifier."""
    held: set[str] = set()
    for start in range(0, len(identifiers), IN_CHUNK):
        part = identifiers[start:start + IN_CHUNK]
        marks = ",".join("?" * len(part))
        held.update(r[0] for r in store.sql.all(
            f"SELECT identifier FROM hl_entry WHERE database_id = ? AND identifier IN ({marks})", [db_id, *part]))
    return held


def append_batch(store: Store, db_id: int, chunk: list[NewEntry]) -> None:
    """Append one batch inside the caller's write transaction (which journals it), with
    `append_entries`'s invariants and its duplicate error; nothing is committed here."""
    if chunk:
        _check_metadata_keys(chunk)
        stamp = now_ms()
        append_rows(store, db_id, [entry_row(db_id, e, stamp) for e in chunk], [e.identifier for e in chunk],
                    [e.metadata for e in chunk], [(i, e.image_data) for i, e in enumerate(chunk) if e.image_data is not None])


def entry_row(db_id: int, e: NewEntry, stamp: int) -> tuple:
    """An entry as the row `append_rows` takes (the columns of _ENTRY_COLUMNS)."""
    return (
        db_id, e.identifier, e.label, to_signed64(e.phash), e.image_data is not None, e.image_format,
        e.width, e.height, len(e.image_data) if e.image_data is not None else None, e.sha256,
        len(e.metadata), e.trained_at or stamp, e.declared_image_data,
    )


def append_rows(store: Store, db_id: int, rows: list[tuple], identifiers: list[str], metadata: list,
                images: list[tuple[int, bytes]] = ()) -> None:
    """`append_batch` for callers that build the rows themselves (an import builds them
    straight from the file, without a NewEntry each): `rows` as `entry_row` makes them,
    their identifiers, each row's metadata pairs, and (index in rows, bytes) per image.
    The caller has validated every value as `prepare_entry` would, metadata keys unique."""
    if not rows:
        return
    step = store.writing() if store.db.savepoint_per_batch else contextlib.nullcontext()
    try:
        with step:
            _append_rows(store, db_id, rows, identifiers, metadata, images)
    except _UniqueViolation as violation:
        raise _duplicate_error(store, db_id, identifiers, violation, 0) from None


def _append_batch(store: Store, db_id: int, chunk: list[NewEntry]) -> None:
    """One batch, inside the caller's write transaction."""
    stamp = now_ms()
    _append_rows(store, db_id, [entry_row(db_id, e, stamp) for e in chunk], [e.identifier for e in chunk],
                 [e.metadata for e in chunk], [(i, e.image_data) for i, e in enumerate(chunk) if e.image_data is not None])


def _append_rows(store: Store, db_id: int, rows: list[tuple], identifiers: list[str], metadata: list,
                 images) -> None:
    # Bump the count first: on PostgreSQL and MySQL the UPDATE locks the database's row,
    # so no other writer appends to this database until we commit and positions stay
    # exact (the same order of locking as Store.add_entry).
    n = len(rows)
    store.sql.exec("UPDATE hl_database SET entry_count = entry_count + ? WHERE id = ?", (n, db_id))
    base = store.sql.one("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,))[0] - n
    cursor = store.db.cursor()

    def write(table: str, columns: str, batch: list[tuple]) -> None:
        _write(store, cursor, table, columns, batch)

    keys = store.db.append_entry_rows(store.sql, write, db_id, _ENTRY_COLUMNS, rows, identifiers)
    if images:
        _write(store, cursor, "hl_image", "entry_id, data", [(keys[i], data) for i, data in images])
    items = [(k, mk, mv) for k, pairs in zip(keys, metadata) for mk, mv in pairs]
    if items:
        # Rows go in list order, so metadata ids keep each entry's items in their order.
        _write(store, cursor, "hl_metadata", "entry_id, meta_key, meta_value", items)
    # Position marks: the j-th new entry in key order holds position base + j + 1.
    ordered = sorted(keys)
    first_mark = (base // MARK_SPACING + 1) * MARK_SPACING
    marks = [(db_id, p, ordered[p - base - 1]) for p in range(first_mark, base + n + 1, MARK_SPACING)]
    if marks:
        _write(store, cursor, "hl_mark", "database_id, ordinal, entry_id", marks)


def _write(store: Store, cursor, table: str, columns: str, rows: list[tuple]) -> None:
    """Insert rows: COPY on PostgreSQL, one executemany elsewhere. A unique-key failure
    becomes _UniqueViolation for the caller to name; other failures a HashlensError."""
    try:
        store.db.write_rows(cursor, table, columns, rows)
    except Exception as exc:  # each driver raises its own classes from a raw cursor
        error = store.sql.translate(exc)
        text = error.description.lower()
        if "unique" in text or "duplicate" in text:
            raise _UniqueViolation(error) from exc
        raise error from exc


def _check_metadata_keys(chunk: list[NewEntry]) -> None:
    for e in chunk:
        if len(e.metadata) > 1 and len({k for k, _ in e.metadata}) != len(e.metadata):
            seen = set()
            for k, _ in e.metadata:
                if k in seen:
                    raise HashlensError(
                        Failure.KEY_EXISTS,
                        f"Metadata key '{k}' is given twice for '{e.identifier}'; a key is unique per hash.",
                        parameter="metadata",
                    )
                seen.add(k)


class _UniqueViolation(Exception):
    def __init__(self, error: HashlensError):
        super().__init__(error.description)
        self.error = error
        self.below: int | None = None  # only keys below this were there before the batch


def _duplicate_error(store: Store, db_id: int, identifiers: list[str], violation: _UniqueViolation,
                     committed: int) -> HashlensError:
    """Name the first identifier of the batch that the batch repeats or the database holds
    (this transaction's earlier batches included). On a server this is asked after the
    batch's savepoint rolled back: a PostgreSQL transaction answers nothing more while a
    failed statement is in it. On SQLite the batch's first rows may still be there."""
    seen = set()
    duplicate = None
    for identifier in identifiers:
        if identifier in seen:
            duplicate = identifier
            break
        seen.add(identifier)
    if duplicate is None:
        held = set()
        below = "" if violation.below is None else f" AND id < {int(violation.below)}"
        for start in range(0, len(identifiers), IN_CHUNK):
            part = identifiers[start:start + IN_CHUNK]
            marks = ",".join("?" * len(part))
            held.update(r[0] for r in store.sql.all(
                f"SELECT identifier FROM hl_entry WHERE database_id = ? AND identifier IN ({marks}){below}",
                [db_id, *part],
            ))
        duplicate = next((i for i in identifiers if i in held), None)
    if duplicate is None:
        return violation.error
    error = identifier_exists(duplicate)
    if committed:
        error = HashlensError(
            error.failure,
            f"{error.description}; the {committed:,} entries committed before it were added, "
            "its transaction and everything after it were not",
            parameter=error.parameter,
        )
    return error
