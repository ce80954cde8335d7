"""Item model of the database picker: every image-hash database with its entry count; mirrors with a server mark."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, Qt
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.domain import DatabaseInfo
from app.mediaserver.mirror import iso_time
from ui.icons import icon

COUNT_ROLE = Qt.ItemDataRole.UserRole + 1
MIRROR_ROLE = Qt.ItemDataRole.UserRole + 2  # the latest SnapshotInfo of a mirror, else None
PENDING_ROLE = Qt.ItemDataRole.UserRole + 3  # a mirror's staged changes not yet on its server


def mirror_tooltip(info: DatabaseInfo) -> str:
    """Where a mirror comes from and how fresh it is, in words for its tooltip."""
    snap = info.mirror
    return (f"{info.name}: mirror of Media Server database '{snap.source.database}' at {snap.source.url}\n"
            f"Snapshot {snap.number}, as of {iso_time(snap.taken_at)}\n"
            f"{info.entry_count:,} image hashes. Read-only here; View ▸ Pull mirror again (Shift+F5) refreshes it.")


class DatabaseListModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._databases: list[DatabaseInfo] = []
        self._icons: dict[str, object] = {}  # built on first use, once (not per data() call)
        self._pending: dict[str, int] = {}

    def set_databases(self, databases: list[DatabaseInfo]) -> None:
        if databases == self._databases:
            return
        self.beginResetModel()
        self._databases = list(databases)
        self.endResetModel()

    def set_pending_counts(self, counts: dict[str, int]) -> None:
        """Each mirror's staged changes not yet pushed (absent: none)."""
        counts = {k: v for k, v in counts.items() if v}
        if counts == self._pending:
            return
        self._pending = counts
        if self._databases:
            self.dataChanged.emit(self.index(0), self.index(len(self._databases) - 1),
                                  [PENDING_ROLE, Qt.ItemDataRole.ToolTipRole])

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
            if info.mirror is not None:
                pending = self._pending.get(info.name)
                return mirror_tooltip(info) + (f"\n{pending:,} staged change(s) not yet pushed (View ▸ Pending "
                                               "changes)." if pending else "")
            return f"{info.name}: {info.entry_count:,} image hashes"
        if role == Qt.ItemDataRole.DecorationRole:
            # The server mark for a mirror; local databases get the plain mark, so names align.
            name = "server" if info.mirror is not None else "database"
            if name not in self._icons:
                self._icons[name] = icon(name)
            return self._icons[name]
        if role == COUNT_ROLE:
            return info.entry_count
        if role == MIRROR_ROLE:
            return info.mirror
        if role == PENDING_ROLE:
            return self._pending.get(info.name, 0)
        return None

    def restyle(self) -> None:
        """Redraw the marks in the current palette (after a theme change)."""
        self._icons.clear()
        if self._databases:
            self.dataChanged.emit(self.index(0), self.index(len(self._databases) - 1),
                                  [Qt.ItemDataRole.DecorationRole])

    def info(self, name: str | None) -> DatabaseInfo | None:
        row = self.row_of(name)
        return self._databases[row] if row >= 0 else None


class DatabaseDelegate(QStyledItemDelegate):
    """Draws the entry count right-aligned in a muted colour beside the name."""

    def paint(self, painter, option, index):
        count = index.data(COUNT_ROLE)
        text = f"{count:,}" if count is not None else ""
        pending = index.data(PENDING_ROLE)
        if pending:
            text = f"{pending:,} to push · {text}"
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
