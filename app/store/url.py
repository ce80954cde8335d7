"""Store URLs: which backend, where, and how to connect to it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.domain import Failure, HashlensError

ENV_STORE = "HASHLENS_STORE"


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store URL. `path` is set for SQLite, the rest for servers."""

    backend: str  # "sqlite", "postgresql" or "mysql"
    url: str
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    name: str | None = None

    def display(self) -> str:
        """The URL without its password, for titles, logs and manifests."""
        if self.backend == "sqlite":
            return str(self.path)
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.backend}://{user}{self.host}{port}/{self.name}"


def default_store_path() -> Path:
    import platformdirs  # only when no store is named: about 9 ms of start-up otherwise

    return Path(platformdirs.user_data_dir("hashlens", appauthor=False)) / "hashlens.db"


def default_store_url() -> str:
    return "sqlite:///" + str(default_store_path())


def resolve_store_url(flag: str | None) -> str:
    """The --store flag wins over $HASHLENS_STORE, which wins over the default file."""
    return flag or os.environ.get(ENV_STORE) or default_store_url()


def parse_store_url(url: str) -> StoreLocation:
    """Parse `sqlite:///path`, `postgresql://…` or `mysql://…`; a bare path means SQLite.

    `sqlite:///relative.db` and `sqlite:////absolute.db` follow the SQLAlchemy and peewee
    convention. `sqlite://x.db` (two slashes) would silently mean an empty in-memory
    database elsewhere, so it is refused here."""

    def bad(why: str) -> HashlensError:
        return HashlensError(Failure.STORE_UNAVAILABLE, f"Store URL '{url}': {why}", parameter="store")

    if not url or not url.strip():
        raise bad("the URL is empty.")
    if "://" not in url:
        return StoreLocation("sqlite", url, path=Path(url).expanduser())
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///"):
            raise bad("an SQLite URL needs three slashes, as in sqlite:///path/to/store.db "
                      "(four for an absolute path: sqlite:////var/lib/hashlens.db).")
        raw = unquote(url[len("sqlite:///"):].split("?", 1)[0])
        if not raw or raw == ":memory:":
            raise bad("name a file; an in-memory store would vanish when Hashlens closes.")
        return StoreLocation("sqlite", url, path=Path(raw).expanduser())
    if scheme in ("postgresql", "postgres", "mysql", "mariadb"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise bad("name the database after the host, as in postgresql://user@host:5432/hashlens.")
        try:
            port = parts.port
        except ValueError:
            raise bad("the port is not a number.") from None
        return StoreLocation(
            "postgresql" if scheme.startswith("postgres") else "mysql",
            url,
            host=parts.hostname or "localhost",
            port=port,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            name=name,
        )
    raise bad(f"unknown scheme '{parts.scheme}'; use sqlite:///, postgresql:// or mysql://.")
