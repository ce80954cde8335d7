"""Mirrors of Media Server databases: pull a complete snapshot, pick snapshots, compare snapshots or databases.

A pull is staged outside the store and stored in one transaction only once it is
complete and proven (see `app.mediaserver.pull`), so a cancelled, failed or killed pull
leaves the previous snapshot exactly as it was. The store side is `app.store.mirrors`.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app import faults
from app.domain import Failure, HashlensError, MirrorSource, SnapshotInfo
from app.mediaserver.client import MediaServerClient
from app.mediaserver.pull import DEFAULT_PAGE_SIZE, PullProgress, PullSummary, pull
from app.mediaserver.staging import Staging, StoreStaging
from app.mediaserver import diff_report
from app.diff import DiffCounts, DiffEntry, compare
from app.store import changes, mirrors


@dataclass(frozen=True)
class PullReport:
    database: str
    snapshot: SnapshotInfo
    summary: PullSummary

    def text(self) -> str:
        s, p = self.snapshot, self.summary
        again = f", read again {p.restarts} time(s) because the server changed" if p.restarts else ""
        return (f"Pulled {s.entry_count:,} entries of {s.source.describe()} into '{self.database}': snapshot "
                f"{s.number}, as of {iso_time(s.taken_at)} ({p.pages:,} requests{again}).")


def pull_mirror(store, client: MediaServerClient, remote_database: str, *, into: str | None = None,
                page_size: int = DEFAULT_PAGE_SIZE, progress: Callable[[PullProgress], None] | None = None,
                cancelled: Callable[[], bool] | None = None, staging_folder: str | None = None) -> PullReport:
    """Pull `remote_database` from the client's server into the local database `into`
    (default: the same name) as its next snapshot. A database that exists and is not a
    mirror of this same source is refused before anything is read."""
    into = into or remote_database
    source = MirrorSource(client.url, remote_database)
    mirrors.check_mirror_target(store, into, source)
    refuse_pull_with_changes(store, into)
    changes.ensure_table(store)  # a mirror can stage changes (DDL before any write transaction)
    # Entries are dated by the pull's start: a store that writes while pulling stores
    # them before the pull's end is known.
    started = time.time_ns() // 1_000_000
    if mirrors.writes_while_pulling(store):
        with mirrors.SnapshotWriter(store, into, source, dated=started) as writer:
            summary = pull(client, remote_database, StoreStaging(writer), page_size=page_size, progress=progress,
                           cancelled=cancelled)
            faults.checkpoint("pull.store")
            snapshot = writer.finish(summary.finished_ms)
        return PullReport(into, snapshot, summary)
    with Staging(staging_folder) as staging:
        summary = pull(client, remote_database, staging, page_size=page_size, progress=progress,
                       cancelled=cancelled)
        faults.checkpoint("pull.store")
        snapshot = mirrors.commit_snapshot(store, into, source, staging, taken_at=summary.finished_ms,
                                           dated=started)
    return PullReport(into, snapshot, summary)


def refuse_pull_with_changes(store, name: str) -> None:
    """A pull replaces the local copy with the server's; staged changes not yet on the
    server would be lost, so the pull is refused until they are pushed or discarded."""
    waiting = changes.outstanding(store, name)
    if waiting:
        raise HashlensError(
            Failure.PARAM_INVALID,
            f"'{name}' has {len(waiting)} staged change(s) not yet on the server; a pull would lose them. Push them "
            f"('hashlens push {name}') or discard them ('hashlens discard {name}') first; nothing was pulled.",
            parameter="into")


def iso_time(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pick_snapshot(snapshots: list[SnapshotInfo], spec: str, database: str) -> SnapshotInfo:
    """A snapshot by its number (`3`) or by date (`2026-11-30` or `2026-11-30T14:00`,
    UTC): the latest one taken at or before that moment (the end of the day for a
    bare date)."""
    text = spec.strip()
    if text.isdigit():
        for snap in snapshots:
            if snap.number == int(text):
                return snap
        raise HashlensError(Failure.PARAM_INVALID, f"'{database}' has no snapshot {text}; it has "
                                                   f"{_numbers(snapshots)}.", parameter="from")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise HashlensError(Failure.PARAM_INVALID, f"Snapshot '{spec}': give a snapshot number or a date such as "
                                                   "2026-11-30 or 2026-11-30T14:00 (UTC).", parameter="from") from None
    if len(text) == 10:
        moment += datetime.timedelta(days=1) - datetime.timedelta(milliseconds=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    limit = int(moment.timestamp() * 1000)
    chosen = [s for s in snapshots if s.taken_at <= limit]
    if not chosen:
        raise HashlensError(Failure.PARAM_INVALID, f"'{database}' has no snapshot taken by {spec}; the first was "
                                                   f"taken {iso_time(snapshots[0].taken_at)}.", parameter="from")
    return chosen[-1]


def _numbers(snapshots: list[SnapshotInfo]) -> str:
    if not snapshots:
        return "none"
    return f"{snapshots[0].number} to {snapshots[-1].number}" if len(snapshots) > 1 else f"only {snapshots[0].number}"


@dataclass
class Comparison:
    """Two sides to compare, each in identifier order, and how to name them."""

    old_name: str
    new_name: str
    old: Iterator[DiffEntry]
    new: Iterator[DiffEntry]


def compare_snapshots(store, database: str, from_spec: str | None = None, to_spec: str | None = None) -> Comparison:
    """Two snapshots of a mirror: by default the two latest."""
    snapshots = mirrors.snapshots(store, database)
    if not snapshots:
        raise HashlensError(Failure.PARAM_INVALID, f"'{database}' is not a mirror with snapshots; compare two "
                                                   "databases with 'hashlens diff NAME OTHER'.", parameter="database")
    new = pick_snapshot(snapshots, to_spec, database) if to_spec else snapshots[-1]
    if from_spec:
        old = pick_snapshot(snapshots, from_spec, database)
    else:
        earlier = [s for s in snapshots if s.number < new.number]
        if not earlier:
            raise HashlensError(Failure.PARAM_INVALID, f"'{database}' has only snapshot {new.number} so far; pull "
                                                       "again to have two to compare.", parameter="database")
        old = earlier[-1]
    return Comparison(_snapshot_name(database, old), _snapshot_name(database, new),
                      mirrors.snapshot_entries(store, database, old.number),
                      mirrors.snapshot_entries(store, database, new.number))


def _snapshot_name(database: str, snap: SnapshotInfo) -> str:
    return f"'{database}' snapshot {snap.number} ({iso_time(snap.taken_at)})"


def compare_databases(store, database: str, other_store, other: str) -> Comparison:
    """Two databases as they are now, in one store or two."""
    for s, name in ((store, database), (other_store, other)):
        if mirrors.mirror_of(s, name) is None:
            s.database_id(name)  # NO_SUCH_DATABASE before any output
    where = "" if other_store is store else f" in {other_store.describe()}"
    return Comparison(f"'{database}'", f"'{other}'{where}", mirrors.entries_by_identifier(store, database),
                      mirrors.entries_by_identifier(other_store, other))


def latest_changes(store, database: str, limit: int) -> tuple[str, list[str]]:
    """What changed in a mirror between its two latest snapshots: a summary sentence and
    at most `limit` finding lines (the summary counts every finding)."""
    sides = compare_snapshots(store, database)
    counts = DiffCounts()
    lines = []
    for item in compare(sides.old, sides.new, counts):
        if len(lines) < limit:
            lines.append(diff_report.text_line(item))
    summary = f"From {sides.old_name} to {sides.new_name}: {diff_report.summary_line(counts)}"
    if counts.added + counts.removed + counts.changed > limit:
        summary += f" The first {limit:,} are listed; 'hashlens diff {database}' lists all."
    return summary, lines


@dataclass(frozen=True)
class Finding:
    """One row of the window's Changes view: what happened to which entry. `kind` is one
    of FINDING_KINDS; `key` names the metadata key for metadata findings."""

    kind: str
    identifier: str
    key: str | None = None
    old: str | None = None
    new: str | None = None


FINDING_KINDS = ("added", "removed", "relabelled", "image data removed", "image data changed", "metadata added",
                 "metadata changed", "metadata removed")


@dataclass(frozen=True)
class MirrorChanges:
    """What changed in a mirror since the previous pull: the two sides' names, a summary
    sentence counting every finding, and at most `limit` findings (`complete` says
    whether all are there)."""

    database: str
    old_name: str
    new_name: str
    summary: str
    findings: tuple[Finding, ...]
    complete: bool


def findings_of(item) -> list[Finding]:
    """A difference as Changes-view rows: one per thing that changed (a changed entry can
    be relabelled and have metadata changed, which are two rows)."""
    if item.kind == "added":
        return [Finding("added", item.identifier, new=item.entry.label)]
    if item.kind == "removed":
        return [Finding("removed", item.identifier, old=item.entry.label)]
    change, out = item.change, []
    if change.label is not None:
        out.append(Finding("relabelled", change.identifier, old=change.label[0], new=change.label[1]))
    if change.image_data is not None:
        kind = "image data removed" if change.image_data_removed else "image data changed"
        out.append(Finding(kind, change.identifier, old=_flag(change.image_data[0]), new=_flag(change.image_data[1])))
    for m in change.metadata:
        kind = "metadata added" if m.old is None else "metadata removed" if m.new is None else "metadata changed"
        out.append(Finding(kind, change.identifier, key=m.key, old=m.old, new=m.new))
    return out


def _flag(value: bool | None) -> str:
    return "not known" if value is None else "yes" if value else "no"


def changes_since_previous_pull(store, database: str, limit: int = 5000,
                                cancelled: Callable[[], bool] | None = None) -> MirrorChanges:
    """The difference between the mirror's two latest snapshots as findings for the
    window, streamed: the counts are complete, the findings stop at `limit`."""
    sides = compare_snapshots(store, database)
    counts = DiffCounts()
    found: list[Finding] = []
    complete = True
    for n, item in enumerate(compare(sides.old, sides.new, counts)):
        if cancelled is not None and n % 1000 == 0 and cancelled():
            raise HashlensError(Failure.CANCELLED, "Cancelled.")
        if len(found) < limit:
            found.extend(findings_of(item))
        else:
            complete = False
    complete = complete and len(found) <= limit
    return MirrorChanges(database, sides.old_name, sides.new_name, diff_report.summary_line(counts),
                         tuple(found[:limit]), complete)


def list_mirrors(store) -> list[tuple[str, MirrorSource, SnapshotInfo | None]]:
    """Every mirror by name, with its source and latest snapshot (for the window)."""
    return mirrors.list_mirrors(store)
