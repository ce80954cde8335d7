"""Item model of the metadata pane: one entry's key/value items, or what several share."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QFont

from app.domain import EntryRow

DIFFERS = object()  # marks a key every selected entry has, with different values


def shared_metadata(rows: list[EntryRow]) -> tuple[list[tuple[str, object]], int]:
    """Items of one entry in the order added; for several, the keys all of them have
    (value DIFFERS where values disagree) and how many other keys some of them have."""
    if not rows:
        return [], 0
    items = [dict(r.metadata or ()) for r in rows]
    first = list(rows[0].metadata or ())
    if len(rows) == 1:
        return first, 0
    common = [k for k, _ in first if all(k in d for d in items[1:])]
    result = []
    for key in common:
        values = {d[key] for d in items}
        result.append((key, values.pop() if len(values) == 1 else DIFFERS))
    every = set().union(*(d.keys() for d in items))
    return result, len(every) - len(common)


class MetadataModel(QAbstractTableModel):
    HEADERS = ("Key", "Value")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._items: list[tuple[str, object]] = []
        self._italic = QFont()
        self._italic.setItalic(True)

    def set_items(self, items: list[tuple[str, object]]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def items(self) -> list[tuple[str, object]]:
        return list(self._items)

    def key(self, row: int) -> str:
        return self._items[row][0]

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else 2

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._items):
            return None
        key, value = self._items[index.row()]
        differs = value is DIFFERS
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if index.column() == 0:
                return key
            return "(values differ)" if differs else value
        if role == Qt.ItemDataRole.FontRole and differs and index.column() == 1:
            return self._italic
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < 2:
            return self.HEADERS[section]
        return None

    def flags(self, index):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
