"""Push a mirror's change-set to its Media Server: one action at a time, each applied exactly once, each confirmed.

The rules (issue 12), and how they hold:

- *Recorded before sent.* A change is marked `sent` in its own committed transaction
  before its request leaves, so a push killed at any moment leaves a trace of every
  request that may have reached the server.
- *Checked before sent again.* A write that was sent but not answered may or may not
  have taken effect (MS: the client says so). Whenever a change is `sent` without an
  answer (a lost connection, a stall, a crash, a kill), its entries are listed first:
  the state after the action means it took effect (confirmed, not sent again); the state
  before means it did not (sent again); anything else is someone else's doing, and the
  push stops and says so.
- *Confirmed from a listing.* After a SUCCESS the entries the action touches are listed
  and must show its effect. ListImageHashes' `identifier` is a comma-separated list
  (MS), so an identifier holding a comma cannot be asked for by name: it is found in a
  listing of the whole database instead.
- *An ERROR is the server's decision.* It is recorded with the server's
  `errordescription`, never sent again within the push, and the push stops there (or goes
  on past it with `continue_on_error`). Pushing again is the person's decision: it sends
  the failed changes again, in order.
- *Someone else's changes, not our own.* Before anything is sent, the entries the
  change-set touches are listed and compared with the latest snapshot *plus the effect of
  every change this mirror's earlier pushes confirmed* (and either side of a change whose
  answer was lost), so a resumed push never mistakes its own partial work for another
  person's. A difference refuses the push unless `force` is given.
- *A fresh snapshot at the end.* When no change is outstanding the mirror is pulled
  again, so the difference between the previous snapshot and the new one is exactly the
  pushed changes (when nobody else changed the server meanwhile).

Every outcome is written to the change-set row and the journal (`app.store.changes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app import faults
from app.domain import Failure, HashlensError
from app.exports.atomic import AtomicFile
from app.mediaserver import changeset
from app.mediaserver.changeset import UNKNOWN, Key, Seen, States, apply, describe_state, keys_of, same
from app.mediaserver.client import MediaServerClient, MediaServerError
from app.mediaserver.mirror import PullReport, pull_mirror
from app.store import changes as store_changes
from app.store import mirrors
from app.store.changes import CONFIRMED, FAILED, PENDING, SENT, StagedChange
# The short reads of a change-set live with staged.py (which the window loads at start-up
# without the client and mirror machinery); these names are kept for push's own callers.
from app.mediaserver.staged import mirror_source, outstanding, pending_counts  # noqa: F401

# Identifiers per ListImageHashes request when confirming: keeps the request far below
# Media Server's default MaxInputString of 64,000 characters (MS) at 254 bytes each.
IDENTIFIERS_PER_REQUEST = 100
# After a lost answer proven not to have taken effect, the change is sent again at most
# this many more times within one push (ours); then the push stops and a later push
# checks again.
RESENDS = 1


@dataclass
class Outcome:
    """What became of one change in this push."""

    change: StagedChange
    state: str
    note: str | None = None


@dataclass
class PushReport:
    """A push's result: each change's outcome, whether it stopped early and why, the
    entries someone else changed, and the snapshot taken at the end."""

    mirror: str
    server: str
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: str | None = None
    others: list[str] = field(default_factory=list)
    snapshot: PullReport | None = None
    dry_run: bool = False
    planned: list[StagedChange] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == FAILED]

    @property
    def confirmed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == CONFIRMED]

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failed

    def lines(self) -> list[str]:
        out = []
        if self.dry_run:
            out.append(f"Dry run: {len(self.planned)} change(s) of '{self.mirror}' would be sent to {self.server}; "
                       "nothing was sent.")
            for number, change in enumerate(self.planned, 1):
                out.append(f"  {number}. {changeset.describe(change.action, dict(change.params))}")
                out.append(f"     {change.line()}")
        for text in self.others:
            out.append(f"  changed on the server since the snapshot: {text}")
        for o in self.outcomes:
            words = changeset.describe(o.change.action, dict(o.change.params))
            if o.state == FAILED:
                out.append(f"FAILED  {words}: {o.note}")
            elif o.state == CONFIRMED:
                out.append(f"ok      {words}" + (f" ({o.note})" if o.note else ""))
            else:
                out.append(f"{o.state:<8}{words}" + (f" ({o.note})" if o.note else ""))
        if not self.dry_run:
            out.append(f"{len(self.confirmed)} change(s) confirmed, {len(self.failed)} failed.")
        if self.stopped:
            out.append(f"Stopped: {self.stopped}")
        if self.snapshot is not None:
            out.append(self.snapshot.text())
            out.append(f"'hashlens diff {self.mirror}' shows the pushed changes.")
        return out


def push(store, client: MediaServerClient, mirror: str, *, dry_run: bool = False, continue_on_error: bool = False,
         force: bool = False, progress: Callable[[int, int], None] | None = None,
         cancelled: Callable[[], bool] | None = None, snapshot: bool = True, take_over: bool = False) -> PushReport:
    """Send the change-set of `mirror` to its server (see the module's rules). Raises
    HashlensError SERVER_CHANGED, before anything is sent, when someone else changed the
    entries since the snapshot (unless `force`); MediaServerError when the server cannot be
    read; STORE_BUSY when another push of the mirror is running (one push at a time: a
    second could take the first one's request in flight for a lost answer). Errors of
    single actions are in the report."""
    source = mirrors.mirror_of(store, mirror)
    if source is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{mirror}' is not a mirror of a Media Server; only a mirror's "
                                                   "changes can be pushed.", parameter="name")
    report = PushReport(mirror, source.url, dry_run=dry_run)
    rows = store_changes.change_set(store, mirror)
    waiting = [c for c in rows if c.state != CONFIRMED]
    if not waiting:
        if rows and snapshot and not dry_run:
            holder = store_changes.acquire_lease(store, mirror, take_over=take_over)
            try:
                _take_snapshot(store, client, source, mirror, report)
            finally:
                store_changes.release_lease(store, mirror, holder)
        return report
    engine = _Engine(store, client, source, mirror, report, continue_on_error, progress, cancelled, dry_run)
    if dry_run:
        engine.check(rows, force)
        report.planned = engine.queue
        return report
    holder = store_changes.acquire_lease(store, mirror, take_over=take_over)
    try:
        # Read again under the lease: a push that ended meanwhile may have moved things on.
        rows = store_changes.change_set(store, mirror)
        engine.check(rows, force)
        engine.run(len(engine.queue))
        if snapshot and not store_changes.outstanding(store, mirror):
            _take_snapshot(store, client, source, mirror, report)
    finally:
        store_changes.release_lease(store, mirror, holder)
    return report


def _take_snapshot(store, client, source: MirrorSource, mirror: str, report: PushReport) -> None:
    faults.checkpoint("push.snapshot")
    pulled = pull_mirror(store, client, source.database, into=mirror)
    store_changes.settle(store, mirror, pulled.snapshot.number)
    report.snapshot = pulled


class _Engine:
    def __init__(self, store, client, source, mirror, report, continue_on_error, progress, cancelled, dry_run):
        self.store, self.client, self.source, self.mirror = store, client, source, mirror
        self.dry_run = dry_run
        self.report, self.continue_on_error = report, continue_on_error
        self.progress, self.cancelled = progress, cancelled
        self.current: States = {}
        self.queue: list[StagedChange] = []
        self.settled_now: set[int] = set()

    # -- before sending: where the server stands ----------------------------------------------

    def check(self, rows: list[StagedChange], force: bool) -> None:
        """List every entry the change-set touches and compare it with what the snapshot
        plus our own confirmed changes say it must be; settle a change whose answer was
        lost first. Raises SERVER_CHANGED (nothing sent) on a difference unless `force`."""
        keys = sorted({k for c in rows for k in keys_of(c.action, dict(c.params))})
        model = _snapshot_states(self.store, self.source, self.mirror, keys)
        confirmed = sorted((c for c in rows if c.state == CONFIRMED), key=lambda c: (c.confirmed_seq or 0, c.id))
        for c in confirmed:
            model = apply(c.action, dict(c.params), model)
        fresh = read_states(self.client, keys)
        unexplained: set[Key] = set()
        for c in (c for c in rows if c.state == SENT):
            # A request whose answer was lost (a crash, a dropped connection): find out
            # whether it took effect before anything else is sent.
            params = dict(c.params)
            after = apply(c.action, params, model)
            own = keys_of(c.action, params)
            if all(same(after.get(k, UNKNOWN), fresh.get(k)) for k in own):
                self._done(c, CONFIRMED, "its answer was lost; the server shows it took effect")
                model = after
            elif all(same(model.get(k, UNKNOWN), fresh.get(k)) for k in own):
                self._done(c, PENDING, "its answer was lost; the server shows it did not take effect, so it is "
                                       "sent again", record=False)
            else:
                self._done(c, FAILED, "its answer was lost, and the server shows neither the state before nor the "
                                      "state after it: " + _differences(own, after, fresh))
                unexplained.update(own)
        differ = [k for k in keys if k in unexplained or not same(model.get(k, UNKNOWN), fresh.get(k))]
        self.report.others = [_differences([k], model, fresh) for k in differ]
        if differ and not force:
            n = len(differ)
            raise HashlensError(
                Failure.SERVER_CHANGED,
                f"Someone else changed {n} entr{'y' if n == 1 else 'ies'} of {self.source.describe()} that the "
                f"change-set of '{self.mirror}' touches, since the snapshot: " + "; ".join(self.report.others[:5])
                + (" …" if n > 5 else "") + ". Nothing was sent. Look at the server, then discard the changes and "
                "pull again, or push anyway.")
        self.current = fresh
        if self.dry_run:
            self.queue = [c for c in rows if c.state != CONFIRMED and c.id not in self.settled_now]
        else:
            self.queue = [c for c in store_changes.change_set(self.store, self.mirror) if c.state != CONFIRMED]

    # -- sending ---------------------------------------------------------------------------------

    def run(self, total: int) -> None:
        done = 0
        for change in self.queue:
            if self.cancelled is not None and self.cancelled():
                self.report.stopped = (f"cancelled; {total - done} change(s) not sent. Push again to send them "
                                       "(nothing is sent twice).")
                return
            state = self._send(change)
            done += 1
            if self.progress is not None:
                self.progress(done, total)
            if state == FAILED and not self.continue_on_error:
                self.report.stopped = (f"the server refused {changeset.describe(change.action, dict(change.params))}"
                                       f" ({self.report.outcomes[-1].note}). Nothing after it was sent; fix the cause "
                                       "and push again (the failed change is sent again), or discard it.")
                return
            if state in (SENT, PENDING):
                self.report.stopped = (f"{changeset.describe(change.action, dict(change.params))}: "
                                       f"{self.report.outcomes[-1].note}")
                return

    def _send(self, change: StagedChange) -> str:
        params = dict(change.params)
        own = keys_of(change.action, params)
        before = self.current
        after = apply(change.action, params, before)
        for attempt in range(RESENDS + 1):
            change = store_changes.mark_sent(self.store, change, self.client.url)
            faults.checkpoint("push.sent")
            try:
                self.client.write(change.action, change.params)
            except MediaServerError as exc:
                if exc.kind == "error":
                    said = exc.detail.describe() if exc.detail is not None else exc.description
                    self._done(change, FAILED, f"the server answered ERROR: {said}")
                    return FAILED
                lost = exc.description
            else:
                faults.checkpoint("push.answered")
                lost = None
            # Confirm from a listing; after a lost answer, find out whether it took effect.
            try:
                fresh = read_states(self.client, own)
            except MediaServerError as exc:
                why = "its answer was lost" if lost else "it was answered SUCCESS"
                self.report.outcomes.append(Outcome(change, SENT, f"{why}, and the server could not be listed to "
                                                                  f"check it ({exc.description}); push again to "
                                                                  "check and finish"))
                return SENT
            if all(same(after.get(k, UNKNOWN), fresh.get(k)) for k in own):
                note = "its answer was lost; the server shows it took effect" if lost else None
                self._done(change, CONFIRMED, note)
                self.current = after
                faults.checkpoint("push.confirmed")
                return CONFIRMED
            if lost is None:
                self._done(change, FAILED, "the server answered SUCCESS but does not list its effect: "
                                           + _differences(own, after, fresh))
                return FAILED
            if not all(same(before.get(k, UNKNOWN), fresh.get(k)) for k in own):
                self._done(change, FAILED, "its answer was lost, and the server shows neither the state before nor "
                                           "the state after it: " + _differences(own, after, fresh))
                return FAILED
            # Proven not applied: it may be sent again.
            change = self._done(change, PENDING, "its answer was lost; the server shows it did not take effect",
                                record=attempt == RESENDS)
        return PENDING

    def _done(self, change: StagedChange, state: str, note: str | None, record: bool = True) -> StagedChange:
        if self.dry_run:
            # A dry run writes nothing; it only says what it found.
            if state == CONFIRMED:
                self.settled_now.add(change.id)
            if record:
                self.report.outcomes.append(Outcome(change, state, note))
            return change
        updated = store_changes.mark_done(self.store, change, state, self.client.url, note)
        if record:
            self.report.outcomes.append(Outcome(updated, state, note))
        return updated


def _differences(keys: Iterable[Key], expected: States, found: States) -> str:
    parts = []
    for k in keys:
        want, got = expected.get(k, UNKNOWN), found.get(k)
        if not same(want, got):
            parts.append(f"'{k[1]}' in '{k[0]}': expected {describe_state(want)}, the server has {describe_state(got)}")
    return "; ".join(parts) or "no difference"


def _snapshot_states(store, source: MirrorSource, mirror: str, keys: list[Key]) -> States:
    """What the latest snapshots say about `keys`: the mirror's own for its database; for
    another database of the same server (a move's target), the snapshot of a mirror of it
    if this store has one; UNKNOWN otherwise."""
    wanted: dict[str, set[str]] = {}
    for db, ident in keys:
        wanted.setdefault(db, set()).add(ident)
    local_names = {source.database: mirror}
    for name, other, _ in mirrors.list_mirrors(store):
        if other.url == source.url and other.database not in local_names:
            local_names[other.database] = name
    states: States = {k: UNKNOWN for k in keys}
    for db, idents in wanted.items():
        name = local_names.get(db)
        found = mirrors.snapshots(store, name) if name else []
        if not found:
            continue
        for k in keys:
            if k[0] == db:
                states[k] = None
        for entry in mirrors.snapshot_entries(store, name, found[-1].number):
            if entry.identifier in idents:
                states[(db, entry.identifier)] = Seen.of(entry.label, entry.has_image_data, entry.items)
    return states


def nameable(identifier: str) -> bool:
    """Whether Media Server can be asked for this identifier by name: its `identifier`
    parameter is a comma-separated list (MS); quoting inside it is Hashlens's own, so an
    identifier with a comma, a quote or a backslash, or with spaces at either end, is
    looked for in a listing instead (ours, to be safe)."""
    return bool(identifier) and identifier == identifier.strip() and not any(c in identifier for c in ',"\\')


def read_states(client: MediaServerClient, keys: Iterable[Key]) -> States:
    """The entries as the server lists them now (None: not listed). Identifiers without a
    comma are asked for by name, a hundred at a time; those with one are found in a
    listing of their whole database (MS: `identifier` is a comma-separated list)."""
    states: States = {}
    by_db: dict[str, list[str]] = {}
    for db, ident in keys:
        by_db.setdefault(db, []).append(ident)
    for db, idents in by_db.items():
        plain = sorted({i for i in idents if nameable(i)})
        comma = {i for i in idents if not nameable(i)}
        for start in range(0, len(plain), IDENTIFIERS_PER_REQUEST):
            chunk = plain[start:start + IDENTIFIERS_PER_REQUEST]
            listed = {e.identifier: e for e in client.list_page(db, identifiers=chunk)}
            for ident in chunk:
                e = listed.get(ident)
                states[(db, ident)] = None if e is None else Seen.of(e.label, e.has_image_data, e.metadata or ())
        if comma:
            for ident in comma:
                states[(db, ident)] = None
            for e in client.list_entries(db):
                if e.identifier in comma:
                    states[(db, e.identifier)] = Seen.of(e.label, e.has_image_data, e.metadata or ())
    return states


def write_scripts(store, mirror: str, script: str | None, undo_script: str | None, *,
                  full_url: bool = True) -> int:
    """Write the outstanding change-set as an ACI script and/or its undo script (each
    atomically); nothing is sent. Returns how many changes they hold."""
    source = mirrors.mirror_of(store, mirror)
    if source is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{mirror}' is not a mirror of a Media Server.", parameter="name")
    waiting = store_changes.outstanding(store, mirror)
    base = source.url if full_url else None
    for target, maker, title in (
            (script, changeset.script_lines, f"The change-set of '{mirror}' for {source.describe()}: "
                                             f"{len(waiting)} request(s)."),
            (undo_script, changeset.undo_lines, f"Undo the change-set of '{mirror}' on {source.describe()}.")):
        if target is None:
            continue
        text = "\n".join(maker(waiting, base, title=title)) + "\n"
        with AtomicFile(target, store_path=store.location.path) as f:
            f.file.write(text.encode("utf-8"))
    return len(waiting)
