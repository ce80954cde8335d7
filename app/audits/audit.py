"""Running an audit: a read-only pass over each database, the near-duplicate search,
image integrity, store-level checks and the change history, as one AuditResult.

What is gathered here; what it means is the registered checks' (`app.audits.checks`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

import app
from app.audits import near as nearmod
from app.audits import registry
from app.audits.model import (
    MAX_GROUPS,
    AuditOptions,
    AuditResult,
    DatabaseAudit,
    Finding,
    Group,
    History,
    Member,
    StoreChecks,
)
from app.audits.registry import Scope
from app.audits.scan import Cancel, DatabaseScan, Progress, load_hashes, scan_database
from app.domain import Failure, HashlensError, no_such_database, param_invalid
from app.store import audit_queries as q
from app.store import schema
from app.source import SqlSource

# Members listed per group: a degenerate store can put a million entries in one group;
# the group's size stays exact (ours).
MAX_MEMBERS = 500


def _now_ms() -> int:
    return int(time.time() * 1000)


class AuditCache:
    """Sections of earlier audits of one store, reused while their databases have not
    changed. The journal says what changed since the cached `change_token()`; a change
    made outside Hashlens (raw SQL) is not journaled and so not noticed (documented)."""

    def __init__(self):
        self.store: str | None = None
        self.token: int | None = None
        self.databases: dict[tuple, DatabaseAudit] = {}
        self.hashes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.across: dict[tuple, tuple[Group, ...]] = {}

    def clear(self) -> None:
        self.token = None
        self.databases.clear()
        self.hashes.clear()
        self.across.clear()

    def refresh(self, store: SqlSource, token: int) -> set[str] | None:
        """Forget what changed since the cached token; returns the changed names (None:
        everything)."""
        if self.store != store.describe() or self.token is None or token < self.token:
            self.clear()
            self.store = store.describe()
            return None
        if token == self.token:
            return set()
        changed = q.changed_databases(store, self.token)
        if changed is None:
            self.clear()
            return None
        for key in [k for k in self.databases if k[0] in changed]:
            del self.databases[key]
        for name in changed:
            self.hashes.pop(name, None)
        self.across.clear()
        return changed


class OverallProgress:
    """The whole audit's progress as one fraction that only grows, from its phases.

    Each phase reports its own count ("Animals: reading entries", 40,000 of 1,000,000),
    and a bar fed those restarted at 0 for every phase and sat full while the next
    phase had no count yet (issue 14). The plan gives each phase a share in entry-sized
    units of work (reading an entry 1, checking its image 2, …, measured roughly at a
    million entries); a phase's count moves within its share, and a new phase completes
    every phase before it (they run in the order planned)."""

    def __init__(self, segments: list[tuple[str, float]], on_change: Callable[[float], None]):
        self.order = [name for name, _ in segments]
        self.size = dict(segments)
        self.total = sum(self.size.values()) or 1.0
        self.before: dict[str, float] = {}
        running = 0.0
        for name, size in segments:
            self.before[name] = running
            running += size
        self.fraction = 0.0
        self.on_change = on_change

    def update(self, phase: str, done: int, total: int | None) -> None:
        if phase not in self.size:
            return  # a phase outside the plan moves the words, not the bar
        share = min(1.0, done / total) if total else 0.0
        value = (self.before[phase] + self.size[phase] * share) / self.total
        # Never backwards, and never full before the audit has finished.
        value = min(0.99, max(self.fraction, value))
        if value > self.fraction:
            self.fraction = value
            self.on_change(value)


def _plan(scope, all_dbs, reused, options: AuditOptions, want_across: bool, images) -> list[tuple[str, float]]:
    """The phases run_audit will report, in order, with their shares of the work;
    `images(db_id)` counts a database's entries with image data (only those are checked)."""
    scanned = [(name, max(recorded or 0, 1)) for _, name, recorded in scope if name not in reused]
    with_images = {name: images(db_id) for db_id, name, _ in scope if name not in reused} if options.check_images else {}
    scanned_names = {name for name, _ in scanned}
    segments: list[tuple[str, float]] = []
    for name, n in scanned:
        segments += [(f"{name}: reading entries", n), (f"{name}: labels, duplicates and metadata", 0.1 * n)]
    if want_across:
        segments += [(f"{name}: reading hashes", 0.2 * max(recorded or 0, 1))
                     for _, name, recorded in all_dbs if name not in scanned_names]
    everything = sum(max(recorded or 0, 1) for _, _, recorded in all_dbs)
    segments.append(("near-duplicates", 0.5 * everything))
    if options.check_images:
        # Decoding and hashing an image costs about what reading 20 entries does.
        segments += [(f"{name}: checking images", 20.0 * with_images[name] + 1) for name, _ in scanned]
    segments.append(("store integrity", 0.05 * everything + 1))
    return segments


def run_audit(
    store: SqlSource,
    database: str | None = None,
    options: AuditOptions = AuditOptions(),
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    cache: AuditCache | None = None,
    overall: Callable[[float], None] | None = None,
) -> AuditResult:
    """Audit one database, or every database of the store when `database` is None.
    Reads only; a cancelled audit raises HashlensError(CANCELLED). `progress` hears
    each phase's own count; `overall` the whole audit's share done, 0 to 1, which
    only grows (see OverallProgress)."""
    nearmod.check_radius(options.near)
    if options.histogram_sample < 2:
        raise param_invalid("histogram_sample", "sample at least 2 entries.")
    phase_report = progress or (lambda phase, done, total: None)
    tracker: list[OverallProgress] = []

    def report(phase: str, done: int, total: int | None) -> None:
        phase_report(phase, done, total)
        if tracker:
            tracker[0].update(phase, done, total)
    cancel = Cancel(cancelled)
    started = _now_ms()
    # On a damaged SQLite file the audit reads what it can and reports what it could not
    # (ours): an auditor that stops at the first bad page tells the operator nothing.
    damage: list[str] = []

    def tolerate(what: str, read, default):
        try:
            with q.translated(store):
                return read()
        except HashlensError as exc:
            if not _is_damage(store, exc):
                raise
            damage.append(f"{what}: {exc.description}")
        except _ODD_VALUES as exc:
            # SQLite stores any type in any column: a damaged page, or another program,
            # can leave text where a number belongs. Servers enforce their types.
            if store.backend != "sqlite":
                raise
            damage.append(f"{what}: a value of an unexpected type ({type(exc).__name__}: {exc})")
        return default

    with q.cancellable(store, cancel):
        token = tolerate("the change journal", store.change_token, 0)
        if cache is not None and damage:
            cache.clear()
        if cache is not None:
            cache.refresh(store, token)  # forgets what changed since the cached run
        all_dbs = tolerate("the list of databases", lambda: q.databases(store), [])
        if database is not None:
            scope = [d for d in all_dbs if d[1] == database]
            if not scope and not damage:
                raise no_such_database(database)
        else:
            scope = all_dbs
        reused = {}
        if cache is not None:
            for _, name, _ in scope:
                hit = cache.databases.get((name, options.cache_key()))
                if hit is not None:
                    reused[name] = hit
        across_key = (database, options.near)
        want_across = options.across and len(all_dbs) > 1
        across_cached = cache.across.get(across_key) if cache is not None and want_across else None
        if overall is not None:
            def images(db_id: int) -> int:
                return tolerate("the count of images", lambda: q.count_with_image_flag(store, db_id), 0)

            tracker.append(OverallProgress(
                _plan(scope, all_dbs, reused, options, want_across and across_cached is None, images), overall))

        scans: dict[str, DatabaseScan] = {}
        with q.translated(store), store.reading():
            for db_id, name, recorded in scope:
                if name in reused:
                    continue
                cancel.check()
                scan = tolerate(f"database '{name}'", lambda a=(db_id, name, recorded): scan_database(
                    store, *a, options, report, cancel), None)
                if scan is not None:
                    scans[name] = scan
            # Hashes of every database the near-duplicate search needs, in name order.
            hashes: dict[str, tuple[np.ndarray, np.ndarray]] = {n: (s.keys, s.hashes) for n, s in scans.items()}
            need = [d for d in all_dbs if d[1] not in hashes] if want_across and across_cached is None else []
            for db_id, name, recorded in need:
                if cache is not None and name in cache.hashes:
                    hashes[name] = cache.hashes[name]
                    continue
                cancel.check()
                loaded = tolerate(f"the hashes of '{name}'", lambda a=(db_id, name, recorded): load_hashes(
                    store, *a, report, cancel), None)
                if loaded is not None:
                    hashes[name] = loaded
            near = tolerate("the near-duplicate groups", lambda: _near_search(
                store, scans, hashes, all_dbs, scope, options, report, cancel,
                want_across and across_cached is None), _Near())
            across = across_cached if across_cached is not None else near.across
        for name, scan in scans.items():
            cancel.check()
            tolerate(f"the images of '{name}'", lambda s=scan: s.integrity_images(store, options, report, cancel), None)
        audits = []
        for _, name, _ in scope:
            if name in reused:
                audits.append(reused[name])
            elif name in scans:
                audits.append(scans[name].result(near.groups.get(name, ())))
        checks = _store_checks(store, options, report, cancel, tolerate)
        history = tolerate("the change journal", lambda: _history(store, database, options),
                           History(options.since, options.until, 0, (), ()))

    findings = [f for a in audits for f in a.findings]
    findings += [f for check in registry.checks(Scope.ACROSS) for f in check.findings(across, database)]
    findings += [f for check in registry.checks(Scope.STORE) for f in check.findings(checks)]
    if damage:
        findings.append(Finding(
            "store-integrity", None,
            "The audit could not read all of the store, so its results are incomplete: " + "; ".join(damage[:5])
            + (f" (and {len(damage) - 5} more)" if len(damage) > 5 else "")
            + ". Copy what can be read to a new store or restore a backup; Hashlens never repairs a store in place.",
            (), len(damage)))
    elif cache is not None:
        for a in audits:
            cache.databases[(a.name, options.cache_key())] = a
        for name, pair in hashes.items():
            cache.hashes[name] = pair
        if want_across:
            cache.across[across_key] = across
        cache.token = token
    if overall is not None:
        overall(1.0)
    return AuditResult(
        version=app.__version__,
        store=store.describe(),
        scope=database,
        started_at=started,
        finished_at=_now_ms(),
        options=options,
        databases=tuple(audits),
        across_groups=tuple(across),
        store_checks=checks,
        history=history,
        findings=tuple(findings),
        change_token=token,
        reused=tuple(sorted(reused)),
        near_plan=near.plan,
    )


# -- near-duplicates -------------------------------------------------------------------------------


class _Near:
    def __init__(self):
        self.groups: dict[str, tuple[Group, ...]] = {}
        self.across: tuple[Group, ...] = ()
        self.plan = ""


def _near_search(store, scans, hashes, all_dbs, scope, options, report, cancel, do_across) -> _Near:
    result = _Near()
    names = [n for _, n, _ in all_dbs if n in hashes]
    if not names:
        return result
    keys = np.concatenate([hashes[n][0] for n in names])
    values = np.concatenate([hashes[n][1] for n in names])
    owner = np.concatenate([np.full(len(hashes[n][0]), i, dtype=np.int32) for i, n in enumerate(names)])
    u, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.astype(np.int64)
    plan = nearmod.make_plan(len(u), options.near)
    result.plan = plan.describe()
    pairs = nearmod.distinct_pairs(
        u, options.near, progress=lambda d, t: report("near-duplicates", d, t), cancelled=cancel, plan=plan
    )
    cancel.check()
    wanted_keys: set[int] = set()
    raw: dict[str, list] = {}
    for name, scan in scans.items():
        idx = names.index(name)
        positions = np.flatnonzero(owner == idx)
        inv = inverse[positions]
        keep = np.zeros(len(u), dtype=bool)
        keep[inv] = True
        groups = []
        # Identical image bytes (stored SHA-256), then identical pHashes not wholly explained
        # by identical bytes, then near-duplicate components (largest distance > 0).
        sha_of: dict[int, int] = {}
        for gi, members in enumerate(scan.sha_groups):
            groups.append(("bytes", members, 0, True))
            for k in members:
                sha_of[k] = gi
        db_keys = keys[positions]
        order = np.argsort(inv, kind="stable")
        cuts = np.flatnonzero(np.diff(inv[order])) + 1
        phash_groups = []
        for run in np.split(order, cuts):
            if len(run) < 2:
                continue
            members = sorted(int(k) for k in db_keys[run])
            if len({sha_of.get(k, -1 - k) for k in members}) == 1:
                continue
            phash_groups.append(members)
        phash_groups.sort(key=lambda m: m[0])
        if len(phash_groups) > MAX_GROUPS:
            scan.group_overflow["phash"] = len(phash_groups) - MAX_GROUPS
        groups += [("phash", m, 0, True) for m in phash_groups[:MAX_GROUPS]]
        near_groups = [g for g in nearmod.group_values(u, pairs, inv, keep) if g.max_distance > 0]
        if len(near_groups) > MAX_GROUPS:
            scan.group_overflow["near"] = len(near_groups) - MAX_GROUPS
        for g in near_groups[:MAX_GROUPS]:
            groups.append(("near", [int(db_keys[p]) for p in g.members], g.max_distance, g.exact_max))
        raw[name] = groups
        for _, members, _, _ in groups:
            wanted_keys.update(members[:MAX_MEMBERS])
    across_raw = []
    if do_across:
        in_scope = {names.index(n) for _, n, _ in scope}
        for g in nearmod.group_values(u, pairs, inverse):
            owners = owner[list(g.members)]
            if len(set(owners.tolist())) > 1 and in_scope & set(owners.tolist()):
                across_raw.append(([int(keys[p]) for p in g.members], g.max_distance, g.exact_max))
        for members, _, _ in across_raw:
            wanted_keys.update(members[:MAX_MEMBERS])
    cancel.check()
    details = q.entry_details(store, wanted_keys)
    metadata = q.metadata_of(store, wanted_keys)
    categorical = {n: {p.key for p in s.profile if p.entries >= 2 and p.distinct_values * 2 <= p.entries}
                   for n, s in scans.items()}
    for name, groups in raw.items():
        result.groups[name] = tuple(
            _group(kind, members, dist, exact, details, metadata, categorical) for kind, members, dist, exact in groups
        )
    result.across = tuple(
        _group("across", members, dist, exact, details, metadata, categorical) for members, dist, exact in across_raw
    )
    return result


def _group(kind, members, max_distance, exact, details, metadata, categorical) -> Group:
    listed = []
    for k in members[:MAX_MEMBERS]:
        d = details.get(k)
        if d is None:  # removed by someone else since the scan
            continue
        listed.append(Member(d[0], d[1], d[2], d[3], d[4], d[5], tuple(metadata.get(k, ()))))
    labels = {m.label for m in listed if m.label.strip() and m.label != m.identifier}
    disagree = []
    keys_here = set().union(*(categorical.get(m.database, set()) for m in listed)) if listed else set()
    for key in sorted(keys_here):
        values = {v for m in listed for k, v in m.metadata if k == key}
        if len(values) > 1:
            disagree.append(key)
    return Group(kind, tuple(listed), max_distance, exact, len(labels) > 1, tuple(disagree), len(members))


# -- the store and its history -------------------------------------------------------------------


def _store_checks(store: SqlSource, options: AuditOptions, report: Progress, cancel: Cancel, tolerate) -> StoreChecks:
    cancel.check()
    report("store integrity", 0, None)
    try:
        with q.translated(store):
            status, messages, check = q.store_integrity(store, options.full_integrity)
    except HashlensError as exc:
        if not _is_damage(store, exc):
            raise
        # The check itself hit the damage: that is its answer.
        status, messages, check = "failed", [exc.description], "PRAGMA integrity_check"
    except MemoryError:
        if store.backend != "sqlite":
            raise
        # SQLite reports out-of-memory when a damaged page claims an absurd record size.
        status, messages, check = "failed", ["SQLite ran out of memory reading the file: a damaged page "
                                             "claims an impossible size."], "PRAGMA integrity_check"
    orphans = tolerate("the consistency of the tables", lambda: q.orphan_rows(store), {})
    return StoreChecks(
        backend=store.backend,
        schema_version=store.schema_version,
        expected_schema_version=schema.SCHEMA_VERSION,
        integrity_status=status,
        integrity_check=check,
        integrity_messages=tuple(messages),
        orphans=tuple(sorted(orphans.items())),
    )


# MemoryError: SQLite's answer when a damaged page claims an absurd record size.
_ODD_VALUES = (TypeError, ValueError, OverflowError, UnicodeError, AttributeError, MemoryError)


def _is_damage(store: SqlSource, exc: HashlensError) -> bool:
    """A read error that means a damaged SQLite file (not a lost server, a passing lock held
    by another program, or a cancel: those the store marks `transient`)."""
    return (store.backend == "sqlite" and not exc.transient
            and exc.failure in (Failure.STORE_UNAVAILABLE, Failure.STORE_FAILED))


def _history(store: SqlSource, database: str | None, options: AuditOptions) -> History:
    by_action = q.journal_summary(store, options.since, options.until, database)
    latest = q.journal_latest(store, options.since, options.until, database, options.history_limit)
    return History(
        since=options.since,
        until=options.until,
        total=sum(r[2] for r in by_action),
        by_action=tuple(by_action),
        latest=tuple(latest),
    )

