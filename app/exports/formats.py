"""The writers the export formats share: cells, columns, entry objects, streamed text.

Which formats exist, and which writer each uses, is `app.exports.registry`'s table,
filled by the modules of `app.exports.fileformats`. XML is the ListImageHashes response
itself (`app.mediaserver_codec.writer.listing`); the others carry the same entries as
columns or objects; every one can be read back by `readers.py`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.domain import EntryRow, Failure, HashlensError, ListingQuery, first_bad_xml_char, phash_to_hex
from app.exports import registry
from app.exports.cells import ESCAPED_START, format_time, metadata_json, neutralise

JSON_FORMAT_NAME = "hashlens-listing"
JSON_VERSION = 1
# One column per metadata key is for reading in a spreadsheet; past this many keys the
# JSON column is the only sensible shape (ours).
MAX_KEY_COLUMNS = 1000


@dataclass(frozen=True)
class ExportOptions:
    """How to write a listing. `imagestatus` and `metadata` come from the query, as in
    ListImageHashes; these are the choices the file format adds."""

    format: str
    spreadsheet_safe: bool = True  # CSV, TSV and the image index (OWASP)
    metadata_columns: str = "json"  # "json": one JSON column; "keys": one column per key
    manifest: bool = True
    # A symbolic link at the output path is refused unless the person asked to write
    # through it (issue 10 item 2); then the file it points to is replaced.
    follow_symlinks: bool = False

    def validated(self) -> "ExportOptions":
        if self.format not in registry.export_names():
            raise HashlensError(
                Failure.PARAM_INVALID,
                f"Export format '{self.format}' is not known; choose one of {', '.join(registry.export_names())}.",
                parameter="format",
            )
        if self.metadata_columns not in ("json", "keys"):
            raise HashlensError(
                Failure.PARAM_INVALID,
                f"Metadata layout '{self.metadata_columns}' is not known; choose json or keys.",
                parameter="metadata-columns",
            )
        return self


def unexportable(row: EntryRow, what: str, text: str) -> HashlensError:
    bad = first_bad_xml_char(text)
    return HashlensError(
        Failure.STORE_FAILED,
        f"Entry {row.identifier!r} (position {row.position}): its {what} holds character "
        f"U+{ord(text[bad]):04X}, which no export format can carry safely; another program wrote it. "
        "Correct or remove the entry, or leave it out of the export.",
    )


def check_row(row: EntryRow) -> None:
    """Refuse an entry a foreign writer stored with characters XML 1.0 cannot carry, so
    that every format fails alike and never writes a file it cannot read (S2)."""
    if first_bad_xml_char(row.identifier) is not None:
        raise unexportable(row, "identifier", row.identifier)
    if first_bad_xml_char(row.label) is not None:
        raise unexportable(row, "label", row.label)
    for k, v in row.metadata or ():
        if first_bad_xml_char(k) is not None:
            raise unexportable(row, "metadata key", k)
        if first_bad_xml_char(v) is not None:
            raise unexportable(row, f"metadata value of {k!r}", v)


def checked(batches: Iterable[list[EntryRow]]) -> Iterator[list[EntryRow]]:
    """The batches, after one search over all of a batch's text: a bad character is rare,
    so the row that holds it is looked for only when the batch has one."""
    for batch in batches:
        parts = [row.identifier for row in batch]
        parts += [row.label for row in batch]
        parts += [text for row in batch if row.metadata for item in row.metadata for text in item]
        if first_bad_xml_char("\n".join(parts)) is not None:
            for row in batch:
                check_row(row)
        yield batch


# -- columns (CSV, TSV, XLSX) ----------------------------------------------------------------

BASE_COLUMNS = ("position", "identifier", "phash", "trained_at")
IMAGE_COLUMNS = ("label", "hasimagedata", "image_format", "width", "height", "byte_size")
KEY_PREFIX = "meta:"


def columns(query: ListingQuery, options: ExportOptions, keys: list[str] | None = None) -> list[str]:
    cols = list(BASE_COLUMNS)
    if query.imagestatus:
        cols += IMAGE_COLUMNS
    if query.metadata:
        if options.metadata_columns == "keys":
            cols += [KEY_PREFIX + k for k in keys or ()]
        else:
            cols.append("metadata")
    return cols


def _csv_rows(batch, query: ListingQuery, keys, per_key: bool, safe: bool) -> list[list]:
    """The cells of a batch, built inline: this is the hot loop of CSV and TSV exports."""
    # Only text cells can start with a trigger: numbers here are never negative, and pHash
    # and time cells start with a digit; the metadata JSON cell starts with '{'.
    escape = ESCAPED_START if safe else frozenset()
    imagestatus, metadata = query.imagestatus, query.metadata
    rows = []
    for r in batch:
        ident = r.identifier
        phash = r.phash
        # A pHash that is not known is an empty cell.
        cells = [r.position, "'" + ident if ident[:1] in escape else ident, "" if phash is None else f"{phash:016x}",
                 format_time(r.trained_at)]
        if imagestatus:
            label = r.label
            cells += ["'" + label if label[:1] in escape else label,
                      "true" if r.has_image_data or r.declared_image_data else "false",
                      r.image_format or "", "" if r.width is None else r.width,
                      "" if r.height is None else r.height, "" if r.byte_size is None else r.byte_size]
        if metadata:
            if per_key:
                items = dict(r.metadata or ())
                for k in keys:
                    v = items.get(k, "")
                    cells.append("'" + v if v[:1] in escape else v)
            else:
                cells.append(metadata_json(r.metadata or ()))
        rows.append(cells)
    return rows


def delimited_chunks(batches, query, options, keys, delimiter: str) -> Iterator[str]:
    """CSV or TSV text, a batch at a time."""
    batches = checked(batches)
    per_key = query.metadata and options.metadata_columns == "keys"
    safe = options.spreadsheet_safe
    buf = io.StringIO()
    # Every field quoted only when needed; CRLF line ends as RFC 4180 asks.
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    header = columns(query, options, keys)
    writer.writerow([neutralise(c) for c in header] if safe else header)
    yield buf.getvalue()
    for batch in batches:
        buf.seek(0)
        buf.truncate()
        writer.writerows(_csv_rows(batch, query, keys, per_key, safe))
        yield buf.getvalue()


# -- JSON and NDJSON ------------------------------------------------------------------------


def _phash_or_none(value: int | None) -> str | None:
    """16 hex digits, or None (JSON null) for a pHash that is not known."""
    return None if value is None else f"{value:016x}"


def entry_object(row: EntryRow, query: ListingQuery) -> dict:
    if query.imagestatus:
        obj = {"position": row.position, "identifier": row.identifier, "phash": _phash_or_none(row.phash),
               "trained_at": format_time(row.trained_at), "label": row.label, "hasimagedata": row.listed_image_data,
               "image_format": row.image_format, "width": row.width, "height": row.height,
               "byte_size": row.byte_size}
    else:
        obj = {"position": row.position, "identifier": row.identifier, "phash": _phash_or_none(row.phash),
               "trained_at": format_time(row.trained_at)}
    if query.metadata:
        obj["metadata"] = dict(row.metadata or ())
    return obj


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# The C encoder behind `_dumps`, made once: our objects hold only text, numbers, booleans
# and None, never a cycle or a float, so its checks can be left out.
_encode = json.encoder.c_make_encoder(
    None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False
) if json.encoder.c_make_encoder is not None else None


def encode(obj) -> str:
    return "".join(_encode(obj, 0)) if _encode is not None else _dumps(obj)


def ndjson_chunks(batches, query) -> Iterator[str]:
    for batch in checked(batches):
        yield "".join([encode(entry_object(r, query)) + "\n" for r in batch])


def json_header(query: ListingQuery) -> str:
    head = {
        "format": JSON_FORMAT_NAME,
        "version": JSON_VERSION,
        "imagestatus": query.imagestatus,
        "metadata": query.metadata,
    }
    # One entry per line inside the array, so the file streams both ways and a reader
    # can name the line of a bad entry (ours).
    return _dumps(head)[:-1] + ',"entries":['


def json_chunks(batches, query) -> Iterator[str]:
    yield json_header(query)
    sep = "\n"
    for batch in checked(batches):
        parts = []
        for r in batch:
            parts.append(sep + encode(entry_object(r, query)))
            sep = ",\n"
        yield "".join(parts)
    yield "\n]}\n"


def text_chunks(fmt: str, batches: Iterable[list[EntryRow]], query: ListingQuery, options: ExportOptions,
                keys: list[str] | None = None) -> Iterator[str]:
    """The file's text, a batch at a time, from the format's registered writer."""
    return registry.get(fmt).text_writer(batches, query, options, keys)


# -- XLSX ---------------------------------------------------------------------------------------

XLSX_MAX_ROWS = 1_048_576


class _Sheet:
    """A worksheet that continues on a new sheet ('entries 2', ...) when Excel's row
    limit is reached; written row by row in XlsxWriter's constant-memory mode."""

    def __init__(self, book, name: str, header: list[str], bold):
        self.book, self.name, self.header, self.bold = book, name, header, bold
        self.count = 0
        self._new()

    def _new(self):
        self.count += 1
        self.sheet = self.book.add_worksheet(self.name if self.count == 1 else f"{self.name} {self.count}")
        for c, text in enumerate(self.header):
            self.sheet.write_string(0, c, text, self.bold)
        self.row = 1

    def next_row(self) -> int:
        if self.row >= XLSX_MAX_ROWS:
            self._new()
        self.row += 1
        return self.row - 1


def write_xlsx(path: Path, batches, query: ListingQuery, about: list[tuple[str, str]]) -> int:
    """A workbook with sheets 'entries', 'metadata' (one row per item) and 'about'. Every
    text goes through write_string, never write(): a text that looks like a formula stays
    text, so the workbook is safe against formula injection without any escaping."""
    import xlsxwriter

    book = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
         "strings_to_numbers": False},
    )
    count = 0
    try:
        bold = book.add_format({"bold": True})
        header = list(BASE_COLUMNS) + (list(IMAGE_COLUMNS) if query.imagestatus else [])
        entries = _Sheet(book, "entries", header, bold)
        meta = _Sheet(book, "metadata", ["position", "identifier", "key", "value"], bold) if query.metadata else None
        for batch in checked(batches):
            for row in batch:
                r = entries.next_row()
                s = entries.sheet
                s.write_number(r, 0, row.position)
                s.write_string(r, 1, row.identifier)
                if row.phash is not None:  # not known: an empty cell
                    s.write_string(r, 2, phash_to_hex(row.phash))
                s.write_string(r, 3, format_time(row.trained_at))
                if query.imagestatus:
                    s.write_string(r, 4, row.label)
                    s.write_boolean(r, 5, row.listed_image_data)
                    if row.image_format:
                        s.write_string(r, 6, row.image_format)
                    for c, v in ((7, row.width), (8, row.height), (9, row.byte_size)):
                        if v is not None:
                            s.write_number(r, c, v)
                if meta is not None:
                    for k, v in row.metadata or ():
                        m = meta.next_row()
                        meta.sheet.write_number(m, 0, row.position)
                        meta.sheet.write_string(m, 1, row.identifier)
                        meta.sheet.write_string(m, 2, k)
                        meta.sheet.write_string(m, 3, v)
                count += 1
        sheet = book.add_worksheet("about")
        sheet.set_column(0, 0, 18)
        sheet.set_column(1, 1, 80)
        for r, (k, v) in enumerate(about + [("entries", str(count))]):
            sheet.write_string(r, 0, k, bold)
            sheet.write_string(r, 1, v)
    finally:
        book.close()
    return count


# -- images ----------------------------------------------------------------------------------

IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_STEM_BYTES = 100
INDEX_NAME = "index.csv"
INDEX_COLUMNS = ["file", "identifier", "label", "hasimagedata", "phash", "image_format", "width", "height",
                 "byte_size", "sha256"]


def image_file_name(identifier: str, image_format: str | None) -> str:
    """A file name for an entry's image that is safe on every system whatever the
    identifier holds (`../../x`, `CON`, `a:b`, 254 bytes of emoji: CWE-22): a sanitised
    stem for people, plus 16 hex digits of the identifier's SHA-256 so that different
    identifiers never share a name (ours)."""
    text = unicodedata.normalize("NFC", identifier)
    stem = "".join(c if (c.isalnum() or c in "-_") else "_" for c in text)
    while "__" in stem:
        stem = stem.replace("__", "_")
    stem = stem.strip("_-")
    stem = stem.encode("utf-8")[:_STEM_BYTES].decode("utf-8", "ignore") or "image"
    if stem.upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:16]
    return f"{stem}-{digest}{IMAGE_SUFFIXES.get((image_format or '').upper(), '.bin')}"
