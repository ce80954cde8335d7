"""Compiled inner loop of the near-duplicate band search (numba; imported by near.py on first use).

NumPy cannot express "for each pair of buckets, compare every member with every member"
without materialising each candidate in several temporary arrays; at 10 million hashes
that is about 1.6e10 candidates and three minutes. Compiled, a candidate is an XOR, a
popcount instruction and a compare, and the search drops under a minute on two cores.
The kernels release the GIL so near.py runs chunks of a band on worker threads.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


# Spare elements at the end of a dense band's sorted hashes (see dense_band_pairs).
PAD = 8


@intrinsic
def _popcount(typingctx, value):
    """The CPU's population count (LLVM's ctpop) of a uint64."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return types.uint64(types.uint64), codegen


@njit(nogil=True, cache=True, inline="always")
def _found_before(x, prev_masks, prev_radii):
    """Whether an earlier band already reported this pair (its bits there were within
    that band's radius): each pair is then reported by one band only."""
    for k in range(prev_masks.shape[0]):
        if _popcount(x & prev_masks[k]) <= prev_radii[k]:
            return True
    return False


@njit(nogil=True, cache=True)
def _emit(out_a, out_b, count, a, b):
    if count < out_a.shape[0]:
        out_a[count] = a
        out_b[count] = b
    return count + 1


@njit(nogil=True, cache=True)
def _compare(hs, s_lo, s_hi, t_lo, t_hi, r, prev_masks, prev_radii, out_a, out_b, count):
    for a in range(s_lo, s_hi):
        ha = hs[a]
        for b in range(t_lo, t_hi):
            x = ha ^ hs[b]
            if _popcount(x) <= r and not _found_before(x, prev_masks, prev_radii):
                count = _emit(out_a, out_b, count, a, b)
    return count


@njit(nogil=True, cache=True)
def _within(hs, lo, hi, r, prev_masks, prev_radii, out_a, out_b, count):
    for a in range(lo, hi - 1):
        ha = hs[a]
        for b in range(a + 1, hi):
            x = ha ^ hs[b]
            if _popcount(x) <= r and not _found_before(x, prev_masks, prev_radii):
                count = _emit(out_a, out_b, count, a, b)
    return count


@njit(nogil=True, cache=True)
def bucket_sort(values, keys, width):
    """Values ordered by key (stable, followed by PAD zeros), their original positions, and the table of where
    each key's run starts: table[k]..table[k + 1] (a counting sort; int64 keys < 2**width)."""
    size = 1 << width
    table = np.zeros(size + 1, dtype=np.int64)
    for i in range(keys.shape[0]):
        table[keys[i] + 1] += 1
    for k in range(size):
        table[k + 1] += table[k]
    cursor = table[:-1].copy()
    ordered = np.zeros(values.shape[0] + PAD, dtype=values.dtype)
    order = np.empty(keys.shape[0], dtype=np.int64)
    for i in range(keys.shape[0]):
        k = keys[i]
        p = cursor[k]
        ordered[p] = values[i]
        order[p] = i
        cursor[k] = p + 1
    return ordered, order, table


@njit(nogil=True, cache=True)
def dense_band_pairs(table, hs, masks, group, first_key, last_key, radius,
                     prev_masks, prev_radii, out_a, out_b):
    """Pairs of positions (a, b) in `hs` (hashes sorted by band key; key k's hashes are
    hs[table[k]:table[k + 1]], and hs has PAD spare elements at its end) within `radius`
    bits, for source keys first_key..last_key-1.

    `masks` are the non-zero masks grouped by their top bit p (masks[group[p]:group[p + 1]]);
    a source key uses the masks whose top bit it has clear, so every unordered pair of
    buckets is visited once. The target buckets of a key are copied into one buffer and
    each source hash is compared with the whole buffer in a loop the compiler vectorises
    (AVX-512 has a popcount of eight hashes at once); only a source with a hit is walked
    again bucket by bucket to name its pairs. Keys, masks and the table are int64 (numba
    mixes int64 with uint64 in floating point).
    Returns how many pairs were found; only the first len(out_a) are written, so a caller
    whose buffers were too small calls again with bigger ones.
    """
    count = 0
    r = np.uint64(radius)
    width = group.shape[0] - 1
    buf = np.empty(1 << 12, dtype=np.uint64)
    for k in range(first_key, last_key):
        lo, hi = table[k], table[k + 1]
        if lo == hi:
            continue
        count = _within(hs, lo, hi, r, prev_masks, prev_radii, out_a, out_b, count)
        fill = 0
        for p in range(width):
            if (k >> p) & 1:
                continue
            for m in range(group[p], group[p + 1]):
                target = k ^ masks[m]
                t_lo = table[target]
                size = table[target + 1] - t_lo
                if fill + size + PAD > buf.shape[0]:
                    bigger = np.empty(2 * (fill + size + PAD), dtype=np.uint64)
                    bigger[:fill] = buf[:fill]
                    buf = bigger
                # A fixed-length copy first: no branch on the (small, varying) bucket size.
                for j in range(PAD):
                    buf[fill + j] = hs[t_lo + j]
                for j in range(PAD, size):
                    buf[fill + j] = hs[t_lo + j]
                fill += size
        for a in range(lo, hi):
            ha = hs[a]
            hits = 0
            for j in range(fill):
                hits += _popcount(ha ^ buf[j]) <= r
            if hits == 0:
                continue
            for p in range(width):
                if (k >> p) & 1:
                    continue
                for m in range(group[p], group[p + 1]):
                    target = k ^ masks[m]
                    count = _compare(hs, a, a + 1, table[target], table[target + 1], r,
                                     prev_masks, prev_radii, out_a, out_b, count)
    return count


@njit(nogil=True, cache=True)
def sparse_band_pairs(run_key, run_lo, hs, masks, tops, first_run, last_run, radius,
                      prev_masks, prev_radii, out_a, out_b):
    """As dense_band_pairs for bands too wide for a table of every key: runs of equal
    keys (`run_key[r]`, hashes hs[run_lo[r]:run_lo[r + 1]]), targets by binary search."""
    count = 0
    r = np.uint64(radius)
    n_runs = run_key.shape[0]
    for run in range(first_run, last_run):
        count = _within(hs, run_lo[run], run_lo[run + 1], r, prev_masks, prev_radii, out_a, out_b, count)
    for m in range(masks.shape[0]):
        mask = masks[m]
        top = tops[m]
        for run in range(first_run, last_run):
            key = run_key[run]
            if key & top:
                continue
            target = key ^ mask
            i = np.searchsorted(run_key, target)
            if i >= n_runs or run_key[i] != target:
                continue
            count = _compare(hs, run_lo[run], run_lo[run + 1], run_lo[i], run_lo[i + 1], r,
                             prev_masks, prev_radii, out_a, out_b, count)
    return count
