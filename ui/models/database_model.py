"""Item model of the database picker: every image-hash database with its entry count."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, Qt
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.domain import DatabaseInfo

COUNT_ROLE = Qt.ItemDataRole.UserRole + 1


class DatabaseListModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._databases: list[DatabaseInfo] = []

    def set_databases(self, databases: list[DatabaseInfo]) -> None:
        if databases == self._databases:
            return
        self.beginResetModel()
        self._databases = list(databases)
        self.endResetModel()

    def databases(self) -> list[DatabaseInfo]:
        return list(self._databases)

    def names(self) -> list[str]:
        return [d.name for d in self._databases]

    def row_of(self, name: str | None) -> int:
        return next((i for i, d in enumerate(self._databases) if d.name == name), -1)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._databases)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._databases):
            return None
        info = self._databases[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return info.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{info.name}: {info.entry_count:,} image hashes"
        if role == COUNT_ROLE:
            return info.entry_count
        return None


class DatabaseDelegate(QStyledItemDelegate):
    """Draws the entry count right-aligned in a muted colour beside the name."""

    def paint(self, painter, option, index):
        count = index.data(COUNT_ROLE)
        text = f"{count:,}" if count is not None else ""
        width = option.fontMetrics.horizontalAdvance(text) + 12
        name_option = QStyleOptionViewItem(option)
        name_option.rect = option.rect.adjusted(0, 0, -width, 0)
        super().paint(painter, name_option, index)
        painter.save()
        selected = option.state & QStyle.StateFlag.State_Selected
        role = option.palette.ColorRole.HighlightedText if selected else option.palette.ColorRole.PlaceholderText
        if selected:
            painter.fillRect(QRect(option.rect.right() - width + 1, option.rect.top(), width, option.rect.height()),
                             option.palette.highlight())
        painter.setPen(option.palette.color(role))
        painter.drawText(option.rect.adjusted(0, 0, -8, 0), int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()

    def sizeHint(self, option, index):
        size = super().sizeHint(option, index)
        size.setHeight(max(size.height(), option.fontMetrics.height() + 10))
        return size
