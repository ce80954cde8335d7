"""`hashlens publish`: train a local database's entries into a Media Server database, exactly once."""

from __future__ import annotations

import signal
import sys
import threading

from app.cli.common import TerminalProgress, add_connection_options, media_server_client, positive_int
from app.mediaserver.publish import DEFAULT_ACTION_TIMEOUT, DEFAULT_IN_FLIGHT, publish
from app.mediaserver_codec import names

# Exit status when the run ended with entries not published (refused, unresolved,
# stopped): the same "partly done" status as `train` (ours).
EXIT_PARTIAL = 4
EXIT_CANCELLED = 130


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "publish", help="train every entry of a local database that has image data into a Media Server database",
        description=f"Send each entry of NAME that holds image data to the Media Server at URL as "
                    f"{names.TRAIN_IMAGE_HASH} into its database REMOTE (which must exist): the image as a "
                    f"multipart upload with the identifier, label and metadata. Each training is followed with "
                    f"{names.QUEUE_INFO} until it ends and confirmed with {names.LIST_IMAGE_HASHES}. Entries "
                    "already on the server are skipped, so running again resumes a broken run, and nothing is "
                    "trained twice: an entry sent but not answered is checked on the server before it is sent "
                    "again. Entries without image data are listed. Ctrl+C stops sending and waits for the "
                    f"trainings in flight. Exit status 0 when every entry is on the server, {EXIT_PARTIAL} when "
                    f"some are not (refused or not known yet: see the report), {EXIT_CANCELLED} when cancelled.")
    p.add_argument("database", metavar="NAME", help="the local database to publish")
    p.add_argument("url", help="the Media Server's ACI address, e.g. http://mediaserver:14000")
    p.add_argument("remote", metavar="REMOTE", help="the image-hash database on the server")
    p.add_argument("--in-flight", type=positive_int, default=DEFAULT_IN_FLIGHT, metavar="N",
                   help=f"trainings outstanding at a time (default {DEFAULT_IN_FLIGHT})")
    p.add_argument("--continue-on-error", action="store_true",
                   help="go on past an entry the server refuses (default: stop there)")
    p.add_argument("--action-timeout", type=positive_int, default=int(DEFAULT_ACTION_TIMEOUT), metavar="S",
                   help=f"seconds one training may stay queued before the run stops waiting "
                        f"(default {DEFAULT_ACTION_TIMEOUT:g})")
    add_connection_options(p, retries_help="reads tried again after a network fault (default {default}); "
                                           "trainings are never repeated blindly")
    p.set_defaults(handler=run_publish)


def run_publish(store, args) -> int:
    client = media_server_client(args.url, args)
    stop = threading.Event()
    progress = TerminalProgress(f"publish {args.database}")

    def on_interrupt(signum, frame):
        if stop.is_set():  # a second Ctrl+C: stop at once (the next run checks the server)
            raise KeyboardInterrupt
        stop.set()
        print("\nhashlens: stopping after the trainings in flight (Ctrl+C again to stop at once) …",
              file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        report = publish(store, client, args.database, args.remote, in_flight=args.in_flight,
                         continue_on_error=args.continue_on_error, action_timeout=float(args.action_timeout),
                         progress=lambda p: progress(p.done, p.total), cancelled=stop.is_set)
    except KeyboardInterrupt:
        progress.finish()
        print("hashlens: publish stopped; run the same command again: what was sent is checked on the server "
              "first, nothing is trained twice.", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    progress.finish()
    print(report.text())
    if report.cancelled:
        return EXIT_CANCELLED
    return 0 if report.complete else EXIT_PARTIAL
