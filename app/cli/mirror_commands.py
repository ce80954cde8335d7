"""`hashlens pull`, `refresh`, `mirrors` and `diff`: mirror Media Server databases and see what changed."""

from __future__ import annotations

import codecs
import sys

from app.cli.common import TerminalProgress, add_connection_options, media_server_client, positive_int
from app.exports.atomic import AtomicFile
from app.mediaserver.pull import DEFAULT_PAGE_SIZE
from app.mediaserver import diff_report, mirror
from app.diff import DiffCounts, compare
from app.domain import HashlensError
from app.sources import open_source
from app.store import mirrors

# Exit status of `diff` when the two sides differ (0 when equal), so scripts can tell.
DIFFERENT = 3


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "pull", help="copy a Media Server database into a local mirror (a new snapshot)",
        description="Page through ListImageHashes (imagestatus and metadata) on the Media Server at URL "
                    "(http(s)://host:port, port 14000 when omitted) and store DATABASE as the next snapshot "
                    "of the mirror NAME (default: DATABASE). The snapshot is stored only when the whole "
                    "database has been read: a failed or cancelled pull keeps the previous one.")
    p.add_argument("url", help="the Media Server's ACI address, e.g. http://mediaserver:14000")
    p.add_argument("database", help="the image-hash database on the server")
    p.add_argument("--into", metavar="NAME", help="the local mirror's name (default: DATABASE)")
    _client_options(p)
    p.set_defaults(handler=run_pull, creates=True)  # a first pull may make the local store

    r = subparsers.add_parser(
        "refresh", help="pull mirrors again from the Media Server each came from (a new snapshot each)",
        description="Pull each mirror NAME (default: every mirror in the store) again from the server and "
                    "database it was pulled from, as its next snapshot; then 'hashlens diff NAME' shows what "
                    "changed. Exit status 0 when every pull succeeded, 1 when one failed (the others are "
                    "still pulled; a failed one keeps its previous snapshot).")
    r.add_argument("names", nargs="*", metavar="NAME", help="a mirror (default: every mirror)")
    _client_options(r)
    r.set_defaults(handler=run_refresh)

    m = subparsers.add_parser("mirrors", help="list the mirrors of Media Server databases and their snapshots",
                              description="Each mirror with its source and latest snapshot; with NAME, "
                                          "every snapshot of that mirror.")
    m.add_argument("name", nargs="?", help="a mirror")
    m.add_argument("--remove", action="store_true",
                   help="remove the mirror NAME from this store: its database, entries and snapshots "
                        "(the Media Server is not touched)")
    m.set_defaults(handler=run_mirrors)

    d = subparsers.add_parser(
        "diff", help="what changed between two snapshots of a mirror, or between two databases",
        description="With NAME alone: the two latest snapshots of the mirror NAME (or --from/--to, each a "
                    "snapshot number or a date such as 2026-11-30 or 2026-11-30T14:00 UTC). With NAME "
                    "and OTHER: two databases or mirrors as they are now, OTHER in --other-store if given. "
                    f"Exit status 0 when nothing differs, {DIFFERENT} when something does.")
    d.add_argument("name", help="a mirror, or a database")
    d.add_argument("other", nargs="?", help="a second database or mirror to compare NAME with")
    d.add_argument("--from", dest="from_", metavar="SNAPSHOT", help="the older snapshot (number or date)")
    d.add_argument("--to", metavar="SNAPSHOT", help="the newer snapshot (number or date; default the latest)")
    d.add_argument("--other-store", metavar="URL", help="the store holding OTHER (default: this store)")
    d.add_argument("--format", choices=diff_report.FORMATS, default="text", help="text (default), json, csv, html")
    d.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of standard output")
    d.set_defaults(handler=run_diff)


def _client_options(p) -> None:
    p.add_argument("--page-size", type=positive_int, default=DEFAULT_PAGE_SIZE, metavar="N",
                   help=f"entries per request (default {DEFAULT_PAGE_SIZE:,})")
    add_connection_options(p, retries_help="tries again after a network fault, with backoff (default {default})")


def run_refresh(store, args) -> int:
    known = {name: source for name, source, _ in mirrors.list_mirrors(store)}
    names = args.names or sorted(known)
    if not names:
        print("No mirrors to refresh. Make one with: hashlens pull URL DATABASE")
        return 0
    for name in names:
        if name not in known:
            print(f"hashlens: '{name}' is not a mirror; mirrors here: {', '.join(sorted(known)) or 'none'}.",
                  file=sys.stderr)
            return 2
    failed = 0
    for name in names:
        source = known[name]
        progress = TerminalProgress(f"refresh {name}")
        try:
            report = mirror.pull_mirror(store, media_server_client(source.url, args), source.database, into=name,
                                        page_size=args.page_size, progress=lambda p: progress(p.entries, None))
        except KeyboardInterrupt:
            progress.finish()
            print(f"hashlens: refresh cancelled; nothing more was stored and '{name}' is as it was.",
                  file=sys.stderr)
            return 130
        except HashlensError as exc:
            progress.finish()
            failed += 1
            print(f"hashlens: '{name}' was not refreshed (its previous snapshot is kept): {exc.description}",
                  file=sys.stderr)
            continue
        progress.finish()
        print(report.text())
    return 1 if failed else 0


def run_pull(store, args) -> int:
    client = media_server_client(args.url, args)
    name = args.into or args.database
    progress = TerminalProgress(f"pull {name}")
    try:
        report = mirror.pull_mirror(store, client, args.database, into=args.into, page_size=args.page_size,
                                    progress=lambda p: progress(p.entries, None))
    except KeyboardInterrupt:
        progress.finish()
        print(f"hashlens: pull cancelled; nothing was stored and '{name}' is as it was.", file=sys.stderr)
        return 130
    progress.finish()
    print(report.text())
    return 0


def run_mirrors(store, args) -> int:
    if args.remove:
        if not args.name:
            print("hashlens: --remove needs NAME, the mirror to remove.", file=sys.stderr)
            return 2
        entries, snapshots = mirrors.remove_mirror(store, args.name)
        print(f"Removed the mirror '{args.name}': {entries:,} entries and {snapshots:,} snapshot(s). "
              "The Media Server is untouched.")
        return 0
    if args.name:
        found = mirrors.snapshots(store, args.name)
        if not found:
            print(f"hashlens: '{args.name}' is not a mirror.", file=sys.stderr)
            return 1
        for snap in found:
            print(f"{snap.number:>4}  {mirror.iso_time(snap.taken_at)}  {snap.entry_count:>12,}  {snap.source.describe()}")
        return 0
    listed = mirrors.list_mirrors(store)
    if not listed:
        print("No mirrors. Make one with: hashlens pull URL DATABASE")
        return 0
    for name, source, latest in listed:
        as_of = (f"snapshot {latest.number}, {latest.entry_count:,} entries, as of {mirror.iso_time(latest.taken_at)}"
                 if latest else "no snapshot")
        print(f"{name}  ({source.describe()}): {as_of}")
    return 0


def run_diff(store, args) -> int:
    other_store = None
    try:
        if args.other is None:
            if args.other_store:
                print("hashlens: --other-store needs OTHER, the database to compare with.", file=sys.stderr)
                return 2
            sides = mirror.compare_snapshots(store, args.name, args.from_, args.to)
        else:
            if args.from_ or args.to:
                print("hashlens: --from/--to pick snapshots of one mirror; give NAME alone with them.",
                      file=sys.stderr)
                return 2
            if args.other_store:
                other_store = open_source(args.other_store, read_only=True)
            sides = mirror.compare_databases(store, args.name, other_store or store, args.other)
        counts = DiffCounts()
        differences = compare(sides.old, sides.new, counts)
        if args.output:
            with AtomicFile(args.output, store_path=store.location.path) as f:
                out = codecs.getwriter("utf-8")(f.file)
                diff_report.write(out, args.format, differences, counts, old_name=sides.old_name,
                                  new_name=sides.new_name)
            print(diff_report.summary_line(counts), file=sys.stderr)
        else:
            diff_report.write(sys.stdout, args.format, differences, counts, old_name=sides.old_name,
                              new_name=sides.new_name)
    finally:
        if other_store is not None:
            other_store.close()
    return 0 if counts.equal else DIFFERENT
