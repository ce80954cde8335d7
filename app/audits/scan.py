"""One database's pass for an audit: what its entries, images, metadata and counts hold,
gathered once in a read snapshot (the images afterwards, a batch at a time)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from app.audits import near as nearmod
from app.audits import registry
from app.audits.model import (
    COMMON_KEY_SHARE,
    EXAMPLES,
    LOW_ENTROPY_BITS,
    MAX_FINDINGS_PER_KIND,
    MAX_GROUPS,
    NEAR_LIMIT_BYTES,
    AuditOptions,
    DatabaseAudit,
    Finding,
    Group,
    Integrity,
    KeyProfile,
    Summary,
)
from app.audits.registry import Scope
from app.domain import Failure, HashlensError
from app.services import imaging
from app.store import audit_queries as q
from app.source import SqlSource

# (phase, done, total or None)
Progress = Callable[[str, int, int | None], None]

AUTO_IDENTIFIER = re.compile(r"[0-9a-f]{32}")
IMAGE_BATCH = 64
# From this many images a database's image check runs in a process pool (ours: below it,
# starting the workers costs more than it saves).
PROCESS_THRESHOLD = 1000



def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


class _Capped:
    """A count with the first EXAMPLES items kept."""

    def __init__(self):
        self.count = 0
        self.items: list = []

    def add(self, item) -> None:
        self.count += 1
        if len(self.items) < EXAMPLES:
            self.items.append(item)


class DatabaseScan:
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
        # Entries whose pHash is not known: left out of every comparison, and counted.
        self.no_phash = _Capped()
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
        self.group_overflow: Counter = Counter()

    # The image check runs after the snapshot closes: each batch is its own short read,
    # so an audit of millions of images never holds one transaction for hours.
    def integrity_images(self, store: SqlSource, options: AuditOptions, report: Progress, cancel: Cancel) -> None:
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
            if stored is not None and recomputed != stored:  # not known: nothing to compare
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
        totals.update(self.group_overflow)
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
        # Every database check registered, in order (the most serious first).
        return [f for check in registry.checks(Scope.DATABASE) for f in check.findings(self, groups)]


def scan_database(store: SqlSource, db_id: int, name: str, recorded: int, options: AuditOptions,
                   report: Progress, cancel: Cancel) -> DatabaseScan:
    scan = DatabaseScan(db_id, name, recorded)
    key_parts, hash_parts = [], []
    report(f"{name}: reading entries", 0, recorded)
    low, high = LOW_ENTROPY_BITS, 64 - LOW_ENTROPY_BITS
    for batch in q.iter_entries(store, db_id):
        cancel.check()
        keys, hashes = [], []
        for key, ident, label, phash, sha, has_image, fmt, width, height, size, meta_count in batch:
            if phash is None:
                scan.no_phash.add(ident)
            else:
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
            bits = 32 if phash is None else phash.bit_count()
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
        scan.group_overflow["bytes"] = scan.sha_total - len(scan.sha_groups)
    cancel.check()
    _profile_metadata(store, scan)
    cancel.check()
    scan.flag_mismatch = q.image_flag_mismatches(store, db_id, EXAMPLES)
    scan.actual_count = q.entry_count(store, db_id)
    scan.meta_mismatch = q.meta_count_mismatches(store, db_id, EXAMPLES)
    scan.histogram, scan.sample = distance_histogram(scan.hashes, options.histogram_sample)
    return scan


def _profile_metadata(store: SqlSource, scan: DatabaseScan) -> None:
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


def load_hashes(store: SqlSource, db_id: int, name: str, recorded: int, report: Progress, cancel: Cancel):
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


class Cancel:
    def __init__(self, cancelled):
        self.cancelled = cancelled

    def __call__(self) -> bool:
        return bool(self.cancelled and self.cancelled())

    def check(self) -> None:
        if self():
            raise HashlensError(Failure.CANCELLED, "The audit was cancelled; nothing was changed.")
