"""A pull's staging file: entries as they arrive, on disk, until the whole pull is proven and can be stored at once.

A pull can take minutes and may have to start again when the server changes under it;
staging outside the store keeps the store's write transaction short (it opens only
once the pull is complete) and keeps memory flat. Each page is one pickled list of
(identifier, label, has_image_data, metadata JSON text) tuples behind its length: a
pickle of plain tuples is made and read in C, where a JSON line per entry cost more
than parsing the page (measured, ours). The file is anonymous (deleted by the system
when closed or when the process dies) and only this process writes it, so unpickling
it trusts nothing from outside.
"""

from __future__ import annotations

import pickle
import struct
import tempfile
from collections.abc import Iterator

from app.mediaserver_codec.reader import ListedEntry
from app.diff import DiffEntry, metadata_json


class Staging:
    """A PullSink on an anonymous temporary file. Use as a context manager."""

    def __init__(self, folder: str | None = None):
        self._file = tempfile.TemporaryFile(mode="w+b", dir=folder, prefix="hashlens-pull-")
        self.count = 0

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def restart(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self.count = 0

    def add(self, entries: list[ListedEntry]) -> None:
        # Metadata is kept as the JSON text the store keeps (`metadata_json`), so storing
        # it needs no second encoding.
        if not entries:
            return
        rows = [(e.identifier, e.label, e.has_image_data, metadata_json(e.metadata or ())) for e in entries]
        blob = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(_LENGTH.pack(len(blob)) + blob)
        self.count += len(entries)

    def entries(self) -> Iterator[DiffEntry]:
        """Every staged entry, in server order; metadata as its JSON text."""
        self._file.flush()
        self._file.seek(0)
        read, make = self._file.read, DiffEntry._make
        while head := read(_LENGTH.size):
            (size,) = _LENGTH.unpack(head)
            yield from map(make, pickle.loads(read(size)))


_LENGTH = struct.Struct("<Q")
