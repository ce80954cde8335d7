"""What the window shows when there is nothing to browse yet: no store, or no databases."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ui.icons import app_icon, set_icon


class EmptyState(QWidget):
    """A centred message with the next steps as buttons."""

    open_store = Signal()
    create_sample = Signal()
    new_database = Signal()
    train_folder = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.picture = QLabel()
        self.picture.setPixmap(app_icon().pixmap(96, 96))
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel()
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.text.setContentsMargins(40, 0, 40, 0)
        self.open_button = self._button("Open a store…", "open", self.open_store)
        self.sample_button = self._button("Create a sample database", "sample", self.create_sample)
        self.new_button = self._button("Create an empty database…", "database-add", self.new_database)
        self.train_button = self._button("Train images from a folder…", "train", self.train_folder)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.picture)
        layout.addWidget(self.title)
        # No alignment flag: an aligned word-wrapped label gets its one-line height and is
        # clipped; spanning the width, its height follows its wrapped text.
        layout.addWidget(self.text)
        layout.addSpacing(12)
        for b in (self.sample_button, self.new_button, self.train_button, self.open_button):
            layout.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)

    def _button(self, text: str, icon_name: str, signal) -> QPushButton:
        b = QPushButton(text)
        set_icon(b, icon_name)
        b.setMinimumWidth(280)
        b.setMinimumHeight(32)
        b.clicked.connect(signal.emit)
        return b

    def show_no_store(self, reason: str | None = None) -> None:
        self.title.setText("No store is open")
        self.text.setText(reason or "Open a Hashlens store: an SQLite file, or a PostgreSQL or MySQL server.")
        self._buttons(open_=True)

    def show_empty_store(self, store: str, read_only: bool) -> None:
        self.title.setText("This store has no image-hash databases yet")
        store = store.replace("/", "/\u200b")  # a long path may wrap after each folder
        if read_only:
            self.text.setText(f"{store} is empty and open read-only, so nothing can be added here.")
            self._buttons(open_=True)
        else:
            self.text.setText(f"{store} is empty. Start with sample data to explore, create an empty "
                              "database, or train images from a folder.")
            self._buttons(sample=True, new=True, train=True, open_=True)

    def _buttons(self, sample=False, new=False, train=False, open_=False) -> None:
        self.sample_button.setVisible(sample)
        self.new_button.setVisible(new)
        self.train_button.setVisible(train)
        self.open_button.setVisible(open_)
