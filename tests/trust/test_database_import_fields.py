"""Issue 10 item 7: a whole-database import validates every field it stores with the
same rules as training; an image format must come from the allow-list."""

import json

import pytest

from app.domain import ListingQuery
from app.exports.database_file import export_database, import_database
from app.exports.readers import ImportRefused
from app.services import actions
from app.services.imaging import STORED_FORMATS

from tests.exports.conftest import store_digest


@pytest.fixture
def exported(sqlite_store, image_bytes, tmp_path):
    actions.create_database(sqlite_store, "Src")
    for i in range(3):
        actions.train_image(sqlite_store, "Src", data=image_bytes(i), identifier=f"id{i}")
    path = tmp_path / "src.hldb"
    export_database(sqlite_store, "Src", path)
    return sqlite_store, path


def _tampered(path, field, value):
    lines = path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[2])
    entry[field] = value
    lines[2] = json.dumps(entry, ensure_ascii=False)
    out = path.with_name(f"bad-{field}.hldb")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


@pytest.mark.parametrize("field, value", [
    ("image_format", "=cmd|' /C calc'!A0"),
    ("image_format", "PNG\x01"),
    ("image_format", "PNG\r\n=1+1"),
    ("image_format", "png"),
    ("image_format", "EPS"),
    ("width", -1),
    ("height", 2**63),
    ("width", 1.5),
    ("label", "bell\x07"),
    ("identifier", "x" * 255),
])
def test_a_bad_field_refuses_the_whole_import(exported, field, value):
    store, path = exported
    bad = _tampered(path, field, value)
    before = store_digest(store)
    with pytest.raises(ImportRefused) as caught:
        import_database(store, bad, "Copy")
    assert "line 3" in str(caught.value) and "Traceback" not in str(caught.value)
    assert store_digest(store) == before
    assert not store.database_exists("Copy")


def test_the_untampered_file_imports(exported):
    store, path = exported
    import_database(store, path, "Copy")
    counts = {info.name: info.entry_count for info in store.list_databases()}
    assert counts["Copy"] == 3
    formats = {r.image_format for r in store.list_page(ListingQuery("Copy", imagestatus=True)).rows}
    assert formats and formats <= STORED_FORMATS
