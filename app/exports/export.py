"""Exporting a listing to a file: the one use case behind File ▸ Export… and
`hashlens export`. It streams the listing in one read snapshot, writes atomically and
then writes the manifest."""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from app import faults
from app.domain import EntryRow, Failure, HashlensError, ListingQuery, phash_to_hex
from app.exports import fileformats  # noqa: F401  (registers the formats)
from app.exports import formats, manifest, registry
from app.exports.atomic import AtomicFile, AtomicPath, ExportFailed, check_target, os_failure, sweep_stale
from app.exports.cells import neutralise
from app.exports.formats import ExportOptions

# Fault hooks and cancel checks run every this many rows, so kill tests can stop an
# export at many points and Cancel answers within a fraction of a second.
ROWS_PER_STEP = 100
# Image bytes are fetched this many entries at a time: memory stays bounded by a few
# dozen images, not by the listing batch.
IMAGES_PER_FETCH = 32


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    entries: int
    sha256: str
    bytes: int
    manifest: Path | None


def cancelled_error(what: str = "export") -> HashlensError:
    return HashlensError(Failure.CANCELLED, f"The {what} was cancelled; no file was written.")


def _metered(batches, progress, cancelled) -> Iterator[list[EntryRow]]:
    done = 0
    try:
        for batch in batches:
            for i in range(0, len(batch), ROWS_PER_STEP):
                if cancelled is not None and cancelled():
                    raise cancelled_error()
                faults.checkpoint("export.row")
                part = batch[i:i + ROWS_PER_STEP] if len(batch) > ROWS_PER_STEP else batch
                yield part
                done += len(part)
                if progress is not None:
                    progress(done)
    finally:
        # Ends the store's read snapshot now, not whenever the generator is collected.
        close = getattr(batches, "close", None)
        if close is not None:
            close()


class _Counter:
    def __init__(self, batches):
        self.batches = batches
        self.count = 0

    def __iter__(self):
        for batch in self.batches:
            self.count += len(batch)
            yield batch


def _store_path(store) -> Path | None:
    return store.file_path


def scope_query(query: ListingQuery, scope: str, *, selected: list[str] | None = None,
                page_rows: list[EntryRow] | None = None) -> ListingQuery:
    """The query for an export scope: 'listing' is every entry of the listing (its filter
    and order, no window), 'page' the rows shown, 'selected' the chosen identifiers in the
    listing's order, 'window' the query exactly as given (start/maxresults kept)."""
    if scope == "window":
        return query
    if scope == "listing":
        return query.unwindowed()
    if scope == "page":
        rows = page_rows or []
        if not rows:
            raise HashlensError(Failure.PARAM_INVALID, "There is no page of rows to export.", parameter="scope")
        first = rows[0].position
        if [r.position for r in rows] == list(range(first, first + len(rows))) and query.identifiers is None:
            return query.window(first, len(rows))
        return replace(query.unwindowed(), identifiers=tuple(r.identifier for r in rows))
    if scope == "selected":
        if not selected:
            raise HashlensError(Failure.PARAM_INVALID, "No rows are selected to export.", parameter="scope")
        ids = tuple(dict.fromkeys(selected))
        if query.identifiers is not None:
            keep = set(query.identifiers)
            ids = tuple(i for i in ids if i in keep)
        return replace(query.unwindowed(), identifiers=ids)
    raise HashlensError(Failure.PARAM_INVALID, f"Export scope '{scope}' is not known.", parameter="scope")


def export_listing(
    store,
    query: ListingQuery,
    output: Path | str,
    options: ExportOptions,
    *,
    scope: str = "window",
    progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ExportResult:
    """Export every entry of `query` (its filter, order and window) to `output`.

    Nothing appears at `output` unless the whole export succeeded; on failure or cancel
    the previous file there is untouched and no temporary file is left."""
    options = options.validated()
    query = query.validated()
    store.database_id(query.database)  # a missing database is an error before any file work
    fmt = options.format
    spec = registry.get(fmt)
    store_path = _store_path(store)
    # From here on `target` is the file really written (a followed link resolved), so
    # the manifest lands beside it and names it.
    target = check_target(Path(output), store_path, folder_ok=spec.folder,
                          follow_symlinks=options.follow_symlinks)
    sweep_stale(target.parent)

    keys = None
    if spec.key_columns and query.metadata and options.metadata_columns == "keys":
        keys = store.metadata_keys(query.database, limit=formats.MAX_KEY_COLUMNS + 1)
        if len(keys) > formats.MAX_KEY_COLUMNS:
            raise HashlensError(
                Failure.PARAM_INVALID,
                f"Database '{query.database}' has more than {formats.MAX_KEY_COLUMNS} metadata keys, too many "
                "for one column per key; export the metadata as one JSON column instead.",
                parameter="metadata-columns",
            )

    metered = _metered(store.iter_listing(query), progress, cancelled)
    counter = _Counter(metered)
    index = None
    try:
        if spec.text_writer is not None:
            digest = hashlib.sha256()
            with AtomicFile(target, store_path) as out:
                for chunk in spec.text_writer(counter, query, options, keys):
                    data = chunk.encode("utf-8")
                    digest.update(data)
                    out.write(data)
            sha, size = digest.hexdigest(), out.size
        elif spec.file_writer is not None:
            with AtomicPath(target, store_path) as part:
                about = _about(store, query, options)
                spec.file_writer(part, counter, query, about)
                sha, size = manifest.sha256_file(part)
        elif target.suffix.lower() == ".zip":
            sha, size = _images_zip(store, target, store_path, counter, options)
        else:
            sha, size = _images_folder(store, target, store_path, counter, options)
            index = formats.INDEX_NAME
    except OSError as exc:
        raise os_failure(target, exc) from None
    except HashlensError:
        raise
    except Exception as exc:
        # A library's own error class (XlsxWriter, zipfile) as a clear message.
        raise ExportFailed(f"Cannot write '{target}': {exc}; nothing was written there.") from exc
    finally:
        # A writer that stopped early leaves the listing suspended; closing it now ends
        # the store's read snapshot instead of leaving a transaction open.
        metered.close()

    written_manifest = None
    # A kill here leaves the new file beside the previous export's manifest; that
    # manifest records the previous file's size and SHA-256, so `hashlens verify` and
    # every import see the mismatch and never apply it (issue 10 item 3).
    faults.checkpoint("export.manifest")
    if options.manifest:
        data = manifest.build(
            target=target, fmt=fmt, query=query, store_display=store.describe(), scope=scope,
            entries=counter.count, sha256=sha, size=size, index=index,
            options=_manifest_options(fmt, query, options),
        )
        written_manifest = manifest.write(target, data)
    return ExportResult(target, fmt, counter.count, sha, size, written_manifest)


def _manifest_options(fmt: str, query: ListingQuery, options: ExportOptions) -> dict:
    """The choices a reader needs to read the file back exactly (the import reads the
    CSV dialect from here)."""
    found = {}
    spec = registry.get(fmt)
    if spec.spreadsheet_cells:
        found["csv_dialect"] = "spreadsheet-safe" if options.spreadsheet_safe else "raw"
    if spec.key_columns and query.metadata:
        found["metadata_columns"] = options.metadata_columns
    return found


def _about(store, query: ListingQuery, options: ExportOptions) -> list[tuple[str, str]]:
    import app

    line, notes = manifest.request_line(query)
    return [
        ("exported by", f"Hashlens {app.__version__}"),
        ("store", store.describe()),
        ("database", query.database),
        ("filter", query.describe()),
        ("request", line),
        ("request notes", "; ".join(notes) or "none: the request lists exactly these entries"),
        ("phash", "Hashlens's own 64-bit perceptual hash, not Media Server's measure"),
    ]


# -- images ------------------------------------------------------------------------------------


def _index_row(row: EntryRow, name: str, sha: str, safe: bool) -> list:
    values = [
        name, row.identifier, row.label, "true" if row.has_image_data else "false", phash_to_hex(row.phash),
        row.image_format or "", "" if row.width is None else row.width, "" if row.height is None else row.height,
        "" if row.byte_size is None else row.byte_size, sha,
    ]
    return [neutralise(v) if type(v) is str else v for v in values] if safe else values


def _images(store, batches) -> Iterator[tuple[EntryRow, bytes | None]]:
    for batch in formats.checked(batches):
        for i in range(0, len(batch), IMAGES_PER_FETCH):
            rows = batch[i:i + IMAGES_PER_FETCH]
            found = store.images_by_key([r.key for r in rows if r.has_image_data])
            for row in rows:
                yield row, found.get(row.key)


def _images_folder(store, target: Path, store_path, batches, options: ExportOptions) -> tuple[str, int]:
    with AtomicPath(target, store_path, folder=True) as part:
        root = part.resolve()
        index_path = part / formats.INDEX_NAME
        with open(index_path, "x", encoding="utf-8", newline="") as index:
            writer = csv.writer(index, lineterminator="\r\n")
            writer.writerow(formats.INDEX_COLUMNS)
            for row, data in _images(store, batches):
                name = sha = ""
                if data is not None:
                    name = formats.image_file_name(row.identifier, row.image_format)
                    path = part / name
                    # Belt and braces for CWE-22: the name is built to be plain, and the
                    # resolved path must still be directly inside the export folder.
                    if path.resolve().parent != root:
                        raise ExportFailed(f"Refusing to write the image of {row.identifier!r} outside '{target}'.")
                    with open(path, "xb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    sha = hashlib.sha256(data).hexdigest()
                writer.writerow(_index_row(row, name, sha, options.spreadsheet_safe))
            index.flush()
            os.fsync(index.fileno())
        sha, size = manifest.sha256_file(index_path)
    return sha, size


def _images_zip(store, target: Path, store_path, batches, options: ExportOptions) -> tuple[str, int]:
    with AtomicFile(target, store_path) as out:
        # The index is spooled to an unnamed temporary file and added last, so neither
        # it nor the images are ever all in memory.
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="", dir=target.parent) as index, \
                zipfile.ZipFile(out.file, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            writer = csv.writer(index, lineterminator="\r\n")
            writer.writerow(formats.INDEX_COLUMNS)
            for row, data in _images(store, batches):
                name = sha = ""
                if data is not None:
                    name = formats.image_file_name(row.identifier, row.image_format)
                    if name in zf.NameToInfo:
                        raise ExportFailed(f"Two entries map to the image name '{name}'; this should not happen.")
                    zf.writestr(name, data)
                    sha = hashlib.sha256(data).hexdigest()
                writer.writerow(_index_row(row, name, sha, options.spreadsheet_safe))
            index.seek(0)
            info = zipfile.ZipInfo(formats.INDEX_NAME, date_time=time.localtime()[:6])
            with zf.open(info, "w", force_zip64=True) as member:
                while chunk := index.read(1 << 20):
                    member.write(chunk.encode("utf-8"))
        out.file.flush()
        sha, size = manifest.sha256_file(out.part)
    return sha, size


def suggested_name(query: ListingQuery, fmt: str) -> str:
    """A default file name for an export: the database name made safe, plus the suffix."""
    stem = formats.image_file_name(query.database, None).rsplit("-", 1)[0]
    return stem + registry.get(fmt).suffix

