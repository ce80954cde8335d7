"""Export benchmark: 1,000,000 entries with metadata to every format, beside a raw baseline.

Builds (or reuses) benchmarks/data/export-1m.db with `hashlens sample`'s generator (every
entry has metadata; the first 2,000 have image data), then runs each export in a fresh
child process so that its peak memory is its own, and prints entries/s, the ratio to the
baseline and the peak RSS growth over the child's RSS before the export began.

The baseline is what a careful hand-written exporter would do: Python's `csv` writer over
a raw `sqlite3` cursor of the entries, merged with a second cursor over their metadata
(both in key order), metadata as a JSON column; measured in the same run.

Targets (issue 4): at least 100,000 entries/s for CSV, NDJSON and XML, within 2x of the
baseline, and peak memory growth under 100 MB. Exits 1 when one is missed (or an export
fails).

    .venv/bin/python benchmarks/export.py [--count N] [--formats csv,xml,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE = "Bench"
from bench_common import DATA, reset_peak, sample_store, status_mb  # noqa: E402
# Targets (issue 4) for CSV, NDJSON and XML.
TARGET_RATE = 100_000  # entries/s
TARGET_RATIO = 2.0  # export time / baseline time
TARGET_GROWTH_MB = 100  # peak RSS growth of the child during the export
TARGETED_FORMATS = ("csv", "ndjson", "xml")
FORMATS = ["baseline", "baseline-nometa", "csv", "tsv", "ndjson", "xml", "json", "xlsx", "images"]


def _store_path(count: int) -> Path:
    return DATA / f"export-{count // 1000}k.db"


def baseline(db_path: Path, out: Path, metadata: bool) -> int:
    import sqlite3

    conn = sqlite3.connect(str(db_path))
    db_id = conn.execute("SELECT id FROM hl_database WHERE name = ?", (DATABASE,)).fetchone()[0]
    entries = conn.execute(
        "SELECT id, identifier, label, has_image_data, phash, trained_at FROM hl_entry "
        "WHERE database_id = ? ORDER BY id", (db_id,))
    count = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["position", "identifier", "label", "hasimagedata", "phash", "trained_at", "metadata"])
        if not metadata:
            for row in entries:
                count += 1
                writer.writerow((count, row[1], row[2], row[3], f"{row[4] & 0xFFFFFFFFFFFFFFFF:016x}", row[5]))
            return count
        meta = conn.cursor().execute(
            "SELECT m.entry_id, m.meta_key, m.meta_value FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id "
            "WHERE e.database_id = ? ORDER BY m.entry_id, m.id", (db_id,))
        pending = next(meta, None)
        for row in entries:
            items = {}
            while pending is not None and pending[0] <= row[0]:
                if pending[0] == row[0]:
                    items[pending[1]] = pending[2]
                pending = next(meta, None)
            count += 1
            writer.writerow((count, row[1], row[2], row[3], f"{row[4] & 0xFFFFFFFFFFFFFFFF:016x}", row[5],
                             json.dumps(items, ensure_ascii=False)))
    return count


def run_one(fmt: str, db_path: Path, out_dir: Path) -> dict:
    """One measurement, in this (child) process."""
    from app.domain import ListingQuery
    from app.exports.export import export_listing
    from app.exports.formats import ExportOptions
    from app.store import Store

    store = Store.open("sqlite:///" + str(db_path), read_only=True)
    store.database_id(DATABASE)  # warm the connection before measuring
    reset_peak()
    rss0 = status_mb("VmRSS")
    began = time.perf_counter()
    if fmt.startswith("baseline"):
        target = out_dir / f"{fmt}.csv"
        count = baseline(db_path, target, metadata=fmt == "baseline")
    else:
        target = out_dir / ("images.zip" if fmt == "images" else f"out.{fmt}")
        query = ListingQuery(DATABASE, imagestatus=True, metadata=True)
        count = export_listing(store, query, target, ExportOptions(fmt)).entries
    seconds = time.perf_counter() - began
    size = target.stat().st_size
    return {"format": fmt, "entries": count, "seconds": seconds, "bytes": size,
            "rss_before_mb": rss0, "peak_growth_mb": status_mb("VmHWM") - rss0, "peak_mb": status_mb("VmHWM")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, Path(args.db), Path(args.out))))
        return 0
    db_path = sample_store(_store_path(args.count), args.count, database=DATABASE)
    import sqlite3

    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"store {db_path} ({db_path.stat().st_size / 1e6:,.0f} MB)")
    results = {}
    failed = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        for fmt in args.formats.split(","):
            proc = subprocess.run([sys.executable, __file__, "--one", fmt, "--db", str(db_path), "--out", tmp],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(f"{fmt}: failed\n{proc.stderr}")
                failed.append(fmt)
                continue
            results[fmt] = json.loads(proc.stdout.strip().splitlines()[-1])
            for f in Path(tmp).iterdir():  # keep the disk free between runs
                f.unlink() if f.is_file() else None
            r = results[fmt]
            print(f"  {fmt:<16} done in {r['seconds']:.1f} s", flush=True)
    base = results.get("baseline")
    print()
    print(f"{'format':<16} {'entries':>10} {'seconds':>8} {'entries/s':>11} {'x baseline':>10} {'MB out':>8} "
          f"{'peak +MB':>9}")
    for fmt, r in results.items():
        rate = r["entries"] / r["seconds"]
        ratio = f"{r['seconds'] / base['seconds']:.2f}" if base else "-"
        print(f"{fmt:<16} {r['entries']:>10,} {r['seconds']:>8.2f} {rate:>11,.0f} {ratio:>10} "
              f"{r['bytes'] / 1e6:>8.1f} {r['peak_growth_mb']:>9.1f}")
    print()
    print("x baseline: export time / baseline time (the baseline is the raw csv writer over sqlite3 cursors, "
          "with metadata). peak +MB: peak RSS growth of the child during the export.")
    missed = list(failed)
    for fmt in TARGETED_FORMATS:
        if fmt not in results or not base:
            if fmt in args.formats.split(","):
                print(f"target {fmt}: not measured (no result or no baseline): NOT met")
                missed.append(fmt)
            continue
        r = results[fmt]
        rate = r["entries"] / r["seconds"]
        ok = (rate >= TARGET_RATE and r["seconds"] <= TARGET_RATIO * base["seconds"]
              and r["peak_growth_mb"] < TARGET_GROWTH_MB)
        print(f"target {fmt}: {rate:,.0f}/s (>= {TARGET_RATE:,}), {r['seconds'] / base['seconds']:.2f}x "
              f"(<= {TARGET_RATIO:g}), +{r['peak_growth_mb']:.0f} MB (< {TARGET_GROWTH_MB}): "
              f"{'met' if ok else 'NOT met'}")
        if not ok:
            missed.append(fmt)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
