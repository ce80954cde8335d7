"""The window's remembered state in QSettings, always read with `type=`."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

from PySide6.QtCore import QByteArray, QSettings

from app.services.locations import missing_store_file

RECENT_LIMIT = 10


def strip_password(url: str) -> str:
    """Recent stores never keep a server password (it would sit in a plain settings file)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class Settings:
    """Typed access: a hand-edited 'false' must not read as true, a list of one must not
    read as a string, and a damaged value falls back to the default."""

    def __init__(self, settings: QSettings | None = None):
        self.q = settings or QSettings()

    def _bytes(self, key: str) -> QByteArray | None:
        value = self.q.value(key, None)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def state(self, name: str) -> QByteArray | None:
        return self._bytes(f"window/{name}")

    def set_state(self, name: str, value: QByteArray) -> None:
        self.q.setValue(f"window/{name}", value)

    def page_size(self, allowed=(50, 100, 500, 1000), default: int = 100) -> int:
        try:
            value = self.q.value("table/page_size", default, type=int)
        except (TypeError, ValueError):
            return default
        return value if value in allowed else default

    def set_page_size(self, size: int) -> None:
        self.q.setValue("table/page_size", int(size))

    def recent_stores(self) -> list[str]:
        """Recent stores, newest first; an SQLite file that no longer exists is dropped."""
        value = self.q.value("stores/recent", [], type=list)
        recent = [str(v) for v in value if v]
        kept = [url for url in recent if missing_store_file(url) is None]
        if kept != recent:
            self.q.setValue("stores/recent", kept[:RECENT_LIMIT])
        return kept[:RECENT_LIMIT]

    def clear_recent_stores(self) -> None:
        self.q.setValue("stores/recent", [])

    def add_recent_store(self, url: str) -> list[str]:
        url = strip_password(url)
        recent = [url] + [u for u in self.recent_stores() if u != url]
        self.q.setValue("stores/recent", recent[:RECENT_LIMIT])
        return recent[:RECENT_LIMIT]

    def theme(self) -> str:
        value = self.q.value("view/theme", "system", type=str)
        return value if value in ("system", "light", "dark") else "system"

    def set_theme(self, mode: str) -> None:
        self.q.setValue("view/theme", mode)

    def last_database(self, store: str) -> str | None:
        value = self.q.value(f"stores/last_database/{_key(store)}", "", type=str)
        return value or None

    def set_last_database(self, store: str, database: str) -> None:
        self.q.setValue(f"stores/last_database/{_key(store)}", database)

    def bool(self, key: str, default: bool) -> bool:
        return self.q.value(key, default, type=bool)

    def set_bool(self, key: str, value: bool) -> None:
        self.q.setValue(key, bool(value))

    def sync(self) -> None:
        self.q.sync()


def _key(text: str) -> str:
    # QSettings treats '/' and '\\' as group separators: key a store by a digest instead.
    return hashlib.sha1(strip_password(text).encode("utf-8")).hexdigest()[:20]
