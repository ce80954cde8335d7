"""A small in-memory Source written for tests: the contract suite's second implementation.

It keeps the rules of `app/source.py` in plain Python, so the contract tests cannot lean
on anything SQL-shaped, and the next source (a Media Server mirror) has a reference to
compare with. One lock makes each change atomic; a change is applied to a copy of the
state and swapped in whole, so a refused change leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.domain import (
    Count,
    DatabaseInfo,
    EntryRow,
    Failure,
    FilterOp,
    HashlensError,
    ImageInfo,
    JournalEntry,
    ListingPage,
    ListingQuery,
    NewEntry,
    PHASH_MASK,
    SortKey,
    hamming,
    no_such_database,
)


@dataclass
class _Entry:
    key: int
    identifier: str
    label: str
    phash: int
    image: bytes | None
    image_format: str | None
    width: int | None
    height: int | None
    byte_size: int | None
    trained_at: int
    metadata: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _State:
    databases: dict[str, list[_Entry]] = field(default_factory=dict)  # in database order
    journal: list[JournalEntry] = field(default_factory=list)
    next_key: int = 1


_SORT = {
    SortKey.IDENTIFIER: lambda e: e.identifier,
    SortKey.LABEL: lambda e: e.label,
    SortKey.HAS_IMAGE_DATA: lambda e: e.image is not None,
    SortKey.META_COUNT: lambda e: len(e.metadata),
    # As the hex reads (issue 14); a pHash not known first, as the store sorts it.
    SortKey.PHASH: lambda e: -1 if e.phash is None else e.phash & PHASH_MASK,
    SortKey.WIDTH: lambda e: -1 if e.width is None else e.width,
    SortKey.TRAINED_AT: lambda e: e.trained_at,
}


def _matches(f, e: _Entry) -> bool:
    op = f.op
    if op is FilterOp.LABEL_CONTAINS:
        return f.value.lower() in e.label.lower()
    if op is FilterOp.LABEL_EQUALS:
        return e.label == f.value
    if op is FilterOp.HAS_IMAGE_DATA:
        return (e.image is not None) == f.value
    keys = dict(e.metadata)
    if op is FilterOp.META_PRESENT:
        return f.key in keys
    if op is FilterOp.META_ABSENT:
        return f.key not in keys
    if op is FilterOp.META_EQUALS:
        return keys.get(f.key) == f.value
    if op is FilterOp.PHASH_WITHIN:
        return e.phash is not None and hamming(e.phash, f.value) <= f.distance
    raise AssertionError(op)


class _Handle:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class MemorySource:
    """Every database in a dict, in database order; the journal in a list."""

    def __init__(self, name: str = "memory", read_only: bool = False):
        self.name = name
        self.read_only = read_only
        self._state = _State()
        self._lock = threading.RLock()
        self._group: _State | None = None

    # -- about ------------------------------------------------------------------------

    def describe(self) -> str:
        return f"memory:{self.name}"

    def read_only_reason(self) -> str:
        return f"The store {self.describe()} is open read-only; reopen it for writing to change it."

    @property
    def file_path(self) -> Path | None:
        return None

    def change_token(self) -> int:
        return len(self._state.journal)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def cancellable(self):
        handle = _Handle()
        yield handle
        if handle.cancelled:
            raise HashlensError(Failure.CANCELLED, "The query was cancelled.")

    def interrupt(self) -> None:
        pass

    # -- reads ------------------------------------------------------------------------

    def _entries(self, name: str, state: _State | None = None, parameter: str = "database") -> list[_Entry]:
        found = (state or self._state).databases.get(name)
        if found is None:
            if parameter != "database":
                raise HashlensError(Failure.NO_SUCH_DATABASE, f"'{parameter}={name}' does not exist",
                                    parameter=parameter)
            raise no_such_database(name)
        return found

    @staticmethod
    def _find(entries: list[_Entry], identifier: str, parameter: str = "identifier") -> _Entry:
        for e in entries:
            if e.identifier == identifier:
                return e
        raise HashlensError(Failure.NO_SUCH_IDENTIFIER, f"'{parameter}={identifier}' does not exist in this database",
                            parameter=parameter)

    def list_databases(self) -> list[DatabaseInfo]:
        return [DatabaseInfo(n, len(es)) for n, es in sorted(self._state.databases.items())]

    def database_exists(self, name: str) -> bool:
        return name in self._state.databases

    def mirror_of(self, name: str):
        return None  # this source holds no mirrors

    def database_id(self, name: str) -> int:
        self._entries(name)
        return sorted(self._state.databases).index(name) + 1

    def entry_exists(self, database: str, identifier: str) -> bool:
        return any(e.identifier == identifier for e in self._entries(database))

    def _selected(self, query: ListingQuery) -> list[_Entry]:
        entries = list(self._entries(query.database))
        if query.identifiers is not None:
            wanted = set(query.identifiers)
            entries = [e for e in entries if e.identifier in wanted]
        entries = [e for e in entries if all(_matches(f, e) for f in query.filters)]
        if query.sort is SortKey.POSITION:
            entries.sort(key=lambda e: e.key, reverse=query.descending)
        else:
            if query.sort is SortKey.DISTANCE:
                entries.sort(key=lambda e: (hamming(e.phash, query.reference), e.key), reverse=query.descending)
            else:
                entries.sort(key=lambda e: (_SORT[query.sort](e), e.key), reverse=query.descending)
        return entries

    @staticmethod
    def _row(position: int, e: _Entry, metadata: bool) -> EntryRow:
        return EntryRow(position, e.key, e.identifier, e.label, e.image is not None, e.phash, e.image_format,
                        e.width, e.height, e.byte_size, len(e.metadata), e.trained_at,
                        tuple(e.metadata) if metadata else None)

    def list_page(self, query: ListingQuery) -> ListingPage:
        with self._lock:
            entries = self._selected(query)
            end = None if query.maxresults is None else query.start - 1 + query.maxresults
            rows = [self._row(query.start + i, e, query.metadata)
                    for i, e in enumerate(entries[query.start - 1:end])]
            total = None if query.is_filtered else len(self._entries(query.database))
        return ListingPage(query, rows, total)

    def page_identifiers(self, query: ListingQuery) -> list[str]:
        return [row.identifier for row in self.list_page(query).rows]

    def iter_listing(self, query: ListingQuery, batch: int = 2000):
        rows = self.list_page(query).rows
        for i in range(0, len(rows), batch):
            yield rows[i:i + batch]

    def count(self, query: ListingQuery, bound: int | None = None) -> Count:
        n = len(self._selected(query.unwindowed()))
        if bound is None or n <= bound:
            return Count(n, True)
        return Count(bound, False)

    def metadata_keys(self, database: str, limit: int = 500) -> list[str]:
        keys = {k for e in self._entries(database) for k, _ in e.metadata}
        return sorted(keys)[:limit]

    def image(self, database: str, identifier: str) -> ImageInfo:
        e = self._find(self._entries(database), identifier)
        return ImageInfo(e.identifier, e.label, e.image_format, e.width, e.height, e.image)

    def images_by_key(self, keys: list[int]) -> dict[int, bytes]:
        wanted = set(keys)
        return {e.key: e.image for es in self._state.databases.values() for e in es
                if e.key in wanted and e.image is not None}

    def history(self, since=None, until=None, limit=None, database=None) -> list[JournalEntry]:
        found = [j for j in self._state.journal
                 if (since is None or j.at_ms >= since) and (until is None or j.at_ms < until)
                 and (database is None or j.database == database or j.params.get("newdatabase") == database)]
        return found if limit is None else found[:limit]

    def iter_journal(self, since=None, until=None, database=None, batch: int = 5000):
        found = self.history(since, until, None, database)
        for i in range(0, len(found), batch):
            yield found[i:i + batch]

    # -- writes -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, action: str, database: str | None, identifier: str | None, params: dict):
        """Yield a copy of the state to change; swap it in whole, journalled, on success."""
        if self.read_only:
            raise HashlensError(Failure.READ_ONLY, self.read_only_reason())
        with self._lock:
            if self._group is not None:
                yield self._group
                return
            state = copy.deepcopy(self._state)
            yield state
            state.journal.append(JournalEntry(int(time.time() * 1000), "tester", action, database, identifier,
                                              dict(params)))
            self._state = state

    @contextlib.contextmanager
    def group(self, action: str, database: str | None, params: dict | None = None):
        params = dict(params or {})
        if self.read_only:
            raise HashlensError(Failure.READ_ONLY, self.read_only_reason())
        with self._lock:
            self._group = copy.deepcopy(self._state)
            try:
                yield params
                self._group.journal.append(JournalEntry(int(time.time() * 1000), "tester", action, database, None,
                                                        dict(params)))
                self._state = self._group
            finally:
                self._group = None

    def create_database(self, name: str) -> None:
        with self._writing("CreateImageHashDatabase", name, None, {}) as s:
            if name in s.databases:
                raise HashlensError(Failure.DATABASE_EXISTS, f"'database={name}' already exists", parameter="database")
            s.databases[name] = []

    def rename_database(self, name: str, new_name: str) -> None:
        with self._writing("RenameImageHashDatabase", name, None, {"newdatabase": new_name}) as s:
            entries = self._entries(name, s)
            if new_name in s.databases:
                raise HashlensError(Failure.DATABASE_EXISTS, f"'newdatabase={new_name}' already exists",
                                    parameter="newdatabase")
            del s.databases[name]
            s.databases[new_name] = entries

    def remove_database(self, name: str) -> int:
        params: dict = {}
        with self._writing("RemoveImageHashDatabase", name, None, params) as s:
            params["entries"] = removed = len(self._entries(name, s))
            del s.databases[name]
        return removed

    def add_entries(self, database: str, entries: list[tuple[NewEntry, str | None]]) -> None:
        # All or none: the entries go into a copy of the state, kept only when all fit.
        if self.read_only:
            raise HashlensError(Failure.READ_ONLY, self.read_only_reason())
        with self._lock:
            saved = copy.deepcopy(self._state)
            try:
                for entry, source in entries:
                    self.add_entry(database, entry, source=source)
            except BaseException:
                self._state = saved
                raise

    def add_entry(self, database: str, entry: NewEntry, *, source: str | None = None) -> int:
        params = {"imagelabel": entry.label, "metadata": [list(p) for p in entry.metadata]}
        if source:
            params["imagepath"] = source
        with self._writing("TrainImageHash", database, entry.identifier, params) as s:
            entries = self._entries(database, s)
            if any(e.identifier == entry.identifier for e in entries):
                raise HashlensError(Failure.IDENTIFIER_EXISTS, f"'identifier={entry.identifier}' already exists",
                                    parameter="identifier")
            if len({k for k, _ in entry.metadata}) != len(entry.metadata):
                raise HashlensError(Failure.KEY_EXISTS, "A metadata key is given twice; a key is unique per hash.",
                                    parameter="metadata")
            key = s.next_key
            s.next_key += 1
            data = entry.image_data
            entries.append(_Entry(key, entry.identifier, entry.label,
                                  None if entry.phash is None else entry.phash & PHASH_MASK, data,
                                  entry.image_format, entry.width, entry.height,
                                  len(data) if data is not None else None,
                                  entry.trained_at or int(time.time() * 1000), list(entry.metadata)))
        return key

    def remove_entry(self, database: str, identifier: str) -> None:
        with self._writing("RemoveImageHash", database, identifier, {}) as s:
            entries = self._entries(database, s)
            entries.remove(self._find(entries, identifier))

    def null_image_data(self, database: str, identifier: str) -> None:
        with self._writing("NullImageHashImageData", database, identifier, {}) as s:
            self._find(self._entries(database, s), identifier).image = None

    def rename_entry(self, database: str, identifier: str, new_identifier: str) -> None:
        with self._writing("RenameImageHash", database, identifier, {"newidentifier": new_identifier}) as s:
            entries = self._entries(database, s)
            e = self._find(entries, identifier)
            if new_identifier != identifier and any(x.identifier == new_identifier for x in entries):
                raise HashlensError(Failure.IDENTIFIER_EXISTS, f"'newidentifier={new_identifier}' already exists",
                                    parameter="newidentifier")
            e.identifier = new_identifier

    def move_entry(self, database: str, identifier: str, new_database: str) -> None:
        with self._writing("MoveImageHash", database, identifier, {"newdatabase": new_database}) as s:
            entries = self._entries(database, s)
            e = self._find(entries, identifier)
            target = self._entries(new_database, s, parameter="newdatabase")
            if target is entries:
                return
            if any(x.identifier == identifier for x in target):
                raise HashlensError(Failure.IDENTIFIER_EXISTS, f"'identifier={identifier}' already exists in "
                                    f"'{new_database}'", parameter="identifier")
            entries.remove(e)
            target.append(e)
            target.sort(key=lambda x: x.key)  # its place among the target's entries by age

    def relabel(self, database: str, identifier: str, label: str, new_label: str) -> None:
        with self._writing("RelabelImageHashImage", database, identifier,
                           {"imagelabel": label, "newimagelabel": new_label}) as s:
            e = self._find(self._entries(database, s), identifier)
            if e.label != label:
                raise HashlensError(Failure.NO_SUCH_LABEL, f"'imagelabel={label}' does not exist for '{identifier}'",
                                    parameter="imagelabel")
            e.label = new_label

    def _metadata_change(self, action, database, identifier, params, change) -> None:
        with self._writing(action, database, identifier, params) as s:
            change(self._find(self._entries(database, s), identifier))

    @staticmethod
    def _key_index(e: _Entry, key_name: str, identifier: str) -> int:
        for i, (k, _) in enumerate(e.metadata):
            if k == key_name:
                return i
        raise HashlensError(Failure.NO_SUCH_KEY, f"'key={key_name}' does not exist for '{identifier}'", parameter="key")

    def add_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        def change(e: _Entry) -> None:
            if any(k == key_name for k, _ in e.metadata):
                raise HashlensError(Failure.KEY_EXISTS, f"'key={key_name}' already exists for '{identifier}'",
                                    parameter="key")
            e.metadata.append((key_name, value))

        self._metadata_change("AddImageHashMetadata", database, identifier, {"key": key_name, "value": value}, change)

    def update_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        def change(e: _Entry) -> None:
            e.metadata[self._key_index(e, key_name, identifier)] = (key_name, value)

        self._metadata_change("UpdateImageHashMetadata", database, identifier, {"key": key_name, "newvalue": value},
                              change)

    def remove_metadata(self, database: str, identifier: str, key_name: str) -> None:
        def change(e: _Entry) -> None:
            del e.metadata[self._key_index(e, key_name, identifier)]

        self._metadata_change("RemoveImageHashMetadata", database, identifier, {"key": key_name}, change)
