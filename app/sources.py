"""Opening sources by URL: the one opener, its scheme registry, and what the window needs.

`open_source(url)` looks at the URL's scheme and hands it to the opener registered for
it; the SQL store registers `sqlite`, `postgresql` (and `postgres`), `mysql` (and
`mariadb`), and a path with no scheme means SQLite, as it always has. A new kind of
source is one `register_scheme` call in its own module, plus an import here.

The window (`ui/`) never imports `app.store`: the default store URL, the schema-version
policy and migration are offered here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from app.domain import Failure, HashlensError
from app.source import SchemaPolicy, SchemaStanding, Source, schema_version_policy
from app.store.schema import SCHEMA_VERSION
from app.store.url import ENV_STORE, default_store_url, resolve_store_url

__all__ = [
    "ENV_STORE",
    "SCHEMA_VERSION",
    "SchemaPolicy",
    "SchemaStanding",
    "Source",
    "default_store_url",
    "migrate",
    "open_source",
    "register_scheme",
    "registered_schemes",
    "resolve_store_url",
    "schema_policy",
]

#: An opener takes the URL and the open_source keywords and returns an open Source.
Opener = Callable[..., Source]

_OPENERS: dict[str, Opener] = {}
# A URL without "://" is a file path; which scheme such a path means.
_PATH_SCHEME = "sqlite"


def register_scheme(scheme: str, opener: Opener) -> None:
    """Make `scheme://…` URLs open with `opener(url, read_only=…, create=…)`. Schemes
    compare without case; registering a scheme again replaces its opener."""
    _OPENERS[scheme.lower()] = opener


def registered_schemes() -> list[str]:
    return sorted(_OPENERS)


def scheme_of(url: str) -> str:
    """The URL's scheme in lower case; a bare path is an SQLite file."""
    if not url or "://" not in url:
        return _PATH_SCHEME
    return urlsplit(url).scheme.lower()


def open_source(url: str, *, read_only: bool = False, create: bool = False) -> Source:
    """Open the source at `url`.

    With `create=False` (the default) only an existing source is opened: a missing file
    is an error and nothing is made. Only the commands that create (`db create`,
    `sample`, `train`, `import`, the default store on first start, File > New store)
    pass `create=True`. `read_only=True` never changes anything, not even a file's
    journal mode."""
    if not url or not url.strip():
        raise HashlensError(Failure.STORE_UNAVAILABLE, "Store URL '': the URL is empty.", parameter="store")
    scheme = scheme_of(url)
    opener = _OPENERS.get(scheme)
    if opener is None:
        known = ", ".join(f"{s}://" for s in registered_schemes())
        raise HashlensError(
            Failure.STORE_UNAVAILABLE, f"Store URL '{url}': unknown scheme '{scheme}'; use one of {known}.",
            parameter="store",
        )
    return opener(url, read_only=read_only, create=create)


def schema_policy(found: int | None) -> SchemaPolicy:
    """The schema-version policy for a store at version `found` against this Hashlens."""
    return schema_version_policy(found, SCHEMA_VERSION)


def migrate(url: str, backup_to: Path | None = None) -> tuple[int | None, int | None, Path | None]:
    """Bring the SQL store at `url` up to this version's schema, after a backup (an SQLite
    store is copied first). Returns (version before, version after, backup path)."""
    store = open_source(url)
    try:
        before = getattr(store, "schema_version", None)
        migrator = getattr(store, "migrate", None)
        if migrator is None:
            raise HashlensError(Failure.NOT_IMPLEMENTED, f"{store.describe()} has no schema to migrate.")
        backup = migrator(backup_to)
        return before, getattr(store, "schema_version", None), backup
    finally:
        store.close()


def _open_sql_store(url: str, *, read_only: bool = False, create: bool = False) -> Source:
    from app.store import Store

    return Store.open(url, read_only=read_only, create=create)


for _scheme in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
    register_scheme(_scheme, _open_sql_store)
