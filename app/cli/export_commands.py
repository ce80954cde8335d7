"""The `export`, `import` and `verify` subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import TerminalProgress, add_listing_options, listing_query_from_args
from app.domain import Failure, HashlensError, counted
from app.exports import database_file, manifest, registry
from app.exports.export import export_listing
from app.exports.fileformats.database_format import FORMAT as DATABASE
from app.exports.formats import ExportOptions
from app.exports.importer import DIALECTS, POLICIES, ImportOptions, detect_format, import_file, import_formats
from app.mediaserver_codec import names

DATABASE_FORMAT = DATABASE.name


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help=f"export a listing to a file ({', '.join(registry.export_names())})",
        description="Export every entry of a listing (the same filter and order as 'hashlens list') to a file, "
                    "written atomically, with a NAME.manifest.json beside it. --format database writes the whole "
                    f"database with its images ({names.EXPORT_IMAGE_HASH_DATABASE}).",
    )
    add_listing_options(p)
    p.add_argument("--format", choices=[*registry.export_names(), DATABASE_FORMAT],
                   help="file format (default: from the --output suffix; images: a folder, or a .zip)")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="the file (or folder, for images) to write")
    p.add_argument("--raw", action="store_true",
                   help="CSV/TSV: write cells exactly, without the spreadsheet-safe apostrophe (formula injection risk)")
    p.add_argument("--metadata-columns", choices=["json", "keys"], default="json",
                   help="CSV/TSV metadata as one JSON column (default, exact) or one column per key")
    p.add_argument("--no-manifest", action="store_true", help="do not write NAME.manifest.json")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="if --output is a symbolic link, replace the file it points to (refused otherwise)")
    p.add_argument("--no-image-data", action="store_true", help="--format database: leave the images out")
    p.set_defaults(handler=cmd_export)

    p = subparsers.add_parser(
        "import", help=f"import entries from a Hashlens export or a saved {names.LIST_IMAGE_HASHES} response",
        description=f"Read a Hashlens XML, JSON, NDJSON, CSV or TSV export, or a {names.LIST_IMAGE_HASHES} response saved "
                    "from a Media Server, into a database (created if missing). All or nothing: one transaction. "
                    "A whole-database file (export --format database) becomes a new database.",
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--database", metavar="NAME", help="the database to import into (required for listing files)")
    p.add_argument("--on-duplicate", choices=POLICIES, default="abort",
                   help="an identifier already in the database: abort the import (default), skip the file's entry, "
                        "or replace the stored one")
    p.add_argument("--format", choices=import_formats(), default="auto",
                   help="file format (default: detected)")
    p.add_argument("--csv-dialect", choices=DIALECTS, default="auto",
                   help="CSV/TSV: spreadsheet-safe or raw (default: from NAME.manifest.json, else safe)")
    p.set_defaults(handler=cmd_import, creates=True)

    p = subparsers.add_parser(
        "verify", help="check an export against its NAME.manifest.json",
        description="Exit status 0 when the file matches its manifest (size and SHA-256), 1 when not.",
    )
    p.add_argument("manifest", metavar="NAME.manifest.json")
    p.set_defaults(handler=cmd_verify, needs_store=False)


def _format_of(args) -> str:
    if args.format:
        return args.format
    output = Path(args.output)
    fmt = registry.by_suffix(output.suffix)
    if fmt is None or not (fmt.exportable and fmt.listing_export):
        raise HashlensError(
            Failure.PARAM_MISSING,
            f"Cannot tell the format from '{output.name}'; give --format ({', '.join(registry.export_names())} "
            f"or {DATABASE_FORMAT}).",
            parameter="format",
        )
    return fmt.name


def _progress(label: str, total: int | None):
    bar = TerminalProgress(label)
    return bar, (lambda done: bar(done, total))


def cmd_export(store, args) -> int:
    fmt = _format_of(args)
    if fmt == DATABASE_FORMAT:
        bar, progress = _progress("Exporting", None)
        count = database_file.export_database(store, args.database, args.output,
                                              includeimagedata=not args.no_image_data,
                                              includemetadata=True, progress=progress,
                                              follow_symlinks=args.follow_symlinks)
        bar.finish()
        print(f"Exported database '{args.database}' ({counted(count, 'entry', 'entries')}) to {args.output}.")
        return 0
    query = listing_query_from_args(args)
    if args.raw and registry.get(fmt).spreadsheet_cells:
        print("hashlens: warning: --raw writes cells as they are; a spreadsheet may run a cell that starts "
              "with =, +, -, @ as a formula. Do not open this file in a spreadsheet.", file=sys.stderr)
    total = None
    bar = TerminalProgress("Exporting")
    if bar.enabled:
        # Counting costs a scan on a filtered listing, so only when someone watches.
        n = store.count(query.unwindowed()).value
        total = max(0, n - query.start + 1)
        if query.maxresults is not None:
            total = min(total, query.maxresults)
    options = ExportOptions(fmt, spreadsheet_safe=not args.raw, metadata_columns=args.metadata_columns,
                            manifest=not args.no_manifest, follow_symlinks=args.follow_symlinks)
    result = export_listing(store, query, args.output, options, progress=lambda done: bar(done, total))
    bar.finish()
    print(f"Exported {counted(result.entries, 'entry', 'entries')} to {result.path} ({result.format}, {counted(result.bytes, 'byte')}, "
          f"SHA-256 {result.sha256}).")
    if result.manifest is not None:
        print(f"Manifest: {result.manifest}")
    return 0


def cmd_import(store, args) -> int:
    path = Path(args.path)
    if args.format == "auto" and detect_format(path) == DATABASE_FORMAT:
        bar, progress = _progress("Importing", None)
        name = database_file.import_database(store, path, args.database, progress=progress)
        bar.finish()
        print(f"Imported {path} as the new database '{name}'.")
        return 0
    if not args.database:
        raise HashlensError(Failure.PARAM_MISSING, "Give the database to import into with --database NAME.",
                            parameter="database")
    options = ImportOptions(on_duplicate=args.on_duplicate, format=args.format, csv_dialect=args.csv_dialect)
    bar, progress = _progress("Importing", None)
    report = import_file(store, path, args.database, options, progress=progress)
    bar.finish()
    print("\n".join(report.lines()))
    return 0


def cmd_verify(store, args) -> int:
    verdict = manifest.verify(Path(args.manifest))
    if verdict.ok:
        print(verdict.message)
    else:
        print(f"hashlens: {verdict.message}", file=sys.stderr)
    return 0 if verdict.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """A parser with only these commands, for tests and tools that embed them."""
    parser = argparse.ArgumentParser(prog="hashlens")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser
