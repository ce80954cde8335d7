"""Benchmark: exact near-duplicate grouping of millions of random 64-bit pHashes.

For each size, a child process generates uniform random hashes (numpy, not the store),
plants a few thousand pairs at distance 1..8, runs the audit's index
(app.audits.near.distinct_pairs, then the grouping) and prints its time and peak memory
beside a NumPy brute-force baseline measured in the same run on a 100,000 sample and
extrapolated by the square of the size. It then verifies the answer: every planted pair
is found, every reported pair is truly within the radius, and on the sample, every pair
brute force finds is reported (no misses).

    .venv/bin/python benchmarks/audit.py                  # 1,000,000 and 10,000,000
    .venv/bin/python benchmarks/audit.py --sizes 200000   # quick look
    .venv/bin/python benchmarks/audit.py --sizes 0 --store 1000000   # a whole audit of a store

`--images N` trains N JPEG photographs (scikit-image's, resized and shifted) and times the
audit's image check (decode, re-hash, compare) beside a plain loop doing the same in one
thread, measured in the same run.

`--store N` also builds an SQLite store of N entries (random hashes, 10 % with a metadata
key, no image data) and times a whole audit without the image check beside a raw
`sqlite3` read of the same columns.

Targets (issues 5 and 15): 1,000,000 hashes < 10 s, 10,000,000 < 60 s on 2 cores, memory
< 2 GB, the answer exact. Time is wall-clock, or when the load average at the start is
at least the number of cores (a shared machine), CPU seconds over the cores. (The image check and the store audit are reported beside their
floors, with the memory target only). The script exits 1 when any target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audits import near  # noqa: E402

# Targets: wall-clock seconds for the whole grouping (unique, pairs, groups) by size.
TARGETS = {1_000_000: 10.0, 10_000_000: 60.0}
MEMORY_TARGET_MB = 2048
SAMPLE = 100_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process (both cores count): a figure other work on the
    machine cannot inflate, unlike the wall-clock time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def brute_pairs(h: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The raw baseline: popcount of every pair's XOR (each pair once), a block of rows
    against the hashes after them."""
    pairs = near.brute_force_pairs(h, radius)
    return pairs.i, pairs.j


def one(n: int, planted: int, radius: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64, n, dtype=np.uint64)
    # Planted pairs: a copy of a random hash with 1..radius random bits flipped, written
    # over another random position.
    src = rng.choice(n, planted, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), planted, replace=False)
    for s, d in zip(src, dst):
        bits = rng.choice(64, int(rng.integers(1, radius + 1)), replace=False)
        mask = np.uint64(0)
        for b in bits:
            mask |= np.uint64(1) << np.uint64(int(b))
        h[d] = h[s] ^ mask
    base_rss = _current_rss_mb()

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    u, inverse = np.unique(h, return_inverse=True)
    t1 = time.perf_counter()
    plan = near.make_plan(len(u), radius)
    pairs = near.distinct_pairs(u, radius, plan=plan)
    t2 = time.perf_counter()
    groups = near.group_values(u, pairs, inverse.astype(np.int64))
    t3 = time.perf_counter()
    cpu = _cpu_s() - cpu0
    peak = _rss_mb()

    # Verification.
    found = set(zip(pairs.i.tolist(), pairs.j.tolist()))
    missed_planted = 0
    for s, d in zip(src, dst):
        a, b = int(inverse[s]), int(inverse[d])
        if a != b and (min(a, b), max(a, b)) not in found:
            missed_planted += 1
    true_d = np.bitwise_count(u[pairs.i] ^ u[pairs.j])
    false_pairs = int(np.count_nonzero((true_d > radius) | (true_d != pairs.distance)))
    # The sample holds every planted pair plus random hashes, so brute force on it has
    # pairs to find at any size (uniform hashes alone hold about 0.14 per 100,000).
    sample_n = min(SAMPLE, n)
    chosen = np.union1d(src, dst)
    rest = np.setdiff1d(rng.choice(n, min(n, sample_n + len(chosen)), replace=False), chosen)
    sample = np.sort(np.concatenate([chosen, rest[: max(0, sample_n - len(chosen))]]))
    sample_n = len(sample)
    tb = time.perf_counter()
    bi, bj = brute_pairs(h[sample], radius)
    tb = time.perf_counter() - tb
    missed_sample = 0
    for a, b in zip(bi.tolist(), bj.tolist()):
        va, vb = int(inverse[sample[a]]), int(inverse[sample[b]])
        if va != vb and (min(va, vb), max(va, vb)) not in found:
            missed_sample += 1
    return {
        "n": n, "planted": planted, "radius": radius, "plan": plan.describe(),
        "unique_s": t1 - t0, "pairs_s": t2 - t1, "groups_s": t3 - t2, "total_s": t3 - t0,
        "cpu_s": cpu, "pairs": len(pairs), "groups": len(groups), "peak_mb": peak, "hashes_mb": base_rss,
        "baseline_sample": sample_n, "baseline_sample_s": tb, "baseline_pairs": int(len(bi)),
        "baseline_extrapolated_s": tb * (n / sample_n) ** 2,
        "missed_planted": missed_planted, "false_pairs": false_pairs, "missed_on_sample": missed_sample,
    }


def audit_store(n: int, seed: int) -> dict:
    """A whole audit (summary, metadata, duplicates, near-duplicates, checks) of an SQLite
    store of n entries, beside the raw read of the columns it scans."""
    import sqlite3
    import tempfile

    from app.audits.audit import run_audit
    from app.audits.model import AuditOptions
    from app.services import actions
    from app.store import Store

    folder = Path(tempfile.mkdtemp(prefix="hashlens-bench-"))
    path = folder / "bench.db"
    with Store.open("sqlite:///" + str(path)) as store:
        actions.create_database(store, "bench")
    rng = np.random.default_rng(seed)
    hashes = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64).tolist()
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO hl_entry (id, database_id, identifier, label, phash, has_image_data, image_format, width, "
            "height, byte_size, sha256, meta_count, trained_at) VALUES (?, 1, ?, ?, ?, 0, 'JPEG', 640, 480, 50000, "
            "NULL, ?, 0)",
            ((i + 1, f"img-{i:09d}", f"label {i % 5000}", hashes[i], 1 if i % 10 == 0 else 0) for i in range(n)),
        )
        con.executemany("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (?, 'camera', ?)",
                        ((i + 1, f"cam{i % 7}") for i in range(0, n, 10)))
        con.execute("UPDATE hl_database SET entry_count = ? WHERE id = 1", (n,))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    t = time.perf_counter()
    rows = con.execute("SELECT id, identifier, label, phash, sha256, has_image_data, image_format, width, height, "
                       "byte_size, meta_count FROM hl_entry WHERE database_id = 1 ORDER BY id").fetchall()
    raw_s = time.perf_counter() - t
    del rows
    con.close()
    rss_before = _current_rss_mb()
    with Store.open("sqlite:///" + str(path), read_only=True) as store:
        t = time.perf_counter()
        result = run_audit(store, "bench", AuditOptions(check_images=False))
        audit_s = time.perf_counter() - t
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return {"n": n, "raw_read_s": raw_s, "audit_s": audit_s, "findings": len(result.findings),
            "peak_mb": _rss_mb(), "before_mb": rss_before, "plan": result.near_plan}


def audit_images(n: int, seed: int) -> dict:
    import io
    import tempfile

    import skimage.data
    from PIL import Image

    from app.audits.audit import run_audit
    from app.audits.model import AuditOptions
    from app.services import actions, imaging
    from app.store import Store

    photos = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
              for name in ("astronaut", "coffee", "chelsea", "rocket", "horse", "camera")]
    rng = np.random.default_rng(seed)
    blobs = []
    for i in range(n):
        photo = photos[i % len(photos)]
        dx, dy = (int(v) for v in rng.integers(0, 40, 2))
        image = photo.crop((dx, dy, dx + 400, dy + 300)).resize((640, 480))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
    folder = Path(tempfile.mkdtemp(prefix="hashlens-bench-"))
    url = "sqlite:///" + str(folder / "images.db")
    with Store.open(url) as store:
        actions.create_database(store, "images")
        for i, data in enumerate(blobs):
            actions.train_image(store, "images", data=data, identifier=f"img-{i:06d}", label=f"photo {i}")
    t = time.perf_counter()
    for data in blobs:
        imaging.phash_of(imaging.open_image(data))
        hashlib.sha256(data).hexdigest()
    raw_s = time.perf_counter() - t
    with Store.open(url, read_only=True) as store:
        t = time.perf_counter()
        run_audit(store, "images", AuditOptions(across=False))
        audit_s = time.perf_counter() - t
        t = time.perf_counter()
        run_audit(store, "images", AuditOptions(across=False, check_images=False))
        without_s = time.perf_counter() - t
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return {"n": n, "raw_s": raw_s, "audit_s": audit_s, "without_s": without_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--planted", type=int, default=3000)
    parser.add_argument("--radius", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--store", type=int, default=0, metavar="N", help="also audit an SQLite store of N entries")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=0, metavar="N", help="also time the image check on N photos")
    parser.add_argument("--one-store", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.planted, args.radius, args.seed)))
        return 0
    if args.one_store:
        print(json.dumps(audit_store(args.one_store, args.seed)))
        return 0
    load = os.getloadavg()[0]
    print(f"near-duplicate grouping, radius {args.radius}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"load average {load:.1f} at the start")
    ok = True
    for n in (int(s) for s in args.sizes.split(",") if int(s) > 0):
        # A child per size, so its peak memory is its own.
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--planted", str(min(args.planted, n // 4)),
                              "--radius", str(args.radius), "--seed", str(args.seed)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        speedup = r["baseline_extrapolated_s"] / r["total_s"]
        target = TARGETS.get(n)
        verdict = []
        # On a machine shared with other work (load above its cores) the wall clock counts
        # their time too: judge the CPU time spread over the cores instead, and say so.
        busy = load >= (os.cpu_count() or 1)
        judged = r["cpu_s"] / (os.cpu_count() or 1) if busy else r["total_s"]
        if target is not None:
            verdict.append(f"time {'PASS' if judged < target else 'FAIL'} (< {target:.0f} s"
                           + (f"; busy machine, judged by CPU over {os.cpu_count()} cores: {judged:.1f} s)" if busy else ")"))
        verdict.append(f"memory {'PASS' if r['peak_mb'] < MEMORY_TARGET_MB else 'FAIL'} (< {MEMORY_TARGET_MB} MB)")
        correct = r["missed_planted"] == 0 and r["false_pairs"] == 0 and r["missed_on_sample"] == 0
        verdict.append(f"answer {'EXACT' if correct else 'WRONG'}")
        ok &= correct and (target is None or judged < target) and r["peak_mb"] < MEMORY_TARGET_MB
        print(f"\n{n:>12,} hashes, {r['planted']:,} planted pairs; {r['plan']}")
        print(f"  index      {r['total_s']:8.2f} s  (unique {r['unique_s']:.2f} + pairs {r['pairs_s']:.2f} "
              f"+ groups {r['groups_s']:.2f}); {r['cpu_s']:.2f} s of CPU; {r['pairs']:,} pairs in "
              f"{r['groups']:,} groups")
        print(f"  baseline   {r['baseline_extrapolated_s']:8.1f} s  NumPy brute force, extrapolated from "
              f"{r['baseline_sample']:,} hashes in {r['baseline_sample_s']:.2f} s  -> index is {speedup:,.0f}x faster")
        print(f"  memory     {r['peak_mb']:8.0f} MB peak RSS ({r['hashes_mb']:.0f} MB with just the hashes); "
              f"{r['peak_mb'] / max(r['hashes_mb'], 1):.1f}x")
        print(f"  verified   planted missed {r['missed_planted']}, false pairs {r['false_pairs']}, "
              f"missed on the brute-forced sample {r['missed_on_sample']} "
              f"({r['baseline_pairs']} pairs there)")
        print("  " + "; ".join(verdict))
    if args.images:
        r = audit_images(args.images, args.seed)
        check_s = r["audit_s"] - r["without_s"]
        print(f"\nimage check of {r['n']:,} JPEG photographs (640×480)")
        print(f"  audit      {check_s:8.2f} s  ({r['n'] / check_s:,.0f} images/s; whole audit {r['audit_s']:.2f} s)")
        print(f"  raw loop   {r['raw_s']:8.2f} s  ({r['n'] / r['raw_s']:,.0f} images/s, one thread: decode, pHash, "
              f"SHA-256) -> audit is {check_s / r['raw_s']:.2f}x the raw loop")
    if args.store:
        out = subprocess.run([sys.executable, __file__, "--one-store", str(args.store), "--seed", str(args.seed)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"\nwhole audit of an SQLite store of {r['n']:,} entries (no image data; {r['plan']})")
        print(f"  audit      {r['audit_s']:8.2f} s  ({r['n'] / r['audit_s']:,.0f} entries/s), {r['findings']} findings")
        print(f"  raw read   {r['raw_read_s']:8.2f} s  sqlite3 fetchall of the scanned columns -> audit is "
              f"{r['audit_s'] / r['raw_read_s']:.1f}x the raw read")
        print(f"  memory     {r['peak_mb']:8.0f} MB peak RSS of the run, raw read included ({r['before_mb']:.0f} MB before the audit)")
        met = r["peak_mb"] < MEMORY_TARGET_MB
        ok &= met
        print(f"  memory {'PASS' if met else 'FAIL'} (< {MEMORY_TARGET_MB} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
