"""A pull's staging file: entries as they arrive, on disk, until the whole pull is proven and can be stored at once.

A pull can take minutes and may have to start again when the server changes under it;
staging outside the store keeps the store's write transaction short (it opens only
once the pull is complete) and keeps memory flat. One JSON array per line; the file is
anonymous (deleted by the system when closed or when the process dies).
"""

from __future__ import annotations

import json
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
        # A line is the entry's JSON array, a tab, then its metadata as the JSON text the
        # store keeps (`metadata_json`), so storing it needs no second encoding. JSON
        # escapes every control character, so neither part holds a tab or a newline.
        if not entries:
            return  # an empty line would read back as no entry at all
        dumps = json.dumps
        lines = [dumps([e.identifier, e.label, e.has_image_data], ensure_ascii=False) + "\t"
                 + metadata_json(e.metadata or ()) for e in entries]
        self._file.write(("\n".join(lines) + "\n").encode("utf-8"))
        self.count += len(entries)

    def entries(self) -> Iterator[DiffEntry]:
        """Every staged entry, in server order; metadata as its JSON text."""
        self._file.flush()
        self._file.seek(0)
        loads = json.loads
        for line in self._file:
            head, _, metadata = line.decode("utf-8").rstrip("\n").partition("\t")
            identifier, label, has_image_data = loads(head)
            yield DiffEntry(identifier, label, has_image_data, metadata)
