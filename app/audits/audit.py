"""Running an audit: a read-only pass over each database, the near-duplicate search,
image integrity, store-level checks and the change history, as one AuditResult."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import app
from app.audits import near as nearmod
from app.audits.model import (
    COMMON_KEY_SHARE,
    EXAMPLES,
    LOW_ENTROPY_BITS,
    MAX_FINDINGS_PER_KIND,
    MAX_GROUPS,
    NEAR_LIMIT_BYTES,
    AuditOptions,
    AuditResult,
    DatabaseAudit,
    Finding,
    Group,
    History,
    Integrity,
    KeyProfile,
    Member,
    StoreChecks,
    Summary,
)
from app.domain import (
    Failure,
    Filter,
    FilterOp,
    HashlensError,
    ListingQuery,
    no_such_database,
    param_invalid,
    phash_to_hex,
)
from app.services import imaging
from app.source import SchemaStanding, schema_version_policy
from app.store import audit_queries as q
from app.store import schema
from app.store.store import Store

# (phase, done, total or None)
Progress = Callable[[str, int, int | None], None]

AUTO_IDENTIFIER = re.compile(r"[0-9a-f]{32}")
# Members listed per group: a degenerate store can put a million entries in one group;
# the group's size stays exact (ours).
MAX_MEMBERS = 500
IMAGE_BATCH = 64
# From this many images a database's image check runs in a process pool (ours: below it,
# starting the workers costs more than it saves).
PROCESS_THRESHOLD = 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


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

    def refresh(self, store: Store, token: int) -> set[str] | None:
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


class _Cancel:
    def __init__(self, cancelled):
        self.cancelled = cancelled

    def __call__(self) -> bool:
        return bool(self.cancelled and self.cancelled())

    def check(self) -> None:
        if self():
            raise HashlensError(Failure.CANCELLED, "The audit was cancelled; nothing was changed.")


def run_audit(
    store: Store,
    database: str | None = None,
    options: AuditOptions = AuditOptions(),
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    cache: AuditCache | None = None,
) -> AuditResult:
    """Audit one database, or every database of the store when `database` is None.
    Reads only; a cancelled audit raises HashlensError(CANCELLED)."""
    nearmod.check_radius(options.near)
    if options.histogram_sample < 2:
        raise param_invalid("histogram_sample", "sample at least 2 entries.")
    report = progress or (lambda phase, done, total: None)
    cancel = _Cancel(cancelled)
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

        scans: dict[str, _Scan] = {}
        with q.translated(store), store.reading():
            for db_id, name, recorded in scope:
                if name in reused:
                    continue
                cancel.check()
                scan = tolerate(f"database '{name}'", lambda a=(db_id, name, recorded): _scan_database(
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
                loaded = tolerate(f"the hashes of '{name}'", lambda a=(db_id, name, recorded): _load_hashes(
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
    findings += _across_findings(across, database)
    findings += _store_findings(checks)
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


# -- one database ---------------------------------------------------------------------------------


class _Capped:
    """A count with the first EXAMPLES items kept."""

    def __init__(self):
        self.count = 0
        self.items: list = []

    def add(self, item) -> None:
        self.count += 1
        if len(self.items) < EXAMPLES:
            self.items.append(item)


class _Scan:
    """What one pass over a database's entries gathered, and the checks that follow it."""

    def __init__(self, db_id: int, name: str, recorded: int):
        self.db_id = db_id
        self.name = name
        self.recorded = recorded
        self.keys = np.zeros(0, np.int64)
        self.hashes = np.zeros(0, np.uint64)
        self.entries = 0
        self.with_image = 0
        self.no_image = _Capped()
        self.labels_auto = _Capped()
        self.labels_missing = _Capped()
        self.ids_auto = _Capped()
        self.ids_awkward = _Capped()
        self.ids_long = _Capped()
        self.labels_long = _Capped()
        self.degenerate = _Capped()
        self.formats: Counter = Counter()
        self.width = self.height = self.size = None
        self.with_metadata = 0
        self.shared_total = 0
        self.shared: list = []
        self.sha_groups: list[list[int]] = []
        self.sha_total = 0
        self.profile: list[KeyProfile] = []
        self.key_gaps: list[tuple[KeyProfile, list[str]]] = []
        self.long_values: list[tuple[KeyProfile, list[str]]] = []
        self.flag_mismatch = (0, [])
        self.actual_count = 0
        self.meta_mismatch = (0, [])
        self.histogram = (0,) * 65
        self.sample = 0
        self.images_checked = 0
        self.images_skipped = True
        self.undecodable = _Capped()
        self.phash_mismatch = _Capped()
        self.sha_mismatch = _Capped()
        self._group_overflow: Counter = Counter()

    # The image check runs after the snapshot closes: each batch is its own short read,
    # so an audit of millions of images never holds one transaction for hours.
    def integrity_images(self, store: Store, options: AuditOptions, report: Progress, cancel: _Cancel) -> None:
        if not options.check_images:
            return
        self.images_skipped = False
        total = q.count_with_image_flag(store, self.db_id)
        done = 0
        report(f"{self.name}: checking images", 0, total)
        # Decoding and hashing hold the GIL (measured: two threads run no faster than one),
        # so many images go to a process pool. "spawn" starts clean interpreters: no fork
        # of a process that may be running Qt threads.
        workers = options.image_workers or (os.cpu_count() or 1)
        pool = None
        if workers > 1 and total >= PROCESS_THRESHOLD:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        pending = None
        try:
            for batch in q.iter_image_entries(store, self.db_id, IMAGE_BATCH):
                cancel.check()
                blobs = store.images_by_key([r[0] for r in batch])
                rows = [r for r in batch if r[0] in blobs]
                items = [(r[1], blobs[r[0]]) for r in rows]
                if pool is not None:
                    # One task per half batch: a task per image costs more in messages.
                    half = max(1, len(items) // 2)
                    outcomes = [pool.submit(_check_images, items[i:i + half]) for i in range(0, len(items), half)]
                else:
                    outcomes = [_check_images(items)]
                del blobs
                # The workers decode this batch while the previous one is tallied.
                if pending is not None:
                    self._tally(*pending)
                pending = (rows, outcomes)
                done += len(batch)
                report(f"{self.name}: checking images", done, total)
            if pending is not None:
                self._tally(*pending)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _tally(self, rows, outcomes) -> None:
        results = [r for part in outcomes for r in (part.result() if hasattr(part, "result") else part)]
        for (_key, identifier, stored, digest), (kind, value) in zip(rows, results):
            self.images_checked += 1
            if kind == "undecodable":
                self.undecodable.add((identifier, value))
                continue
            recomputed, sha = value
            if recomputed != stored:
                self.phash_mismatch.add((identifier, stored, recomputed))
            if digest is not None and sha != digest:
                self.sha_mismatch.add((identifier, digest, sha))

    def result(self, groups: tuple[Group, ...]) -> DatabaseAudit:
        summary = Summary(
            entries=self.entries,
            with_image_data=self.with_image,
            without_image_data=self.no_image.count,
            labels_auto=self.labels_auto.count,
            labels_missing=self.labels_missing.count,
            labels_shared=self.shared_total,
            shared_labels=tuple(self.shared),
            identifiers_auto=self.ids_auto.count,
            identifiers_awkward=self.ids_awkward.count,
            identifiers_near_limit=self.ids_long.count,
            labels_near_limit=self.labels_long.count,
            formats=tuple(sorted(self.formats.items(), key=lambda kv: (-kv[1], kv[0]))),
            width_range=self.width,
            height_range=self.height,
            byte_size_range=self.size,
            entries_with_metadata=self.with_metadata,
        )
        integrity = Integrity(
            images_checked=self.images_checked,
            images_skipped=self.images_skipped,
            undecodable=self.undecodable.count,
            phash_mismatches=self.phash_mismatch.count,
            sha256_mismatches=self.sha_mismatch.count,
            degenerate_hashes=self.degenerate.count,
            image_flag_mismatches=self.flag_mismatch[0],
            recorded_entry_count=self.recorded,
            actual_entry_count=self.actual_count,
            meta_count_mismatches=self.meta_mismatch[0],
        )
        totals = Counter(g.kind for g in groups)
        totals.update(self._group_overflow)
        return DatabaseAudit(
            name=self.name,
            summary=summary,
            metadata=tuple(self.profile),
            groups=groups,
            group_totals=tuple(sorted(totals.items())),
            integrity=integrity,
            distance_histogram=self.histogram,
            histogram_sample=self.sample,
            findings=tuple(self._findings(groups)),
        )

    def _findings(self, groups) -> list[Finding]:
        name = self.name
        out: list[Finding] = []

        def listed(kind, capped: _Capped, words, query=None, ident=lambda item: item):
            # words: (subject for one, subject for several, the rest of the sentence)
            if capped.count:
                ids = tuple(ident(i) for i in capped.items)
                shown = "" if capped.count <= len(ids) else f" (the first {len(ids):,} are listed)"
                one, many, rest = words
                if capped.count != 1:
                    rest = rest.replace(" it ", " they ")
                text = (one if capped.count == 1 else many.format(n=capped.count)) + rest
                out.append(Finding(kind, name, text + shown, ids, capped.count,
                                   query or ListingQuery(name, identifiers=ids)))

        def each(kind, capped: _Capped, text_of, ident):
            for item in capped.items[:MAX_FINDINGS_PER_KIND]:
                out.append(Finding(kind, name, text_of(item), (ident(item),), 1,
                                   ListingQuery(name, identifiers=(ident(item),))))
            rest = capped.count - min(len(capped.items), MAX_FINDINGS_PER_KIND)
            if rest > 0:
                out.append(Finding(kind, name, f"… and {rest:,} more like these.", (), rest))

        first = lambda item: item[0]  # noqa: E731
        # Integrity first: the most serious.
        each("image-undecodable", self.undecodable,
             lambda i: f"'{i[0]}': the stored image no longer decodes ({i[1]}).", first)
        each("phash-mismatch", self.phash_mismatch,
             lambda i: f"'{i[0]}': the stored pHash {phash_to_hex(i[1])} differs from the image's "
                       f"{phash_to_hex(i[2])} by {(i[1] ^ i[2]).bit_count()} bits.", first)
        each("sha256-mismatch", self.sha_mismatch,
             lambda i: f"'{i[0]}': the stored image bytes are not the ones trained (SHA-256 {i[2][:12]}…, "
                       f"recorded {i[1][:12]}…).", first)
        count, items = self.flag_mismatch
        if count:
            ids = tuple(i[0] for i in items)
            out.append(Finding("image-flag-mismatch", name,
                               f"{_entries(count)} {'says it has' if count == 1 else 'say they have'} image data but "
                               f"{'has' if count == 1 else 'have'} none, or the reverse.",
                               ids, count, ListingQuery(name, identifiers=ids)))
        if self.actual_count != self.recorded:
            out.append(Finding("entry-count-mismatch", name,
                               f"The database records {self.recorded:,} entries but holds {self.actual_count:,}; "
                               "paging by start= is off by the difference."))
        count, items = self.meta_mismatch
        if count:
            ids = tuple(i[0] for i in items)
            out.append(Finding("meta-count-mismatch", name,
                               f"{_entries(count)} {'records' if count == 1 else 'record'} a different number of metadata "
                               "items than held.",
                               ids, count, ListingQuery(name, identifiers=ids)))
        # Duplicates and near-duplicates.
        for g in groups:
            ids = tuple(m.identifier for m in g.members)
            more = f" (the first {len(ids):,} of {g.size:,} listed)" if g.size > len(ids) else ""
            if g.kind == "bytes":
                text = f"{g.size:,} entries hold identical image bytes (SHA-256){more}."
                out.append(Finding("duplicate-bytes", name, text, ids, g.size, g.query()))
            elif g.kind == "phash":
                text = f"{g.size:,} entries have the identical pHash {g.members[0].phash_hex}{more}."
                out.append(Finding("duplicate-phash", name, text, ids, g.size, g.query()))
            else:
                bound = "" if g.exact_max else "at least "
                text = f"{g.size:,} entries are near-duplicates, at most {bound}{g.max_distance} bits apart{more}."
                out.append(Finding("near-duplicate", name, text, ids, g.size, g.query()))
            if g.likely_mislabel:
                out.append(Finding("likely-mislabel", name, _mislabel_text(g), ids, g.size, g.query()))
        for kind in ("bytes", "phash", "near"):
            if self._group_overflow.get(kind):
                out.append(Finding({"bytes": "duplicate-bytes", "phash": "duplicate-phash", "near": "near-duplicate"}[kind],
                                   name, f"… and {self._group_overflow[kind]:,} more groups like these.", (),
                                   self._group_overflow[kind]))
        each("hash-degenerate", self.degenerate,
             lambda i: f"'{i[0]}': the pHash {phash_to_hex(i[1])} is {i[2]}; it matches blank or flat images.", first)
        listed("identifier-awkward", self.ids_awkward,
               ("1 identifier contains", "{n:,} identifiers contain",
                " a comma or a double quote; list it quoted in identifier= (\"a,b\")."))
        listed("identifier-near-limit", self.ids_long,
               ("1 identifier is", "{n:,} identifiers are", f" {NEAR_LIMIT_BYTES} bytes or longer, near the 254-byte limit."))
        listed("label-missing", self.labels_missing, ("1 entry has", "{n:,} entries have", " an empty label."))
        listed("label-near-limit", self.labels_long,
               ("1 label is", "{n:,} labels are", f" {NEAR_LIMIT_BYTES} bytes or longer, near the 254-byte limit."),
               ident=first)
        for profile, ids in self.key_gaps:
            missing = self.entries - profile.entries
            out.append(Finding(
                "metadata-key-gap", name,
                f"{_entries(missing)} {'lacks' if missing == 1 else 'lack'} the metadata key '{profile.key}', "
                f"which {profile.coverage:.0%} of entries have.",
                tuple(ids), missing, ListingQuery(name, filters=(Filter(FilterOp.META_ABSENT, key=profile.key),)),
            ))
        for profile, ids in self.long_values:
            if profile.key_bytes >= NEAR_LIMIT_BYTES:
                text = f"The metadata key '{profile.key}' is {profile.key_bytes} bytes, near the 254-byte limit."
                n = profile.entries
            else:
                many = profile.values_near_limit != 1
                text = (f"{profile.values_near_limit:,} {'values' if many else 'value'} of the metadata key "
                        f"'{profile.key}' {'are' if many else 'is'} {NEAR_LIMIT_BYTES} bytes or longer, "
                        "near the 254-byte limit.")
                n = profile.values_near_limit
            out.append(Finding("metadata-near-limit", name, text, tuple(ids), n,
                               ListingQuery(name, filters=(Filter(FilterOp.META_PRESENT, key=profile.key),))))
        # Facts.
        listed("no-image-data", self.no_image,
               ("1 entry has", "{n:,} entries have", " no image data; it can never be retrained or re-hashed."),
               ListingQuery(name, filters=(Filter(FilterOp.HAS_IMAGE_DATA, False),)))
        listed("identifier-auto", self.ids_auto, ("1 identifier was", "{n:,} identifiers were",
                                                  " generated (32 hex digits)."))
        listed("label-auto", self.labels_auto, ("1 label was", "{n:,} labels were",
                                                " generated (equal to the identifier)."))
        for label, n in self.shared[:MAX_FINDINGS_PER_KIND]:
            out.append(Finding("label-shared", name, f"The label '{label}' is shared by {n:,} entries.", (), n,
                               ListingQuery(name, filters=(Filter(FilterOp.LABEL_EQUALS, label),))))
        rest = self.shared_total - min(len(self.shared), MAX_FINDINGS_PER_KIND)
        if rest > 0:
            out.append(Finding("label-shared", name, f"… and {rest:,} more shared labels.", (), rest))
        return out


def _entries(n: int) -> str:
    return "1 entry" if n == 1 else f"{n:,} entries"


def _mislabel_text(g: Group) -> str:
    parts = []
    if g.labels_disagree:
        labels = sorted({m.label for m in g.members if m.label.strip() and m.label != m.identifier})
        parts.append("labels " + ", ".join(repr(x) for x in labels[:5]) + (" …" if len(labels) > 5 else ""))
    if g.metadata_disagree:
        parts.append("metadata " + ", ".join(repr(k) for k in g.metadata_disagree[:5]))
    what = {"bytes": "identical images", "phash": "images with identical pHashes"}.get(g.kind, "near-duplicates")
    return f"Likely mislabel: {what} disagree on {' and '.join(parts)}."


def _scan_database(store: Store, db_id: int, name: str, recorded: int, options: AuditOptions,
                   report: Progress, cancel: _Cancel) -> _Scan:
    scan = _Scan(db_id, name, recorded)
    key_parts, hash_parts = [], []
    report(f"{name}: reading entries", 0, recorded)
    low, high = LOW_ENTROPY_BITS, 64 - LOW_ENTROPY_BITS
    for batch in q.iter_entries(store, db_id):
        cancel.check()
        keys, hashes = [], []
        for key, ident, label, phash, sha, has_image, fmt, width, height, size, meta_count in batch:
            keys.append(key)
            hashes.append(phash)
            if has_image:
                scan.with_image += 1
            else:
                scan.no_image.add(ident)
            if AUTO_IDENTIFIER.fullmatch(ident):
                scan.ids_auto.add(ident)
            if "," in ident or '"' in ident:
                scan.ids_awkward.add(ident)
            if len(ident) * 4 >= NEAR_LIMIT_BYTES and _nbytes(ident) >= NEAR_LIMIT_BYTES:
                scan.ids_long.add(ident)
            if label == ident:
                scan.labels_auto.add(ident)
            elif not label or not label.strip():
                scan.labels_missing.add(ident)
            if len(label) * 4 >= NEAR_LIMIT_BYTES and _nbytes(label) >= NEAR_LIMIT_BYTES:
                scan.labels_long.add((ident, label))
            bits = phash.bit_count()
            if bits <= low or bits >= high:
                what = "all zeros" if bits == 0 else "all ones" if bits == 64 else f"of very low bit entropy ({bits} of 64 bits set)"
                scan.degenerate.add((ident, phash, what))
            if meta_count:
                scan.with_metadata += 1
        scan.entries += len(batch)
        key_parts.append(np.array(keys, dtype=np.int64))
        hash_parts.append(np.array(hashes, dtype=np.uint64))
        report(f"{name}: reading entries", scan.entries, max(recorded, scan.entries))
    if key_parts:
        scan.keys = np.concatenate(key_parts)
        scan.hashes = np.concatenate(hash_parts)
    cancel.check()
    report(f"{name}: labels, duplicates and metadata", 0, None)
    formats, (scan.width, scan.height, scan.size) = q.shape_profile(store, db_id)
    scan.formats.update(dict(formats))
    scan.shared_total, scan.shared = q.shared_labels(store, db_id, MAX_FINDINGS_PER_KIND)
    scan.sha_total, scan.sha_groups = q.sha256_groups(store, db_id, MAX_GROUPS)
    if scan.sha_total > len(scan.sha_groups):
        scan._group_overflow["bytes"] = scan.sha_total - len(scan.sha_groups)
    cancel.check()
    _profile_metadata(store, scan)
    cancel.check()
    scan.flag_mismatch = q.image_flag_mismatches(store, db_id, EXAMPLES)
    scan.actual_count = q.entry_count(store, db_id)
    scan.meta_mismatch = q.meta_count_mismatches(store, db_id, EXAMPLES)
    scan.histogram, scan.sample = distance_histogram(scan.hashes, options.histogram_sample)
    return scan


def _profile_metadata(store: Store, scan: _Scan) -> None:
    rows = q.metadata_profile(store, scan.db_id, NEAR_LIMIT_BYTES)
    for key, entries, distinct, max_value, near in rows:
        coverage = entries / scan.entries if scan.entries else 0.0
        profile = KeyProfile(
            key=key, entries=entries, coverage=coverage, distinct_values=distinct,
            top_values=tuple(q.top_values(store, scan.db_id, key)), key_bytes=_nbytes(key),
            max_value_bytes=max_value, values_near_limit=near,
        )
        scan.profile.append(profile)
        if COMMON_KEY_SHARE < coverage < 1.0:
            scan.key_gaps.append((profile, q.entries_lacking_key(store, scan.db_id, key, EXAMPLES)))
        if profile.key_bytes >= NEAR_LIMIT_BYTES or near:
            ids = q.entries_with_long_values(store, scan.db_id, key, 0 if profile.key_bytes >= NEAR_LIMIT_BYTES
                                             else NEAR_LIMIT_BYTES, EXAMPLES)
            scan.long_values.append((profile, ids))


def _load_hashes(store: Store, db_id: int, name: str, recorded: int, report: Progress, cancel: _Cancel):
    keys, hashes = [], []
    done = 0
    report(f"{name}: reading hashes", 0, recorded)
    for k, h in q.iter_hashes(store, db_id):
        cancel.check()
        keys.append(np.array(k, dtype=np.int64))
        hashes.append(np.array(h, dtype=np.uint64))
        done += len(k)
        report(f"{name}: reading hashes", done, max(done, recorded))
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(keys), np.concatenate(hashes)


def _check_images(items: list[tuple[str, bytes]]) -> list:
    return [_check_image(identifier, data) for identifier, data in items]


def _check_image(identifier: str, data: bytes):
    """('ok', (recomputed pHash, sha256)) or ('undecodable', reason)."""
    try:
        image = imaging.open_image(data, f"'{identifier}'")
        phash = imaging.phash_of(image)
    except HashlensError as exc:
        reason = exc.description.split(": ", 1)[-1].rstrip(".")
        return "undecodable", reason
    except Exception as exc:  # a decoder bug must not end the audit: report the entry
        return "undecodable", f"{type(exc).__name__}: {exc}"
    return "ok", (phash, hashlib.sha256(data).hexdigest())


def distance_histogram(hashes: np.ndarray, sample: int) -> tuple[tuple[int, ...], int]:
    """Pairs at each pHash distance 0..64 among the entries, or among an evenly spread,
    deterministic sample of `sample` entries on big databases."""
    n = len(hashes)
    if n > sample:
        chosen = hashes[np.linspace(0, n - 1, sample).astype(np.int64)]
    else:
        chosen = hashes
    counts = np.zeros(65, dtype=np.int64)
    m = len(chosen)
    for start in range(0, m, 256):
        rows = chosen[start:start + 256]
        d = nearmod.popcount64(rows[:, None] ^ chosen[None, :])
        # Each unordered pair once: only columns after the row.
        cols = np.arange(m)[None, :]
        upper = cols > (np.arange(start, start + len(rows))[:, None])
        counts += np.bincount(d[upper], minlength=65)
    return tuple(int(c) for c in counts), int(m)


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
            scan._group_overflow["phash"] = len(phash_groups) - MAX_GROUPS
        groups += [("phash", m, 0, True) for m in phash_groups[:MAX_GROUPS]]
        near_groups = [g for g in nearmod.group_values(u, pairs, inv, keep) if g.max_distance > 0]
        if len(near_groups) > MAX_GROUPS:
            scan._group_overflow["near"] = len(near_groups) - MAX_GROUPS
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


def _across_findings(groups, scope: str | None) -> list[Finding]:
    """Findings about groups that span databases belong to the store (database None);
    their query shows the audited database's members (or the first database's)."""
    out = []
    for g in groups:
        ids = tuple(m.identifier for m in g.members)
        where = ", ".join(f"'{d}'" for d in g.databases)
        query = g.query(scope if scope in g.databases else None)
        out.append(Finding("near-duplicate-across", None,
                           f"{g.size:,} entries in {where} are near-duplicates, at most "
                           f"{'' if g.exact_max else 'at least '}{g.max_distance} bits apart.", ids, g.size, query))
        if g.likely_mislabel:
            out.append(Finding("likely-mislabel", None, _mislabel_text(g), ids, g.size, query))
    return out


# -- the store and its history -------------------------------------------------------------------


def _store_checks(store: Store, options: AuditOptions, report: Progress, cancel: _Cancel, tolerate) -> StoreChecks:
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


def _is_damage(store: Store, exc: HashlensError) -> bool:
    """A read error that means a damaged SQLite file (not a lost server or a cancel)."""
    return store.backend == "sqlite" and exc.failure in (Failure.STORE_UNAVAILABLE, Failure.STORE_FAILED)


def _store_findings(checks: StoreChecks) -> list[Finding]:
    out = []
    if checks.integrity_status == "failed":
        shown = "; ".join(checks.integrity_messages[:3])
        out.append(Finding("store-integrity", None,
                           f"The {checks.backend} integrity check ({checks.integrity_check}) failed: {shown}. "
                           "Restore a backup or copy the data out; Hashlens never repairs a store in place.",
                           (), len(checks.integrity_messages)))
    for table, n in checks.orphans:
        if n:
            out.append(Finding("orphan-rows", None, f"{n:,} rows of {table} point at rows that no longer exist.", (), n))
    version, expected = checks.schema_version, checks.expected_schema_version
    standing = schema_version_policy(version, expected).standing
    if standing is SchemaStanding.NEWER:
        out.append(Finding("schema-newer", None,
                           f"The store has schema version {version}; this Hashlens knows {expected}, so parts of "
                           "the store may not have been audited. Use a newer Hashlens."))
    elif standing is SchemaStanding.OLDER:
        out.append(Finding("schema-older", None,
                           f"The store has schema version {version} (this Hashlens writes {expected}); it stays "
                           "read-only until 'hashlens migrate' upgrades it, after a backup."))
    return out


def _history(store: Store, database: str | None, options: AuditOptions) -> History:
    by_action = q.journal_summary(store, options.since, options.until, database)
    latest = q.journal_latest(store, options.since, options.until, database, options.history_limit)
    return History(
        since=options.since,
        until=options.until,
        total=sum(r[2] for r in by_action),
        by_action=tuple(by_action),
        latest=tuple(latest),
    )

