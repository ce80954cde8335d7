"""TSV: CSV's rows with tabs between cells."""

from __future__ import annotations

from app.exports import formats, readers
from app.exports.registry import FileFormat, register


def _text(batches, query, options, keys):
    return formats.delimited_chunks(batches, query, options, keys, "\t")


def _sniff(path, head: bytes) -> bool:
    if not head:
        return False
    if path.suffix.lower() in (".tsv", ".tab"):
        return True
    first = head.split(b"\n", 1)[0]
    return b"\t" in first and b"," not in first


FORMAT = register(FileFormat(
    name="tsv", label="TSV", suffixes=(".tsv", ".tab"), file_filter="TSV files (*.tsv)", text_writer=_text,
    reader=lambda path, f, size, dialect: readers.read_csv(path, f, "\t", dialect == "safe"),
    sniff=_sniff, sniff_order=900, spreadsheet_cells=True, key_columns=True,
))
