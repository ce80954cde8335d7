"""View ▸ Action log: the ACI request line for every change made in the window.

An operator can replay these lines against a Media Server (or `hashlens aci`) to make
the same change there, so each is the exact action name and parameters (MS names)."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class ActionLog(QDockWidget):
    """A dock with the ACI lines of this session's changes, oldest first."""

    line_added = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Action log", parent)
        self.setObjectName("actionLogDock")
        self.lines: list[str] = []
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText(
            "Changes you make appear here as ACI action lines, ready to replay against a Media Server."
        )
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        copy = QPushButton("Copy all")
        copy.clicked.connect(self.copy_all)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(copy)
        buttons.addWidget(clear)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.text)
        layout.addLayout(buttons)
        self.setWidget(body)

    def add(self, lines: list[str]) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        for line in lines:
            self.lines.append(line)
            self.text.appendPlainText(f"# {stamp}\n{line}")
            self.line_added.emit(line)

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(self.lines) + ("\n" if self.lines else ""))

    def clear(self) -> None:
        self.lines.clear()
        self.text.clear()
