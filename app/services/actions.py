"""The image-hash actions as Python functions: one implementation for the ACI, the
command line and the window. Each validates its input, then makes the change through
the Source, which does it atomically and journals it in the same transaction."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.domain import (
    MAX_INT,
    DatabaseInfo,
    HashlensError,
    ImageInfo,
    ListingPage,
    ListingQuery,
    NewEntry,
    check_text,
    no_such_database,
    param_invalid,
)
from app.services import imaging, lifeline
from app.source import Source


def _names(**values: str) -> None:
    for name, value in values.items():
        check_text(name, value)


def _metadata(items) -> tuple[tuple[str, str], ...]:
    pairs = tuple((k, v) for k, v in items)
    for k, v in pairs:
        check_text("metadata key", k)
        check_text("metadata value", v, allow_empty=True)
    return pairs


# -- databases ---------------------------------------------------------------------------


def list_databases(store: Source) -> list[DatabaseInfo]:
    return store.list_databases()


def create_database(store: Source, database: str) -> None:
    _names(database=database)
    store.create_database(database)


def rename_database(store: Source, database: str, newdatabase: str) -> None:
    _names(database=database, newdatabase=newdatabase)
    store.rename_database(database, newdatabase)


def remove_database(store: Source, database: str) -> int:
    _names(database=database)
    return store.remove_database(database)


# -- training ----------------------------------------------------------------------------


def new_identifier() -> str:
    """32 lower-case hex characters, as Media Server generates (MS)."""
    return uuid.uuid4().hex


def prepare_entry(
    hashed: imaging.HashedImage | None,
    *,
    identifier: str | None,
    label: str | None,
    metadata=(),
    phash: int | None = None,
    trained_at: int | None = None,
    phash_known: bool = True,
    declared_image_data: bool | None = None,
) -> NewEntry:
    """Validate everything about one new entry before any write happens. Without image
    data (an import of an entry whose image was removed) the pHash must be given, unless
    `phash_known` is False: an entry listed by a Media Server, whose pHash nobody knows
    (stored as NULL). `declared_image_data` is the `hasimagedata` such a listing gave."""
    identifier = new_identifier() if identifier is None else identifier
    check_text("identifier", identifier)
    # A missing label is generated as the identifier itself (ours: MS generates one too,
    # its form is undocumented; the audit reports such labels as auto-generated).
    label = identifier if label is None else label
    check_text("imagelabel", label)
    pairs = _metadata(metadata)
    if hashed is None:
        if phash is None and phash_known:
            raise param_invalid("imagedata", "an entry needs image data or a stored pHash.")
        return NewEntry(identifier, label, phash, None, None, None, None, None, pairs, trained_at, declared_image_data)
    _check_image_fields(hashed)
    return NewEntry(
        identifier, label, hashed.phash, hashed.data, hashed.image_format, hashed.width, hashed.height,
        hashed.sha256, pairs, trained_at, declared_image_data,
    )


def _check_image_fields(hashed: imaging.HashedImage) -> None:
    """What an entry records about its image, checked whatever its source (training
    computes these; a whole-database file only claims them): a format from the
    allow-list, sizes that are whole numbers, a SHA-256 in hex (issue 10 item 7)."""
    if hashed.image_format not in imaging.STORED_FORMATS:
        shown = hashed.image_format.encode("ascii", "backslashreplace").decode("ascii")[:40] \
            if isinstance(hashed.image_format, str) else repr(hashed.image_format)
        raise param_invalid("image_format", f"'{shown}' is not an image format Hashlens stores; use one of "
                                            f"{', '.join(sorted(imaging.STORED_FORMATS))}.")
    for name in ("width", "height"):
        value = getattr(hashed, name)
        if type(value) is not int or not 0 <= value <= MAX_INT:
            raise param_invalid(name, f"{value!r} is not a whole number from 0 to {MAX_INT}.")
    if not isinstance(hashed.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", hashed.sha256):
        raise param_invalid("sha256", "expected 64 lower-case hex digits.")


def add_entry(store: Source, database: str, entry: NewEntry, *, source: str | None = None) -> str:
    """Store one prepared entry atomically: on any failure nothing is added (MS)."""
    _names(database=database)
    store.add_entry(database, entry, source=source)
    return entry.identifier


def train_image(
    store: Source,
    database: str,
    *,
    data: bytes | None = None,
    path: str | Path | None = None,
    identifier: str | None = None,
    label: str | None = None,
    metadata=(),
) -> str:
    """TrainImageHash: exactly one of `data` or `path`. Returns the identifier."""
    _names(database=database)
    if (data is None) == (path is None):
        raise param_invalid("imagepath", "give exactly one of imagepath or imagedata.")
    if not store.database_exists(database):
        raise no_such_database(database)
    source = str(path) if path is not None else "imagedata"
    if path is not None:
        data = imaging.read_image_file(Path(path))
    hashed = imaging.hash_image(data, source)
    entry = prepare_entry(hashed, identifier=identifier, label=label, metadata=metadata)
    return add_entry(store, database, entry, source=str(path) if path is not None else None)


@dataclass
class TrainReport:
    """What a batch of training did: which files were added and which refused, and why."""

    added: list[tuple[str, str]] = field(default_factory=list)  # (path, identifier)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # Files in the folders given whose names are not image names: never read, but listed.
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    cancelled: bool = False

    def notes(self) -> list[tuple[str, str, str]]:
        """('refused' or 'skipped', path, reason) for every file not added, each path once:
        a decoder's reason may begin with the path, which is dropped from it."""
        return ([("refused", path, why.removeprefix(f"{path}: ")) for path, why in self.refused]
                + [("skipped", path, why.removeprefix(f"{path}: ")) for path, why in self.skipped])


# Trained images stored per transaction when a pool hashes them.
STORE_BATCH = 64
# Files a training worker hashes per message to the parent.
TRAIN_CHUNK = 64


def _start_worker(parent_pid: int) -> None:
    lifeline.die_with_parent(parent_pid)
    imaging.use_fast_resize()


def _hash_file(path: str):
    try:
        return imaging.hash_image(imaging.read_image_file(Path(path)), path), None
    except HashlensError as exc:
        return None, exc.description


def train_files(
    store: Source,
    database: str,
    paths: Iterable[str | Path],
    *,
    label_from_name: bool = True,
    metadata=(),
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> TrainReport:
    """Train every image in the files and folders given; a refused or failed image never
    undoes the others, and each file's outcome is reported. Decoding and hashing run in
    a process pool when there are many files (about 1,200 images/s per core); then the
    images are stored STORE_BATCH at a time, each batch in one transaction (one
    transaction per image cost the parent 0.5 ms of CPU each, issue 15 item 5), and a
    batch the store refuses is stored again image by image, so each file still gets its
    own outcome. A kill keeps every batch committed before it, each image whole. A few
    files, or one worker, are stored one transaction each, as they are hashed."""
    _names(database=database)
    if not store.database_exists(database):
        raise no_such_database(database)
    report = TrainReport()
    files = [str(p) for p in imaging.find_images(paths, skipped=report.skipped)]
    total = len(files)
    if progress:
        progress(0, total)
    pooled = len(files) >= 64 and workers != 1

    def results():
        if not pooled:
            for f in files:
                yield f, _hash_file(f)
            return
        from concurrent.futures import ProcessPoolExecutor

        imaging.load_decoders()  # before the fork: the workers inherit them (imaging.py)
        # Workers die with this process, even when it is killed (issue 10 item 6).
        # Each worker resizes for the pHash with `resample` (imaging.use_fast_resize).
        with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker,
                                 initargs=(os.getpid(),)) as pool:
            # 64 results a message: the parent's CPU to receive them fell from 0.075 to
            # 0.05 ms per image against 16 (issue 15 item 5); a worker holds one chunk's files.
            yield from zip(files, pool.map(_hash_file, files, chunksize=TRAIN_CHUNK))

    pending: list[tuple[NewEntry, str]] = []

    def store_pending() -> None:
        if not pending:
            return
        try:
            store.add_entries(database, pending)
            report.added.extend((path, entry.identifier) for entry, path in pending)
        except HashlensError:
            for entry, path in pending:  # one by one: the refused one is named, the others kept
                try:
                    report.added.append((path, add_entry(store, database, entry, source=path)))
                except HashlensError as exc:
                    report.refused.append((path, exc.description))
        pending.clear()

    done = 0
    for path, (hashed, error) in results():
        if cancelled and cancelled():
            report.cancelled = True
            break
        done += 1
        if error:
            report.refused.append((path, error))
        else:
            label = Path(path).stem if label_from_name else None
            try:
                entry = prepare_entry(hashed, identifier=None, label=label, metadata=metadata)
                if pooled:
                    pending.append((entry, path))
                    if len(pending) >= STORE_BATCH:
                        store_pending()
                else:
                    report.added.append((path, add_entry(store, database, entry, source=path)))
            except HashlensError as exc:
                report.refused.append((path, exc.description))
        if progress:
            progress(done, total)
    store_pending()  # what was hashed before a cancel is kept, as it always was
    return report


# -- listing -----------------------------------------------------------------------------


def list_image_hashes(store: Source, query: ListingQuery) -> ListingPage:
    """ListImageHashes: one window of the database's entries."""
    return store.list_page(query.validated())


def image(store: Source, database: str, identifier: str) -> ImageInfo:
    _names(database=database, identifier=identifier)
    return store.image(database, identifier)


# -- changing entries --------------------------------------------------------------------


def remove_image_hash(store: Source, database: str, identifier: str) -> None:
    _names(database=database, identifier=identifier)
    store.remove_entry(database, identifier)


def null_image_data(store: Source, database: str, identifier: str) -> None:
    _names(database=database, identifier=identifier)
    store.null_image_data(database, identifier)


def rename_image_hash(store: Source, database: str, identifier: str, newidentifier: str) -> None:
    _names(newidentifier=newidentifier, database=database, identifier=identifier)
    store.rename_entry(database, identifier, newidentifier)


def move_image_hash(store: Source, database: str, identifier: str, newdatabase: str) -> None:
    _names(newdatabase=newdatabase, database=database, identifier=identifier)
    store.move_entry(database, identifier, newdatabase)


def relabel_image(store: Source, database: str, identifier: str, imagelabel: str, newimagelabel: str) -> None:
    _names(imagelabel=imagelabel, newimagelabel=newimagelabel, database=database, identifier=identifier)
    store.relabel(database, identifier, imagelabel, newimagelabel)


def add_metadata(store: Source, database: str, identifier: str, key: str, value: str) -> None:
    check_text("key", key)
    check_text("value", value, allow_empty=True)
    _names(database=database, identifier=identifier)
    store.add_metadata(database, identifier, key, value)


def update_metadata(store: Source, database: str, identifier: str, key: str, newvalue: str) -> None:
    check_text("key", key)
    check_text("newvalue", newvalue, allow_empty=True)
    _names(database=database, identifier=identifier)
    store.update_metadata(database, identifier, key, newvalue)


def remove_metadata(store: Source, database: str, identifier: str, key: str) -> None:
    check_text("key", key)
    _names(database=database, identifier=identifier)
    store.remove_metadata(database, identifier, key)


def sync_image_hashes(store: Source, database: str | None = None) -> None:
    """Media Server loads training into its analysis engine; Hashlens has none (MS name)."""
    if database is not None:
        _names(database=database)
        store.database_id(database)

