"""The window's one job service: long-lived store lanes on a QThreadPool, with tickets.

Why lanes: PySide6 drops a pool thread's Python thread state when a QRunnable's `run()`
returns, and with it peewee's thread-local connection, so a runnable per page would
reconnect (and on SQLite checkpoint the WAL) every time. A lane is one QRunnable whose
`run()` loops over a queue of jobs, so its connection lives as long as the lane. Lanes
are separate so that a slow exact count never delays a page, and writes run one at a time.

Newest request wins: a job submitted with a `kind` gets a ticket; a newer job of the same
kind makes it stale, and a stale job is skipped before it runs and dropped when it
finishes. Results are delivered on the GUI thread through a signal relay.

Everything that runs in the background goes through here: listing pages and counts,
images, entry actions, training, export, import and audit (`run_task` adds the one
progress dialog and the person's Cancel). No other module starts a thread or a runnable.

Why it cannot crash the window by construction: lanes are owned by the service and never
deleted while they run; a job's callbacks run only on the GUI thread, and only if the
QObject that asked for the job (`owner`) still exists; results are plain Python data
(a QImage is built with its own copy of the pixels, see `ui/images.py`).
"""

from __future__ import annotations

import atexit
import functools
import logging
import queue
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from app.domain import Failure, HashlensError

log = logging.getLogger("hashlens.ui")

# "task" runs export, import and pulls, "audit" the audit and its report, "serve" starts
# and stops the ACI server: a long one of those never delays a page, an image or a write.
REINTERRUPT_MS = 50
LANES = ("ui", "count", "poll", "write", "image", "task", "audit", "serve")


class CancelToken:
    """A flag a long job checks between batches; callable, so it can be `cancelled=`."""

    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()


@dataclass(eq=False)
class Job:
    """One unit of work: `fn()` runs on a lane; its result or error comes back on the GUI thread."""

    fn: Callable[[], object]
    on_done: Callable[[object], None] | None = None
    on_error: Callable[[HashlensError], None] | None = None
    on_progress: Callable[[Progress], None] | None = None
    kind: str | None = None
    ticket: int = 0
    lane: str | None = None
    store: object | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    owner: QObject | None = None  # callbacks are dropped once this QObject is deleted
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None
    finished: float | None = None
    ended: threading.Event = field(default_factory=threading.Event)  # set when fn has returned

    @property
    def owner_alive(self) -> bool:
        return self.owner is None or shiboken6.isValid(self.owner)


@dataclass(frozen=True)
class Progress:
    """How far a job is: `total` None while unknown; `phase` names the step, if any."""

    done: int
    total: int | None = None
    phase: str | None = None


@dataclass
class _Outcome:
    job: Job
    value: object = None
    error: HashlensError | None = None
    skipped: bool = False  # stale before it started: nothing ran, nothing to deliver


class _Relay(QObject):
    """Lives on the GUI thread; signals emitted from lanes are queued to it."""

    finished = Signal(object)  # _Outcome
    progress = Signal(object, object)  # Job, Progress


class Lane(QRunnable):
    """A worker that runs jobs one after another on one pool thread until stopped."""

    def __init__(self, name: str, relay: _Relay, is_current: Callable[[Job], bool]):
        super().__init__()
        self.setAutoDelete(False)
        self.name = name
        self._relay = relay
        self._is_current = is_current
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: Job | None = None
        self._handle = None  # the running job's cancellable scope
        self._stores: list = []  # stores this lane's thread has connected to
        self.stopped = threading.Event()
        self.unsettled = 0  # jobs put and not yet delivered or dropped (GUI thread only)

    def put(self, job: Job | None) -> None:
        if job is not None:
            job.lane = self.name
            self.unsettled += 1
        self._queue.put(job)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> Job | None:
        return self._running

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    break
                if job.cancel.is_cancelled or not self._is_current(job):
                    job.ended.set()
                    self._relay.finished.emit(_Outcome(job, skipped=True))
                    continue  # superseded before it started: skip the query altogether
                self._run_job(job)
        finally:
            for store in self._stores:
                self._close(store)
            self._stores.clear()
            self.stopped.set()

    def _run_job(self, job: Job) -> None:
        store = job.store
        if store is not None and store not in self._stores:
            self._stores.append(store)
        with self._lock:
            self._running = job
        job.started = time.perf_counter()
        outcome = _Outcome(job)
        try:
            if store is None:
                outcome.value = job.fn()
            else:
                # The store's cancellable scope: another thread can stop the statement
                # (SQLite interrupt, PostgreSQL cancel, MySQL KILL QUERY).
                with store.cancellable() as handle:
                    with self._lock:
                        self._handle = handle
                    outcome.value = job.fn()
        except HashlensError as exc:
            outcome.error = exc
            if store is not None and (getattr(exc, "transient", False)
                                      or exc.failure in (Failure.STORE_UNAVAILABLE, Failure.STORE_FAILED)):
                # A lost connection, or one left unusable by another program's use of the
                # same file ("disk I/O error"): drop ours so the next job reconnects,
                # instead of failing the same way until the window is restarted.
                self._close(store)
        except Exception as exc:  # the window must never die from a worker's surprise
            log.exception("Unexpected error in background job on lane %s", self.name)
            outcome.error = HashlensError(
                Failure.STORE_FAILED,
                f"An unexpected error stopped the operation ({type(exc).__name__}: {exc}). "
                "Nothing else was affected; the details were written to the log.",
            )
        finally:
            with self._lock:
                self._running = None
                self._handle = None
            job.finished = time.perf_counter()
        self._relay.finished.emit(outcome)
        job.ended.set()

    def interrupt(self, job: Job) -> bool:
        """Stop `job`'s running statement, if it runs (the ticket drops its result anyway)."""
        with self._lock:
            if self._running is not job or self._handle is None:
                return False
            self._handle.cancel()
            return True

    def _close(self, store) -> None:
        try:
            store.close()  # this lane's own connection
        except Exception:
            log.debug("closing a lane connection failed", exc_info=True)

    def release(self, store) -> None:
        """Close this lane's connection to `store` (runs on the lane, between jobs)."""

        def close():
            if store in self._stores:
                self._stores.remove(store)
                self._close(store)

        self.put(Job(close))


@dataclass(eq=False)
class Task:
    """A job shown in the progress dialog: `stop` is the person's Cancel (the job still
    reports how it ended), unlike `job.cancel`, which drops the result."""

    dialog: object | None
    stop: CancelToken
    job: Job | None = None

    def request_cancel(self) -> None:
        if self.dialog is not None:
            self.dialog.reject()
        else:
            self.stop.cancel()


def _stop_lanes(lanes: dict, *_args) -> None:
    for lane in lanes.values():
        running = lane.running
        if running is not None:
            running.cancel.cancel()
            lane.interrupt(running)
        lane.put(None)


def _shutdown_at_exit(ref) -> None:
    workers = ref()
    if workers is not None and not workers._closed:
        try:
            workers.shutdown(1000)
        except RuntimeError:  # the Qt object is already gone
            pass


class Workers(QObject):
    """The window's background executor: named lanes, tickets and delivery on the GUI thread."""

    error = Signal(object)  # HashlensError from a job that has no on_error

    def __init__(self, parent: QObject | None = None, lanes: tuple[str, ...] = LANES):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(len(lanes))
        # Lane threads never finish while open; keep idle threads forever so the pool
        # never tries to expire one of ours.
        self.pool.setExpiryTimeout(-1)
        self._names = lanes
        self._relay = _Relay()
        self._relay.finished.connect(self._deliver)
        self._relay.progress.connect(self._deliver_progress)
        self._tickets: dict[str, int] = defaultdict(int)
        self._lanes: dict[str, Lane] = {}
        self._closed = False
        self.delivered = 0
        self._stopping: set[Job] = set()  # stopped jobs still running: interrupted again until they end
        self._retimer = QTimer(self)
        self._retimer.setInterval(REINTERRUPT_MS)
        self._retimer.timeout.connect(self._on_retimer_timeout)
        # If the program ends without shutdown() (an exception escaping a script that
        # drives the window), stop the lanes first: Qt's pool would otherwise wait for
        # them forever while the interpreter exits. Python runs this before PySide's
        # own clean-up, which was registered when PySide was imported.
        atexit.register(_shutdown_at_exit, weakref.ref(self))
        # Deleted without shutdown() (its owner went away): the pool, a child, waits in
        # its destructor for every lane, so the lanes must be told to stop first or the
        # GUI thread would wait forever. `destroyed` comes before the children go.
        self.destroyed.connect(functools.partial(_stop_lanes, self._lanes))

    # -- submitting ------------------------------------------------------------------------

    def submit(
        self,
        lane: str,
        fn: Callable[[], object],
        *,
        on_done=None,
        on_error=None,
        on_progress=None,
        kind: str | None = None,
        store=None,
        cancel: CancelToken | None = None,
        owner: QObject | None = None,
    ) -> Job:
        """Queue `fn` on `lane`. With `kind`, earlier jobs of that kind become stale; with
        `owner`, nothing is delivered once that QObject is gone."""
        job = Job(fn, on_done, on_error, on_progress, kind, store=store, cancel=cancel or CancelToken(), lane=lane,
                  owner=owner)
        if kind is not None:
            self._tickets[kind] += 1
            job.ticket = self._tickets[kind]
        if self._closed:
            job.cancel.cancel()
            job.ended.set()
            return job
        self._lane(lane).put(job)
        return job

    def progress_callback(self, job_holder: list) -> Callable[..., None]:
        """A `progress(done, total=None, phase=None)` for the job in `job_holder[0]`,
        throttled to ~20/s (a new phase and the last step always go through)."""
        last = [0.0, None]

        def progress(done: int, total: int | None = None, phase: str | None = None) -> None:
            now = time.monotonic()
            if now - last[0] < 0.05 and done != total and phase == last[1]:
                return
            last[0], last[1] = now, phase
            if job_holder:
                self._relay.progress.emit(job_holder[0], Progress(int(done), None if total is None else int(total),
                                                                  phase))

        return progress

    def run_task(
        self,
        lane: str,
        work: Callable[[Callable[..., None], CancelToken], object],
        *,
        title: str,
        text: str,
        parent,
        on_done,
        on_error,
        store=None,
        total: int | None = None,
        cancelling: str = "Cancelling: finishing the item in progress…",
        owner: QObject | None = None,
    ) -> Task:
        """Run `work(progress, stop)` with the one progress dialog: counts, percentage,
        time left, phase and a Cancel that sets `stop` (the job then ends its own way,
        typically with a CANCELLED error, and that outcome is delivered). The dialog is
        closed before `on_done(result)` or `on_error(HashlensError)` runs on the GUI thread."""
        from ui.progress_dialog import TaskProgressDialog  # the dialog is a widget; the service is not

        dialog = TaskProgressDialog(title, text, parent, total=total, cancelling=cancelling)
        stop = CancelToken()
        dialog.cancel_requested.connect(stop.cancel)
        holder: list = []
        progress = self.progress_callback(holder)
        task = Task(dialog=dialog, stop=stop)

        def ended():
            task.dialog = None
            dialog.finish()

        def done(result):
            ended()
            on_done(result)

        def failed(error):
            ended()
            on_error(error)

        task.job = self.submit(lane, lambda: work(progress, stop), on_done=done, on_error=failed,
                               on_progress=dialog.update_progress, store=store, owner=owner or dialog.parent())
        holder.append(task.job)
        dialog.open()
        return task

    def cancel_and_wait(self, job: Job | None, stop: CancelToken | None = None, wait_ms: int = 10000) -> bool:
        """Stop `job` (its result is dropped) and wait for it to return; True if it did.
        For a dialog closing while its job runs: nothing may be delivered to it afterwards."""
        if job is None:
            return True
        if stop is not None:
            stop.cancel()
        job.cancel.cancel()
        if job.lane is not None:
            self.interrupt(job.lane, job)
        return job.ended.wait(wait_ms / 1000)

    def is_current(self, job: Job) -> bool:
        if self._closed:
            return False
        return job.kind is None or self._tickets.get(job.kind) == job.ticket

    def invalidate(self, kind: str) -> None:
        """Make every queued or running job of `kind` stale."""
        self._tickets[kind] += 1

    def busy(self, lane: str) -> bool:
        found = self._lanes.get(lane)
        return found is not None and (found.running is not None or found.pending > 0)

    def settled(self, lane: str | None = None) -> bool:
        """True when every job put on `lane` (or on any lane) has been delivered or dropped
        on the GUI thread: nothing more will arrive from it. For tests and shutdown checks."""
        lanes = [self._lanes[lane]] if lane in self._lanes else [] if lane is not None else self._lanes.values()
        return all(found.unsettled == 0 for found in lanes)

    def interrupt(self, lane: str, job: Job) -> bool:
        found = self._lanes.get(lane)
        return found.interrupt(job) if found else False

    def stop(self, job: Job | None) -> None:
        """Make `job` stale and stop its statement if it is running (a newer request won).

        SQLite forgets an interrupt that arrives between two statements (or just before
        the first), so a stopped job that is still running is interrupted again on every
        tick of a short timer until it has ended: its lane is never held by a superseded
        statement, whatever the timing."""
        if job is None:
            return
        if job.kind is not None and self.is_current(job):
            self.invalidate(job.kind)
        if job.lane is not None and not job.ended.is_set():
            self.interrupt(job.lane, job)
            self._stopping.add(job)
            if not self._retimer.isActive():
                self._retimer.start()

    def _on_retimer_timeout(self) -> None:
        for job in list(self._stopping):
            if job.ended.is_set() or self._closed:
                self._stopping.discard(job)
            else:
                self.interrupt(job.lane, job)
        if not self._stopping:
            self._retimer.stop()

    def release(self, store) -> None:
        """Close every lane's connection to a store that is being replaced."""
        for lane in self._lanes.values():
            lane.release(store)

    def _lane(self, name: str) -> Lane:
        if name not in self._names:
            raise ValueError(f"unknown lane {name!r}")
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = Lane(name, self._relay, self.is_current)
            self.pool.start(lane)
        return lane

    # -- delivering ------------------------------------------------------------------------

    @Slot(object)
    def _deliver(self, outcome: _Outcome) -> None:
        job = outcome.job
        lane = self._lanes.get(job.lane)
        if lane is not None:
            lane.unsettled -= 1
        if outcome.skipped:
            return
        if self._closed or job.cancel.is_cancelled or not self.is_current(job):
            return  # a stale or cancelled result: newest request wins
        if not job.owner_alive:
            return  # whoever asked is gone: calling into a deleted widget would crash
        self.delivered += 1
        if outcome.error is not None:
            if job.on_error is not None:
                job.on_error(outcome.error)
            else:
                self.error.emit(outcome.error)
        elif job.on_done is not None:
            job.on_done(outcome.value)

    @Slot(object, object)
    def _deliver_progress(self, job: Job, progress: Progress) -> None:
        if (not self._closed and job.on_progress is not None and not job.cancel.is_cancelled
                and job.owner_alive):
            job.on_progress(progress)

    # -- closing ---------------------------------------------------------------------------

    def shutdown(self, wait_ms: int = 5000) -> bool:
        """Cancel everything, stop the lanes and wait for them; True if all stopped."""
        self._closed = True
        _stop_lanes(self._lanes)
        finished = self.pool.waitForDone(wait_ms)
        return finished and all(lane.stopped.is_set() for lane in self._lanes.values())

    @property
    def active_threads(self) -> int:
        return self.pool.activeThreadCount()
