"""Starts the desktop window: `hashlens-gui [--store URL] [--read-only] [STORE]`."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hashlens-gui", description="Browse image-hash databases in a window.",
                                     epilog="STORE: an SQLite store file or a store URL to open (as --store); "
                                            "this is what the desktop entry passes.")
    parser.add_argument("--store", metavar="URL", help="sqlite:///path.db, postgresql://… or mysql://… "
                        "(default: $HASHLENS_STORE, then the per-user store)")
    parser.add_argument("--read-only", action="store_true", help="open the store read-only; every change is disabled")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    # The store is told apart from Qt's own arguments (`-platform offscreen`) by its look.
    from app.launch import names_a_store

    stores = [a for a in rest if names_a_store(a)]
    qt_args = [a for a in rest if a not in stores[:1]]

    from ui.app import run

    return run(qt_args, store_url=args.store or next(iter(stores), None), read_only=args.read_only)


def cli(argv=None) -> int:
    """`hashlens`: the command line, and the window when no subcommand is given. Qt is
    imported only on that path, so the command line stays free of it."""
    from app.cli import main as cli_main

    def gui(qt_args, store_url=None, read_only=False):
        from ui.app import run

        return run(qt_args, store_url=store_url, read_only=read_only)

    return cli_main(argv, gui=gui)


if __name__ == "__main__":
    sys.exit(main())
