"""Every ACI action and its error cases, on SQLite and the local PostgreSQL and MariaDB;
and the same again over HTTP against a running `hashlens serve` (GET, POST form and the
JSON form) on SQLite and PostgreSQL, through the `transport` fixture."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

from app.aci.actions import handle
from app.domain import ListingQuery
from tests.serve.client import HttpAci, start

_send = None  # the transport of the running test: (store, request) -> (ok, xml text)


def _direct(store, request: str) -> tuple[bool, str]:
    answer = handle(store, request)
    return answer.ok, answer.text()


@pytest.fixture(autouse=True, params=["direct", "http-get", "http-post", "http-json"])
def transport(request, store_url, store, tmp_path):
    """Run each test directly through the dispatcher, then over HTTP (on SQLite and
    PostgreSQL) against a server on the same store; paths are allowed everywhere here,
    `tests/serve` tests the --allow-dir refusals."""
    global _send
    if request.param == "direct":
        _send = _direct
        yield request.param
        return
    if store_url.startswith("mysql"):
        pytest.skip("the HTTP runs use SQLite and PostgreSQL")
    server = start(store_url, tmp_path, allow_dirs=("/",))
    client = HttpAci(server, request.param.removeprefix("http-"))
    _send = lambda store, text: client(text)  # noqa: E731
    try:
        yield request.param
    finally:
        server.stop()
        _send = None


class _Answer:
    def __init__(self, ok: bool):
        self.ok = ok


def aci(store, request: str):
    ok_flag, text = _send(store, request)
    root = ET.fromstring(text)
    return _Answer(ok_flag), root, text


def ok(store, request: str) -> ET.Element:
    answer, root, text = aci(store, request)
    assert answer.ok, text
    assert root.findtext("response") == "SUCCESS"
    return root


def err(store, request: str, code: str, fragment: str = "") -> ET.Element:
    answer, root, text = aci(store, request)
    assert not answer.ok
    assert root.findtext("response") == "ERROR", text
    error = root.find("responsedata/error")
    assert [c.tag for c in error] == [
        "errorid", "rawerrorid", "errorstring", "errordescription", "errorcode", "errortime"
    ]
    assert error.findtext("errorcode") == code, text
    assert fragment in error.findtext("errordescription"), text
    assert "Traceback" not in text
    return error


def b64(data: bytes) -> str:
    return quote(base64.b64encode(data).decode(), safe="")


def train(store, db, image, identifier=None, label=None, metadata=None) -> str:
    req = f"action=TrainImageHash&database={quote(db)}&imagedata={b64(image)}"
    if identifier is not None:
        req += f"&identifier={quote(identifier)}"
    if label is not None:
        req += f"&imagelabel={quote(label)}"
    if metadata is not None:
        req += f"&metadata={quote(metadata)}"
    return ok(store, req).findtext("responsedata/identifier")


def identifiers(root) -> list[str]:
    return [e.findtext("identifier") for e in root.findall("responsedata/entry")]


@pytest.fixture
def db(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=ImageHashes")
    for i in range(6):
        train(store, "ImageHashes", image_bytes(i), identifier=f"id{i}", label=f"image{i}",
              metadata=f"importance:high,n:{i}")
    return store


def test_seed_example_has_the_seed_structure(db):
    root = ok(db, "/action=ListImageHashes&database=ImageHashes&imagestatus=TRUE&metadata=TRUE&start=1&maxresults=10")
    assert root.tag == "autnresponse"
    assert [c.tag for c in root] == ["action", "response", "responsedata"]
    assert root.findtext("action") == "LISTIMAGEHASHES"
    entries = root.findall("responsedata/entry")
    assert len(entries) == 6
    first = entries[0]
    assert [c.tag for c in first] == [
        "identifier", "numimages", "numtrained", "numfailed", "numuntrained", "images", "metadata"
    ]
    assert [first.findtext(t) for t in ("numimages", "numtrained", "numfailed", "numuntrained")] == ["1", "1", "0", "0"]
    image = first.find("images/image")
    assert [c.tag for c in image] == ["label", "status", "hasimagedata"]
    assert (image.findtext("label"), image.findtext("status"), image.findtext("hasimagedata")) == ("image0", "trained", "true")
    items = [(i.findtext("key"), i.findtext("value")) for i in first.findall("metadata/item")]
    assert items == [("importance", "high"), ("n", "0")]


def test_plain_listing_has_no_image_or_metadata(db):
    root = ok(db, "action=ListImageHashes&database=ImageHashes")
    entry = root.find("responsedata/entry")
    assert [c.tag for c in entry] == ["identifier", "numimages", "numtrained", "numfailed", "numuntrained"]
    assert identifiers(root) == [f"id{i}" for i in range(6)]


def test_window_start_and_maxresults(db):
    assert identifiers(ok(db, "action=ListImageHashes&database=ImageHashes&start=2&maxresults=3")) == ["id1", "id2", "id3"]
    assert identifiers(ok(db, "action=ListImageHashes&database=ImageHashes&start=5")) == ["id4", "id5"]
    past = ok(db, "action=ListImageHashes&database=ImageHashes&start=99")
    assert identifiers(past) == [] and past.find("responsedata") is not None


def test_identifier_filter_keeps_database_order_and_ignores_unknown(db):
    root = ok(db, "action=ListImageHashes&database=ImageHashes&identifier=id4,nope,id1,id4")
    assert identifiers(root) == ["id1", "id4"]
    root = ok(db, "action=ListImageHashes&database=ImageHashes&identifier=id5,id3,id1&start=2&maxresults=1")
    assert identifiers(root) == ["id3"]


def test_names_and_booleans_ignore_case_but_data_does_not(db):
    root = ok(db, "A=listIMAGEhashes&DataBase=ImageHashes&ImageStatus=Yes&maxresults=1")
    assert root.findtext("action") == "LISTIMAGEHASHES"
    assert root.find("responsedata/entry/images") is not None
    err(db, "action=ListImageHashes&database=imagehashes", "ERRORPARAMINVALID", "'database=imagehashes' does not exist")
    for value in ("on", "y", "1", "TRUE", "yes"):
        assert ok(db, f"action=ListImageHashes&database=ImageHashes&metadata={value}&maxresults=1").find(
            "responsedata/entry/metadata") is not None
    for value in ("off", "n", "0", "FALSE", "no"):
        assert ok(db, f"action=ListImageHashes&database=ImageHashes&metadata={value}&maxresults=1").find(
            "responsedata/entry/metadata") is None


@pytest.mark.parametrize("request_text, code, fragment", [
    ("action=ListImageHashes", "ERRORPARAMNOTSUPPLIED", "'database'"),
    ("action=ListImageHashes&database=Missing", "ERRORPARAMINVALID", "'database=Missing' does not exist"),
    ("action=ListImageHashes&database=ImageHashes&start=0", "ERRORPARAMINVALID", "start"),
    ("action=ListImageHashes&database=ImageHashes&start=-1", "ERRORPARAMINVALID", "start"),
    ("action=ListImageHashes&database=ImageHashes&start=abc", "ERRORPARAMINVALID", "start"),
    ("action=ListImageHashes&database=ImageHashes&start=9223372036854775808", "ERRORPARAMINVALID", "start"),
    ("action=ListImageHashes&database=ImageHashes&maxresults=0", "ERRORPARAMINVALID", "maxresults"),
    ("action=ListImageHashes&database=ImageHashes&maxresults=1.5", "ERRORPARAMINVALID", "maxresults"),
    ("action=ListImageHashes&database=ImageHashes&imagestatus=maybe", "ERRORPARAMINVALID", "imagestatus"),
    ("action=ListImageHashes&database=ImageHashes&metadata=2", "ERRORPARAMINVALID", "metadata"),
    ("action=ListImageHashes&database=ImageHashes&start=1&start=2", "ERRORPARAMINVALID", "twice"),
    ("action=NoSuchAction", "ERRORNOTIMPLEMENTED", "NoSuchAction"),
    ("database=ImageHashes", "ERRORPARAMNOTSUPPLIED", "action"),
    ("action=ListImageHashes&database=%FF", "ERRORPARAMINVALID", "UTF-8"),
    ("action=ListImageHashes&database=a%01b", "ERRORPARAMINVALID", "U+0001"),
    ("action=ListImageHashes&database=a%00b", "ERRORPARAMINVALID", "U+0000"),
    ("action=ListImageHashes&database=ImageHashes&identifier=\"a", "ERRORPARAMINVALID", "never closed"),
])
def test_listing_errors(db, request_text, code, fragment):
    err(db, request_text, code, fragment)


def test_error_ids_are_stable(db):
    error = err(db, "action=ListImageHashes&database=Missing", "ERRORPARAMINVALID")
    assert error.findtext("errorid") == "HASHLENSLISTIMAGEHASHES3"
    assert error.findtext("rawerrorid") == "0x3"
    import re

    assert re.fullmatch(r"\d\d [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d", error.findtext("errortime"))


def test_unknown_parameters_are_ignored(db):
    assert identifiers(ok(db, "action=ListImageHashes&database=ImageHashes&maxresults=1&colour=blue")) == ["id0"]


def test_awkward_text_round_trips_through_xml(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=" + quote("Bases <&> \"'é"))
    ident = "<id>&\"'\té ü 中 😀"
    label = "l<&>\"' \r\nx"
    train(store, "Bases <&> \"'é", image_bytes(1), identifier=ident, label=label,
          metadata='"k,:\\"":"v<&>\'\r"')
    root = ok(store, "action=ListImageHashes&database=" + quote("Bases <&> \"'é") + "&imagestatus=true&metadata=true")
    entry = root.find("responsedata/entry")
    assert entry.findtext("identifier") == ident
    assert entry.findtext("images/image/label") == label
    assert (entry.findtext("metadata/item/key"), entry.findtext("metadata/item/value")) == ('k,:"', "v<&>'\r")


def test_254_byte_limit_counts_bytes(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=D")
    fits = "é" * 127  # 254 bytes
    too_long = "é" * 128  # 256 bytes, only 128 characters
    train(store, "D", image_bytes(1), identifier=fits)
    error = err(store, f"action=TrainImageHash&database=D&identifier={quote(too_long)}&imagedata={b64(image_bytes(2))}",
                "ERRORPARAMINVALID", "256 bytes")
    assert "254" in error.findtext("errordescription")
    err(store, "action=TrainImageHash&database=D&identifier=" + quote("x" * 251 + "😀") + f"&imagedata={b64(image_bytes(3))}",
        "ERRORPARAMINVALID", "255 bytes")
    err(store, "action=CreateImageHashDatabase&database=" + "d" * 255, "ERRORPARAMINVALID", "255 bytes")
    assert identifiers(ok(store, "action=ListImageHashes&database=D")) == [fits]


def test_characters_xml_cannot_carry_are_refused(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=D")
    for bad in ("%01", "%EF%BF%BE", "%0B", "%1F"):
        err(store, f"action=TrainImageHash&database=D&identifier=a{bad}b&imagedata={b64(image_bytes(1))}",
            "ERRORPARAMINVALID", "identifier")
    err(store, f"action=TrainImageHash&database=D&imagelabel=%07&imagedata={b64(image_bytes(1))}",
        "ERRORPARAMINVALID", "imagelabel")
    assert identifiers(ok(store, "action=ListImageHashes&database=D")) == []


def test_train_generates_identifier_and_label(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=D")
    ident = train(store, "D", image_bytes(1))
    assert len(ident) == 32 and all(c in "0123456789abcdef" for c in ident)
    root = ok(store, "action=ListImageHashes&database=D&imagestatus=true")
    assert root.findtext("responsedata/entry/images/image/label") == ident


def test_train_from_imagepath(store, image_bytes, tmp_path):
    ok(store, "action=CreateImageHashDatabase&database=D")
    path = tmp_path / "a b#?.png"
    path.write_bytes(image_bytes(3))
    root = ok(store, f"action=TrainImageHash&database=D&identifier=x&imagepath={quote(str(path))}")
    assert root.findtext("responsedata/identifier") == "x"


@pytest.mark.parametrize("request_suffix, code, fragment", [
    ("", "ERRORPARAMNOTSUPPLIED", "imagepath"),
    ("&imagedata=!!!notbase64", "ERRORPARAMINVALID", "base64"),
    ("&imagedata=" + quote(base64.b64encode(b"not an image").decode()), "ERRORIMAGEINVALID", "not an image"),
    ("&imagepath=/no/such/file.png", "ERRORIMAGEINVALID", "no such file"),
    ("&imagepath=/tmp", "ERRORIMAGEINVALID", "not a regular file"),
    ("&imagedata=eA==&imagepath=/tmp/x.png", "ERRORPARAMINVALID", "not both"),
    ("&imagedata=eA==&metadata=" + quote("novalue"), "ERRORPARAMINVALID", "key:value"),
])
def test_train_errors_add_nothing(store, request_suffix, code, fragment):
    ok(store, "action=CreateImageHashDatabase&database=D")
    err(store, "action=TrainImageHash&database=D" + request_suffix, code, fragment)
    assert identifiers(ok(store, "action=ListImageHashes&database=D")) == []


def test_train_refuses_truncated_image_and_existing_identifier(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=D")
    data = image_bytes(1, size=(300, 300), fmt="JPEG")
    err(store, f"action=TrainImageHash&database=D&imagedata={b64(data[: len(data) // 2])}", "ERRORIMAGEINVALID", "truncated")
    train(store, "D", image_bytes(2), identifier="same")
    err(store, f"action=TrainImageHash&database=D&identifier=same&imagedata={b64(image_bytes(3))}",
        "ERRORPARAMINVALID", "'identifier=same' already exists")
    err(store, f"action=TrainImageHash&database=Nope&imagedata={b64(image_bytes(3))}",
        "ERRORPARAMINVALID", "'database=Nope' does not exist")
    assert identifiers(ok(store, "action=ListImageHashes&database=D")) == ["same"]


def test_remove_and_null_image_data(db):
    ok(db, "action=NullImageHashImageData&database=ImageHashes&identifier=id1")
    root = ok(db, "action=ListImageHashes&database=ImageHashes&imagestatus=true&identifier=id1")
    assert root.findtext("responsedata/entry/images/image/hasimagedata") == "false"
    ok(db, "action=RemoveImageHash&database=ImageHashes&identifier=id2")
    assert identifiers(ok(db, "action=ListImageHashes&database=ImageHashes")) == ["id0", "id1", "id3", "id4", "id5"]
    err(db, "action=RemoveImageHash&database=ImageHashes&identifier=id2", "ERRORPARAMINVALID", "id2")
    err(db, "action=NullImageHashImageData&database=ImageHashes", "ERRORPARAMNOTSUPPLIED", "identifier")


def test_rename_move_relabel(db):
    ok(db, "action=RenameImageHash&database=ImageHashes&identifier=id0&newidentifier=first")
    err(db, "action=RenameImageHash&database=ImageHashes&identifier=first&newidentifier=id1",
        "ERRORPARAMINVALID", "'newidentifier=id1' already exists")
    ok(db, "action=CreateImageHashDatabase&database=Other")
    ok(db, "action=MoveImageHash&database=ImageHashes&identifier=id3&newdatabase=Other")
    err(db, "action=MoveImageHash&database=ImageHashes&identifier=id4&newdatabase=Nowhere",
        "ERRORPARAMINVALID", "'newdatabase=Nowhere' does not exist")
    assert identifiers(ok(db, "action=ListImageHashes&database=Other")) == ["id3"]
    assert identifiers(ok(db, "action=ListImageHashes&database=ImageHashes")) == ["first", "id1", "id2", "id4", "id5"]
    ok(db, "action=RelabelImageHashImage&database=ImageHashes&identifier=id1&imagelabel=image1&newimagelabel=cat")
    err(db, "action=RelabelImageHashImage&database=ImageHashes&identifier=id1&imagelabel=image1&newimagelabel=dog",
        "ERRORPARAMINVALID", "'imagelabel=image1' does not exist")
    root = ok(db, "action=ListImageHashes&database=ImageHashes&identifier=id1&imagestatus=true")
    assert root.findtext("responsedata/entry/images/image/label") == "cat"


def test_metadata_actions(db):
    base = "database=ImageHashes&identifier=id0"
    ok(db, f"action=AddImageHashMetadata&{base}&key=colour&value=red")
    err(db, f"action=AddImageHashMetadata&{base}&key=colour&value=blue", "ERRORPARAMINVALID", "already exists")
    ok(db, f"action=UpdateImageHashMetadata&{base}&key=colour&newvalue=green")
    err(db, f"action=UpdateImageHashMetadata&{base}&key=size&newvalue=1", "ERRORPARAMINVALID", "'key=size' does not exist")
    ok(db, f"action=RemoveImageHashMetadata&{base}&key=importance")
    err(db, f"action=RemoveImageHashMetadata&{base}&key=importance", "ERRORPARAMINVALID", "'key=importance'")
    err(db, f"action=AddImageHashMetadata&{base}&key=x", "ERRORPARAMNOTSUPPLIED", "'value'")
    root = ok(db, "action=ListImageHashes&database=ImageHashes&identifier=id0&metadata=true")
    items = [(i.findtext("key"), i.findtext("value")) for i in root.findall("responsedata/entry/metadata/item")]
    assert items == [("n", "0"), ("colour", "green")]


def test_database_actions(store):
    ok(store, "action=CreateImageHashDatabase&database=B")
    ok(store, "action=CreateImageHashDatabase&database=A")
    err(store, "action=CreateImageHashDatabase&database=A", "ERRORPARAMINVALID", "already exists")
    err(store, "action=CreateImageHashDatabase", "ERRORPARAMNOTSUPPLIED", "database")
    names = [d.findtext("name") for d in ok(store, "action=ListImageHashDatabases").findall("responsedata/database")]
    assert names == ["A", "B"]
    ok(store, "action=RenameImageHashDatabase&database=A&newdatabase=C")
    err(store, "action=RenameImageHashDatabase&database=C&newdatabase=B", "ERRORPARAMINVALID", "already exists")
    ok(store, "action=RemoveImageHashDatabase&database=B")
    err(store, "action=RemoveImageHashDatabase&database=B", "ERRORPARAMINVALID", "'database=B' does not exist")
    names = [d.findtext("name") for d in ok(store, "action=ListImageHashDatabases").findall("responsedata/database")]
    assert names == ["C"]
    ok(store, "action=SyncImageHashes")
    ok(store, "action=SyncImageHashes&database=C")
    err(store, "action=SyncImageHashes&database=Z", "ERRORPARAMINVALID", "does not exist")


def test_names_differing_by_case_accent_or_trailing_space_are_distinct(store, image_bytes):
    """Collation traps on MariaDB/MySQL (reliability S5): names compare byte for byte."""
    ok(store, "action=CreateImageHashDatabase&database=D")
    for ident in ("Café", "cafe", "Cafe", "cafe ", "CAFÉ"):
        train(store, "D", image_bytes(len(ident)), identifier=ident)
    assert identifiers(ok(store, "action=ListImageHashes&database=D")) == ["Café", "cafe", "Cafe", "cafe ", "CAFÉ"]
    assert identifiers(ok(store, "action=ListImageHashes&database=D&identifier=" + quote("cafe "))) == ["cafe "]
    ok(store, "action=CreateImageHashDatabase&database=d")


def test_changes_are_journalled(db):
    ok(db, "action=AddImageHashMetadata&database=ImageHashes&identifier=id0&key=k&value=v")
    last = db.history()[-1]
    assert (last.action, last.database, last.identifier, last.params) == (
        "AddImageHashMetadata", "ImageHashes", "id0", {"key": "k", "value": "v"})
    before = len(db.history())
    err(db, "action=AddImageHashMetadata&database=ImageHashes&identifier=id0&key=k&value=v", "ERRORPARAMINVALID")
    assert len(db.history()) == before


def test_training_is_atomic_when_metadata_is_refused(store, image_bytes):
    ok(store, "action=CreateImageHashDatabase&database=D")
    err(store, f"action=TrainImageHash&database=D&identifier=x&imagedata={b64(image_bytes(1))}"
               "&metadata=" + quote("a:1,a:2"), "ERRORPARAMINVALID", "given twice")
    err(store, f"action=TrainImageHash&database=D&identifier=x&imagedata={b64(image_bytes(1))}"
               "&metadata=" + quote("a:" + "v" * 255), "ERRORPARAMINVALID", "255 bytes")
    assert identifiers(ok(store, "action=ListImageHashes&database=D")) == []
    assert store.count(ListingQuery("D")).value == 0
    assert [j.action for j in store.history()] == ["CreateImageHashDatabase"]
