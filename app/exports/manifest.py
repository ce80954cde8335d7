"""Export manifests (`NAME.manifest.json`): what was exported, from where, and the
SHA-256 that lets an audit check the file later (`hashlens verify`)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import app
from app.domain import ListingQuery, SortKey
from app.exports.atomic import AtomicFile
from app.mediaserver_codec.lists import format_identifier_list
from app.mediaserver_codec.names import LIST_IMAGE_HASHES
from app.mediaserver_codec.request import aci_line

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_KIND = "hashlens-export-manifest"
MANIFEST_VERSION = 1
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def manifest_path(target: Path) -> Path:
    return target.with_name(target.name + MANIFEST_SUFFIX)


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def request_line(query: ListingQuery) -> tuple[str, list[str]]:
    """The ListImageHashes request that lists the same entries, and what it cannot say:
    label, metadata and pHash filters and orders other than database order have no
    ListImageHashes parameter (MS), so those are listed as notes."""
    params = [("database", query.database)]
    if query.identifiers is not None:
        # Items holding a comma or quote are quoted as the ACI parser reads them (ours).
        params.append(("identifier", format_identifier_list(query.identifiers)))
    if query.imagestatus:
        params.append(("imagestatus", "true"))
    if query.metadata:
        params.append(("metadata", "true"))
    if query.start != 1 or query.maxresults is not None:
        params.append(("start", str(query.start)))
    if query.maxresults is not None:
        params.append(("maxresults", str(query.maxresults)))
    line = aci_line(LIST_IMAGE_HASHES, params)
    notes = [f"{f.describe()} (no {LIST_IMAGE_HASHES} parameter)" for f in query.filters]
    if query.sort is not SortKey.POSITION or query.descending:
        notes.append(
            f"sorted by {query.sort.value}{' descending' if query.descending else ''} "
            f"({LIST_IMAGE_HASHES} lists in database order)"
        )
    return line, notes


def build(*, target: Path, fmt: str, query: ListingQuery, store_display: str, scope: str, entries: int,
          sha256: str, size: int, options: dict, index: str | None = None) -> dict:
    line, notes = request_line(query)
    manifest = {
        "kind": MANIFEST_KIND,
        "version": MANIFEST_VERSION,
        "file": target.name,
        "format": fmt,
        "sha256": sha256,
        "bytes": size,
        "entries": entries,
        "store": store_display,  # StoreLocation.display(): never a password
        "database": query.database,
        "filter": query.describe(),
        "scope": scope,
        "request": line,
        "request_exact": not notes,
        "request_notes": notes,
        "imagestatus": query.imagestatus,
        "metadata": query.metadata,
        "options": options,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hashlens_version": app.__version__,
    }
    if index is not None:
        manifest["index"] = index
    return manifest


def write(target: Path, manifest: dict) -> Path:
    path = manifest_path(target)
    with AtomicFile(path) as out:
        out.write((json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return path


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def _reject_dupes(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"the key {k!r} appears twice")
        seen[k] = v
    return seen


def read(path: Path) -> dict:
    """A manifest, checked enough that a hostile one cannot point outside its folder."""
    path = Path(path)
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            # Opening a FIFO would block for ever; a link could point anywhere.
            raise ValueError("it is not a regular file")
        if info.st_size > _MAX_MANIFEST_BYTES:
            raise ValueError(f"it is over {_MAX_MANIFEST_BYTES:,} bytes")
        with open(path, encoding="utf-8") as f:
            data = json.load(f, object_pairs_hook=_reject_dupes, parse_constant=_no_constant)
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise ValueError("it is not a Hashlens export manifest")
    name = data.get("file")
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError("its 'file' must be a plain file name beside the manifest")
    if not isinstance(data.get("sha256"), str) or not isinstance(data.get("bytes"), int):
        raise ValueError("it lacks 'sha256' or 'bytes'")
    return data


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def verify(path: Path | str) -> Verdict:
    """Check an export against its manifest: size and SHA-256 of the file (for an image
    folder: of its index, then of every image the index lists)."""
    path = Path(path)
    try:
        data = read(path)
    except ValueError as exc:
        return Verdict(False, f"The manifest '{path}' cannot be used: {exc}.")
    target = path.parent / data["file"]
    if data.get("index") is not None:
        return _verify_folder(path, target, data)
    if not target.is_file():
        return Verdict(False, f"'{target}' is missing (named by the manifest '{path.name}').")
    digest, size = sha256_file(target)
    if size != data["bytes"] or digest != data["sha256"]:
        return Verdict(
            False,
            f"'{target}' does NOT match its manifest: it is {size:,} bytes with SHA-256 {digest}, "
            f"the manifest records {data['bytes']:,} bytes with SHA-256 {data['sha256']}. "
            "The file was changed or damaged after the export.",
        )
    return Verdict(True, f"'{target}' matches its manifest ({data.get('entries', '?')} entries, SHA-256 {digest}).")


def _verify_folder(path: Path, folder: Path, data: dict) -> Verdict:
    index_name = data["index"]
    if not isinstance(index_name, str) or Path(index_name).name != index_name:
        return Verdict(False, f"The manifest '{path}' names a bad index file.")
    index = folder / index_name
    if not index.is_file():
        return Verdict(False, f"'{index}' is missing (named by the manifest '{path.name}').")
    digest, size = sha256_file(index)
    if size != data["bytes"] or digest != data["sha256"]:
        return Verdict(False, f"'{index}' does NOT match its manifest (SHA-256 {digest}, expected {data['sha256']}).")
    checked = 0
    with open(index, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        try:
            file_col, sha_col = header.index("file"), header.index("sha256")
        except ValueError:
            return Verdict(False, f"'{index}' has no 'file' and 'sha256' columns.")
        for row in reader:
            name, expected = row[file_col], row[sha_col]
            if not name:
                continue
            if Path(name).name != name:
                return Verdict(False, f"'{index}' line {reader.line_num}: '{name}' is not a plain file name.")
            image = folder / name
            if not image.is_file():
                return Verdict(False, f"'{image}' is missing (listed in '{index}' line {reader.line_num}).")
            if sha256_file(image)[0] != expected:
                return Verdict(False, f"'{image}' does NOT match the SHA-256 recorded in '{index}' line {reader.line_num}.")
            checked += 1
    return Verdict(True, f"'{folder}' matches its manifest ({checked} images and the index checked).")
