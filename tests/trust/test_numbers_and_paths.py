"""Issue 10 item 4: only ASCII digits are numbers, every number fits 64 bits, and paths
with NUL or lone surrogates are refused naming the parameter, never an exception."""

import json

import pytest

from app.aci.actions import handle
from app.cli import main
from app.domain import HashlensError, whole_number
from app.exports.importer import ImportOptions, import_file
from app.exports.readers import ImportRefused
from app.services import actions

from tests.exports.conftest import store_digest


@pytest.fixture
def db_store(sqlite_store):
    actions.create_database(sqlite_store, "db")
    return sqlite_store


@pytest.mark.parametrize("request_text, parameter", [
    ("action=ListImageHashes&database=db&start=²", "start"),
    ("action=ListImageHashes&database=db&start=%C2%B2", "start"),
    ("action=ListImageHashes&database=db&start=٣", "start"),
    ("action=ListImageHashes&database=db&maxresults=" + "9" * 5000, "maxresults"),
    ("action=ListImageHashes&database=db&start=9223372036854775808", "start"),
    ("action=ListImageHashes&database=db&start=1_000", "start"),
    ("action=TrainImageHash&database=db&imagepath=/tmp/a%00b", "imagepath"),
    ("action=TrainImageHash&database=db&imagepath=/tmp/\ud800", "imagepath"),
    ("action=RemoveImageHash&database=db&identifier=\ud800", "identifier"),
    ("action=ExportImageHashDatabase&database=db&dbpath=/tmp/x%00y", "dbpath"),
    ("action=ImportImageHashDatabase&dbpath=\udcff\ud800", "dbpath"),
])
def test_aci_refuses_naming_the_parameter(db_store, request_text, parameter):
    answer = handle(db_store, request_text)
    text = answer.text()
    assert not answer.ok and answer.error.parameter == parameter
    assert "<response>ERROR</response>" in text and f"'{parameter}'" in text


def test_arabic_indic_digit_is_not_read_as_three(db_store):
    # Before the fix start=٣ was silently start=3.
    assert not handle(db_store, "action=ListImageHashes&database=db&start=٣").ok


@pytest.mark.parametrize("text", ["0", "1", "0009", "9223372036854775807", " 42 "])
def test_ascii_whole_numbers_are_read(text):
    assert whole_number("n", text, minimum=0) == int(text)


@pytest.mark.parametrize("flag, value", [("--start", "9223372036854775808"), ("--start", "٣"),
                                         ("--maxresults", "²"), ("--start", "9" * 5000)])
def test_cli_number_is_a_one_line_usage_error(sqlite_url, capsys, flag, value):
    code = main(["--store", sqlite_url, "list", "db", flag, value])
    err = capsys.readouterr().err
    assert code == 2
    assert flag in err and "Traceback" not in err and len(err.splitlines()) <= 3


@pytest.mark.parametrize("name, text", [
    ("a.csv", "identifier,phash,width\nx,00000000000000ff,²\n"),
    ("b.csv", "identifier,phash,height\nx,00000000000000ff,٣\n"),
    ("c.csv", "identifier,phash,byte_size\nx,00000000000000ff,99999999999999999999\n"),
    ("d.ndjson", json.dumps({"identifier": "x", "phash": "00000000000000ff", "width": 2**64}) + "\n"),
    ("e.ndjson", '{"identifier":"x","phash":"00000000000000ff","width":' + "9" * 5000 + "}\n"),
    ("f.ndjson", json.dumps({"identifier": "x", "phash": "00000000000000ff", "position": -1}) + "\n"),
])
def test_import_numbers_are_refused_by_name(db_store, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    before = store_digest(db_store)
    with pytest.raises(ImportRefused) as caught:
        import_file(db_store, path, "db", ImportOptions(csv_dialect="raw"))
    assert "Nothing was imported" in str(caught.value)
    assert store_digest(db_store) == before


def test_train_service_refuses_an_impossible_path(db_store):
    with pytest.raises(HashlensError):
        actions.train_image(db_store, "db", path="/tmp/a\0b")
