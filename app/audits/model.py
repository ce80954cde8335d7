"""The audit's result as plain data: sections, groups and findings with their levels."""

from __future__ import annotations

from dataclasses import dataclass

from app.audits.registry import Level, level_of  # noqa: F401  (Level: the levels' one home)
from app.domain import JournalEntry, ListingQuery, phash_words

# A name or value this close to Media Server's 254-byte limit is reported (ours): one more
# suffix or a longer character and it no longer fits.
NEAR_LIMIT_BYTES = 240
# Hashes with at most this many set bits (or at least 64 minus it) carry little
# information: blank or flat images (ours). A pHash of a real photograph has about 32.
LOW_ENTROPY_BITS = 8
# A key present on more than this share of entries but not all is "a key most entries
# have": the entries lacking it are reported (ours).
COMMON_KEY_SHARE = 0.5
# How many identifiers a finding lists and how many findings of one kind a database
# reports before summing up the rest (ours; counts stay exact).
EXAMPLES = 1000
MAX_FINDINGS_PER_KIND = 500
MAX_GROUPS = 50_000
# The near-duplicate radius in bits of the 64-bit pHash: its default and its largest value
# (ours). Here rather than in near.py so the command line's parser needs no NumPy.
DEFAULT_RADIUS = 8
MAX_RADIUS = 32


@dataclass(frozen=True)
class Finding:
    """One thing the audit found. `identifiers` names the entries concerned (at most
    EXAMPLES of them; `count` is exact); `query` filters the main table to them."""

    kind: str
    database: str | None
    message: str
    identifiers: tuple[str, ...] = ()
    count: int = 1
    query: ListingQuery | None = None

    @property
    def level(self) -> Level:
        return level_of(self.kind)  # each kind's level is its check's (app.audits.checks)


@dataclass(frozen=True)
class Member:
    """One entry of a duplicate or near-duplicate group."""

    key: int
    database: str
    identifier: str
    label: str
    phash: int | None  # None: not known (a member of an identical-bytes group may lack one)
    has_image_data: bool
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def phash_hex(self) -> str:
        """16 hex digits, or "not known"."""
        return phash_words(self.phash)

    def bits_from(self, other: int | None) -> str:
        """How many bits this member's pHash differs from `other`, in words."""
        if self.phash is None or other is None:
            return "pHash not known"
        return f"{(self.phash ^ other).bit_count()} bits"


@dataclass(frozen=True)
class Group:
    """Entries that are the same image (`kind` "bytes": identical SHA-256; "phash":
    identical pHash) or near each other ("near": a connected component of pairs within
    the radius, within one database; "across": spanning databases). `max_distance` is
    the largest pHash distance between any two members (exact unless `exact_max` is
    False, for huge degenerate groups)."""

    kind: str
    members: tuple[Member, ...]
    max_distance: int
    exact_max: bool = True
    labels_disagree: bool = False
    metadata_disagree: tuple[str, ...] = ()
    size: int = 0  # members before any cap on how many are listed

    @property
    def databases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.database for m in self.members))

    @property
    def likely_mislabel(self) -> bool:
        return self.labels_disagree or bool(self.metadata_disagree)

    def query(self, database: str | None = None) -> ListingQuery:
        """The group's entries of one database (the first by default) for the table."""
        database = database or self.members[0].database
        return ListingQuery(database, identifiers=tuple(m.identifier for m in self.members if m.database == database))


@dataclass(frozen=True)
class KeyProfile:
    key: str
    entries: int
    coverage: float  # share of the database's entries that have the key, 0..1
    distinct_values: int
    top_values: tuple[tuple[str, int], ...]
    key_bytes: int
    max_value_bytes: int
    values_near_limit: int


@dataclass(frozen=True)
class Summary:
    entries: int
    with_image_data: int
    without_image_data: int
    labels_auto: int
    labels_missing: int
    labels_shared: int  # distinct labels held by two or more entries
    shared_labels: tuple[tuple[str, int], ...]  # the most shared, with entry counts
    identifiers_auto: int
    identifiers_awkward: int
    identifiers_near_limit: int
    labels_near_limit: int
    formats: tuple[tuple[str, int], ...]
    width_range: tuple[int, int] | None
    height_range: tuple[int, int] | None
    byte_size_range: tuple[int, int] | None
    entries_with_metadata: int


@dataclass(frozen=True)
class Integrity:
    images_checked: int
    images_skipped: bool
    undecodable: int
    phash_mismatches: int
    sha256_mismatches: int
    degenerate_hashes: int
    image_flag_mismatches: int
    recorded_entry_count: int
    actual_entry_count: int
    meta_count_mismatches: int


@dataclass(frozen=True)
class DatabaseAudit:
    name: str
    summary: Summary
    metadata: tuple[KeyProfile, ...]
    groups: tuple[Group, ...]  # bytes, phash and near groups, each kind in database order
    group_totals: tuple[tuple[str, int], ...]  # kind -> groups found (before MAX_GROUPS)
    integrity: Integrity
    distance_histogram: tuple[int, ...]  # pairs at each distance 0..64
    histogram_sample: int  # entries sampled for the histogram (all when small)
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class StoreChecks:
    backend: str
    schema_version: int | None
    expected_schema_version: int
    integrity_status: str  # "ok", "failed", "not applicable" or "skipped"
    integrity_check: str
    integrity_messages: tuple[str, ...]
    orphans: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class History:
    since: int | None
    until: int | None
    total: int
    by_action: tuple[tuple[str, str, int, int, int], ...]  # action, user, count, first, last
    latest: tuple[JournalEntry, ...]


@dataclass(frozen=True)
class AuditOptions:
    """What the operator chose. `near` is the near-duplicate radius in bits (default 8
    of 64); `across` also groups near-duplicates across the store's databases."""

    near: int = DEFAULT_RADIUS
    check_images: bool = True
    across: bool = True
    full_integrity: bool = True
    since: int | None = None
    until: int | None = None
    history_limit: int = 200
    histogram_sample: int = 2000
    image_workers: int | None = None  # processes for the image check; None: one per core

    def cache_key(self) -> tuple:
        """The options a database's own sections depend on (not the history range)."""
        return (self.near, self.check_images, self.histogram_sample)


@dataclass(frozen=True)
class AuditResult:
    version: str
    store: str  # the store's URL without its password
    scope: str | None  # the database audited, or None for every database
    started_at: int  # ms since epoch, UTC
    finished_at: int
    options: AuditOptions
    databases: tuple[DatabaseAudit, ...]
    across_groups: tuple[Group, ...]
    store_checks: StoreChecks
    history: History
    findings: tuple[Finding, ...]
    change_token: int = 0
    reused: tuple[str, ...] = ()  # databases whose sections came from the cache
    near_plan: str = ""

    def counts(self) -> dict[Level, int]:
        counts = {level: 0 for level in Level}
        for f in self.findings:
            counts[f.level] += 1
        return counts

    def worst(self) -> Level | None:
        return max((f.level for f in self.findings), default=None)

    def failing(self, level: Level | None) -> list[Finding]:
        """Findings at or above `level` (none when level is None: never fail)."""
        if level is None:
            return []
        return [f for f in self.findings if f.level >= level]

    def thumbnail_keys(self, per_group: int = 8, groups: int = 60) -> list[int]:
        """Entries whose images the HTML report shows, in a bounded number."""
        keys: list[int] = []
        all_groups = [g for d in self.databases for g in d.groups] + list(self.across_groups)
        for g in all_groups[:groups]:
            keys.extend(m.key for m in g.members[:per_group] if m.has_image_data)
        return list(dict.fromkeys(keys))
