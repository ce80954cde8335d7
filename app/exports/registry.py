"""The file-format registry: every export and import format, by name, in one table.

Each format is one module in `app.exports.fileformats` that calls `register` with its
name, suffixes, label, file-dialog filter, writer, optional reader and sniffer. The
command line (`--format` choices and help), the export and import dialogs, the exporter,
the importer and the format sniffer all read this table, so a new format is one new
module (plus its tests) and nothing else changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.domain import Failure, HashlensError


@dataclass(frozen=True)
class FileFormat:
    """One file format. Exactly one writer is set for an export format:

    - `text_writer(batches, query, options, keys) -> Iterator[str]`: the file's text, a
      batch at a time (written atomically and hashed by the exporter);
    - `file_writer(path, batches, query, about) -> int`: writes a whole file at `path`
      (a temporary the exporter renames) and returns the entries written;
    - `folder`: the exporter's image folder (or zip) writer.

    `reader(path, f, size, dialect) -> Iterator[ImportedEntry]` reads it back;
    `sniff(path, head) -> bool` says whether the first bytes are this format, asked in
    `sniff_order` (lower first; `head` has any UTF-8 BOM and leading space removed)."""

    name: str
    label: str
    suffixes: tuple[str, ...]  # the first is the one new files get; () for a folder
    file_filter: str
    text_writer: Callable[..., Iterator[str]] | None = None
    file_writer: Callable[..., int] | None = None
    folder: bool = False
    archive_label: str | None = None  # a folder format that can also be written as a .zip
    reader: Callable[..., Iterator] | None = None
    sniff: Callable[[Path, bytes], bool] | None = None
    sniff_order: int = 100
    # Spreadsheet-safe cells apply (the CSV dialect is recorded in the manifest).
    spreadsheet_cells: bool = False
    # Metadata may be one column per key instead of one JSON column.
    key_columns: bool = False
    # Listed among the export formats of `hashlens export` and the export dialog; a
    # whole-database file is exported by its own action, not as a listing.
    listing_export: bool = True

    @property
    def suffix(self) -> str:
        """The suffix a new file gets; none for a folder (a folder format may still be
        recognised by a suffix, as images by .zip)."""
        return "" if self.folder or not self.suffixes else self.suffixes[0]

    @property
    def exportable(self) -> bool:
        return self.text_writer is not None or self.file_writer is not None or self.folder


_FORMATS: dict[str, FileFormat] = {}


def register(fmt: FileFormat) -> FileFormat:
    """Add a format; a second format of the same name is a programming error."""
    if fmt.name in _FORMATS and _FORMATS[fmt.name] != fmt:
        raise ValueError(f"a file format named {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a format (tests register toy formats and take them away again)."""
    _FORMATS.pop(name, None)


def formats() -> list[FileFormat]:
    """Every format, in registration order."""
    return list(_FORMATS.values())


def export_names() -> list[str]:
    """The formats a listing can be exported to, as `--format` offers them."""
    return [f.name for f in _FORMATS.values() if f.exportable and f.listing_export]


def import_names() -> list[str]:
    """The formats a listing can be imported from."""
    return [f.name for f in _FORMATS.values() if f.reader is not None]


def get(name: str, parameter: str = "format") -> FileFormat:
    fmt = _FORMATS.get(name)
    if fmt is None:
        raise HashlensError(
            Failure.PARAM_INVALID,
            f"Export format '{name}' is not known; choose one of {', '.join(export_names())}.",
            parameter=parameter,
        )
    return fmt


def by_suffix(suffix: str) -> FileFormat | None:
    """The format a new file named with `suffix` gets (the first registered claims it)."""
    suffix = suffix.lower()
    return next((f for f in _FORMATS.values() if suffix in f.suffixes), None)


def sniff(path: Path, head: bytes) -> str | None:
    """The name of the format whose sniffer first claims `head`, or None."""
    for fmt in sorted(_FORMATS.values(), key=lambda f: f.sniff_order):
        if fmt.sniff is not None and fmt.sniff(path, head):
            return fmt.name
    return None


def import_file_filter(prefix: str) -> str:
    """The import dialog's file filter: every importable format's suffixes, then all files."""
    patterns = " ".join(f"*{s}" for f in _FORMATS.values() if f.reader is not None or f.sniff for s in f.suffixes)
    return f"{prefix} ({patterns});;All files (*)"
