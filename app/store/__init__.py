"""The peewee store: schema, connections and every SQL statement."""

from app.store.drivers import import_peewee

import_peewee()  # first, so peewee never imports the server drivers itself (drivers.py)

from app.store.store import Store  # noqa: E402
from app.store.url import default_store_url, parse_store_url, resolve_store_url  # noqa: E402

__all__ = ["Store", "default_store_url", "parse_store_url", "resolve_store_url"]
