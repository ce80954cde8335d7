"""The response side of the Media Server codec: what the writer writes, the reader reads;
both counter spellings and the ACI namespace; every bad document a typed error."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.domain import EntryRow, Failure, HashlensError, first_bad_xml_char, param_invalid
from app.mediaserver_codec import names, reader, writer
from app.mediaserver_codec.reader import (
    DataValue, ErrorDetail, ListedEntry, ResponseHead, ResponseUnreadable, iter_response, read_response,
)
from tests.seeds import LIST_IMAGE_HASHES_SEED as SEED

xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


def test_the_seed_response_reads_whole():
    answer = read_response(SEED)
    assert answer.head == ResponseHead("LISTIMAGEHASHES", "SUCCESS") and answer.ok
    (entry,) = answer.entries
    assert entry.identifier == "6d8e53fd92e601a4b8948e1b9397e381"
    assert entry.counters == {"numimages": 1, "numtrained": 1, "numfailed": 0, "numuntrained": 0}
    assert entry.label == "image1" and entry.has_image_data is True and entry.images[0].status == "trained"
    assert entry.metadata == (("importance", "high"),)
    # The import's strict reading knows where each entry starts; a client's does not.
    assert entry.line == 0
    assert [p.line for p in iter_response(SEED, strict=True) if isinstance(p, ListedEntry)] == [5]


def test_older_counter_spellings_and_the_aci_namespace_read_alike():
    older = SEED.replace("<autnresponse>", '<autnresponse xmlns:autn="http://schemas.autonomy.com/aci/">')
    for short in ("trained", "failed", "untrained"):
        older = older.replace(f"num{short}>", f"num{short}images>")
    older = older.replace("<entry>", "<autn:entry>").replace("</entry>", "</autn:entry>")
    assert read_response(older).entries == [
        ListedEntry(e.identifier, e.counters, e.images, e.metadata, e.line) for e in read_response(SEED).entries
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(xml_text.filter(bool), xml_text, st.booleans(),
                          st.lists(st.tuples(xml_text, xml_text), max_size=3)), max_size=5),
       st.booleans(), st.booleans())
def test_what_the_writer_writes_the_reader_reads(rows, imagestatus, metadata):
    entries = [EntryRow(i + 1, i, ident, label, has_data, 0, None, None, None, None, len(meta), 0, tuple(meta))
               for i, (ident, label, has_data, meta) in enumerate(rows)]
    text = "".join(writer.listing([entries], imagestatus=imagestatus, metadata=metadata))
    parts = list(iter_response(io.BytesIO(text.encode()), strict=True))
    assert parts[0] == ResponseHead("LISTIMAGEHASHES", "SUCCESS")
    read = parts[1:]
    assert [e.identifier for e in read] == [r.identifier for r in entries]
    for got, row in zip(read, entries):
        assert got.label == (row.label if imagestatus else None)
        assert got.has_image_data == (row.has_image_data if imagestatus else None)
        assert got.metadata == (row.metadata if metadata else None)


def test_an_error_answer_reads_with_every_child():
    text = writer.error(names.LIST_IMAGE_HASHES, param_invalid("start", "'x' is not a whole number."), when=0)
    answer = read_response(text)
    assert not answer.ok and answer.head.action == "LISTIMAGEHASHES" and answer.entries == []
    assert answer.error == ErrorDetail("HASHLENSLISTIMAGEHASHES2", "0x2", "Invalid parameter value",
                                       "Parameter 'start': 'x' is not a whole number.", "ERRORPARAMINVALID",
                                       "01 Jan 70 00:00:00")
    assert answer.error.describe() == "Parameter 'start': 'x' is not a whole number."


def test_other_response_data_reads_as_values_by_path():
    text = ("<autnresponse><action>QUEUEINFO</action><response>success</response><responsedata>"
            "<token>MTAuMC4wLjE6MTQwMDA=</token><actions><action><status>Finished</status>"
            "<error/></action></actions></responsedata></autnresponse>")
    answer = read_response(text)
    assert answer.ok and answer.value("token") == "MTAuMC4wLjE6MTQwMDA="
    assert answer.value("actions/action/status") == "Finished"
    assert DataValue("actions/action/error", "") in answer.values and answer.value("actions") is None
    databases = writer.success(names.LIST_IMAGE_HASH_DATABASES,
                               ["<database>", writer.element("name", "A & B"), "</database>"])
    assert read_response(databases).value("database/name") == "A & B"


def test_entries_stream_before_the_document_ends():
    """A page is read one entry at a time: the first entry is out before the rest arrives."""
    head = SEED.split("</responsedata>")[0]
    entries = head.split("<responsedata>")[1]
    body = head + entries.replace("6d8e", "second") * 3  # no closing tags yet

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data, self.sent = data, 0

        def readable(self):
            return True

        def read(self, n=-1):
            if self.sent >= len(self.data):
                raise AssertionError("the reader asked for more than the test has sent")
            chunk = self.data[self.sent:self.sent + 200]
            self.sent += len(chunk)
            return chunk

    stream = iter_response(Trickle(body.encode()))
    assert isinstance(next(stream), ResponseHead)
    assert next(stream).identifier == "6d8e53fd92e601a4b8948e1b9397e381"


@pytest.mark.parametrize("document, words", [
    (SEED[:-40], "ends too early"),
    (SEED[:200], "ends too early"),
    ("", "ends too early"),
    ("not xml at all", "not well-formed"),
    ("<html><body>502 Bad Gateway</body></html>", "starts with <autnresponse>"),
    ('<autnresponse xmlns="urn:other"><action>X</action></autnresponse>', "starts with <autnresponse>"),
    ("<autnresponse><action>X</action></autnresponse>", "no <response>"),
    ("<autnresponse><action>X</action><response>MAYBE</response></autnresponse>", "not SUCCESS or ERROR"),
    ("<autnresponse><response>SUCCESS</response><responsedata/></autnresponse>", "no <action>"),
    ("<autnresponse><action>X</action><responsedata/><response>SUCCESS</response></autnresponse>",
     "comes before <response>"),
    ('<!DOCTYPE a [<!ENTITY e "boom">]><autnresponse><action>&e;</action></autnresponse>', "DTDs"),
    ('<!DOCTYPE a SYSTEM "file:///etc/passwd"><autnresponse/>', "DTDs"),
    ("<autnresponse><action>X</action><response>SUCCESS</response><responsedata>"
     "<entry><numimages>1</numimages></entry></responsedata></autnresponse>", "no <identifier>"),
    ("<autnresponse><action>X</action><response>SUCCESS</response><responsedata>"
     "<entry><identifier>a</identifier><numtrained>one</numtrained></entry></responsedata></autnresponse>",
     "not a whole number"),
    ('<?xml version="1.0" encoding="ISO-8859-1"?><autnresponse/>', "only UTF-8"),
    (b"<autnresponse><action>\xff</action></autnresponse>", "not well-formed"),
])
def test_bad_documents_are_typed_errors_naming_the_rule(document, words):
    with pytest.raises(ResponseUnreadable) as caught:
        list(iter_response(document, what="The answer of ms:14000"))
    assert words in caught.value.reason
    assert caught.value.failure is Failure.BAD_RESPONSE
    assert str(caught.value).startswith("The answer of ms:14000 cannot be read")


def test_strict_mode_is_the_import_rule():
    with pytest.raises(ResponseUnreadable, match="always has 1"):
        list(iter_response(SEED.replace("<numimages>1<", "<numimages>2<"), strict=True))
    with pytest.raises(ResponseUnreadable, match="unexpected element <extra>"):
        list(iter_response(SEED.replace("<numimages>", "<extra/><numimages>"), strict=True))
    with pytest.raises(ResponseUnreadable, match="error response"):
        list(iter_response(writer.error("ListImageHashes", param_invalid("x", "y")), strict=True))
    # A client reads past elements a later Media Server may add.
    assert read_response(SEED.replace("<numimages>", "<extra><deep/></extra><numimages>")).entries[0].identifier


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: "<autnresponse>" + t))
def test_any_bytes_give_parts_or_a_typed_error(data):
    try:
        list(iter_response(data))
    except HashlensError as exc:
        assert isinstance(exc, ResponseUnreadable)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(SEED) - 1))
def test_every_truncation_of_a_response_is_refused(cut):
    with pytest.raises(ResponseUnreadable):
        list(iter_response(SEED[:cut]))


def _both_readers(data):
    """What the fast reader and the reference (defusedxml's parser, a Python target) make
    of `data`: the parts without lines, or the error's reason."""
    outcomes = []
    for read in (lambda: reader.iter_response(data), lambda: reader._iter_target(data, "X", False, "document")):
        try:
            outcomes.append([p if not isinstance(p, ListedEntry) else p.identifier + repr(
                (p.counters, p.images, p.metadata)) for p in read()])
        except ResponseUnreadable as exc:
            outcomes.append(type(exc))
    return outcomes


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(xml_text.filter(bool), xml_text, st.booleans(),
                          st.lists(st.tuples(xml_text, xml_text), max_size=3)), max_size=5),
       st.booleans(), st.booleans(), st.sampled_from(["", "<extra><deep>x</deep></extra>", "<!-- c -->"]))
def test_the_fast_reader_reads_what_the_reference_reads(rows, imagestatus, metadata, extra):
    entries = [EntryRow(i + 1, i, ident, label, has_data, 0, None, None, None, None, len(meta), 0, tuple(meta))
               for i, (ident, label, has_data, meta) in enumerate(rows)]
    text = "".join(writer.listing([entries], imagestatus=imagestatus, metadata=metadata))
    text = text.replace("<numimages>", extra + "<numimages>")
    fast, reference = _both_readers(text.encode())
    assert fast == reference and fast != ResponseUnreadable


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: "<autnresponse>" + t))
def test_the_fast_reader_refuses_what_the_reference_refuses(data):
    fast, reference = _both_readers(data)
    assert (fast == ResponseUnreadable) == (reference == ResponseUnreadable)
    if fast != ResponseUnreadable:
        assert fast == reference


@pytest.mark.parametrize("document, line", [
    (b'<?xml version="1.0"?>\n<!-- a <!DOCTYPE in a comment is text -->\n<!DOCTYPE a [<!ENTITY e "x">]><a/>', 3),
    (b"<!DOCTYPE autnresponse><autnresponse/>", 1),
])
def test_a_dtd_never_reaches_the_fast_parser(document, line):
    with pytest.raises(ResponseUnreadable, match="DTDs") as caught:
        list(iter_response(document))
    assert caught.value.line == line


@pytest.mark.parametrize("parts, words", [
    ((b'<autnresponse x="', b"a", b'"/>'), "longer than 1,048,576 bytes"),
    ((b"<autnresponse><!--", b"a", b"--></autnresponse>"), "longer than 1,048,576 bytes"),
    ((b"<autnresponse><action>", b"a", b"</action></autnresponse>"), "longer than 1,048,576 characters"),
])
def test_the_fast_reader_caps_tokens_and_texts_as_it_streams(parts, words):
    """A 64 MB token or text is refused after about its cap, not after reading it all."""
    head, fill, _ = parts

    class Endless(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def read(self, n=-1):
            self.sent += 1 << 16
            assert self.sent < 16 << 20, "the reader kept reading past the cap"
            return (head if self.sent == 1 << 16 else b"") + fill * (1 << 16)

    with pytest.raises(ResponseUnreadable, match=words):
        list(iter_response(Endless()))


def test_the_standins_generated_pages_are_what_the_writer_writes():
    """The stand-in writes its generated database straight from the numbers (fast, for the
    benchmark); byte for byte what the writer makes of the same entries."""
    from tests.standin import SyntheticDatabase

    for db in (SyntheticDatabase(12_003, 2, variant=0), SyntheticDatabase(12_003, 3, variant=2),
               SyntheticDatabase(7, 0, prefix="a&b<")):
        for imagestatus in (False, True):
            for metadata in (False, True):
                first, stop = (9_995, 10_002) if len(db) > 10 else (0, 7)
                rows = [EntryRow(i + 1, i + 1, e.identifier, e.label, e.has_image_data, 0, None, None, None, None,
                                 len(e.metadata), 0, tuple(e.metadata))
                        for i, e in ((i, db.entry(i)) for i in range(first, stop))]
                expected = "".join(writer.entry_xml(r, imagestatus, metadata) for r in rows)
                assert "".join(db.entries_xml(first, stop, imagestatus, metadata, batch=3)) == expected


class _Trickle(io.RawIOBase):
    """A response arriving a few bytes at a time, cut anywhere."""

    def __init__(self, data: bytes, sizes):
        self.data, self.sizes, self.pos = data, sizes, 0

    def readable(self):
        return True

    def read(self, n=-1):
        size = next(self.sizes)
        chunk = self.data[self.pos:self.pos + size]
        self.pos += len(chunk)
        return chunk


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(xml_text.filter(bool), xml_text, st.booleans(),
                          st.lists(st.tuples(xml_text, xml_text), max_size=3)), max_size=6),
       st.booleans(), st.booleans(), st.integers(1, 97),
       st.sampled_from(["", "<autn:entry>", "\r\n", "<entry a='1'>", "&#13;", "<![CDATA[x]]>", "<!-- c -->"]),
       st.integers(0, 5))
def test_the_entry_fast_path_matches_the_reference_at_any_cut(rows, imagestatus, metadata, size, twist, where):
    """Entries read straight from the bytes (Media Server's own shape) or through the tree
    (any other shape, from the first odd one on): the same parts as the reference reader,
    in the same order, however the bytes are cut into chunks."""
    entries = [EntryRow(i + 1, i, ident, label, has_data, 0, None, None, None, None, len(meta), 0, tuple(meta))
               for i, (ident, label, has_data, meta) in enumerate(rows)]
    text = "".join(writer.listing([entries], imagestatus=imagestatus, metadata=metadata))
    if twist and entries:
        # Bend the shape of one entry: a prefix (declared), an attribute, CDATA, a comment, a raw CR.
        marker = "<identifier>"
        at = -1
        for _ in range(where % len(entries) + 1):
            at = text.find(marker, at + 1)
        if twist == "<autn:entry>":
            head = text.rfind("<entry>", 0, at)
            close = text.find("</entry>", at)
            text = text[:head] + "<autn:entry>" + text[head + 7:close] + "</autn:entry>" + text[close + 8:]
        elif twist == "<entry a='1'>":
            head = text.rfind("<entry>", 0, at)
            text = text[:head] + twist + text[head + 7:]
        else:
            text = text[:at + len(marker)] + twist + text[at + len(marker):]
    data = text.encode()
    fast = [p if not isinstance(p, ListedEntry) else p.identifier + repr((p.counters, p.images, p.metadata))
            for p in iter_response(_Trickle(data, itertools.cycle([size, size * 7 + 1, 3])))]
    _, reference = _both_readers(data)
    assert fast == reference


def test_the_fast_path_refuses_an_entity_it_does_not_know_and_a_cut_entry():
    page = "".join(writer.listing([[EntryRow(1, 1, "a", "b", True, 0, None, None, None, None, 0, 0, ())]],
                                  imagestatus=True, metadata=True))
    with pytest.raises(ResponseUnreadable, match="undefined entity"):
        list(iter_response(page.replace("<identifier>a", "<identifier>&bogus;a").encode()))
    cut = page.encode()[: page.index("</entry>") + 3]
    with pytest.raises(ResponseUnreadable, match="truncated"):
        list(iter_response(cut))


def _strict_outcome(read):
    """Parts with their lines, or the refusal's reason, line and column."""
    try:
        return [p if not isinstance(p, ListedEntry) else (p.identifier, p.counters, p.images, p.metadata, p.line)
                for p in read()]
    except ResponseUnreadable as exc:
        # A text over its cap is named where the parser stood when the count passed the
        # cap, which hangs on how many bytes it was given at once: the line, not the column.
        return (exc.reason, exc.line, None if "text is longer" in exc.reason else exc.column)


@example(rows=[("0", "", False, [])], imagestatus=False, metadata=False, size=74, twist="", where=0,
         newline="\r\n")  # a CR LF cut between two chunks before <responsedata> (found by this test)
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(xml_text.filter(bool), xml_text, st.booleans(),
                          st.lists(st.tuples(xml_text, xml_text), max_size=3)), max_size=6),
       st.booleans(), st.booleans(), st.integers(1, 97),
       st.sampled_from(["", "<autn:entry>", "\r\n", "<entry a='1'>", "&#13;", "<![CDATA[x]]>", "<!-- c -->",
                        "<numimages>2", "<status>failed", "<hasimagedata>TRUE", "<extra/>", "x" * 5000,
                        " " * 5000, "&bogus;", "<", "\x01", "cut"]),
       st.integers(0, 5), st.sampled_from(["\n", "", "\r\n", "\r"]))
def test_the_strict_reading_from_the_bytes_matches_the_strict_reference(rows, imagestatus, metadata, size, twist,
                                                                       where, newline):
    """The import's reading (entries in Media Server's own shape read from the bytes) gives
    the same parts, with the same lines, and the same refusals at the same line and column
    as the strict reference reader, however the document is bent, laid out or cut."""
    entries = [EntryRow(i + 1, i, ident, label, has_data, 0, None, None, None, None, len(meta), 0, tuple(meta))
               for i, (ident, label, has_data, meta) in enumerate(rows)]
    text = "".join(writer.listing([entries], imagestatus=imagestatus, metadata=metadata))
    text = text.replace("\n", newline)
    if twist and entries:
        marker = "<identifier>"
        at = -1
        for _ in range(where % len(entries) + 1):
            at = text.find(marker, at + 1)
        if twist == "cut":
            text = text[:at + 3]
        elif twist == "<autn:entry>":
            head = text.rfind("<entry>", 0, at)
            close = text.find("</entry>", at)
            text = text[:head] + "<autn:entry>" + text[head + 7:close] + "</autn:entry>" + text[close + 8:]
        elif twist == "<entry a='1'>":
            head = text.rfind("<entry>", 0, at)
            text = text[:head] + twist + text[head + 7:]
        elif twist.startswith("<") and len(twist) > 1 and not twist.startswith(("<!", "<extra")):
            tag = twist[1:].split(">")[0]
            found = text.find(f"<{tag}>", at)
            if found >= 0:
                close = text.find("<", found + 1)
                text = text[:found] + twist + text[close:]
        else:
            text = text[:at + len(marker)] + twist + text[at + len(marker):]
    data = text.encode()
    # Both fed the same chunks: where a text passes its cap depends on where the chunks end.
    ours = _strict_outcome(lambda: iter_response(_Trickle(data, itertools.cycle([size, size * 7 + 1, 3])),
                                                 what="X", strict=True, document="file"))
    reference = _strict_outcome(lambda: reader._iter_target(_Trickle(data, itertools.cycle([size, size * 7 + 1, 3])),
                                                            "X", True, "file"))
    assert ours == reference


@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from("&<>\r\t\n\x00\x1f\x7f\ufffe\uffff\ud800"))))
@example("\x7f")
@example("\r")
@example("a&b")
@example("\x1f")
@example("\ud800")
@settings(max_examples=500)
def test_the_writers_fast_check_agrees_with_the_rule(text):
    """`is_plain` (one C pass for ASCII, a regex otherwise) says exactly: nothing to escape
    and nothing XML 1.0 forbids, so the text is written as it is."""
    rule = not any(c in "&<>\r" for c in text) and first_bad_xml_char(text) is None
    assert writer.is_plain(text) is rule
    if rule:
        assert writer.xml_text(text) == text
    elif first_bad_xml_char(text) is None:
        assert writer.xml_text(text) == text.replace("&", "&amp;").replace("<", "&lt;").replace(
            ">", "&gt;").replace("\r", "&#13;")
