"""The `hashlens` command line: the ACI, and friendly subcommands over the same actions."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import itertools
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import platformdirs

from app import __version__
from app.aci.actions import handle
from app.cli.common import TerminalProgress, UsageError, add_listing_options, key_value, listing_query_from_args
from app.domain import HashlensError, counted
from app.exports.formats import entry_object
from app.launch import store_to_open
from app.mediaserver_codec import names
from app.mediaserver_codec import writer as response
from app.mediaserver_codec.request import aci_line, requested_action
from app.services import actions
from app.source import Source, SqlSource
from app.sources import open_source, resolve_store_url

# Subcommand modules written beside this one; each adds its parsers with add_commands().
PLUGIN_MODULES = ("app.cli.sample_command", "app.cli.export_commands", "app.cli.audit_commands",
                  "app.cli.attach_command", "app.cli.mirror_commands", "app.cli.publish_command",
                  "app.cli.push_commands", "app.cli.serve_command")

log = logging.getLogger("hashlens")

# Exit status of `train` when some images were added and some refused (ours): 0 stays
# "every image was added" and 1 "nothing was added, or the command failed".
EXIT_PARTIAL = 4


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hashlens",
        description="Browse, export and audit image-hash databases. Without a command, opens the window; "
                    "'hashlens PATH.db' (or a store URL) opens the window on that store.",
    )
    parser.add_argument("--store", metavar="URL",
                        help="sqlite:///path.db, postgresql://user@host/db or mysql://user@host/db "
                             "(default: $HASHLENS_STORE, else a file in your data folder)")
    parser.add_argument("--read-only", action="store_true", help="open the store read-only")
    parser.add_argument("--version", action="version", version=f"hashlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("aci", help="answer one ACI request and print its XML",
                       description="Answer an ACI request such as "
                                   f"'{aci_line(names.LIST_IMAGE_HASHES, database='ImageHashes', start=1, maxresults=10)}'. "
                                   "Exit status 0 on SUCCESS, 1 on ERROR.")
    p.add_argument("request", help="the query string; imagepath= names a local file")
    p.set_defaults(handler=_cmd_aci, creates=_aci_creates)

    db = sub.add_parser("db", help="create, list, rename or remove databases")
    dbs = db.add_subparsers(dest="db_command", metavar="ACTION", required=True, parser_class=_Parser)
    dbs.add_parser("list", help="list the databases and their entry counts").set_defaults(handler=_cmd_db_list)
    for name, helptext in (("create", "create an empty database"), ("remove", "remove a database and all its hashes")):
        q = dbs.add_parser(name, help=helptext)
        q.add_argument("database")
        # Only the commands that create may make a new store file (issue 10 item 10).
        q.set_defaults(handler=_cmd_db_create if name == "create" else _cmd_db_remove, creates=name == "create")
    q = dbs.add_parser("rename", help="rename a database")
    q.add_argument("database")
    q.add_argument("newdatabase")
    q.set_defaults(handler=_cmd_db_rename)

    p = sub.add_parser("train", help="train images (files or folders, recursively) into a database",
                       description="Train image files, or every image in folders (recursively), into a database. "
                                   "Each image is its own transaction. Every refused image and every skipped file "
                                   "(a name that is not an image name, in a folder) is listed with its reason. "
                                   f"Exit status: 0 when every image was added, {EXIT_PARTIAL} when some were "
                                   "added and some refused, 1 when none was added (or the command failed), "
                                   "2 on bad usage.")
    p.add_argument("database")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--identifier", help="identifier for a single image (default: generated)")
    p.add_argument("--label", help="label for a single image (default: the file name)")
    p.add_argument("--meta", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="metadata for every image")
    p.set_defaults(handler=_cmd_train, creates=True)

    p = sub.add_parser("list", help=f"list image hashes ({names.LIST_IMAGE_HASHES} with filters)")
    add_listing_options(p)
    p.add_argument("--format", choices=["table", "xml", "json"], default="table")
    p.set_defaults(handler=_cmd_list)

    meta = sub.add_parser("meta", help="add, update or remove custom metadata")
    metas = meta.add_subparsers(dest="meta_command", metavar="ACTION", required=True, parser_class=_Parser)
    for name in ("add", "update"):
        q = metas.add_parser(name, help=f"{name} a metadata key")
        q.add_argument("database")
        q.add_argument("identifier")
        q.add_argument("key")
        q.add_argument("value")
        q.set_defaults(handler=_cmd_meta)
    q = metas.add_parser("remove", help="remove a metadata key")
    q.add_argument("database")
    q.add_argument("identifier")
    q.add_argument("key")
    q.set_defaults(handler=_cmd_meta)

    for name, helptext, extra in (
        ("remove", "remove an image hash with its image and metadata", ()),
        ("null-image", "delete the stored image of a hash, keeping the hash", ()),
        ("rename", "give a hash a new identifier", ("newidentifier",)),
        ("move", "move a hash to another database", ("newdatabase",)),
        ("relabel", "change the label of a hash's image", ("newlabel",)),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("database")
        q.add_argument("identifier")
        for arg in extra:
            q.add_argument(arg)
        if name == "relabel":
            q.add_argument("--current", metavar="LABEL",
                           help=f"the current label, as {names.RELABEL_IMAGE_HASH_IMAGE} requires (default: read it)")
        q.set_defaults(handler=_cmd_change, change=name)

    p = sub.add_parser("migrate", help="upgrade an older store to this version's schema (backs it up first)")
    p.add_argument("--backup", metavar="PATH", help="where to write the SQLite backup (default: beside the store)")
    p.set_defaults(handler=_cmd_migrate)

    for module in PLUGIN_MODULES:
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        plugin.add_commands(sub)
    parser.set_defaults(command_names=tuple(sub.choices))
    return parser


# -- commands ------------------------------------------------------------------------


# The ACI actions that create, as `db create`, `train` and `import` do: only these may
# make a new store file when the store does not exist yet (issue 10 item 10).
_CREATING_ACTIONS = {a.lower() for a in (names.CREATE_IMAGE_HASH_DATABASE, names.TRAIN_IMAGE_HASH,
                                         names.IMPORT_IMAGE_HASH_DATABASE)}


def _aci_creates(args) -> bool:
    return (requested_action(args.request) or "").lower() in _CREATING_ACTIONS


def _cmd_aci(store: Source | None, args, store_error: HashlensError | None = None) -> int:
    answer = handle(store, args.request, store_error=store_error)
    out = sys.stdout
    try:
        for chunk in answer.chunks:
            out.write(chunk)
    except HashlensError as exc:
        out.flush()
        print(f"\nhashlens: the response was cut short: {exc.description}", file=sys.stderr)
        return 1
    out.flush()
    return 0 if answer.ok else 1


def _cmd_db_list(store: Source, args) -> int:
    infos = actions.list_databases(store)
    if not infos:
        print("No databases yet. Create one with 'hashlens db create NAME' or 'hashlens sample NAME --count 1000'.")
        return 0
    width = max(len(i.name) for i in infos)
    for info in infos:
        line = f"{info.name:<{width}}  {info.entry_count:>12,}"
        if info.mirror is not None:
            line += f"  mirror of {mirror_words(info.mirror)}"
        print(line)
    return 0


def mirror_words(snapshot) -> str:
    """Where a mirror comes from and how fresh it is, from its latest snapshot."""
    from app.mediaserver.mirror import iso_time

    return f"{snapshot.source.describe()}: snapshot {snapshot.number}, as of {iso_time(snapshot.taken_at)}"


def _cmd_db_create(store: Source, args) -> int:
    actions.create_database(store, args.database)
    print(f"Created database '{args.database}'.")
    return 0


def _cmd_db_remove(store: Source, args) -> int:
    removed = actions.remove_database(store, args.database)
    print(f"Removed database '{args.database}' and its {counted(removed, 'image hash', 'image hashes')}.")
    return 0


def _cmd_db_rename(store: Source, args) -> int:
    actions.rename_database(store, args.database, args.newdatabase)
    print(f"Renamed database '{args.database}' to '{args.newdatabase}'.")
    return 0


def _cmd_train(store: Source, args) -> int:
    metadata = args.meta
    single = len(args.paths) == 1 and not Path(args.paths[0]).is_dir()
    if (args.identifier or args.label) and not single:
        raise UsageError("hashlens train: --identifier and --label apply to a single image file only.")
    if single:
        path = args.paths[0]
        label = args.label if args.label is not None else Path(path).stem
        identifier = actions.train_image(store, args.database, path=path, identifier=args.identifier,
                                         label=label, metadata=metadata)
        print(identifier)
        return 0
    progress = TerminalProgress("Training")
    report = actions.train_files(store, args.database, args.paths, metadata=metadata, progress=progress)
    progress.finish()
    added, refused = len(report.added), len(report.refused)
    skipped = f"; skipped {counted(len(report.skipped), 'non-image file')}" if report.skipped else ""
    print(f"Added {counted(added, 'image hash', 'image hashes')} to '{args.database}'; refused {refused:,}{skipped}.")
    for verb, path, reason in report.notes():
        print(f"  {verb} {path}: {reason}", file=sys.stderr)
    if report.cancelled:
        print("Training was cancelled; the images listed above as added were kept.", file=sys.stderr)
    if not added:
        if not refused:
            print(f"hashlens: no image files were found in {', '.join(args.paths)}.", file=sys.stderr)
        return 1
    return EXIT_PARTIAL if refused or report.cancelled else 0


def _cmd_list(store: Source, args) -> int:
    query = listing_query_from_args(args)
    if args.format == "table":
        query = dataclasses.replace(query, imagestatus=True)
    # The first batch is read before anything is written, so that an error (an unknown
    # database) is the only output rather than following a table header or an XML head.
    batches = store.iter_listing(query)
    batches = itertools.chain([next(batches, [])], batches)
    out = sys.stdout
    if args.format == "xml":
        for chunk in response.listing(batches, imagestatus=query.imagestatus, metadata=query.metadata):
            out.write(chunk)
        return 0
    if args.format == "json":
        out.write("[")
        first = True
        for batch in batches:
            for row in batch:
                # The export's entry object (JSON and NDJSON exports): one row shape everywhere.
                out.write(("\n  " if first else ",\n  ") + json.dumps(entry_object(row, query), ensure_ascii=False))
                first = False
        out.write("\n]\n" if not first else "]\n")
        return 0
    shown = 0
    out.write(f"{'#':>8}  {'identifier':<34} {'label':<24} {'image':<5} {'meta':>4}  phash\n")
    for batch in batches:
        for row in batch:
            out.write(f"{row.position:>8}  {_clip(row.identifier, 34):<34} {_clip(row.label, 24):<24} "
                      f"{'yes' if row.has_image_data else 'no':<5} {row.meta_count:>4}  {row.phash_text}\n")
            shown += 1
    if not shown:
        print("No image hashes match.", file=sys.stderr)
    return 0


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "⏎").replace("\t", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _cmd_meta(store: Source, args) -> int:
    if args.meta_command == "add":
        actions.add_metadata(store, args.database, args.identifier, args.key, args.value)
    elif args.meta_command == "update":
        actions.update_metadata(store, args.database, args.identifier, args.key, args.value)
    else:
        actions.remove_metadata(store, args.database, args.identifier, args.key)
    print(f"Metadata '{args.key}' of '{args.identifier}': {args.meta_command} done.")
    return 0


def _cmd_change(store: Source, args) -> int:
    db, ident = args.database, args.identifier
    if args.change == "remove":
        actions.remove_image_hash(store, db, ident)
        print(f"Removed '{ident}' from '{db}'.")
    elif args.change == "null-image":
        actions.null_image_data(store, db, ident)
        print(f"Removed the image data of '{ident}'; the hash stays.")
    elif args.change == "rename":
        actions.rename_image_hash(store, db, ident, args.newidentifier)
        print(f"Renamed '{ident}' to '{args.newidentifier}'.")
    elif args.change == "move":
        actions.move_image_hash(store, db, ident, args.newdatabase)
        print(f"Moved '{ident}' to '{args.newdatabase}'.")
    else:
        current = args.current if args.current is not None else actions.image(store, db, ident).label
        actions.relabel_image(store, db, ident, current, args.newlabel)
        print(f"Relabelled '{ident}' from '{current}' to '{args.newlabel}'.")
    return 0


def _cmd_migrate(store: SqlSource, args) -> int:
    if not store.needs_migration:
        print(f"The store is at schema version {store.schema_version}; nothing to migrate.")
        return 0
    before = store.schema_version
    backup = store.migrate(Path(args.backup) if args.backup else None)
    if backup:
        print(f"Backed up the store to {backup}.")
    print(f"Migrated the store from schema version {before} to {store.schema_version}.")
    for note in getattr(store, "migration_notes", ()):
        print(f"  {note}")
    return 0


# -- entry point -----------------------------------------------------------------------


def _log_path() -> Path:
    return Path(platformdirs.user_log_dir("hashlens", appauthor=False)) / "hashlens.log"


def _log_unexpected(exc: BaseException) -> Path | None:
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
    parser = build_parser()
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
    url = resolve_store_url(args.store)
    if args.command is None:
        if gui is None:
            parser.print_help()
            return 0
        return gui([], store_url=url, read_only=args.read_only)
    store = None
    try:
        if not getattr(args, "needs_store", True):
            return args.handler(None, args)
        try:
            creates = getattr(args, "creates", False)
            creates = creates(args) if callable(creates) else creates
            store = open_source(url, read_only=args.read_only, create=creates)
        except HashlensError as exc:
            if args.handler is _cmd_aci:
                return _cmd_aci(None, args, store_error=exc)
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
