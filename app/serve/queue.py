"""The queue of asynchronous actions (TrainImageHash, ExportImageHashDatabase,
ImportImageHashDatabase): tokens, statuses, results, Stop and Cancel, as Media Server's
QueueInfo reports them.

Media Server answers an asynchronous action at once with a token and runs it when a
thread is free; QueueInfo then reports Queued, Processing, Finished or Error (MS).
Here a small pool of worker threads, each with its own store connection, runs the
actions in the order they came (ours)."""

from __future__ import annotations

import base64
import collections
import enum
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.aci.actions import Job
from app.domain import Failure, HashlensError

log = logging.getLogger("hashlens.serve")

# Finished and failed actions kept per queue for QueueInfo; the oldest go first (ours).
KEEP_DONE = 1000


class Status(str, enum.Enum):
    QUEUED = "Queued"
    PROCESSING = "Processing"
    FINISHED = "Finished"
    ERROR = "Error"


@dataclass
class QueuedAction:
    """One asynchronous action and what QueueInfo tells about it."""

    token: str
    action: str  # the canonical action name, which is also the queue's name
    job: Job
    queued_at: float
    status: Status = Status.QUEUED
    started_at: float | None = None
    ended_at: float | None = None
    result: list[str] = field(default_factory=list)
    error: HashlensError | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        return self.status in (Status.FINISHED, Status.ERROR)


class ActionQueue:
    """Runs queued actions on `workers` threads. `open_store` is called once in each
    worker thread and `close_store` with its result when the worker ends.

    `gate`, when given, is waited on by a worker after it marks an action Processing
    and before it runs it: tests hold actions there to see each status (a gate the
    test opens, not a sleep)."""

    def __init__(self, open_store: Callable[[], object], close_store: Callable[[object], None], *,
                 workers: int = 1, token_prefix: str = "hashlens", gate: threading.Event | None = None,
                 on_end: Callable[["QueuedAction"], None] | None = None):
        """`on_end` is told of each action as it ends (the request log), with the lock held."""
        self._open_store = open_store
        self._on_end = on_end
        self._close_store = close_store
        self._gate = gate
        self.token_prefix = token_prefix
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque[QueuedAction] = collections.deque()
        self._by_token: dict[str, QueuedAction] = {}
        self._done: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self._numbers = itertools.count(1)
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"hashlens-queue-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    # -- what requests do ------------------------------------------------------------

    def submit(self, action: str, job: Job) -> str:
        """Queue an action whose parameters were already checked; returns its token."""
        with self._lock:
            if self._closing:
                raise HashlensError(Failure.CANCELLED, "The server is shutting down; the action was not queued.")
            # Media Server's tokens are base64 text naming the server, the action and a
            # number (MS); a random part keeps them unguessable (ours).
            raw = f"{self.token_prefix}:{action.upper()}:{next(self._numbers)}:{secrets.token_hex(8)}"
            token = base64.b64encode(raw.encode()).decode("ascii")
            item = QueuedAction(token, action, job, time.time())
            self._by_token[token] = item
            self._pending.append(item)
            self._wake.notify()
        return token

    def actions(self, action: str, token: str | None = None) -> list[QueuedAction]:
        """The actions of one queue, newest first (MS default order), or the one with `token`."""
        with self._lock:
            if token is not None:
                return [self._find(action, token)]
            items = [a for a in self._by_token.values() if a.action == action]
        return sorted(items, key=lambda a: a.queued_at, reverse=True)

    def cancel(self, action: str, token: str) -> None:
        """QueueAction=Cancel: drop an action that has not started (MS)."""
        with self._lock:
            item = self._find(action, token)
            if item.status is not Status.QUEUED:
                raise HashlensError(
                    Failure.PARAM_INVALID,
                    f"The action with 'token={token}' is {item.status.value}, not Queued; "
                    "use QueueAction=Stop to stop one that is processing.",
                    parameter="token",
                )
            self._pending.remove(item)
            self._end(item, error=HashlensError(Failure.CANCELLED, "The action was cancelled before it started."))

    def stop(self, action: str, token: str | None) -> list[str]:
        """QueueAction=Stop: ask a processing action to stop (without a token, every
        processing action of the queue, as Media Server does); a queued one is cancelled."""
        with self._lock:
            if token is not None:
                items = [self._find(action, token)]
            else:
                items = [a for a in self._by_token.values() if a.action == action and a.status is Status.PROCESSING]
            for item in items:
                if item.status is Status.QUEUED:
                    self._pending.remove(item)
                    self._end(item, error=HashlensError(Failure.CANCELLED, "The action was stopped before it started."))
                item.stop.set()
        return [item.token for item in items]

    def _find(self, action: str, token: str) -> QueuedAction:
        item = self._by_token.get(token)
        if item is None or item.action != action:
            raise HashlensError(Failure.PARAM_INVALID, f"'token={token}' does not exist in the {action} queue.",
                                parameter="token")
        return item

    # -- the workers --------------------------------------------------------------------

    def _work(self) -> None:
        store = None
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing:
                        self._wake.wait()
                    if not self._pending:
                        return
                    item = self._pending.popleft()
                    item.status = Status.PROCESSING
                    item.started_at = time.time()
                if self._gate is not None:
                    self._gate.wait()
                try:
                    if store is None:
                        store = self._open_store()
                    if item.stop.is_set():
                        raise HashlensError(Failure.CANCELLED, "The action was stopped; nothing was changed.")
                    result = item.job(store, item.stop.is_set)
                except HashlensError as exc:
                    with self._lock:
                        self._end(item, error=exc)
                except Exception as exc:  # the server stays up; the reason goes to the log
                    log.exception("queued %s failed", item.action)
                    with self._lock:
                        self._end(item, error=HashlensError(
                            Failure.STORE_FAILED, f"The action failed unexpectedly ({type(exc).__name__}); "
                                                  "the server log has the details."))
                else:
                    with self._lock:
                        self._end(item, result=result)
        finally:
            if store is not None:
                self._close_store(store)

    def _end(self, item: QueuedAction, *, result: list[str] | None = None,
             error: HashlensError | None = None) -> None:
        """Record the outcome (the lock is held)."""
        item.ended_at = time.time()
        item.status = Status.ERROR if error is not None else Status.FINISHED
        item.error, item.result = error, result or []
        done = self._done[item.action]
        done.append(item.token)
        while len(done) > KEEP_DONE:
            self._by_token.pop(done.popleft(), None)
        if self._on_end is not None:
            self._on_end(item)

    # -- shutdown --------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> bool:
        """Cancel what has not started, ask running actions to stop, and wait for the
        workers (each ends its transaction: a stopped import rolls back whole). True
        when every worker ended within `timeout`."""
        with self._lock:
            self._closing = True
            while self._pending:
                self._end(self._pending.popleft(),
                          error=HashlensError(Failure.CANCELLED, "The server shut down before the action started."))
            for item in self._by_token.values():
                item.stop.set()
            self._wake.notify_all()
        if self._gate is not None:
            self._gate.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
