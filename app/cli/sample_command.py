"""`hashlens sample`: create a sample database of generated entries (demos, tests, benchmarks)."""

from __future__ import annotations

import sys

from app.cli.common import TerminalProgress, positive_int, whole_number
from app.domain import counted
from app.services import sample


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="create a database of generated sample entries",
        description="Create DATABASE (it must not exist) holding COUNT generated entries: the first "
                    "--images are drawn PNG/JPEG images stored with their bytes, the rest 32x32 "
                    "grayscale images hashed in bulk and stored without image data. The same --seed "
                    "gives the same database. A million entries take about a minute.",
    )
    p.add_argument("database", help="the database to create")
    p.add_argument("--count", type=positive_int, required=True, metavar="N", help="how many entries")
    p.add_argument("--seed", type=whole_number(0), default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--images", type=whole_number(0), default=sample.DEFAULT_IMAGES, metavar="N",
                   help=f"entries with drawn, stored images (default {sample.DEFAULT_IMAGES:,})")
    p.set_defaults(handler=run_sample, creates=True)


def run_sample(store, args) -> int:
    progress = TerminalProgress(f"sample {args.database}")
    try:
        report = sample.generate_sample(
            store, args.database, args.count, seed=args.seed, images=args.images, progress=progress,
        )
    except KeyboardInterrupt:
        progress.finish()
        kept = _kept(store, args.database)
        print(f"hashlens: cancelled; '{args.database}' keeps the {counted(kept, 'entry', 'entries')} committed before the cancel.",
              file=sys.stderr)
        return 130
    progress.finish()
    print(report.summary())
    return 0


def _kept(store, database: str) -> int:
    return next((d.entry_count for d in store.list_databases() if d.name == database), 0)
