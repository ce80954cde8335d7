"""A one-line label that ends in an ellipsis when its text does not fit; the whole is in the tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt
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
