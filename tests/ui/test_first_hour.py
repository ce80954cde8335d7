"""Issue 14's first-hour window points: plain words, right numbers, honest enabled states."""

from __future__ import annotations

from app.domain import Count, ListingQuery, SortKey
from tests.ui.conftest import ANIMALS_TOTAL, wait_idle
from ui.pager import page_text
from ui.status_bar import StatusBar


def test_sort_orders_are_described_in_plain_words():
    for key in SortKey:
        text = ListingQuery(database="D", sort=key, descending=True).describe()
        assert key.words in text
        if key.value not in ("identifier", "label"):
            assert key.value not in text, text
    assert "number of metadata items" in ListingQuery(database="D", sort=SortKey.META_COUNT).describe()


def test_one_entry_is_singular():
    q = ListingQuery(database="D", start=7)
    assert page_text(q, 1, Count(7, True)) == "entry 7 of 7"
    bar = StatusBar()
    bar.show_count(Count(1, True))
    assert bar.count.text() == "1 entry"
    bar.show_count(Count(2, True))
    assert bar.count.text() == "2 entries"


def test_read_only_title_names_the_app_once_and_import_is_disabled(qtbot, make_window, browse_url):
    window = make_window(browse_url, read_only=True)
    assert window.windowTitle().endswith("(read-only) — Hashlens")
    assert window.windowTitle().count("Hashlens") == 1
    assert not window.import_action.isEnabled()
    writable = make_window(browse_url)
    assert writable.import_action.isEnabled()


def test_disabled_metadata_value_is_emptied(qtbot, window):
    panel = window.filter_panel
    equals = next(i for i in range(panel.meta_mode.count()) if panel.meta_mode.itemData(i) == "meta_equals")
    panel.meta_mode.setCurrentIndex(equals)
    panel.meta_value.setText("red")
    other = next(i for i in range(panel.meta_mode.count()) if i != equals)
    panel.meta_mode.setCurrentIndex(other)
    assert not panel.meta_value.isEnabled()
    assert panel.meta_value.text() == ""


def test_long_status_message_is_elided_with_the_whole_in_the_tooltip(qtbot, window):
    text = "Relabel: the store is busy " + "and this explanation goes on " * 40
    window.status_bar.showMessage(text)
    shown = window.status_bar.currentMessage()
    assert "…" in shown and len(shown) < len(text) and shown.startswith("Relabel: the store is busy")
    assert window.status_bar.toolTip() == text
    window.status_bar.showMessage("short")
    assert window.status_bar.currentMessage() == "short" and window.status_bar.toolTip() == ""


def test_remove_database_says_how_many_entries_go(qtbot, window, monkeypatch):
    questions = []
    monkeypatch.setattr(window.prompter, "confirm", lambda title, text, *a: questions.append(text) or False)
    wait_idle(qtbot, window)
    window.entry_actions.remove_database.trigger()
    assert questions and f"its {ANIMALS_TOTAL} entries" in questions[0]
