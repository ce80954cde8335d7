"""The public SQL runner: every statement Hashlens sends to a store goes through it.

Queries are plain SQL with `?` placeholders and bound parameters rather than peewee query
objects: a page of fifty rows through model instances costs about ten times raw
`sqlite3`, and the hot paths (listing, paging, exports) must stay within a small factor
of it. The runner turns placeholders into the driver's, translates driver errors into
HashlensErrors, and reads text another program stored as bytes that are not UTF-8.
The store's modules, the audit's queries and bulk loads all use it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

import peewee

from app.domain import HashlensError
from app.store.dialect import HashlensDialect
from app.store.errors import translate

# Bound parameters per IN list, well under SQLite's default limit of 32766 and
# MySQL's/PostgreSQL's 65535 (reliability P2).
IN_CHUNK = 900


def chunks(items: Iterable, size: int = IN_CHUNK):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _tolerant_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class SqlRunner:
    """Runs portable SQL on one store's peewee database (one connection per thread)."""

    def __init__(self, db: HashlensDialect, describe: Callable[[], str],
                 confirm_damage: Callable[[HashlensError], HashlensError] | None = None):
        self.db = db
        self.dialect = db
        self._describe = describe
        self._confirm_damage = confirm_damage

    def translate(self, exc: BaseException) -> HashlensError:
        """A driver error as the HashlensError to raise. An error that looks like damage
        is only reported as damage once the store's own check proves it."""
        error = translate(exc, self._describe())
        if getattr(error, "suspect", None) and self._confirm_damage is not None:
            error = self._confirm_damage(error)
        return error

    def limit(self, limit: int | None, offset: int = 0) -> str:
        return self.db.limit(limit, offset)

    def exec(self, sql: str, params=()):
        """Run one statement; returns the driver's cursor."""
        try:
            return self.db.execute_sql(self.db.placeholders(sql), params)
        except peewee.DatabaseError as exc:
            raise self.translate(exc) from exc

    def one(self, sql: str, params=()):
        return self._fetch(sql, params, "fetchone")

    def all(self, sql: str, params=()) -> list:
        return self._fetch(sql, params, "fetchall")

    def _fetch(self, sql: str, params, how: str):
        try:
            return getattr(self.exec(sql, params), how)()
        except (peewee.DatabaseError, sqlite3.DatabaseError) as exc:
            # sqlite3 raises from fetchall() itself (a damaged page), outside peewee's wrapper.
            if not self.db.tolerant_text or "could not decode" not in str(exc).lower():
                raise self.translate(exc) from exc
        except Exception as exc:
            if not self.db.tolerant_text or "could not decode" not in str(exc).lower():
                raise
        # Another program stored bytes that are not UTF-8 as TEXT; by default that fails
        # the whole read (reliability S4). Read them with surrogate escapes instead: the
        # listing works, and any export refuses exactly the undecodable entry by name.
        conn = self.db.connection()
        conn.text_factory = _tolerant_text
        try:
            return getattr(self.exec(sql, params), how)()
        finally:
            conn.text_factory = str

    def insert(self, sql: str, params) -> int:
        """Run an INSERT and return the new row's id."""
        if self.db.returning_clause:
            return self.one(sql + " RETURNING id", params)[0]
        return self.exec(sql, params).lastrowid

    def executemany(self, sql: str, rows: list) -> None:
        try:
            self.db.cursor().executemany(self.db.placeholders(sql), rows)
        except Exception as exc:  # driver-specific error classes from executemany
            raise self.translate(exc) from exc
