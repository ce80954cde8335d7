"""A pull's staging file: entries as they arrive, on disk, until the whole pull is proven and can be stored at once.

A pull into a PostgreSQL or MariaDB store (and the listing `hashlens publish` checks)
stages here: staging outside the store keeps the store's write transaction short (it
opens only once the pull is complete) and keeps memory flat. The file is a SQLite
database of one table without indexes (`app.store.mirrors.STAGED_TABLE`: server
position, identifier, label, hasimagedata, metadata as the JSON text a snapshot keeps),
written a page per transaction with no journal. A SQLite store attaches it and derives
every row of the commit in SQL (`mirrors.commit_snapshot`); other stores read it back in
server order. A pull into a SQLite store does not stage: `StoreStaging` hands each page
to `mirrors.SnapshotWriter`, which stores it while the next page is read.

Only this process writes the file, in the temporary folder, and removes it when the pull
ends. A killed pull cannot, so a new staging file first removes those whose process
(named in the file name) is gone.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.mediaserver_codec.reader import ImageStatus, ListedEntry
from app.diff import DiffEntry, metadata_json
from app.store.mirrors import STAGED_TABLE

_PREFIX = "hashlens-pull-"
_NO_IMAGE = ImageStatus(None, None, None)
_SUFFIX = ".sqlite"


class Staging:
    """A PullSink on a temporary SQLite file. Use as a context manager. `path` is the
    file (for `mirrors.commit_snapshot` to attach); iterating gives the entries."""

    def __init__(self, folder: str | None = None):
        _remove_orphans(folder or tempfile.gettempdir())
        fd, self.path = tempfile.mkstemp(prefix=f"{_PREFIX}{os.getpid()}-", suffix=_SUFFIX, dir=folder)
        os.close(fd)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # The file is thrown away whatever happens, so it needs no journal and no sync.
            self._db.executescript(f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; {STAGED_TABLE}")
        except BaseException:
            _unlink(self.path)
            raise
        self.count = 0

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        _unlink(self.path)

    def restart(self) -> None:
        self._db.execute("DELETE FROM staged_entry")
        self.count = 0

    def add(self, entries: list[ListedEntry]) -> None:
        if not entries:
            return
        rows = [(position, identifier, label, flag, metadata_json(items))
                for position, (identifier, label, flag, items) in enumerate(map(staged_fields, entries),
                                                                              self.count + 1)]
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO staged_entry VALUES (?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.count += len(entries)

    def entries(self) -> Iterator[DiffEntry]:
        """Every staged entry, in server order; metadata as its JSON text."""
        for identifier, label, flag, metadata in self._db.execute(
                "SELECT identifier, label, has_image_data, metadata FROM staged_entry ORDER BY position"):
            yield DiffEntry(identifier, label, None if flag is None else bool(flag), metadata)

    __iter__ = entries


class StoreStaging:
    """A PullSink that stores each page in the store as it arrives (`mirrors.SnapshotWriter`,
    SQLite) instead of in a staging file."""

    def __init__(self, writer):
        self.writer = writer

    def restart(self) -> None:
        self.writer.restart()

    def add(self, entries: list[ListedEntry]) -> None:
        if entries:
            # One JSON text for the page, made in C: [identifier, label, hasimagedata, items].
            self.writer.add(metadata_json(list(map(staged_fields, entries))), len(entries))


def staged_fields(e: ListedEntry) -> tuple:
    """What a pull keeps of an entry, as both sinks stage it: identifier, label, the
    server's hasimagedata, metadata items. (`ListedEntry.label` and `.has_image_data`
    read at once: the hot loop of staging.)"""
    label, _, flag = e.images[0] if e.images else _NO_IMAGE
    return e.identifier, label, flag, e.metadata or ()


def _remove_orphans(folder: str) -> None:
    """Remove staging files left by pulls whose process is gone (killed)."""
    if os.name != "posix":
        return  # os.kill(pid, 0) is a question only on POSIX
    with contextlib.suppress(OSError):
        for path in Path(folder).glob(f"{_PREFIX}*{_SUFFIX}"):
            pid = path.name[len(_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                _unlink(str(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, someone else's
    return True


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
