"""Hashlens at scale (issue 6): 1 and 10 million entries on SQLite, 1 million on PostgreSQL.

For each store, every figure is printed beside the same rows fetched with the raw driver
(`sqlite3` / `psycopg`) in the same run. The raw baseline is the best plain query for
those rows: a keyset seek on the primary key with the first key already known for pages,
one `IN` (or `= ANY`) for identifier lists, and the cheaper of two plain forms for the
metadata filter. Figures are medians of repeated runs, in milliseconds.

    .venv/bin/python benchmarks/scale.py                      # SQLite 1M and 10M, PostgreSQL 1M
    .venv/bin/python benchmarks/scale.py --sizes 1000000 --pg 0
    .venv/bin/python benchmarks/scale.py --pg 1000000 --keep  # keep database hashlens_bench

SQLite stores are built once under benchmarks/data/ (git-ignored; 10M takes several
minutes and about 4 GB) and reused. The PostgreSQL database `hashlens_bench` on the local
server is created for the run and dropped at the end unless --keep.

Targets: a page at any depth under 5 ms on SQLite and under 20 ms on PostgreSQL, and
within 4x of raw; browsing memory under 300 MB at 10 million entries.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Hashlens modules are imported in main() and in the service browser only, so the raw
# browser's memory figure holds nothing of ours.
# The columns a listing reads (as app.store.listing.ENTRY_COLUMNS).
_ENTRY_COLUMNS = (
    "e.id, e.identifier, e.label, e.has_image_data, e.phash, e.image_format, "
    "e.width, e.height, e.byte_size, e.meta_count, e.trained_at, e.declared_image_data"
)

from bench_common import DATA, DATABASE, median_ms  # noqa: E402
PAGE = 50
BOUND = 10_000
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_BENCH = "hashlens_bench"
PAGE_TARGET_MS = {"sqlite": 5.0, "postgresql": 20.0}
RATIO_TARGET = 4.0
MEMORY_TARGET_MB = 300
LABEL_WORD = "harbour"  # one label word in 32 (see app/services/sample.py)
META = ("camera", "Pixel 7")  # about one entry in 24



# -- the stores -----------------------------------------------------------------------------


def sqlite_store(count: int) -> str:
    path = DATA / f"sample-{count}.db"
    url = "sqlite:///" + str(path)
    if path.exists():
        with Store.open(url, read_only=True) as store:
            if store.database_exists(DATABASE) and store.count(ListingQuery(DATABASE)).value == count:
                return url
        raise SystemExit(f"{path} exists but does not hold {count:,} entries in '{DATABASE}'; remove it first.")
    DATA.mkdir(parents=True, exist_ok=True)
    build(url, count)
    return url


def pg_store(count: int, keep: bool) -> str:
    import psycopg

    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG_BENCH}"
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_BENCH,)).fetchone()
        if exists and keep:
            try:
                with Store.open(url, read_only=True, create=False) as store:
                    if store.database_exists(DATABASE) and store.count(ListingQuery(DATABASE)).value == count:
                        return url
            except Exception:
                pass
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_BENCH}"')
    build(url, count)
    with psycopg.connect(dbname=PG_BENCH, autocommit=True, **PG) as conn:
        conn.execute("VACUUM ANALYZE")  # as autovacuum would soon after a load
    return url


def drop_pg() -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH}" WITH (FORCE)')


def build(url: str, count: int) -> None:
    print(f"building {count:,} entries at {url} ...", flush=True)
    with Store.open(url) as store:
        report = generate_sample(store, DATABASE, count, seed=0)
    print(f"  {report.summary()} ({report.entries / report.seconds:,.0f} entries/s)", flush=True)


# -- raw drivers ----------------------------------------------------------------------------


class RawSqlite:
    backend = "sqlite"

    def __init__(self, url: str):
        self.path = Path(url.removeprefix("sqlite:///"))
        self.conn = self.connect()
        self.db_id = self.one("SELECT id FROM hl_database WHERE name = ?", (DATABASE,))[0]

    def connect(self):
        return sqlite3.connect(self.path.as_uri() + "?mode=ro", uri=True)

    def all(self, sql, params=()):
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql, params=()):
        return self.conn.execute(sql, params).fetchone()

    def in_list(self, column: str, values: list) -> tuple[str, list]:
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def like(self) -> str:
        return "e.label LIKE ? ESCAPE '!'"


class RawPostgres(RawSqlite):
    backend = "postgresql"

    def __init__(self, url: str):
        self.url = url
        self.conn = self.connect()
        self.db_id = self.one("SELECT id FROM hl_database WHERE name = ?", (DATABASE,))[0]

    def connect(self):
        import psycopg

        return psycopg.connect(dbname=PG_BENCH, autocommit=True, **PG)

    def all(self, sql, params=()):
        return self.conn.execute(raw_sql(sql, self.backend), params).fetchall()

    def one(self, sql, params=()):
        return self.conn.execute(raw_sql(sql, self.backend), params).fetchone()

    def in_list(self, column: str, values: list) -> tuple[str, list]:
        return f"{column} = ANY(?)", [list(values)]

    def like(self) -> str:
        return "e.label ILIKE ? ESCAPE '!'"


def raw_driver(url: str):
    return RawPostgres(url) if url.startswith("postgresql") else RawSqlite(url)


# -- the figures ----------------------------------------------------------------------------


def measure(url: str, count: int, reps: int, browse_pages: int) -> list[dict]:
    store = Store.open(url, read_only=True)
    raw = raw_driver(url)
    backend = raw.backend
    db_id = raw.db_id
    results = []

    def row(name, service_fn, raw_fn, *, kind="page", reps_here=reps, check=None):
        if check is not None:
            check()
        s = median_ms(service_fn, reps_here)
        r = median_ms(raw_fn, reps_here)
        results.append({"case": name, "service_ms": s, "raw_ms": r, "kind": kind})
        print(f"  {name:<46}{s:>10.3f}{r:>10.3f}{s / r:>7.1f}x   {verdict(results[-1], backend)}", flush=True)

    print(f"\n{backend} store, {count:,} entries: median ms (service, raw driver, ratio)")

    # Open to first rows: a fresh connection, the schema check, the first page.
    def service_open():
        with Store.open(url, read_only=True) as fresh:
            actions.list_image_hashes(fresh, ListingQuery(DATABASE, start=1, maxresults=PAGE))

    def raw_open():
        fresh = raw.connect()
        q = fresh.execute(raw_sql("SELECT id FROM hl_database WHERE name = ?", backend), (DATABASE,)).fetchone()[0]
        fresh.execute(raw_sql(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? ORDER BY e.id LIMIT {PAGE}",
                              backend), (q,)).fetchall()
        fresh.close()

    row("open to first rows", service_open, raw_open, kind="open", reps_here=max(5, reps // 10))

    for where, start in (("start 1", 1), ("middle", count // 2), ("last", count - PAGE + 1)):
        for extras in (False, True):
            query = ListingQuery(DATABASE, start=start, maxresults=PAGE, imagestatus=extras, metadata=extras)
            first_key = actions.list_image_hashes(store, query).rows[0].key

            def raw_page(k=first_key, m=extras):
                rows = raw.all(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND e.id >= ? "
                               f"ORDER BY e.id LIMIT {PAGE}", (db_id, k))
                if m:
                    raw_metadata(raw, [r[0] for r in rows])
                return rows

            same_rows(store, query, raw_page)
            row(f"page at {where}" + (" +metadata" if extras else ""),
                lambda q=query: actions.list_image_hashes(store, q), raw_page)

    rng = random.Random(7)
    sampled = [r[0] for r in raw.all(
        "SELECT identifier FROM hl_entry WHERE database_id = ? AND id % 89 = 0", (db_id,))]
    for n in (100, 10_000):
        ids = rng.sample(sampled, n)
        query = ListingQuery(DATABASE, identifiers=tuple(ids))

        def raw_ids(ids=ids):
            clause, params = raw.in_list("e.identifier", ids)
            # Sorted here: ORDER BY e.id makes SQLite walk the database in key order.
            return sorted(raw.all(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND {clause}",
                                  (db_id, *params)))

        same_rows(store, query, raw_ids)
        row(f"identifier filter, {n:,} ids", lambda q=query: actions.list_image_hashes(store, q), raw_ids,
            kind="filter", reps_here=reps if n <= 100 else max(5, reps // 10))

    label = ListingQuery(DATABASE, filters=(Filter(FilterOp.LABEL_CONTAINS, LABEL_WORD),), start=1, maxresults=PAGE)

    def raw_label():
        return raw.all(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND {raw.like()} "
                       f"ORDER BY e.id LIMIT {PAGE}", (db_id, f"%{LABEL_WORD}%"))

    same_rows(store, label, raw_label)
    row(f"label contains '{LABEL_WORD}', first page", lambda: actions.list_image_hashes(store, label), raw_label,
        kind="filter")

    meta = ListingQuery(DATABASE, filters=(Filter(FilterOp.META_EQUALS, META[1], key=META[0]),), start=1, maxresults=PAGE)
    raw_meta_forms = (
        "e.id IN (SELECT m.entry_id FROM hl_metadata m WHERE m.meta_key = ? AND m.meta_value = ?)",
        "EXISTS (SELECT 1 FROM hl_metadata m WHERE m.entry_id = e.id AND m.meta_key = ? AND m.meta_value = ?)",
    )
    best = min(raw_meta_forms, key=lambda form: median_ms(
        lambda: raw.all(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND {form} "
                        f"ORDER BY e.id LIMIT {PAGE}", (db_id, *META)), 5))

    def raw_meta():
        return raw.all(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND {best} "
                       f"ORDER BY e.id LIMIT {PAGE}", (db_id, *META))

    same_rows(store, meta, raw_meta)
    row(f"metadata {META[0]}={META[1]}, first page", lambda: actions.list_image_hashes(store, meta), raw_meta,
        kind="filter")

    slow = max(3, reps // 50)
    label_all = label.unwindowed()
    row(f"bounded count ({BOUND:,}), label filter", lambda: store.count(label_all, bound=BOUND),
        lambda: raw.one(f"SELECT COUNT(*) FROM (SELECT 1 FROM hl_entry e WHERE e.database_id = ? AND {raw.like()} "
                        f"LIMIT {BOUND + 1}) AS b", (db_id, f"%{LABEL_WORD}%")), kind="count", reps_here=slow)
    row("exact count, label filter", lambda: store.count(label_all),
        lambda: raw.one(f"SELECT COUNT(*) FROM hl_entry e WHERE e.database_id = ? AND {raw.like()}",
                        (db_id, f"%{LABEL_WORD}%")), kind="count", reps_here=slow)
    row("exact count, whole database", lambda: store.count(ListingQuery(DATABASE)),
        lambda: raw.one("SELECT COUNT(*) FROM hl_entry WHERE database_id = ?", (db_id,)), kind="count",
        reps_here=slow)

    service_mem, raw_mem = browse_memory(url, count, browse_pages)
    for what, key in (("peak RSS", "peak_mb"), ("growth while browsing", "growth_mb")):
        results.append({"case": f"memory, {browse_pages:,} pages: {what} (MB)", "service_ms": service_mem[key],
                        "raw_ms": raw_mem[key], "kind": "memory" if key == "peak_mb" else "growth"})
        print(f"  {results[-1]['case']:<46}{service_mem[key]:>10.1f}{raw_mem[key]:>10.1f}"
              f"{'':>8}   {verdict(results[-1], backend, count)}")
    store.close()
    return results


def raw_sql(sql: str, backend: str) -> str:
    """psycopg wants %s placeholders, and a literal % doubled."""
    return sql.replace("%", "%%").replace("?", "%s") if backend == "postgresql" else sql


def raw_metadata(raw, keys):
    clause, params = raw.in_list("entry_id", keys)
    return raw.all(f"SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE {clause} ORDER BY entry_id, id", params)


def same_rows(store, query, raw_fn) -> None:
    """The service and the raw query must return the same entries, or the ratio means nothing."""
    ours = [r.key for r in actions.list_image_hashes(store, query).rows]
    theirs = [r[0] for r in raw_fn()]
    if ours != theirs:
        raise SystemExit(f"service and raw disagree for {query.describe()}")


def verdict(result: dict, backend: str, count: int = 0) -> str:
    kind = result["kind"]
    if kind == "memory":
        if count >= 10_000_000:
            return "ok" if result["service_ms"] < MEMORY_TARGET_MB else f"MISSED (< {MEMORY_TARGET_MB} MB)"
        return ""
    if kind != "page":
        return ""
    target = PAGE_TARGET_MS[backend]
    ratio = result["service_ms"] / result["raw_ms"]
    ok = result["service_ms"] < target and ratio <= RATIO_TARGET
    return "ok" if ok else f"MISSED (< {target} ms, <= {RATIO_TARGET}x)"


# -- browsing memory ------------------------------------------------------------------------


def browse_memory(url: str, count: int, pages: int) -> tuple[float, float]:
    """Peak RSS of a child process that opens the store and browses: pages in a row from
    the start, jumps to the middle and the end, then random positions, with metadata."""
    figures = []
    for mode in ("service", "raw"):
        out = subprocess.run([sys.executable, __file__, "--browse", mode, url, str(count), str(pages)],
                             capture_output=True, text=True, check=True)
        figures.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return figures[0], figures[1]


def _peak_kb() -> int:
    """This process's peak resident memory in KB. VmHWM rather than ru_maxrss: on Linux
    ru_maxrss keeps the parent's high-water mark across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def browse(mode: str, url: str, count: int, pages: int) -> None:
    rng = random.Random(3)
    starts = [1 + i * PAGE for i in range(pages // 2)]
    starts += [count // 2, count - PAGE + 1]
    starts += [rng.randrange(1, count - PAGE) for _ in range(pages - len(starts))]
    if mode == "service":
        _import_hashlens()
        store = Store.open(url, read_only=True)
        actions.list_image_hashes(store, ListingQuery(DATABASE, start=1, maxresults=PAGE))
        settled_kb = _peak_kb()
        for start in starts:
            actions.list_image_hashes(store, ListingQuery(DATABASE, start=start, maxresults=PAGE, imagestatus=True,
                                                          metadata=True))
        store.close()
    else:
        raw = raw_driver(url)
        settled_kb = _peak_kb()
        # The raw reader knows each page's first key from a position index it builds
        # itself: the cheapest it could be (ids are dense in a fresh sample).
        first = raw.one("SELECT MIN(id) FROM hl_entry WHERE database_id = ?", (raw.db_id,))[0]
        for start in starts:
            rows = raw.all(f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND e.id >= ? "
                           f"ORDER BY e.id LIMIT {PAGE}", (raw.db_id, first + start - 1))
            raw_metadata(raw, [r[0] for r in rows])
    peak_kb = _peak_kb()
    print(json.dumps({"peak_mb": peak_kb / 1024, "growth_mb": (peak_kb - settled_kb) / 1024}))


# -- main -----------------------------------------------------------------------------------


# -- bulk append ----------------------------------------------------------------------------


def bulk_append(n: int) -> list[dict]:
    """`bulk.append_entries` into a fresh SQLite store beside raw sqlite3 executemany of the
    same rows into the same schema, one transaction each. Target: 100,000 entries/s
    without image data."""
    import dataclasses

    from app.services.sample import sample_entries
    from app.store.bulk import append_entries
    from app.store.store import to_signed64

    with_meta = list(sample_entries(n, seed=5, images=0))
    without = [dataclasses.replace(e, metadata=()) for e in with_meta]
    results = []
    print(f"\nbulk append of {n:,} entries without image data into a fresh SQLite store (entries/s)")
    for name, entries in (("no metadata", without), ("~2 metadata items each", with_meta)):
        rates = []
        for mode in ("service", "raw"):
            path = DATA / f"bulk-{mode}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            with Store.open("sqlite:///" + str(path)) as store:
                actions.create_database(store, "b")
                if mode == "service":
                    t = time.perf_counter()
                    append_entries(store, "b", entries, batch=20_000, commit_every=n)
                    rates.append(n / (time.perf_counter() - t))
            if mode == "raw":
                conn = sqlite3.connect(path, isolation_level=None)
                for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"):
                    conn.execute(f"PRAGMA {pragma}")
                t = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO hl_entry (id, database_id, identifier, label, phash, has_image_data, image_format, "
                    "width, height, byte_size, sha256, meta_count, trained_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(k, 1, e.identifier, e.label, to_signed64(e.phash), False, None, None, None, None, None,
                      len(e.metadata), e.trained_at) for k, e in enumerate(entries, 1)])
                conn.executemany("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (?,?,?)",
                                 [(k, mk, mv) for k, e in enumerate(entries, 1) for mk, mv in e.metadata])
                conn.execute("UPDATE hl_database SET entry_count = ? WHERE id = 1", (n,))
                conn.execute("COMMIT")
                rates.append(n / (time.perf_counter() - t))
                conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        results.append({"case": f"bulk append, {name}", "service": rates[0], "raw": rates[1], "kind": "bulk"})
        verdict_text = ("ok" if rates[0] >= 100_000 else "MISSED (>= 100,000/s)") if entries is without else ""
        print(f"  {name:<46}{rates[0]:>10,.0f}{rates[1]:>10,.0f}{rates[1] / rates[0]:>7.1f}x   {verdict_text}")
    return results


def _import_hashlens() -> None:
    global Filter, FilterOp, ListingQuery, actions, generate_sample, Store
    from app.domain import Filter, FilterOp, ListingQuery
    from app.services import actions
    from app.services.sample import generate_sample
    from app.store import Store
    from app.store import store as store_module

    assert store_module.ENTRY_COLUMNS == _ENTRY_COLUMNS, "the store reads other columns now; update _ENTRY_COLUMNS"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--browse":
        browse(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return 0
    _import_hashlens()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="SQLite store sizes, comma-separated ('' for none)")
    parser.add_argument("--pg", type=int, default=1_000_000, help="PostgreSQL store size (0 to skip)")
    parser.add_argument("--keep", action="store_true", help=f"keep (and reuse) the PostgreSQL database {PG_BENCH}")
    parser.add_argument("--reps", type=int, default=200, help="repetitions per page figure (median reported)")
    parser.add_argument("--browse-pages", type=int, default=2000, help="pages in the browsing-memory session")
    parser.add_argument("--bulk", type=int, default=200_000, help="entries in the bulk-append figure (0 to skip)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)

    runs = [("sqlite", int(s)) for s in args.sizes.split(",") if s.strip()]
    if args.pg:
        runs.append(("postgresql", args.pg))
    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}")
    everything = {}
    misses = 0
    if args.bulk:
        DATA.mkdir(parents=True, exist_ok=True)
        bulk = bulk_append(args.bulk)
        everything["bulk"] = bulk
        misses += not bulk[0]["service"] >= 100_000
    try:
        for backend, count in runs:
            url = sqlite_store(count) if backend == "sqlite" else pg_store(count, args.keep)
            results = measure(url, count, args.reps, args.browse_pages)
            everything[f"{backend}-{count}"] = results
            misses += sum(verdict(r, backend, count).startswith("MISSED") for r in results)
    finally:
        if args.pg and not args.keep:
            drop_pg()
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2))
    print(f"\n{misses} figure(s) missed a target.")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
