"""Staged changes on a mirror from the local side: taking them back (discard).

A mirror's local copy is its latest snapshot plus its staged changes; taking changes
back removes them from the change-set and puts the local copy back to the snapshot plus
the changes that remain, in one transaction with one journal record.
"""

from __future__ import annotations

from app.domain import Failure, HashlensError
from app.mediaserver_codec import names
from app.store import changes, mirrors
from app.store.changes import StagedChange


def discard(store, mirror: str, last: int | None = None) -> list[StagedChange]:
    """Take back the last `last` outstanding changes of `mirror` (all when None)."""
    if mirrors.mirror_of(store, mirror) is None:
        raise HashlensError(Failure.PARAM_INVALID, f"'{mirror}' is not a mirror of a Media Server; only a mirror "
                                                   "has staged changes.", parameter="name")
    waiting = changes.outstanding(store, mirror)
    count = len(waiting) if last is None else min(last, len(waiting))
    if not count:
        return []
    with store.writing():
        taken = changes.remove_last(store, mirror, count)
        store.record(names.DISCARD_IMAGE_HASH_CHANGES, mirror, None,
                     {"count": len(taken), "requests": [c.line() for c in taken]})
    return taken
