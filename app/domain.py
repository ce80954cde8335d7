"""Values every layer shares: listing requests, rows, errors and the text rules."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple

# Media Server limits names and values to 254 bytes of UTF-8 (MS).
MAX_TEXT_BYTES = 254
# A listing's identifier filter is capped so one request cannot exhaust memory (ours).
MAX_IDENTIFIER_LIST = 100_000
PHASH_BITS = 64
PHASH_MASK = (1 << PHASH_BITS) - 1
# The largest whole number any parameter or stored count may hold: a signed 64-bit
# integer, what every backend's BIGINT stores (ours).
MAX_INT = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class Failure(enum.Enum):
    """Every error condition, with its stable number, ACI error code and short string.

    The numbers appear in `errorid` (HASHLENS<ACTION><number>) and must never be
    reused for another condition, so that scripts can rely on them (ours).
    """

    PARAM_MISSING = (1, "ERRORPARAMNOTSUPPLIED", "Missing parameter")
    PARAM_INVALID = (2, "ERRORPARAMINVALID", "Invalid parameter value")
    NO_SUCH_DATABASE = (3, "ERRORPARAMINVALID", "Database does not exist")
    NO_SUCH_IDENTIFIER = (4, "ERRORPARAMINVALID", "Image hash does not exist")
    DATABASE_EXISTS = (5, "ERRORPARAMINVALID", "Database already exists")
    IDENTIFIER_EXISTS = (6, "ERRORPARAMINVALID", "Image hash already exists")
    NO_SUCH_LABEL = (7, "ERRORPARAMINVALID", "Image label does not exist")
    NO_SUCH_KEY = (8, "ERRORPARAMINVALID", "Metadata key does not exist")
    KEY_EXISTS = (9, "ERRORPARAMINVALID", "Metadata key already exists")
    BAD_IMAGE = (10, "ERRORIMAGEINVALID", "Image could not be used")
    NOT_IMPLEMENTED = (11, "ERRORNOTIMPLEMENTED", "Action not implemented")
    STORE_BUSY = (12, "ERRORSTOREBUSY", "The store is busy")
    READ_ONLY = (13, "ERRORREADONLY", "The store is read-only")
    STORE_FAILED = (14, "ERRORSTORE", "The store failed")
    FILE_FAILED = (15, "ERRORFILE", "File operation failed")
    BAD_FILE = (16, "ERRORFILEINVALID", "File could not be read")
    CANCELLED = (17, "ERRORCANCELLED", "Operation cancelled")
    TIMEOUT = (18, "ERRORTIMEOUT", "Query took too long")
    STORE_UNAVAILABLE = (19, "ERRORSTOREUNAVAILABLE", "The store cannot be opened")
    BAD_RESPONSE = (20, "ERRORBADRESPONSE", "The response could not be read")
    SERVER_UNREACHABLE = (21, "ERRORSERVERUNREACHABLE", "Media Server could not be reached")
    SERVER_ERROR = (22, "ERRORSERVER", "Media Server answered with an error")
    WRITE_UNCERTAIN = (23, "ERRORWRITEUNCERTAIN", "A write may or may not have taken effect")
    SERVER_CHANGED = (24, "ERRORSERVERCHANGED", "Media Server kept changing during a pull")
    # 30 and up: refusals of `hashlens serve` (ours).
    NOT_AUTHORIZED = (30, "ERRORNOTAUTHORIZED", "Client not authorized")
    BAD_REQUEST = (31, "ERRORBADREQUEST", "Request not understood")

    @property
    def number(self) -> int:
        return self.value[0]

    @property
    def code(self) -> str:
        return self.value[1]

    @property
    def short(self) -> str:
        return self.value[2]


class HashlensError(Exception):
    """An error a person can act on: which thing, what rule, what to do next.

    `transient` is True for trouble that passes by itself (a lock held by another program,
    a lost connection): the store stays usable and reconnects; it is False for everything
    else, damage among it."""

    transient = False

    def __init__(self, failure: Failure, description: str, *, parameter: str | None = None):
        super().__init__(description)
        self.failure = failure
        self.description = description
        self.parameter = parameter

    def __str__(self) -> str:
        return self.description


def param_missing(name: str) -> HashlensError:
    return HashlensError(
        Failure.PARAM_MISSING, f"The required parameter '{name}' was not supplied.", parameter=name
    )


def param_invalid(name: str, why: str) -> HashlensError:
    return HashlensError(Failure.PARAM_INVALID, f"Parameter '{name}': {why}", parameter=name)


def no_such_database(name: str) -> HashlensError:
    # Media Server's own scripts look for exactly this wording (MS).
    return HashlensError(Failure.NO_SUCH_DATABASE, f"'database={name}' does not exist", parameter="database")


# -- text rules -------------------------------------------------------------------------

# Characters XML 1.0 cannot carry: controls other than TAB, LF and CR, surrogates and
# U+FFFE/U+FFFF; anything else would make a response that no parser accepts. Written as
# the few it refuses rather than the negation of those it allows: the negated class took
# 6.6 ms to compile at every start-up (the window's and each command's), this one 0.4 ms,
# and both search as fast (tests/app/test_xml_chars.py checks it on every code point).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def whole_number(name: str, text: str, *, minimum: int = 1, maximum: int = MAX_INT) -> int:
    """A whole number written in ASCII digits, from `minimum` to `maximum`.

    Only 0-9 are digits here: `str.isdigit` and `int` also accept '²' (then fail) or
    Arabic-Indic '٣' (read silently as 3), and `int` refuses over 4,300 digits with a
    ValueError. The length is checked before any conversion (ours, issue 10 item 4)."""
    stripped = text.strip() if isinstance(text, str) else ""
    if not _ASCII_DIGITS.fullmatch(stripped):
        raise param_invalid(name, f"{_shown(text)} is not a whole number (digits 0-9 only).")
    digits = stripped.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise param_invalid(name, f"{_shown(text)} is out of range; use a whole number from {minimum} to {maximum}.")
    if int(digits) < minimum:
        raise param_invalid(name, f"{_shown(text)} must be {minimum} or more.")
    return int(digits)


def _shown(value: object, limit: int = 40) -> str:
    """A value quoted for a message: cut short, and escaped when it holds characters
    that cannot be printed or encoded (a lone surrogate, a control), so the message is safe."""
    text = value if isinstance(value, str) else repr(value)
    short = text if len(text) <= limit else text[:limit] + "…"
    if first_bad_xml_char(short) is not None:
        short = short.encode("ascii", "backslashreplace").decode("ascii")
    return f"'{short}'"


def first_bad_xml_char(text: str) -> int | None:
    """Index of the first character XML 1.0 cannot carry, or None."""
    match = _NOT_XML_CHAR.search(text)
    return match.start() if match else None


def check_text(name: str, value: str, *, allow_empty: bool = False) -> str:
    """Refuse a name or value Media Server could not hold: empty, over 254 bytes, or
    containing a character XML 1.0 cannot carry. Spaces are data and kept as given."""
    if not isinstance(value, str):
        raise param_invalid(name, f"expected text, got {type(value).__name__}.")
    if not value and not allow_empty:
        raise param_invalid(name, "the value is empty.")
    if not allow_empty and not value.strip():
        raise param_invalid(name, "the value is only white space.")
    bad = first_bad_xml_char(value)
    if bad is not None:
        raise param_invalid(
            name,
            f"character U+{ord(value[bad]):04X} at position {bad + 1} is not allowed "
            "(control characters, NUL and non-characters cannot be stored).",
        )
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise param_invalid(name, f"the value is {size} bytes of UTF-8; the limit is {MAX_TEXT_BYTES}.")
    return value


def all_storable(texts, values=()) -> bool:
    """Whether `check_text` passes every one of `texts` and, with `allow_empty`, every one of
    `values`: one pattern search over all of them, for paths that check thousands of
    entries (imports). On False, `check_text` on each says which and why."""
    every = (*texts, *values)
    try:
        joined = "\t".join(every)  # and a TypeError for anything that is not text
    except TypeError:
        return False
    # Loops in C, not in Python: an import checks about six texts an entry.
    if not all(map(str.strip, texts)) or _NOT_XML_CHAR.search(joined) is not None:
        return False
    # A character is at most 4 bytes of UTF-8: only longer texts need encoding.
    if not every or max(map(len, every)) * 4 <= MAX_TEXT_BYTES:
        return True
    return all(len(t.encode("utf-8", "surrogatepass")) <= MAX_TEXT_BYTES for t in every)


#: How a pHash Hashlens does not know is shown to people (ours): entries listed by a Media
#: Server, or imported from its responses, come without one, and the store holds NULL.
PHASH_NOT_KNOWN = "not known"


def phash_to_hex(value: int | None) -> str:
    """16 hex digits, or "" for a pHash that is not known (NULL in the store)."""
    return "" if value is None else f"{value & PHASH_MASK:016x}"


def phash_words(value: int | None) -> str:
    """A pHash as people read it: 16 hex digits, or "not known"."""
    return PHASH_NOT_KNOWN if value is None else f"{value & PHASH_MASK:016x}"


def parse_phash(text: str) -> int:
    """A 64-bit pHash written as 16 hex digits (an optional 0x prefix is allowed)."""
    cleaned = text.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,16}", cleaned):
        raise param_invalid("phash", f"'{text}' is not a 64-bit hash in hex (16 hex digits).")
    return int(cleaned, 16)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 note', '2 notes', '1,000 image hashes': a count with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & PHASH_MASK).bit_count()


# -- listing requests ---------------------------------------------------------------------


class FilterOp(str, enum.Enum):
    """The filter operations a listing can combine (AND). The store compiles each to SQL."""

    LABEL_CONTAINS = "label_contains"
    LABEL_EQUALS = "label_equals"
    HAS_IMAGE_DATA = "has_image_data"
    META_PRESENT = "meta_present"
    META_ABSENT = "meta_absent"
    META_EQUALS = "meta_equals"
    PHASH_WITHIN = "phash_within"


@dataclass(frozen=True)
class Filter:
    """One condition on entries: `key` is a metadata key where the operation needs one;
    `value` is text, a bool (has_image_data) or a pHash int (phash_within, with `distance`)."""

    op: FilterOp
    value: object = None
    key: str | None = None
    distance: int | None = None

    def describe(self) -> str:
        """The condition in words, as shown above the table and in export manifests."""
        op, v = self.op, self.value
        if op is FilterOp.LABEL_CONTAINS:
            return f"label contains {v!r}"
        if op is FilterOp.LABEL_EQUALS:
            return f"label is {v!r}"
        if op is FilterOp.HAS_IMAGE_DATA:
            return "has image data" if v else "image data removed"
        if op is FilterOp.META_PRESENT:
            return f"has metadata {self.key!r}"
        if op is FilterOp.META_ABSENT:
            return f"lacks metadata {self.key!r}"
        if op is FilterOp.META_EQUALS:
            return f"metadata {self.key!r} = {v!r}"
        if op is FilterOp.PHASH_WITHIN:
            return f"pHash within {self.distance} bits of {phash_to_hex(v)}"
        raise AssertionError(op)

    def validated(self) -> "Filter":
        op = self.op
        if op in (FilterOp.LABEL_CONTAINS, FilterOp.LABEL_EQUALS):
            check_text("label", self.value)
        elif op is FilterOp.HAS_IMAGE_DATA:
            if not isinstance(self.value, bool):
                raise param_invalid("hasimagedata", "expected true or false.")
        elif op in (FilterOp.META_PRESENT, FilterOp.META_ABSENT, FilterOp.META_EQUALS):
            check_text("key", self.key)
            if op is FilterOp.META_EQUALS:
                check_text("value", self.value, allow_empty=True)
        elif op is FilterOp.PHASH_WITHIN:
            if not isinstance(self.value, int) or not 0 <= self.value <= PHASH_MASK:
                raise param_invalid("phash", "expected a 64-bit hash.")
            if not isinstance(self.distance, int) or not 0 <= self.distance <= PHASH_BITS:
                raise param_invalid("distance", f"expected a whole number from 0 to {PHASH_BITS}.")
        return self


class SortKey(str, enum.Enum):
    """Orders the store can serve; POSITION is Media Server's database (training) order."""

    POSITION = "position"
    IDENTIFIER = "identifier"
    LABEL = "label"
    HAS_IMAGE_DATA = "has_image_data"
    META_COUNT = "meta_count"
    PHASH = "phash"
    WIDTH = "width"
    TRAINED_AT = "trained_at"
    # Bits that differ from the near-pHash filter's hash (needs that filter; ours).
    DISTANCE = "distance"

    @property
    def words(self) -> str:
        """The order as a person reads it ('number of metadata items', not 'meta_count')."""
        return SORT_WORDS[self]


SORT_WORDS = {
    SortKey.POSITION: "training order",
    SortKey.IDENTIFIER: "identifier",
    SortKey.LABEL: "label",
    SortKey.HAS_IMAGE_DATA: "image data",
    SortKey.META_COUNT: "number of metadata items",
    SortKey.PHASH: "pHash",
    SortKey.WIDTH: "image size",
    SortKey.TRAINED_AT: "training time",
    SortKey.DISTANCE: "distance from the near pHash",
}


@dataclass(frozen=True)
class ListingQuery:
    """One listing request. The filter panel, the command line, exports, audits and the
    ListImageHashes action all build this one value; the store answers it.

    `identifiers` keeps ListImageHashes semantics: unknown ones are left out silently,
    repeats count once, and the result keeps database order before `start`/`maxresults`
    window it (ours, after MS)."""

    database: str
    identifiers: tuple[str, ...] | None = None
    filters: tuple[Filter, ...] = ()
    sort: SortKey = SortKey.POSITION
    descending: bool = False
    start: int = 1
    maxresults: int | None = None
    imagestatus: bool = False
    metadata: bool = False

    def __post_init__(self):
        if isinstance(self.identifiers, list):
            object.__setattr__(self, "identifiers", tuple(self.identifiers))
        if isinstance(self.filters, list):
            object.__setattr__(self, "filters", tuple(self.filters))

    def validated(self) -> "ListingQuery":
        check_text("database", self.database)
        if isinstance(self.start, bool) or not isinstance(self.start, int) or self.start < 1:
            raise param_invalid("start", f"'{self.start}' is not a whole number of 1 or more.")
        if self.maxresults is not None and (
            isinstance(self.maxresults, bool) or not isinstance(self.maxresults, int) or self.maxresults < 1
        ):
            raise param_invalid("maxresults", f"'{self.maxresults}' is not a whole number of 1 or more.")
        if self.identifiers is not None:
            if len(self.identifiers) > MAX_IDENTIFIER_LIST:
                raise param_invalid(
                    "identifier",
                    f"{len(self.identifiers):,} identifiers were given; the limit is {MAX_IDENTIFIER_LIST:,}.",
                )
            for ident in self.identifiers:
                check_text("identifier", ident)
        for f in self.filters:
            f.validated()
        if self.sort is SortKey.DISTANCE and self.reference is None:
            raise param_invalid("sort", "sorting by distance needs a near-pHash filter (the hash to measure from).")
        return self

    @property
    def reference(self) -> int | None:
        """The near-pHash filter's hash, which distances are measured from, if any."""
        return next((f.value for f in self.filters if f.op is FilterOp.PHASH_WITHIN), None)

    @property
    def is_filtered(self) -> bool:
        return self.identifiers is not None or bool(self.filters)

    def window(self, start: int, maxresults: int | None) -> "ListingQuery":
        return replace(self, start=start, maxresults=maxresults)

    def unwindowed(self) -> "ListingQuery":
        return replace(self, start=1, maxresults=None)

    def describe(self) -> str:
        """The filter in words: 'all entries', or each condition joined with 'and'."""
        parts = []
        if self.identifiers is not None:
            shown = ", ".join(repr(i) for i in self.identifiers[:5])
            more = f" and {len(self.identifiers) - 5:,} more" if len(self.identifiers) > 5 else ""
            parts.append(f"identifier in ({shown}{more})")
        parts.extend(f.describe() for f in self.filters)
        text = " and ".join(parts) if parts else "all entries"
        if self.sort is not SortKey.POSITION or self.descending:
            text += f", sorted by {self.sort.words}{' descending' if self.descending else ''}"
        return text


class EntryRow(NamedTuple):
    """One listed image hash, as plain values. `position` is the 1-based index that
    `start` would use for this listing; `key` is the store's internal row key."""

    position: int
    key: int
    identifier: str
    label: str
    has_image_data: bool  # Hashlens holds the image bytes
    phash: int | None  # None: not known (a Media Server never lists one)
    image_format: str | None
    width: int | None
    height: int | None
    byte_size: int | None
    meta_count: int
    trained_at: int  # milliseconds since the Unix epoch, UTC
    metadata: tuple[tuple[str, str], ...] | None = None
    # The `hasimagedata` a Media Server declared for the entry (its server holds the
    # image), kept apart from whether Hashlens holds the bytes; None when none declared.
    declared_image_data: bool | None = None

    @property
    def phash_hex(self) -> str:
        """16 hex digits, or "" when the pHash is not known."""
        return phash_to_hex(self.phash)

    @property
    def phash_text(self) -> str:
        """16 hex digits, or "not known"."""
        return phash_words(self.phash)

    @property
    def listed_image_data(self) -> bool:
        """`hasimagedata` as a listing says it: Hashlens holds the image, or the Media
        Server the entry came from declared that it does (so export, import, export
        gives the same document)."""
        return self.has_image_data or bool(self.declared_image_data)


@dataclass(frozen=True)
class ListingPage:
    """A window of a listing. `total` is the size of the whole (unwindowed) listing when
    it was cheap to know exactly, else None."""

    query: ListingQuery
    rows: list[EntryRow]
    total: int | None = None


@dataclass(frozen=True)
class Count:
    """A count that may be a lower bound: `exact` False means 'at least value'."""

    value: int
    exact: bool

    def __str__(self) -> str:
        return f"{self.value:,}" if self.exact else f"{self.value:,}+"


@dataclass(frozen=True)
class DatabaseInfo:
    """A database by name with its entry count; for a mirror of a Media Server database,
    `mirror` is its latest snapshot (where from, which number, as of when)."""

    name: str
    entry_count: int
    mirror: SnapshotInfo | None = None


@dataclass(frozen=True)
class NewEntry:
    """Everything training stores for one hash, already validated and hashed."""

    identifier: str
    label: str
    phash: int | None  # None: not known (stored as NULL, never a placeholder)
    image_data: bytes | None
    image_format: str | None
    width: int | None
    height: int | None
    sha256: str | None
    metadata: tuple[tuple[str, str], ...] = ()
    trained_at: int | None = None
    # A Media Server's own `hasimagedata` for the entry, when a file from one declared it.
    declared_image_data: bool | None = None


@dataclass(frozen=True)
class ImageInfo:
    """The stored training image of one entry, for the detail pane and exports."""

    identifier: str
    label: str
    image_format: str | None
    width: int | None
    height: int | None
    data: bytes | None


@dataclass(frozen=True)
class JournalEntry:
    at: int  # ms since epoch, UTC
    user: str
    action: str
    database: str | None
    identifier: str | None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MirrorSource:
    """Where a mirror's entries come from: a Media Server's address and its database."""

    url: str
    database: str

    def describe(self) -> str:
        return f"{self.url} database '{self.database}'"


@dataclass(frozen=True)
class SnapshotInfo:
    """One complete pull of a mirror: its number (1, 2, … per mirror), when it finished
    (milliseconds since the Unix epoch, UTC), where from, and how many entries it holds."""

    number: int
    taken_at: int
    source: MirrorSource
    entry_count: int
