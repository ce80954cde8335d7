"""JSON: one document, a header and one entry object per line inside its array."""

from __future__ import annotations

from app.exports import formats, readers
from app.exports.registry import FileFormat, register


def _sniff(path, head: bytes) -> bool:
    # After NDJSON and the database file have had their say: any other object or array.
    return head.startswith((b"[", b"{"))


FORMAT = register(FileFormat(
    name="json", label="JSON (one document)", suffixes=(".json",), file_filter="JSON files (*.json)",
    text_writer=lambda batches, query, options, keys: formats.json_chunks(batches, query),
    reader=lambda path, f, size, dialect: readers.read_json(path, f, size),
    sniff=_sniff, sniff_order=60,
))
