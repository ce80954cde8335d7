"""Counts benchmark: every count of the filter panel beside the best raw query of the same run.

For each condition of the filter panel (a key present and absent, for a common and a rare
key; key = value; has image data and image data removed; label equals), the exact count and
the bounded count (10,000+) through `Store.count`, beside the fastest of the raw queries a
careful person would write for the same number with the same indexes (a join from the
metadata index, EXISTS, IN, the whole count minus the opposite, ...), each the median of
repeated runs; both must give the same number. On SQLite (`sample-<count>.db`, shared with
`scale.py`) and PostgreSQL (a database of its own, `hashlens_counts`, built once with
`--pg N` and kept for later runs; `--pg 0` skips it).

Target (issue 15, item 4): every count within 3x of its best raw query. Exits 1 on a miss.

    .venv/bin/python benchmarks/counts.py [--count N] [--pg N] [--drop-pg]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import DATA, DATABASE, median_ms, sample_store  # noqa: E402

TARGET_RATIO = 3.0
BOUND = 10_000
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_DB = "hashlens_counts"
COMMON_KEY, RARE_KEY = "camera", "case"  # about one entry in 4, and one in 100 (app/services/sample.py)
META = ("camera", "Pixel 7")


class Raw:
    def __init__(self, url: str):
        if url.startswith("sqlite"):
            self.backend = "sqlite"
            path = Path(url.removeprefix("sqlite:///"))
            self.conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
        else:
            import psycopg

            self.backend = "postgresql"
            self.conn = psycopg.connect(dbname=PG_DB, autocommit=True, **PG)
        self.db_id = self.one("SELECT id FROM hl_database WHERE name = ?", (DATABASE,))

    def one(self, sql: str, params=()):
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        return self.conn.execute(sql, params).fetchone()[0]


def raw_forms(raw: Raw, label: str) -> dict[str, tuple[object, list[tuple[str, tuple]]]]:
    """Each count's filter and the raw queries that answer it exactly (a query is SQL and
    its parameters; several statements are summed with their signs)."""
    from app.domain import Filter, FilterOp

    d = raw.db_id
    joined = "SELECT COUNT(*) FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id WHERE m.meta_key = ? AND e.database_id = ?"
    exists = ("SELECT COUNT(*) FROM hl_entry e WHERE e.database_id = ? AND EXISTS (SELECT 1 FROM hl_metadata m "
              "WHERE m.entry_id = e.id AND m.meta_key = ?)")
    inside = ("SELECT COUNT(*) FROM hl_entry e WHERE e.database_id = ? AND e.id IN (SELECT m.entry_id FROM hl_metadata m "
              "WHERE m.meta_key = ?)")
    whole = "SELECT entry_count FROM hl_database WHERE id = ?"
    forms = {}
    for key in (COMMON_KEY, RARE_KEY):
        forms[f"has metadata '{key}'"] = (Filter(FilterOp.META_PRESENT, key=key), [
            [(joined, (key, d))], [(exists, (d, key))], [(inside, (d, key))]])
        forms[f"lacks metadata '{key}'"] = (Filter(FilterOp.META_ABSENT, key=key), [
            [(exists.replace("AND EXISTS", "AND NOT EXISTS"), (d, key))],
            [(whole, (d,)), ("-" + joined, (key, d))]])
    forms[f"metadata {META[0]} = {META[1]!r}"] = (Filter(FilterOp.META_EQUALS, META[1], key=META[0]), [
        [(joined + " AND m.meta_value = ?", (META[0], d, META[1]))],
        [(inside.replace("m.meta_key = ?)", "m.meta_key = ? AND m.meta_value = ?)"), (d, *META))]])
    # The forms the partial index on entries without image data is declared with.
    truth, false = (("e.has_image_data = 1", "e.has_image_data = 0") if raw.backend == "sqlite"
                    else ("e.has_image_data", "NOT e.has_image_data"))
    plain = "SELECT COUNT(*) FROM hl_entry e WHERE e.database_id = ? AND "
    forms["has image data"] = (Filter(FilterOp.HAS_IMAGE_DATA, True), [
        [(plain + truth, (d,))], [(whole, (d,)), ("-" + plain + false, (d,))]])
    forms["image data removed"] = (Filter(FilterOp.HAS_IMAGE_DATA, False), [[(plain + false, (d,))]])
    forms[f"label is {label!r}"] = (Filter(FilterOp.LABEL_EQUALS, label), [[(plain + "e.label = ?", (d, label))]])
    return forms


def _bounded(sql: str) -> str:
    """A count that stops past BOUND: the same rows, limited."""
    if not sql.startswith("SELECT COUNT(*) FROM "):
        return sql
    return f"SELECT COUNT(*) FROM (SELECT 1 AS one FROM {sql.removeprefix('SELECT COUNT(*) FROM ')} LIMIT {BOUND + 1}) AS b"


def _run(raw: Raw, statements: list[tuple[str, tuple]], bounded: bool) -> int:
    total = 0
    for sql, params in statements:
        sign = -1 if sql.startswith("-") else 1
        sql = sql.lstrip("-")
        total += sign * raw.one(_bounded(sql) if bounded and len(statements) == 1 else sql, params)
    return min(total, BOUND + 1) if bounded else total


def measure(url: str, reps: int) -> int:
    from app.domain import ListingQuery
    from app.store import Store

    store = Store.open(url, read_only=True)
    raw = Raw(url)
    label = raw.conn.execute(
        ("SELECT label FROM hl_entry WHERE database_id = ? ORDER BY id LIMIT 1 OFFSET 5000").replace(
            "?", "%s" if raw.backend == "postgresql" else "?"), (raw.db_id,)).fetchone()[0]
    total = store.count(ListingQuery(DATABASE)).value
    print(f"\n{raw.backend}, {total:,} entries: median ms of Store.count beside the best raw query")
    print(f"  {'count':<52}{'hashlens':>10}{'raw':>9}{'ratio':>7}")
    misses = 0
    for name, (f, candidates) in raw_forms(raw, label).items():
        query = ListingQuery(DATABASE, filters=(f,))
        for bounded in (False, True):
            ours = store.count(query, bound=BOUND if bounded else None)
            expected = ours.value if not bounded else (ours.value if ours.exact else BOUND + 1)
            times = []
            for statements in candidates:
                got = _run(raw, statements, bounded)
                if got != expected:
                    raise SystemExit(f"{name}: Hashlens counts {expected:,}, a raw query {got:,}")
                times.append(median_ms(lambda s=statements: _run(raw, s, bounded), reps))
            best = min(times)
            mine = median_ms(lambda: store.count(query, bound=BOUND if bounded else None), reps)
            ratio = mine / best
            ok = ratio <= TARGET_RATIO
            misses += not ok
            what = f"{name}, {'bounded' if bounded else 'exact'} ({ours.value:,}{'' if ours.exact else '+'})"
            print(f"  {what:<52}{mine:>10.3f}{best:>9.3f}{ratio:>6.1f}x   {'ok' if ok else 'MISSED'} "
                  f"(<= {TARGET_RATIO:g}x)", flush=True)
    store.close()
    return misses


def pg_store(count: int) -> str:
    import psycopg

    from app.domain import ListingQuery
    from app.services.sample import generate_sample
    from app.store import Store

    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG_DB}"
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone():
            try:
                with Store.open(url, read_only=True, create=False) as store:
                    if store.database_exists(DATABASE) and store.count(ListingQuery(DATABASE)).value == count:
                        return url
            except Exception:
                pass
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_DB}"')
    print(f"building {count:,} entries at {url} (once; kept for later runs) ...", flush=True)
    with Store.open(url) as store:
        print("  " + generate_sample(store, DATABASE, count, seed=0).summary(), flush=True)
    with psycopg.connect(dbname=PG_DB, autocommit=True, **PG) as conn:
        conn.execute("VACUUM ANALYZE")  # as autovacuum would soon after a load
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--pg", type=int, default=1_000_000, help="entries of the PostgreSQL store (0: skip)")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--drop-pg", action="store_true", help="drop the PostgreSQL database at the end")
    args = parser.parse_args()
    print(f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    misses = 0
    if args.count:
        path = sample_store(DATA / f"sample-{args.count}.db", args.count)
        misses += measure("sqlite:///" + str(path), args.reps)
    if args.pg:
        misses += measure(pg_store(args.pg), args.reps)
        if args.drop_pg:
            import psycopg

            with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
    print(f"\n{misses} target(s) missed" if misses else "\nevery target met")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
