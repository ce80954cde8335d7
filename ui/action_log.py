"""View ▸ Action log: the ACI request line for every change made in the window.

An operator can replay these lines against a Media Server (or `hashlens aci`) to make
the same change there, so each is the exact action name and parameters (MS names)."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class ActionLog(QDockWidget):
    """A dock with the ACI lines of this session's changes, oldest first. Its contents are
    made when it first shows: the window starts with it hidden."""

    line_added = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Action log", parent)
        self.setObjectName("actionLogDock")
        self.lines: list[str] = []
        self._shown: list[str] = []  # the text's paragraphs: a stamp line, then the line
        self.text: QPlainTextEdit | None = None  # made when the dock first shows (issue 15)
        self.visibilityChanged.connect(lambda visible: self._build() if visible else None)

    def _build(self) -> None:
        if self.text is not None:
            return
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText(
            "Changes you make appear here as ACI action lines, ready to replay against a Media Server."
        )
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        for paragraph in self._shown:
            self.text.appendPlainText(paragraph)
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
            self._shown.append(f"# {stamp}\n{line}")
            if self.text is not None:
                self.text.appendPlainText(self._shown[-1])
            self.line_added.emit(line)

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(self.lines) + ("\n" if self.lines else ""))

    def clear(self) -> None:
        self.lines.clear()
        self._shown.clear()
        if self.text is not None:
            self.text.clear()
