"""`hashlens audit` and `hashlens history`: the operator's report and the change journal."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta, timezone

from app.audits.model import DEFAULT_RADIUS, MAX_RADIUS, AuditOptions, Level
from app.audits.report import findings_summary, iso, journal_line, to_json, to_text, write_atomic
from app.cli.common import TerminalProgress, positive_int, whole_number
from app.domain import HashlensError, counted, param_invalid
from app.store import audit_queries as q

# Exit status when the audit ran and found something at or above --fail-on (ours):
# 1 stays "the command failed" and 2 "bad usage", so scripts can tell the three apart.
EXIT_FINDINGS = 3

DATE_FORMS = "use 2024-05-01, 2024-05-01T12:30, 2024-05-01T12:30Z or an age like 7d"
_AGO = re.compile(r"(\d+)\s*([dhm])", re.ASCII)


def parse_when(text: str, *, end: bool = False, now: datetime | None = None) -> int:
    """A moment as ms since the epoch from '2024-05-01', '2024-05-01T12:30', an ISO time
    with a zone ('…Z', '…+02:00'), or an age such as '7d', '12h', '30m'. A time without
    a zone is local time; a bare date given as an end (--until) means the end of that day."""
    raw = text.strip()
    now = now or datetime.now(timezone.utc)
    ago = _AGO.fullmatch(raw.lower())
    if ago:
        n, unit = int(ago.group(1)[:12]), ago.group(2)
        try:
            delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
            return int((now - delta).timestamp() * 1000)
        except (OverflowError, ValueError):
            raise param_invalid("until" if end else "since", f"'{text}' reaches back before the year 1.") from None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise param_invalid(
            "until" if end else "since",
            f"'{text}' is not a date: {DATE_FORMS}.",
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw, re.ASCII):
        moment += timedelta(days=1)
    return int(moment.timestamp() * 1000)


def _radius(text: str) -> int:
    return whole_number(0, MAX_RADIUS)(text)


def _when(*, end: bool):
    """An argparse type for --since (end=False) and --until (end=True): a bad date is a
    usage error naming the flag, not an error naming an internal parameter."""

    def parse(text: str) -> int:
        try:
            return parse_when(text, end=end)
        except HashlensError as exc:
            # The flag's name is added by argparse ("argument --since: ...").
            raise argparse.ArgumentTypeError(exc.description.removeprefix(f"Parameter '{exc.parameter}': ")) from None

    return parse


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "audit",
        help="audit a database (or every database): duplicates, near-duplicates, integrity, history",
        description="Audit one database, or every database of the store when none is named. Reads only. "
                    f"Exit status: 0 when nothing at or above --fail-on was found, {EXIT_FINDINGS} when "
                    "something was, 1 when the audit could not run, 2 on bad usage.",
    )
    p.add_argument("database", nargs="?", help="the database to audit (default: all)")
    p.add_argument("--near", type=_radius, default=DEFAULT_RADIUS, metavar="N",
                   help=f"near-duplicate radius in bits of the 64-bit pHash (default 8, at most {MAX_RADIUS})")
    p.add_argument("--format", choices=["text", "json", "html"], default="text")
    p.add_argument("--output", "-o", metavar="PATH", help="write the report here (atomically) instead of to standard output")
    p.add_argument("--fail-on", choices=["info", "warning", "error", "never"], default="error",
                   help="the finding level that makes the exit status non-zero (default: error)")
    p.add_argument("--no-images", action="store_true",
                   help="do not decode and re-hash stored images (much faster on big stores)")
    p.add_argument("--no-across", action="store_true", help="do not look for near-duplicates across databases")
    p.add_argument("--quick", action="store_true", help="SQLite: PRAGMA quick_check instead of integrity_check")
    p.add_argument("--since", metavar="DATE", type=_when(end=False),
                   help="change history from this date (default: the start)")
    p.add_argument("--until", metavar="DATE", type=_when(end=True),
                   help="change history until this date, inclusive for a bare date")
    p.add_argument("--sample", type=positive_int, default=2000, metavar="N",
                   help="entries sampled for the distance histogram on big databases (default 2000)")
    # The auditor never writes: open the store read-only whatever the global flag says
    # (a mistyped SQLite path then fails instead of creating an empty store).
    p.set_defaults(handler=cmd_audit, read_only=True)

    h = subparsers.add_parser(
        "history",
        help="list the change journal: what changed, when, by whom",
        description="List every change Hashlens recorded in the store, oldest first.",
    )
    h.add_argument("--since", metavar="DATE", type=_when(end=False),
                   help="from this date or age (2024-05-01, 2024-05-01T12:00Z, 7d)")
    h.add_argument("--until", metavar="DATE", type=_when(end=True),
                   help="until this date (a bare date includes that whole day)")
    h.add_argument("--database", metavar="NAME", help="only changes to this database")
    h.add_argument("--format", choices=["text", "json"], default="text")
    h.add_argument("--limit", type=positive_int, metavar="N", help="at most this many changes (the latest)")
    h.set_defaults(handler=cmd_history, read_only=True)


class _Phases:
    """One terminal progress line per audit phase."""

    def __init__(self):
        self.phase = None
        self.bar = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase != self.phase:
            self.finish()
            self.phase = phase
            self.bar = TerminalProgress(phase)
        self.bar(done, total)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.finish()
            self.bar = None


def cmd_audit(store, args) -> int:
    options = AuditOptions(
        near=args.near,
        check_images=not args.no_images,
        across=not args.no_across,
        full_integrity=not args.quick,
        since=args.since,
        until=args.until,
        histogram_sample=max(args.sample, 2),
    )
    phases = _Phases()
    try:
        from app.audits.audit import run_audit  # NumPy and the audit machinery: only here

        result = run_audit(store, args.database, options, progress=phases)
    finally:
        phases.finish()
    if args.format == "json":
        text = to_json(result)
    elif args.format == "html":
        from app.audits.html_report import report_thumbnails, to_html

        text = to_html(result, report_thumbnails(store, result))
    else:
        text = to_text(result)
    counts = result.counts()
    summary = findings_summary(counts)
    if args.output:
        write_atomic(args.output, text)
        print(f"Audit: {summary}; report written to {args.output}.")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    level = None if args.fail_on == "never" else Level.parse(args.fail_on)
    failing = result.failing(level)
    if failing:
        print(f"hashlens: the audit found {counted(len(failing), 'finding')} at level {args.fail_on} or above.", file=sys.stderr)
        return EXIT_FINDINGS
    return 0


def cmd_history(store, args) -> int:
    since, until = args.since, args.until
    if args.limit:
        batches = [q.journal_latest(store, since, until, args.database, args.limit)]
    else:
        batches = q.iter_journal(store, since, until, args.database)
    out = sys.stdout
    shown = 0
    if args.format == "json":
        out.write("[")
        for batch in batches:
            for e in batch:
                item = {"at": iso(e.at), "at_ms": e.at, "user": e.user, "action": e.action,
                        "database": e.database, "identifier": e.identifier, "params": e.params}
                out.write(("\n  " if not shown else ",\n  ") + json.dumps(item, ensure_ascii=False))
                shown += 1
        out.write("\n]\n" if shown else "]\n")
        return 0
    for batch in batches:
        for e in batch:
            out.write(journal_line(e) + "\n")
            shown += 1
    if not shown:
        span = f" between {iso(since) or 'the start'} and {iso(until) or 'now'}" if since or until else ""
        where = f" to '{args.database}'" if args.database else ""
        print(f"No changes{where}{span} are recorded.", file=sys.stderr)
    return 0

