"""ListImageHashes pages on a million-entry SQLite store, beside raw sqlite3 (issue 2, item 9).

Builds (or reuses) benchmarks/data/sample-1000000.db with `hashlens sample`'s generator, then
times `actions.list_image_hashes` for pages of 50 at the start, the middle and the end,
with and without imagestatus/metadata, and for an identifier filter of 100 identifiers.
Each figure is the median of many repetitions, printed beside the same rows fetched with
plain `sqlite3` in the same run, where the baseline is the best raw query: a keyset seek on
the primary key with the first key already known (`WHERE database_id=? AND id>=? ORDER BY
id LIMIT 50`), plus one metadata IN query when metadata is asked for.

    .venv/bin/python benchmarks/listing.py [--count 1000000] [--reps 300] [--profile]

Targets: under 5 ms per page at any depth, and within 4x of raw.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import ListingQuery  # noqa: E402
from app.services import actions  # noqa: E402
from app.store import Store  # noqa: E402
from app.store.listing import ENTRY_COLUMNS as _ENTRY_COLUMNS  # noqa: E402

from bench_common import DATA, DATABASE, median_ms, sample_store  # noqa: E402
PAGE = 50
TARGET_MS = 5.0
TARGET_RATIO = 4.0


class Raw:
    """The best plain sqlite3 queries for the same rows."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
        self.db_id = self.conn.execute("SELECT id FROM hl_database WHERE name = ?", (DATABASE,)).fetchone()[0]

    def page(self, first_key: int, metadata: bool):
        rows = self.conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND e.id >= ? ORDER BY e.id LIMIT {PAGE}",
            (self.db_id, first_key),
        ).fetchall()
        if metadata:
            self._metadata([r[0] for r in rows])
        return rows

    def identifiers(self, ids: list[str], metadata: bool):
        # Sorted here, not by ORDER BY: with ORDER BY e.id SQLite walks the whole database
        # in key order instead of seeking each identifier (200 ms against 0.3 ms).
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM hl_entry e WHERE e.database_id = ? AND e.identifier IN ({marks})",
            (self.db_id, *ids),
        ).fetchall()
        rows.sort()
        if metadata:
            self._metadata([r[0] for r in rows])
        return rows

    def _metadata(self, keys):
        marks = ",".join("?" * len(keys))
        return self.conn.execute(
            f"SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE entry_id IN ({marks}) ORDER BY entry_id, id",
            keys,
        ).fetchall()



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=300, help="repetitions per figure (median reported)")
    parser.add_argument("--store", type=Path, help="store file (default benchmarks/data/sample-<count>.db, shared with scale.py)")
    parser.add_argument("--profile", action="store_true", help="profile the slowest service case")
    args = parser.parse_args(argv)
    path = args.store or DATA / f"sample-{args.count}.db"
    sample_store(path, args.count)

    store = Store.open("sqlite:///" + str(path), read_only=True)
    raw = Raw(path)
    n = args.count
    rng = random.Random(1)
    everyone = [r[0] for r in raw.conn.execute(
        "SELECT identifier FROM hl_entry WHERE database_id = ? AND id % 97 = 0", (raw.db_id,))]
    hundred = rng.sample(everyone, 100)

    cases = []
    for where, start in (("start 1", 1), ("middle", n // 2), ("end", n - PAGE + 1)):
        for extras in (False, True):
            cases.append((f"page at {where}" + (" +imagestatus+metadata" if extras else ""),
                          ListingQuery(DATABASE, start=start, maxresults=PAGE, imagestatus=extras, metadata=extras),
                          "page"))
    for extras in (False, True):
        cases.append(("identifier filter, 100 ids" + (" +metadata" if extras else ""),
                      ListingQuery(DATABASE, identifiers=tuple(hundred), imagestatus=extras, metadata=extras),
                      "ids"))

    print(f"\nListImageHashes on {n:,} entries (SQLite {sqlite3.sqlite_version}), median of up to {args.reps} runs, ms")
    print(f"{'case':<44}{'service':>10}{'raw':>10}{'ratio':>8}   verdict")
    worst = None
    failures = 0
    for name, query, kind in cases:
        page = actions.list_image_hashes(store, query)
        if kind == "page":
            first_key = page.rows[0].key
            raw_rows = raw.page(first_key, query.metadata)
            raw_fn = lambda k=first_key, m=query.metadata: raw.page(k, m)  # noqa: E731
        else:
            raw_rows = raw.identifiers(list(query.identifiers), query.metadata)
            raw_fn = lambda q=query: raw.identifiers(list(q.identifiers), q.metadata)  # noqa: E731
        # The same rows, or the comparison means nothing.
        assert [r.key for r in page.rows] == [r[0] for r in raw_rows], name
        service_ms = median_ms(lambda q=query: actions.list_image_hashes(store, q), args.reps)
        raw_ms = median_ms(raw_fn, args.reps)
        ratio = service_ms / raw_ms
        ok = service_ms < TARGET_MS and ratio <= TARGET_RATIO
        failures += not ok
        print(f"{name:<44}{service_ms:>10.3f}{raw_ms:>10.3f}{ratio:>7.1f}x   "
              + ("ok" if ok else f"MISSED (< {TARGET_MS} ms and <= {TARGET_RATIO}x)"))
        if worst is None or ratio > worst[0]:
            worst = (ratio, name, query)
    print(f"\n{failures} of {len(cases)} cases missed a target.")
    if args.profile or failures:
        ratio, name, query = worst
        print(f"\nprofile of the worst ratio ({name}, {ratio:.1f}x), by own time:")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(max(3, min(2000, int(5000 / max(median_ms(lambda: actions.list_image_hashes(store, query), 3), 0.01))))):
            actions.list_image_hashes(store, query)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:4000])
    store.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
