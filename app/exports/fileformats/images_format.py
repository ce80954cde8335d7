"""Images: the training images into a new folder, or a zip file, with an index.csv."""

from __future__ import annotations

from app.exports.registry import FileFormat, register

FORMAT = register(FileFormat(
    name="images", label="Training images into a folder", suffixes=(".zip",), file_filter="A new folder (*)",
    folder=True, archive_label="Training images into a zip file", spreadsheet_cells=True,
))
