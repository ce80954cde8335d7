"""The open store as the window sees it: opening, its databases, read-only state and
changes made by others, all done on worker lanes so a slow server never freezes the window."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from app.domain import HashlensError
from app.source import Source
from app.sources import open_source
from ui.workers import Workers

log = logging.getLogger("hashlens.ui")

POLL_MS = 2000


class Session(QObject):
    opening = Signal(str)  # url being opened
    opened = Signal(object)  # Source
    open_failed = Signal(object)  # HashlensError
    databases_changed = Signal(list)  # list[DatabaseInfo]
    changed_elsewhere = Signal(bool)  # True: the store changed since we last loaded it
    poll_failed = Signal(object)  # HashlensError from the change poll (connection lost, …)
    polled = Signal()  # a change poll was answered (and compared with what we have seen)
    recovered = Signal(str, str)  # title, description: an error that a fresh connection disproved

    def __init__(self, workers: Workers, parent=None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self.workers = workers
        self.store: Source | None = None
        self.url: str | None = None
        self.read_only_reason: str | None = None
        self.databases: list = []
        self._seen_token: int | None = None
        self._stale = False
        self._poll_failed = False
        self._seen_pending = False  # a mark_seen() is reading the token: a poll now would compare with the old one
        # What the open job read beyond the store itself (see open()): the first page the
        # window will ask for, handed over once.
        self.first_page = None
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)

    # -- opening ------------------------------------------------------------------------------

    def open(self, url: str, read_only: bool = False, reason: str | None = None, create: bool = False,
             first_page=None) -> None:
        """Open a store in the background; `opened` or `open_failed` follows. Only with
        `create` (the window asked the person first) may a new store file be made.

        The same job reads the databases, and `first_page(store, databases)` if given (the
        window's first page, issue 15): the window then shows rows one worker round trip
        after opening rather than three. Neither may fail the opening: if either fails, the
        databases are read again as usual and the page is asked for as usual."""
        self.opening.emit(url)

        def work():
            store = open_source(url, read_only=read_only, create=create and not read_only)
            databases = page = None
            try:
                token = store.change_token()
                try:
                    databases = store.list_databases()
                    page = first_page(store, databases) if first_page is not None and databases else None
                except Exception:  # noqa: BLE001 - a head start only; the usual path reports errors
                    log.debug("reading ahead while opening failed", exc_info=True)
            finally:
                # Opened on a lane thread that will not own it: hand the connection back.
                store.close()
            return store, token, databases, page

        self.workers.submit(
            "ui", work, kind="open",
            on_done=lambda result: self._on_opened(url, result, read_only, reason),
            on_error=self.open_failed.emit,
        )

    def _on_opened(self, url: str, result, read_only: bool, reason: str | None) -> None:
        store, token, databases, self.first_page = result
        old = self.store
        self.store, self.url = store, url
        if read_only:
            self.read_only_reason = reason or "it was opened read-only"
        elif store.read_only:
            # The source's own words: an older store waits for 'hashlens migrate', a newer
            # one is only read (the one schema-version policy, app.source).
            self.read_only_reason = store.read_only_reason().rstrip(".")
        else:
            self.read_only_reason = None
        self.databases = []
        self._seen_token = token
        self._set_stale(False)
        if old is not None:
            # Each lane closes its own connection to the old store between jobs.
            self.workers.release(old)
        self.opened.emit(store)
        if databases is None:
            self.refresh_databases()
        else:
            self.databases = databases
            self.databases_changed.emit(databases)
        self.first_page = None
        self._timer.start()

    def verify(self, error: HashlensError, title: str, show) -> None:
        """Is the store really unreadable, or was `error` passing trouble (another program
        using the same SQLite file, a dropped connection)? A fresh read-only connection
        answers: if it reads, `recovered` is emitted (the lanes have already dropped their
        connections, so the next request reconnects); if not, `show(proof)` with its error."""
        url = self.url
        if url is None or self.store is None:
            show(error)
            return

        def check():
            fresh = open_source(url, read_only=True)
            try:
                fresh.list_databases()
            finally:
                fresh.close()

        def failed(proof: HashlensError) -> None:
            if getattr(proof, "transient", False):
                self.recovered.emit(title, f"{error.description} (still busy: {proof.description})")
            else:
                show(proof)

        self.workers.submit("poll", check, owner=self, on_done=lambda _r: self.recovered.emit(title, error.description),
                            on_error=failed)

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def describe(self) -> str:
        return self.store.describe() if self.store is not None else "no store"

    # -- databases -------------------------------------------------------------------------------

    def refresh_databases(self, then=None) -> None:
        store = self.store
        if store is None:
            return

        def done(databases):
            self.databases = databases
            self.databases_changed.emit(databases)
            if then is not None:
                then(databases)

        self.workers.submit("ui", store.list_databases, kind="databases", store=store, on_done=done)

    def load_metadata_keys(self, database: str, on_done) -> None:
        """The database's metadata keys for the filter panel; newest request wins, and a
        failure only leaves the list of suggestions empty."""
        store = self.store
        if store is None:
            return
        self.workers.submit("ui", lambda: store.metadata_keys(database), kind="meta_keys", store=store,
                            on_done=on_done, on_error=lambda _e: None)

    # -- changes made elsewhere ------------------------------------------------------------------

    def poll(self) -> None:
        """Ask the store for its change token; a new one means someone else wrote."""
        store = self.store
        if store is None or self._seen_pending or any(self.workers.busy(lane) for lane in ("poll", "write", "task")):
            return  # our own write (or import) in progress would look like someone else's
        self.workers.submit("poll", store.change_token, kind="poll", store=store,
                            on_done=self._on_polled, on_error=self._on_poll_error)

    def _on_polled(self, token: int) -> None:
        self._poll_failed = False
        if not (self.workers.busy("write") or self.workers.busy("task")) and self._seen_token is not None and token != self._seen_token:
            self._set_stale(True)
        self.polled.emit()

    def _on_poll_error(self, error: HashlensError) -> None:
        log.info("change poll failed: %s", error.description)
        if not self._poll_failed:
            self._poll_failed = True
            self.poll_failed.emit(error)

    def mark_seen(self, token: int | None = None) -> None:
        """We have loaded (or made) the store's current state: clear the hint."""
        if token is not None:
            self._seen_token = token
            self._set_stale(False)
            return
        store = self.store
        if store is None:
            return
        self._set_stale(False)
        # The same kind as the poll: a poll already under way answers with the token from
        # before our refresh and would bring the hint back; the newer ticket drops it, and
        # no new poll starts until the token we have now seen is known.
        self._seen_pending = True

        def seen(token: int | None) -> None:
            self._seen_pending = False
            if token is not None:
                self._seen_token = token

        self.workers.submit("poll", store.change_token, kind="poll", store=store,
                            on_done=seen, on_error=lambda _e: seen(None))

    def _set_stale(self, stale: bool) -> None:
        if stale != self._stale:
            self._stale = stale
            self.changed_elsewhere.emit(stale)

    @property
    def stale(self) -> bool:
        return self._stale

    # -- closing ---------------------------------------------------------------------------------

    def shutdown(self, wait_ms: int = 5000) -> bool:
        self._timer.stop()
        store = self.store
        finished = self.workers.shutdown(wait_ms)
        if store is not None:
            try:
                store.close()
            except Exception:
                log.debug("closing the store failed", exc_info=True)
        return finished
