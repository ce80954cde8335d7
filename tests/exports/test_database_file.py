"""ExportImageHashDatabase / ImportImageHashDatabase in Hashlens's own file format."""

from __future__ import annotations

import base64
import json

import pytest

from app.aci.actions import handle
from app.domain import Failure, HashlensError, ListingQuery
from app.exports.database_file import export_database, import_database
from app.exports.readers import ImportRefused

from .conftest import parts_in, store_digest


def _everything(store, database):
    rows = [r for b in store.iter_listing(ListingQuery(database, imagestatus=True, metadata=True)) for r in b]
    images = {r.identifier: store.image(database, r.identifier).data for r in rows}
    return [r[2:] for r in rows], images


def test_round_trip_with_images_is_identical(awkward_store, tmp_path):
    n = export_database(awkward_store, "Awk", tmp_path / "awk.hldb")
    assert n == 20
    lines = (tmp_path / "awk.hldb").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"format": "hashlens-database", "version": 1, "database": "Awk",
                                    "includeimagedata": True, "includemetadata": True}
    assert json.loads(lines[-1]) == {"end": "hashlens-database", "entries": 20}
    assert import_database(awkward_store, tmp_path / "awk.hldb", "Copy") == "Copy"
    rows_a, images_a = _everything(awkward_store, "Awk")
    rows_b, images_b = _everything(awkward_store, "Copy")
    # Everything but the store's own keys is equal, images byte for byte.
    assert rows_b == rows_a and images_b == images_a
    export_database(awkward_store, "Copy", tmp_path / "copy.hldb")
    again = (tmp_path / "copy.hldb").read_text(encoding="utf-8").splitlines()
    assert again[1:] == lines[1:] and json.loads(again[0])["database"] == "Copy"
    journal = awkward_store.history()[-1]
    assert journal.action == "ImportImageHashDatabase" and journal.params["entries"] == 20


def test_default_name_and_existing_database(awkward_store, tmp_path):
    export_database(awkward_store, "Awk", tmp_path / "awk.hldb")
    before = store_digest(awkward_store)
    with pytest.raises(HashlensError) as err:
        import_database(awkward_store, tmp_path / "awk.hldb")
    assert err.value.failure is Failure.DATABASE_EXISTS and store_digest(awkward_store) == before
    from app.services import actions

    actions.rename_database(awkward_store, "Awk", "Old")
    assert import_database(awkward_store, tmp_path / "awk.hldb") == "Awk"


def test_without_images_and_metadata(awkward_store, tmp_path):
    export_database(awkward_store, "Awk", tmp_path / "bare.hldb", includeimagedata=False, includemetadata=False)
    text = (tmp_path / "bare.hldb").read_text(encoding="utf-8")
    assert '"image":null' in text and '"metadata"' not in text
    import_database(awkward_store, tmp_path / "bare.hldb", "Bare")
    rows = [r for b in awkward_store.iter_listing(ListingQuery("Bare", imagestatus=True, metadata=True)) for r in b]
    assert not any(r.has_image_data for r in rows) and not any(r.metadata for r in rows)


@pytest.mark.parametrize("damage, fragment", [
    (lambda lines: lines[:-1], "no end line: it is truncated"),
    (lambda lines: lines[:-2] + lines[-1:], "records 20 entries but 19"),
    (lambda lines: ['{"format":"other"}'] + lines[1:], "not a Hashlens database header"),
    (lambda lines: [lines[0].replace('"version":1', '"version":2')] + lines[1:], "version 2"),
    (lambda lines: lines + ['{"x": 1}'], "text after the end line"),
    (lambda lines: lines[:1] + [lines[1].replace('"sha256":"', '"sha256":"0')] + lines[2:], "SHA-256"),
    (lambda lines: lines[:1] + [lines[1].replace('"image":"', '"image":"!')] + lines[2:], "not valid base64"),
    (lambda lines: lines[:1] + [lines[1].replace('"phash":"', '"phash":"zz')] + lines[2:], "not a pHash"),
])
def test_damaged_files_import_nothing(awkward_store, tmp_path, damage, fragment):
    export_database(awkward_store, "Awk", tmp_path / "awk.hldb")
    lines = (tmp_path / "awk.hldb").read_text(encoding="utf-8").splitlines()
    (tmp_path / "bad.hldb").write_text("\n".join(damage(lines)) + "\n", encoding="utf-8")
    before = store_digest(awkward_store)
    with pytest.raises(ImportRefused) as err:
        import_database(awkward_store, tmp_path / "bad.hldb", "New")
    assert fragment in err.value.description
    assert store_digest(awkward_store) == before and not awkward_store.database_exists("New")


def test_image_bytes_are_base64_of_the_stored_image(awkward_store, tmp_path):
    export_database(awkward_store, "Awk", tmp_path / "awk.hldb")
    first = json.loads((tmp_path / "awk.hldb").read_text(encoding="utf-8").splitlines()[1])
    assert base64.b64decode(first["image"]) == awkward_store.image("Awk", first["identifier"]).data


def test_cancel_and_store_target(awkward_store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(HashlensError) as err:
        export_database(awkward_store, "Awk", out / "x.hldb", cancelled=lambda: True)
    assert err.value.failure is Failure.CANCELLED and not list(out.iterdir())
    with pytest.raises(HashlensError, match="open store file"):
        export_database(awkward_store, "Awk", awkward_store.location.path)
    assert not parts_in(tmp_path) and not awkward_store.db.in_transaction()


def test_through_the_aci(awkward_store, tmp_path):
    path = tmp_path / "aci.hldb"
    answer = handle(awkward_store, f"action=ExportImageHashDatabase&database=Awk&dbpath={path}&includeimagedata=false")
    assert answer.ok and path.exists()
    answer = handle(awkward_store, f"action=ImportImageHashDatabase&dbpath={path}&database=FromAci")
    assert answer.ok and awkward_store.database_exists("FromAci")
    answer = handle(awkward_store, f"action=ImportImageHashDatabase&dbpath={tmp_path}/missing&database=X")
    assert not answer.ok and "cannot be read" in "".join(answer.chunks)
