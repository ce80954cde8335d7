"""The Changes view: what changed in the current mirror since its previous pull, one finding a row; activating one opens the table filtered to it."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTreeView, QVBoxLayout, QWidget

from app.domain import HashlensError, SnapshotInfo
from app.mediaserver import mirror

# Rows in the view; the summary above it counts every finding (`hashlens diff` lists all).
FINDINGS_SHOWN = 5000

KIND_WORDS = {
    "added": "Added", "removed": "Removed", "relabelled": "Relabelled", "image data removed": "Image data removed",
    "image data changed": "Image data changed", "metadata added": "Metadata added",
    "metadata changed": "Metadata changed", "metadata removed": "Metadata removed",
}
COLUMNS = ("Change", "Identifier", "Key", "Old", "New")


class FindingsModel(QAbstractTableModel):
    """The findings as a read-only table; `data()` reads only the tuple it holds."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._findings: tuple[mirror.Finding, ...] = ()

    def set_findings(self, findings: tuple[mirror.Finding, ...]) -> None:
        self.beginResetModel()
        self._findings = tuple(findings)
        self.endResetModel()

    def finding(self, row: int) -> mirror.Finding:
        return self._findings[row]

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._findings)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._findings):
            return None
        f = self._findings[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            value = (KIND_WORDS[f.kind], f.identifier, f.key, f.old, f.new)[index.column()]
            if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
                return (f"{f.identifier}: no longer in the mirror; the table will show no entry."
                        if f.kind == "removed" else f"{f.identifier}: activate to show it in the table")
            return "" if value is None else value
        return None


class ChangesView(QWidget):
    """Shows the difference between the current mirror's two latest snapshots (computed in
    the background, newest request wins). `finding_activated(database, identifier)` when
    the person activates a finding (double-click or Enter)."""

    finding_activated = Signal(str, str)
    loaded = Signal(object)  # MirrorChanges, or None when there is nothing to compare

    def __init__(self, workers, parent=None):
        super().__init__(parent)
        self.workers = workers
        self.store = None
        self.database: str | None = None
        self.latest: SnapshotInfo | None = None
        self.changes: mirror.MirrorChanges | None = None
        self._shown: tuple | None = None  # (store, database, latest) the view shows or is loading
        self.title = QLabel()
        self.title.setObjectName("changesTitle")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model = FindingsModel(self)
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.view.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate((150, 290, 120, 200, 200)):
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.view.activated.connect(self._on_view_activated)
        # Room for a handful of findings even when docked under a tall table.
        self.view.setMinimumHeight(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        self._say(None, "Open a store and choose a mirror to see what changed since its previous pull.")

    # -- setters ---------------------------------------------------------------------------------

    def set_store(self, store) -> None:
        self.store = store
        self.database = self.latest = None
        self._shown = None
        self._say(None, "Choose a mirror to see what changed since its previous pull.")

    def show_database(self, name: str | None, latest: SnapshotInfo | None) -> None:
        """Show the changes of `name` when it is a mirror (`latest` is its latest snapshot).
        The comparison runs only while the view is visible, and again only when the
        mirror has a new snapshot."""
        self.database, self.latest = name, latest
        if self.isVisible():
            self._load()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._load()

    def _load(self) -> None:
        name, latest = self.database, self.latest
        if self._shown == (self.store, name, latest):
            return
        self._shown = (self.store, name, latest)
        if self.store is None or name is None:
            self._say(None, "Choose a mirror to see what changed since its previous pull.")
            return
        if latest is None:
            self._say(f"Changes in '{name}'", f"'{name}' is a local database. The Changes view shows what changed "
                                              "in a mirror of a Media Server database between its last two pulls "
                                              "(File ▸ Connect to Media Server…).")
            return
        self._say(f"Changes in '{name}' since the previous pull", "Comparing the two latest snapshots…")
        store = self.store
        self.workers.submit("task", lambda: mirror.changes_since_previous_pull(store, name, FINDINGS_SHOWN),
                            kind="changes", store=store, owner=self,
                            on_done=self._on_done, on_error=lambda e, n=name: self._on_failed(n, e))

    # -- results ---------------------------------------------------------------------------------

    def _on_done(self, changes: mirror.MirrorChanges) -> None:
        if changes.database != self.database:
            return
        self.changes = changes
        more = "" if changes.complete else (f" The first {len(changes.findings):,} findings are listed; "
                                            f"'hashlens diff {changes.database}' lists all.")
        self.title.setText(f"Changes in '{changes.database}' since the previous pull")
        self.summary.setText(f"From {changes.old_name} to {changes.new_name}: {changes.summary}{more}")
        self.model.set_findings(changes.findings)
        self.loaded.emit(changes)

    def _on_failed(self, name: str, error: HashlensError) -> None:
        if name != self.database:
            return
        self._shown = None  # try again next time it is asked for
        self._say(f"Changes in '{name}' since the previous pull", error.description)
        self.loaded.emit(None)

    def _say(self, title: str | None, text: str) -> None:
        self.changes = None
        self.title.setText(title or "Changes since the previous pull")
        self.summary.setText(text)
        self.model.set_findings(())

    def _on_view_activated(self, index) -> None:
        if index.isValid() and self.database is not None:
            self.finding_activated.emit(self.database, self.model.finding(index.row()).identifier)
