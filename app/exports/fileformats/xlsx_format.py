"""XLSX: an Excel workbook, every text written as text (no formula can run)."""

from __future__ import annotations

from app.exports import formats
from app.exports.registry import FileFormat, register

FORMAT = register(FileFormat(
    name="xlsx", label="Excel workbook (XLSX)", suffixes=(".xlsx",), file_filter="Excel workbooks (*.xlsx)",
    file_writer=formats.write_xlsx,
))
