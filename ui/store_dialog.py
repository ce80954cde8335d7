"""File ▸ Open store…: an SQLite file or a server URL, optionally read-only, or a recent one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
)


def url_for(text: str) -> str:
    """A typed path becomes an SQLite URL; URLs are passed as typed."""
    text = text.strip()
    if "://" in text or not text:
        return text
    return "sqlite:///" + str(Path(text).expanduser())


class OpenStoreDialog(QDialog):
    def __init__(self, recent: list[str], parent=None, read_only: bool = False, forced_read_only: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Open store")
        self.setMinimumWidth(560)
        self.location = QComboBox()
        self.location.setEditable(True)
        self.location.addItems(recent)
        self.location.setEditText(recent[0] if recent else "")
        self.location.lineEdit().setPlaceholderText("path/to/store.db, postgresql://user@host/db or mysql://…")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.location, 1)
        row.addWidget(browse)
        self.read_only = QCheckBox("Open read-only (no changes can be made)")
        self.read_only.setChecked(read_only or forced_read_only)
        self.read_only.setEnabled(not forced_read_only)
        if forced_read_only:
            self.read_only.setToolTip("Hashlens was started with --read-only")
        hint = QLabel("An SQLite file (if it does not exist, you are asked before one is created), or a server URL: "
                      "postgresql://user@host:5432/name, mysql://user@host:3306/name.")
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Store", row)
        form.addRow("", hint)
        form.addRow("", self.read_only)
        form.addRow(buttons)

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open store", "", "Hashlens stores (*.db *.sqlite *.sqlite3);;All files (*)")
        if path:
            self.location.setEditText(path)

    def url(self) -> str:
        return url_for(self.location.currentText())
