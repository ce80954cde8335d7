"""`hashlens push`, `hashlens changes` and `hashlens discard`: a mirror's staged changes, reviewed, sent to its Media Server exactly once, or taken back."""

from __future__ import annotations

import sys

from app.cli.common import TerminalProgress, add_connection_options, media_server_client, positive_int
from app.domain import Failure, HashlensError
from app.mediaserver import changeset
from app.mediaserver import push as push_module
from app.mediaserver import staged
from app.mediaserver.client import MediaServerClient
from app.store import mirrors


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "push", help="send a mirror's staged changes to its Media Server, each exactly once",
        description="Send the change-set of the mirror NAME to its Media Server one action at a time. Each action "
                    "is recorded as sent before it leaves and confirmed with ListImageHashes after; an action "
                    "whose answer was lost is checked on the server before it is ever sent again. An ERROR "
                    "answer stops the push (see --continue-on-error) and is never retried automatically; pushing "
                    "again resumes. Before sending, the entries the changes touch are compared with the "
                    "snapshot: a change someone else made refuses the push (see --force). When every change "
                    "is confirmed the mirror takes a fresh snapshot, so 'hashlens diff NAME' shows what was "
                    "pushed. Exit status 0 when every change is confirmed, 1 otherwise.")
    p.add_argument("name", help="the mirror")
    p.add_argument("--dry-run", action="store_true",
                   help="check the server and list what would be sent; send nothing")
    p.add_argument("--continue-on-error", action="store_true",
                   help="after an ERROR answer go on with the next change (the refused one stays staged)")
    p.add_argument("--force", action="store_true",
                   help="push even though someone else changed the entries since the snapshot")
    p.add_argument("--take-over", action="store_true",
                   help="push although another push of NAME on another machine seems to run (use only if it is gone)")
    p.add_argument("--script", metavar="FILE",
                   help="write the change-set as an ACI script (one request per line, with comments) and send nothing")
    p.add_argument("--undo-script", metavar="FILE",
                   help="write the requests that undo the change-set, where it can be undone; send nothing")
    p.add_argument("--path-only", action="store_true",
                   help="with --script/--undo-script: lines start with /action= instead of the server's URL")
    add_connection_options(p, retries_help="tries a read (never a write) again after a network fault "
                                           "(default {default})")
    p.set_defaults(handler=run_push)

    c = subparsers.add_parser("changes", help="list a mirror's staged changes as ACI requests",
                              description="The changes staged on the mirror NAME and not yet confirmed by its "
                                          "server, in the order they will be sent, one ACI request per line; a "
                                          "change that was sent or refused is preceded by a # line saying so.")
    c.add_argument("name", help="the mirror")
    c.set_defaults(handler=run_changes)

    d = subparsers.add_parser("discard", help="take back a mirror's staged changes",
                              description="Take back the staged changes of the mirror NAME (all of them, or the "
                                          "last N): the local copy returns to the latest snapshot plus the "
                                          "changes that remain. A change sent without an answer cannot be taken "
                                          "back (the server may hold it): push first.")
    d.add_argument("name", help="the mirror")
    d.add_argument("--last", type=positive_int, metavar="N", help="only the last N changes")
    d.set_defaults(handler=run_discard)


def _client(store, args) -> MediaServerClient:
    source = mirrors.mirror_of(store, args.name)
    if source is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{args.name}' is not a mirror of a Media Server; only a "
                                                   "mirror's changes can be pushed.", parameter="name")
    return media_server_client(source.url, args)


def run_push(store, args) -> int:
    if args.script or args.undo_script:
        for flag, given in (("--dry-run", args.dry_run), ("--continue-on-error", args.continue_on_error),
                            ("--force", args.force), ("--take-over", args.take_over)):
            if given:
                print(f"hashlens push: {flag} sends or checks; --script and --undo-script only write files. "
                      "Give one or the other.", file=sys.stderr)
                return 2
        count = push_module.write_scripts(store, args.name, args.script, args.undo_script,
                                          full_url=not args.path_only)
        for flag, path in (("script", args.script), ("undo script", args.undo_script)):
            if path:
                print(f"Wrote the {flag} of {count} change(s) of '{args.name}' to {path}; nothing was sent.")
        return 0
    if args.path_only:
        print("hashlens push: --path-only applies only with --script or --undo-script.", file=sys.stderr)
        return 2
    client = _client(store, args)
    progress = TerminalProgress(f"push {args.name}")
    try:
        report = push_module.push(store, client, args.name, dry_run=args.dry_run,
                                  continue_on_error=args.continue_on_error, force=args.force,
                                  take_over=args.take_over,
                                  progress=lambda done, total: progress(done, total))
    except HashlensError as exc:
        progress.finish()
        if exc.failure is Failure.SERVER_CHANGED:
            print(f"hashlens: {exc.description} To push anyway: hashlens push {args.name} --force", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        progress.finish()
        print(f"hashlens: push interrupted. Push again: a change whose answer did not come is checked on the "
              f"server before it is sent again ('hashlens changes {args.name}' lists what is left).", file=sys.stderr)
        return 130
    progress.finish()
    if not report.outcomes and not report.planned and report.snapshot is None:
        print(f"'{args.name}' has no staged changes; nothing to push.")
        return 0
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def run_changes(store, args) -> int:
    if mirrors.mirror_of(store, args.name) is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{args.name}' is not a mirror of a Media Server; only a "
                                                   "mirror has staged changes.", parameter="name")
    waiting = push_module.outstanding(store, args.name)
    for change in waiting:
        if change.state != "pending":
            print(f"# {change.state}: {changeset.describe(change.action, dict(change.params))}"
                  + (f": {change.error}" if change.error else ""))
        print(change.line())
    print(f"{len(waiting)} staged change(s) of '{args.name}'." if waiting else f"'{args.name}' has no staged changes.",
          file=sys.stderr)
    return 0


def run_discard(store, args) -> int:
    taken = staged.discard(store, args.name, args.last)
    print(f"Discarded {len(taken)} staged change(s) of '{args.name}'; "
          f"{len(push_module.outstanding(store, args.name))} remain.")
    return 0
