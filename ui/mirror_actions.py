"""Refresh on a mirror: pull the current mirror again from its Media Server, through the job service with progress and cancel."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence

from app.domain import HashlensError, SnapshotInfo
from app.mediaserver import mirror
from app.mediaserver.client import MediaServerClient
from ui.icons import set_icon

SHORTCUT = "Shift+F5"


class MirrorActions(QObject):
    """Owns the "Pull mirror again" action. The window tells it the store and the current
    database (`set_store`, `set_database`); it says `pulled(PullReport)` after a pull and
    `failed(HashlensError)` when one ends without a snapshot (the previous one is kept)."""

    pulled = Signal(object)
    failed = Signal(object)

    def __init__(self, workers, parent_widget):
        super().__init__(parent_widget)
        self.workers = workers
        self.parent_widget = parent_widget
        self.store = None
        self.read_only_reason: str | None = None
        self.database: str | None = None
        self.latest: SnapshotInfo | None = None
        self.task = None
        self.pull_again = QAction("&Pull mirror again", self)
        set_icon(self.pull_again, "pull")
        self.pull_again.setShortcut(QKeySequence(SHORTCUT))
        self._tip = "Pull the current mirror again from its Media Server: a new snapshot (Shift+F5)"
        self.pull_again.setStatusTip(self._tip)
        self.pull_again.triggered.connect(lambda _checked=False: self.on_pull_again())
        self._update()

    def set_store(self, store, read_only_reason: str | None) -> None:
        self.store, self.read_only_reason = store, read_only_reason
        self._update()

    def set_database(self, name: str | None, latest: SnapshotInfo | None) -> None:
        """`latest` is the mirror's latest snapshot; None for a local database."""
        self.database, self.latest = name, latest
        self._update()

    @property
    def busy(self) -> bool:
        return self.task is not None

    def _update(self) -> None:
        usable = (self.store is not None and self.read_only_reason is None and self.latest is not None
                  and not self.busy)
        self.pull_again.setEnabled(usable)
        if self.latest is None:
            tip = "Pull again works on a mirror of a Media Server database (File ▸ Connect to Media Server…)."
        elif self.read_only_reason:
            tip = f"Disabled: the store is read-only ({self.read_only_reason})."
        else:
            source = self.latest.source
            tip = f"Pull '{self.database}' again from {source.url} (database '{source.database}'): a new snapshot"
        self.pull_again.setToolTip(tip)

    def on_pull_again(self) -> None:
        if not self.pull_again.isEnabled() or self.database is None or self.latest is None:
            return
        name, source, store = self.database, self.latest.source, self.store
        try:
            client = MediaServerClient(source.url)
        except HashlensError as exc:
            self.failed.emit(exc)
            return

        def work(progress, stop):
            return mirror.pull_mirror(store, client, source.database, into=name,
                                      progress=lambda p: progress(p.entries), cancelled=stop)

        def done(report):
            self.task = None
            self._update()
            self.pulled.emit(report)

        def failed(error):
            self.task = None
            self._update()
            self.failed.emit(error)

        self.task = self.workers.run_task(
            "task", work, title="Pull mirror again", text=f"Pulling '{source.database}' from {source.url} into "
                                                          f"'{name}'…",
            parent=self.parent_widget, on_done=done, on_error=failed, store=store, total=None,
            cancelling="Cancelling: nothing of this pull will be stored…", owner=self)
        self._update()
