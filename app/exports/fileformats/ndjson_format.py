"""NDJSON: one entry object per line, nothing else."""

from __future__ import annotations

import contextlib
import json

from app.exports import formats, readers
from app.exports.registry import FileFormat, register

SUFFIXES = (".ndjson", ".jsonl")


def _sniff(path, head: bytes) -> bool:
    if not head:
        return path.suffix.lower() in SUFFIXES  # an NDJSON export of an empty listing is an empty file
    if not head.startswith(b"{"):
        return False
    first = head.split(b"\n", 1)[0].strip()
    with contextlib.suppress(ValueError, RecursionError):
        obj = json.loads(first)
        # A one-line document with an 'entries' list is JSON; an entry per line is NDJSON.
        return isinstance(obj, dict) and "entries" not in obj and "format" not in obj
    return False


FORMAT = register(FileFormat(
    name="ndjson", label="NDJSON (one entry per line)", suffixes=SUFFIXES,
    file_filter="NDJSON files (*.ndjson *.jsonl)",
    text_writer=lambda batches, query, options, keys: formats.ndjson_chunks(batches, query),
    reader=lambda path, f, size, dialect: readers.read_ndjson(path, f),
    sniff=_sniff, sniff_order=50,
))
