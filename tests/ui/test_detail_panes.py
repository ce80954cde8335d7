"""The detail panes on their own: image states, status fields, pHash grid, shared metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.domain import EntryRow
from app.store import Store
from tests.conftest import make_image
from ui.detail_pane import ImageSource, ImageStatusPane, MetadataPane, PhashGrid, load_display_image
from ui.workers import Workers


def row(identifier="x", *, label="lbl", has_image=True, phash=0xF0F0F0F0F0F0F0F0, metadata=(), position=1):
    return EntryRow(position, position, identifier, label, has_image, phash, "PNG" if has_image else None,
                    64 if has_image else None, 48 if has_image else None, 1234, len(metadata), 0, tuple(metadata))


def test_phash_grid_cells_single_and_shared(qtbot):
    grid = PhashGrid()
    qtbot.addWidget(grid)
    grid.set_hashes([1 << 63 | 1])
    cells = grid.cells()
    assert cells[0] == "1" and cells[63] == "1" and cells.count("1") == 2
    grid.set_hashes([0b11, 0b01])
    cells = grid.cells()
    assert cells[63] == "1" and cells[62] == "?" and cells.count("?") == 1
    grid.set_hashes([])
    assert set(grid.cells()) == {" "}
    grid.show()
    grid.grab()  # paints without error in every state


def test_status_fields_for_one_entry(qtbot):
    pane = ImageStatusPane()
    qtbot.addWidget(pane)
    pane.show_rows([row("id-1", label="cat", has_image=False)])
    assert pane.identifier.text() == "id-1"
    assert pane.label.text() == "cat"
    assert pane.status.text() == "trained"
    assert pane.hasimagedata.text() == "false"
    counts = pane.counts.text().replace("\u00a0", " ")  # a name never parts from its number
    assert "numimages 1" in counts and "numuntrained 0" in counts
    assert pane.phash.text() == "f0f0f0f0f0f0f0f0"
    assert "Image data removed" in pane.message_text
    assert "not a Media Server value" in pane.note.text() or "never returns" in pane.note.text()


def test_many_entries_show_what_they_share(qtbot):
    pane = ImageStatusPane()
    qtbot.addWidget(pane)
    pane.show_rows([row("a", phash=0b1111), row("b", has_image=False, phash=0b0111, position=2)])
    assert pane.identifier.text() == "2 entries selected"
    assert pane.label.text() == "lbl"
    assert pane.hasimagedata.text() == "true for 1 of 2"
    assert "up to 1 bits" in pane.phash.text()
    pane.show_rows([])
    assert pane.identifier.text() == "—"


def test_metadata_pane_one_and_many(qtbot):
    pane = MetadataPane()
    qtbot.addWidget(pane)
    pane.show_rows([row(metadata=(("colour", "red"), ("size", "big")))])
    assert pane.model.items() == [("colour", "red"), ("size", "big")]
    assert "2 items" in pane.summary.text()
    pane.select_key("size")
    assert pane.selected_key() == "size"
    pane.show_rows([row("a", metadata=(("colour", "red"),)), row("b", metadata=(("colour", "blue"), ("k", "v")))])
    assert pane.model.rowCount() == 1
    assert pane.model.data(pane.model.index(0, 1)) == "(values differ)"
    assert "1 other key" in pane.summary.text()


@pytest.fixture
def image_store(sqlite_url):
    from app.domain import NewEntry
    from app.services import actions

    store = Store.open(sqlite_url)
    actions.create_database(store, "D")
    actions.train_image(store, "D", data=make_image(1, (80, 60)), identifier="good")
    actions.train_image(store, "D", data=make_image(2), identifier="gone")
    actions.null_image_data(store, "D", "gone")
    with store.writing():
        store.add_entry("D", NewEntry("bad", "bad", 1, b"GIF89a-truncated", "GIF", 1, 1, None))
    yield store
    store.close()


def test_load_display_image_states(qtbot, image_store):
    good = load_display_image(image_store, "D", "good")
    assert good.image is not None and (good.image.width(), good.image.height()) == (80, 60)
    assert load_display_image(image_store, "D", "gone").removed
    bad = load_display_image(image_store, "D", "bad")
    assert bad.image is None and bad.problem.startswith("cannot display image data (")
    assert "Traceback" not in bad.problem


def test_large_images_are_scaled_down_for_display(qtbot, image_store, monkeypatch):
    from app.services import actions
    from ui import detail_pane

    monkeypatch.setattr(detail_pane, "MAX_DISPLAY_SIDE", 100)
    buf = io.BytesIO()
    Image.new("RGB", (400, 200), (10, 200, 30)).save(buf, "PNG")
    actions.train_image(image_store, "D", data=buf.getvalue(), identifier="big")
    decoded = load_display_image(image_store, "D", "big")
    assert (decoded.image.width(), decoded.image.height()) == (100, 50)


def test_pane_loads_image_off_thread_and_zooms(qtbot, image_store):
    workers = Workers()
    pane = ImageStatusPane()
    qtbot.addWidget(pane)
    pane.resize(400, 500)
    pane.show()
    pane.set_source(ImageSource(workers, image_store), "D")
    pane.show_rows([row("good")])
    qtbot.waitUntil(lambda: pane.showing_image, timeout=3000)
    assert "(fit)" in pane.zoom_label.text()
    pane.zoom_in.click()
    assert "(fit)" not in pane.zoom_label.text()
    pane.zoom_actual.click()
    assert pane.zoom_label.text() == "100%"
    pane.show_rows([row("bad")])
    qtbot.waitUntil(lambda: pane.message_text.startswith("cannot display image data"), timeout=3000)
    assert pane.label.text() == "lbl"  # the rest of the pane still works
    assert workers.shutdown(3000)


def _from_media_server(identifier, declared, position=1):
    """An entry as a Media Server lists it: no pHash, no bytes here, its own hasimagedata."""
    return EntryRow(position, position, identifier, identifier, False, None, None, None, None, None, 0, 0, (),
                    declared)


def test_a_pHash_not_known_and_a_declared_image_are_shown_as_such(qtbot):
    from ui.models.listing_model import COLUMN_INDEX, format_row

    pane = ImageStatusPane()
    qtbot.addWidget(pane)
    pane.show_rows([_from_media_server("ms", True)])
    assert pane.phash.text() == "not known"
    assert pane.grid.cells() == [" "] * 64 and "not known" in pane.grid.toolTip()
    # Both facts, apart: the server holds the image, Hashlens does not.
    assert pane.hasimagedata.text() == "true on the Media Server · not held by Hashlens"
    assert "Media Server listing" in pane.message_text and "removed" not in pane.message_text.lower()
    assert pane.image_info.text() == "— (not held by Hashlens)"
    pane.show_rows([_from_media_server("a", True), row("b", phash=0b1, position=2)])
    assert pane.phash.text().startswith("not known for 1 of 2")
    pane.show_rows([_from_media_server("a", True), _from_media_server("b", False, 2)])
    assert pane.phash.text() == "not known for any of them"
    pane.show()
    pane.grab()
    cells = format_row(_from_media_server("ms", True))
    assert cells[COLUMN_INDEX["phash"]] == "not known" and cells[COLUMN_INDEX["image"]] == "on server only"
    assert format_row(_from_media_server("ms", False))[COLUMN_INDEX["image"]] == "no"
    assert format_row(row("t", has_image=False))[COLUMN_INDEX["image"]] == "removed"
