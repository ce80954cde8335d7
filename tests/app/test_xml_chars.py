"""The XML 1.0 character rules, checked on every code point (their patterns were rewritten to
compile faster at start-up; what they find must not change)."""

from __future__ import annotations

from app import domain
from app.mediaserver_codec import writer


def _xml_char(code: int) -> bool:
    """XML 1.0's Char production."""
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


EVERY = "".join(map(chr, range(0x110000)))


def test_not_xml_char_finds_exactly_what_xml_cannot_carry():
    found = {m.start() for m in domain._NOT_XML_CHAR.finditer(EVERY)}
    assert found == {code for code in range(0x110000) if not _xml_char(code)}


def test_writer_special_finds_exactly_what_is_escaped_or_refused():
    found = {m.start() for m in writer._SPECIAL.finditer(EVERY)}
    assert found == {code for code in range(0x110000) if not _xml_char(code) or chr(code) in "&<>\r"}
