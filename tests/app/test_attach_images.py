"""`hashlens attach-images` and its service: pHashes (and images) from a folder for entries
that have none; what matched, what did not and what was ambiguous; all or nothing."""

from __future__ import annotations

import pytest

from app.cli import main
from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.services import actions, imaging
from app.services.attach import attach_images
from app.store import Store

from tests.conftest import make_image


def _ms(identifier: str, label: str | None = None, phash: int | None = None) -> NewEntry:
    return NewEntry(identifier, label or identifier, phash, None, None, None, None, None, (), 1, True)


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "images"
    (f / "sub").mkdir(parents=True)
    (f / "cat1.png").write_bytes(make_image(1))
    (f / "sub" / "dog.jpg").write_bytes(make_image(2, fmt="JPEG"))
    (f / "twice.png").write_bytes(make_image(3))
    (f / "twice.jpg").write_bytes(make_image(3, fmt="JPEG"))
    (f / "extra.png").write_bytes(make_image(4))
    (f / "broken.png").write_bytes(b"not an image at all")
    (f / "known.png").write_bytes(make_image(5))
    (f / "Cat.png").write_bytes(make_image(6))
    return f


@pytest.fixture
def filled(sqlite_store):
    actions.create_database(sqlite_store, "M")
    for e in (_ms("cat1", "Cat"), _ms("dog", "Cat"), _ms("nofile"), _ms("twice"), _ms("broken"),
              _ms("known", phash=0x1234)):
        sqlite_store.add_entry("M", e)
    return sqlite_store


def _rows(store):
    return {r.identifier: r for b in store.iter_listing(ListingQuery("M", imagestatus=True)) for r in b}


def test_identifiers_match_files_and_the_report_says_everything(filled, folder):
    report = attach_images(filled, "M", folder)
    rows = _rows(filled)
    assert rows["cat1"].phash == imaging.hash_image(make_image(1)).phash
    assert rows["dog"].phash == imaging.hash_image((folder / "sub" / "dog.jpg").read_bytes()).phash
    assert not rows["cat1"].has_image_data and rows["cat1"].declared_image_data is True
    assert rows["nofile"].phash is None and rows["twice"].phash is None and rows["broken"].phash is None
    assert rows["known"].phash == 0x1234  # a different stored pHash is never overwritten
    assert sorted(report.attached) == ["cat1", "dog"] and report.files == 8
    assert report.no_file == ["nofile"] and report.ambiguous_count == 1 and "'twice' matches 2 files" in report.ambiguous[0]
    assert report.unreadable_count == 1 and "broken.png" in report.unreadable[0]
    assert report.differs_count == 0 and report.already == 1  # 'known' needed nothing
    assert sorted(report.unused_files) == ["Cat.png", "extra.png"]
    text = "\n".join(report.lines())
    for words in ("2 entries got a pHash", "Matched: ", "Ambiguous", "could not be read", "Not matched: no file for 1 entry",
                  "Not matched: 2 files", "1 matched entry needed nothing"):
        assert words in text
    record = filled.history()[-1]
    assert record.action == "AttachImages" and record.params["attached"] == 2
    # Again: nothing left to do for the matched ones.
    again = attach_images(filled, "M", folder)
    assert again.attached_count == 0 and again.already == 3


def test_store_images_keeps_the_bytes(filled, folder):
    report = attach_images(filled, "M", folder, store_images=True)
    assert report.images_stored == 2
    # 'known' holds no image, but its file hashes differently: left as it was, and said.
    assert report.differs_count == 1 and report.differs[0][0] == "known"
    assert "different pHash" in "\n".join(report.lines())
    rows = _rows(filled)
    assert rows["cat1"].has_image_data and rows["cat1"].image_format == "PNG" and rows["cat1"].width == 64
    assert filled.image("M", "cat1").data == (folder / "cat1.png").read_bytes()


def test_labels_shared_by_entries_are_ambiguous(filled, folder):
    report = attach_images(filled, "M", folder, match="label")
    # cat1 and dog share the label 'Cat'; 'twice' (its label is its identifier) has two files.
    assert report.attached_count == 0 and report.ambiguous_count == 2
    assert any("Cat.png is claimed by 2 entries ('cat1', 'dog')" in a for a in report.ambiguous)


def test_stem_matches_paths_in_identifiers(sqlite_store, folder):
    actions.create_database(sqlite_store, "M")
    sqlite_store.add_entry("M", _ms("C:\\training\\cat1.jpeg"))
    sqlite_store.add_entry("M", _ms("/srv/x/dog.png"))
    report = attach_images(sqlite_store, "M", folder, match="stem")
    assert sorted(report.attached) == ["/srv/x/dog.png", "C:\\training\\cat1.jpeg"]


def test_cancel_and_failures_change_nothing(filled, folder, tmp_path):
    before = {k: (r.phash, r.has_image_data) for k, r in _rows(filled).items()}
    with pytest.raises(HashlensError) as err:
        attach_images(filled, "M", folder, store_images=True, cancelled=lambda: True)
    assert err.value.failure is Failure.CANCELLED
    with pytest.raises(HashlensError) as err:
        attach_images(filled, "M", tmp_path / "missing")
    assert err.value.failure is Failure.PARAM_INVALID and "not a folder" in err.value.description
    with pytest.raises(HashlensError) as err:
        attach_images(filled, "Nope", folder)
    assert err.value.failure is Failure.NO_SUCH_DATABASE
    assert {k: (r.phash, r.has_image_data) for k, r in _rows(filled).items()} == before


def test_the_command(sqlite_url, folder, capsys):
    with Store.open(sqlite_url) as store:
        actions.create_database(store, "M")
        store.add_entry("M", _ms("cat1"))
    assert main(["--store", sqlite_url, "attach-images", "M", str(folder), "--store-images"]) == 0
    out = capsys.readouterr().out
    assert "1 entry got a pHash, 1 with the image stored" in out and "'cat1'" in out
    assert main(["--store", sqlite_url, "attach-images", "M", str(folder), "--match", "name"]) == 2
    assert "--match" in capsys.readouterr().err
    assert main(["--store", sqlite_url, "attach-images", "M", str(folder / "nothing")]) == 1
    assert "not a folder" in capsys.readouterr().err
