"""The filter panel: widgets become one ListingQuery; bad input is a message, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt

from app.domain import Filter, FilterOp, HashlensError, ListingQuery
from app.store import Store
from app.mediaserver_codec.lists import format_identifier_list, split_identifier_list
from ui.filter_panel import FilterPanel


@pytest.fixture
def panel(qtbot):
    p = FilterPanel()
    qtbot.addWidget(p)
    p.set_database("Animals")
    return p


def test_database_switch_emits_at_once(qtbot):
    p = FilterPanel()
    qtbot.addWidget(p)
    with qtbot.waitSignal(p.query_changed, timeout=100) as blocker:
        p.set_database("Animals")
    assert blocker.args[0] == ListingQuery("Animals")


def test_typing_is_debounced_into_one_query(qtbot, panel):
    seen = []
    panel.query_changed.connect(seen.append)
    qtbot.keyClicks(panel.label_text, "cat")
    assert seen == []  # nothing while typing
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=2000)
    assert seen[0].filters == (Filter(FilterOp.LABEL_CONTAINS, "cat"),)
    qtbot.keyClick(panel.label_text, Qt.Key.Key_Return)  # same query again: not re-emitted
    assert len(seen) == 1


def test_every_filter_combines_with_and(qtbot, panel):
    panel.identifiers.setText('a001,"a,comma",a001')
    panel.label_mode.setCurrentIndex(1)
    panel.label_text.setText("dog-001")
    panel.image_data.setCurrentIndex(2)
    panel.meta_key.setEditText("colour")
    panel.meta_mode.setCurrentIndex(2)
    panel.meta_value.setText("red")
    panel.near_hash.setText("0x00000000000000ff")
    panel.distance.setValue(3)
    q = panel.query()
    assert q.identifiers == ("a001", "a,comma", "a001")
    assert q.filters == (
        Filter(FilterOp.LABEL_EQUALS, "dog-001"),
        Filter(FilterOp.HAS_IMAGE_DATA, False),
        Filter(FilterOp.META_EQUALS, "red", key="colour"),
        Filter(FilterOp.PHASH_WITHIN, 0xFF, distance=3),
    )
    assert all(isinstance(f.op, FilterOp) for f in q.filters)
    assert "label is 'dog-001'" in q.describe()


def test_bad_input_shows_a_message_and_emits_nothing(qtbot, panel):
    seen = []
    panel.query_changed.connect(seen.append)
    panel.near_hash.setText("not-hex")
    panel.flush()
    assert seen == []
    assert "hex" in panel.error_text
    panel.near_hash.setText("")
    panel.label_text.setText("x" * 255)
    panel.flush()
    assert "254" in panel.error_text
    panel.label_text.setText("")
    panel.flush()
    assert panel.error_text == ""
    # Back to the listing the table still shows: nothing new to emit.
    assert seen == [] and panel.query() == ListingQuery("Animals")


def test_clear_resets_everything(qtbot, panel):
    panel.label_text.setText("cat")
    panel.image_data.setCurrentIndex(1)
    panel.near_hash.setText("ff")
    panel.flush()
    with qtbot.waitSignal(panel.query_changed, timeout=200) as blocker:
        panel.clear()
    assert blocker.args[0] == ListingQuery("Animals")
    assert panel.label_text.text() == "" and panel.image_data.currentIndex() == 0


def test_set_query_round_trips(qtbot, panel):
    query = ListingQuery("Plants", identifiers=("p0", 'a,"b'), filters=(
        Filter(FilterOp.LABEL_CONTAINS, "fern"), Filter(FilterOp.HAS_IMAGE_DATA, True),
        Filter(FilterOp.META_ABSENT, key="k"), Filter(FilterOp.PHASH_WITHIN, 12345, distance=5)))
    with qtbot.waitSignal(panel.query_changed, timeout=200) as blocker:
        panel.set_query(query)
    assert blocker.args[0] == query


def test_identifier_field_reads_and_writes_through_the_one_codec(qtbot, panel):
    """The panel's text is the codec's: an identifier like ' "x' survives being shown
    and read back (the panel once had a codec of its own that lost it)."""
    awkward = (' "x', "a,b", "plain", 'e"f', "back\\slash")
    with qtbot.waitSignal(panel.query_changed, timeout=2000):
        panel.set_query(ListingQuery(database="Animals", identifiers=awkward))
    assert panel.identifiers.text() == format_identifier_list(awkward)
    panel.identifiers.end(False)
    with qtbot.waitSignal(panel.query_changed, timeout=2000) as blocker:
        qtbot.keyClicks(panel.identifiers, "," + format_identifier_list([' "y']))
    assert blocker.args[0].identifiers == awkward + (' "y',)
    assert split_identifier_list('a, b,"c,d",,"e\\"f"') == ["a", " b", "c,d", 'e"f']


def test_use_selected_entry_fills_the_hash(qtbot, panel):
    assert not panel.use_selected.isEnabled()
    panel.set_reference("00000000000000aa")
    with qtbot.waitSignal(panel.query_changed, timeout=200) as blocker:
        panel.use_selected.click()
    assert blocker.args[0].filters == (Filter(FilterOp.PHASH_WITHIN, 0xAA, distance=8),)


@pytest.fixture(scope="module")
def property_store(tmp_path_factory):
    from tests.ui.conftest import build_browse_store

    path = tmp_path_factory.mktemp("prop") / "p.db"
    build_browse_store("sqlite:///" + str(path))
    store = Store.open("sqlite:///" + str(path), read_only=True)
    yield store
    store.close()


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=texts, label=texts, key=texts, value=texts, near=texts, mode=st.integers(0, 2))
def test_any_text_gives_rows_or_a_typed_error(qtbot, property_store, ids, label, key, value, near, mode):
    """Whatever is typed, the panel yields a query the store answers, or a HashlensError."""
    panel = FilterPanel()
    panel.set_database("Animals")
    panel.identifiers.setText(ids)
    panel.label_text.setText(label)
    panel.meta_key.setEditText(key)
    panel.meta_mode.setCurrentIndex(mode)
    panel.meta_value.setText(value)
    panel.near_hash.setText(near)
    try:
        query = panel.query()
    except HashlensError as exc:
        assert exc.description
        panel.deleteLater()
        return
    page = property_store.list_page(query.window(1, 20))
    assert len(page.rows) <= 20
    panel.deleteLater()
