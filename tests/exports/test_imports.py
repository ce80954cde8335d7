"""Imports: Media Server responses, duplicates policy, and malformed or hostile files,
each refused with its line and reason while the store stays exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import Failure, Filter, FilterOp, HashlensError, ListingQuery
from app.exports import importer, manifest
from app.exports.importer import ImportOptions, detect_format, import_file
from app.exports.readers import ImportRefused
from app.services import actions
from app.store import Store

from tests.seeds import LIST_IMAGE_HASHES_SEED

from .conftest import add_plain, store_digest

ROOT = Path(__file__).resolve().parents[2]
SEED = LIST_IMAGE_HASHES_SEED.replace("  </responsedata>", """    <entry>
      <identifier>second</identifier>
      <numimages>1</numimages>
      <numtrained>1</numtrained>
      <numfailed>0</numfailed>
      <numuntrained>0</numuntrained>
    </entry>
  </responsedata>""") + "\n"


def _rows(store, database):
    return [r for b in store.iter_listing(ListingQuery(database, imagestatus=True, metadata=True)) for r in b]


def _write(tmp_path, name, content) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_media_server_response_imports_with_pHashes_not_known(sqlite_store, tmp_path):
    """No flag: a ListImageHashes response's entries get NULL pHashes (never a placeholder),
    keep their declared hasimagedata, and the report counts them (issue 11 item 3)."""
    path = _write(tmp_path, "ms.xml", SEED)
    report = import_file(sqlite_store, path, "Imported")
    assert report.added == 2 and report.created_database and report.no_phash_count == 2
    assert report.images_not_in_file == 1
    rows = _rows(sqlite_store, "Imported")
    assert [(r.identifier, r.label, r.has_image_data, r.declared_image_data, r.phash, r.metadata) for r in rows] == [
        ("6d8e53fd92e601a4b8948e1b9397e381", "image1", False, True, None, (("importance", "high"),)),
        ("second", "second", False, None, None, ()),  # no imagestatus: the label defaults to the identifier
    ]
    assert [r.phash_text for r in rows] == ["not known", "not known"]
    assert [r.listed_image_data for r in rows] == [True, False]
    journal = sqlite_store.history()[-1]
    assert journal.action == "ImportImageHashes" and journal.database == "Imported"
    assert journal.params["no_phash"] == 2
    text = "\n".join(report.lines())
    assert "no image is invented" in text and "2 entries have no pHash (not known" in text
    # Two entries whose pHash is not known are not duplicates of each other.
    assert sqlite_store.count(ListingQuery("Imported", filters=(Filter(FilterOp.PHASH_WITHIN, 0, distance=64),))).value == 0


def test_xml_with_declaration_bom_and_namespace_prefix(sqlite_store, tmp_path):
    text = '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n' + SEED.replace(
        "<autnresponse>", '<autnresponse xmlns:autn="http://schemas.autonomy.com/aci/">')
    report = import_file(sqlite_store, _write(tmp_path, "ms.xml", text), "D", ImportOptions())
    assert report.added == 2


@pytest.fixture
def existing(sqlite_store):
    add_plain(sqlite_store, "D", [("a", "old a", 0xA, [("k", "old")], 1), ("b", "old b", 0xB, [], 2)])
    return sqlite_store


def _ndjson(*objects) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


NEW = [{"identifier": "b", "label": "new b", "phash": "000000000000000f"},
       {"identifier": "c", "label": "new c", "phash": "00000000000000cc", "metadata": {"x": "y"}}]


def test_duplicates_abort_by_default_and_list_them(existing, tmp_path):
    before = store_digest(existing)
    path = _write(tmp_path, "f.ndjson", _ndjson(*NEW, {"identifier": "c", "phash": "01"}))
    with pytest.raises(HashlensError) as err:
        import_file(existing, path, "D")
    text = err.value.description
    assert err.value.failure is Failure.IDENTIFIER_EXISTS
    assert "2 entries" in text and "line 1: 'b'" in text and "line 3: 'c'" in text and "Nothing was imported" in text
    assert store_digest(existing) == before


def test_duplicates_skip(existing, tmp_path):
    report = import_file(existing, _write(tmp_path, "f.ndjson", _ndjson(*NEW)), "D", ImportOptions(on_duplicate="skip"))
    assert report.added == 1 and report.skipped == ["b"]
    assert [(r.identifier, r.label) for r in _rows(existing, "D")] == [("a", "old a"), ("b", "old b"), ("c", "new c")]


def test_duplicates_replace_keeps_what_the_file_does_not_carry(existing, tmp_path, image_bytes):
    from app.services import actions

    actions.train_image(existing, "D", data=image_bytes(3), identifier="img", label="picture", metadata=[("m", "1")])
    img = next(r for r in _rows(existing, "D") if r.identifier == "img")
    content = _ndjson(
        {"identifier": "a", "label": "new a"},  # no pHash, no metadata: both kept
        {"identifier": "img", "metadata": {"m": "2"}},  # same pHash: the image stays
        {"identifier": "b", "phash": "00000000000000bb", "metadata": {}},
    )
    report = import_file(existing, _write(tmp_path, "f.ndjson", content), "D", ImportOptions(on_duplicate="replace"))
    assert report.replaced_count == 3 and report.added == 0
    rows = {r.identifier: r for r in _rows(existing, "D")}
    assert (rows["a"].label, rows["a"].phash, rows["a"].metadata, rows["a"].trained_at) == ("new a", 0xA, (("k", "old"),), 1)
    assert rows["img"].has_image_data and rows["img"].phash == img.phash and rows["img"].metadata == (("m", "2"),)
    assert existing.image("D", "img").data == image_bytes(3)
    assert rows["b"].phash == 0xBB and rows["b"].label == "old b" and rows["b"].metadata == ()


def test_replace_with_another_phash_drops_the_mismatched_image(existing, tmp_path, image_bytes):
    from app.services import actions

    actions.train_image(existing, "D", data=image_bytes(3), identifier="img", label="picture")
    path = _write(tmp_path, "f.ndjson", _ndjson({"identifier": "img", "phash": "0000000000000001"}))
    import_file(existing, path, "D", ImportOptions(on_duplicate="replace"))
    row = next(r for r in _rows(existing, "D") if r.identifier == "img")
    assert row.phash == 1 and not row.has_image_data


def test_import_into_new_database_and_csv_dialect_from_manifest(sqlite_store, tmp_path):
    path = _write(tmp_path, "raw.csv", "identifier,phash,label\r\n'quoted,0000000000000001,=1+1\r\n")
    # Without a manifest the default is the spreadsheet-safe dialect, which cannot hold '=1+1'.
    with pytest.raises(ImportRefused, match="spreadsheet-safe"):
        import_file(sqlite_store, path, "N")
    # The manifest is applied only when it records this very file's size and SHA-256.
    sha, size = manifest.sha256_file(path)
    _write(tmp_path, "raw.csv.manifest.json", json.dumps({
        "kind": manifest.MANIFEST_KIND, "file": "raw.csv", "sha256": sha, "bytes": size,
        "options": {"csv_dialect": "raw"}}))
    report = import_file(sqlite_store, path, "N")
    assert report.format == "csv, raw dialect"
    row = _rows(sqlite_store, "N")[0]
    assert (row.identifier, row.label) == ("'quoted", "=1+1")


def test_detect_format(tmp_path):
    cases = {"a.xml": SEED, "a.json": '{"format":"hashlens-listing","version":1,"entries":[\n]}\n',
             "b.json": '[\n{"identifier": "x"}\n]', "a.ndjson": '{"identifier": "x"}\n',
             "a.csv": "identifier,phash\r\n", "a.tsv": "identifier\tphash\r\n", "b.txt": "identifier\tphash\r\n",
             "d.hldb": '{"format":"hashlens-database","version":1}\n'}
    expected = {"a.xml": "xml", "a.json": "json", "b.json": "json", "a.ndjson": "ndjson", "a.csv": "csv",
                "a.tsv": "tsv", "b.txt": "tsv", "d.hldb": "database"}
    for name, content in cases.items():
        assert detect_format(_write(tmp_path, name, content)) == expected[name], name


# -- hostile and malformed files ---------------------------------------------------------------------

_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<autnresponse><action>LISTIMAGEHASHES</action><response>SUCCESS</response><responsedata><entry>
<identifier>&lol3;</identifier></entry></responsedata></autnresponse>"""


def _entry_xml(inner: str) -> str:
    return ("<autnresponse><action>LISTIMAGEHASHES</action><response>SUCCESS</response><responsedata>"
            f"<entry>{inner}</entry></responsedata></autnresponse>")


HOSTILE = [
    # (file name, content, fragment of the message, line or None)
    ("laughs.xml", _LAUGHS, "DTDs) are not allowed", 2),
    ("quadratic.xml", '<!DOCTYPE a [<!ENTITY a "' + "x" * 10000 + '">]>' + _entry_xml("&a;&a;&a;"),
     "DTDs) are not allowed", 1),
    ("param.xml", '<!DOCTYPE a [<!ENTITY % p "x"> %p;]><autnresponse/>', "DTDs) are not allowed", 1),
    ("xxe_file.xml", '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + _entry_xml("<identifier>&x;</identifier>"),
     "DTDs) are not allowed", 1),
    ("xxe_http.xml", '<!DOCTYPE a [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>' + _entry_xml("<identifier>&x;</identifier>"),
     "DTDs) are not allowed", 1),
    ("dtd.xml", '<!DOCTYPE autnresponse SYSTEM "http://127.0.0.1:9/x.dtd">' + _entry_xml(""), "DTDs) are not allowed", 1),
    ("undeclared.xml", _entry_xml("<identifier>&x;</identifier>"), "not well-formed (undefined entity", 1),
    ("bad_utf8.xml", b"<autnresponse>\n<action>LIST\xff</action></autnresponse>", "not well-formed", 2),
    ("latin1.xml", '<?xml version="1.0" encoding="ISO-8859-1"?><autnresponse/>', "only UTF-8 is accepted", 1),
    ("utf16.xml", '<autnresponse/>'.encode("utf-16"), "only UTF-8 is accepted", 1),
    ("xml11.xml", '<?xml version="1.1"?><autnresponse/>', "only XML 1.0 is accepted", 1),
    ("charref.xml", _entry_xml("<identifier>a&#1;b</identifier>"), "not well-formed", 1),
    ("wrong_root.xml", "<html><body/></html>", "the root element is <html>", 1),
    ("error.xml", "<autnresponse><action>LISTIMAGEHASHES</action><response>ERROR</response><responsedata><error>"
                  "<errorid>X</errorid></error></responsedata></autnresponse>",
     "this file is an error response, not a listing", 1),
    ("other_action.xml", "<autnresponse><action>GETSTATUS</action></autnresponse>", "not to ListImageHashes", 1),
    ("no_identifier.xml", _entry_xml("<numimages>1</numimages>"), "has no <identifier>", 1),
    ("numimages.xml", _entry_xml("<identifier>a</identifier><numimages>2</numimages>"), "<numimages> is '2'", 1),
    ("unknown.xml", _entry_xml("<identifier>a</identifier><phash>1</phash>"), "unexpected element <phash>", 1),
    ("two_ids.xml", _entry_xml("<identifier>a</identifier><identifier>b</identifier>"), "more than one <identifier>", 1),
    ("deep.xml", _entry_xml("<identifier>" + "<a>" * 50 + "</a>" * 50 + "</identifier>"), "holds text only", 1),
    ("long_text.xml", _entry_xml("<identifier>" + "x" * 100_000 + "</identifier>"), "longer than 4,096", 1),
    ("too_long_id.xml", _entry_xml("<identifier>" + "é" * 128 + "</identifier>"), "256 bytes", 1),
    ("truncated.xml", SEED[:300], "the file ends too early", 10),
    ("empty.xml", "", "the file is empty", None),
    ("no_response.xml", "<autnresponse><action>LISTIMAGEHASHES</action></autnresponse>", "no <response>", None),
    ("not_xml.xml", "<autnresponse><action>LISTIMAGEHASHES</action><response>SUCCESS</response>x<", "not well-formed", 1),
    # JSON and NDJSON (X8)
    ("nan.ndjson", '{"identifier": "a", "width": NaN}\n', "NaN is not a number JSON allows", 1),
    ("inf.ndjson", '{"identifier": "a"}\n{"identifier": "b", "width": Infinity}\n', "Infinity", 2),
    ("dupkey.ndjson", '{"identifier": "a", "identifier": "b"}\n', "appears twice", 1),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply", None),
    ("deep.ndjson", '{"identifier": "a"}\n' + "[" * 100_000 + "\n", "nested too deeply", 2),
    ("bad.ndjson", '{"identifier": "a"}\n{"identifier": "b",}\n', "invalid JSON", 2),
    ("bad_utf8.ndjson", b'{"identifier": "a"}\n{"identifier": "\xc3\x28"}\n', "not valid UTF-8", 2),
    ("type.ndjson", '{"identifier": 5}\n', "'identifier' must be text", 1),
    ("bool_width.ndjson", '{"identifier": "a", "phash": "01", "width": true}\n', "'width' must be a whole number", 1),
    ("unknown_field.ndjson", '{"identifier": "a", "evil": 1}\n', "unknown field 'evil'", 1),
    ("bad_phash.ndjson", '{"identifier": "a", "phash": "xyz"}\n', "not a pHash", 1),
    ("bad_time.ndjson", '{"identifier": "a", "phash": "01", "trained_at": "yesterday"}\n', "trained_at", 1),
    ("meta_type.ndjson", '{"identifier": "a", "phash": "01", "metadata": {"k": 1}}\n', "text value", 1),
    ("control.ndjson", '{"identifier": "a\\u0001", "phash": "01"}\n', "U+0001", 1),
    ("nul.ndjson", '{"identifier": "a", "phash": "01", "label": "x\\u0000"}\n', "U+0000", 1),
    ("empty_id.ndjson", '{"identifier": "", "phash": "01"}\n', "empty", 1),
    ("space_id.ndjson", '{"identifier": "   ", "phash": "01"}\n', "white space", 1),
    ("array.ndjson", '[1, 2]\n', "entry 1: an entry must be a JSON object", None),
    ("array_line.ndjson", '{"identifier": "a", "phash": "01"}\n[1]\n', "must be a JSON object", 2),
    ("json_trunc.json", '{"format":"hashlens-listing","version":1,"imagestatus":false,"metadata":false,"entries":[\n'
                        '{"identifier":"a","phash":"01"},\n', "truncated", None),
    ("json_comma.json", '{"format":"hashlens-listing","version":1,"imagestatus":false,"metadata":false,"entries":[\n'
                        '{"identifier":"a","phash":"01"}\n{"identifier":"b","phash":"01"}\n]}\n', "expected ']}'", 3),
    ("json_version.json", '{"format":"hashlens-listing","version":9,"entries":[\n]}\n', "version 9", 1),
    ("json_other.json", '{"format": "something", "entries": []}', "not a Hashlens listing", None),
    ("json_no_entries.json", '{"rows": []}', "unknown field 'rows'", 1),
    ("json_no_entries2.json", '{"format": "hashlens-listing",\n"rows": []}', "no 'entries' list", None),
    # CSV and TSV (X9)
    ("big_field.csv", "identifier,phash\r\n" + "x" * (17 * 1024 * 1024) + ",01\r\n", "the limit on one line", 2),
    ("nul.csv", "identifier,phash\r\na\x00b,01\r\n", "NUL", 2),
    ("semicolon.csv", "identifier;phash\r\na;01\r\n", "unknown column 'identifier;phash'", 1),
    ("cells.csv", "identifier,phash\r\na,01,extra\r\n", "3 cells; the header has 2", 2),
    ("unknown_col.csv", "identifier,phash,evil\r\n", "unknown column 'evil'", 1),
    ("no_id.csv", "phash,label\r\n01,x\r\n", "no 'identifier' column", 1),
    ("dup_col.csv", "identifier,identifier\r\n", "appears twice", 1),
    ("bad_utf8.csv", b"identifier,phash\r\nok,01\r\n\xe9t\xe9,01\r\n", "not valid UTF-8", 3),
    ("unsafe.csv", "identifier,phash\r\n=cmd,01\r\n", "not written in the spreadsheet-safe dialect", 2),
    ("bad_bool.csv", "identifier,phash,hasimagedata\r\na,01,maybe\r\n", "true or false", 2),
    ("bad_width.csv", "identifier,phash,width\r\na,01,3.5\r\n", "whole number", 2),
    ("quote.csv", 'identifier,phash\r\n"a"b,01\r\n', "malformed CSV", 2),
    ("meta_json.csv", 'identifier,phash,metadata\r\na,01,"{""k"":""v"",""k"":""w""}"\r\n', "appears twice", 2),
    ("both_meta.csv", "identifier,metadata,meta:k\r\n", "both a 'metadata' column", 1),
    ("empty.csv", "", "the file is empty", None),
    ("header_only_bom.csv", "\ufeff", "the file is empty", None),
]


@pytest.mark.parametrize("name, content, fragment, line", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_and_malformed_files_are_refused(existing, tmp_path, name, content, fragment, line):
    path = _write(tmp_path, name, content)
    before = store_digest(existing)
    with pytest.raises(HashlensError) as err:
        import_file(existing, path, "D", ImportOptions())
    text = err.value.description
    assert fragment in text, text
    assert str(path) in text and "Traceback" not in text
    if line is not None:
        assert f"line {line}" in text, text
    assert store_digest(existing) == before
    assert not existing.db.in_transaction()


def test_size_cap(existing, tmp_path):
    path = _write(tmp_path, "a.ndjson", _ndjson(*NEW))
    with pytest.raises(ImportRefused, match="the limit is 10"):
        import_file(existing, path, "D", ImportOptions(max_bytes=10))


def test_not_a_regular_file(existing, tmp_path):
    with pytest.raises(ImportRefused, match="not a regular file"):
        import_file(existing, tmp_path, "D")
    with pytest.raises(ImportRefused, match="no such file"):
        import_file(existing, tmp_path / "missing.xml", "D")


def test_a_failure_late_in_the_file_imports_nothing(existing, tmp_path):
    good = [{"identifier": f"n{i}", "phash": "01"} for i in range(500)]
    path = _write(tmp_path, "late.ndjson", _ndjson(*good, {"identifier": "bad\u0001", "phash": "01"}))
    before = store_digest(existing)
    with pytest.raises(ImportRefused, match="line 501"):
        import_file(existing, path, "New")
    assert store_digest(existing) == before and not existing.database_exists("New")


def test_cancel_imports_nothing(existing, tmp_path):
    path = _write(tmp_path, "many.ndjson", _ndjson(*[{"identifier": f"n{i}", "phash": "01"} for i in range(1000)]))
    before = store_digest(existing)
    calls = []
    with pytest.raises(HashlensError) as err:
        import_file(existing, path, "D", cancelled=lambda: calls.append(1) or len(calls) > 2)
    assert err.value.failure is Failure.CANCELLED and store_digest(existing) == before


def test_database_full_rolls_back(existing, tmp_path):
    """SQLITE_FULL part way (reliability FI2): a clear error and the store as before."""
    path = _write(tmp_path, "many.ndjson", _ndjson(*[{"identifier": f"n{i}" * 20, "phash": "01",
                                                       "metadata": {"k": "v" * 200}} for i in range(3000)]))
    before = store_digest(existing)
    pages = existing.sql.one("PRAGMA page_count")[0]
    existing.sql.exec(f"PRAGMA max_page_count = {pages + 20}")
    with pytest.raises(HashlensError) as err:
        import_file(existing, path, "D")
    existing.sql.exec("PRAGMA max_page_count = 4294967294")
    assert "full" in err.value.description and store_digest(existing) == before


# -- K2: kills during an import -------------------------------------------------------------------------

_CHILD = """
import sys
from app.store import Store
from app.exports.importer import import_file
store = Store.open(sys.argv[1])
import_file(store, sys.argv[2], "D")
"""


@pytest.mark.slow
def test_kill_during_import_is_all_or_nothing(sqlite_url, tmp_path):
    path = _write(tmp_path, "10k.ndjson", _ndjson(*[{"identifier": f"n{i}", "phash": f"{i:016x}",
                                                      "metadata": {"k": str(i)}} for i in range(10_000)]))
    store = Store.open(sqlite_url)
    add_plain(store, "D", [("a", "a", 1, [], 1)])
    before = store_digest(store)
    store.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    for n in range(1, 100, 3):  # 33 points spread over the 100 checkpoints of 10k entries
        env["HASHLENS_FAULTS"] = f"import.row={n}:kill"
        proc = subprocess.run([sys.executable, "-c", _CHILD, sqlite_url, str(path)], env=env, capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == -9, proc.stderr
        kills += 1
        store = Store.open(sqlite_url)
        try:
            assert store.sql.one("PRAGMA integrity_check")[0] == "ok"
            assert store_digest(store) == before, n
        finally:
            store.close()
    assert kills >= 30


@pytest.mark.parametrize("policy", ["skip", "replace", "abort"])
def test_a_repeat_before_a_broken_line_does_not_hide_the_broken_line(existing, tmp_path, policy):
    """The reader's refusal of line 3 is the error, whatever the policy does with the
    repeat on line 2 (the batch read so far is stored first, a repeat after what it repeats)."""
    path = _write(tmp_path, "f.ndjson", _ndjson({"identifier": "x", "phash": "01"}, {"identifier": "x", "phash": "02"})
                  + "{broken\n")
    before = store_digest(existing)
    with pytest.raises(HashlensError) as err:
        import_file(existing, path, "D", ImportOptions(on_duplicate=policy))
    assert "line 3" in err.value.description, err.value.description
    assert store_digest(existing) == before


# -- a database that holds no entries is not looked up batch by batch ------------------------------

_line = st.fixed_dictionaries(
    {"identifier": st.sampled_from("abcd"), "trained_at": st.just("2024-01-02T03:04:05.006Z")},
    optional={"label": st.sampled_from(["L", "M", "", "bad\u0001"]), "phash": st.sampled_from(["01", "ff"]),
              "metadata": st.sampled_from([{}, {"k": "v"}, {"k": "v", "j": "bad\u0002"}])},
).map(json.dumps)


def _outcome(store, path, policy):
    try:
        report = import_file(store, path, "D", ImportOptions(on_duplicate=policy))
    except HashlensError as exc:
        return "refused", exc.failure, exc.description
    rows = [(r.identifier, r.label, r.phash, r.metadata, r.trained_at) for r in _rows(store, "D")]
    return "imported", report.lines(), [r for r in rows if r[0] != "unrelated"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=8), tail=st.sampled_from(["", "{broken\n"]),
       policy=st.sampled_from(["abort", "skip", "replace"]), batch=st.integers(1, 4))
def test_an_empty_database_imports_as_one_looked_up_batch_by_batch(tmp_path_factory, lines, tail, policy, batch):
    """Into a database without entries the batches are appended unlooked-up (the unique index
    refuses a repeat, and the import is done again looked up): the outcome, refusal or
    report and rows, is the one of a database that holds an unrelated entry."""
    folder = tmp_path_factory.mktemp("batches")
    path = _write(folder, "f.ndjson", "".join(line + "\n" for line in lines) + tail)
    empty, holding = (Store.open(f"sqlite:///{folder / name}") for name in ("empty.db", "holding.db"))
    try:
        actions.create_database(empty, "D")
        add_plain(holding, "D", [("unrelated", "u", 1, [], 1)])
        before = store_digest(empty)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(importer, "BATCH", batch)
            trusted, looked_up = _outcome(empty, path, policy), _outcome(holding, path, policy)
        assert trusted == looked_up
        if trusted[0] == "refused":
            assert store_digest(empty) == before
    finally:
        empty.close()
        holding.close()


def test_an_empty_database_is_not_looked_up_and_a_repeat_is(sqlite_store, tmp_path):
    """The lookup of each batch (an IN query per 900 identifiers, a tenth of an import) is
    left out only while the database held nothing before the import."""
    path = _write(tmp_path, "f.ndjson", _ndjson(*[{"identifier": f"n{i}", "phash": "01"} for i in range(50)]))
    add_plain(sqlite_store, "Full", [("x", "x", 1, [], 1)])
    statements = []
    sqlite_store.db.connection().set_trace_callback(statements.append)
    import_file(sqlite_store, path, "New")
    assert not [s for s in statements if "identifier IN" in s]
    import_file(sqlite_store, path, "Full")
    assert [s for s in statements if "identifier IN" in s]
    statements.clear()
    repeated = _write(tmp_path, "r.ndjson", _ndjson(*[{"identifier": f"n{i % 30}", "phash": "01"} for i in range(50)]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer, "BATCH", 10)
        report = import_file(sqlite_store, repeated, "Other", ImportOptions(on_duplicate="skip"))
    assert report.added == 30 and report.skipped_count == 20
    assert [s for s in statements if "identifier IN" in s]  # done again, looked up



def test_progress_never_goes_back_when_the_import_is_done_again(sqlite_store, tmp_path):
    """A repeat across batches rolls the first pass back and reads the file again: the
    progress pauses where the first pass stopped, then ends at the whole count."""
    lines = [{"identifier": f"n{i}", "phash": "01"} for i in range(450)] + [{"identifier": "n0", "phash": "01"}]
    path = _write(tmp_path, "r.ndjson", _ndjson(*lines))
    seen = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer, "BATCH", 200)
        report = import_file(sqlite_store, path, "D", ImportOptions(on_duplicate="skip"), progress=seen.append)
    assert report.added == 450 and report.skipped_count == 1
    assert seen == sorted(set(seen)) and seen[-1] == 451

@pytest.mark.server
def test_flags_are_stored_as_flags_on_every_backend(store, tmp_path):
    """The bulk rows carry the flags as 0 and 1 (sqlite3 binds an int faster than a bool):
    every backend's column takes them as false and true, and a missing one stays NULL."""
    path = _write(tmp_path, "f.ndjson", _ndjson({"identifier": "t", "hasimagedata": True},
                                                {"identifier": "f", "hasimagedata": False}, {"identifier": "n"}))
    import_file(store, path, "D")
    rows = {r.identifier: r for r in _rows(store, "D")}
    assert [(rows[i].has_image_data, rows[i].declared_image_data) for i in "tfn"] == [
        (False, True), (False, False), (False, None)]
    assert store.count(ListingQuery("D", filters=(Filter(FilterOp.HAS_IMAGE_DATA, False),))).value == 3


@pytest.mark.server
@pytest.mark.parametrize("policy", ["skip", "replace", "abort"])
def test_a_repeat_across_batches_into_an_empty_database_on_every_backend(store, tmp_path, policy):
    """The unique index refuses the batch on every backend (COPY on PostgreSQL, multi-row
    INSERT on MariaDB), and the import done again applies the policy."""
    path = _write(tmp_path, "f.ndjson", _ndjson(*[{"identifier": i, "label": f"{i}{n}"} for n, i in enumerate("abcad")]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer, "BATCH", 2)
        if policy == "abort":
            with pytest.raises(HashlensError, match="line 4: 'a'"):
                import_file(store, path, "D", ImportOptions(on_duplicate=policy))
            assert not store.database_exists("D")
            return
        report = import_file(store, path, "D", ImportOptions(on_duplicate=policy))
    assert (report.added, report.skipped_count, report.replaced_count) == (4, policy == "skip", policy == "replace")
    labels = {"skip": ["a0", "b1", "c2", "d4"], "replace": ["b1", "c2", "a3", "d4"]}[policy]
    assert [r.label for r in _rows(store, "D")] == labels
