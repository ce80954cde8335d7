"""Reading a whole Media Server database page by page, proving the pages join up, into a sink.

ListImageHashes has `start` and `maxresults` but no total count and no documented order
(MS); in practice the order is stable while nothing changes. Entries added or removed
before the read position between two requests shift every later `start`. So each page
after the first asks for one entry more and starts at the last entry already read: that
overlap entry must come back first. If it does not, the server changed under the pull;
what was staged is dropped and the pull starts again, a bounded number of times (ours).

Appends at the end (new training) shift nothing and are read if they arrive in time. A
balanced add and remove before the read position between two requests is invisible to
any reader of a paged listing with no total order; the next pull sees it (ours, documented).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app import faults
from app.domain import Failure, HashlensError
from app.mediaserver.client import MediaServerClient
from app.mediaserver_codec.reader import ListedEntry

DEFAULT_PAGE_SIZE = 10_000
DEFAULT_RESTARTS = 3


class PullSink(Protocol):
    """Where a pull puts the entries; nothing it holds is visible until the caller commits."""

    def restart(self) -> None:
        """Forget every entry added so far (the server changed; the pull starts again)."""

    def add(self, entries: list[ListedEntry]) -> None:
        """Stage the next entries, in server order."""


@dataclass
class PullProgress:
    entries: int = 0
    pages: int = 0
    restarts: int = 0


@dataclass(frozen=True)
class PullSummary:
    """What a finished pull read: from where, how many entries, in how many requests."""

    url: str
    database: str
    entries: int
    pages: int
    restarts: int
    started_ms: int
    finished_ms: int


def pull(client: MediaServerClient, database: str, sink: PullSink, *, page_size: int = DEFAULT_PAGE_SIZE,
         max_restarts: int = DEFAULT_RESTARTS, progress: Callable[[PullProgress], None] | None = None,
         cancelled: Callable[[], bool] | None = None) -> PullSummary:
    """Read every entry of `database` (with image status and metadata) into `sink`.

    Raises MediaServerError for what the server or the network did, HashlensError
    SERVER_CHANGED when the server kept changing through `max_restarts` fresh starts, and
    CANCELLED when `cancelled()` says so between pages. The sink is never told to commit:
    the caller does that only after this returns."""
    if page_size < 1:
        raise HashlensError(Failure.PARAM_INVALID, f"The page size is {page_size}; it must be 1 or more.",
                            parameter="page-size")
    started = _now_ms()
    state = PullProgress()
    with _fewer_collections():
        return _pull(client, database, sink, page_size, max_restarts, progress, cancelled, started, state)


def _pull(client, database, sink, page_size, max_restarts, progress, cancelled, started, state) -> PullSummary:
    while True:
        if _read_all(client, database, sink, page_size, state, progress, cancelled):
            return PullSummary(client.url, database, state.entries, state.pages, state.restarts, started, _now_ms())
        if state.restarts >= max_restarts:
            raise HashlensError(
                Failure.SERVER_CHANGED,
                f"Media Server at {client.url} kept changing database '{database}' while it was read "
                f"({state.restarts + 1} attempts; entries were added or removed between pages each time). "
                "Nothing was stored; pull again when the server is quieter.")
        state.restarts += 1
        state.entries = 0
        sink.restart()


def _read_all(client, database, sink, page_size, state, progress, cancelled) -> bool:
    """One pass from the first entry to the end. False when the overlap did not match."""
    position = 0  # 1-based position of the last entry staged; 0 before the first page
    last: str | None = None
    while True:
        if cancelled is not None and cancelled():
            raise HashlensError(Failure.CANCELLED, f"The pull of '{database}' from {client.url} was cancelled; "
                                                   "nothing was stored.")
        if last is None:
            page = client.list_page(database, start=1, maxresults=page_size)
        else:
            page = client.list_page(database, start=position, maxresults=page_size + 1)
        state.pages += 1
        if last is not None:
            if not page or page[0].identifier != last:
                return False
            page = page[1:]
        faults.checkpoint("pull.page")
        if page:
            sink.add(page)
            position += len(page)
            state.entries += len(page)
            last = page[-1].identifier
        if progress is not None:
            progress(state)
        if len(page) < page_size:
            return True


_collections = threading.Lock()
_pulling = 0
_threshold: tuple[int, int, int] | None = None


@contextlib.contextmanager
def _fewer_collections():
    """A page is tens of thousands of tuples that live until the next page, and the
    cyclic collector's youngest generation (every 700 new objects) went through them
    again and again: a tenth of a pull's reading time (measured at 500,000 entries).
    While any pull runs, that generation is collected 70 times less often; entries hold
    no cycles, so nothing waits longer to be freed. The threshold is the process's: in
    the window, other threads' cyclic garbage also waits for 50,000 new objects instead
    of 700 (a few MB at most, a common setting), and the last pull to end restores the
    thresholds it found."""
    global _pulling, _threshold
    with _collections:
        if _pulling == 0:
            _threshold = gc.get_threshold()
            gc.set_threshold(max(_threshold[0], 50_000), *_threshold[1:])
        _pulling += 1
    try:
        yield
    finally:
        with _collections:
            _pulling -= 1
            if _pulling == 0:
                gc.set_threshold(*_threshold)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
