"""A mirror's change-set: the Media Server actions staged against it, in order, with what became of each when pushed.

Each row is one action as it will be sent (Media Server's name and parameters, in the
server's terms: `database` is the remote database), the facts an undo needs that the
action itself does not carry (`prior`, e.g. a metadata value before its update), and
its state:

- `pending`: staged, never sent (or proven not to have taken effect after a lost answer);
- `sent`: recorded durably *before* the request leaves; if the push stops here (a crash,
  a lost connection) the next push checks the server before sending it again;
- `confirmed`: the server answered SUCCESS and a listing shows the effect (or a listing
  after a lost answer showed it had taken effect);
- `failed`: the server answered ERROR (its `errordescription` is kept), or showed neither
  the state before nor the state after. Never sent again unless a person asks.

Rows stay after a push: when every row is confirmed the mirror takes a fresh snapshot
and the rows are marked settled by that snapshot's number (history; the change-set
proper is the unsettled rows). Every state change is its own committed transaction with
a journal record, so the journal holds every action sent and its outcome.

The table is created the first time a store stages a change, like the mirror tables
(`app.store.mirrors`): stores without it have no change-sets, and older versions of
Hashlens ignore it (ours).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from peewee import BigAutoField, BigIntegerField, CharField, IntegerField, TextField

from app.domain import Failure, HashlensError
from app.mediaserver_codec import names
from app.mediaserver_codec.request import aci_line
from app.store.journal import now_ms
from app.store.schema import BaseModel, NameField
from app.store.store import Store

PENDING, SENT, CONFIRMED, FAILED = "pending", "sent", "confirmed", "failed"
STATES = (PENDING, SENT, CONFIRMED, FAILED)

# The actions a change-set may hold: Media Server's synchronous writes (MS).
STAGEABLE = (
    names.RELABEL_IMAGE_HASH_IMAGE, names.ADD_IMAGE_HASH_METADATA, names.UPDATE_IMAGE_HASH_METADATA,
    names.REMOVE_IMAGE_HASH_METADATA, names.RENAME_IMAGE_HASH, names.MOVE_IMAGE_HASH,
    names.NULL_IMAGE_HASH_IMAGE_DATA, names.REMOVE_IMAGE_HASH,
)


class Change(BaseModel):
    """One staged Media Server action of a mirror."""

    id = BigAutoField()
    mirror = NameField(max_length=254)
    action = CharField(max_length=64)
    params = TextField()  # JSON list of [name, value] pairs, in the order they are sent
    prior = TextField(default="{}")  # JSON object: what reversing the action needs
    state = CharField(max_length=16, default=PENDING)
    error = TextField(null=True)
    created_at = BigIntegerField()
    sent_at = BigIntegerField(null=True)
    done_at = BigIntegerField(null=True)
    attempts = IntegerField(default=0)  # how many times the request left Hashlens
    # The order in which changes took effect on the server: a change that failed and was
    # sent again on a later push takes effect after those confirmed meanwhile.
    confirmed_seq = BigIntegerField(null=True)
    settled = IntegerField(null=True)  # the snapshot that holds its effect, once pushed

    class Meta:
        table_name = "hl_change"
        indexes = ((("mirror", "settled", "id"), False),)


@dataclass(frozen=True)
class StagedChange:
    """A change-set row as the engine, the command line and the window use it."""

    id: int
    mirror: str
    action: str
    params: tuple[tuple[str, str], ...]
    prior: dict = field(default_factory=dict)
    state: str = PENDING
    error: str | None = None
    created_at: int = 0
    sent_at: int | None = None
    done_at: int | None = None
    attempts: int = 0
    confirmed_seq: int | None = None

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    @property
    def database(self) -> str:
        return self.param("database") or ""

    @property
    def identifier(self) -> str:
        return self.param("identifier") or ""

    def line(self) -> str:
        """The request as an ACI line: `action=Name&database=…` percent-encoded."""
        return aci_line(self.action, list(self.params))


_COLUMNS = "id, mirror, action, params, prior, state, error, created_at, sent_at, done_at, attempts, confirmed_seq"


def _row(r) -> StagedChange:
    return StagedChange(int(r[0]), r[1], r[2], tuple((k, v) for k, v in json.loads(r[3])), json.loads(r[4] or "{}"),
                        r[5], r[6], int(r[7]), r[8], r[9], int(r[10] or 0), r[11])


class PushLease(BaseModel):
    """Who is pushing a mirror now: one push at a time, or a second push could take the
    first one's request in flight for a lost answer and send it again."""

    mirror = NameField(max_length=254, primary_key=True)
    holder = TextField()  # host:pid:token
    since = BigIntegerField()

    class Meta:
        table_name = "hl_push_lease"


TABLES = [Change, PushLease]


def has_table(store: Store) -> bool:
    return store.db.table_exists("hl_push_lease") and store.db.table_exists("hl_change")


def ensure_table(store: Store) -> None:
    """Create the change-set tables if this store has none yet."""
    store.ensure_tables(TABLES)


def _holder_alive(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname():
        return True  # cannot tell from here: assume it still runs
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def acquire_lease(store: Store, mirror: str, *, take_over: bool = False) -> str:
    """Become the one push of `mirror`; returns the holder token for `release_lease`. A
    lease whose process is gone (same host) is taken over; a live one refuses, unless
    `take_over` (for a push on another host that is known to be gone)."""
    ensure_table(store)
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    with store.writing():
        row = store.sql.one("SELECT holder, since FROM hl_push_lease WHERE mirror = ?" + store.entries.lock, (mirror,))
        if row is not None and not take_over and _holder_alive(row[0]):
            host, _, rest = row[0].partition(":")
            raise HashlensError(
                Failure.STORE_BUSY,
                f"Another push of '{mirror}' is running (process {rest.partition(':')[0]} on {host}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(row[1] / 1000))}); wait for it to end. If it is "
                "gone (its machine stopped), push with --take-over.", parameter="name")
        store.sql.exec("DELETE FROM hl_push_lease WHERE mirror = ?", (mirror,))
        store.sql.exec("INSERT INTO hl_push_lease (mirror, holder, since) VALUES (?, ?, ?)", (mirror, holder, now_ms()))
    return holder


def release_lease(store: Store, mirror: str, holder: str) -> None:
    with store.writing():
        store.sql.exec("DELETE FROM hl_push_lease WHERE mirror = ? AND holder = ?", (mirror, holder))


def append(store: Store, mirror: str, action: str, params: Iterable[tuple[str, str]], prior: dict | None = None) -> int:
    """Stage one action at the end of `mirror`'s change-set. Call inside the transaction
    that changes the local copy (the table must exist: `ensure_table` first), so the
    local change and its staged action are committed together or not at all."""
    if action not in STAGEABLE:
        raise HashlensError(Failure.PARAM_INVALID, f"{action} cannot be staged on a mirror.", parameter="action")
    pairs = [[k, str(v)] for k, v in params if v is not None]
    return store.sql.insert(
        "INSERT INTO hl_change (mirror, action, params, prior, state, created_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 0)",
        (mirror, action, json.dumps(pairs, ensure_ascii=False), json.dumps(prior or {}, ensure_ascii=False),
         PENDING, now_ms()))


def change_set(store: Store, mirror: str) -> list[StagedChange]:
    """The mirror's unsettled changes in the order they were staged (confirmed ones
    included until the snapshot after the push settles them)."""
    if not has_table(store):
        return []
    rows = store.sql.all(f"SELECT {_COLUMNS} FROM hl_change WHERE mirror = ? AND settled IS NULL ORDER BY id",
                         (mirror,))
    return [_row(r) for r in rows]


def outstanding(store: Store, mirror: str) -> list[StagedChange]:
    """What is still to reach the server: every unsettled change not yet confirmed."""
    return [c for c in change_set(store, mirror) if c.state != CONFIRMED]


def outstanding_counts(store: Store) -> dict[str, int]:
    """Per mirror, how many changes are not yet confirmed (the picker's counts)."""
    if not has_table(store):
        return {}
    rows = store.sql.all("SELECT mirror, COUNT(*) FROM hl_change WHERE settled IS NULL AND state <> ? GROUP BY mirror",
                         (CONFIRMED,))
    return {name: int(n) for name, n in rows}


def get(store: Store, change_id: int) -> StagedChange:
    row = store.sql.one(f"SELECT {_COLUMNS} FROM hl_change WHERE id = ?", (change_id,))
    if row is None:
        raise HashlensError(Failure.PARAM_INVALID, f"There is no staged change {change_id}.")
    return _row(row)


def _journal(store: Store, change: StagedChange, outcome: str, extra: dict) -> None:
    params = {"outcome": outcome, "change": change.id, "action": change.action,
              "request": change.line(), **extra}
    store.record(names.PUSH_IMAGE_HASH_CHANGE, change.mirror, change.identifier or None, params)


def mark_sent(store: Store, change: StagedChange, server: str) -> StagedChange:
    """Record, durably, that the request is about to leave: committed before it is sent."""
    with store.writing():
        store.sql.exec("UPDATE hl_change SET state = ?, sent_at = ?, attempts = attempts + 1, error = NULL "
                       "WHERE id = ?", (SENT, now_ms(), change.id))
        _journal(store, change, SENT, {"server": server})
    return get(store, change.id)


def mark_done(store: Store, change: StagedChange, state: str, server: str, note: str | None = None) -> StagedChange:
    """Record the outcome of a sent change: confirmed, failed (with the server's words),
    or pending again (proven not to have taken effect, so it may be sent again)."""
    if state not in (CONFIRMED, FAILED, PENDING):
        raise ValueError(state)
    with store.writing():
        seq = None
        if state == CONFIRMED:
            seq = (store.sql.one("SELECT MAX(confirmed_seq) FROM hl_change WHERE mirror = ?", (change.mirror,))[0]
                   or 0) + 1
        store.sql.exec("UPDATE hl_change SET state = ?, done_at = ?, error = ?, confirmed_seq = ? WHERE id = ?",
                       (state, now_ms(), note, seq, change.id))
        _journal(store, change, state, {"server": server, **({"note": note} if note else {})})
    return get(store, change.id)


def settle(store: Store, mirror: str, snapshot: int) -> int:
    """Mark the mirror's confirmed changes as held by `snapshot` (taken after the push)."""
    if not has_table(store):
        return 0
    with store.writing():
        cursor = store.sql.exec("UPDATE hl_change SET settled = ? WHERE mirror = ? AND settled IS NULL AND state = ?",
                                (snapshot, mirror, CONFIRMED))
        return cursor.rowcount


def remove_last(store: Store, mirror: str, count: int) -> list[StagedChange]:
    """Take the last `count` outstanding changes out of the change-set (inside the
    caller's transaction, which also puts the local copy back). Pending and failed ones
    may go (the server holds no effect of them); a sent one whose answer never came may
    not: the server may hold its effect, and only a push can find out."""
    rows = outstanding(store, mirror)
    taken = rows[len(rows) - count:] if count else []
    for change in taken:
        if change.state == SENT:
            raise HashlensError(
                Failure.PARAM_INVALID,
                f"Change {change.id} ({change.action} of '{change.identifier}') was sent to the server and its "
                "answer never came; the server may hold its effect, so it cannot be discarded. Push again: the "
                "push checks the server and settles it.", parameter="last")
    for change in taken:
        store.sql.exec("DELETE FROM hl_change WHERE id = ?", (change.id,))
    return taken


# -- staging a local write on a mirror ------------------------------------------------------------

# A local write action and the Media Server action it stages (the store's journal names
# are Media Server's already); TrainImageHash and the database actions are not staged.
_PRIOR_VALUE = (names.UPDATE_IMAGE_HASH_METADATA, names.REMOVE_IMAGE_HASH_METADATA)


def is_mirror(store: Store, database: str | None) -> bool:
    from app.store import mirrors

    return database is not None and mirrors.mirror_of(store, database) is not None


def stager(store: Store, action: str, database: str | None, identifier: str | None, params: dict):
    """For a write action on a mirror: a callable that stages its Media Server action,
    to be called inside the write's own transaction right after the local change (so the
    two commit together); None when `database` is not a mirror. Reads what the reverse
    needs (a metadata value before it changes) now, before the change. Refuses what
    cannot be staged: a move between a mirror and anything but a mirror of the same
    server database's server."""
    from app.store import mirrors  # the mirror mark lives beside the snapshots

    if database is None or action not in STAGEABLE:
        return None  # the other writes refuse a mirror (Store.refuse_mirror_write)
    source = mirrors.mirror_of(store, database)
    if source is None:
        return None
    target_name = params.get("newdatabase") if action == names.MOVE_IMAGE_HASH else None
    target = mirrors.mirror_of(store, target_name) if target_name else None
    sent: list[tuple[str, str]] = [("database", source.database), ("identifier", identifier or "")]
    for name, value in params.items():
        if name == "newdatabase":
            if target is None or target.url != source.url:
                raise HashlensError(
                    Failure.READ_ONLY,
                    f"'{database}' is a mirror of {source.describe()}, so its entries can be moved only to another "
                    f"mirror of the same server (MoveImageHash moves within one server), and '{value}' is not one.",
                    parameter="database")
            value = target.database
        sent.append((name, value))
    prior = {}
    if action in _PRIOR_VALUE:
        row = store.sql.one(
            "SELECT m.meta_value FROM hl_metadata m JOIN hl_entry e ON e.id = m.entry_id "
            "JOIN hl_database d ON d.id = e.database_id WHERE d.name = ? AND e.identifier = ? AND m.meta_key = ?",
            (database, identifier, params.get("key")))
        if row is not None:
            prior["value"] = row[0]

    def stage() -> None:
        append(store, database, action, sent, prior)

    return stage


def snapshot_in_server_order(store: Store, mirror: str, number: int):
    """A snapshot's entries in the order the server listed them (the rows' key order), a
    batch at a time: what a mirror's local copy is rebuilt from when changes are taken back."""
    from app.diff import DiffEntry

    row = store.sql.one("SELECT s.id FROM hl_snapshot s JOIN hl_mirror m ON m.id = s.mirror_id "
                        "WHERE m.name = ? AND s.number = ?", (mirror, number))
    if row is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{mirror}' has no snapshot {number}.", parameter="database")
    after = 0
    while True:
        rows = store.sql.all("SELECT id, identifier, label, has_image_data, metadata FROM hl_snapshot_entry "
                             "WHERE snapshot_id = ? AND id > ? ORDER BY id" + store.sql.limit(5000), (row[0], after))
        for _, identifier, label, has_image_data, metadata in rows:
            yield DiffEntry(identifier, label, None if has_image_data is None else bool(has_image_data), metadata)
        if len(rows) < 5000:
            return
        after = rows[-1][0]
