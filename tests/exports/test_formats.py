"""Every export format and scope: content, the XML contract, manifests and verify."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.utils.escape import unescape
import pytest
from defusedxml import ElementTree as DET

from app.mediaserver_codec import writer as response
from app.aci.actions import handle
from app.domain import EntryRow, Failure, Filter, FilterOp, HashlensError, ListingQuery, SortKey
from app.exports import manifest
from app.exports.cells import FORMULA_TRIGGERS, restore
from app.exports.export import export_listing, scope_query
from app.exports.formats import ExportOptions, image_file_name

from .conftest import AWKWARD, add_plain, parts_in

FULL = ListingQuery("Awk", imagestatus=True, metadata=True)


def _rows(store, query):
    return [r for batch in store.iter_listing(query) for r in batch]


def _export(store, tmp_path, fmt, query=FULL, name=None, **options):
    target = tmp_path / (name or f"out.{fmt if fmt != 'images' else 'zip'}")
    return export_listing(store, query, target, ExportOptions(fmt, **options))


@pytest.mark.parametrize("imagestatus", [False, True])
@pytest.mark.parametrize("metadata", [False, True])
def test_xml_is_byte_for_byte_the_listimagehashes_answer(awkward_store, tmp_path, imagestatus, metadata):
    query = ListingQuery("Awk", imagestatus=imagestatus, metadata=metadata, start=3, maxresults=12)
    result = _export(awkward_store, tmp_path, "xml", query)
    data = result.path.read_bytes()
    expected = "".join(response.listing(awkward_store.iter_listing(query), imagestatus=imagestatus, metadata=metadata))
    assert data == expected.encode("utf-8")
    # ...and what the ACI answers to the equivalent request, recorded in the manifest.
    line = json.loads(result.manifest.read_text())["request"]
    assert "start=3" in line and "maxresults=12" in line
    answer = handle(awkward_store, line)
    assert answer.ok and "".join(answer.chunks).encode("utf-8") == data
    root = DET.fromstring(data, forbid_dtd=True)
    assert [e.findtext("identifier") for e in root.iter("entry")] == [r.identifier for r in _rows(awkward_store, query)]


def test_empty_listing_exports_empty_success(sqlite_store, tmp_path):
    add_plain(sqlite_store, "Empty", [])
    for fmt in ("xml", "csv", "json", "ndjson", "tsv", "xlsx"):
        result = _export(sqlite_store, tmp_path, fmt, ListingQuery("Empty", imagestatus=True))
        assert result.entries == 0 and result.path.exists()
    assert b"<responsedata/>" in (tmp_path / "out.xml").read_bytes()
    assert json.loads((tmp_path / "out.json").read_text())["entries"] == []


def test_csv_columns_and_formula_neutralisation(awkward_store, tmp_path):
    result = _export(awkward_store, tmp_path, "csv")
    text = result.path.read_bytes().decode("utf-8")
    assert not text.startswith("\ufeff")  # no BOM by default
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    assert header == ["position", "identifier", "phash", "trained_at", "label", "hasimagedata", "image_format",
                      "width", "height", "byte_size", "metadata"]
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in FORMULA_TRIGGERS, cell
    stored = _rows(awkward_store, FULL)
    assert [restore(r[1]) for r in body] == [r.identifier for r in stored]
    assert body[1][1] == "'" + AWKWARD[1]  # '=HYPERLINK(...)
    assert body[8][1] == "''quoted"  # a leading apostrophe is escaped too, so the import can undo it
    assert [restore(r[4]) for r in body] == [r.label for r in stored]
    assert [json.loads(r[10]) for r in body] == [dict(r.metadata) for r in stored]
    assert [r[2] for r in body] == [r.phash_hex for r in stored]
    assert body[0][5] == "true" and body[1][5] == "false"


def test_raw_csv_writes_cells_as_they_are(awkward_store, tmp_path):
    result = _export(awkward_store, tmp_path, "csv", spreadsheet_safe=False)
    rows = list(csv.reader(io.StringIO(result.path.read_bytes().decode("utf-8"), newline="")))
    assert [r[1] for r in rows[1:]] == AWKWARD
    assert json.loads(result.manifest.read_text())["options"]["csv_dialect"] == "raw"


def test_tsv_and_one_column_per_key(awkward_store, tmp_path):
    result = _export(awkward_store, tmp_path, "tsv", metadata_columns="keys")
    rows = list(csv.reader(io.StringIO(result.path.read_bytes().decode("utf-8"), newline=""), delimiter="\t"))
    assert rows[0][-2:] == ["meta:=key", "meta:k"]
    stored = _rows(awkward_store, FULL)
    for row, entry in zip(rows[1:], stored):
        items = dict(entry.metadata)
        assert restore(row[-2]) == items.get("=key", "") and restore(row[-1]) == items.get("k", "")
    assert rows[2][-2] == "'-v"  # a value starting with '-' is neutralised too


def test_json_and_ndjson(awkward_store, tmp_path):
    stored = _rows(awkward_store, FULL)
    doc = json.loads(_export(awkward_store, tmp_path, "json").path.read_text(encoding="utf-8"))
    assert doc["format"] == "hashlens-listing" and doc["imagestatus"] and doc["metadata"]
    lines = _export(awkward_store, tmp_path, "ndjson").path.read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert doc["entries"] == objects
    assert [o["identifier"] for o in objects] == [r.identifier for r in stored]
    assert [list(o["metadata"].items()) for o in objects] == [list(r.metadata) for r in stored]
    assert objects[0]["hasimagedata"] is True and objects[0]["width"] == 64 and objects[1]["width"] is None
    assert all(set(o) == set(objects[0]) for o in objects)


def test_xlsx_sheets_keep_formulas_as_text(awkward_store, tmp_path):
    result = _export(awkward_store, tmp_path, "xlsx")
    book = openpyxl.load_workbook(result.path)
    assert book.sheetnames == ["entries", "metadata", "about"]
    entries = list(book["entries"].iter_rows(values_only=True))
    stored = _rows(awkward_store, FULL)
    # XlsxWriter writes control characters as OOXML _xHHHH_ escapes, which Excel decodes;
    # openpyxl decodes them only in shared strings, so the test decodes them itself.
    assert [unescape(r[1]) for r in entries[1:]] == [r.identifier for r in stored]
    cell = book["entries"]["B3"]
    assert cell.value == AWKWARD[1] and cell.data_type == "s"  # text, never a formula
    meta = list(book["metadata"].iter_rows(values_only=True))
    assert meta[0] == ("position", "identifier", "key", "value")
    assert len(meta) - 1 == sum(len(r.metadata) for r in stored)
    about = dict(book["about"].iter_rows(values_only=True))
    assert about["database"] == "Awk" and about["entries"] == str(len(stored))
    assert "ListImageHashes" in about["request"]


def test_image_names_are_confined_and_distinct():
    names = {image_file_name(i, "PNG") for i in AWKWARD}
    assert len(names) == len(AWKWARD)
    for name in names:
        assert "/" not in name and "\\" not in name and ":" not in name and not name.startswith(".")
        assert len(name.encode()) <= 255
        assert name.split("-")[0].upper() not in ("CON", "NUL", "AUX", "PRN")
    assert image_file_name("CON", "JPEG").startswith("_CON-") and image_file_name("CON", "JPEG").endswith(".jpg")
    assert image_file_name("../..", None).endswith(".bin")


@pytest.mark.parametrize("zipped", [False, True])
def test_images_with_index(awkward_store, tmp_path, zipped):
    target = tmp_path / ("pics.zip" if zipped else "pics")
    result = export_listing(awkward_store, FULL, target, ExportOptions("images"))
    if zipped:
        with zipfile.ZipFile(target) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
    else:
        members = {p.name: p.read_bytes() for p in target.iterdir()}
        assert all(p.resolve().parent == target.resolve() for p in target.iterdir())
    index = list(csv.DictReader(io.StringIO(members.pop("index.csv").decode("utf-8"), newline="")))
    stored = _rows(awkward_store, FULL)
    assert [restore(r["identifier"]) for r in index] == [r.identifier for r in stored]
    with_image = [r for r in index if r["file"]]
    assert len(with_image) == len(members) == sum(r.has_image_data for r in stored)
    for row in with_image:
        image = awkward_store.image("Awk", restore(row["identifier"]))
        assert members[row["file"]] == image.data
    assert result.entries == len(stored)
    assert manifest.verify(result.manifest).ok


def test_image_folder_must_be_new_or_empty(awkward_store, tmp_path):
    target = tmp_path / "pics"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(HashlensError, match="not empty"):
        export_listing(awkward_store, FULL, target, ExportOptions("images"))
    assert (target / "mine.txt").read_text() == "keep me" and not parts_in(tmp_path)


# -- scopes -----------------------------------------------------------------------------------


def test_scopes(awkward_store, tmp_path):
    query = ListingQuery("Awk", filters=(Filter(FilterOp.HAS_IMAGE_DATA, True),), sort=SortKey.IDENTIFIER,
                         descending=True, start=2, maxresults=3)
    everything = _rows(awkward_store, query.unwindowed())
    window = _rows(awkward_store, query)
    assert [r.identifier for r in _rows(awkward_store, scope_query(query, "listing"))] == \
        [r.identifier for r in everything]
    assert _rows(awkward_store, scope_query(query, "window")) == window
    page = scope_query(query, "page", page_rows=window)
    assert [r.identifier for r in _rows(awkward_store, page)] == [r.identifier for r in window]
    chosen = [everything[4].identifier, everything[0].identifier, "not there", everything[0].identifier]
    selected = _rows(awkward_store, scope_query(query, "selected", selected=chosen))
    # Selected rows come in the listing's order, once each; unknown ones are left out.
    assert [r.identifier for r in selected] == [everything[0].identifier, everything[4].identifier]
    with pytest.raises(HashlensError):
        scope_query(query, "selected", selected=[])
    result = export_listing(awkward_store, scope_query(query, "listing"), tmp_path / "all.ndjson",
                            ExportOptions("ndjson"), scope="listing")
    assert result.entries == len(everything)
    info = json.loads(result.manifest.read_text())
    assert info["scope"] == "listing" and not info["request_exact"]
    assert any("has image data" in n for n in info["request_notes"])
    assert "sorted by identifier descending" in info["filter"]


def test_page_scope_with_gaps_uses_identifiers():
    rows = [EntryRow(p, p, f"id{p}", "l", False, 0, None, None, None, None, 0, 0) for p in (3, 5)]
    query = scope_query(ListingQuery("D"), "page", page_rows=rows)
    assert query.identifiers == ("id3", "id5") and query.start == 1


# -- manifest and verify --------------------------------------------------------------------------


def test_manifest_records_the_export(awkward_store, tmp_path):
    query = ListingQuery("Awk", identifiers=("plain", "comma, inside", 'say "hi"'), metadata=True)
    result = _export(awkward_store, tmp_path, "csv", query)
    info = json.loads(result.manifest.read_text())
    assert result.manifest.name == "out.csv.manifest.json"
    assert info["file"] == "out.csv" and info["entries"] == 3 and info["database"] == "Awk"
    assert info["sha256"] == result.sha256 and info["bytes"] == result.path.stat().st_size
    assert info["store"] == awkward_store.describe() and "password" not in json.dumps(info)
    assert info["request_exact"] and info["filter"].startswith("identifier in (")
    answer = handle(awkward_store, info["request"])  # the request line parses back to the same listing
    ids = [e.findtext("identifier") for e in DET.fromstring("".join(answer.chunks)).iter("entry")]
    assert ids == ["plain", "comma, inside", 'say "hi"']
    assert info["hashlens_version"] and info["created"].endswith("Z")


def test_verify(awkward_store, tmp_path):
    result = _export(awkward_store, tmp_path, "ndjson")
    verdict = manifest.verify(result.manifest)
    assert verdict.ok and "matches" in verdict.message
    data = bytearray(result.path.read_bytes())
    data[10] ^= 1
    result.path.write_bytes(bytes(data))
    verdict = manifest.verify(result.manifest)
    assert not verdict.ok and "does NOT match" in verdict.message
    result.path.unlink()
    assert "missing" in manifest.verify(result.manifest).message


@pytest.mark.parametrize("content, fragment", [
    ('{"kind": "hashlens-export-manifest", "file": "../secret", "sha256": "0", "bytes": 1}', "plain file name"),
    ('{"kind": "hashlens-export-manifest", "file": "/etc/passwd", "sha256": "0", "bytes": 1}', "plain file name"),
    ('{"kind": "something else"}', "not a Hashlens export manifest"),
    ('{"kind": "hashlens-export-manifest", "kind": "x"}', "appears twice"),
    ("[" * 100000, "nested too deeply"),
    ('{"kind": NaN}', "not allowed"),
    ("not json", "line 1 column 1"),
])
def test_verify_refuses_hostile_manifests(tmp_path, content, fragment):
    path = tmp_path / "x.manifest.json"
    path.write_text(content)
    verdict = manifest.verify(path)
    assert not verdict.ok and fragment in verdict.message


def test_image_folder_verify_checks_every_image(awkward_store, tmp_path):
    result = export_listing(awkward_store, FULL, tmp_path / "pics", ExportOptions("images"))
    assert manifest.verify(result.manifest).ok
    victim = next(p for p in (tmp_path / "pics").iterdir() if p.suffix == ".png")
    victim.write_bytes(victim.read_bytes() + b"x")
    verdict = manifest.verify(result.manifest)
    assert not verdict.ok and victim.name in verdict.message


# -- refusals before writing -------------------------------------------------------------------------


def test_refuses_the_store_file_itself(awkward_store):
    path = awkward_store.location.path
    before = path.read_bytes()
    for target in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        with pytest.raises(HashlensError, match="open store file"):
            export_listing(awkward_store, FULL, target, ExportOptions("csv"))
    assert path.read_bytes() == before


def test_missing_database_and_bad_options(sqlite_store, tmp_path):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    with pytest.raises(HashlensError) as err:
        export_listing(sqlite_store, ListingQuery("Nope"), tmp_path / "x.csv", ExportOptions("csv"))
    assert err.value.failure is Failure.NO_SUCH_DATABASE and not list(tmp_path.iterdir())
    with pytest.raises(HashlensError, match="not known"):
        export_listing(sqlite_store, ListingQuery("Nope"), tmp_path / "x.csv", ExportOptions("pdf"))
    with pytest.raises(HashlensError, match="does not exist"):
        add_plain(sqlite_store, "D", [])
        export_listing(sqlite_store, ListingQuery("D"), tmp_path / "no" / "x.csv", ExportOptions("csv"))


@pytest.mark.parametrize("fmt", ["xml", "csv", "tsv", "json", "ndjson", "xlsx", "images"])
def test_foreign_control_character_fails_by_name_and_writes_nothing(sqlite_store, tmp_path, fmt):
    """An entry a foreign writer stored with U+0001 cannot be exported by any format, and
    no file that a reader would choke on is ever written (reliability S2)."""
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    add_plain(sqlite_store, "D", [("good", "l", 1, [], 1), ("bad", "l", 2, [("k", "v")], 2)])
    with sqlite_store.writing():
        sqlite_store.sql.exec("UPDATE hl_metadata SET meta_value = ? WHERE meta_key = 'k'", ("bad\x01value",))
    target = tmp_path / ("out.zip" if fmt == "images" else f"out.{fmt}")
    with pytest.raises(HashlensError) as err:
        export_listing(sqlite_store, ListingQuery("D", imagestatus=True, metadata=True), target, ExportOptions(fmt))
    assert "U+0001" in err.value.description and ("'bad'" in err.value.description or "bad" in err.value.description)
    assert list(tmp_path.iterdir()) == []


def test_snapshot_export_while_another_connection_writes(sqlite_url, tmp_path):
    """The export sees the listing as it was when it started (reliability C3)."""
    from app.store import Store

    writer_store = Store.open(sqlite_url)
    reader_store = Store.open(sqlite_url)
    try:
        add_plain(writer_store, "D", [(f"id{i}", "l", i, [], i) for i in range(5000)])
        added = []

        def write_more(done):
            if len(added) < 5:
                n = 5000 + len(added)
                add_plain(writer_store, "D", [(f"id{n}", "l", n, [], n)])
                added.append(n)

        result = export_listing(reader_store, ListingQuery("D"), tmp_path / "snap.ndjson", ExportOptions("ndjson"),
                                progress=write_more)
        assert len(added) == 5
        lines = (tmp_path / "snap.ndjson").read_text().splitlines()
        assert result.entries == len(lines) == 5000
        assert [json.loads(x)["identifier"] for x in lines] == [f"id{i}" for i in range(5000)]
    finally:
        writer_store.close()
        reader_store.close()
