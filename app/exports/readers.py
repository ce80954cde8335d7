"""Readers of import files: Hashlens's XML, JSON, NDJSON, CSV and TSV exports and
ListImageHashes responses saved from a Media Server. Every file is untrusted.

Each reader streams the file and yields `ImportedEntry` values, or raises `ImportRefused`
naming the line (and column where the parser knows it) and the rule that was broken.
XML goes through the one <autnresponse> reader (`app.mediaserver_codec.reader`: defused,
streamed, depth and text capped); JSON rejects NaN/Infinity, duplicate keys and runaway nesting; CSV has
a field size cap and a fixed header; all text must be strict UTF-8 (reliability X1-X9)."""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import json
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.domain import MAX_INT, PHASH_MASK, Failure, HashlensError, parse_phash, whole_number
from app.exports import formats, registry
from app.exports.cells import ESCAPED_START, FORMULA_TRIGGERS, parse_time, restore
from app.mediaserver_codec.reader import ListedEntry, ResponseUnreadable, iter_response

# Default cap on an import file (reliability X3: configurable, 2 GB).
MAX_IMPORT_BYTES = 2 * 1024**3
# One CSV field: the metadata JSON column of an entry with many items is the largest.
MAX_CSV_FIELD = 4 * 1024**2
# Every token and line is capped BEFORE it is buffered, so memory stays bounded
# whatever the file (issue 10 item 5): one line of NDJSON, of Hashlens's JSON layout or
# of CSV, one CSV record (quoted fields may span lines), and one entry of a JSON document
# in any other layout. An entry of a listing is at most a few MB of metadata.
MAX_LINE_BYTES = MAX_CSV_FIELD + 64 * 1024
MAX_RECORD_BYTES = 4 * MAX_CSV_FIELD
MAX_JSON_ENTRY_BYTES = MAX_LINE_BYTES
_READ_CHUNK = 1 << 16
_first_char = operator.itemgetter(slice(0, 1))  # a cell's first character, "" for an empty cell

LISTING_KEYS = {"position", "identifier", "phash", "trained_at", "label", "hasimagedata", "image_format",
                "width", "height", "byte_size", "metadata"}
DATABASE_KEYS = LISTING_KEYS | {"image", "sha256", "declaredimagedata"}


class ImportRefused(HashlensError):
    """A file that cannot be imported; nothing of it was imported."""

    def __init__(self, path, reason: str, line: int | None = None, column: int | None = None):
        where = ""
        if line is not None:
            where = f" line {line}" + (f", column {column}" if column is not None else "") + ":"
        super().__init__(
            Failure.BAD_FILE, f"Cannot import '{path}':{where} {reason} Nothing was imported.", parameter="file"
        )
        self.path, self.line, self.column, self.reason = path, line, column, reason


@dataclass(slots=True)
class ImportedEntry:
    """One entry as a file describes it. None means the file does not carry that field
    (a ListImageHashes response without imagestatus carries no label, and never a pHash)."""

    line: int
    identifier: str
    label: str | None = None
    phash: int | None = None
    has_image_data: bool | None = None
    # A whole-database file's record of a Media Server's own hasimagedata (schema 2).
    declared_image_data: bool | None = None
    metadata: tuple[tuple[str, str], ...] | None = None
    trained_at: int | None = None
    image: bytes | None = None
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    byte_size: int | None = None
    sha256: str | None = None


# -- format detection -------------------------------------------------------------------------

_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def sniff(path: Path, head: bytes) -> str:
    """Which registered format a file is in, from its first bytes (and its suffix where
    the bytes cannot tell): each format's sniffer is asked in turn (`registry.sniff`)."""
    if head.startswith(_UTF16_32_BOMS):
        raise ImportRefused(path, "the file is UTF-16 or UTF-32; only UTF-8 is accepted.", 1)
    found = registry.sniff(path, head.removeprefix(b"\xef\xbb\xbf").lstrip())
    if found is None:
        raise ImportRefused(path, "the file is empty.")
    return found


# -- shared helpers -------------------------------------------------------------------------


def _decode_line(path, raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        raise ImportRefused(path, f"the bytes are not valid UTF-8 ({exc.reason}).", number, column) from None


def _text_lines(path, f, first: int = 1) -> Iterator[tuple[int, str]]:
    """The file's lines as text, numbered from `first` (the line the file's position is
    at): `_binary_lines` and `_decode_line` in one loop, for the readers that take a file
    a line at a time (no BOM handling here)."""
    readline, limit = f.readline, MAX_LINE_BYTES + 1
    number = first - 1
    while True:
        raw = readline(limit)
        if not raw:
            return
        number += 1
        if len(raw) >= limit:
            raise ImportRefused(path, f"the line is longer than {MAX_LINE_BYTES:,} bytes (the limit on one line); "
                                      "no entry of a listing is that long.", number)
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            _decode_line(path, raw, number)  # raises, naming the column
            raise


def _binary_lines(path, f, max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    number = 0
    while True:
        raw = f.readline(max_line + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line:
            raise ImportRefused(path, f"the line is longer than {max_line:,} bytes (the limit on one line); "
                                      "no entry of a listing is that long.", number)
        yield number, raw


def _reject_duplicate_keys(pairs):
    found = dict(pairs)
    if len(found) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return found


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    # Checked before conversion: int() of thousands of digits is slow, and every
    # number a file may hold fits in 64 bits.
    if len(text.lstrip("-")) > len(str(MAX_INT)):
        raise ValueError(f"the number {text[:20]}… has {len(text):,} digits; no field holds more than 64 bits")
    return int(text)


_decoder = json.JSONDecoder(object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant,
                            parse_int=_bounded_int)


def _loads(path, text: str, line: int | None):
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        if line is None:
            raise ImportRefused(path, f"invalid JSON ({exc.msg}).", exc.lineno, exc.colno) from None
        raise ImportRefused(path, f"invalid JSON ({exc.msg}).", line, exc.colno) from None
    except RecursionError:
        raise ImportRefused(path, "the JSON is nested too deeply.", line) from None
    except ValueError as exc:
        raise ImportRefused(path, f"invalid JSON: {exc}.", line) from None


# The C decoder without Python hooks, for the lines of NDJSON, Hashlens's JSON layout and
# CSV metadata cells: the hooks above cost a Python call per object and per number (a third
# of an import's parsing, ours). What they refuse is still refused: each object comes as
# the tuple of its (key, value) pairs (`tuple` is a hook in C), so a repeated key shows as
# a dict shorter than its pairs; a number too long for any field fails the entry's checks.
# Whatever the quick way doubts goes through `_loads` again, which words the refusal as
# before (an object anywhere else than the entry and its metadata is refused by a type
# check, and so doubted).
_pairs_scan = json.JSONDecoder(object_pairs_hook=tuple, parse_constant=_reject_constant).scan_once


def _unrepeated(pairs) -> dict | None:
    """The object of a decoded tuple of pairs, or None when it is not one or repeats a key."""
    if type(pairs) is not tuple:
        return None
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else None


def _quick_entry(path, text: str, line: int) -> ImportedEntry:
    """`entry_from_object(path, _loads(path, text, line), line)`, through the C decoder
    when the line holds exactly one object of entry fields and metadata texts."""
    try:
        pairs, end = _pairs_scan(text, 0)
        if type(pairs) is tuple and (end == len(text) or not text[end:].strip(" \t\r\n")):
            obj = dict(pairs)
            metadata = obj.get("metadata")
            if type(metadata) is tuple:  # _unrepeated, inline: this runs for every entry
                obj["metadata"] = items = dict(metadata)
                if len(items) != len(metadata):
                    raise ValueError("a metadata key repeats")  # the careful way words it
            if len(obj) == len(pairs):
                return entry_from_object(path, obj, line)
    except (ValueError, RecursionError, StopIteration, ImportRefused):
        pass
    return entry_from_object(path, _loads(path, text, line), line)


def _quick_metadata(path, text: str, line: int) -> tuple[tuple[str, str], ...]:
    """A CSV metadata cell as `_metadata(path, line, _loads(...))` reads it; ValueError
    when the quick way doubts it (the caller then takes the careful way)."""
    try:
        pairs, end = _pairs_scan(text, 0)
    except StopIteration:
        raise ValueError("no JSON value at the start") from None
    obj = _unrepeated(pairs)
    if end != len(text) or obj is None:
        raise ValueError("not plainly an object of texts")
    return _metadata(path, line, obj)


def _text_field(path, line, name, value, *, optional=True):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ImportRefused(path, f"'{name}' must be text, not {_json_type(value)}.", line)
    return value


def _int_field(path, line, name, value):
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_INT:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise ImportRefused(path, f"'{name}' must be a whole number from 0 to {MAX_INT}, not {shown}.", line)
    return value


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def entry_from_object(path, obj, line: int, *, allowed=LISTING_KEYS) -> ImportedEntry:
    """One entry of a JSON, NDJSON or database file, every field type-checked.

    Written for speed (imports spend most of their Python here): each field is read once
    and its type tested inline; the helpers that word a refusal run only on a bad value."""
    if type(obj) is not dict:
        raise ImportRefused(path, f"an entry must be a JSON object, not {_json_type(obj)}.", line)
    if not obj.keys() <= allowed:
        unknown = [k for k in obj if k not in allowed]
        raise ImportRefused(path, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))}).", line)
    get = obj.get
    identifier = get("identifier", _ABSENT)
    if type(identifier) is not str:
        if identifier is _ABSENT:
            raise ImportRefused(path, "the entry has no 'identifier'.", line)
        _text_field(path, line, "identifier", identifier, optional=False)
    label = get("label")
    if label is not None and type(label) is not str:
        _text_field(path, line, "label", label)
    phash = get("phash")
    if phash is not None:
        if type(phash) is str and len(phash) == 16 and _HEX16(phash):  # as every export writes it
            phash = int(phash, 16)
        else:
            phash = _phash(path, line, _text_field(path, line, "phash", phash))
    trained = get("trained_at")
    if trained is not None:
        trained = _time(path, line, trained if type(trained) is str else _text_field(path, line, "trained_at", trained))
    flag = get("hasimagedata")
    if flag is not None and type(flag) is not bool:
        raise ImportRefused(path, f"'hasimagedata' must be true or false, not {flag!r}.", line)
    declared = get("declaredimagedata")
    if declared is not None and type(declared) is not bool:
        raise ImportRefused(path, f"'declaredimagedata' must be true or false, not {declared!r}.", line)
    image_format = get("image_format")
    if image_format is not None and type(image_format) is not str:
        _text_field(path, line, "image_format", image_format)
    # Numbers in the order the general reader checked them, so the first bad one is named.
    width = get("width")
    if width is not None and (type(width) is not int or not 0 <= width <= MAX_INT):
        _int_field(path, line, "width", width)
    height = get("height")
    if height is not None and (type(height) is not int or not 0 <= height <= MAX_INT):
        _int_field(path, line, "height", height)
    byte_size = get("byte_size")
    if byte_size is not None and (type(byte_size) is not int or not 0 <= byte_size <= MAX_INT):
        _int_field(path, line, "byte_size", byte_size)
    position = get("position")
    if position is not None and (type(position) is not int or not 0 <= position <= MAX_INT):
        _int_field(path, line, "position", position)
    metadata = get("metadata")
    if metadata is not None:
        metadata = _metadata(path, line, metadata)
    image = get("image")
    if image is not None:
        image = _text_field(path, line, "image", image)
        try:
            image = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            raise ImportRefused(path, "'image' is not valid base64.", line) from None
    sha256 = get("sha256")
    if sha256 is not None and type(sha256) is not str:
        _text_field(path, line, "sha256", sha256)
    # One call with every field in ImportedEntry's order (a tenth of the time of setting
    # them one by one).
    return ImportedEntry(line, identifier, label, phash, flag, declared, metadata, trained, image, image_format,
                         width, height, byte_size, sha256)


_ABSENT = object()


def _metadata(path, line, value) -> tuple[tuple[str, str], ...]:
    if type(value) is not dict:
        raise ImportRefused(path, f"'metadata' must be an object of key: value texts, not {_json_type(value)}.", line)
    items = tuple(value.items())
    for k, v in items:
        if type(v) is not str:
            raise ImportRefused(path, f"metadata {k!r} must have a text value, not {_json_type(v)}.", line)
    return items


_HEX16 = re.compile("[0-9a-f]{16}").fullmatch  # how every export writes a pHash


def _phash(path, line, text: str, column: int | None = None) -> int:
    if len(text) == 16 and _HEX16(text):
        return int(text, 16)
    try:
        value = parse_phash(text)
    except HashlensError:
        raise ImportRefused(path, f"'{text}' is not a pHash (16 hex digits).", line, column) from None
    return value & PHASH_MASK


def _time(path, line, text: str, column: int | None = None) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ImportRefused(path, f"'trained_at': {exc}.", line, column) from None


# -- JSON and NDJSON --------------------------------------------------------------------------


def read_ndjson(path, f) -> Iterator[ImportedEntry]:
    for number, text in _text_lines(path, f):
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        yield _quick_entry(path, text, number)


_JSON_HEAD_END = ',"entries":['


def read_json(path, f, size: int) -> Iterator[ImportedEntry]:
    """A JSON document. Hashlens writes one entry per line inside the array, which is read
    line by line; any other layout is streamed one entry at a time."""
    first = f.readline(1 << 16)
    head = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    if head.startswith(b'{"format":"' + formats.JSON_FORMAT_NAME.encode()) and head.endswith(_JSON_HEAD_END.encode()):
        header = _loads(path, _decode_line(path, head, 1)[: -len(_JSON_HEAD_END)] + "}", 1)
        if header.get("version") != formats.JSON_VERSION:
            raise ImportRefused(path, f"this is version {header.get('version')!r} of the listing format; "
                                      f"this Hashlens reads version {formats.JSON_VERSION}.", 1)
        yield from _json_lines(path, f)
        return
    yield from _json_document(path, _JsonStream(path, f, first))


def _json_document(path, stream: "_JsonStream") -> Iterator[ImportedEntry]:
    """A JSON list of entries, or an object with an 'entries' list, streamed one entry
    at a time: parsing a 212 MB document whole took 1.9 GB (issue 10 item 5)."""
    ordinal = 0

    def entries() -> Iterator[ImportedEntry]:
        nonlocal ordinal
        stream.expect("[")
        if stream.peek() == "]":
            stream.take()
            return
        while True:
            ordinal += 1
            obj = stream.value(f"entry {ordinal}")
            # A document has no line per entry; the entry's ordinal stands in.
            try:
                yield entry_from_object(path, obj, ordinal)
            except ImportRefused as exc:
                raise ImportRefused(path, f"entry {ordinal}: {exc.reason}") from None
            if stream.take_one_of(",]") == "]":
                return

    first = stream.peek()
    if first == "[":
        yield from entries()
    elif first == "{":
        stream.take()
        seen: set[str] = set()
        while stream.peek() != "}":
            if seen:
                stream.expect(",")
            key = stream.value("a key")
            if not isinstance(key, str):
                stream.fail("an object key must be text")
            if key in seen:
                stream.fail(f"the key {key!r} appears twice in one object")
            seen.add(key)
            stream.expect(":")
            if key == "entries":
                if stream.peek() != "[":
                    raise ImportRefused(path, "the JSON must be a list of entries or an object with an 'entries' list.")
                yield from entries()
                continue
            value = stream.value(f"the value of {key!r}")
            if key == "format" and value != formats.JSON_FORMAT_NAME:
                raise ImportRefused(path, f"the JSON is a {value!r} file, not a Hashlens listing.")
        stream.take()
        if "entries" not in seen:
            raise ImportRefused(path, "the JSON object has no 'entries' list.")
    else:
        raise ImportRefused(path, "the JSON must be a list of entries or an object with an 'entries' list.")
    if stream.peek() != "":
        stream.fail("text after the end of the JSON document")


_JSON_SPACE = re.compile(r"[ \t\r\n]*")


class _JsonStream:
    """A JSON text read in bounded chunks: values are decoded one at a time from a
    buffer that never holds more than one value (up to MAX_JSON_ENTRY_BYTES) and a chunk."""

    def __init__(self, path, f, head: bytes):
        self.path, self.f = path, f
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf, self.pos, self.eof = "", 0, False
        self.consumed = 0  # bytes decoded before the current buffer, for messages
        self._feed(head.removeprefix(b"\xef\xbb\xbf"))

    def _feed(self, raw: bytes, final: bool = False) -> None:
        try:
            text = self.decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            raise ImportRefused(self.path, f"the bytes are not valid UTF-8 ({exc.reason}) near byte "
                                           f"{self.consumed + exc.start:,}.") from None
        self.buf = self.buf[self.pos:] + text
        self.pos = 0

    def _more(self, at_least: int = _READ_CHUNK) -> bool:
        if self.eof:
            return False
        raw = self.f.read(max(at_least, _READ_CHUNK))
        self.consumed += len(raw)
        if not raw:
            self.eof = True
            self._feed(b"", final=True)
            return False
        self._feed(raw)
        return True

    def fail(self, reason: str):
        raise ImportRefused(self.path, f"invalid JSON: {reason}.")

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), not consumed."""
        while True:
            self.pos = _JSON_SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def take(self) -> str:
        c = self.peek()
        self.pos += 1
        return c

    def expect(self, char: str) -> None:
        found = self.take()
        if found != char:
            self.fail(f"expected '{char}', found {found!r}" if found else f"expected '{char}'; the file ends too early")

    def take_one_of(self, chars: str) -> str:
        found = self.take()
        if not found or found not in chars:
            self.fail(f"expected one of {', '.join(repr(c) for c in chars)}, found {found!r}" if found
                      else "the file ends too early: is it truncated?")
        return found

    def value(self, what: str):
        """Decode one JSON value, reading more while it is unfinished, up to the cap."""
        if self.peek() == "":
            self.fail(f"expected {what}; the file ends too early")
        while True:
            try:
                obj, end = _decoder.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise ImportRefused(self.path, f"{what}: the JSON is nested too deeply.") from None
            except json.JSONDecodeError as exc:
                # An unfinished value fails at the end of the buffer (or, for a string,
                # where the string starts); anything else is a real error.
                unfinished = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - 8
                if not (unfinished and self._grow(what)):
                    raise ImportRefused(self.path, f"{what}: invalid JSON ({exc.msg}).") from None
                continue
            except ValueError as exc:
                raise ImportRefused(self.path, f"{what}: invalid JSON: {exc}.") from None
            if end == len(self.buf) and self._grow(what):
                continue  # a number may go on in the next chunk
            self.pos = end
            return obj

    def _grow(self, what: str) -> bool:
        pending = len(self.buf) - self.pos
        if pending > MAX_JSON_ENTRY_BYTES:
            raise ImportRefused(self.path, f"{what} is longer than {MAX_JSON_ENTRY_BYTES:,} characters, the limit "
                                           "on one entry; no entry of a listing is that long.")
        # Reading as much again as is pending keeps the re-parsing linear.
        return self._more(pending)


def _json_lines(path, f) -> Iterator[ImportedEntry]:
    ended = False
    expect_more = True
    for number, text in _text_lines(path, f, first=2):  # the header was line 1
        text = text.rstrip("\r\n")
        if ended:
            if text.strip():
                raise ImportRefused(path, "text after the end of the JSON document.", number)
            continue
        if text == "]}":
            ended = True
            continue
        if not expect_more:
            raise ImportRefused(path, "expected ']}' after the last entry (the previous line ends without a comma).",
                                number)
        expect_more = text.endswith(",")
        body = text[:-1] if expect_more else text
        yield _quick_entry(path, body, number)
    if not ended:
        raise ImportRefused(path, "the JSON document ends too early (no closing ']}'): the file is truncated.")


# -- CSV and TSV --------------------------------------------------------------------------------


def read_csv(path, f, delimiter: str, spreadsheet_safe: bool) -> Iterator[ImportedEntry]:
    """A Hashlens CSV/TSV export. In the spreadsheet-safe dialect every cell that starts
    with an apostrophe loses it (`cells.restore`), undoing the export exactly; a cell that
    starts with a formula trigger cannot come from that dialect and is refused."""
    record_size = 0

    def lines() -> Iterator[str]:
        # A quoted field runs on across lines; the whole record is capped as it is read.
        # One loop (not _numbered_text_lines): this runs once per line of the file.
        nonlocal record_size
        readline, limit = f.readline, MAX_LINE_BYTES + 1
        number = 0
        while True:
            raw = readline(limit)
            if not raw:
                return
            number += 1
            if len(raw) >= limit:
                raise ImportRefused(path, f"the line is longer than {MAX_LINE_BYTES:,} bytes (the limit on one line); "
                                          "no entry of a listing is that long.", number)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = _decode_line(path, raw, number)  # raises, naming the column
            if number == 1:
                text = text.removeprefix("\ufeff")
            record_size += len(text)
            if record_size > MAX_RECORD_BYTES:
                raise ImportRefused(path, f"a CSV record is longer than {MAX_RECORD_BYTES:,} characters, the limit on "
                                          "one entry (is a closing quote missing?).", number)
            yield text

    previous = csv.field_size_limit()
    csv.field_size_limit(MAX_CSV_FIELD)
    try:
        reader = csv.reader(lines(), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ImportRefused(path, f"malformed CSV header ({exc}).", reader.line_num or 1) from None
        if header is None:
            raise ImportRefused(path, "the file is empty; a CSV export starts with a header row.", 1)
        if spreadsheet_safe:
            header = [restore(c) for c in header]
        spec = _csv_columns(path, header)
        quick = _quick_cells(path, spec)
        width = len(header)
        while True:
            record_size = 0
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportRefused(path, f"malformed CSV ({exc}).", reader.line_num) from None
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != width:
                raise ImportRefused(
                    path, f"the row has {len(cells)} cells; the header has {len(header)}"
                          f"{' (is the delimiter right?)' if len(cells) == 1 else ''}.", line)
            if spreadsheet_safe and not ESCAPED_START.isdisjoint("".join(map(_first_char, cells))):
                # Most rows have no cell starting with an apostrophe or a trigger: their
                # first characters are gathered in C, and only the others are looked at.
                if not FORMULA_TRIGGERS.isdisjoint([c[:1] for c in cells]):
                    for i, cell in enumerate(cells):
                        if cell and cell[0] in FORMULA_TRIGGERS:
                            raise ImportRefused(
                                path, f"the cell in column {i + 1} ({header[i]}) starts with {cell[0]!r}, so this "
                                      "file was not written in the spreadsheet-safe dialect; import it as raw "
                                      "(--csv-dialect raw) if it is a raw export.", line, i + 1)
                cells = [c[1:] if c[:1] == "'" else c for c in cells]  # cells.restore, inline
            yield quick(line, cells)
    finally:
        csv.field_size_limit(previous)


def _numbered_text_lines(path, f) -> Iterator[tuple[int, str]]:
    for number, raw in _binary_lines(path, f):
        text = _decode_line(path, raw, number)
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield number, text


def _csv_columns(path, header: list[str]) -> list[tuple[str, str | None]]:
    known = set(formats.BASE_COLUMNS) | set(formats.IMAGE_COLUMNS) | {"metadata"}
    spec, seen = [], set()
    for i, name in enumerate(header, 1):
        if name in seen:
            raise ImportRefused(path, f"the column {name!r} appears twice in the header.", 1, i)
        seen.add(name)
        if name.startswith(formats.KEY_PREFIX) and len(name) > len(formats.KEY_PREFIX):
            spec.append(("key", name[len(formats.KEY_PREFIX):]))
        elif name in known:
            spec.append((name, None))
        else:
            raise ImportRefused(
                path, f"unknown column {name!r}; a Hashlens CSV has {', '.join(formats.BASE_COLUMNS)}, "
                      f"{', '.join(formats.IMAGE_COLUMNS)}, metadata or meta:KEY columns.", 1, i)
    if "identifier" not in seen:
        raise ImportRefused(path, "the header has no 'identifier' column.", 1)
    if "metadata" in seen and any(kind == "key" for kind, _ in spec):
        raise ImportRefused(path, "the header has both a 'metadata' column and meta:KEY columns.", 1)
    return spec


def _quick_cells(path, spec):
    """`_entry_from_cells` for one header, with the columns found once: each row's cells
    are read by position and converted without a test per column name. Any cell it doubts
    sends the row through `_entry_from_cells`, which refuses it in column order."""
    at = {name: i for i, (name, key) in enumerate(spec) if name != "key"}
    keyed = [(i, key) for i, (name, key) in enumerate(spec) if name == "key"]
    ident, label, phash, trained = (at.get(n) for n in ("identifier", "label", "phash", "trained_at"))
    flag, image_format, metadata = at.get("hasimagedata"), at.get("image_format"), at.get("metadata")
    numbers = [(n, at[n]) for n in ("position", "width", "height", "byte_size") if n in at]
    flags = {"true": True, "false": False, "": None}

    def read(line: int, cells: list[str]) -> ImportedEntry:
        try:
            entry = ImportedEntry(line, cells[ident])
            if label is not None:
                entry.label = cells[label]
            if phash is not None and cells[phash]:
                entry.phash = _phash(path, line, cells[phash])
            if trained is not None and cells[trained]:
                entry.trained_at = parse_time(cells[trained])
            if flag is not None:
                entry.has_image_data = flags[cells[flag]]
            for name, i in numbers:
                cell = cells[i]
                if cell:
                    # Plain ASCII digits of a 64-bit size are the rule; whole_number
                    # judges (and words) everything else.
                    if cell.isascii() and cell.isdigit() and len(cell) < 19:
                        value = int(cell)
                    else:
                        value = whole_number(name, cell, minimum=0)
                    if name != "position":
                        setattr(entry, name, value)
            if image_format is not None:
                entry.image_format = cells[image_format] or None
            if metadata is not None:
                cell = cells[metadata]
                entry.metadata = _quick_metadata(path, cell, line) if cell else ()
            if keyed:
                entry.metadata = tuple([(key, cells[i]) for i, key in keyed if cells[i]])
            return entry
        except (HashlensError, ValueError, KeyError, RecursionError):
            return _entry_from_cells(path, line, spec, cells)

    return read


def _entry_from_cells(path, line, spec, cells) -> ImportedEntry:
    entry = ImportedEntry(line, "")
    keyed = []
    has_keys = False
    for i, ((name, key), cell) in enumerate(zip(spec, cells), 1):
        if name == "identifier":
            entry.identifier = cell
        elif name == "label":
            entry.label = cell
        elif name == "phash":
            if cell:
                entry.phash = _phash(path, line, cell, i)
        elif name == "trained_at":
            if cell:
                entry.trained_at = _time(path, line, cell, i)
        elif name == "hasimagedata":
            if cell not in ("true", "false", ""):
                raise ImportRefused(path, f"'hasimagedata' must be true or false, not {cell!r}.", line, i)
            entry.has_image_data = None if not cell else cell == "true"
        elif name in ("position", "width", "height", "byte_size"):
            number = None
            if cell:
                try:
                    number = whole_number(name, cell, minimum=0)
                except HashlensError as exc:
                    raise ImportRefused(path, exc.description.removeprefix("Parameter "), line, i) from None
            if name != "position":
                setattr(entry, name, number)
        elif name == "image_format":
            entry.image_format = cell or None
        elif name == "metadata":
            entry.metadata = _metadata(path, line, _loads(path, cell, line)) if cell else ()
        else:  # one column per key: an empty cell means the entry lacks the key (ours)
            has_keys = True
            if cell:
                keyed.append((key, cell))
    if has_keys:
        entry.metadata = tuple(keyed)
    return entry


# -- XML ------------------------------------------------------------------------------------------


def read_xml(path, f) -> Iterator[ImportedEntry]:
    """A ListImageHashes response or Hashlens's XML export, through the one response
    reader under the import's strict rule (only the listing grammar, capped, defused)."""
    try:
        for entry in iter_response(f, what=f"'{path}'", strict=True, document="file"):
            if isinstance(entry, ListedEntry):
                yield ImportedEntry(entry.line, entry.identifier, label=entry.label,
                                    has_image_data=entry.has_image_data, metadata=entry.metadata)
    except ResponseUnreadable as exc:
        raise ImportRefused(path, exc.reason, exc.line, exc.column) from None
