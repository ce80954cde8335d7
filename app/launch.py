"""Whether a lone command-line argument names a store to open: `hashlens PATH.db`, a file
manager's "Open with", the desktop entry's `%f`."""

from __future__ import annotations

import re
from pathlib import Path

# The names an SQLite store is usually given (ours); any existing file counts as well,
# and the store itself says whether it really is one when it is opened.
STORE_FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".hashlens")
# Any URL names a source (sqlite:///, postgresql://, mysql://, and schemes added later);
# whether its scheme is known is for the opener to say, in words.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def names_a_store(argument: str, commands=()) -> bool:
    """True when `argument` is a store path or URL rather than a command or an option."""
    if not argument or argument.startswith("-") or argument in commands:
        return False
    if _URL.match(argument):
        return True
    path = Path(argument)
    return path.suffix.lower() in STORE_FILE_SUFFIXES or path.is_file()


def store_to_open(argv: list[str], commands=()) -> str | None:
    """The store of `hashlens [--read-only] STORE`: one argument that names a store,
    beside nothing but --read-only; otherwise None (a command line to parse as usual)."""
    rest = [a for a in argv if a != "--read-only"]
    if len(rest) == 1 and names_a_store(rest[0], commands):
        return rest[0]
    return None
