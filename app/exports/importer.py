"""Importing entries from a file into a database: all of the file in one transaction, or
nothing. Behind File ▸ Import… and `hashlens import`."""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from app import faults
from app.domain import Failure, HashlensError, ListingQuery, NewEntry, all_storable, check_text, counted
from app.exports import fileformats  # noqa: F401  (registers the formats)
from app.exports import readers, registry
from app.exports import manifest
from app.exports.readers import ImportedEntry, ImportRefused
from app.store import bulk
from app.store.journal import now_ms
from app.store.listing import to_signed64
from app.services import actions
from app.services.imaging import HashedImage
from app.mediaserver_codec import names

POLICIES = ("abort", "skip", "replace")
DIALECTS = ("auto", "safe", "raw")
ROWS_PER_STEP = 100
# Entries validated, checked for duplicates and appended together (one executemany per table);
# the size of bulk.DEFAULT_BATCH and of the raw floor in benchmarks/import_.py (2,000 cost
# 0.06-0.08 s more CPU of a 200,000-entry import, for a few MB less).
BATCH = 5000
# Reports and journal records name at most this many identifiers per list.
MAX_LISTED = 1000
_identifier = attrgetter("identifier")
# A flag as the store's column takes it: sqlite3 binds an int in a third of the time of a
# bool, which it adapts (0.07 s of an import of 200,000 entries).
_FLAG = {None: None, False: 0, True: 1}


@dataclass(frozen=True)
class ImportOptions:
    on_duplicate: str = "abort"  # abort | skip | replace
    format: str = "auto"
    csv_dialect: str = "auto"  # auto: the manifest beside the file says, else spreadsheet-safe
    max_bytes: int = readers.MAX_IMPORT_BYTES

    def validated(self) -> "ImportOptions":
        for name, value, allowed in (("on-duplicate", self.on_duplicate, POLICIES), ("format", self.format, import_formats()),
                                     ("csv-dialect", self.csv_dialect, DIALECTS)):
            if value not in allowed:
                raise HashlensError(Failure.PARAM_INVALID,
                                    f"'{name}={value}' is not allowed; choose one of {', '.join(allowed)}.",
                                    parameter=name)
        return self


@dataclass
class ImportReport:
    """What an import did. On failure nothing was imported and an error is raised
    instead; a report always describes a committed import."""

    path: str
    format: str
    database: str
    created_database: bool = False
    read: int = 0
    added: int = 0
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced_count: int = 0
    skipped_count: int = 0
    # Entries stored without a pHash (not known: a Media Server response carries none).
    no_phash_count: int = 0
    images_not_in_file: int = 0

    def lines(self) -> list[str]:
        out = [
            f"Imported {self.path} ({self.format}) into '{self.database}'"
            + (" (a new database)" if self.created_database else "") + ":",
            f"  {counted(self.read, 'entry', 'entries')} read, {self.added:,} added, {self.replaced_count:,} replaced, "
            f"{self.skipped_count:,} skipped as duplicates.",
        ]
        if self.skipped:
            out.append("  Skipped: " + _listed(self.skipped, self.skipped_count))
        if self.replaced:
            out.append("  Replaced: " + _listed(self.replaced, self.replaced_count))
        if self.no_phash_count:
            out.append(
                f"  {counted(self.no_phash_count, 'entry has', 'entries have')} no pHash (not known: the file carries "
                "none); duplicate checks skip them until 'hashlens attach-images' computes them from the images."
            )
        if self.images_not_in_file:
            out.append(
                f"  {counted(self.images_not_in_file, 'entry', 'entries')} had image data at the source; the file does not carry "
                "images, so they were imported without image data (no image is invented)."
            )
        return out


def _listed(items: list[str], total: int) -> str:
    shown = ", ".join(repr(i) for i in items[:20])
    return shown + (f" and {total - 20:,} more" if total > 20 else "")


def _check_file(path: Path, max_bytes: int) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImportRefused(path, "there is no such file.") from None
    except OSError as exc:
        raise ImportRefused(path, f"it cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImportRefused(path, "it is not a regular file.")
    if info.st_size > max_bytes:
        raise ImportRefused(path, f"the file is {info.st_size:,} bytes; the limit is {max_bytes:,}.")
    return info.st_size


def detect_format(path: Path | str) -> str:
    """The name of the registered format a file is in (`database` for a whole-database file)."""
    path = Path(path)
    _check_file(path, readers.MAX_IMPORT_BYTES)
    with open(path, "rb") as f:
        return readers.sniff(path, f.read(4096))


def _csv_dialect_from_manifest(path: Path) -> str | None:
    """The CSV dialect the manifest beside `path` records, or None without a manifest.

    A manifest is applied only when it describes this very file: its recorded size and
    SHA-256 must match. A kill between an export and its manifest, or a file replaced by
    hand, leaves a manifest that describes another file, and reading a raw file as
    spreadsheet-safe would silently change identifiers; so an unusable or mismatched
    manifest refuses the import until the dialect is given (issue 10 item 3, ours)."""
    beside = manifest.manifest_path(path)
    if not os.path.lexists(beside):
        return None
    ask = "Give the CSV dialect explicitly (--csv-dialect safe or raw, or the choice in the import dialog)."
    try:
        data = manifest.read(beside)
    except ValueError as exc:
        raise ImportRefused(path, f"the manifest '{beside.name}' beside it cannot be used ({exc}), so the CSV "
                                  f"dialect is unknown. {ask}") from None
    digest, size = manifest.sha256_file(path)
    if size != data["bytes"] or digest != data["sha256"]:
        raise ImportRefused(
            path, f"the manifest '{beside.name}' beside it describes another file ({data['bytes']:,} bytes, SHA-256 "
                  f"{data['sha256'][:16]}…; this file is {size:,} bytes, SHA-256 {digest[:16]}…): the export was "
                  f"interrupted before its manifest was written, or the file was replaced. {ask}")
    options = data.get("options")
    dialect = options.get("csv_dialect") if isinstance(options, dict) else None
    return {"spreadsheet-safe": "safe", "raw": "raw"}.get(dialect)


def import_formats() -> tuple[str, ...]:
    """The `format` choices of an import: detected, or any format with a reader."""
    return ("auto", *registry.import_names())


def read_entries(path: Path, fmt: str, f, size: int, dialect: str):
    return registry.get(fmt).reader(path, f, size, dialect)


def import_file(
    store,
    path: Path | str,
    database: str,
    options: ImportOptions = ImportOptions(),
    *,
    progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ImportReport:
    """Import every entry of a listing file into `database` (created when missing), in
    one transaction: a malformed entry, a refused duplicate, a failure or a cancel leaves
    the store exactly as it was."""
    options = options.validated()
    path = Path(path)
    check_text("database", database)
    size = _check_file(path, options.max_bytes)
    with open(path, "rb") as f:
        fmt = options.format if options.format != "auto" else readers.sniff(path, f.read(4096))
        f.seek(0)
        if fmt == "database":
            raise ImportRefused(path, f"this is a whole-database file ({names.EXPORT_IMAGE_HASH_DATABASE}); import it with "
                                      f"{names.IMPORT_IMAGE_HASH_DATABASE} (hashlens import without --format).")
        dialect = options.csv_dialect
        cells = registry.get(fmt).spreadsheet_cells
        if dialect == "auto" and cells:
            dialect = _csv_dialect_from_manifest(path) or "safe"
        described = f"{fmt}, {dialect} dialect" if cells else fmt
        progress = _forward_only(progress)
        try:
            return _import(store, path, database, fmt, f, size, dialect, described, options, progress, cancelled,
                           trust_index=True)
        except _Repeated:
            # Rolled back whole: the file repeats an identifier in different batches. Done
            # again from the start, every batch checked against the database.
            f.seek(0)
            return _import(store, path, database, fmt, f, size, dialect, described, options, progress, cancelled,
                           trust_index=False)


def _forward_only(progress: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """`progress` told only of counts past the highest so far: when the import is done
    again (a repeat across batches) it pauses where the first pass stopped instead of
    going back."""
    if progress is None:
        return None
    highest = -1

    def forward(count: int) -> None:
        nonlocal highest
        if count > highest:
            highest = count
            progress(count)

    return forward


def _import(store, path, database, fmt, f, size, dialect, described, options, progress, cancelled, *,
            trust_index: bool) -> ImportReport:
    report = ImportReport(str(path), described, database)
    entries = read_entries(path, fmt, f, size, dialect)
    try:
        with store.group(names.IMPORT_IMAGE_HASHES, database) as journal:
            _apply(store, path, database, entries, options, report, progress, cancelled, journal, trust_index)
    finally:
        entries.close()
    return report


def _apply(store, path, database, entries, options, report, progress, cancelled, journal: dict,
           trust_index: bool) -> None:
    if not store.database_exists(database):
        store.create_database(database)
        report.created_database = True
    db_id = bulk.lock_database(store, database)
    store.refuse_mirror_write(database)  # a mirror's entries change only by a pull (as add_entry refuses)
    duplicates = _Duplicates(trust_index=trust_index and not bulk.holds_entries(store, db_id))
    pending: list[ImportedEntry] = []
    step = ROWS_PER_STEP
    iterator = iter(entries)
    while True:
        # A batch at a time (no Python per entry here); what was read before a bad
        # entry stays in `pending` (list.extend keeps it).
        before = len(pending)
        try:
            pending.extend(itertools.islice(iterator, BATCH - before))
        except ImportRefused:
            # An earlier entry's fault is the one to report: the batch is checked first.
            report.read += len(pending) - before
            while (twice := _first_repeat(pending)) is not None:
                rest = pending[twice:]
                del pending[twice:]
                _store_batch(store, path, database, db_id, pending, options, report, duplicates)
                pending = rest
            _store_batch(store, path, database, db_id, pending, options, report, duplicates)
            raise
        report.read += len(pending) - before
        while step <= report.read:
            if cancelled is not None and cancelled():
                raise HashlensError(Failure.CANCELLED, "The import was cancelled; nothing was imported.")
            faults.checkpoint("import.row")
            if progress is not None:
                progress(step)
            step += ROWS_PER_STEP
        twice = _first_repeat(pending)
        if twice is not None:
            # Twice in one batch: the batch up to the second is stored first, so the second
            # is a duplicate of a stored entry, exactly as if the file were taken one by one.
            rest = pending[twice:]
            del pending[twice:]
            _store_batch(store, path, database, db_id, pending, options, report, duplicates)
            pending = rest  # judged again (it may repeat another) before more is read
            continue
        if len(pending) == before:
            break  # the end of the file
        if len(pending) >= BATCH:
            _store_batch(store, path, database, db_id, pending, options, report, duplicates)
    _store_batch(store, path, database, db_id, pending, options, report, duplicates)
    if progress is not None:
        progress(report.read)
    if duplicates.count:
        shown = "; ".join(f"line {line}: {ident!r}" for line, ident in duplicates.listed[:10])
        more = f" and {duplicates.count - 10:,} more" if duplicates.count > 10 else ""
        raise HashlensError(
            Failure.IDENTIFIER_EXISTS,
            f"Cannot import '{path}': {counted(duplicates.count, 'entry', 'entries')} already exist in '{database}' or "
            f"appear twice in the file ({shown}{more}). Nothing was imported. Choose 'skip' to keep the stored entries "
            "or 'replace' to take the file's.",
            parameter="on-duplicate",
        )
    journal.update({
        "file": str(path),
        "format": report.format,
        "on_duplicate": options.on_duplicate,
        "read": report.read,
        "added": report.added,
        "replaced": report.replaced_count,
        "skipped": report.skipped_count,
        "created_database": report.created_database,
        # Entries stored without a pHash (NULL in the store, since schema 2).
        "no_phash": report.no_phash_count,
    })


@dataclass
class _Duplicates:
    """Entries refused as duplicates under the 'abort' policy: how many, and the first few.

    With `trust_index` (the database held no entries when the import began, ours) a batch
    is not looked up before it is appended: only the file itself could repeat an
    identifier across batches, and the unique index refuses such a batch. A refused batch
    then raises _Repeated, and the import is done again with every batch looked up, so
    the policy is applied exactly as before (the lookup cost a tenth of an import)."""

    trust_index: bool = False
    count: int = 0
    listed: list[tuple[int, str]] = field(default_factory=list)


class _Repeated(Exception):
    """A trusting import met an identifier that an earlier batch of the file holds."""


def _first_repeat(pending: list[ImportedEntry]) -> int | None:
    """Where an identifier first comes a second time in `pending`, or None."""
    if len(set(map(_identifier, pending))) == len(pending):
        return None
    seen: set[str] = set()
    return next(i for i, item in enumerate(pending) if item.identifier in seen or seen.add(item.identifier))


def _store_batch(store, path, database: str, db_id: int, pending: list[ImportedEntry], options: ImportOptions,
                 report: ImportReport, duplicates: _Duplicates) -> None:
    """Validate a batch of the file's entries and append them through the bulk path, all
    inside the import's one transaction; `pending` is emptied. Identifiers the database
    holds (this import's earlier batches included) follow the duplicate policy. Entries
    are judged in file order, so the first bad one is the one refused."""
    if not pending:
        return
    identifiers = [item.identifier for item in pending]
    if not all_storable(identifiers):
        # Identifiers are checked before they reach the store: a lone surrogate from a
        # JSON escape cannot even be sent to the database (found by fuzzing).
        bad = next(i for i, item in enumerate(pending) if not all_storable((item.identifier,)))
        item = pending[bad]
        del pending[bad:]
        _store_batch(store, path, database, db_id, pending, options, report, duplicates)
        try:
            check_text("identifier", item.identifier)
        except HashlensError as exc:
            raise ImportRefused(path, f"entry {item.identifier!r}: {exc.description}", item.line) from None
        raise AssertionError("all_storable and check_text disagree")  # the property test forbids it
    held = set() if duplicates.trust_index else bulk.held_identifiers(store, db_id, identifiers)
    # Every label, key and value of the batch in one check; a batch with a doubtful text
    # takes the careful path entry by entry, which words the refusal.
    texts_ok = all_storable([*[i.label for i in pending if i.label is not None],
                             *[k for i in pending if i.metadata for k, _ in i.metadata]],
                            [v for i in pending if i.metadata for _, v in i.metadata])
    stamp = now_ms()
    rows: list[tuple] = []
    metadata: list = []
    images: list[tuple[int, bytes]] = []
    for item in pending:
        identifier = item.identifier
        pairs = item.metadata or ()
        if (texts_ok and not (held and identifier in held)
                and (len(pairs) < 2 or len(dict(pairs)) == len(pairs))):
            # The common case: checked already, stored straight from the file's values
            # (what prepare_entry makes of an entry without image data). No pHash is
            # stored as not known (NULL).
            if item.phash is None:
                report.no_phash_count += 1
            rows.append((db_id, identifier, identifier if item.label is None else item.label, to_signed64(item.phash),
                         0, None, None, None, None, None, len(pairs), item.trained_at or stamp,
                         _FLAG[item.has_image_data]))
            metadata.append(pairs)
            report.added += 1
            if item.has_image_data:
                report.images_not_in_file += 1
            continue
        stored = None
        if held and identifier in held:
            if options.on_duplicate == "abort":
                duplicates.count += 1
                if len(duplicates.listed) < MAX_LISTED:
                    duplicates.listed.append((item.line, identifier))
                _new_entry(path, item, None, options, report, dry=True)  # still validate the rest
                continue
            if options.on_duplicate == "skip":
                report.skipped_count += 1
                if len(report.skipped) < MAX_LISTED:
                    report.skipped.append(identifier)
                continue
            stored = _stored(store, database, identifier)
        try:
            entry = _new_entry(path, item, stored, options, report)
        except ImportRefused:
            if duplicates.trust_index and bulk.held_identifiers(store, db_id, identifiers):
                raise _Repeated from None  # the policy may skip a held entry unjudged
            raise
        if stored is not None:
            # Removed now, appended with the batch: it ends up where one-by-one would put it.
            store.remove_entry(database, identifier)
            report.replaced_count += 1
            if len(report.replaced) < MAX_LISTED:
                report.replaced.append(identifier)
        else:
            report.added += 1
        if item.has_image_data and entry.image_data is None:
            report.images_not_in_file += 1
        if entry.image_data is not None:
            images.append((len(rows), entry.image_data))
        rows.append(bulk.entry_row(db_id, entry, stamp))
        metadata.append(entry.metadata)
    pending.clear()
    try:
        # Every entry of the batch a row, in order (the common case): its identifiers are the rows'.
        bulk.append_rows(store, db_id, rows, identifiers if len(rows) == len(identifiers) else [r[1] for r in rows],
                         metadata, images)
    except HashlensError as exc:
        if exc.failure not in (Failure.PARAM_INVALID, Failure.IDENTIFIER_EXISTS, Failure.KEY_EXISTS):
            raise  # the store's trouble (busy, full, lost), not the file's
        if duplicates.trust_index and exc.failure is Failure.IDENTIFIER_EXISTS:
            raise _Repeated from None
        raise ImportRefused(path, exc.description) from None


@dataclass(frozen=True)
class _Stored:
    label: str
    phash: int | None
    declared_image_data: bool | None
    metadata: tuple
    trained_at: int
    image: bytes | None
    image_format: str | None
    width: int | None
    height: int | None


def _stored(store, database: str, identifier: str) -> _Stored:
    row = store.list_page(ListingQuery(database, identifiers=(identifier,), imagestatus=True, metadata=True)).rows[0]
    image = store.image(database, identifier) if row.has_image_data else None
    return _Stored(row.label, row.phash, row.declared_image_data, row.metadata or (), row.trained_at,
                   image.data if image else None, row.image_format, row.width, row.height)


def _new_entry(path, item: ImportedEntry, stored: _Stored | None, options: ImportOptions, report: ImportReport,
               *, dry: bool = False) -> NewEntry | None:
    """The entry to store, validated as training validates it. With 'replace', what the
    file does not carry is kept from the stored entry: its label (a response without
    imagestatus), metadata (without metadata), pHash (a Media Server response) and
    training time; its image too, unless the file gives a different pHash (ours)."""
    label, metadata, phash, trained_at = item.label, item.metadata, item.phash, item.trained_at
    hashed = None
    if stored is not None:
        label = stored.label if label is None else label
        metadata = stored.metadata if metadata is None else metadata
        phash = stored.phash if phash is None else phash
        trained_at = stored.trained_at if trained_at is None else trained_at
        if stored.image is not None and phash == stored.phash:
            hashed = HashedImage(stored.image, stored.image_format or "unknown", stored.width or 0,
                                 stored.height or 0, phash, hashlib.sha256(stored.image).hexdigest())
    # No pHash and no image (a ListImageHashes response never carries either): the pHash
    # is not known and is stored as NULL, never as a placeholder value (issue 11).
    unknown = phash is None and hashed is None
    declared = item.has_image_data
    if declared is None and stored is not None:
        declared = stored.declared_image_data
    try:
        entry = actions.prepare_entry(hashed, identifier=item.identifier, label=label, metadata=metadata or (),
                                      phash=phash, trained_at=trained_at, phash_known=False,
                                      declared_image_data=declared)
        check_text("identifier", item.identifier)
    except HashlensError as exc:
        raise ImportRefused(path, f"entry {item.identifier!r}: {exc.description}", item.line) from None
    keys = [k for k, _ in entry.metadata]
    if len(set(keys)) != len(keys):
        raise ImportRefused(path, f"entry {item.identifier!r}: a metadata key is given twice.", item.line)
    if dry:
        return None
    if unknown:
        report.no_phash_count += 1
    return entry
