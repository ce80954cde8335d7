"""Whole-database files for ExportImageHashDatabase / ImportImageHashDatabase.

Media Server's own file format is undocumented (MS), so Hashlens writes its own (ours),
documented in docs/exports.md: UTF-8 JSON lines, a header line naming the database, one
line per entry in database order (image bytes in base64), and an end line with the
entry count, so a truncated file is always detected."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from app import faults
from app.domain import Failure, HashlensError, ListingQuery, check_text, phash_to_hex
from app.exports import readers
from app.exports.atomic import AtomicFile, sweep_stale
from app.exports.cells import format_time
from app.exports.export import IMAGES_PER_FETCH, ROWS_PER_STEP, cancelled_error
from app.exports.formats import check_row
from app.exports.readers import ImportRefused
from app.services import actions, imaging
from app.services.imaging import HashedImage
from app.mediaserver_codec import names

FORMAT_NAME = "hashlens-database"
# One line holds one entry with its image in base64: capped by the largest image
# training accepts, so even a hostile file is read in bounded pieces.
MAX_LINE_BYTES = (imaging.MAX_FILE_BYTES + 2) // 3 * 4 + readers.MAX_LINE_BYTES
VERSION = 1
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _header(database: str, includeimagedata: bool, includemetadata: bool) -> str:
    return _dumps({"format": FORMAT_NAME, "version": VERSION, "database": database,
                   "includeimagedata": includeimagedata, "includemetadata": includemetadata})


def export_database(store, database: str, dbpath: Path | str, includeimagedata: bool = True,
                    includemetadata: bool = True, *, progress: Callable[[int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None, follow_symlinks: bool = False) -> int:
    """ExportImageHashDatabase: every entry of `database`, in database order, to `dbpath`
    (written atomically). Returns the number of entries written."""
    check_text("database", database)
    store.database_id(database)
    target = Path(dbpath)
    store_path = store.file_path
    query = ListingQuery(database, imagestatus=True, metadata=includemetadata)
    count = 0
    sweep_stale(target.parent)
    with AtomicFile(target, store_path, follow_symlinks=follow_symlinks) as out:
        out.write((_header(database, includeimagedata, includemetadata) + "\n").encode("utf-8"))
        batches = store.iter_listing(query)
        try:
            for batch in batches:
                for i in range(0, len(batch), IMAGES_PER_FETCH):
                    rows = batch[i:i + IMAGES_PER_FETCH]
                    images = store.images_by_key([r.key for r in rows if r.has_image_data]) if includeimagedata else {}
                    lines = []
                    for row in rows:
                        check_row(row)
                        data = images.get(row.key)
                        obj = {
                            "identifier": row.identifier,
                            "label": row.label,
                            "phash": None if row.phash is None else phash_to_hex(row.phash),
                            "trained_at": format_time(row.trained_at),
                            "hasimagedata": row.has_image_data,
                            "image_format": row.image_format,
                            "width": row.width,
                            "height": row.height,
                            "byte_size": row.byte_size,
                            "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
                            "image": base64.b64encode(data).decode("ascii") if data is not None else None,
                        }
                        if row.declared_image_data is not None:  # a Media Server's own hasimagedata
                            obj["declaredimagedata"] = row.declared_image_data
                        if includemetadata:
                            obj["metadata"] = dict(row.metadata or ())
                        lines.append(_dumps(obj) + "\n")
                    out.write("".join(lines).encode("utf-8"))
                    count += len(rows)
                    if cancelled is not None and cancelled():
                        raise cancelled_error()
                    faults.checkpoint("export.row")
                    if progress is not None:
                        progress(count)
        finally:
            batches.close()
        out.write((_dumps({"end": FORMAT_NAME, "entries": count}) + "\n").encode("utf-8"))
    return count


def read_header(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = f.readline(1 << 16)
    text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    try:
        header = json.loads(text)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ImportRefused(path, "the first line is not a Hashlens database header.", 1)
    if header.get("version") != VERSION:
        raise ImportRefused(path, f"this is version {header.get('version')!r} of the database format; this "
                                  f"Hashlens reads version {VERSION}.", 1)
    return header


def import_database(store, dbpath: Path | str, database: str | None = None, *,
                    progress: Callable[[int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> str:
    """ImportImageHashDatabase: a new database from a file `export_database` wrote, named
    `database` or, when None, as in the file. All of it in one transaction, or nothing.
    Returns the database name."""
    path = Path(dbpath)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ImportRefused(path, f"it cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImportRefused(path, "it is not a regular file.")
    header = read_header(path)
    name = database if database is not None else header.get("database")
    if not isinstance(name, str):
        raise ImportRefused(path, "the header names no database; give one.", 1)
    check_text("database", name)
    with open(path, "rb") as f, store.group(names.IMPORT_IMAGE_HASH_DATABASE, name, {"dbpath": str(path)}) as journal:
        if store.database_exists(name):
            raise HashlensError(Failure.DATABASE_EXISTS,
                                f"'database={name}' already exists; import into a new database name.",
                                parameter="database")
        store.create_database(name)
        count = _import_lines(store, path, f, name, progress, cancelled)
        journal["entries"] = count
    return name


def _import_lines(store, path, f, name, progress, cancelled) -> int:
    count = 0
    ended = None
    for number, raw in readers._binary_lines(path, f, MAX_LINE_BYTES):
        if number == 1:
            continue
        text = readers._decode_line(path, raw, number)
        if ended is not None:
            if text.strip():
                raise ImportRefused(path, "text after the end line.", number)
            continue
        obj = readers._loads(path, text, number)
        if isinstance(obj, dict) and "end" in obj:
            if obj.get("end") != FORMAT_NAME or obj.get("entries") != count:
                raise ImportRefused(path, f"the end line records {obj.get('entries')!r} entries but {count:,} "
                                          "were read: the file is damaged.", number)
            ended = number
            continue
        item = readers.entry_from_object(path, obj, number, allowed=readers.DATABASE_KEYS)
        if item.phash is None and item.image is not None:
            raise ImportRefused(path, f"the entry {item.identifier!r} has an image but no pHash.", number)
        hashed = None
        if item.image is not None:
            digest = hashlib.sha256(item.image).hexdigest()
            if item.sha256 is not None and digest != item.sha256:
                raise ImportRefused(path, f"the image of {item.identifier!r} does not match its SHA-256: the file "
                                          "is damaged.", number)
            # The bytes are stored as the export read them from the store; they are
            # decoded (safely) only when shown, as for any stored image (ours).
            hashed = HashedImage(item.image, item.image_format or "unknown", item.width or 0, item.height or 0,
                                 item.phash, digest)
        try:
            entry = actions.prepare_entry(hashed, identifier=item.identifier, label=item.label,
                                          metadata=item.metadata or (), phash=item.phash, trained_at=item.trained_at,
                                          phash_known=False,
                                          declared_image_data=item.declared_image_data)
            store.add_entry(name, entry)
        except HashlensError as exc:
            if exc.failure not in (Failure.PARAM_INVALID, Failure.IDENTIFIER_EXISTS, Failure.KEY_EXISTS):
                raise
            raise ImportRefused(path, f"entry {item.identifier!r}: {exc.description}", number) from None
        count += 1
        if count % ROWS_PER_STEP == 0:
            if cancelled is not None and cancelled():
                raise HashlensError(Failure.CANCELLED, "The import was cancelled; nothing was imported.")
            faults.checkpoint("import.row")
            if progress is not None:
                progress(count)
    if ended is None:
        raise ImportRefused(path, "the file has no end line: it is truncated.")
    return count
