"""The journal: one row per change, written in the change's own transaction."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Iterator

from app.domain import JournalEntry
from app.mediaserver_codec import names
from app.store.sql import SqlRunner

# Actions that can name a database only in their parameters (the move's target, the
# rename's new name): a journal range for one database includes them, filtered by `touches`.
_NAMING_IN_PARAMS = (names.MOVE_IMAGE_HASH, names.RENAME_IMAGE_HASH_DATABASE)


def now_ms() -> int:
    return int(time.time() * 1000)


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers and services
        return "unknown"


def journal_entry(r) -> JournalEntry:
    """A journal row (id, at_ms, username, action, database_name, identifier, params)."""
    try:
        params = json.loads(r[6]) if r[6] else {}
    except ValueError:  # written by another program: show it rather than fail
        params = {"raw": r[6]}
    return JournalEntry(int(r[1]), r[2], r[3], r[4], r[5], params if isinstance(params, dict) else {"value": params})


def touches(entry: JournalEntry, database: str) -> bool:
    """Whether a journal entry changed `database` (a move names its target in params)."""
    return entry.database == database or entry.params.get("newdatabase") == database


class Journal:
    """Reads and appends the hl_journal table through a store's runner."""

    def __init__(self, sql: SqlRunner):
        self.sql = sql

    def record(self, action: str, database: str | None, identifier: str | None, params: dict) -> None:
        """Append one change; call inside the change's own transaction."""
        self.sql.exec(
            "INSERT INTO hl_journal (at_ms, username, action, database_name, identifier, params) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (now_ms(), _current_user(), action, database, identifier, json.dumps(params, ensure_ascii=False)),
        )

    def record_many(self, action: str, database: str | None, changes: list[tuple[str | None, dict]]) -> None:
        """Append one change per (identifier, params), in one statement; inside the
        changes' own transaction."""
        at, user = now_ms(), _current_user()
        self.sql.executemany(
            "INSERT INTO hl_journal (at_ms, username, action, database_name, identifier, params) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(at, user, action, database, identifier, json.dumps(params, ensure_ascii=False))
             for identifier, params in changes],
        )

    @staticmethod
    def where(since: int | None, until: int | None, database: str | None) -> tuple[str, list]:
        """The WHERE clause of a journal range; a database also matches the moves and
        renames that name it only in their parameters (filtered exactly by `touches`)."""
        clauses, params = ["1 = 1"], []
        if since is not None:
            clauses.append("at_ms >= ?")
            params.append(since)
        if until is not None:
            clauses.append("at_ms < ?")
            params.append(until)
        if database is not None:
            naming = ", ".join(f"'{a}'" for a in _NAMING_IN_PARAMS)
            clauses.append(f"(database_name = ? OR action IN ({naming}))")
            params.append(database)
        return " AND ".join(clauses), params

    def iter(self, since: int | None = None, until: int | None = None, database: str | None = None,
             batch: int = 5000) -> Iterator[list[JournalEntry]]:
        """The journal in the order changes were made, a batch at a time (keyset on id)."""
        where, params = self.where(since, until, database)
        sql = (
            "SELECT id, at_ms, username, action, database_name, identifier, params FROM hl_journal "
            f"WHERE {where} AND id > ? ORDER BY id" + self.sql.limit(batch)
        )
        after = -1
        while True:
            rows = self.sql.all(sql, [*params, after])
            if not rows:
                return
            entries = [journal_entry(r) for r in rows]
            if database is not None:
                entries = [e for e in entries if touches(e, database)]
            if entries:
                yield entries
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def history(self, since: int | None = None, until: int | None = None, limit: int | None = None,
                database: str | None = None) -> list[JournalEntry]:
        found: list[JournalEntry] = []
        for batch in self.iter(since, until, database):
            found.extend(batch)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def change_token(self) -> int:
        """Grows whenever anyone changes the store: windows poll it to notice others' edits."""
        row = self.sql.one("SELECT MAX(id) FROM hl_journal")
        return row[0] or 0
