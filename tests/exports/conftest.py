"""Fixtures for export and import tests: stores with awkward entries, and the checks
that an anomaly changed nothing (store digest, target file, no temp files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.domain import NewEntry
from app.services import actions

AWKWARD = [
    "plain",
    "=HYPERLINK(\"http://x\",\"y\")",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "＝full-width",
    "'quoted",
    "comma, inside",
    'say "hi"',
    "new\nline",
    "crlf\r\nend",
    " spaced ",
    "é — ünïcödé 漢字 🙂",
    "../../etc/passwd",
    "CON",
    "a:b",
    "x" * 254,
    "🙂" * 63,
]


def add_plain(store, database: str, entries) -> None:
    """Entries without image data, each (identifier, label, phash, metadata, trained_at)."""
    if not store.database_exists(database):
        actions.create_database(store, database)
    with store.writing():
        for identifier, label, phash, metadata, trained_at in entries:
            store.add_entry(database, NewEntry(identifier, label, phash, None, None, None, None, None,
                                               tuple(metadata), trained_at))


@pytest.fixture
def awkward_store(sqlite_store, image_bytes):
    """A database 'Awk' with awkward identifiers, labels and metadata; every other entry
    has image data."""
    actions.create_database(sqlite_store, "Awk")
    for i, ident in enumerate(AWKWARD):
        meta = [("k", AWKWARD[(i + 1) % len(AWKWARD)]), ("=key", "-v")] if i % 3 else []
        if i % 2 == 0:
            actions.train_image(sqlite_store, "Awk", data=image_bytes(i), identifier=ident,
                                label=AWKWARD[-1 - i][:200], metadata=meta)
        else:
            add_plain(sqlite_store, "Awk", [(ident, AWKWARD[-1 - i][:200], (i * 0x9E3779B97F4A7C15) & (2**64 - 1),
                                             meta, 1_700_000_000_000 + i)])
    return sqlite_store


def store_digest(store) -> str:
    """An ordered hash over every table of the store (reliability: 'nothing lost')."""
    digest = hashlib.sha256()
    for table, order in (("hl_database", "id"), ("hl_entry", "id"), ("hl_image", "entry_id"),
                         ("hl_metadata", "id"), ("hl_mark", "database_id, ordinal"), ("hl_journal", "id")):
        for row in store.sql.all(f"SELECT * FROM {table} ORDER BY {order}"):
            digest.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)).encode())
    return digest.hexdigest()


def parts_in(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.name.startswith(".hashlens-"))
