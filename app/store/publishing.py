"""What a publish sent to a Media Server: one durable mark per entry, so a broken publish resumes without training anything twice.

A publish (`app.mediaserver.publish`) trains a local database's entries into a Media
Server database. Before a TrainImageHash leaves Hashlens its entry is marked `sent` here,
in a committed transaction; once the server's listing shows the entry the mark becomes
`confirmed`; a training the server refused becomes `failed` with the server's words. Each
mark's change is also a journal record in the same transaction, so the journal holds
every training sent and its outcome. A mark left `sent` (a crash, a kill, a lost connection between sending and answering) means
"may or may not have taken effect": the next run checks the server before sending it again.

The tables are created the first time a store publishes; older versions of Hashlens
ignore them.
"""

from __future__ import annotations

from peewee import AutoField, BigAutoField, BigIntegerField, CharField, ForeignKeyField, TextField

from app.mediaserver_codec import names
from app.store.schema import BaseModel, NameField
from app.store.sql import chunks
from app.store.store import Store

SENT, CONFIRMED, FAILED = "sent", "confirmed", "failed"


class Publication(BaseModel):
    """One local database published to one Media Server database."""

    id = AutoField()
    local_database = NameField(max_length=254)
    server_url = TextField()
    remote_database = NameField(max_length=254)
    created_at = BigIntegerField()

    class Meta:
        table_name = "hl_publication"


class PublishItem(BaseModel):
    """The mark of one entry of a publication: sent, confirmed or failed."""

    id = BigAutoField()
    publication = ForeignKeyField(Publication, column_name="publication_id", on_delete="CASCADE", index=False)
    identifier = NameField(max_length=254)
    state = CharField(max_length=16)
    token = TextField(null=True)
    error = TextField(null=True)
    sent_at = BigIntegerField()
    done_at = BigIntegerField(null=True)

    class Meta:
        table_name = "hl_publish_item"
        indexes = ((("publication", "identifier"), True),)


TABLES = [Publication, PublishItem]


def _has_tables(store: Store) -> bool:
    return store.db.table_exists("hl_publish_item")


def _ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def publication(store: Store, database: str, server_url: str, remote_database: str, *, now: int) -> int:
    """The key of the publication of `database` to `server_url`/`remote_database`, made if new."""
    _ensure_tables(store)
    query = "SELECT id FROM hl_publication WHERE local_database = ? AND server_url = ? AND remote_database = ?"
    params = (database, server_url, remote_database)
    row = store.sql.one(query, params)
    if row is not None:
        return row[0]
    with store.writing():
        row = store.sql.one(query, params)
        if row is not None:
            return row[0]
        return store.sql.insert(
            "INSERT INTO hl_publication (local_database, server_url, remote_database, created_at) VALUES (?, ?, ?, ?)",
            (database, server_url, remote_database, now))


def _journal(store: Store, publication_id: int, outcomes: list[tuple[str, str, dict]]) -> None:
    """(identifier, outcome, extra) as journal records of the local database; call inside
    the marks' own transaction."""
    database, server, remote = store.sql.one(
        "SELECT local_database, server_url, remote_database FROM hl_publication WHERE id = ?", (publication_id,))
    for identifier, outcome, extra in outcomes:
        store.record(names.PUBLISH_IMAGE_HASH, database, identifier,
                     {"outcome": outcome, "server": server, "database": remote, **extra})


def mark_sent(store: Store, publication_id: int, identifiers: list[str], *, now: int) -> None:
    """Mark entries `sent`, committed before any of them is sent (replacing earlier marks)."""
    with store.writing():
        _journal(store, publication_id, [(identifier, SENT, {}) for identifier in identifiers])
        for chunk in chunks(identifiers):
            marks = ", ".join("?" * len(chunk))
            store.sql.exec(f"DELETE FROM hl_publish_item WHERE publication_id = ? AND identifier IN ({marks})",
                           (publication_id, *chunk))
        for identifier in identifiers:
            store.sql.exec("INSERT INTO hl_publish_item (publication_id, identifier, state, sent_at) "
                           "VALUES (?, ?, ?, ?)", (publication_id, identifier, SENT, now))


def record(store: Store, publication_id: int, outcomes: list[tuple[str, str, str | None, str | None]], *,
           now: int) -> None:
    """Record (identifier, state, token, error) for marked entries, in one transaction.
    The state `sent` with a token keeps the mark open but remembers the token."""
    if not outcomes:
        return
    with store.writing():
        _journal(store, publication_id, [
            (identifier, "queued" if state == SENT else state,
             {k: v for k, v in (("token", token), ("error", error)) if v is not None})
            for identifier, state, token, error in outcomes])
        for identifier, state, token, error in outcomes:
            store.sql.exec(
                "UPDATE hl_publish_item SET state = ?, token = COALESCE(?, token), error = ?, done_at = ? "
                "WHERE publication_id = ? AND identifier = ?",
                (state, token, error, None if state == SENT else now, publication_id, identifier))


def forget(store: Store, publication_id: int, identifiers: list[str], outcome: str = "not on the server") -> None:
    """Drop the marks of entries found not to be on the server, or never sent (nothing was
    trained); `outcome` says which, for the journal."""
    if not identifiers:
        return
    with store.writing():
        _journal(store, publication_id, [(identifier, outcome, {}) for identifier in identifiers])
        for chunk in chunks(identifiers):
            marks = ", ".join("?" * len(chunk))
            store.sql.exec(f"DELETE FROM hl_publish_item WHERE publication_id = ? AND identifier IN ({marks})",
                           (publication_id, *chunk))


def open_marks(store: Store, publication_id: int) -> list[tuple[str, str | None]]:
    """(identifier, token) of every entry marked `sent` and not yet resolved."""
    return [(r[0], r[1]) for r in store.sql.all(
        "SELECT identifier, token FROM hl_publish_item WHERE publication_id = ? AND state = ? ORDER BY id",
        (publication_id, SENT))]


def states(store: Store, database: str, server_url: str, remote_database: str) -> dict[str, tuple[str, str | None]]:
    """Every mark of a publication: identifier -> (state, error). For reports and tests."""
    if not _has_tables(store):
        return {}
    rows = store.sql.all(
        "SELECT i.identifier, i.state, i.error FROM hl_publish_item i JOIN hl_publication p "
        "ON p.id = i.publication_id WHERE p.local_database = ? AND p.server_url = ? AND p.remote_database = ?",
        (database, server_url, remote_database))
    return {r[0]: (r[1], r[2]) for r in rows}
