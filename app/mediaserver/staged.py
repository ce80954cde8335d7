"""Staged changes on a mirror from the local side: taking them back (discard).

A mirror's local copy is its latest snapshot plus its unsettled staged changes, applied in
the order they were staged. Taking changes back removes them from the change-set and
rebuilds the local copy from the snapshot plus the changes that remain, in one
transaction with one journal record: a failed or killed discard leaves both as they were.

A move staged on mirror S puts the entry into the local copy of mirror T (another
database of the same server). Discarding that move takes the entry out of T again; and T
cannot be rebuilt on its own while S's change-set still moves entries into it (ours:
refused, with what to do).

The short reads of a change-set (is this a mirror, what is outstanding, how many per
mirror) are here too: the window asks them whenever the current database changes, and this
module loads without the Media Server client, the mirror pulls or the audits.
"""

from __future__ import annotations

from app.domain import Failure, HashlensError, MirrorSource
from app.mediaserver_codec import names
from app.store import changes, mirrors
from app.store.changes import StagedChange


def mirror_source(store, name: str) -> MirrorSource | None:
    """Where the mirror `name` comes from; None when `name` is not a mirror."""
    return mirrors.mirror_of(store, name)


def pending_counts(store) -> dict[str, int]:
    """Per mirror, how many staged changes are not yet on the server (the picker's counts)."""
    return changes.outstanding_counts(store)


def outstanding(store, mirror: str) -> list[StagedChange]:
    """The changes still to reach the server, in order."""
    return changes.outstanding(store, mirror)


def discard(store, mirror: str, last: int | None = None) -> list[StagedChange]:
    """Take back the last `last` outstanding changes of `mirror` (all when None)."""
    source = mirrors.mirror_of(store, mirror)
    if source is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{mirror}' is not a mirror of a Media Server; only a mirror "
                                                   "has staged changes.", parameter="name")
    waiting = changes.outstanding(store, mirror)
    count = len(waiting) if last is None else min(last, len(waiting))
    if not count:
        return []
    local_of = {(s.url, s.database): name for name, s, _ in mirrors.list_mirrors(store)}
    with store.writing():
        _refuse_incoming_moves(store, mirror, source, local_of)
        taken = changes.remove_last(store, mirror, count)
        for change in taken:
            if change.action == names.MOVE_IMAGE_HASH:
                _take_back_move(store, change, source, local_of)
        _rebuild(store, mirror, changes.change_set(store, mirror))
        store.record(names.DISCARD_IMAGE_HASH_CHANGES, mirror, None,
                     {"count": len(taken), "requests": [c.line() for c in taken]})
    return taken


def _refuse_incoming_moves(store, mirror: str, source, local_of: dict) -> None:
    for name, other, _ in mirrors.list_mirrors(store):
        if name == mirror or other.url != source.url:
            continue
        for change in changes.change_set(store, name):
            if change.action == names.MOVE_IMAGE_HASH and change.param("newdatabase") == source.database:
                raise HashlensError(
                    Failure.PARAM_INVALID,
                    f"'{name}' has a staged move of '{change.identifier}' into '{mirror}'; push or discard the "
                    f"changes of '{name}' first, then discard here. Nothing was discarded.", parameter="name")


def _take_back_move(store, change: StagedChange, source, local_of: dict) -> None:
    """The moved entry leaves the target mirror's local copy (it returns to the source's
    when that is rebuilt)."""
    target = local_of.get((source.url, change.param("newdatabase")))
    if target is None or not store.database_exists(target):
        return
    for other in changes.change_set(store, target):
        if other.identifier == change.identifier:
            raise HashlensError(
                Failure.PARAM_INVALID,
                f"'{change.identifier}' was moved to '{target}' and changed there since (staged change "
                f"{other.id}); discard that change in '{target}' first. Nothing was discarded.", parameter="last")
    if store.entry_exists(target, change.identifier):
        store.entries.remove_entry(target, change.identifier)


def _rebuild(store, mirror: str, remaining: list[StagedChange]) -> None:
    """The local copy := the latest snapshot, then each remaining change applied locally
    in the order it was staged (inside the caller's transaction; not journalled again)."""
    if not store.database_exists(mirror):
        return  # a mirror kept only as snapshots (a store before mirrors were databases): no local copy
    found = mirrors.snapshots(store, mirror)
    db_id = store.entries.database_id(mirror, lock=True)
    mirrors._clear_entries(store, db_id)
    if found:
        mirrors._fill(store, mirror, db_id, changes.snapshot_in_server_order(store, mirror, found[-1].number),
                      found[-1].taken_at, None)
    for change in remaining:
        _apply_locally(store, mirror, change)
    store.rebuild_marks(mirror)


def _apply_locally(store, mirror: str, change: StagedChange) -> None:
    e, ident, p = store.entries, change.identifier, change.param
    action = change.action
    if action == names.RELABEL_IMAGE_HASH_IMAGE:
        e.relabel(mirror, ident, p("imagelabel"), p("newimagelabel"))
    elif action == names.ADD_IMAGE_HASH_METADATA:
        e.add_metadata(mirror, ident, p("key"), p("value"))
    elif action == names.UPDATE_IMAGE_HASH_METADATA:
        e.update_metadata(mirror, ident, p("key"), p("newvalue"))
    elif action == names.REMOVE_IMAGE_HASH_METADATA:
        e.remove_metadata(mirror, ident, p("key"))
    elif action == names.RENAME_IMAGE_HASH:
        e.rename_entry(mirror, ident, p("newidentifier"))
    elif action == names.NULL_IMAGE_HASH_IMAGE_DATA:
        e.null_image_data(mirror, ident)
    elif action in (names.REMOVE_IMAGE_HASH, names.MOVE_IMAGE_HASH):
        # A staged move's entry is in the target mirror's copy already: here it only leaves.
        e.remove_entry(mirror, ident)
