"""A thin bar above the table for standing notices: read-only mode, changes made elsewhere."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from ui.icons import icon
from ui.theme import current_accents


class NoticeBar(QFrame):
    """Text with an icon and an optional button; coloured as a warning or a hint."""

    action_clicked = Signal()

    def __init__(self, kind: str = "banner", parent=None):
        super().__init__(parent)
        self.kind = kind  # "banner" (warning colours) or "hint" (information colours)
        self.setObjectName(f"notice_{kind}")
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton()
        self.button.hide()
        self.button.clicked.connect(self.action_clicked.emit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 5, 10, 5)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)
        self.restyle()
        self.hide()

    def show_notice(self, text: str, button: str | None = None) -> None:
        self.text.setText(text)
        self.button.setText(button or "")
        self.button.setVisible(bool(button))
        self.show()

    def restyle(self) -> None:
        accents = current_accents()
        prefix = "banner" if self.kind == "banner" else "hint"
        bg, fg, border = accents[f"{prefix}_bg"], accents[f"{prefix}_fg"], accents[f"{prefix}_border"]
        self.setStyleSheet(
            f"QFrame#{self.objectName()} {{ background: {bg}; border: 1px solid {border}; border-radius: 4px; }}"
            f"QFrame#{self.objectName()} QLabel {{ color: {fg}; background: transparent; border: none; }}"
        )
        self.icon.setPixmap(icon("lock" if self.kind == "banner" else "info", fg).pixmap(18, 18))
