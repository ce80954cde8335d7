"""Readers of import files: Hashlens's XML, JSON, NDJSON, CSV and TSV exports and
ListImageHashes responses saved from a Media Server. Every file is untrusted.

Each reader streams the file and yields `ImportedEntry` values, or raises `ImportRefused`
naming the line (and column where the parser knows it) and the rule that was broken.
XML goes through defusedxml with DTDs forbidden, fed incrementally, with caps on depth
and text length; JSON rejects NaN/Infinity, duplicate keys and runaway nesting; CSV has
a field size cap and a fixed header; all text must be strict UTF-8 (reliability X1-X9)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.domain import MAX_INT, PHASH_MASK, Failure, HashlensError, parse_phash, whole_number
from app.exports import formats
from app.exports.cells import FORMULA_TRIGGERS, parse_time, restore

# Default cap on an import file (reliability X3: configurable, 2 GB).
MAX_IMPORT_BYTES = 2 * 1024**3
# A JSON document not in Hashlens's one-entry-per-line layout is parsed whole, so it is
# capped much lower than a streamed file.
MAX_JSON_DOCUMENT_BYTES = 256 * 1024**2
# One CSV field: the metadata JSON column of an entry with many items is the largest.
MAX_CSV_FIELD = 16 * 1024**2
# One XML text node; every real value is at most 254 bytes.
MAX_XML_TEXT = 4096
MAX_XML_DEPTH = 8
# One line of NDJSON or of a JSON listing; database files carry images, so more.
MAX_LINE_BYTES = 512 * 1024**2
_READ_CHUNK = 1 << 16

LISTING_KEYS = {"position", "identifier", "phash", "trained_at", "label", "hasimagedata", "image_format",
                "width", "height", "byte_size", "metadata"}
DATABASE_KEYS = LISTING_KEYS | {"image", "sha256"}


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
    """Which reader a file needs, from its first bytes (and suffix for CSV/TSV)."""
    if head.startswith(_UTF16_32_BOMS):
        raise ImportRefused(path, "the file is UTF-16 or UTF-32; only UTF-8 is accepted.", 1)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        if path.suffix.lower() in (".ndjson", ".jsonl"):
            return "ndjson"  # an NDJSON export of an empty listing is an empty file
        raise ImportRefused(path, "the file is empty.")
    if text.startswith(b"<"):
        return "xml"
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0].strip()
        if first.startswith(b'{"format":"hashlens-database"'):
            return "database"
        if first.startswith(b'{"format":"' + formats.JSON_FORMAT_NAME.encode()):
            return "json"
        with contextlib.suppress(ValueError, RecursionError):
            obj = json.loads(first)
            # A one-line document with an 'entries' list is JSON; an entry per line is NDJSON.
            if isinstance(obj, dict) and "entries" not in obj and "format" not in obj:
                return "ndjson"
        return "json"
    if path.suffix.lower() in (".tsv", ".tab"):
        return "tsv"
    first = text.split(b"\n", 1)[0]
    if b"\t" in first and b"," not in first:
        return "tsv"
    return "csv"


# -- shared helpers -------------------------------------------------------------------------


def _decode_line(path, raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        raise ImportRefused(path, f"the bytes are not valid UTF-8 ({exc.reason}).", number, column) from None


def _binary_lines(path, f, max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    number = 0
    while True:
        raw = f.readline(max_line + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line:
            raise ImportRefused(path, f"the line is longer than {max_line:,} bytes.", number)
        yield number, raw


def _reject_duplicate_keys(pairs):
    found = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key!r} appears twice in one object")
        found[key] = value
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
    """One entry of a JSON, NDJSON or database file, every field type-checked."""
    if not isinstance(obj, dict):
        raise ImportRefused(path, f"an entry must be a JSON object, not {_json_type(obj)}.", line)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise ImportRefused(path, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))}).", line)
    if "identifier" not in obj:
        raise ImportRefused(path, "the entry has no 'identifier'.", line)
    entry = ImportedEntry(line, _text_field(path, line, "identifier", obj["identifier"], optional=False))
    entry.label = _text_field(path, line, "label", obj.get("label"))
    phash = _text_field(path, line, "phash", obj.get("phash"))
    if phash is not None:
        entry.phash = _phash(path, line, phash)
    trained = _text_field(path, line, "trained_at", obj.get("trained_at"))
    if trained is not None:
        entry.trained_at = _time(path, line, trained)
    if "hasimagedata" in obj and obj["hasimagedata"] is not None:
        if not isinstance(obj["hasimagedata"], bool):
            raise ImportRefused(path, f"'hasimagedata' must be true or false, not {obj['hasimagedata']!r}.", line)
        entry.has_image_data = obj["hasimagedata"]
    entry.image_format = _text_field(path, line, "image_format", obj.get("image_format"))
    entry.width = _int_field(path, line, "width", obj.get("width"))
    entry.height = _int_field(path, line, "height", obj.get("height"))
    entry.byte_size = _int_field(path, line, "byte_size", obj.get("byte_size"))
    _int_field(path, line, "position", obj.get("position"))
    if "metadata" in obj and obj["metadata"] is not None:
        entry.metadata = _metadata(path, line, obj["metadata"])
    if "image" in obj and obj["image"] is not None:
        image = _text_field(path, line, "image", obj["image"])
        try:
            entry.image = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            raise ImportRefused(path, "'image' is not valid base64.", line) from None
    entry.sha256 = _text_field(path, line, "sha256", obj.get("sha256"))
    return entry


def _metadata(path, line, value) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ImportRefused(path, f"'metadata' must be an object of key: value texts, not {_json_type(value)}.", line)
    for k, v in value.items():
        if not isinstance(v, str):
            raise ImportRefused(path, f"metadata {k!r} must have a text value, not {_json_type(v)}.", line)
    return tuple(value.items())


def _phash(path, line, text: str, column: int | None = None) -> int:
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
    for number, raw in _binary_lines(path, f):
        text = _decode_line(path, raw, number)
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        yield entry_from_object(path, _loads(path, text, number), number)


_JSON_HEAD_END = ',"entries":['


def read_json(path, f, size: int) -> Iterator[ImportedEntry]:
    """A JSON document. Hashlens writes one entry per line inside the array, which is read
    line by line; any other layout is parsed whole, under a lower size cap."""
    first = f.readline(1 << 16)
    head = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    if head.startswith(b'{"format":"' + formats.JSON_FORMAT_NAME.encode()) and head.endswith(_JSON_HEAD_END.encode()):
        header = _loads(path, _decode_line(path, head, 1)[: -len(_JSON_HEAD_END)] + "}", 1)
        if header.get("version") != formats.JSON_VERSION:
            raise ImportRefused(path, f"this is version {header.get('version')!r} of the listing format; "
                                      f"this Hashlens reads version {formats.JSON_VERSION}.", 1)
        yield from _json_lines(path, f)
        return
    if size > MAX_JSON_DOCUMENT_BYTES:
        raise ImportRefused(
            path, f"a JSON document in this layout is read whole, and this one is {size:,} bytes "
                  f"(the limit is {MAX_JSON_DOCUMENT_BYTES:,}); export it as NDJSON instead.")
    data = first + f.read()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportRefused(path, f"the bytes are not valid UTF-8 ({exc.reason}).", line) from None
    doc = _loads(path, text, None)
    if isinstance(doc, dict):
        if "entries" not in doc:
            raise ImportRefused(path, "the JSON object has no 'entries' list.")
        fmt = doc.get("format")
        if fmt is not None and fmt != formats.JSON_FORMAT_NAME:
            raise ImportRefused(path, f"the JSON is a {fmt!r} file, not a Hashlens listing.")
        doc = doc["entries"]
    if not isinstance(doc, list):
        raise ImportRefused(path, "the JSON must be a list of entries or an object with an 'entries' list.")
    for i, obj in enumerate(doc, 1):
        # A document parsed whole has no line per entry; the entry's ordinal stands in.
        try:
            yield entry_from_object(path, obj, i)
        except ImportRefused as exc:
            raise ImportRefused(path, f"entry {i}: {exc.reason}") from None


def _json_lines(path, f) -> Iterator[ImportedEntry]:
    ended = False
    expect_more = True
    for number, raw in _binary_lines(path, f):
        number += 1  # the header was line 1
        text = _decode_line(path, raw, number).rstrip("\r\n")
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
        yield entry_from_object(path, _loads(path, body, number), number)
    if not ended:
        raise ImportRefused(path, "the JSON document ends too early (no closing ']}'): the file is truncated.")


# -- CSV and TSV --------------------------------------------------------------------------------


def read_csv(path, f, delimiter: str, spreadsheet_safe: bool) -> Iterator[ImportedEntry]:
    """A Hashlens CSV/TSV export. In the spreadsheet-safe dialect every cell that starts
    with an apostrophe loses it (`cells.restore`), undoing the export exactly; a cell that
    starts with a formula trigger cannot come from that dialect and is refused."""
    lines = _text_lines(path, f)
    previous = csv.field_size_limit()
    csv.field_size_limit(MAX_CSV_FIELD)
    try:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ImportRefused(path, f"malformed CSV header ({exc}).", reader.line_num or 1) from None
        if header is None:
            raise ImportRefused(path, "the file is empty; a CSV export starts with a header row.", 1)
        if spreadsheet_safe:
            header = [restore(c) for c in header]
        spec = _csv_columns(path, header)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportRefused(path, f"malformed CSV ({exc}).", reader.line_num) from None
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != len(header):
                raise ImportRefused(
                    path, f"the row has {len(cells)} cells; the header has {len(header)}"
                          f"{' (is the delimiter right?)' if len(cells) == 1 else ''}.", line)
            if spreadsheet_safe:
                for i, cell in enumerate(cells):
                    if cell and cell[0] in FORMULA_TRIGGERS:
                        raise ImportRefused(
                            path, f"the cell in column {i + 1} ({header[i]}) starts with {cell[0]!r}, so this file "
                                  "was not written in the spreadsheet-safe dialect; import it as raw "
                                  "(--csv-dialect raw) if it is a raw export.", line, i + 1)
                cells = [restore(c) for c in cells]
            yield _entry_from_cells(path, line, spec, cells)
    finally:
        csv.field_size_limit(previous)


def _text_lines(path, f) -> Iterator[str]:
    for number, raw in _binary_lines(path, f):
        text = _decode_line(path, raw, number)
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


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

_XML_DECL = re.compile(rb"^\s*<\?xml\s+([^>]*)\?>")
_DECL_ATTR = re.compile(rb"""(version|encoding|standalone)\s*=\s*["']([^"']*)["']""")

# Which element may hold which, after the ListImageHashes response (MS); anything else
# is refused with its path (reliability X6).
_CHILDREN = {
    "": {"autnresponse"},
    "autnresponse": {"action", "response", "responsedata"},
    "autnresponse/responsedata": {"entry"},
    "autnresponse/responsedata/entry": {"identifier", "numimages", "numtrained", "numfailed", "numuntrained",
                                        "images", "metadata"},
    "autnresponse/responsedata/entry/images": {"image"},
    "autnresponse/responsedata/entry/images/image": {"label", "status", "hasimagedata"},
    "autnresponse/responsedata/entry/metadata": {"item"},
    "autnresponse/responsedata/entry/metadata/item": {"key", "value"},
}
_COUNTERS = {"numimages": 1, "numtrained": 1, "numfailed": 0, "numuntrained": 0}  # always so (MS)


class _ListingTarget:
    """An ElementTree parser target that builds entries as the parser streams, with the
    line of each element, without keeping a tree."""

    def __init__(self, path):
        self.path = path
        self.parser = None  # set after the parser exists, for line numbers
        self.stack: list[str] = []
        self.text: list[str] = []
        self.text_len = 0
        self.entries: list[ImportedEntry] = []
        self.seen_action = self.seen_response = self.seen_data = False
        self._entry = None
        self._fields: set[str] = set()
        self._image: dict | None = None
        self._item: dict | None = None

    def where(self) -> tuple[int, int]:
        p = self.parser.parser
        return p.CurrentLineNumber, p.CurrentColumnNumber + 1

    def fail(self, reason: str):
        line, column = self.where()
        raise ImportRefused(self.path, reason, line, column)

    def start(self, tag, attrib):
        parent = "/".join(self.stack)
        allowed = _CHILDREN.get(parent)
        if allowed is None:
            self.fail(f"<{parent.rsplit('/', 1)[-1]}> holds text only, but an element <{_plain(tag)}> is inside it.")
        if tag not in allowed:
            if not self.stack:
                self.fail(f"the root element is <{_plain(tag)}>; a ListImageHashes response starts with <autnresponse>.")
            self.fail(f"unexpected element <{_plain(tag)}> inside /{parent}.")
        if len(self.stack) >= MAX_XML_DEPTH:
            self.fail("the elements are nested too deeply.")
        self.stack.append(tag)
        self.text, self.text_len = [], 0
        path = "/".join(self.stack)
        if path == "autnresponse/responsedata/entry":
            self._entry = ImportedEntry(self.where()[0], "")
            self._fields = set()
        elif tag == "images":
            self._once("images")
        elif path.endswith("images/image"):
            self._once("image")
            self._image = {}
        elif path == "autnresponse/responsedata/entry/metadata":
            self._once("metadata")
            self._entry.metadata = ()
        elif tag == "item":
            self._item = {}
        elif path == "autnresponse/responsedata":
            self.seen_data = True
            if not self.seen_response:
                self.fail("<responsedata> comes before <response>.")

    def _once(self, name):
        if name in self._fields:
            self.fail(f"the entry has more than one <{name}>.")
        self._fields.add(name)

    def data(self, text):
        self.text_len += len(text)
        if self.text_len > MAX_XML_TEXT:
            self.fail(f"a text is longer than {MAX_XML_TEXT:,} characters; no value may be over 254 bytes.")
        self.text.append(text)

    def end(self, tag):
        path = "/".join(self.stack)
        text = "".join(self.text)
        leaf = path not in _CHILDREN
        if not leaf and text.strip():
            self.fail(f"unexpected text {text.strip()[:40]!r} in <{tag}>.")
        self.stack.pop()
        self.text, self.text_len = [], 0
        if tag == "action" and len(self.stack) == 1:
            self.seen_action = True
            if text.strip().upper() != "LISTIMAGEHASHES":
                self.fail(f"this is a response to {text.strip()!r}, not to ListImageHashes.")
        elif tag == "response" and len(self.stack) == 1:
            self.seen_response = True
            status = text.strip().upper()
            if status == "ERROR":
                self.fail("this file is an error response, not a listing.")
            if status != "SUCCESS":
                self.fail(f"the response is {text.strip()!r}, not SUCCESS.")
        elif path == "autnresponse/responsedata/entry":
            entry = self._entry
            if "identifier" not in self._fields:
                self.fail("the <entry> has no <identifier>.")
            self.entries.append(entry)
            self._entry = None
        elif path.startswith("autnresponse/responsedata/entry/"):
            self._entry_part(tag, text)

    def _entry_part(self, tag, text):
        entry = self._entry
        if tag == "identifier":
            self._once("identifier")
            entry.identifier = text
        elif tag in _COUNTERS:
            self._once(tag)
            if text.strip() != str(_COUNTERS[tag]):
                self.fail(f"<{tag}> is {text.strip()!r}; a ListImageHashes entry always has {_COUNTERS[tag]}.")
        elif tag == "label":
            self._image_field("label", text)
        elif tag == "status":
            self._image_field("status", text)
            if text.strip() != "trained":
                self.fail(f"<status> is {text.strip()!r}; a trained image hash has 'trained'.")
        elif tag == "hasimagedata":
            value = text.strip().lower()
            if value not in ("true", "false"):
                self.fail(f"<hasimagedata> is {text.strip()!r}, not true or false.")
            self._image_field("hasimagedata", value == "true")
        elif tag == "image":
            if "label" not in self._image:
                self.fail("the <image> has no <label>.")
            entry.label = self._image["label"]
            entry.has_image_data = self._image.get("hasimagedata")
        elif tag in ("key", "value"):
            if tag in self._item:
                self.fail(f"the <item> has more than one <{tag}>.")
            self._item[tag] = text
        elif tag == "item":
            if "key" not in self._item or "value" not in self._item:
                self.fail("a metadata <item> needs a <key> and a <value>.")
            entry.metadata = entry.metadata + ((self._item["key"], self._item["value"]),)
        elif tag == "images" and "image" not in self._fields:
            self.fail("<images> holds no <image>.")

    def _image_field(self, name, value):
        if name in self._image:
            self.fail(f"the <image> has more than one <{name}>.")
        self._image[name] = value

    def close(self):
        return None


def _plain(tag: str) -> str:
    # ElementTree writes a namespaced tag as {uri}local.
    return tag if not tag.startswith("{") else tag.split("}", 1)[1] + f" (namespace {tag[1:].split('}')[0]})"


def _check_declaration(path, head: bytes) -> None:
    match = _XML_DECL.match(head.removeprefix(b"\xef\xbb\xbf"))
    if not match:
        return
    attrs = {k.decode(): v.decode("ascii", "replace") for k, v in _DECL_ATTR.findall(match.group(1))}
    if attrs.get("version", "1.0") != "1.0":
        raise ImportRefused(path, f"the file is XML {attrs['version']}; only XML 1.0 is accepted.", 1)
    encoding = attrs.get("encoding")
    if encoding is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ImportRefused(path, f"the file declares the encoding {encoding!r}; only UTF-8 is accepted.", 1)


def read_xml(path, f) -> Iterator[ImportedEntry]:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from defusedxml.ElementTree import DefusedXMLParser

    target = _ListingTarget(path)
    # No DTD at all (so no entity declarations, no entity bombs, no external subsets),
    # and no external entity references either (reliability X1, X2).
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    target.parser = parser
    first = True
    closing = False
    try:
        while True:
            chunk = f.read(_READ_CHUNK)
            if first:
                _check_declaration(path, chunk)
                first = False
            if not chunk:
                break
            parser.feed(chunk)
            if target.entries:
                yield from target.entries
                target.entries = []
        closing = True
        parser.close()
        yield from target.entries
    except ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        reason = str(exc).split(":")[0]
        if closing:
            reason += "; the file ends too early: is it truncated?"
        raise ImportRefused(path, f"the XML is not well-formed ({reason}).", line, None if column is None else column + 1) from None
    except DTDForbidden:
        raise ImportRefused(path, "document type declarations (DTDs) are not allowed, so no entity can be "
                                  "declared or expanded.", *target.where()) from None
    except (EntitiesForbidden, ExternalReferenceForbidden):
        raise ImportRefused(path, "entity declarations and external references are not allowed.",
                            *target.where()) from None
    if not target.seen_response or not target.seen_data:
        raise ImportRefused(path, "the response has no <response> or no <responsedata>; it is not a listing.")
