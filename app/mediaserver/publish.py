"""Publish a local database to a Media Server: TrainImageHash each entry with image data, exactly once.

The rules (issue 12 item 4):

- Every entry of the local database that holds image data is sent as TrainImageHash with
  the image as a multipart `imagedata` upload, its identifier, label and metadata (MS
  quoting, `app.mediaserver_codec.lists`). Entries without image data cannot be trained
  and are listed in the report.
- TrainImageHash is asynchronous (MS): the answer is a token, followed with QueueInfo
  GetStatus until the action has ended. The finished action's result is not documented
  (unknown), so nothing is read from it: an entry counts as published only once
  ListImageHashes shows its identifier on the server.
- At most `in_flight` trainings are outstanding at a time.
- An entry already on the server (by identifier) is skipped, so running again resumes.
  Media Server's `identifier` list is comma-separated and documents no quoting, so an
  identifier holding a comma, a quote or a backslash, or with spaces at either end,
  is looked for in a whole listing instead (ours: the conservative reading).
- Nothing is trained twice. Each entry is marked `sent` in the store, committed, before
  its request leaves (`app.store.publishing`). A mark still open after a crash, a kill
  or an unanswered request is resolved by asking the server before anything is sent
  again: the listing shows the entry (it was trained), or its token's action is
  followed to its end, or - without a token - the TrainImageHash queue is waited on until
  nothing in it is pending; only an entry then still absent is sent again. Training is
  atomic on the server (MS): an action that ended in an error added nothing.
- An ERROR answer is the server's decision: the entry is reported failed with the
  server's words and the run stops sending (unless told to continue); running again
  sends the failed entries again.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app import faults
from app.domain import EntryRow, Failure, Filter, FilterOp, HashlensError, ListingQuery, MirrorSource, counted
from app.mediaserver.client import MediaServerClient, MediaServerError
from app.mediaserver.pull import pull
from app.mediaserver.staging import Staging
from app.mediaserver_codec import names
from app.store import mirrors, publishing
from app.store.journal import now_ms

DEFAULT_IN_FLIGHT = 4
# How long one training may stay queued or running before the run stops waiting for it
# (its mark stays open; the next run resolves it).
DEFAULT_ACTION_TIMEOUT = 600.0
# Rows read from the store and marked `sent` together: one commit per batch.
BATCH = 200
# Identifiers per ListImageHashes request, and a bound on the list's length well under
# Media Server's MaxInputString of 64,000 characters (MS) once percent-encoded.
LOOKUP_IDS = 100
LOOKUP_CHARS = 12_000
# QueueInfo states after which an action does nothing more (MS names Finished and Error;
# the stand-in's Stopped and Cancelled are the Stop and Cancel outcomes). Any other
# state (queued, processing: names unknown) is taken as still pending.
ENDED = frozenset({"finished", "error", "stopped", "cancelled", "canceled", "aborted", "failed"})
# Tries per entry in one run after the server was found not to have trained it.
ATTEMPTS = 3


@dataclass(frozen=True)
class PublishProgress:
    """Where a publish is: entries handled (published, already there, failed) of `total`."""

    done: int
    total: int
    published: int
    already: int
    failed: int
    in_flight: int


@dataclass
class PublishReport:
    database: str
    target: MirrorSource
    publishable: int = 0
    published: list[str] = field(default_factory=list)
    already: int = 0
    without_image_data: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unresolved: list[tuple[str, str]] = field(default_factory=list)
    resolved_earlier: int = 0
    cancelled: bool = False
    stopped: str | None = None  # why the run stopped before the end, if it did
    mirror: str | None = None  # what became of the local database: a mirror of the target, or why not
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Every entry with image data is on the server."""
        return not (self.failed or self.unresolved or self.cancelled or self.stopped) and \
            len(self.published) + self.already == self.publishable

    def text(self, limit: int = 20) -> str:
        lines = [f"Published '{self.database}' to {self.target.describe()}: "
                 f"{counted(len(self.published), 'entry', 'entries')} trained, {self.already:,} already there, "
                 f"{len(self.failed):,} failed, {len(self.without_image_data):,} without image data "
                 f"({self.publishable:,} with image data) in {self.seconds:.1f} s."]
        if self.resolved_earlier:
            lines.append(f"{counted(self.resolved_earlier, 'entry', 'entries')} sent by an earlier, interrupted run "
                         "were found on the server and not sent again.")
        if self.mirror:
            lines.append(self.mirror)
        if self.cancelled:
            lines.append("Cancelled: run the same command again to publish the rest; nothing is sent twice.")
        if self.stopped:
            lines.append(f"Stopped: {self.stopped}")
        for title, items in (("Failed (the server's reason)", self.failed),
                             ("Not known yet whether trained (the next run checks the server first)", self.unresolved)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  {identifier}: {reason}" for identifier, reason in items[:limit]]
                if len(items) > limit:
                    lines.append(f"  … and {len(items) - limit:,} more")
        if self.without_image_data:
            lines.append("Without image data, so not published (TrainImageHash needs the image):")
            lines += [f"  {identifier}" for identifier in self.without_image_data[:limit]]
            if len(self.without_image_data) > limit:
                lines.append(f"  … and {len(self.without_image_data) - limit:,} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Outcome:
    """How one training went, as its worker saw it."""

    row: EntryRow
    kind: str  # "ended" (the queue says it ended), "refused" (ERROR answer), "uncertain"
    token: str | None = None
    status: str | None = None
    error: str | None = None


def plan(store, database: str) -> tuple[int, list[str]]:
    """How many entries can be published, and the identifiers of those without image data."""
    store.database_id(database)
    publishable = store.count(ListingQuery(database, filters=(Filter(FilterOp.HAS_IMAGE_DATA, True),))).value
    without = [row.identifier for batch in store.iter_listing(
        ListingQuery(database, filters=(Filter(FilterOp.HAS_IMAGE_DATA, False),))) for row in batch]
    return publishable, without


class Publisher:
    """One run of `hashlens publish`. `progress` is called from the calling thread;
    `cancelled` is polled between trainings (a cancel waits for those in flight)."""

    def __init__(self, store, client: MediaServerClient, database: str, remote: str, *,
                 in_flight: int = DEFAULT_IN_FLIGHT, continue_on_error: bool = False,
                 action_timeout: float = DEFAULT_ACTION_TIMEOUT,
                 progress: Callable[[PublishProgress], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, sleep: Callable[[float], None] = time.sleep):
        if in_flight < 1:
            raise HashlensError(Failure.PARAM_INVALID, "At most 0 trainings in flight publishes nothing; give 1 or more.",
                                parameter="in-flight")
        self.store, self.client, self.database, self.remote = store, client, database, remote
        self.in_flight = in_flight
        self.continue_on_error = continue_on_error
        self.action_timeout = action_timeout
        self._progress = progress
        self._cancelled = cancelled or (lambda: False)
        self._sleep = sleep
        self.report = PublishReport(database, MirrorSource(client.url, remote))
        self._listed: set[str] | None = None  # the whole remote listing, when one was needed
        self._inflight_now = 0
        self._resolved: set[str] = set()

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> PublishReport:
        started = time.monotonic()
        report = self.report
        if self.store.read_only:
            raise HashlensError(Failure.READ_ONLY, self.store.read_only_reason())
        report.publishable, report.without_image_data = plan(self.store, self.database)
        self._check_remote()
        target = MirrorSource(self.client.url, self.remote)
        current = self.store.mirror_of(self.database)
        if current is not None and current != target:
            raise HashlensError(Failure.PARAM_INVALID,
                                f"'{self.database}' is a mirror of {current.describe()}; it cannot also become a "
                                f"mirror of {target.describe()}. Nothing was sent.", parameter="database")
        self.pub = publishing.publication(self.store, self.database, self.client.url, self.remote, now=now_ms())
        try:
            self._resolve_earlier()
            self._publish_all()
            if report.complete:
                try:
                    self._become_mirror(target, current)
                except HashlensError as exc:  # the publish stands; only the mark is missing
                    report.mirror = (f"'{self.database}' stays a local database for now: {exc.description} "
                                     "Publishing again tries again.")
        except MediaServerError as exc:
            report.stopped = exc.description
        finally:
            report.seconds = time.monotonic() - started
        return report

    def _become_mirror(self, target: MirrorSource, current: MirrorSource | None) -> None:
        """Every entry with image data is on the server: the local database becomes a
        mirror of it, with the server's listing as its first snapshot (a pull's commit:
        each entry keeps its pHash and image by identifier). Not when the database holds
        entries the server does not list (those without image data): a mirror's entries
        are the server's, so they would be lost."""
        if current == target:
            self.report.mirror = f"'{self.database}' is a mirror of {target.describe()} already."
            return
        with Staging() as staging:
            summary = pull(self.client, self.remote, staging, cancelled=self._cancelled)
            listed = {e.identifier for e in staging.entries()}
            missing = [row.identifier for batch in self.store.iter_listing(ListingQuery(self.database))
                       for row in batch if row.identifier not in listed]
            if missing:
                shown = ", ".join(repr(i) for i in missing[:5]) + (" …" if len(missing) > 5 else "")
                self.report.mirror = (
                    f"'{self.database}' stays a local database: {counted(len(missing), 'entry', 'entries')} of it "
                    f"({shown}) are not on the server, and a mirror holds only what the server lists. Move or "
                    f"remove them and publish again to make it a mirror of {target.describe()}.")
                return
            snapshot = mirrors.adopt_database(self.store, self.database, target, staging.entries(),
                                              taken_at=summary.finished_ms)
        self.report.mirror = (f"'{self.database}' is now a mirror of {target.describe()} (snapshot "
                              f"{snapshot.number}, {snapshot.entry_count:,} entries); its pHashes and images are "
                              "kept.")

    def _check_remote(self) -> None:
        """The server database must exist (MS: TrainImageHash needs it); say so before
        anything is marked or sent."""
        try:
            self.client.list_page(self.remote, maxresults=1, imagestatus=False, metadata=False)
        except MediaServerError as exc:
            if exc.kind == "error" and exc.detail is not None and "does not exist" in (exc.detail.describe() or ""):
                raise HashlensError(Failure.NO_SUCH_DATABASE,
                                    f"The Media Server at {self.client.url} has no database '{self.remote}'; "
                                    "create it there first (TrainImageHash needs an existing database). "
                                    "Nothing was sent.", parameter="remote") from None
            raise

    def _resolve_earlier(self) -> None:
        """Marks left open by an earlier run: trained, or forgotten so they are sent now."""
        marks = publishing.open_marks(self.store, self.pub)
        if not marks:
            return
        trained, _ = self._resolve(dict(marks))
        self.report.resolved_earlier = len(trained)
        self._resolved = set(trained)

    def _publish_all(self) -> None:
        query = ListingQuery(self.database, filters=(Filter(FilterOp.HAS_IMAGE_DATA, True),), metadata=True,
                             imagestatus=True)
        rows: list[EntryRow] = []
        for batch in self.store.iter_listing(query, batch=BATCH):
            rows.extend(batch)
            while len(rows) >= BATCH:
                self._batch(rows[:BATCH])
                rows = rows[BATCH:]
                if self._should_stop():
                    return
        if rows:
            self._batch(rows)

    def _should_stop(self) -> bool:
        report = self.report
        if self._cancelled():
            report.cancelled = True
        return report.cancelled or report.stopped is not None

    def _batch(self, rows: list[EntryRow]) -> None:
        """Skip what the server has, mark the rest `sent` (committed), train them with at
        most `in_flight` outstanding, confirm from a listing, record the outcomes."""
        report = self.report
        present = self._present([r.identifier for r in rows])
        # Entries an earlier, interrupted run trained were counted when their marks were
        # resolved at the start.
        report.already += len(present - self._resolved)
        todo = [r for r in rows if r.identifier not in present]
        self._tick()
        attempts: dict[str, int] = {}
        while todo and not self._should_stop():
            publishing.mark_sent(self.store, self.pub, [r.identifier for r in todo], now=now_ms())
            faults.checkpoint("publish.marked")
            images = self.store.images_by_key([r.key for r in todo])
            outcomes = self._train_all(todo, images)
            again = self._settle(outcomes)
            todo = []
            for row in again:
                attempts[row.identifier] = attempts.get(row.identifier, 1) + 1
                if attempts[row.identifier] > ATTEMPTS:
                    report.unresolved.append((row.identifier, f"not trained after {ATTEMPTS} tries in this run"))
                else:
                    todo.append(row)

    def _train_all(self, rows: list[EntryRow], images: dict[int, bytes]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        pending = list(rows)
        with cf.ThreadPoolExecutor(self.in_flight, thread_name_prefix="publish") as pool:
            running: set[cf.Future] = set()
            while pending or running:
                while pending and len(running) < self.in_flight and not self._should_stop():
                    row = pending.pop(0)
                    image = images.get(row.key)
                    if image is None:  # image data removed since the listing: not sent
                        outcomes.append(_Outcome(row, "refused", error="its image data was removed meanwhile"))
                        continue
                    running.add(pool.submit(self._train_one, row, image))
                if self._should_stop():
                    pending = []  # never sent: their marks are dropped when the outcomes are recorded
                self._inflight_now = len(running)
                if not running:
                    break
                done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()
                    faults.checkpoint("publish.answered")
                    outcomes.append(outcome)
                    if outcome.kind == "refused" and not self.continue_on_error:
                        self.report.stopped = (f"the server refused '{outcome.row.identifier}': {outcome.error} "
                                               "(run again to send the rest; --continue-on-error goes on past "
                                               "refusals)")
                self._tick(len(outcomes))
        self._inflight_now = 0
        self._listed = None  # trainings may have added to the server's listing
        sent = {o.row.identifier for o in outcomes}
        # Marked but never sent (a stop): known not to be on the server, so their marks go.
        outcomes += [_Outcome(r, "unsent") for r in rows if r.identifier not in sent]
        return outcomes

    def _train_one(self, row: EntryRow, image: bytes) -> _Outcome:
        """Runs on a worker thread: train, then follow the token until the action ends."""
        try:
            token = self.client.train(self.remote, image, identifier=row.identifier, label=row.label,
                                      metadata=row.metadata or ())
        except MediaServerError as exc:
            if exc.kind == "error":
                return _Outcome(row, "refused", error=_server_words(exc))
            return _Outcome(row, "uncertain", error=_server_words(exc))
        status, error = self._follow(token)
        if status is None:
            return _Outcome(row, "uncertain", token=token, error=error)
        return _Outcome(row, "ended", token=token, status=status, error=error)

    def _follow(self, token: str) -> tuple[str | None, str | None]:
        """The action's final state and error, or (None, why) when it cannot be followed."""
        deadline = time.monotonic() + self.action_timeout
        pause = 0.002
        while True:
            try:
                found = self.client.queue_status(token)
            except MediaServerError as exc:
                return None, _server_words(exc)
            state = next((q for q in found if q.token in (None, token)), None)
            if state is None:
                return None, "the server's queue does not know the action's token"
            if (state.status or "").lower() in ENDED:
                return state.status, state.error
            if time.monotonic() > deadline:
                return None, f"still {state.status or 'pending'} after {self.action_timeout:g} s"
            self._sleep(pause)
            pause = min(pause * 2, 0.25)

    def _settle(self, outcomes: list[_Outcome]) -> list[EntryRow]:
        """Confirm from the server's listing, record every outcome, resolve the uncertain
        ones; returns the rows found untrained that may be sent again."""
        report = self.report
        ended = [o for o in outcomes if o.kind == "ended"]
        present = self._present([o.row.identifier for o in ended]) if ended else set()
        records: list[tuple[str, str, str | None, str | None]] = []
        open_marks: dict[str, str | None] = {}
        unsent: list[str] = []
        rows = {o.row.identifier: o.row for o in outcomes}
        for o in outcomes:
            identifier = o.row.identifier
            if o.kind == "ended" and (o.status or "").lower() == "finished" and identifier in present:
                records.append((identifier, publishing.CONFIRMED, o.token, None))
                report.published.append(identifier)
            elif o.kind == "ended":
                # Training is atomic (MS): an action that did not finish added nothing; an
                # entry listed anyway is someone else's.
                reason = o.error or (f"the action ended {o.status}" if (o.status or "").lower() != "finished"
                                     else "the action finished but the entry is not listed on the server")
                records.append((identifier, publishing.FAILED, o.token, reason))
                report.failed.append((identifier, reason))
                if not self.continue_on_error and report.stopped is None:
                    report.stopped = f"the server did not train '{identifier}': {reason}"
            elif o.kind == "unsent":
                unsent.append(identifier)
            elif o.kind == "refused":
                records.append((identifier, publishing.FAILED, None, o.error))
                report.failed.append((identifier, o.error or "refused"))
            else:
                if o.token:
                    records.append((identifier, publishing.SENT, o.token, o.error))
                open_marks[identifier] = o.token
        publishing.record(self.store, self.pub, records, now=now_ms())
        publishing.forget(self.store, self.pub, unsent, outcome="not sent")
        faults.checkpoint("publish.recorded")
        self._tick()
        if not open_marks:
            return []
        _, absent = self._resolve(open_marks)
        if report.cancelled or report.stopped:
            return []
        return [rows[i] for i in absent]

    def _resolve(self, marks: dict[str, str | None]) -> tuple[list[str], list[str]]:
        """Open marks -> (trained, absent). Trained entries are confirmed; absent ones -
        proven untrained - lose their mark. Nothing is sent here."""
        report = self.report
        present = self._present(list(marks))
        waiting = {i: t for i, t in marks.items() if i not in present}
        unknown: list[str] = []
        for identifier, token in waiting.items():
            if token is None:
                unknown.append(identifier)
                continue
            status, _ = self._follow(token)
            if status is None:  # the server forgot the token (a restart): wait on the queue
                unknown.append(identifier)
        if unknown:
            self._wait_queue_idle()
        self._listed = None  # read again: trainings followed above may have added to it
        later = self._present(list(waiting)) if waiting else set()
        trained = sorted(present | later)
        absent = [i for i in waiting if i not in later]
        publishing.record(self.store, self.pub, [(i, publishing.CONFIRMED, None, None) for i in trained], now=now_ms())
        publishing.forget(self.store, self.pub, absent)
        faults.checkpoint("publish.resolved")
        report.published.extend(trained)
        return trained, absent

    def _wait_queue_idle(self) -> None:
        """Until no TrainImageHash in the server's queue is pending: then any training
        sent earlier has either taken effect or never will."""
        deadline = time.monotonic() + self.action_timeout
        pause = 0.01
        while True:
            pending = [q for q in self.client.queue_status(None) if (q.status or "").lower() not in ENDED]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise MediaServerError(Failure.SERVER_UNREACHABLE, "timeout", self.client.url, names.QUEUE_INFO,
                                       f"{counted(len(pending), 'training')} still pending after "
                                       f"{self.action_timeout:g} s; an earlier send cannot be checked yet, so "
                                       "nothing more was sent (run again later)")
            self._sleep(pause)
            pause = min(pause * 2, 0.5)

    # -- is it on the server? -----------------------------------------------------------------

    def _present(self, identifiers: Iterable[str]) -> set[str]:
        """Which of `identifiers` the server lists now."""
        identifiers = list(identifiers)
        found: set[str] = set()
        plain = []
        for identifier in identifiers:
            if _needs_listing(identifier):
                if identifier in self._whole_listing():
                    found.add(identifier)
            else:
                plain.append(identifier)
        for chunk in _lookup_chunks(plain):
            for entry in self.client.list_page(self.remote, identifiers=chunk, imagestatus=False, metadata=False):
                found.add(entry.identifier)
        return found & set(identifiers)

    def _whole_listing(self) -> set[str]:
        """Every identifier on the server, read in one streaming request (no paging, so
        nothing can shift between pages). Read again after each training it may show."""
        if self._listed is None:
            self._listed = {e.identifier for e in self.client.list_entries(self.remote, imagestatus=False,
                                                                          metadata=False)}
        return self._listed

    def _tick(self, extra: int = 0) -> None:
        if self._progress is None:
            return
        r = self.report
        done = len(r.published) + r.already + len(r.failed)
        self._progress(PublishProgress(done, r.publishable, len(r.published), r.already, len(r.failed),
                                       self._inflight_now))


def publish(store, client: MediaServerClient, database: str, remote: str, **options) -> PublishReport:
    """Publish `database` to the client's server database `remote` (see the module docstring)."""
    return Publisher(store, client, database, remote, **options).run()


def _needs_listing(identifier: str) -> bool:
    return any(c in identifier for c in ',"\\') or identifier != identifier.strip()


def _lookup_chunks(identifiers: list[str]) -> Iterable[list[str]]:
    chunk: list[str] = []
    size = 0
    for identifier in identifiers:
        cost = len(identifier) * 3 + 3
        if chunk and (len(chunk) >= LOOKUP_IDS or size + cost > LOOKUP_CHARS):
            yield chunk
            chunk, size = [], 0
        chunk.append(identifier)
        size += cost
    if chunk:
        yield chunk


def _server_words(exc: MediaServerError) -> str:
    if exc.detail is not None:
        return exc.detail.errordescription or exc.detail.describe()
    return exc.description
