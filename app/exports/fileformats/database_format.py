"""The whole-database file (ExportImageHashDatabase): every entry with its image; a
database of its own, written and read by `app.exports.database_file`."""

from __future__ import annotations

from app.exports.registry import FileFormat, register

DATABASE_MARK = b'{"format":"hashlens-database"'

FORMAT = register(FileFormat(
    name="database", label="Whole database with images", suffixes=(".hldb",),
    file_filter="Hashlens database files (*.hldb)", listing_export=False,
    sniff=lambda path, head: head.split(b"\n", 1)[0].strip().startswith(DATABASE_MARK), sniff_order=10,
))
