"""At the window's minimum size and at 1280×800, light and dark, nothing in the detail pane,
the sidebar or the pager overlaps, is cut off, or shows less than its text (issue 14).

The checks are geometric, not pixel comparisons: every visible leaf widget (label, button,
field, view) of a pane lies inside the pane and inside its parent, no two of them overlap,
a label shows its whole text (one line: the text's width fits; wrapped: the height its
width needs fits; an ElidedLabel shortens with the whole text in its tooltip by design),
and buttons, spin boxes and plain combo boxes are at least as wide as their size hints."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from tests.ui.conftest import wait_idle
from ui.elided_label import ElidedLabel
from ui.phash_grid import PhashGrid

LEAVES = (QLabel, QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractScrollArea, PhashGrid)


def leaves(pane: QWidget) -> list[QWidget]:
    """The visible widgets a person reads or clicks, not looking inside composite ones."""
    found = []

    def walk(widget: QWidget) -> None:
        for child in widget.children():
            if not isinstance(child, QWidget) or not child.isVisible() or child.isWindow():
                continue
            if isinstance(child, LEAVES):
                found.append(child)
            else:
                walk(child)

    walk(pane)
    return found


def rect_in(widget: QWidget, pane: QWidget) -> QRect:
    return QRect(widget.mapTo(pane, widget.rect().topLeft()), widget.size())


def problems(pane: QWidget) -> list[str]:
    found = []
    items = leaves(pane)
    name = type(pane).__name__
    for widget in items:
        what = f"{name}: {type(widget).__name__} {_text(widget)!r}"
        rect = rect_in(widget, pane)
        if widget.width() <= 0 or widget.height() <= 0:
            found.append(f"{what} has no room ({widget.width()}×{widget.height()})")
            continue
        if not pane.rect().contains(rect):
            found.append(f"{what} at {rect.getRect()} sticks out of the pane {pane.rect().getRect()}")
        parent = widget.parentWidget()
        if parent is not pane and not parent.rect().contains(widget.geometry()):
            found.append(f"{what} is cut by its parent {type(parent).__name__}")
        if isinstance(widget, ElidedLabel):
            pass  # shortens by design; the whole text is in its tooltip
        elif isinstance(widget, QLabel) and widget.text() and widget.pixmap().isNull():
            room = widget.contentsRect()
            if widget.wordWrap():
                need = widget.heightForWidth(widget.width())
                if need > widget.height():
                    found.append(f"{what} needs {need} px of height, has {widget.height()}")
            else:
                lines = widget.text().split("\n")
                wide = max(widget.fontMetrics().horizontalAdvance(line) for line in lines)
                if wide > room.width():
                    found.append(f"{what} needs {wide} px, has {room.width()}")
                if widget.fontMetrics().height() * len(lines) > room.height():
                    found.append(f"{what} is cut vertically ({room.height()} px)")
        elif isinstance(widget, (QAbstractButton, QAbstractSpinBox)) or (
                isinstance(widget, QComboBox) and not widget.isEditable()):
            if widget.sizeHint().width() > widget.width():
                found.append(f"{what} is {widget.width()} px wide, needs {widget.sizeHint().width()}")
        elif isinstance(widget, (QLineEdit, QComboBox)) and widget.minimumSizeHint().width() > widget.width():
            found.append(f"{what} is {widget.width()} px wide, below its minimum {widget.minimumSizeHint().width()}")
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.isAncestorOf(b) or b.isAncestorOf(a):
                continue
            if rect_in(a, pane).intersects(rect_in(b, pane)):
                found.append(f"{name}: {type(a).__name__} {_text(a)!r} overlaps {type(b).__name__} {_text(b)!r}")
    return found


def _text(widget: QWidget) -> str:
    for getter in ("text", "currentText", "placeholderText"):
        if hasattr(widget, getter):
            value = getattr(widget, getter)()
            if value:
                return value[:30]
    return widget.objectName()


def settle(qtbot, window) -> None:
    for _ in range(3):
        QApplication.processEvents()
        window.layout().activate()
    qtbot.wait(50)  # timers the panes use to re-lay out after a resize
    QApplication.processEvents()


@pytest.fixture
def shown(qtbot, window):
    """The window with one entry selected (its image, counts and pHash shown)."""
    window.table.select_row(0)
    qtbot.waitUntil(lambda: window.image_pane.showing_image, timeout=5000)
    yield window
    window.set_theme("light")


def panes(window) -> list[QWidget]:
    return [window.image_pane, window.metadata_pane, window.database_panel, window.filter_panel, window.pager]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_at_the_minimum_size_nothing_overlaps_or_is_cut(qtbot, shown, scheme):
    window = shown
    window.set_theme(scheme)
    window.resize(1, 1)  # clamped to the smallest size the window allows
    settle(qtbot, window)
    found = [p for pane in panes(window) for p in problems(pane)]
    assert not found, "\n".join(found)
    go_to = window.pager.go_to
    assert go_to.width() >= go_to.fontMetrics().horizontalAdvance(go_to.placeholderText()), "'go to entry' is cut"
    header = window.metadata_pane.table.horizontalHeader()
    assert header.length() <= window.metadata_pane.table.viewport().width(), "the metadata columns are cut"
    assert window.width() <= 1024 and window.height() <= 600, "the window must fit a 1024×600 screen"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_at_1280_by_800_nothing_overlaps_or_is_cut(qtbot, shown, scheme):
    window = shown
    window.set_theme(scheme)
    window.resize(1280, 800)
    settle(qtbot, window)
    found = [p for pane in panes(window) for p in problems(pane)]
    assert not found, "\n".join(found)


def test_the_near_results_show_every_column_at_1280_by_800(qtbot, shown):
    window = shown
    window.resize(1280, 800)
    window.filter_panel.distance.setValue(20)
    window.filter_panel.use_selected.click()
    qtbot.waitUntil(lambda: window.model.query is not None and window.model.query.reference is not None,
                    timeout=5000)
    wait_idle(qtbot, window)
    settle(qtbot, window)
    header = window.table.horizontalHeader()
    assert header.length() <= window.table.viewport().width(), "a column is off-screen or cut"
