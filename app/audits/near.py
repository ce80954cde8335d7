"""Exact near-duplicate search over 64-bit pHashes (multi-index hashing) and its groups.

`near_pairs` finds every pair of hashes within a Hamming radius, with no false positive
and no miss; `near_groups` joins them into connected components. Both are pure functions
of their input arrays: the same hashes give the same answer, in the same order, every run.

The index (ours; docs/audits.md explains the choice): split the 64 bits into m bands and
give each band a search radius s_i with sum(s_i + 1) >= r + 1. By the pigeonhole principle
two hashes within distance r then differ in at most s_i bits on some band i, so searching
every band for neighbours within s_i finds every pair; each candidate is then verified
with a popcount of the full 64 bits. For r = 8 and millions of hashes the plan is three
bands of 22/21/21 bits searched at radius 2: for each band key, its neighbours within two
bits (counting sort into a dense table of every key), compared in compiled, vectorised code
(near_kernel.py, numba) on all cores. A pair within radius on several bands is reported by
the first only. The search runs on distinct hash values only, so a million copies of a blank
image's hash cost nothing and never explode into a million squared pairs.

Why not a plain pigeonhole on 9 blocks (two hashes within 8 bits agree exactly on one of
9 blocks of about 7 bits): at 10 million hashes a 7-bit block puts 78,000 hashes in each
bucket, about 4e11 candidates per block. Bucket occupancy must stay near one (bands of 21+
bits), so with three bands each must be searched at radius 2.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from app.audits.model import DEFAULT_RADIUS, MAX_RADIUS
from app.domain import Failure, HashlensError, param_invalid

# Bands up to this width get a dense bucket table (4 bytes per possible value); wider
# bands (only chosen for small radii) are probed by binary search instead.
DENSE_BITS = 24
# Each band's search is split into this many chunks of source buckets: work for both
# cores, and a cancel check and a progress step between chunks.
CHUNKS_PER_BAND = 64
# A group's largest internal distance is computed exactly over its distinct hashes up to
# this many; beyond it (a degenerate store) it is a lower bound from a sample (ours).
EXACT_DIAMETER_LIMIT = 20_000

# Relative costs for choosing a plan (measured here: one probe of a band's bucket table,
# one verified candidate, one brute-force pair). Only their ratios matter.
_COST_PROBE = 6.0
_COST_CANDIDATE = 4.0
_COST_BRUTE = 1.0

Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


def popcount64(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (np.bitwise_count where numpy has it, numpy >= 2.0)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    v = values.astype(np.uint64, copy=True)  # pragma: no cover - numpy 1.x fallback
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((v * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)


def as_hashes(values) -> np.ndarray:
    """A 1-D uint64 array from uint64/int64 arrays (two's complement) or Python ints."""
    if isinstance(values, (list, tuple)):
        try:
            return np.array([int(v) & 0xFFFFFFFFFFFFFFFF for v in values], dtype=np.uint64)
        except (TypeError, ValueError):
            raise param_invalid("hashes", "expected whole numbers (64-bit hashes).") from None
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise param_invalid("hashes", f"expected a 1-D array of 64-bit hashes, got shape {arr.shape}.")
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype == np.int64:
        return arr.view(np.uint64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if arr.dtype == object or np.issubdtype(arr.dtype, np.integer):
        return np.array([int(v) & 0xFFFFFFFFFFFFFFFF for v in arr.tolist()], dtype=np.uint64)
    raise param_invalid("hashes", f"expected 64-bit integer hashes, got {arr.dtype}.")


def check_radius(radius: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or not 0 <= radius <= MAX_RADIUS:
        raise param_invalid("near", f"'{radius}' is not a whole number of bits from 0 to {MAX_RADIUS}.")
    return int(radius)


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    shift: int
    width: int
    radius: int


@dataclass(frozen=True)
class Plan:
    """How to search: bands with their radii, or brute force (empty bands)."""

    bands: tuple[Band, ...]
    cost: float

    @property
    def brute(self) -> bool:
        return not self.bands

    def describe(self) -> str:
        if self.brute:
            return "brute force over all pairs"
        parts = ", ".join(f"{b.width} bits at radius {b.radius}" for b in self.bands)
        return f"multi-index hashing, {len(self.bands)} bands ({parts})"


def _volume(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


def _widths(m: int) -> list[int]:
    base, extra = divmod(64, m)
    return [base + 1] * extra + [base] * (m - extra)


def make_plan(n: int, radius: int) -> Plan:
    """The cheapest exact plan for n distinct hashes by a simple cost model; brute force
    wins for small n, three bands at radius 2 for millions of hashes at r = 8."""
    best = Plan((), n * (n - 1) / 2 * _COST_BRUTE)
    for m in range(1, min(radius + 1, 64) + 1):
        widths = _widths(m)
        need = radius + 1 - m  # sum of the band radii
        base, extra = divmod(need, m)
        radii = [base + 1] * extra + [base] * (m - extra)
        cost = 0.0
        for w, s in zip(widths, radii):
            probes = n * _volume(w, s) / 2
            lookup = _COST_PROBE * (1 if w <= DENSE_BITS else 4)
            cost += probes * (lookup + n / 2.0**w * _COST_CANDIDATE)
        if cost < best.cost:
            bands, shift = [], 0
            for w, s in zip(widths, radii):
                bands.append(Band(shift, w, s))
                shift += w
            best = Plan(tuple(bands), cost)
    return best


# -- pairs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pairs:
    """Index pairs i < j with their distance, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.i)


def _cancel_check(cancelled: Cancelled | None) -> None:
    if cancelled is not None and cancelled():
        raise HashlensError(Failure.CANCELLED, "The near-duplicate search was cancelled; nothing was changed.")


def _brute_values(u: np.ndarray, radius: int, cancelled, tick) -> tuple[np.ndarray, np.ndarray]:
    n = len(u)
    block = max(1, min(n, (1 << 22) // max(n, 1)))
    parts_a, parts_b = [], []
    for start in range(0, n, block):
        _cancel_check(cancelled)
        rows = u[start:start + block]
        d = popcount64(rows[:, None] ^ u[None, :])
        a, b = np.nonzero(d <= radius)
        a += start
        keep = a < b
        parts_a.append(a[keep])
        parts_b.append(b[keep])
        tick(len(rows))
    return np.concatenate(parts_a), np.concatenate(parts_b)


def _flip_masks(width: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Every non-zero mask of at most `radius` bits within `width`, with its top bit."""
    masks, tops = [], []
    for p in range(width):
        for k in range(0, min(radius, p + 1)):
            for rest in combinations(range(p), k):
                m = 1 << p
                for bit in rest:
                    m |= 1 << bit
                masks.append(m)
                tops.append(1 << p)
    return np.array(masks, dtype=np.uint64), np.array(tops, dtype=np.uint64)


def _band_bits(band: Band) -> int:
    return ((1 << band.width) - 1) << band.shift


def _search_band(u, band: Band, earlier: tuple[Band, ...], radius: int, cancelled, tick, pool):
    """Value-index pairs within `radius` whose bits in `band` are within its radius and
    that no earlier band reported (see near_kernel)."""
    from app.audits import near_kernel

    n = len(u)
    keys = (u >> np.uint64(band.shift)) & np.uint64((1 << band.width) - 1)
    masks, tops = _flip_masks(band.width, band.radius)
    prev_masks = np.array([_band_bits(b) for b in earlier], dtype=np.uint64)
    prev_radii = np.array([b.radius for b in earlier], dtype=np.uint64)
    if band.width <= DENSE_BITS:
        hs, order, table = near_kernel.bucket_sort(u, keys.astype(np.int64), band.width)
        del keys
        # _flip_masks lists masks by their top bit: group[p] is where bit p's masks start.
        group = np.searchsorted(tops, np.uint64(1) << np.arange(band.width + 1, dtype=np.uint64))
        masks, group = masks.astype(np.int64), group.astype(np.int64)
        units = 1 << band.width

        def kernel(lo, hi, out_a, out_b):
            return near_kernel.dense_band_pairs(table, hs, masks, group, lo, hi, radius,
                                                prev_masks, prev_radii, out_a, out_b)

        def hashes_in(lo, hi):
            return int(table[hi] - table[lo])
    else:
        order = np.argsort(keys, kind="stable")
        ks = keys[order]
        del keys
        hs = u[order]
        cuts = np.flatnonzero(ks[1:] != ks[:-1]) + 1
        run_lo = np.concatenate(([0], cuts, [n])).astype(np.int64)
        run_key = ks[run_lo[:-1]]
        del ks, cuts
        units = len(run_key)

        def kernel(lo, hi, out_a, out_b):
            return near_kernel.sparse_band_pairs(run_key, run_lo, hs, masks, tops, lo, hi, radius,
                                                 prev_masks, prev_radii, out_a, out_b)

        def hashes_in(lo, hi):
            return int(run_lo[hi] - run_lo[lo])

    step = max(1, -(-units // CHUNKS_PER_BAND))

    def search(lo):
        _cancel_check(cancelled)
        hi = min(lo + step, units)
        capacity = 1 << 12
        while True:
            out_a = np.empty(capacity, dtype=np.int64)
            out_b = np.empty(capacity, dtype=np.int64)
            found = kernel(lo, hi, out_a, out_b)
            if found <= capacity:
                break
            capacity = found  # rare (dense clusters of near hashes): search again with room
        tick(hashes_in(lo, hi))
        return order[out_a[:found]], order[out_b[:found]]

    starts = range(0, units, step)
    results = list(map(search, starts)) if pool is None else list(pool.map(search, starts))
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def distinct_pairs(
    u: np.ndarray,
    radius: int = DEFAULT_RADIUS,
    *,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    workers: int | None = None,
    plan: Plan | None = None,
) -> Pairs:
    """All pairs of *distinct* sorted hashes `u` within `radius` (value indices a < b)."""
    radius = check_radius(radius)
    n = len(u)
    if n < 2 or radius == 0:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty, np.zeros(0, np.uint8))
    plan = plan or make_plan(n, radius)
    # Progress counts hashes searched: n for brute force, n per band otherwise.
    total = n * max(1, len(plan.bands))
    done = [0]
    lock = threading.Lock()

    def tick(k: int) -> None:
        with lock:
            done[0] += k
            if progress is not None:
                progress(min(done[0], total), total)

    if progress is not None:
        progress(0, total)
    if plan.brute:
        a, b = _brute_values(u, radius, cancelled, tick)
    else:
        workers = workers or os.cpu_count() or 1
        pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        parts = []
        try:
            for k, band in enumerate(plan.bands):
                parts.append(_search_band(u, band, plan.bands[:k], radius, cancelled, tick, pool))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        # Each pair is reported by one band only (the first whose radius it meets).
        a = np.concatenate([p[0] for p in parts])
        b = np.concatenate([p[1] for p in parts])
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    order = np.lexsort((hi, lo))
    a, b = lo[order], hi[order]
    d = popcount64(u[a] ^ u[b])
    if progress is not None:
        progress(total, total)
    return Pairs(a, b, d)


def near_pairs(
    hashes,
    radius: int = DEFAULT_RADIUS,
    *,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    workers: int | None = None,
) -> Pairs:
    """Every pair of positions (i < j) whose hashes are within `radius` bits, exactly,
    sorted by (i, j). Identical hashes are pairs at distance 0: the output grows with the
    square of the number of copies, so callers that only need groups use `near_groups`."""
    h = as_hashes(hashes)
    radius = check_radius(radius)
    u, inverse = np.unique(h, return_inverse=True)
    vp = distinct_pairs(u, radius, progress=progress, cancelled=cancelled, workers=workers)
    # Positions of each distinct value, as runs of one array.
    by_value = np.argsort(inverse, kind="stable")
    first = np.zeros(len(u) + 1, dtype=np.int64)
    np.cumsum(np.bincount(inverse, minlength=len(u)), out=first[1:])
    parts_i, parts_j, parts_d = [], [], []
    # Copies of one value pair with each other at distance 0.
    for v in np.flatnonzero(np.diff(first) > 1):
        members = by_value[first[v]:first[v + 1]]
        ii, jj = np.triu_indices(len(members), 1)
        parts_i.append(members[ii])
        parts_j.append(members[jj])
        parts_d.append(np.zeros(len(ii), np.uint8))
    for a, b, d in zip(vp.i.tolist(), vp.j.tolist(), vp.distance.tolist()):
        ma = by_value[first[a]:first[a + 1]]
        mb = by_value[first[b]:first[b + 1]]
        ii = np.repeat(ma, len(mb))
        jj = np.tile(mb, len(ma))
        parts_i.append(ii)
        parts_j.append(jj)
        parts_d.append(np.full(len(ii), d, np.uint8))
    if not parts_i:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty, np.zeros(0, np.uint8))
    i = np.concatenate(parts_i).astype(np.int64)
    j = np.concatenate(parts_j).astype(np.int64)
    d = np.concatenate(parts_d)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo))
    return Pairs(lo[order], hi[order], d[order])


def brute_force_pairs(hashes, radius: int = DEFAULT_RADIUS) -> Pairs:
    """The reference answer by comparing every pair (tests and benchmarks): a block of
    rows against the hashes after them, so each pair is computed once."""
    h = as_hashes(hashes)
    n = len(h)
    parts_i, parts_j, parts_d = [], [], []
    block = max(1, (1 << 21) // max(n, 1))
    for start in range(0, n, block):
        d = popcount64(h[start:start + block, None] ^ h[None, start:])
        hit = d <= radius
        if not hit.any():
            continue
        a, b = np.nonzero(hit)
        keep = b > a
        a, b = a[keep], b[keep]
        parts_i.append(a + start)
        parts_j.append(b + start)
        parts_d.append(d[a, b])
    if not parts_i:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty, np.zeros(0, np.uint8))
    i, j, d = (np.concatenate(p) for p in (parts_i, parts_j, parts_d))
    order = np.lexsort((j, i))
    return Pairs(i[order].astype(np.int64), j[order].astype(np.int64), d[order].astype(np.uint8))


# -- groups --------------------------------------------------------------------------------------


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of n nodes given edges (a, b): the smallest
    node index in its component (union-find by hooking roots to the smaller root, with
    full path compression each round)."""
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while a.size:
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            break
        lo = np.minimum(ra[differ], rb[differ])
        hi = np.maximum(ra[differ], rb[differ])
        np.minimum.at(parent, hi, lo)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        a, b = a[differ], b[differ]
    return parent


@dataclass(frozen=True)
class Group:
    """Positions (ascending, i.e. database order when the input is) of one connected
    component of two or more hashes, and its largest internal distance."""

    members: tuple[int, ...]
    max_distance: int
    exact_max: bool = True


def diameter(values: np.ndarray, *, limit: int = EXACT_DIAMETER_LIMIT) -> tuple[int, bool]:
    """Largest pairwise distance among distinct hashes; exact up to `limit` values."""
    values = np.unique(values)
    n = len(values)
    if n < 2:
        return 0, True
    exact = n <= limit
    if not exact:
        # Deterministic sample: evenly spaced over the sorted values.
        values = values[np.linspace(0, n - 1, limit).astype(np.int64)]
    best = 0
    block = max(1, (1 << 22) // len(values))
    for start in range(0, len(values), block):
        d = popcount64(values[start:start + block, None] ^ values[None, :])
        best = max(best, int(d.max()))
        if best == 64:
            break
    return best, exact


def group_values(u: np.ndarray, pairs: Pairs, inverse: np.ndarray, keep_value: np.ndarray | None = None) -> list[Group]:
    """Groups of positions from distinct-value pairs. `inverse[pos]` is the value index of
    each position; `keep_value` (bool per value) restricts the graph to those values."""
    a, b = pairs.i, pairs.j
    if keep_value is not None:
        k = keep_value[a] & keep_value[b]
        a, b = a[k], b[k]
    # Only values on an edge, or held by two or more positions, can be in a group: the
    # rest (nearly all of a big store) never reach the sort below.
    involved = np.bincount(inverse, minlength=len(u)) > 1
    involved[a] = True
    involved[b] = True
    if keep_value is not None:
        involved &= keep_value
    label = components(len(u), a, b)
    positions = np.flatnonzero(involved[inverse])
    pos_label = label[inverse[positions]]
    order = np.argsort(pos_label, kind="stable")  # positions ascending within a label
    runs = positions[order]
    cuts = np.flatnonzero(np.diff(pos_label[order])) + 1
    groups = []
    for run in np.split(runs, cuts):
        if len(run) < 2:
            continue
        dist, exact = diameter(u[inverse[run]])
        groups.append(Group(tuple(int(p) for p in run), dist, exact))
    groups.sort(key=lambda g: g.members[0])
    return groups


def near_groups(
    hashes,
    radius: int = DEFAULT_RADIUS,
    *,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    workers: int | None = None,
) -> list[Group]:
    """Connected components of the graph 'within `radius` bits' over the positions of
    `hashes`: every group has two or more members listed in ascending position, and
    groups are ordered by their first member. Identical hashes always share a group."""
    h = as_hashes(hashes)
    u, inverse = np.unique(h, return_inverse=True)
    pairs = distinct_pairs(u, radius, progress=progress, cancelled=cancelled, workers=workers)
    return group_values(u, pairs, inverse.astype(np.int64))
