"""The one pHash grid widget: 64 bits as 8×8 cells, for one hash or the bits where several differ."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ui.theme import current_accents

PHASH_NOT_KNOWN_NOTE = ("a Media Server lists no pHash, so entries pulled or imported from one have none "
                        "until Attach images computes it from the image files.")
PHASH_NOTE = ("The pHash is Hashlens's own 64-bit perceptual hash of the training image, "
              "used to find duplicates; Media Server never returns one.")


class PhashGrid(QWidget):
    """The 64 bits of a pHash as an 8×8 grid, most significant bit top left. For several
    hashes, bits they all share are drawn as usual and bits that differ are marked (the
    detail pane shows a selection this way, the audit a member against its group's first)."""

    def __init__(self, parent=None, cell_px: int = 14):
        super().__init__(parent)
        self._hashes: list[int] = []
        self._cell_px = cell_px
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setToolTip("The pHash as an 8×8 bit grid (dark = 1). " + PHASH_NOTE)

    def set_hashes(self, hashes: list[int | None]) -> None:
        """The hashes to draw; a pHash that is not known (None) draws nothing: an empty grid."""
        self._hashes = [h for h in hashes if h is not None]
        if not self._hashes and hashes:
            self.setToolTip("The pHash is not known: " + PHASH_NOT_KNOWN_NOTE)
        elif len(self._hashes) == 2:
            self.setToolTip(f"{self.differing_bits} of 64 bits differ from the group's first entry")
        else:
            self.setToolTip("The pHash as an 8×8 bit grid (dark = 1). " + PHASH_NOTE)
        self.update()

    @property
    def differing_bits(self) -> int:
        """How many bits are not the same in every hash shown."""
        return self.cells().count("?")

    def sizeHint(self) -> QSize:
        return QSize(8 * self._cell_px + 2, 8 * self._cell_px + 2)

    def cells(self) -> list[str]:
        """Each bit as '1', '0' or '?' (differs among the hashes): what the grid draws."""
        result = []
        for bit in range(63, -1, -1):
            values = {(h >> bit) & 1 for h in self._hashes}
            result.append("?" if len(values) > 1 else ("1" if values == {1} else "0") if values else " ")
        return result

    def paintEvent(self, _event):
        painter = QPainter(self)
        accents = current_accents()
        on, off, mixed = QColor(accents["bit_on"]), QColor(accents["bit_off"]), QColor(accents["bit_mixed"])
        border = self.palette().color(self.palette().ColorRole.Mid)
        side = min(self.width(), self.height()) - 2
        cell = side / 8
        painter.setPen(QPen(border, 1))
        for i, value in enumerate(self.cells()):
            r, c = divmod(i, 8)
            rect = QRectF(1 + c * cell, 1 + r * cell, cell, cell)
            color = {"1": on, "0": off, "?": mixed}.get(value)
            painter.setBrush(color if color is not None else self.palette().window())
            painter.drawRect(rect)
        painter.end()
