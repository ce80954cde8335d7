"""The `hashlens` entry point: commands go to app.cli, no command opens the window."""

from __future__ import annotations

import sys


def _start_window(argv, store_url=None, read_only=False) -> int:
    # Imported here so that commands never load Qt.
    from ui.app import run

    return run(argv, store_url=store_url, read_only=read_only)


def main(argv=None) -> int:
    from app.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv, gui=_start_window)


if __name__ == "__main__":
    sys.exit(main())
