"""The peewee store: schema, connections and every SQL statement."""

from app.store.store import Store
from app.store.url import default_store_url, parse_store_url, resolve_store_url

__all__ = ["Store", "default_store_url", "parse_store_url", "resolve_store_url"]
