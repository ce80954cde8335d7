"""What the benchmarks share: where their stores live, building a sample store once, timing."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / "data"  # git-ignored; stores are reused between runs
DATABASE = "bench"


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Reset this process's peak resident set (VmHWM). Linux only; ru_maxrss cannot be
    reset, and a child process starts with its parent's (a store built just before)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def sample_store(path: Path, count: int, *, seed: int = 0, database: str = DATABASE) -> Path:
    """An SQLite store at `path` whose `database` holds `count` sample entries, built once
    with `hashlens sample`'s generator and reused by later runs."""
    from app.domain import ListingQuery
    from app.services.sample import generate_sample
    from app.store import Store

    if path.exists():
        with Store.open("sqlite:///" + str(path)) as store:
            if store.database_exists(database) and store.count(ListingQuery(database)).value == count:
                return path
        raise SystemExit(f"{path} exists but does not hold {count:,} entries in '{database}'; remove it first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {path} with {count:,} sample entries (once; reused by later runs) ...", flush=True)
    with Store.open("sqlite:///" + str(path)) as store:
        report = generate_sample(store, database, count, seed=seed)
        store.sql.exec("PRAGMA wal_checkpoint(TRUNCATE)")
    print("  " + report.summary(), flush=True)
    return path


def median_ms(fn, reps: int, budget_ms: float = 3000) -> float:
    """Median of `reps` runs, fewer for slow calls so each figure takes about `budget_ms`."""
    fn()  # warm: statements compiled, caches filled
    t = time.perf_counter_ns()
    fn()
    once_ms = (time.perf_counter_ns() - t) / 1e6
    times = []
    for _ in range(max(3, min(reps, int(budget_ms / max(once_ms, 1e-3))))):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e6
