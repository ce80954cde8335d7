"""Every question the window asks a person, behind one object tests can replace."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

class TextDialog(QDialog):
    """One line of text checked while it is typed: the reason it is refused shows under
    it and OK stays off, so nothing typed is lost to an error after OK."""

    def __init__(self, title: str, label: str, value: str, check, parent=None, reason: str | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.check = check  # check(text) -> None when acceptable, else why not in plain words
        self.line = QLineEdit(value)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet("color: #b3261e;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(label))
        form.addRow(self.line)
        form.addRow(self.reason)
        form.addRow(self.buttons)
        self.line.textChanged.connect(self._on_text_changed)
        self._on_text_changed(value)
        if reason and self.check(value) is None:
            # Asked again after the store refused this text: say why, keep what was typed.
            self.reason.setText(reason)
            self.reason.setVisible(True)
        self.line.selectAll()

    def _on_text_changed(self, text: str) -> None:
        why = self.check(text)
        self.reason.setText(why or "")
        self.reason.setVisible(bool(why))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(why is None)


IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.jpe *.gif *.bmp *.tif *.tiff *.webp);;All files (*)"


class Prompter:
    """Modal questions. Each returns None (or False) when the person cancels."""

    def __init__(self, parent: QWidget | None = None):
        self.parent = parent

    def text(self, title: str, label: str, value: str = "", check=None, reason: str | None = None) -> str | None:
        """With `check(text) -> reason or None`, the text is checked while it is typed;
        `reason` says why the store refused `value` when the question is asked again."""
        if check is None and reason is None:
            text, ok = QInputDialog.getText(self.parent, title, label, QLineEdit.EchoMode.Normal, value)
            return text if ok else None
        dialog = TextDialog(title, label, value, check or (lambda _text: None), self.parent, reason)
        return dialog.line.text() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def item(self, title: str, label: str, items: list[str]) -> str | None:
        if not items:
            return None
        choice, ok = QInputDialog.getItem(self.parent, title, label, items, 0, False)
        return choice if ok else None

    def integer(self, title: str, label: str, value: int, minimum: int, maximum: int) -> int | None:
        number, ok = QInputDialog.getInt(self.parent, title, label, value, minimum, maximum)
        return number if ok else None

    def key_value(self, title: str, key: str = "", value: str = "", key_editable: bool = True,
                  reason: str | None = None) -> tuple[str, str] | None:
        """A key and value; `reason` says why the store refused them when asked again."""
        dialog = QDialog(self.parent)
        dialog.setWindowTitle(title)
        form = QFormLayout(dialog)
        key_edit = QLineEdit(key)
        key_edit.setReadOnly(not key_editable)
        value_edit = QLineEdit(value)
        form.addRow("Key", key_edit)
        form.addRow("Value", value_edit)
        form.addRow(QLabel("Keys and values: at most 254 bytes of UTF-8 (Media Server's limit)."))
        if reason:
            refused = QLabel(reason)
            refused.setWordWrap(True)
            refused.setStyleSheet("color: #b3261e;")
            form.addRow(refused)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        (value_edit if not key_editable else key_edit).setFocus()
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return key_edit.text(), value_edit.text()

    def confirm(self, title: str, text: str, ok_text: str = "OK") -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Cancel, self.parent)
        ok = box.addButton(ok_text, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is ok

    def create_store(self, path) -> bool:
        """Ask before a store file is made: a mistyped path must not become a new store."""
        box = QMessageBox(QMessageBox.Icon.Question, "Create a new store?",
                          f"There is no store at\n{path}\n\nCreate a new, empty Hashlens store there?",
                          QMessageBox.StandardButton.Cancel, self.parent)
        create = box.addButton("Create store", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is create

    def new_store_file(self, title: str = "New store") -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, "hashlens.db",
                                              "Hashlens stores (*.db *.sqlite *.sqlite3);;All files (*)")
        return path or None

    def retry(self, title: str, text: str) -> bool:
        """Retry or Cancel, for a store that was busy (another writer held it, a program or a pull)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Cancel, self.parent)
        box.setDefaultButton(QMessageBox.StandardButton.Retry)
        return box.exec() == QMessageBox.StandardButton.Retry

    def info(self, title: str, text: str, details: str | None = None) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self.parent)
        if details:
            box.setDetailedText(details)
        box.exec()

    def image_files(self, title: str = "Train images") -> list[str]:
        files, _ = QFileDialog.getOpenFileNames(self.parent, title, "", IMAGE_FILTER)
        return files

    def folder(self, title: str = "Train a folder of images") -> str | None:
        return QFileDialog.getExistingDirectory(self.parent, title) or None

    def store_file(self, title: str = "Open store") -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, "", "Hashlens stores (*.db *.sqlite *.sqlite3);;All files (*)")
        return path or None
