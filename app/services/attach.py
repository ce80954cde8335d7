"""Attaching image files to entries: pHashes (and optionally the images) computed from a
folder for entries that have none, behind `hashlens attach-images` and Database ▸ Attach
images….

Entries pulled or imported from a Media Server carry no pHash (MS: ListImageHashes never
lists one); operators usually keep the images they trained from. A file belongs to an
entry when its name matches the entry's identifier or label (`match`). Nothing is guessed:
an entry with several candidate files, or a file claimed by several entries, is reported
as ambiguous and left as it was. All changes are one transaction: a failure or Cancel
leaves the store exactly as it was (ours).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from app.domain import Failure, HashlensError, ListingQuery, counted, phash_to_hex
from app.mediaserver_codec import names
from app.services import imaging

MATCHES = ("identifier", "label", "stem")
# Reports name at most this many items per list; counts are always exact.
SHOWN = 20
# The journal record names at most this many identifiers.
JOURNALLED = 1000


@dataclass
class AttachReport:
    """What an attach did (a report always describes a committed change)."""

    database: str
    folder: str
    match: str
    store_images: bool
    files: int = 0
    attached: list[str] = field(default_factory=list)
    attached_count: int = 0
    images_stored: int = 0
    already: int = 0  # matched entries that needed nothing (a pHash known, image held or not asked for)
    differs: list[tuple[str, str, str]] = field(default_factory=list)  # identifier, stored, file's
    differs_count: int = 0
    no_file: list[str] = field(default_factory=list)  # entries without a pHash and no file
    no_file_count: int = 0
    unused_files: list[str] = field(default_factory=list)
    unused_files_count: int = 0
    ambiguous: list[str] = field(default_factory=list)
    ambiguous_count: int = 0
    unreadable: list[str] = field(default_factory=list)
    unreadable_count: int = 0

    def lines(self) -> list[str]:
        how = {"identifier": "identifiers", "label": "labels", "stem": "identifier or label stems"}[self.match]
        out = [f"Attached images from {self.folder} to '{self.database}' (file names matched to {how}):",
               f"  {counted(self.files, 'image file')} found; {counted(self.attached_count, 'entry', 'entries')} "
               f"got a pHash" + (f", {self.images_stored:,} with the image stored" if self.store_images else "") + "."]
        if self.attached:
            out.append("  Matched: " + _listed(self.attached, self.attached_count))
        if self.already:
            out.append(f"  {counted(self.already, 'matched entry', 'matched entries')} needed nothing "
                       "(a pHash known" + (" and the image held" if self.store_images else "") + ").")
        if self.differs_count:
            shown = ", ".join(f"{i!r} (stored {a}, file {b})" for i, a, b in self.differs[:SHOWN])
            out.append(f"  {counted(self.differs_count, 'entry', 'entries')} already have a different pHash than "
                       f"their file and were left as they were: {shown}"
                       + (f" and {self.differs_count - SHOWN:,} more" if self.differs_count > SHOWN else ""))
        if self.ambiguous_count:
            out.append(f"  Ambiguous, left as they were ({self.ambiguous_count:,}): "
                       + "; ".join(self.ambiguous[:SHOWN])
                       + (f" and {self.ambiguous_count - SHOWN:,} more" if self.ambiguous_count > SHOWN else ""))
        if self.unreadable_count:
            out.append(f"  {counted(self.unreadable_count, 'file')} could not be read as images: "
                       + "; ".join(self.unreadable[:SHOWN])
                       + (f" and {self.unreadable_count - SHOWN:,} more" if self.unreadable_count > SHOWN else ""))
        if self.no_file_count:
            out.append(f"  Not matched: no file for {counted(self.no_file_count, 'entry', 'entries')} without a pHash: "
                       + _listed(self.no_file, self.no_file_count))
        if self.unused_files_count:
            out.append(f"  Not matched: {counted(self.unused_files_count, 'file')} match no entry: "
                       + _listed(self.unused_files, self.unused_files_count))
        return out


def _listed(items: list[str], total: int) -> str:
    shown = ", ".join(repr(i) for i in items[:SHOWN])
    return shown + (f" and {total - SHOWN:,} more" if total > SHOWN else "")


def _add(items: list, item, cap: int = JOURNALLED) -> None:
    if len(items) < cap:
        items.append(item)


def _stem(text: str) -> str:
    """The last part of a name or path without its suffix ('cats\\a.jpg' -> 'a')."""
    return PurePosixPath(text.replace("\\", "/")).stem


def _file_keys(path: Path, folder: Path, match: str) -> set[str]:
    """The names by which an entry may claim a file: its name, its stem and its path
    relative to the folder (with and without the suffix), or only its stem for `stem`."""
    if match == "stem":
        return {path.stem}
    relative = path.relative_to(folder).as_posix()
    return {path.name, path.stem, relative, relative[: -len(path.suffix)] if path.suffix else relative}


def _entry_keys(identifier: str, label: str, match: str) -> set[str]:
    if match == "identifier":
        return {identifier}
    if match == "label":
        return {label}
    return {_stem(identifier), _stem(label)}


def attach_images(
    store,
    database: str,
    folder: Path | str,
    *,
    match: str = "identifier",
    store_images: bool = False,
    progress: Callable[..., None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> AttachReport:
    """Compute pHashes (and with `store_images` keep the images) for the entries of
    `database` whose identifier or label matches an image file in `folder`."""
    if match not in MATCHES:
        raise HashlensError(Failure.PARAM_INVALID, f"'match={match}' is not allowed; choose one of "
                                                   f"{', '.join(MATCHES)}.", parameter="match")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise HashlensError(Failure.PARAM_INVALID, f"'{folder}' is not a folder.", parameter="folder")
    if store.read_only:
        raise HashlensError(Failure.READ_ONLY, store.read_only_reason())
    if not store.database_exists(database):
        raise HashlensError(Failure.NO_SUCH_DATABASE, f"There is no database '{database}'.", parameter="database")
    report = AttachReport(database, str(folder), match, store_images)

    def check() -> None:
        if cancelled is not None and cancelled():
            raise HashlensError(Failure.CANCELLED, "Attaching images was cancelled; nothing was changed.")

    files = imaging.find_images([folder])
    report.files = len(files)
    by_key: dict[str, set[Path]] = {}
    for f in files:
        for key in _file_keys(f, folder, match):
            by_key.setdefault(key, set()).add(f)

    # Which file each entry claims; an entry with several files is ambiguous.
    claims: dict[Path, list] = {}
    contested: set[Path] = set()  # files of an ambiguous entry: matched, but not used
    for batch in store.iter_listing(ListingQuery(database, imagestatus=True)):
        check()
        for row in batch:
            found: set[Path] = set()
            for key in _entry_keys(row.identifier, row.label, match):
                found |= by_key.get(key, set())
            if not found:
                if row.phash is None:
                    report.no_file_count += 1
                    _add(report.no_file, row.identifier)
                continue
            if len(found) > 1:
                contested |= found
                report.ambiguous_count += 1
                shown = ", ".join(sorted(str(p.relative_to(folder)) for p in found)[:3])
                _add(report.ambiguous, f"{row.identifier!r} matches {len(found):,} files ({shown})")
                continue
            claims.setdefault(found.pop(), []).append(row)

    work = []  # (row, file) pairs that need a pHash or an image
    for f in files:
        rows = claims.get(f)
        if not rows:
            continue
        if len(rows) > 1:
            report.ambiguous_count += 1
            shown = ", ".join(repr(r.identifier) for r in rows[:3])
            _add(report.ambiguous, f"{f.relative_to(folder)} is claimed by {len(rows):,} entries ({shown})")
            continue
        row = rows[0]
        if row.phash is None or (store_images and not row.has_image_data):
            work.append((row, f))
        else:
            report.already += 1
    claimed = set(claims) | contested
    for f in files:
        if f not in claimed:
            report.unused_files_count += 1
            _add(report.unused_files, str(f.relative_to(folder)))

    # Hash outside the write transaction; only the hashes are kept, never the bytes.
    hashed = []
    total = len(work)
    for done, (row, f) in enumerate(work):
        check()
        if progress is not None:
            progress(done, total, "computing pHashes")
        try:
            image = imaging.hash_image(imaging.read_image_file(f), str(f))
        except HashlensError as exc:
            report.unreadable_count += 1
            _add(report.unreadable, exc.description)
            continue
        if row.phash is not None and row.phash != image.phash:
            report.differs_count += 1
            _add(report.differs, (row.identifier, phash_to_hex(row.phash), phash_to_hex(image.phash)))
            continue
        hashed.append((row, f, image.phash, image.image_format, image.width, image.height, image.sha256))
    if progress is not None:
        progress(total, total, "computing pHashes")

    with store.group(names.ATTACH_IMAGES, database) as journal:
        for done, (row, f, phash, fmt, width, height, sha) in enumerate(hashed):
            if done % 100 == 0:
                check()
                if progress is not None:
                    progress(done, len(hashed), "storing")
            data = None
            if store_images and not row.has_image_data:
                data = imaging.read_image_file(f)
                if hashlib.sha256(data).hexdigest() != sha:
                    raise HashlensError(Failure.FILE_FAILED, f"'{f}' changed while Hashlens read it; nothing was "
                                                             "changed. Try again.")
                report.images_stored += 1
            store.attach_image(database, row.identifier, phash, data, fmt if data else None,
                               width if data else None, height if data else None, sha if data else None)
            report.attached_count += 1
            _add(report.attached, row.identifier)
        journal.update({"folder": str(folder), "match": match, "store_images": store_images,
                        "attached": report.attached_count, "images_stored": report.images_stored,
                        "identifiers": report.attached[:JOURNALLED]})
    if progress is not None:
        progress(len(hashed), len(hashed), "storing")
    return report
