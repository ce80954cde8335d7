"""Cell and field codecs shared by the exporters and importers: the spreadsheet-safe
dialect, training times as text, and the metadata JSON column."""

from __future__ import annotations

import calendar
import datetime
import json
import re

# OWASP's CSV-injection advice: a cell that starts with one of these is read as a
# formula by spreadsheets. The full-width forms are folded to ASCII by some of them.
FORMULA_TRIGGERS = frozenset("=+-@\t\r＝＋－＠")
# The apostrophe is OWASP's neutraliser. A cell that already starts with one is
# escaped as well (ours), so that `restore(neutralise(v)) == v` for every string.
ESCAPED_START = FORMULA_TRIGGERS | {"'"}


def neutralise(text: str) -> str:
    """The spreadsheet-safe form of a cell: a leading `'` before any trigger (ours,
    after OWASP) and before a leading `'`, so the import can undo it exactly."""
    if text and text[0] in ESCAPED_START:
        return "'" + text
    return text


def restore(text: str) -> str:
    """Undo `neutralise`: drop one leading apostrophe."""
    return text[1:] if text[:1] == "'" else text


def is_neutral(text: str) -> bool:
    """True when a cell of a spreadsheet-safe file could have been written by it."""
    return not text or text[0] not in FORMULA_TRIGGERS


# -- training time ----------------------------------------------------------------------

# ASCII digits only: Unicode digits would be read silently as numbers.
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z", re.ASCII)


_EPOCH = datetime.datetime(1970, 1, 1)
_MS = datetime.timedelta(milliseconds=1)
_from_iso = datetime.datetime.fromisoformat


def format_time(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds: exact both ways.
    Integer arithmetic on datetime (C code), never a float, so no millisecond is lost."""
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> int:
    """The inverse of `format_time`; ValueError names the expected form."""
    match = _ISO.fullmatch(text)
    if not match:
        raise ValueError(f"'{text}' is not a UTC time like 2024-05-01T12:30:00.000Z")
    try:
        # C code for the common case (a third of the time of the arithmetic below, which
        # imports spend per entry); anything it refuses takes the general path.
        return (_from_iso(text[:-1]) - _EPOCH) // _MS
    except ValueError:
        pass
    y, mo, d, h, mi, s, ms = (int(g) for g in match.groups())
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        raise ValueError(f"'{text}' is not a valid time")
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + ms


# -- metadata as one JSON value -----------------------------------------------------------


_quote = json.encoder.encode_basestring  # the C function when available


def metadata_json(items) -> str:
    """Metadata as a JSON object in the order the items were added; keys are unique per
    hash, so an object loses nothing. Written directly: every key and value is text."""
    if not items:
        return "{}"
    return "{" + ",".join([_quote(k) + ":" + _quote(v) for k, v in items]) + "}"
