"""The one seam through which the window shows errors: a message, never a traceback.

Every message box the window and its dialogs show goes through `message_box`, which
first tells `dialog_events().shown`: a test (or a log) sees every dialog without
patching anything. A transient store error (a lock, a lost connection) is a status-bar
message, not a dialog; a store that seems damaged is called damaged only after a fresh
connection could not read it either (the `verify` hook, given by the window)."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app.domain import Failure, HashlensError

log = logging.getLogger("hashlens.ui")

# Failures that may mean the store as a whole is unreadable, not one request.
STORE_LEVEL = (Failure.STORE_UNAVAILABLE, Failure.STORE_FAILED)


class DialogEvents(QObject):
    shown = Signal(str, str, str)  # kind ("warning", "critical", "information"), title, text


_events: DialogEvents | None = None


def dialog_events() -> DialogEvents:
    """The application's one observer of message boxes (made on first use, GUI thread)."""
    global _events
    if _events is None:
        _events = DialogEvents()
    return _events


# The store words a taken name as ACI does ('newidentifier=x' already exists); the window
# names the thing instead.
_TAKEN = re.compile(r"'(\w+)=(.*?)' already exists")
_TAKEN_WORDS = {
    "database": "A database named '{}' already exists",
    "newdatabase": "A database named '{}' already exists",
    "identifier": "An entry with the identifier '{}' already exists",
    "newidentifier": "An entry with the identifier '{}' already exists",
    "key": "The metadata key '{}' already exists",
}
_ACTION_WORDS = {"UpdateImageHashMetadata": "Edit metadata value"}


def plain_words(text: str) -> str:
    """`text` with ACI parameter names and action names put as the window's words."""
    def taken(match: re.Match) -> str:
        words = _TAKEN_WORDS.get(match.group(1))
        return words.format(match.group(2)) if words else match.group(0)

    text = _TAKEN.sub(taken, text)
    for action, words in _ACTION_WORDS.items():
        text = text.replace(f"use {action}", f"use {words}")
    return text


def message_box(parent: QWidget | None, kind: str, title: str, text: str) -> None:
    """Show a modal message box of `kind`; every dialog of the window comes through here."""
    dialog_events().shown.emit(kind, title, text)
    {"warning": QMessageBox.warning, "critical": QMessageBox.critical,
     "information": QMessageBox.information}[kind](parent, title, text)


def is_transient(error: BaseException) -> bool:
    """Trouble that passes by itself (the store says so): keep the store, say it briefly."""
    return bool(getattr(error, "transient", False))


class ErrorPresenter(QObject):
    """Shows a HashlensError's description in a message box and the status bar.

    Tests replace `QMessageBox.warning`/`critical` (pytest-qt's advice for modal dialogs)
    or read `last_message`; unexpected exceptions become a dialog and a log entry, and the
    application keeps running."""

    shown = Signal(str, str)  # title, message

    def __init__(self, parent: QWidget | None = None, status=None, log_path: Path | None = None):
        super().__init__(parent)
        self._parent = parent
        self._status = status  # a callable(text, ms) such as QStatusBar.showMessage
        self.log_path = log_path
        self.last_message: str | None = None
        self.history: list[str] = []
        self._previous_hook = None
        self._in_dialog = False
        # verify(error, title, show): check the store on a fresh connection, then call
        # show(error) only if it is really unreadable (the window's Session supplies it).
        self.verify = None

    def show_error(self, error: HashlensError | Exception, title: str = "Hashlens") -> None:
        text = plain_words(error.description) if isinstance(error, HashlensError) else str(error)
        log.warning("%s: %s", title, text)
        if is_transient(error):
            self.notify(f"{title}: {text}", 10000)
            return
        if self.verify is not None and isinstance(error, HashlensError) and error.failure in STORE_LEVEL:
            self.verify(error, title, lambda proven: self._present(title, proven.description, critical=False))
            return
        self._present(title, text, critical=False)

    def notify(self, text: str, ms: int = 6000) -> None:
        """A passing message in the status bar, for what needs no dialog."""
        self.last_message = text
        if self._status is not None:
            self._status(text, ms)

    def _present(self, title: str, text: str, critical: bool) -> None:
        self.last_message = text
        self.history.append(text)
        if self._status is not None:
            self._status(text, 10000)
        self.shown.emit(title, text)
        if self._in_dialog:
            return  # one dialog at a time: a burst of errors must not stack modal boxes
        self._in_dialog = True
        try:
            message_box(self._parent, "critical" if critical else "warning", title, text)
        finally:
            self._in_dialog = False

    # -- unexpected exceptions ---------------------------------------------------------------

    def install_excepthook(self) -> None:
        self._previous_hook = sys.excepthook
        sys.excepthook = self.excepthook

    def uninstall_excepthook(self) -> None:
        if self._previous_hook is not None:
            sys.excepthook = self._previous_hook
            self._previous_hook = None

    def excepthook(self, exc_type, exc, tb) -> None:
        """Log the traceback, show one sentence, keep the application running."""
        if issubclass(exc_type, KeyboardInterrupt):
            (self._previous_hook or sys.__excepthook__)(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("Unexpected error\n%s", details)
        if isinstance(exc, HashlensError):
            self._present("Hashlens", exc.description, critical=False)
            return
        where = f" The details were written to {self.log_path}." if self.log_path else " The details were written to the log."
        self._present(
            "Unexpected error",
            f"Something unexpected went wrong ({exc_type.__name__}: {exc}). Hashlens keeps running; "
            f"check that the last thing you did took effect, and try it again if not.{where}",
            critical=True,
        )
