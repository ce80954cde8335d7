"""Issue 14's first-hour window points: plain words, right numbers, honest enabled states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from app.domain import Count, ListingQuery, SortKey
from tests.ui.conftest import ANIMALS_TOTAL, wait_idle
from ui.pager import page_text, parse_entry_number
from ui.status_bar import StatusBar


def test_sort_orders_are_described_in_plain_words():
    for key in SortKey:
        text = ListingQuery(database="D", sort=key, descending=True).describe()
        assert key.words in text
        if key.value not in ("identifier", "label", "distance"):
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


@given(st.integers(min_value=1, max_value=2_000_000_000), st.sampled_from([",", " ", "_", "\u202f", ""]))
def test_entry_numbers_are_read_with_thousands_separators(number, separator):
    assert parse_entry_number(f"{number:,}".replace(",", separator)) == number


@pytest.mark.parametrize("text, why", [("0", "numbered from 1"), ("", "type an entry number"),
                                       ("ten", "'ten' is not a number"), ("-5", "'-5' is not a number")])
def test_refused_entry_numbers_say_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_entry_number(text)


def test_go_to_entry_reads_separators_refuses_aloud_and_clears(qtbot, window):
    pager = window.pager
    pager.go_to.setText("0")
    with qtbot.waitSignal(pager.go_to_refused) as refused:
        qtbot.keyClick(pager.go_to, Qt.Key.Key_Return)
    assert "numbered from 1" in refused.args[0] and "numbered from 1" in window.status_bar.currentMessage()
    assert pager.go_to.text() == "0" and window.model.query.start == 1
    pager.go_to.setText("1,000")
    qtbot.keyClick(pager.go_to, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.query.start == 1000, timeout=3000)
    assert pager.go_to.text() == ""


def test_pager_buttons_stay_put_and_last_is_off_on_the_last_page(qtbot, window):
    pager = window.pager
    next_x = pager.next.mapTo(pager, pager.next.rect().topLeft()).x()
    pager.go_to.setText("57")
    qtbot.keyClick(pager.go_to, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.query.start == 57, timeout=3000)
    wait_idle(qtbot, window)
    assert pager.indicator.text() == f"entries 57–{ANIMALS_TOTAL} of {ANIMALS_TOTAL}"
    assert pager.next.mapTo(pager, pager.next.rect().topLeft()).x() == next_x
    assert not pager.next.isEnabled() and not pager.last.isEnabled()
    qtbot.mouseClick(pager.first, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model.query.start == 1, timeout=3000)
    wait_idle(qtbot, window)
    assert pager.last.isEnabled()


def test_the_windows_own_import_shows_its_database_and_no_changed_elsewhere(qtbot, make_window, browse_url,
                                                                          tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.exports.export import export_listing
    from app.exports.formats import ExportOptions
    from app.store import Store
    from ui.import_dialog import ImportDialog

    source = tmp_path / "plants.ndjson"
    store = Store.open(browse_url)
    export_listing(store, ListingQuery("Plants"), source, ExportOptions("ndjson"))
    store.close()
    window = make_window(browse_url)
    seen = {}

    def drive():
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ImportDialog) and w.isVisible())
        dialog.path_edit.setText(str(source))
        dialog.database_combo.setCurrentText("Greenhouse")
        with qtbot.waitSignal(dialog.imported, timeout=10000):
            dialog.import_button.click()
        # While the dialog is still open: the picker has the database, and a poll finds no stranger.
        qtbot.waitUntil(lambda: "Greenhouse" in window.database_panel.names(), timeout=5000)
        qtbot.waitUntil(lambda: not window.session._seen_pending, timeout=5000)
        with qtbot.waitSignal(window.session.polled, timeout=5000):
            window.session.poll()
        seen["stale"] = window.session.stale or window.change_hint.isVisible()
        dialog.accept()

    QTimer.singleShot(0, drive)
    window.open_import()
    assert seen == {"stale": False}
    qtbot.waitUntil(lambda: window.filter_panel.database == "Greenhouse", timeout=5000)


def test_a_thousand_identical_refusals_read_as_one_line():
    from ui.entry_actions import group_failures

    failures = [(f"id{i}", f"Metadata key 'colour' already exists on 'id{i}'.") for i in range(1000)]
    failures.append(("odd", "Something else."))
    text = group_failures(failures)
    assert text.splitlines() == [
        "1,000 entries (id0, id1, id2, id3, id4, …): Metadata key 'colour' already exists on this entry.",
        "1 entry (odd): Something else.",
    ]


def test_errors_name_the_thing_not_the_aci_parameter():
    from app.store.errors import identifier_exists
    from ui.errors import plain_words

    assert plain_words(identifier_exists("cat-1", "newidentifier", "Animals").description) == \
        "An entry with the identifier 'cat-1' already exists in 'Animals'"
    assert plain_words("'newdatabase=Plants' already exists") == "A database named 'Plants' already exists"
    assert plain_words("'frobnicate=x' already exists") == "'frobnicate=x' already exists"  # unknown: left as is


def test_default_columns_leave_out_position_status_and_image_data(qtbot, window):
    from ui.models.listing_model import COLUMN_INDEX

    header = window.table.horizontalHeader()
    for hidden in ("position", "status", "image"):
        assert header.isSectionHidden(COLUMN_INDEX[hidden])
    for name in ("identifier", "label", "meta", "phash", "size", "trained"):
        assert not header.isSectionHidden(COLUMN_INDEX[name]), name
    # Still one click away: the header menu shows them, and choosing one shows it.
    header.setSectionHidden(COLUMN_INDEX["status"], False)
    assert COLUMN_INDEX["status"] in window.table.visible_columns()


def test_a_long_identifier_in_the_detail_pane_ends_in_an_ellipsis(qtbot):
    from ui.elided_label import ElidedLabel

    label = ElidedLabel()
    qtbot.addWidget(label)
    label.resize(120, 30)
    label.show()
    whole = "0123456789abcdef" * 4
    label.setText(whole)
    assert label.text() == whole and label.toolTip() == whole
    drawn = QLabel.text(label)
    assert "…" in drawn and len(drawn) < len(whole)
    label.setText("short")
    assert QLabel.text(label) == "short" and label.toolTip() == ""


def test_at_the_minimum_size_the_pager_text_does_not_overlap_go_to(qtbot, window):
    window.resize(730, 700)
    qtbot.waitUntil(lambda: window.width() <= max(730, window.minimumSizeHint().width()), timeout=3000)
    pager = window.pager
    pager.layout().activate()
    order = [pager.first, pager.previous, pager.indicator, pager.stop, pager.next, pager.last, pager.go_to,
             pager.page_size]
    for left, right in zip(order, order[1:]):
        assert left.geometry().right() < right.geometry().left(), (left, right)
    assert pager.indicator.toolTip() == pager.indicator.text() or QLabel.text(pager.indicator) == pager.indicator.text()


@pytest.mark.parametrize("width", [730, 420])
def test_the_empty_store_subtitle_is_not_clipped(qtbot, width):
    from ui.empty_state import EmptyState

    state = EmptyState()
    qtbot.addWidget(state)
    state.resize(width, 600)
    state.show()
    state.show_empty_store("/home/operator/stores/" + "long-directory-name/" * 3 + "hashes.db", False)
    qtbot.waitUntil(lambda: state.text.height() >= state.text.heightForWidth(state.text.width()), timeout=3000)
    assert state.text.geometry().right() < state.width() and state.title.geometry().right() < state.width()


def test_edit_dialogs_check_while_typing_and_keep_the_text(qtbot):
    from ui.entry_actions import text_check
    from ui.prompts import TextDialog

    dialog = TextDialog("Rename identifier", "New identifier:", "cat-1", text_check("identifier"))
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert ok.isEnabled() and dialog.reason.isHidden()
    dialog.line.setText("   ")
    assert not ok.isEnabled() and "white space" in dialog.reason.text()
    assert "Parameter" not in dialog.reason.text() and dialog.line.text() == "   "
    dialog.line.setText("x" * 300)
    assert not ok.isEnabled() and dialog.reason.text().startswith("The identifier cannot be used")
    dialog.line.setText("cat-2")
    assert ok.isEnabled() and dialog.reason.isHidden()


def test_near_results_show_distance_nearest_first_and_keep_the_reference_selected(qtbot, window):
    from ui.models.listing_model import COLUMN_INDEX

    header = window.table.horizontalHeader()
    distance = COLUMN_INDEX["distance"]
    assert header.isSectionHidden(distance)
    window.table.select_row(3)
    reference = window.model.row(3)
    window.filter_panel.distance.setValue(64)  # every entry: the whole order is visible
    window.filter_panel.use_selected.click()
    qtbot.waitUntil(lambda: window.model.query.reference == reference.phash, timeout=3000)
    wait_idle(qtbot, window)
    assert window.model.sort_order == (SortKey.DISTANCE, False)
    assert not header.isSectionHidden(distance)
    assert header.sortIndicatorSection() == distance
    shown = [int(window.model.data(window.model.index(r, distance))) for r in range(window.model.rowCount())]
    assert shown[0] == 0 and shown == sorted(shown)
    assert shown == [bin(r.phash ^ reference.phash).count("1") for r in window.model.rows]
    qtbot.waitUntil(lambda: [r.key for r in window.table.selected_rows()] == [reference.key], timeout=3000)
    assert window.image_pane.identifier.text() == reference.identifier
    # Another order on request; without the near filter the column goes and training order returns.
    window.model.sort(COLUMN_INDEX["label"])
    wait_idle(qtbot, window)
    assert window.model.sort_order == (SortKey.LABEL, False)
    window.filter_panel.clear()
    qtbot.waitUntil(lambda: window.model.query.reference is None, timeout=3000)
    wait_idle(qtbot, window)
    assert header.isSectionHidden(distance)
    assert window.model.sort_order[0] is SortKey.LABEL  # a person's own choice stays
    window.filter_panel.find_similar(reference.phash_hex)
    wait_idle(qtbot, window)
    window.filter_panel.clear()
    wait_idle(qtbot, window)
    assert window.model.sort_order == (SortKey.POSITION, False)
    # Clicking Distance with no near filter changes nothing.
    window.table.sortByColumn(distance, Qt.SortOrder.AscendingOrder)
    assert window.model.sort_order == (SortKey.POSITION, False)
    assert header.sortIndicatorSection() != distance


def test_a_refused_edit_asks_again_with_the_typing_and_the_reason(qtbot, window, monkeypatch):
    """Rename to a taken identifier: the store refuses after OK; the question comes back
    with what was typed and why, in plain words, instead of an error that loses it."""
    asked = []

    def text(title, label, value="", check=None, reason=None):
        asked.append((value, reason))
        return "a001" if len(asked) == 1 else None

    monkeypatch.setattr(window.prompter, "text", text)
    window.table.select_row(0)
    assert window.model.row(0).identifier == "a000"
    window.entry_actions.rename.trigger()
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=5000)
    assert asked[0] == ("a000", None)
    value, reason = asked[1]
    assert value == "a001" and "already" in reason and "newidentifier" not in reason


def test_new_database_refuses_a_taken_name_while_typing(qtbot, window):
    from ui.entry_actions import text_check

    check = text_check("database name", lambda: window.entry_actions.databases)
    assert "already exists" in check("Animals")
    assert check("Animals 2") is None


def test_default_columns_fit_at_1280_by_800_with_long_identifiers(qtbot, make_window, tmp_path):
    """32-digit identifiers and long labels: pHash, Image size and Trained at are still
    whole on screen (the identifier and label elide, their whole text in the tooltip)."""
    import random

    from app.services import actions
    from app.store import Store
    from tests.conftest import make_image
    from ui.models.listing_model import COLUMN_INDEX

    url = "sqlite:///" + str(tmp_path / "long.db")
    store = Store.open(url)
    actions.create_database(store, "Press photos")
    rnd = random.Random(5)
    for i in range(30):
        actions.train_image(store, "Press photos", data=make_image(i, size=(320, 240), fmt="JPEG"),
                            identifier=f"{rnd.getrandbits(128):032x}", label=f"a rather long label number {i:04d}")
    store.close()
    window = make_window(url)
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.table._sized, timeout=5000)
    window.table.size_columns()  # as on the first page, now at this size
    table, header = window.table, window.table.horizontalHeader()
    for name in ("phash", "size", "trained"):
        section = COLUMN_INDEX[name]
        assert not header.isSectionHidden(section), name
        right = header.sectionViewportPosition(section) + header.sectionSize(section)
        assert right <= table.viewport().width(), (name, right, table.viewport().width())
        # Whole values, not clipped: the section is as wide as its widest value on the page.
        assert header.sectionSize(section) >= table.sizeHintForColumn(section), name


def test_dark_text_fields_have_a_visible_edge(qtbot, qapp):
    """Fusion's frame is the dark window colour darkened, i.e. the field's own colour:
    the dark theme's style sheet draws an edge that stands out from the field."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QLineEdit

    from ui.theme import ThemeManager

    before_palette, before_sheet, before_style = qapp.palette(), qapp.styleSheet(), qapp.style().name()
    theme = ThemeManager(qapp, "dark")
    try:
        field = QLineEdit("text")
        qtbot.addWidget(field)
        field.resize(160, 30)
        field.show()
        image = field.grab().toImage()
        middle = image.height() // 2
        inside = QColor(image.pixel(image.width() // 2 + 40, middle))
        edge = max((QColor(image.pixel(x, middle)) for x in range(0, 3)), key=lambda c: c.lightness())
        assert edge.lightness() - inside.lightness() > 40, (edge.name(), inside.name())
    finally:
        theme.set_mode("light")
        qapp.setPalette(before_palette)
        qapp.setStyleSheet(before_sheet)
        qapp.setStyle(before_style)


@pytest.mark.parametrize("kind", ["spin", "editable combo", "combo"])
def test_dark_spin_and_combo_boxes_have_an_edge_and_keep_their_arrows(qtbot, qapp, kind):
    """The edge is drawn by the style over Fusion's frame; a style sheet on these boxes
    had dropped their arrows (issue 14)."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QComboBox, QSpinBox, QStyle, QStyleOptionComboBox, QStyleOptionSpinBox

    from ui.theme import ThemeManager

    before_palette, before_style = qapp.palette(), qapp.style().name()
    theme = ThemeManager(qapp, "dark")
    try:
        if kind == "spin":
            box = QSpinBox()
            box.setSuffix(" bits")
        else:
            box = QComboBox()
            box.setEditable(kind == "editable combo")
            box.addItems(["100 / page", "500 / page"])
        qtbot.addWidget(box)
        box.resize(140, 30)
        box.show()
        image = box.grab().toImage()
        middle = image.height() // 2
        inside = QColor(image.pixel(20, 5))  # above the text
        edge = max((QColor(image.pixel(x, middle)) for x in range(0, 3)), key=lambda c: c.lightness())
        assert edge.lightness() - inside.lightness() > 40, (edge.name(), inside.name())
        if kind == "spin":
            option = QStyleOptionSpinBox()
            box.initStyleOption(option) if hasattr(box, "initStyleOption") else option.initFrom(box)
            arrow = box.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, option,
                                               QStyle.SubControl.SC_SpinBoxUp, box)
        else:
            option = QStyleOptionComboBox()
            box.initStyleOption(option)
            arrow = box.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                               QStyle.SubControl.SC_ComboBoxArrow, box)
        light = [QColor(image.pixel(x, y)).lightness() for x in range(arrow.left() + 2, arrow.right() - 1)
                 for y in range(arrow.top() + 2, arrow.bottom() - 1)]
        assert light and max(light) > 150, "the arrow is not drawn"
    finally:
        theme.set_mode("light")
        qapp.setPalette(before_palette)
        qapp.setStyle(before_style)
