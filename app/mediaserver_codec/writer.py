"""The one writer of <autnresponse> documents, streamed as text chunks.

Written by hand rather than through ElementTree: ElementTree writes characters XML 1.0
forbids and cannot parse its own output (reliability S2), and a listing of millions of
entries must stream. Every text passes through `xml_text`, which refuses what XML 1.0
cannot carry, so no response is ever unparseable.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator

from app.domain import EntryRow, Failure, HashlensError, first_bad_xml_char
from app.mediaserver_codec.names import LIST_IMAGE_HASHES, response_action

XMLNS = "http://schemas.autonomy.com/aci/"
PRODUCT = "HASHLENS"
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_NEEDS_ESCAPE = re.compile("[&<>\r]")
# Either a character to escape or one XML 1.0 cannot carry: text without one (nearly all
# text) is written as it is after a single search. One negated class, not an alternation
# of two: the alternation took 83 us for a page of 50 identifiers, the class 16 us. It
# names the characters it finds (not the negation of those it passes), which compiles in
# 0.3 ms instead of 6.6 ms at start-up and searches as fast.
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f&<>\ud800-\udfff\ufffe\uffff]")
# The ASCII characters written as they are (TAB, LF, and space to DEL except & < >):
# deleting them from ASCII text leaves nothing when the text is plain.
_PLAIN_ASCII = bytes(c for c in range(0x20, 0x80) if c not in b"&<>") + b"\t\n"


def is_plain(text: str) -> bool:
    """Whether text is written as it is (nothing to escape, nothing XML 1.0 forbids).
    ASCII text, nearly all text, is checked in one pass in C (under 1 us for a page of
    identifiers); other text by `_SPECIAL`."""
    if text.isascii():
        return not text.encode("ascii").translate(None, _PLAIN_ASCII)
    return _SPECIAL.search(text) is None


def xml_text(text: str, what: str = "text") -> str:
    """Escape text for XML element content. CR is written as a character reference so
    it survives parsing (parsers fold a bare CR into LF)."""
    if is_plain(text):
        return text
    bad = first_bad_xml_char(text)
    if bad is not None:
        raise HashlensError(
            Failure.STORE_FAILED,
            f"{what} {text!r} holds character U+{ord(text[bad]):04X}, which XML 1.0 cannot carry; "
            "it was written by another program and cannot be exported.",
        )
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def _open(action: str, status: str = "SUCCESS") -> str:
    return (
        f'<autnresponse xmlns:autn="{XMLNS}">\n'
        f"  <action>{xml_text(response_action(action))}</action>\n"
        f"  <response>{status}</response>\n"
    )


def success(action: str, body_lines: Iterable[str] = ()) -> str:
    """A SUCCESS response whose responsedata holds the given pre-escaped lines."""
    lines = list(body_lines)
    if not lines:
        return _open(action) + "  <responsedata/>\n</autnresponse>\n"
    inner = "".join(f"    {line}\n" for line in lines)
    return _open(action) + f"  <responsedata>\n{inner}  </responsedata>\n</autnresponse>\n"


def element(name: str, text: str) -> str:
    return f"<{name}>{xml_text(text, name)}</{name}>"


def error(action: str, err: HashlensError, when: float | None = None) -> str:
    """The ERROR envelope around one `error_element`."""
    safe_action = _safe_action(action)
    return (
        _open(safe_action, "ERROR") + "  <responsedata>\n"
        + error_element(safe_action, err, when, indent="    ")
        + "  </responsedata>\n</autnresponse>\n"
    )


def _safe_action(action: str) -> str:
    return response_action(action) if first_bad_xml_char(action) is None else "UNKNOWN"


def error_element(action: str, err: HashlensError, when: float | None = None, indent: str = "") -> str:
    """One <error> with errorid, rawerrorid, errorstring, errordescription, errorcode,
    errortime, in that order (MS); also what a failed queued action reports."""
    failure = err.failure
    stamp = time.strftime("%d %b %y %H:%M:%S", time.gmtime(when if when is not None else time.time()))
    description = err.description
    if first_bad_xml_char(description) is not None:
        description = description.encode("ascii", "backslashreplace").decode("ascii")
        description = "".join(c if first_bad_xml_char(c) is None else "?" for c in description)
    safe_id = "".join(c for c in _safe_action(action) if c.isalnum())
    inner = indent + "  "
    return (
        f"{indent}<error>\n"
        + f"{inner}<errorid>{PRODUCT}{xml_text(safe_id)}{failure.number}</errorid>\n"
        + f"{inner}<rawerrorid>0x{failure.number:X}</rawerrorid>\n"
        + f"{inner}<errorstring>{xml_text(failure.short)}</errorstring>\n"
        + f"{inner}<errordescription>{xml_text(description)}</errordescription>\n"
        + f"{inner}<errorcode>{failure.code}</errorcode>\n"
        + f"{inner}<errortime>{stamp}</errortime>\n"
        + f"{indent}</error>\n"
    )


def entry_xml(row: EntryRow, imagestatus: bool, metadata: bool) -> str:
    """One <entry>, elements in exactly the seed's order (MS)."""
    parts = [
        "    <entry>\n",
        f"      <identifier>{xml_text(row.identifier, 'identifier')}</identifier>\n",
        "      <numimages>1</numimages>\n      <numtrained>1</numtrained>\n"
        "      <numfailed>0</numfailed>\n      <numuntrained>0</numuntrained>\n",
    ]
    if imagestatus:
        parts.append(
            "      <images>\n        <image>\n"
            f"          <label>{xml_text(row.label, 'label')}</label>\n"
            "          <status>trained</status>\n"
            f"          <hasimagedata>{'true' if row.has_image_data or row.declared_image_data else 'false'}</hasimagedata>\n"
            "        </image>\n      </images>\n"
        )
    if metadata:
        items = row.metadata or ()
        if items:
            parts.append("      <metadata>\n")
            for key, value in items:
                parts.append(
                    "        <item>\n"
                    f"          <key>{xml_text(key, 'metadata key')}</key>\n"
                    f"          <value>{xml_text(value, 'metadata value')}</value>\n"
                    "        </item>\n"
                )
            parts.append("      </metadata>\n")
        else:
            parts.append("      <metadata/>\n")
    parts.append("    </entry>\n")
    return "".join(parts)


_ENTRY_OPEN = "    <entry>\n      <identifier>"
_ENTRY_CLOSE = ("</identifier>\n      <numimages>1</numimages>\n      <numtrained>1</numtrained>\n"
                "      <numfailed>0</numfailed>\n      <numuntrained>0</numuntrained>\n    </entry>\n")


def identifier_listing(identifiers: list[str], action: str = LIST_IMAGE_HASHES) -> str:
    """A whole ListImageHashes response without imagestatus or metadata, from the
    identifiers alone: exactly what `listing` writes for the same entries."""
    if not identifiers:
        return _open(action) + "  <responsedata/>\n</autnresponse>\n"
    if not is_plain("".join(identifiers)):
        identifiers = [xml_text(i, "identifier") for i in identifiers]
    return "".join([_open(action), "  <responsedata>\n",
                    *[f"{_ENTRY_OPEN}{i}{_ENTRY_CLOSE}" for i in identifiers],
                    "  </responsedata>\n</autnresponse>\n"])


def listing(batches: Iterable[list[EntryRow]], *, imagestatus: bool, metadata: bool,
            action: str = LIST_IMAGE_HASHES) -> Iterator[str]:
    """A ListImageHashes response, yielded a batch of entries at a time. An empty listing
    (for example `start` past the end) is SUCCESS with an empty responsedata (ours). A
    batch may also be text: entries already written as `entry_xml` writes them (the
    stand-in Media Server's generated data)."""
    head = _open(action)
    first = True
    for batch in batches:
        if not batch:
            continue
        if isinstance(batch, str):
            chunk = batch
        elif not imagestatus and not metadata and is_plain("".join([r.identifier for r in batch])):
            # The plain listing's hot path: one search for the whole batch's identifiers.
            chunk = "".join([f"{_ENTRY_OPEN}{r.identifier}{_ENTRY_CLOSE}" for r in batch])
        else:
            chunk = "".join([entry_xml(row, imagestatus, metadata) for row in batch])
        if first:
            yield head + "  <responsedata>\n" + chunk
            first = False
        else:
            yield chunk
    if first:
        yield head + "  <responsedata/>\n</autnresponse>\n"
    else:
        yield "  </responsedata>\n</autnresponse>\n"
