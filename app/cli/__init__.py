"""The `hashlens` command line: the ACI, and friendly subcommands over the same actions."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app import __version__
from app.launch import store_to_open
from app.mediaserver_codec import names

if TYPE_CHECKING:
    from app.domain import HashlensError

# Issue 15: every command imports only what it uses. Every command is listed here with the
# module that declares it (add_commands() builds its parsers and names its handlers) and
# the line `hashlens --help` shows for it. A module is imported only when one of its
# commands is the one being run, and its handlers import their machinery when they run:
# `hashlens --help` loads no module of ours beyond this one. tests/app/test_startup_imports.py
# keeps this table equal to what each module declares.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("aci", "app.cli.store_commands", "answer one ACI request and print its XML"),
    ("db", "app.cli.store_commands", "create, list, rename or remove databases"),
    ("train", "app.cli.store_commands", "train images (files or folders, recursively) into a database"),
    ("list", "app.cli.store_commands", f"list image hashes ({names.LIST_IMAGE_HASHES} with filters)"),
    ("meta", "app.cli.store_commands", "add, update or remove custom metadata"),
    ("remove", "app.cli.store_commands", "remove an image hash with its image and metadata"),
    ("null-image", "app.cli.store_commands", "delete the stored image of a hash, keeping the hash"),
    ("rename", "app.cli.store_commands", "give a hash a new identifier"),
    ("move", "app.cli.store_commands", "move a hash to another database"),
    ("relabel", "app.cli.store_commands", "change the label of a hash's image"),
    ("migrate", "app.cli.store_commands", "upgrade an older store to this version's schema (backs it up first)"),
    ("sample", "app.cli.sample_command", "create a database of generated sample entries"),
    ("export", "app.cli.export_commands",
     "export a listing to a file (xml, csv, tsv, json, ndjson, xlsx, images)"),
    ("import", "app.cli.export_commands",
     f"import entries from a Hashlens export or a saved {names.LIST_IMAGE_HASHES} response"),
    ("verify", "app.cli.export_commands", "check an export against its NAME.manifest.json"),
    ("audit", "app.cli.audit_commands",
     "audit a database (or every database): duplicates, near-duplicates, integrity, history"),
    ("history", "app.cli.audit_commands", "list the change journal: what changed, when, by whom"),
    ("attach-images", "app.cli.attach_command",
     "compute pHashes (and optionally store images) for entries from a folder of image files"),
    ("pull", "app.cli.mirror_commands", "copy a Media Server database into a local mirror (a new snapshot)"),
    ("refresh", "app.cli.mirror_commands",
     "pull mirrors again from the Media Server each came from (a new snapshot each)"),
    ("mirrors", "app.cli.mirror_commands", "list the mirrors of Media Server databases and their snapshots"),
    ("diff", "app.cli.mirror_commands",
     "what changed between two snapshots of a mirror, or between two databases"),
    ("publish", "app.cli.publish_command",
     "train every entry of a local database that has image data into a Media Server database"),
    ("push", "app.cli.push_commands", "send a mirror's staged changes to its Media Server, each exactly once"),
    ("changes", "app.cli.push_commands", "list a mirror's staged changes as ACI requests"),
    ("discard", "app.cli.push_commands", "take back a mirror's staged changes"),
    ("serve", "app.cli.serve_command", "answer the image-hash actions over HTTP, as Media Server does"),
)
# The modules that declare commands, in the order of their commands.
COMMAND_MODULES = tuple(dict.fromkeys(module for _, module, _ in COMMANDS))

# Exit status of `train` when some images were added and some refused (ours): 0 stays
# "every image was added" and 1 "nothing was added, or the command failed".
EXIT_PARTIAL = 4


class UsageError(Exception):
    """A usage mistake: its message names the flag typed; the command exits 2."""


class CommandParser(argparse.ArgumentParser):
    """An argparse parser whose mistakes raise UsageError (exit status 2, said once)."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="URL",
                        help="sqlite:///path.db, postgresql://user@host/db or mysql://user@host/db "
                             "(default: $HASHLENS_STORE, else a file in your data folder)")
    parser.add_argument("--read-only", action="store_true", help="open the store read-only")


def requested_command(argv: list[str]) -> str | None:
    """The command word of `argv` as the full parser will see it (global options, their
    abbreviations and `--store=URL` skipped), or None; found with the same global options so
    that argparse itself decides."""
    pre = CommandParser(prog="hashlens", add_help=False)
    _add_global_options(pre)
    pre.add_argument("-h", "--help", action="store_true")
    pre.add_argument("--version", action="store_true")
    pre.add_argument("command", nargs="?")
    pre.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        return pre.parse_known_args(argv)[0].command
    except UsageError:
        return None  # the full parser reports it


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `hashlens` parser. Only the module declaring `command` is imported and builds its
    parsers; every other command is named with its help line from COMMANDS, which is all
    `hashlens --help` shows of it (its own `--help` builds it for real)."""
    parser = CommandParser(
        prog="hashlens",
        description="Browse, export and audit image-hash databases. Without a command, opens the window; "
                    "'hashlens PATH.db' (or a store URL) opens the window on that store.",
    )
    _add_global_options(parser)
    parser.add_argument("--version", action="version", version=f"hashlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)

    wanted = next((module for name, module, _ in COMMANDS if name == command), None)
    for name, module, helptext in COMMANDS:
        if module == wanted:
            if name not in sub.choices:  # its module adds all of its commands at once, in this order
                importlib.import_module(module).add_commands(sub)
        else:
            sub.add_parser(name, help=helptext, add_help=False)
    parser.set_defaults(command_names=tuple(sub.choices))
    return parser


def command_names() -> tuple[str, ...]:
    return tuple(name for name, _, _ in COMMANDS)


# -- entry point -----------------------------------------------------------------------


def _log_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir("hashlens", appauthor=False)) / "hashlens.log"


def _log_unexpected(exc: BaseException) -> Path | None:
    import traceback

    try:
        path = _log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def main(argv: list[str] | None = None, gui: Callable[..., int] | None = None) -> int:
    """Run one command; with no command, start the window through `gui` if given.

    Exit status: 0 success, 1 an error (one line on stderr), 2 a usage error."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(requested_command(argv))
    opened = store_to_open(argv, parser.get_default("command_names"))
    if opened is not None:
        # `hashlens PATH.db`: the window on that store (what a file manager's "Open with" runs).
        if gui is None:
            print(f"hashlens: '{opened}' is a store: open it in the window with 'hashlens-gui {opened}'.",
                  file=sys.stderr)
            return 2
        return gui([], store_url=opened, read_only="--read-only" in argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        print("Try 'hashlens --help'.", file=sys.stderr)
        return 2
    if args.command is None:
        if gui is None:
            parser.print_help()
            return 0
        from app.sources import resolve_store_url

        return gui([], store_url=resolve_store_url(args.store), read_only=args.read_only)
    from app.domain import HashlensError

    store = None
    try:
        if not getattr(args, "needs_store", True):
            return args.handler(None, args)
        from app.sources import open_source, resolve_store_url

        try:
            creates = getattr(args, "creates", False)
            creates = creates(args) if callable(creates) else creates
            store = open_source(resolve_store_url(args.store), read_only=args.read_only, create=creates)
        except HashlensError as exc:
            # `hashlens aci` answers a store that cannot open as Media Server would: in XML.
            if getattr(args, "answers_store_errors", False):
                return args.handler(None, args, store_error=exc)
            raise
        return args.handler(store, args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except HashlensError as exc:
        print(f"hashlens: {exc.description}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hashlens: cancelled.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: one clear line, details in the log
        where = _log_unexpected(exc)
        detail = f" (details in {where})" if where else ""
        print(f"hashlens: unexpected error: {type(exc).__name__}: {exc}{detail}", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
