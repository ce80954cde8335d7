"""Starts the desktop window."""

import sys


def main(argv=None) -> int:
    from ui.app import run

    return run(sys.argv[1:] if argv is None else argv)
