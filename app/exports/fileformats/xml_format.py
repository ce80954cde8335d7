"""XML: the ListImageHashes response itself, byte for byte what the action answers."""

from __future__ import annotations

from app.exports import readers
from app.exports.registry import FileFormat, register
from app.mediaserver_codec import writer
from app.mediaserver_codec.names import LIST_IMAGE_HASHES


def _text(batches, query, options, keys):
    # The very function ListImageHashes answers with (byte-for-byte contract).
    return writer.listing(batches, imagestatus=query.imagestatus, metadata=query.metadata)


FORMAT = register(FileFormat(
    name="xml", label=f"XML (the {LIST_IMAGE_HASHES} response)", suffixes=(".xml",),
    file_filter="XML files (*.xml)", text_writer=_text,
    reader=lambda path, f, size, dialect: readers.read_xml(path, f),
    sniff=lambda path, head: head.startswith(b"<"), sniff_order=20,
))
