"""The sidebar's database picker: every image-hash database with its count, mirrors with a server mark, one current."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListView, QVBoxLayout, QWidget

from app.domain import DatabaseInfo, SnapshotInfo
from ui.models.database_model import DatabaseDelegate, DatabaseListModel


def section_title(text: str) -> QLabel:
    """A small upper-case heading for a sidebar section."""
    label = QLabel(text.upper())
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 0.85)
    font.setLetterSpacing(font.SpacingType.PercentageSpacing, 108)
    label.setFont(font)
    label.setForegroundRole(label.palette().ColorRole.PlaceholderText)
    return label


class DatabasePanel(QWidget):
    """Shows the databases; `database_chosen` when the person (or `select`) picks one."""

    database_chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = DatabaseListModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(DatabaseDelegate(self.view))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setUniformItemSizes(True)
        self.view.setMinimumHeight(90)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(section_title("Databases"))
        layout.addWidget(self.view, 1)

    def set_databases(self, databases: list[DatabaseInfo]) -> None:
        self.model.set_databases(databases)

    def set_pending_counts(self, counts: dict[str, int]) -> None:
        """Each mirror's count of staged changes, shown beside its entry count."""
        self.model.set_pending_counts(counts)

    def names(self) -> list[str]:
        return self.model.names()

    def mirror_of(self, name: str | None) -> SnapshotInfo | None:
        """The latest snapshot when `name` is a mirror, else None."""
        info = self.model.info(name)
        return info.mirror if info is not None else None

    def restyle(self) -> None:
        self.model.restyle()

    def add_context_actions(self, actions) -> None:
        for action in actions:
            self.view.addAction(action)

    def select(self, name: str) -> bool:
        """Make `name` current and selected; False if there is no such database."""
        row = self.model.row_of(name)
        if row < 0:
            return False
        # The view may already have made this row current (after a reset) without
        # selecting it: select it explicitly, and say so even if the current row did not move.
        self.view.selectionModel().setCurrentIndex(self.model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.database_chosen.emit(name)
        return True

    def _on_view_current_changed(self, current, _previous) -> None:
        if current.isValid():
            self.database_chosen.emit(self.model.names()[current.row()])
