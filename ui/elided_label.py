"""Labels that never run into their neighbours: one line shortened with an ellipsis (the
whole in the tooltip), or wrapped lines whose height the layouts are told about."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    """`text()` is the whole text; what is drawn is shortened in the middle to the width
    (an identifier has no spaces to wrap at, so a wrapping label would cut it silently)."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setText(text)

    def text(self) -> str:  # noqa: D102 (QLabel's name)
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 (QLabel's name)
        self._full = text
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = max(0, self.contentsRect().width())
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, room) if room else self._full
        super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")


class WrappingLabel(QLabel):
    """A word-wrapped label whose minimum height is what its text needs at its width.

    Qt answers height-for-width only to the layout of a top-level window; a splitter's
    pane is sized from minimum size hints, so a plain wrapped label in a narrow pane got
    fewer lines of height than it drew and ran into the row below (issue 14). Telling the
    layouts its wrapped height makes the pane, and so the window, honest about its minimum."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self._height = -1

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        width = self.width() if self.width() > 1 else super().sizeHint().width()
        return QSize(0, self.heightForWidth(width))

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(super().sizeHint().width(), self.minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        height = self.heightForWidth(self.width())
        if height != self._height:
            self._height = height
            self.updateGeometry()
