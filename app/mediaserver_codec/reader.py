"""The one reader of <autnresponse> documents: streamed, defused, every fault a typed error.

A Media Server answer, a saved ListImageHashes response and Hashlens's own XML export are
all read here. Two parsers, one set of rules. A Media Server answer (the pull's hot path) goes through
the C parser and TreeBuilder of `xml.etree.ElementTree`, each finished <entry> read
and then dropped, about four times faster than a Python parser target; the
prolog is scanned before the parser sees it, so a DTD never reaches expat. The import's
strict reading (`_iter_strict`) reads entries in Media Server's own shape straight from the
bytes, with their lines, after expat has checked every byte; anything else goes to
defusedxml's parser and a strict Python target, which words the refusal with its line (the
reference both fast paths are property-tested against). Either way a page of 50 MB costs
one entry's memory; a DTD, an entity declaration
or an external reference is refused outright (reliability X1, X2), and so is a document
that is not well-formed, ends early or is not an <autnresponse>. Elements in the ACI namespace read as plain ones, and
the counters are read in both spellings (`numtrained` and `numtrainedimages`, MS).

`strict=True` is the import's rule: only the ListImageHashes listing grammar, counters as
the seed states them, text and depth capped; anything else is refused with its line."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser
from xml.parsers.expat import ExpatError, ParserCreate
from xml.parsers.expat import errors as expat_errors

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from app.domain import Failure, HashlensError
from app.mediaserver_codec.names import LIST_IMAGE_HASHES, response_action
from app.mediaserver_codec.writer import XMLNS

_READ_CHUNK = 1 << 16
_NS_PREFIX = "{" + XMLNS + "}"
# Media Server's ListImageHashes names the counters numtrained, numfailed, numuntrained;
# the face and object families wrote numtrainedimages and so on (MS). Both read alike.
_COUNTERS = {
    "numimages": "numimages",
    "numtrained": "numtrained", "numtrainedimages": "numtrained",
    "numfailed": "numfailed", "numfailedimages": "numfailed",
    "numuntrained": "numuntrained", "numuntrainedimages": "numuntrained",
}
# What a ListImageHashes entry always says (MS): one image, trained.
LISTING_COUNTERS = {"numimages": 1, "numtrained": 1, "numfailed": 0, "numuntrained": 0}
_ERROR_FIELDS = ("errorid", "rawerrorid", "errorstring", "errordescription", "errorcode", "errortime")

# Which element may hold which in strict mode, after the ListImageHashes response (MS).
_STRICT_CHILDREN = {
    "": {"autnresponse"},
    "autnresponse": {"action", "response", "responsedata"},
    "autnresponse/responsedata": {"entry"},
    "autnresponse/responsedata/entry": {"identifier", *_COUNTERS, "images", "metadata"},
    "autnresponse/responsedata/entry/images": {"image"},
    "autnresponse/responsedata/entry/images/image": {"label", "status", "hasimagedata"},
    "autnresponse/responsedata/entry/metadata": {"item"},
    "autnresponse/responsedata/entry/metadata/item": {"key", "value"},
}
STRICT_MAX_TEXT = 4096  # every real value is at most 254 bytes
STRICT_MAX_DEPTH = 8
MAX_TEXT = 1 << 20
MAX_DEPTH = 64
# One tag, comment or processing instruction. expat (2.5 here, without reparse
# deferral) rescans an unfinished token on every feed: a 200 MB attribute took minutes
# and as much memory (issue 10 item 5). No part of an ACI response is near this size.
STRICT_MAX_TOKEN = 64 * 1024
MAX_TOKEN = 1 << 20

_DTD_REFUSED = "document type declarations (DTDs) are not allowed, so no entity can be declared or expanded."
_XML_DECL = re.compile(rb"^\s*<\?xml\s+([^>]*)\?>")
_DECL_ATTR = re.compile(rb"""(version|encoding|standalone)\s*=\s*["']([^"']*)["']""")


class ResponseUnreadable(HashlensError):
    """A document that is not a readable <autnresponse>: malformed, truncated, not an
    autnresponse, or using what is refused (DTDs, entities). `reason` is the rule broken;
    `line` and `column` say where, when the parser knows."""

    def __init__(self, what: str, reason: str, line: int | None = None, column: int | None = None):
        where = f" at line {line}" + (f", column {column}" if column is not None else "") if line else ""
        super().__init__(Failure.BAD_RESPONSE, f"{what} cannot be read{where}: {reason}")
        self.what, self.reason, self.line, self.column = what, reason, line, column


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """<action> and <response>: known before any of the response data is read."""

    action: str
    status: str  # upper case: SUCCESS or ERROR

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"


# Entries and their images are named tuples, not frozen dataclasses: a pull makes a
# million of each, and a frozen dataclass took about ten times as long to make (ours).
class ImageStatus(NamedTuple):
    """One <image> of an entry (with imagestatus=true)."""

    label: str | None
    status: str | None
    has_image_data: bool | None


class ListedEntry(NamedTuple):
    """One <entry> of a ListImageHashes answer. `images` and `metadata` are None when
    the element was absent (imagestatus/metadata not asked for), () when empty."""

    identifier: str
    counters: dict[str, int]  # numimages, numtrained, numfailed, numuntrained, as present
    images: tuple[ImageStatus, ...] | None
    metadata: tuple[tuple[str, str], ...] | None
    line: int  # where the <entry> starts; 0 when not tracked (the fast, non-strict reading)

    @property
    def label(self) -> str | None:
        return self.images[0].label if self.images else None

    @property
    def has_image_data(self) -> bool | None:
        return self.images[0].has_image_data if self.images else None


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """The <error> of an ERROR answer, each child as text (None when absent)."""

    errorid: str | None
    rawerrorid: str | None
    errorstring: str | None
    errordescription: str | None
    errorcode: str | None
    errortime: str | None

    def describe(self) -> str:
        """The sentence a person reads: the description, else the short string."""
        return self.errordescription or self.errorstring or self.errorcode or "the server reported an error"


@dataclass(frozen=True, slots=True)
class DataValue:
    """A text element of <responsedata> that is not an entry or an error, by its path
    below <responsedata>: `identifier`, `token`, `database/name`, `actions/action/status`."""

    path: str
    text: str


ResponsePart = ResponseHead | ListedEntry | ErrorDetail | DataValue


@dataclass(frozen=True)
class Response:
    """A whole answer, read by `read_response`."""

    head: ResponseHead
    entries: list[ListedEntry]
    error: ErrorDetail | None
    values: list[DataValue]

    @property
    def ok(self) -> bool:
        return self.head.ok

    def value(self, path: str) -> str | None:
        """The first data value at `path` (e.g. 'token', 'identifier'), or None."""
        return next((v.text for v in self.values if v.path == path), None)


def _local(tag: str) -> str:
    # ElementTree writes a namespaced tag as {uri}local; the ACI namespace reads as none.
    return tag[len(_NS_PREFIX):] if tag.startswith(_NS_PREFIX) else tag


def _shown(tag: str) -> str:
    return tag if not tag.startswith("{") else tag.split("}", 1)[1] + f" (namespace {tag[1:].split('}')[0]})"


class _Target:
    """An ElementTree parser target that turns the parser's events into response parts
    as it streams, keeping the line of each entry and no tree."""

    def __init__(self, what: str, strict: bool):
        self.what, self.strict = what, strict
        self.max_text = STRICT_MAX_TEXT if strict else MAX_TEXT
        self.max_depth = STRICT_MAX_DEPTH if strict else MAX_DEPTH
        self.max_token = STRICT_MAX_TOKEN if strict else MAX_TOKEN
        self.parser = None  # set once the parser exists, for line numbers
        self.line_offset = 0  # lines the parser never saw (entries read from the bytes before it)
        self.parts: list[ResponsePart] = []
        self.stack: list[str] = []
        self.has_children: list[bool] = []  # per open element: has an element inside it
        self.text: list[str] = []
        self.text_len = 0
        self.action: str | None = None
        self.status: str | None = None
        self.head_sent = False
        self.seen_data = False
        self._entry: dict | None = None
        self._fields: set[str] = set()
        self._image: dict | None = None
        self._item: dict | None = None
        self._error: dict | None = None

    def where(self) -> tuple[int | None, int | None]:
        if self.parser is None:
            return None, None
        p = self.parser.parser
        return p.CurrentLineNumber + self.line_offset, p.CurrentColumnNumber + 1

    def fail(self, reason: str):
        raise ResponseUnreadable(self.what, reason, *self.where())

    # -- parser target interface ---------------------------------------------------------

    def start(self, tag, attrib):
        name = _local(tag)
        parent = "/".join(self.stack)
        if not self.stack and name != "autnresponse":
            kind = f"a {LIST_IMAGE_HASHES} response" if self.strict else "an ACI response"
            self.fail(f"the root element is <{_shown(tag)}>; {kind} starts with <autnresponse>.")
        if self.strict:
            allowed = _STRICT_CHILDREN.get(parent)
            if allowed is None:
                self.fail(f"<{parent.rsplit('/', 1)[-1]}> holds text only, but an element <{_shown(tag)}> is inside it.")
            if name not in allowed:
                self.fail(f"unexpected element <{_shown(tag)}> inside /{parent}.")
        if len(self.stack) >= self.max_depth:
            self.fail("the elements are nested too deeply.")
        if self.has_children:
            self.has_children[-1] = True
        self.stack.append(name)
        self.has_children.append(False)
        self.text, self.text_len = [], 0
        path = "/".join(self.stack)
        if path == "autnresponse/responsedata":
            self._begin_data()
        elif path == "autnresponse/responsedata/entry":
            self._entry = {"line": self.where()[0] or 0, "identifier": None, "counters": {}, "images": None,
                           "metadata": None}
            self._fields = set()
        elif path == "autnresponse/responsedata/error":
            self._error = {}
        elif self._entry is not None:
            self._entry_start(path, name)

    def _begin_data(self):
        self.seen_data = True
        if self.status is None:
            self.fail("<responsedata> comes before <response>.")
        self._send_head()

    def _send_head(self):
        if not self.head_sent:
            if self.action is None:
                self.fail("the response has no <action>.")
            self.parts.append(ResponseHead(self.action, self.status))
            self.head_sent = True

    def _entry_start(self, path, name):
        rel = path[len("autnresponse/responsedata/entry/"):]
        if rel == "images":
            self._once("images")
            self._entry["images"] = []
        elif rel == "images/image":
            if self.strict:
                self._once("image")
            self._image = {}
        elif rel == "metadata":
            self._once("metadata")
            self._entry["metadata"] = []
        elif rel == "metadata/item":
            self._item = {}

    def _once(self, name):
        if name in self._fields:
            self.fail(f"the entry has more than one <{name}>.")
        self._fields.add(name)

    def data(self, text):
        self.text_len += len(text)
        if self.text_len > self.max_text:
            self.text_too_long()
        self.text.append(text)

    def end(self, tag):
        path = "/".join(self.stack)
        name = self.stack[-1]
        text = "".join(self.text)
        if self.strict and path in _STRICT_CHILDREN and text.strip():
            self.fail(f"unexpected text {text.strip()[:40]!r} in <{name}>.")
        self.stack.pop()
        leaf = not self.has_children.pop()
        self.text, self.text_len = [], 0
        depth = len(self.stack)
        if depth == 1 and name in ("action", "response"):
            self.head_field(name, text)
        elif path == "autnresponse/responsedata/entry":
            self._end_entry()
        elif self._entry is not None:
            self._entry_part(path[len("autnresponse/responsedata/entry/"):], name, text)
        elif path == "autnresponse/responsedata/error":
            self.parts.append(ErrorDetail(**{f: self._error.get(f) for f in _ERROR_FIELDS}))
            self._error = None
        elif self._error is not None and depth == 3:
            self._error.setdefault(name, text.strip())
        elif path.startswith("autnresponse/responsedata/") and leaf:
            self.parts.append(DataValue(path[len("autnresponse/responsedata/"):], text))

    def head_field(self, name, text):
        """<action> or <response>, the first of each; later ones are data of no meaning."""
        if name == "action" and self.action is None:
            self.action = text.strip().upper()
            if self.strict and self.action != response_action(LIST_IMAGE_HASHES):
                self.fail(f"this is a response to {text.strip()!r}, not to {LIST_IMAGE_HASHES}.")
        elif name == "response" and self.status is None:
            status = text.strip().upper()
            if self.strict and status == "ERROR":
                self.fail("this file is an error response, not a listing.")
            if status not in ("SUCCESS", "ERROR"):
                self.fail(f"the response is {text.strip()!r}, not {'SUCCESS' if self.strict else 'SUCCESS or ERROR'}.")
            self.status = status

    def _end_entry(self):
        entry = self._entry
        if entry["identifier"] is None:
            self.fail("the <entry> has no <identifier>.")
        images = entry["images"]
        metadata = entry["metadata"]
        self.parts.append(ListedEntry(
            entry["identifier"], entry["counters"], None if images is None else tuple(images),
            None if metadata is None else tuple(metadata), entry["line"],
        ))
        self._entry = None

    def _entry_part(self, rel, name, text):
        entry = self._entry
        if rel == "identifier":
            self._once("identifier")
            entry["identifier"] = text
        elif rel in _COUNTERS:
            counter = _COUNTERS[rel]
            self._once(counter)
            entry["counters"][counter] = self.counter_value(rel, text)
        elif rel in ("images/image/label", "images/image/status"):
            if rel.endswith("status") and self.strict and text.strip() != "trained":
                self.fail(f"<status> is {text.strip()!r}; a trained image hash has 'trained'.")
            self._image_field(name, text if name == "label" else text.strip())
        elif rel == "images/image/hasimagedata":
            self._image_field("hasimagedata", self.flag_value(text))
        elif rel == "images/image":
            image = self._image
            if "label" not in image and self.strict:
                self.fail("the <image> has no <label>.")
            entry["images"].append(ImageStatus(image.get("label"), image.get("status"), image.get("hasimagedata")))
            self._image = None
        elif rel in ("metadata/item/key", "metadata/item/value"):
            if name in self._item:
                self.fail(f"the <item> has more than one <{name}>.")
            self._item[name] = text
        elif rel == "metadata/item":
            if "key" not in self._item or "value" not in self._item:
                self.fail("a metadata <item> needs a <key> and a <value>.")
            entry["metadata"].append((self._item["key"], self._item["value"]))
            self._item = None
        elif rel == "images" and not entry["images"] and self.strict:
            self.fail("<images> holds no <image>.")
        # Anything else inside an entry is an element Media Server may add later: skipped.

    def counter_value(self, name, text) -> int:
        value = text.strip()
        counter = _COUNTERS[name]
        if self.strict and value != str(LISTING_COUNTERS[counter]):
            self.fail(f"<{name}> is {value!r}; a {LIST_IMAGE_HASHES} entry always has {LISTING_COUNTERS[counter]}.")
        if not value.isdigit():
            self.fail(f"<{name}> is {value!r}, not a whole number.")
        return int(value)

    def flag_value(self, text) -> bool:
        value = text.strip().lower()
        if value not in ("true", "false"):
            self.fail(f"<hasimagedata> is {text.strip()!r}, not true or false.")
        return value == "true"

    def _image_field(self, name, value):
        if self._image is None:
            return  # a stray <label> outside an <image>: not ours to read (tolerant mode)
        if name in self._image:
            self.fail(f"the <image> has more than one <{name}>.")
        self._image[name] = value

    def comment(self, text):
        # Handled (and dropped) so that expat reports an event, which the token cap
        # measures from.
        return None

    def pi(self, target, text):
        return None

    def check_token(self, fed: int) -> None:
        """Refuse once the bytes fed since expat's last event, one unfinished token, pass
        the cap (text is reported as it arrives, so at most about a chunk of it waits)."""
        if fed - self.parser.parser.CurrentByteIndex > self.max_token + 2 * _READ_CHUNK:
            self.token_too_long()

    def token_too_long(self):
        self.fail(f"a tag, comment or processing instruction is longer than {self.max_token:,} bytes, the "
                  "limit on one token; no part of an ACI response is that long.")

    def text_too_long(self):
        self.fail(f"a text is longer than {self.max_text:,} characters; no value may be over 254 bytes.")

    def close(self):
        return None


class _Prolog:
    """What comes before the root element, scanned before expat sees any of it: an XML
    declaration, comments, processing instructions and space pass; `<!` that opens no
    comment is a DTD and is refused here, so the C parser never declares or expands an
    entity (reliability X1, X2; what defusedxml's handlers refuse on the strict path)."""

    def __init__(self, target: _Target):
        self.target = target
        self.held = bytearray()
        self.pos = 0

    def take(self, chunk: bytes) -> bytes | None:
        """The bytes now safe to feed, once the root's start tag is reached; None while
        the prolog is not yet complete."""
        self.held += chunk
        held, i = self.held, self.pos
        while True:
            while i < len(held) and held[i] in b" \t\r\n\xef\xbb\xbf":
                i += 1
            if i + 4 > len(held):
                break
            if held.startswith(b"<?", i):
                end = held.find(b"?>", i + 2)
                if end < 0:
                    break
                i = end + 2
            elif held.startswith(b"<!--", i):
                end = held.find(b"-->", i + 4)
                if end < 0:
                    break
                i = end + 3
            elif held.startswith(b"<!", i):
                line = held.count(b"\n", 0, i) + 1
                raise ResponseUnreadable(self.target.what, _DTD_REFUSED, line,
                                         i - held.rfind(b"\n", 0, i))
            else:
                return self.release()
        self.pos = i
        if len(held) - i > self.target.max_token:
            self.target.token_too_long()
        return None

    def release(self) -> bytes:
        data, self.held = bytes(self.held), bytearray()
        return data


class _TokenWatch:
    """The token and text caps on the C parser's path, which cannot say where expat is:
    measured on the bytes. An unfinished token is the run since the first `<` after the
    last `>`; a run with neither `<` nor `>` in it is text. Exact text lengths are checked
    again on every element read."""

    def __init__(self, target: _Target):
        self.target = target
        self.fed = 0
        self.last_gt = -1  # absolute offset of the last '>'
        self.open_lt: int | None = None  # first '<' after it
        self.last_mark = -1  # last '<' or '>'
        self.max_run = max(target.max_token, 4 * target.max_text)  # UTF-8: up to 4 bytes a character

    def see(self, chunk: bytes) -> None:
        base = self.fed
        self.fed += len(chunk)
        gt = chunk.rfind(b">")
        if gt >= 0:
            self.last_gt = base + gt
            lt = chunk.find(b"<", gt + 1)
            self.open_lt = None if lt < 0 else base + lt
        elif self.open_lt is None:
            lt = chunk.find(b"<")
            self.open_lt = None if lt < 0 else base + lt
        mark = max(gt, chunk.rfind(b"<"))
        if mark >= 0:
            self.last_mark = base + mark
        if self.open_lt is not None and self.fed - self.open_lt > self.target.max_token:
            self.target.token_too_long()
        if self.fed - self.last_mark > self.max_run:
            self.target.text_too_long()


_SMALL = {"0": 0, "1": 1}  # what a ListImageHashes counter always says (MS), read without a check


def _name(tag: str) -> str:
    return tag[len(_NS_PREFIX):] if tag[0] == "{" and tag.startswith(_NS_PREFIX) else tag


class _FastReader:
    """The non-strict reading through the C parser and TreeBuilder. Python looks at the
    start events only until <responsedata> opens; after that it looks at no event at all,
    only at <responsedata>'s children: all but the last are finished (a sibling began
    after each), so each is read, turned into its part and dropped. Same parts, rules and
    messages as `_Target` in tolerant mode; entries carry line 0 (the C parser does not
    say where an element was)."""

    def __init__(self, what: str):
        self.target = _Target(what, strict=False)
        self.parser = XMLParser(target=TreeBuilder())
        self.started: deque = deque()
        # What XMLPullParser and iterparse do: the C parser queues (event, element).
        self.parser._setevents(self.started, ("start",))
        self.root: Element | None = None
        self.data: Element | None = None

    def feed(self, data: bytes) -> Iterator[ResponsePart]:
        self.parser.feed(data)
        return self._read(finished=False)

    def close(self) -> Iterator[ResponsePart]:
        self.parser.close()
        return self._read(finished=True)

    def _read(self, finished: bool) -> Iterator[ResponsePart]:
        target = self.target
        if self.data is None:
            self._find_data(finished)
            yield from target.parts  # the head, before any entry
            target.parts = []
        else:
            self.started.clear()
        if self.data is not None:
            data = self.data
            done = len(data) if finished else len(data) - 1
            if done > 0:
                for child in data[:done]:
                    yield from self._data_child(child)
                del data[:done]

    def _find_data(self, finished: bool) -> None:
        """Read the start events until <responsedata> opens (its earlier siblings, <action>
        and <response>, are finished by then); at the end, whatever the root held."""
        target, started = self.target, self.started
        while started:
            _, element = started.popleft()
            if self.root is None:
                if _name(element.tag) != "autnresponse":
                    target.fail(f"the root element is <{_shown(element.tag)}>; an ACI response starts with "
                                "<autnresponse>.")
                self.root = element
            elif _name(element.tag) == "responsedata" and self._is_top(element):
                self._head_fields(until=element)
                target._begin_data()
                self.data = element
                started.clear()
                return
        if finished and self.root is not None:
            self._head_fields(until=None)

    def _is_top(self, element: Element) -> bool:
        return any(child is element for child in self.root)

    def _head_fields(self, until: Element | None) -> None:
        for child in self.root:
            if child is until:
                return
            name = _name(child.tag)
            if name in ("action", "response"):
                self.target.head_field(name, self._text(child))

    def _text(self, element: Element) -> str:
        text = element.text or ""
        if len(text) > self.target.max_text:
            self.target.text_too_long()
        return text

    def _data_child(self, element: Element) -> Iterator[ResponsePart]:
        name = _name(element.tag)
        if name == "entry":
            yield self._entry(element)
        elif name == "error":
            fields = {}
            for child in element:
                fields.setdefault(_name(child.tag), self._text(child).strip())
            yield ErrorDetail(**{f: fields.get(f) for f in _ERROR_FIELDS})
        else:
            yield from self._values(element, name)

    def _values(self, element: Element, path: str, depth: int = 3) -> Iterator[DataValue]:
        if depth > self.target.max_depth:
            self.target.fail("the elements are nested too deeply.")
        if len(element) == 0:
            yield DataValue(path, self._text(element))
            return
        for child in element:
            yield from self._values(child, f"{path}/{_name(child.tag)}", depth + 1)

    def _entry(self, element: Element) -> ListedEntry:
        target = self.target
        identifier = None
        counters: dict[str, int] = {}
        images = metadata = None
        for child in element:
            name = child.tag
            if name[0] == "{":
                name = _name(name)
            if name == "identifier":
                if identifier is not None:
                    target.fail("the entry has more than one <identifier>.")
                identifier = self._text(child)
            elif name in _COUNTERS:
                if _COUNTERS[name] in counters:
                    target.fail(f"the entry has more than one <{_COUNTERS[name]}>.")
                text = child.text
                counters[_COUNTERS[name]] = _SMALL.get(text) if text in _SMALL else target.counter_value(
                    name, self._text(child))
            elif name == "images":
                if images is not None:
                    target.fail("the entry has more than one <images>.")
                images = tuple(self._image(image) for image in child if _name(image.tag) == "image")
            elif name == "metadata":
                if metadata is not None:
                    target.fail("the entry has more than one <metadata>.")
                metadata = tuple(self._item(item) for item in child if _name(item.tag) == "item")
            # Anything else inside an entry is an element Media Server may add later: skipped.
        if identifier is None:
            target.fail("the <entry> has no <identifier>.")
        return ListedEntry(identifier, counters, images, metadata, 0)

    def _fields(self, element: Element, kind: str) -> dict[str, str]:
        # The hot loop of a pull: names and texts read inline.
        fields: dict[str, str] = {}
        max_text = self.target.max_text
        for child in element:
            name = child.tag
            if name[0] == "{":
                name = _name(name)
            if name in fields:
                self.target.fail(f"the <{kind}> has more than one <{name}>.")
            text = child.text or ""
            if len(text) > max_text:
                self.target.text_too_long()
            fields[name] = text
        return fields

    def _image(self, element: Element) -> ImageStatus:
        fields = self._fields(element, "image")
        status = fields.get("status")
        flag = fields.get("hasimagedata")
        return ImageStatus(fields.get("label"), None if status is None else status.strip(),
                           None if flag is None else self.target.flag_value(flag))

    def _item(self, element: Element) -> tuple[str, str]:
        fields = self._fields(element, "item")
        if "key" not in fields or "value" not in fields:
            self.target.fail("a metadata <item> needs a <key> and a <value>.")
        return fields["key"], fields["value"]


# The shape in which Media Server (and Hashlens's writer) lists an entry, read straight
# from the bytes: an entry in exactly this shape, with no attribute, comment, CDATA,
# namespace prefix or other element in it, becomes a ListedEntry without a tree (about
# five times faster than the tree, ours). Anything else goes the tree's way. Every byte
# still goes through expat first, so what is not well-formed, ends early or refers to an
# undefined entity is refused exactly as before (reliability X1, X2).
_S = rb"[ \t\r\n]*"
_ENTRY = re.compile(
    _S + rb"<entry>" + _S + rb"<identifier>([^<]*)</identifier>" + _S
    + rb"<numimages>" + _S + rb"([0-9]{1,18})" + _S + rb"</numimages>" + _S
    + rb"<(numtrained(?:images)?)>" + _S + rb"([0-9]{1,18})" + _S + rb"</\3>" + _S
    + rb"<(numfailed(?:images)?)>" + _S + rb"([0-9]{1,18})" + _S + rb"</\5>" + _S
    + rb"<(numuntrained(?:images)?)>" + _S + rb"([0-9]{1,18})" + _S + rb"</\7>" + _S
    + rb"(?:<images>" + _S + rb"<image>" + _S + rb"<label>([^<]*)</label>" + _S + rb"<status>([^<]*)</status>" + _S
    + rb"<hasimagedata>([^<]*)</hasimagedata>" + _S + rb"</image>" + _S + rb"</images>" + _S + rb")?"
    + rb"(?:(<metadata/>)|<metadata>((?:" + _S + rb"<item>" + _S + rb"<key>[^<]*</key>" + _S
    + rb"<value>[^<]*</value>" + _S + rb"</item>)*)" + _S + rb"</metadata>" + _S + rb")?"
    + rb"</entry>")
_ITEM = re.compile(rb"<key>([^<]*)</key>" + _S + rb"<value>([^<]*)</value>")
_ITEM_TEXT = re.compile(_ITEM.pattern.decode())
_new = tuple.__new__  # a named tuple made without its Python-level __new__ (a million a pull)
_ENTRY_OPEN = b"<entry>"
_ENTRY_CLOSE = b"</entry>"
_DATA_OPEN = b"<responsedata>"
_REF = re.compile(r"&(?:#([0-9]+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _ref(match) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _NAMED[name]
    return chr(int(decimal) if decimal is not None else int(hexadecimal, 16))


def _xml_text(raw: bytes) -> str:
    """Element text as expat gives it: UTF-8 decoded, line ends normalised (a literal CR
    or CR LF reads as LF, a character reference &#13; stays CR), references replaced.
    expat has already refused anything else (an undefined entity, a bad reference)."""
    text = raw.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in text:
        text = _REF.sub(_ref, text)
    return text


class _EntrySplitter:
    """Between the bytes and the tree reader: up to the top-level <responsedata> every
    byte goes to the tree; after it, each run of entries in Media Server's own shape is
    read by `_ENTRY` and kept from the tree, until something else comes (an entry in
    another shape, an <error>, the end of <responsedata>); from then on every byte goes
    to the tree again. So the parts come out in document order either way."""

    entry_limit_of = staticmethod(lambda target: target.max_text)  # the longest entry read from the bytes

    def __init__(self, reader):
        self.reader = reader
        self.target = reader.target
        self.mode = "head"  # head: before <responsedata>; entries: reading entries; tree: all to the tree
        self.held = b""
        self.limit = self.entry_limit_of(reader.target)

    def feed(self, chunk: bytes) -> Iterator[ResponsePart]:
        if self.mode == "tree":
            yield from self.reader.feed(chunk)
            return
        data = self.held + chunk if self.held else chunk
        self.held = b""
        if self.mode == "head":
            at = data.find(_DATA_OPEN)
            if at < 0:
                keep = len(_DATA_OPEN) - 1  # the tag may be cut between two chunks
                self._head(data, max(len(data) - keep, 0))
                yield from self.reader.feed(data[:-keep] if len(data) > keep else b"")
                self.held = data[-keep:] if len(data) > keep else data
                return
            end = at + len(_DATA_OPEN)
            self._head(data, end)
            yield from self.reader.feed(data[:end])
            if self.reader.data is None:  # not the top-level one (in a comment, say): the tree reads it all
                self.mode = "tree"
                yield from self.reader.feed(data[end:])
                return
            self.mode = "entries"
            data = data[end:]
        yield from self._entries(data)

    def _head(self, data: bytes, end: int) -> None:
        """The bytes before `end` go to the tree before any entry (the strict reading
        counts their lines)."""

    def _entries(self, data: bytes) -> Iterator[ResponsePart]:
        match, pos, size, limit = _ENTRY.match, 0, len(data), self.limit
        entries = []
        find, entry = data.find, self._entry
        while pos < size:
            m = match(data, pos)
            if m is None:
                break
            end = m.end()
            if end - pos > limit:
                break
            # Most entries hold no reference and no CR: their texts are plain UTF-8.
            part = entry(m, find(b"&", pos, end) < 0 and find(b"\r", pos, end) < 0)
            if part is None:
                break
            entries.append(part)
            pos = end
        yield from entries
        rest = data[pos:]
        head = rest.lstrip(b" \t\r\n")
        if not head or (_ENTRY_CLOSE not in head and len(rest) <= limit
                        and (head.startswith(_ENTRY_OPEN) or _ENTRY_OPEN.startswith(head))):
            self.held = rest  # an entry not yet complete: wait for the next chunk
            return
        self.mode = "tree"
        self._to_tree()
        yield from self.reader.feed(rest)

    def _to_tree(self) -> None:
        """Everything from here on goes to the tree (the strict reading tells it where it is)."""

    def flush(self) -> Iterator[ResponsePart]:
        """Hand what is held to the tree, so that its own rules judge it (before the
        checker's verdict on the end of the document)."""
        if self.held:
            held, self.held = self.held, b""
            if self.mode == "entries":
                self.mode = "tree"
                self._to_tree()
            yield from self.reader.feed(held)

    def _entry(self, m, plain: bool) -> ListedEntry:
        """The hot loop of a pull: one entry from its match; `plain` when its bytes hold
        no reference and no CR, so every text is its UTF-8 as it stands."""
        g = m.groups()
        text = bytes.decode if plain else _xml_text
        images = None
        if g[8] is not None:
            flag, status = g[10], g[9]
            images = (_new(ImageStatus, (text(g[8]), "trained" if status == b"trained" else text(status).strip(),
                                         True if flag == b"true" else False if flag == b"false"
                                         else self.target.flag_value(text(flag)))),)
        if g[11] is not None:
            metadata = ()
        elif g[12] is None:
            metadata = None
        elif plain:
            # One decode of the whole block, and the pairs come out as text already.
            metadata = tuple(_ITEM_TEXT.findall(g[12].decode()))
        else:
            metadata = tuple([(text(k), text(v)) for k, v in _ITEM.findall(g[12])])
        if g[1] == b"1" and g[3] == b"1" and g[5] == b"0" and g[7] == b"0":
            counters = {"numimages": 1, "numtrained": 1, "numfailed": 0, "numuntrained": 0}
        else:
            counters = {"numimages": int(g[1]), "numtrained": int(g[3]), "numfailed": int(g[5]),
                        "numuntrained": int(g[7])}
        return _new(ListedEntry, (text(g[0]), counters, images, metadata, 0))

    def close(self) -> Iterator[ResponsePart]:
        yield from self.flush()
        yield from self.reader.close()


class _StrictReader:
    """The import's reading of what is not read from the bytes: defusedxml's parser and
    a strict `_Target`, fed by `_StrictSplitter` as `_FastReader` is fed by its splitter."""

    def __init__(self, what: str):
        self.target = _Target(what, strict=True)
        # No DTD at all (so no entity declarations, no entity bombs, no external subsets),
        # and no external entity references either (reliability X1, X2).
        self.parser = DefusedXMLParser(target=self.target, forbid_dtd=True, forbid_entities=True,
                                       forbid_external=True)
        self.target.parser = self.parser
        self.fed = 0

    @property
    def data(self):
        """Whether the top-level <responsedata> is open (None when not)."""
        return True if self.target.stack == ["autnresponse", "responsedata"] else None

    def feed(self, data: bytes) -> list[ResponsePart]:
        self.parser.feed(data)
        self.fed += len(data)
        self.target.check_token(self.fed)
        parts, self.target.parts = self.target.parts, []
        return parts

    def close(self) -> list[ResponsePart]:
        self.parser.close()
        parts, self.target.parts = self.target.parts, []
        return parts


_LONG_SPACE = re.compile(rb"[ \t\r\n]{%d,}" % (STRICT_MAX_TEXT + 1))


def _line_ends(data: bytes, start: int, end: int) -> int:
    """Line ends between `start` and `end` as expat counts them (LF, CR LF, a lone CR)."""
    n = data.count(b"\n", start, end)
    if data.find(b"\r", start, end) >= 0:
        n += data.count(b"\r", start, end) - data.count(b"\r\n", start, end)
    return n


def _column_after(data: bytes, start: int, end: int, column: int) -> int:
    """The column (in characters, from 0) after data[start:end], from `column` at `start`."""
    last = max(data.rfind(b"\n", start, end), data.rfind(b"\r", start, end))
    if last >= 0:
        start, column = last + 1, 0
    return column + len(data[start:end].decode("utf-8", "replace"))


class _StrictSplitter(_EntrySplitter):
    """The import's rule on the entries read straight from the bytes: only an entry that
    the strict target would take as it stands (counters 1, 1, 0, 0, status 'trained',
    hasimagedata true or false, no text over the cap) is read here, with its line;
    anything else, and everything after it, goes to the strict target, which words the
    refusal. The target is told how many lines (and columns) it did not see, so its
    messages name the file's own line."""

    entry_limit_of = staticmethod(lambda target: target.max_token)

    def __init__(self, reader: _StrictReader):
        super().__init__(reader)
        self.line, self.column = 1, 0  # where the next byte not yet given to the tree is
        self.tree_line = self.tree_column = None  # where the tree stopped (at <responsedata>)
        self.checked = 0  # bytes given to the checker
        self.after_cr = False  # the bytes counted so far end with a CR

    def _head(self, data: bytes, end: int) -> None:
        self.line += _line_ends(data, 0, end)
        if self.column == 0 and self.after_cr and data[:1] == b"\n":
            self.line -= 1  # a CR LF cut between two runs is one line end
        self.column = _column_after(data, 0, end, self.column)
        self.after_cr = end > 0 and data[end - 1:end] == b"\r"
        self.tree_line, self.tree_column = self.line, self.column

    def _entry(self, m, plain: bool):
        g = m.groups()
        if not (g[1] == b"1" and g[3] == b"1" and g[5] == b"0" and g[7] == b"0"):
            return None
        if g[8] is not None and (g[9] != b"trained" or g[10] not in (b"true", b"false")):
            return None
        data, start, end = m.string, m.start(), m.end()
        if end - start > self.target.max_text and not self._short_texts(g, data, start, end):
            return None
        entry = super()._entry(m, plain)
        at = data.find(_ENTRY_OPEN, start, end)
        line = self.line + _line_ends(data, start, at)
        self.line = line + _line_ends(data, at, end)
        self.column = _column_after(data, start, end, self.column)
        return ListedEntry(entry.identifier, entry.counters, entry.images, entry.metadata, line)

    def _short_texts(self, g, data: bytes, start: int, end: int) -> bool:
        # Bytes: a text (or a run of space between elements, which the target counts
        # too) of no more bytes than the cap has no more characters either; a longer
        # one goes to the tree, which counts its characters.
        cap = self.target.max_text
        texts = [g[0], g[8] or b""]
        if g[12] is not None:
            texts += [t for pair in _ITEM.findall(g[12]) for t in pair]
        return all(len(t) <= cap for t in texts) and _LONG_SPACE.search(data, start, end) is None

    def _to_tree(self) -> None:
        if self.tree_line is None:
            return
        self.target.line_offset = self.line - self.tree_line
        pad = self.column - self.tree_column
        if pad > 0:  # space between entries, so the tree's columns match the file's; not counted as text
            self.reader.feed(b" " * pad)
            self.target.text, self.target.text_len = [], 0


def _checked(expat_parser, data: bytes, final: bool) -> None:
    """Feed expat, which checks every byte (the fast path keeps some from the tree); its
    error reads as the tree parser's would."""
    try:
        expat_parser.Parse(data, final)
    except ExpatError as exc:
        error = ParseError(f"{expat_errors.messages[exc.code]}: line {exc.lineno}, column {exc.offset}")
        error.code, error.position = exc.code, (exc.lineno, exc.offset)
        raise error from None


def _iter_fast(source, what: str, document: str) -> Iterator[ResponsePart]:
    reader = _FastReader(what)
    prolog, watch = _Prolog(reader.target), _TokenWatch(reader.target)
    splitter = _EntrySplitter(reader)
    # The separator makes expat check namespace prefixes as the tree parser does.
    checker = ParserCreate(None, "}")
    first, closing = True, False
    try:
        for chunk in _chunks(source):
            if first:
                check_declaration(what, chunk, document)
                first = False
            if prolog is not None:
                chunk = prolog.take(chunk)
                if chunk is None:
                    continue
                prolog = None
            watch.see(chunk)
            _checked(checker, chunk, False)
            yield from splitter.feed(chunk)
        closing = True
        if prolog is not None:
            released = prolog.release()
            _checked(checker, released, False)
            yield from splitter.feed(released)
        _checked(checker, b"", True)
        yield from splitter.close()
    except ParseError as exc:
        raise _not_well_formed(what, exc, closing, document) from None
    target = reader.target
    if target.status is None:
        raise ResponseUnreadable(what, "the response has no <response>; it is not an ACI response.")
    target._send_head()
    yield from target.parts


def _iter_strict(source, what: str, document: str) -> Iterator[ResponsePart]:
    """The import's strict reading: entries in Media Server's own shape read from the
    bytes (as `_iter_fast` reads them, with their lines), everything else by defusedxml's
    parser and the strict `_Target`, with the same parts, lines and refusals as
    `_iter_target` (property-tested). expat checks every byte first; where it finds a
    fault, the bytes before it go to the target first, so a rule broken earlier in the
    document is the one named, as when one parser read it all."""
    reader = _StrictReader(what)
    target = reader.target
    prolog = _Prolog(target)
    splitter = _StrictSplitter(reader)
    checker = ParserCreate(None, "}")
    first, closing = True, False
    try:
        for chunk in _chunks(source):
            if first:
                check_declaration(what, chunk, document)
                first = False
            if prolog is not None:
                chunk = prolog.take(chunk)
                if chunk is None:
                    continue
                prolog = None
            yield from _strict_step(checker, splitter, chunk)
        closing = True
        if prolog is not None:
            yield from _strict_step(checker, splitter, prolog.release())
        yield from splitter.flush()
        _checked(checker, b"", True)
        yield from splitter.close()
    except ParseError as exc:
        raise _not_well_formed(what, exc, closing, document) from None
    except DTDForbidden:
        raise ResponseUnreadable(what, _DTD_REFUSED, *target.where()) from None
    except (EntitiesForbidden, ExternalReferenceForbidden):
        raise ResponseUnreadable(what, "entity declarations and external references are not allowed.",
                                 *target.where()) from None
    if target.status is None or not target.seen_data:
        raise ResponseUnreadable(what, "the response has no <response> or no <responsedata>; it is not a listing.")
    target._send_head()
    yield from target.parts


def _strict_step(checker, splitter: _StrictSplitter, chunk: bytes) -> Iterator[ResponsePart]:
    start = splitter.checked
    splitter.checked += len(chunk)
    try:
        _checked(checker, chunk, False)
    except ParseError:
        # The target judges the bytes before the fault first (its rule may be broken there).
        good = checker.ErrorByteIndex - start
        if good > 0:
            yield from splitter.feed(chunk[:good])
        raise
    yield from splitter.feed(chunk)


def check_declaration(what: str, head: bytes, document: str = "document") -> None:
    """Refuse an XML declaration that is not XML 1.0 in UTF-8 (reliability X4)."""
    match = _XML_DECL.match(head.removeprefix(b"\xef\xbb\xbf"))
    if not match:
        return
    attrs = {k.decode(): v.decode("ascii", "replace") for k, v in _DECL_ATTR.findall(match.group(1))}
    if attrs.get("version", "1.0") != "1.0":
        raise ResponseUnreadable(what, f"the {document} is XML {attrs['version']}; only XML 1.0 is accepted.", 1)
    encoding = attrs.get("encoding")
    if encoding is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ResponseUnreadable(what, f"the {document} declares the encoding {encoding!r}; only UTF-8 is accepted.", 1)


def _chunks(source) -> Iterator[bytes]:
    if isinstance(source, str):
        source = source.encode("utf-8")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        for i in range(0, len(data), _READ_CHUNK):
            yield data[i:i + _READ_CHUNK]
        return
    while chunk := source.read(_READ_CHUNK):
        yield chunk


def _not_well_formed(what: str, exc: ParseError, closing: bool, document: str) -> ResponseUnreadable:
    line, column = getattr(exc, "position", (None, None))
    reason = str(exc).split(":")[0]
    if closing:
        reason += f"; the {document} ends too early: is it truncated?"
    return ResponseUnreadable(what, f"the XML is not well-formed ({reason}).", line,
                              None if column is None else column + 1)


def iter_response(source, *, what: str = "The response", strict: bool = False,
                  document: str = "document") -> Iterator[ResponsePart]:
    """The parts of an <autnresponse> as they stream in: first a `ResponseHead`, then each
    `ListedEntry`, `ErrorDetail` and `DataValue` in document order.

    `source` is bytes, text, or a binary file-like object (an HTTP response, an open
    file) read in chunks. `what` names the source in error messages, `document` what
    it is ("document", "file", "answer"). Raises
    `ResponseUnreadable`; never anything else for any input (property-tested)."""
    if strict:
        return _iter_strict(source, what, document)
    return _iter_fast(source, what, document)


def _iter_target(source, what: str, strict: bool, document: str) -> Iterator[ResponsePart]:
    """The reading through defusedxml's parser and `_Target`: the strict path, and the
    reference the fast path is tested against."""
    target = _Target(what, strict)
    # No DTD at all (so no entity declarations, no entity bombs, no external subsets),
    # and no external entity references either (reliability X1, X2).
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    target.parser = parser
    first, closing = True, False
    fed = 0
    try:
        for chunk in _chunks(source):
            if first:
                check_declaration(what, chunk, document)
                first = False
            parser.feed(chunk)
            fed += len(chunk)
            target.check_token(fed)
            if target.parts:
                yield from target.parts
                target.parts = []
        closing = True
        parser.close()
    except ParseError as exc:
        raise _not_well_formed(what, exc, closing, document) from None
    except DTDForbidden:
        raise ResponseUnreadable(what, _DTD_REFUSED, *target.where()) from None
    except (EntitiesForbidden, ExternalReferenceForbidden):
        raise ResponseUnreadable(what, "entity declarations and external references are not allowed.",
                                 *target.where()) from None
    if strict and (target.status is None or not target.seen_data):
        raise ResponseUnreadable(what, "the response has no <response> or no <responsedata>; it is not a listing.")
    if target.status is None:
        raise ResponseUnreadable(what, "the response has no <response>; it is not an ACI response.")
    target._send_head()
    yield from target.parts


def read_response(source, *, what: str = "The response") -> Response:
    """A whole answer at once: for short answers (an action's SUCCESS, an ERROR, a token).
    Pages of entries are better read with `iter_response`, one entry at a time."""
    head, entries, error, values = None, [], None, []
    for part in iter_response(source, what=what):
        if isinstance(part, ResponseHead):
            head = part
        elif isinstance(part, ListedEntry):
            entries.append(part)
        elif isinstance(part, ErrorDetail):
            error = error or part
        else:
            values.append(part)
    return Response(head, entries, error, values)
