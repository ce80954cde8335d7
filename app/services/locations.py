"""Where a store URL points on this machine, for the window's "create it?" question."""

from __future__ import annotations

from pathlib import Path

from app.domain import HashlensError
from app.sources import scheme_of
from app.store.url import parse_store_url


def missing_store_file(url: str) -> Path | None:
    """The SQLite file `url` names when nothing exists there yet (so opening it would
    have to create it); None for an existing file, a server URL or a URL that does not
    parse (opening it then says what is wrong)."""
    if scheme_of(url) != "sqlite":
        return None
    try:
        location = parse_store_url(url)
    except HashlensError:
        return None
    path = location.path
    return None if path is None or path.exists() else path
