"""The Pending changes pane: a mirror's staged changes, in the order they will be sent, with Push… and Discard."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from app.mediaserver import changeset

# The words shown for a change's state (the store's values are pending/sent/failed).
STATE_WORDS = {
    "pending": "staged",
    "sent": "sent, no answer yet",
    "failed": "refused",
    "confirmed": "on the server",
}


class PendingChangesPane(QWidget):
    """Shows one mirror's change-set (set with `set_changes`); asks the window to push or
    discard through its signals and never touches the store itself."""

    push_requested = Signal(str)  # the mirror
    discard_requested = Signal(str, int)  # the mirror, how many of the last changes (0: all)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.mirror: str | None = None
        self.changes: list = []
        self.summary = QLabel("Choose a mirror to see its staged changes.")
        self.summary.setWordWrap(True)
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["#", "Change", "State", "Request"])
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.push_button = QPushButton("Push…")
        self.push_button.setToolTip("Send these changes to the Media Server, one at a time, after a confirmation")
        self.push_button.clicked.connect(self._on_push_button_clicked)
        self.discard_last_button = QPushButton("Discard last")
        self.discard_last_button.setToolTip("Take back the last staged change; the local copy follows")
        self.discard_last_button.clicked.connect(lambda: self._discard(1))
        self.discard_all_button = QPushButton("Discard all")
        self.discard_all_button.clicked.connect(lambda: self._discard(0))
        buttons = QHBoxLayout()
        buttons.addWidget(self.push_button)
        buttons.addStretch(1)
        buttons.addWidget(self.discard_last_button)
        buttons.addWidget(self.discard_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    def set_changes(self, mirror: str | None, changes: list, server: str | None = None) -> None:
        """Show `changes` (the outstanding change-set) of `mirror`; None: not a mirror."""
        self.mirror, self.changes = mirror, list(changes)
        self.list.clear()
        for number, change in enumerate(self.changes, 1):
            params = dict(change.params)
            state = STATE_WORDS.get(change.state, change.state)
            if change.error and change.state != "pending":
                state += f": {change.error}"
            item = QTreeWidgetItem([str(number), changeset.describe(change.action, params), state, change.line()])
            item.setToolTip(1, changeset.describe(change.action, params))
            item.setToolTip(2, state)
            item.setToolTip(3, change.line())
            self.list.addTopLevelItem(item)
        for column in range(3):
            self.list.resizeColumnToContents(column)
        if mirror is None:
            self.summary.setText("This database is not a mirror of a Media Server: its changes are made at once, "
                                 "not staged.")
        elif not self.changes:
            self.summary.setText(f"'{mirror}' has no staged changes. Edits to it are staged here until you push them.")
        else:
            where = f" to {server}" if server else ""
            self.summary.setText(f"{len(self.changes)} staged change(s) of '{mirror}', to be sent{where} in this "
                                 "order.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.mirror is not None and bool(self.changes)
        self.push_button.setEnabled(has)
        self.discard_last_button.setEnabled(has)
        self.discard_all_button.setEnabled(has)

    def _on_push_button_clicked(self) -> None:
        if self.mirror is not None:
            self.push_requested.emit(self.mirror)

    def _discard(self, count: int) -> None:
        if self.mirror is not None:
            self.discard_requested.emit(self.mirror, count)
