"""CSV: one row per entry (RFC 4180), spreadsheet-safe cells unless asked for raw."""

from __future__ import annotations

from app.exports import formats, readers
from app.exports.registry import FileFormat, register


def _text(batches, query, options, keys):
    return formats.delimited_chunks(batches, query, options, keys, ",")


FORMAT = register(FileFormat(
    name="csv", label="CSV", suffixes=(".csv",), file_filter="CSV files (*.csv)", text_writer=_text,
    reader=lambda path, f, size, dialect: readers.read_csv(path, f, ",", dialect == "safe"),
    # Whatever else is text: the last resort, as a spreadsheet would open it.
    sniff=lambda path, head: bool(head), sniff_order=1000,
    spreadsheet_cells=True, key_columns=True,
))
