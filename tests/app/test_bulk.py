"""Bulk appends keep every invariant of Store.add_entry, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.services import actions
from app.store import Store
from app.store.bulk import append_entries
from app.store.store import MARK_SPACING


def entry(i: int, *, image: bytes | None = None, metadata=(), prefix: str = "e") -> NewEntry:
    # Awkward names on purpose: case, accents, commas and trailing spaces must all survive.
    identifier = f"{prefix}{i:05d}" + ("É, x " if i % 7 == 0 else "")
    phash = (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF  # about half have the top bit set
    sha = hashlib.sha256(image).hexdigest() if image is not None else None
    return NewEntry(identifier, f"label {i % 13}", phash, image, "PNG" if image else None,
                    64 if image else None, 48 if image else None, sha, tuple(metadata), 1_700_000_000_000 + i)


def sample(n: int, image_bytes, *, start: int = 0, prefix: str = "e") -> list[NewEntry]:
    out = []
    for i in range(start, start + n):
        image = image_bytes(i % 5) if i % 50 == 0 else None
        metadata = [("source", f"s{i % 3}")] + ([("importance", "high")] if i % 4 == 0 else [])
        out.append(entry(i, image=image, metadata=metadata, prefix=prefix))
    return out


def full_listing(store, database="db", metadata=True):
    return actions.list_image_hashes(store, ListingQuery(database, metadata=metadata, imagestatus=True)).rows


def marks(store, database="db"):
    db_id = store.database_id(database)
    return store.sql.all("SELECT ordinal, entry_id FROM hl_mark WHERE database_id = ? ORDER BY ordinal", (db_id,))


def assert_consistent(store, database="db"):
    """Count, marks, meta_count and image flags all agree with the rows themselves."""
    rows = full_listing(store, database)
    count = store.sql.one("SELECT entry_count FROM hl_database WHERE name = ?", (database,))[0]
    assert count == len(rows)
    assert [r.position for r in rows] == list(range(1, len(rows) + 1))
    assert [r.key for r in rows] == sorted(r.key for r in rows)
    expected_marks = [(r.position, r.key) for r in rows if r.position % MARK_SPACING == 0]
    assert [tuple(m) for m in marks(store, database)] == expected_marks
    for r in rows:
        assert r.meta_count == len(r.metadata)
    keys = [r.key for r in rows]
    images = store.images_by_key(keys)
    for r in rows:
        assert r.has_image_data == (r.key in images)
        if r.has_image_data:
            assert r.byte_size == len(images[r.key])
    # Every window is the matching slice of the whole listing (position marks at work).
    n = len(rows)
    for start in sorted({1, 2, MARK_SPACING - 1, MARK_SPACING, MARK_SPACING + 1, 2 * MARK_SPACING,
                         2 * MARK_SPACING + 1, n - 1, n, n + 1}):
        if start < 1:
            continue
        page = actions.list_image_hashes(store, ListingQuery(database, start=start, maxresults=50, metadata=True)).rows
        assert page == rows[start - 1:start + 49], f"window at start={start}"
        assert store.count(ListingQuery(database)).value == n
    return rows


def test_append_keeps_every_invariant(store, image_bytes):
    actions.create_database(store, "db")
    actions.create_database(store, "other")
    before = sample(10, image_bytes, prefix="old")
    for e in before:
        actions.add_entry(store, "db", e)
    actions.add_entry(store, "other", entry(1, prefix="x"))
    new = sample(2600, image_bytes)
    seen = []
    added = append_entries(store, "db", new, batch=700, total=len(new), progress=lambda d, t: seen.append((d, t)))
    assert added == 2600
    assert seen[0] == (0, 2600) and seen[-1] == (2600, 2600)
    rows = assert_consistent(store)
    assert [r.identifier for r in rows] == [e.identifier for e in before + new]
    by_id = {e.identifier: e for e in before + new}
    for r in rows:
        e = by_id[r.identifier]
        assert (r.label, r.phash, r.trained_at, r.metadata) == (e.label, e.phash, e.trained_at, e.metadata)
        assert r.has_image_data == (e.image_data is not None)
    assert any(r.phash >= 1 << 63 for r in rows)  # stored signed, listed unsigned
    picture = next(e for e in new if e.image_data is not None)
    assert actions.image(store, "db", picture.identifier).data == picture.image_data
    # The other database is untouched, and later single adds continue the numbering.
    assert [r.identifier for r in full_listing(store, "other")] == ["x00001"]
    for e in sample(MARK_SPACING, image_bytes, start=5000):
        store_add(store, e)
    assert_consistent(store)
    journal = [j for j in store.history() if j.action == "AppendImageHashes"]
    assert sum(j.params["entries"] for j in journal) == 2600
    assert journal[0].params["first"] == new[0].identifier


def store_add(store, e):
    with store.writing():
        store.add_entry("db", e)


def test_rebuild_marks_agrees(store, image_bytes):
    actions.create_database(store, "db")
    append_entries(store, "db", sample(3 * MARK_SPACING + 5, image_bytes), batch=1000, commit_every=2000)
    bulk_marks = marks(store)
    with store.writing():
        store.rebuild_marks("db")
    assert marks(store) == bulk_marks
    assert len(bulk_marks) == 3
    assert_consistent(store)


@pytest.mark.parametrize("atomic", [False, True])
def test_duplicate_of_an_existing_identifier(store, image_bytes, atomic):
    actions.create_database(store, "db")
    actions.add_entry(store, "db", entry(1234))
    entries = sample(1000, image_bytes)  # e00000..e00999; the clash goes in at 650
    entries[650] = entry(1234, metadata=[("source", "x")])
    with pytest.raises(HashlensError) as caught:
        append_entries(store, "db", entries, batch=300, atomic=atomic)
    assert caught.value.failure is Failure.IDENTIFIER_EXISTS
    message = caught.value.description
    assert message.startswith("'identifier=e01234' already exists")
    rows = full_listing(store)
    if atomic:
        assert message == "'identifier=e01234' already exists"
        assert [r.identifier for r in rows] == ["e01234"]
    else:
        # Batches of 300: the first two committed whole, the third (holding the clash) not.
        assert "600 entries" in message
        assert [r.identifier for r in rows] == ["e01234"] + [e.identifier for e in entries[:600]]
    assert_consistent(store)


def test_duplicate_inside_the_input_and_inside_one_transaction(store, image_bytes):
    actions.create_database(store, "db")
    entries = sample(500, image_bytes)
    entries.insert(420, entries[10])  # repeats an identifier of an earlier batch of the same transaction
    with pytest.raises(HashlensError) as caught:
        append_entries(store, "db", entries, batch=100, commit_every=1000)
    assert caught.value.failure is Failure.IDENTIFIER_EXISTS
    assert caught.value.description == f"'identifier={entries[10].identifier}' already exists"
    assert full_listing(store) == []
    entries = sample(50, image_bytes)
    entries.append(entries[3])  # twice within one batch
    with pytest.raises(HashlensError, match="already exists"):
        append_entries(store, "db", entries)
    assert_consistent(store)


def test_duplicate_metadata_key_is_refused(store):
    actions.create_database(store, "db")
    bad = entry(1, metadata=[("k", "1"), ("k", "2")])
    with pytest.raises(HashlensError) as caught:
        append_entries(store, "db", [entry(0), bad])
    assert caught.value.failure is Failure.KEY_EXISTS
    assert "'k'" in caught.value.description and "e00001" in caught.value.description
    assert full_listing(store) == []


def test_missing_database(store):
    with pytest.raises(HashlensError) as caught:
        append_entries(store, "nope", [entry(1)])
    assert caught.value.failure is Failure.NO_SUCH_DATABASE
    assert caught.value.description == "'database=nope' does not exist"


def test_cancel_keeps_whole_batches_or_nothing(sqlite_store, image_bytes):
    store = sqlite_store
    actions.create_database(store, "db")
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    added = append_entries(store, "db", sample(1000, image_bytes), batch=100, cancelled=cancelled)
    assert added == 300
    assert len(assert_consistent(store)) == 300
    calls.clear()
    with pytest.raises(HashlensError) as caught:
        append_entries(store, "db", sample(1000, image_bytes, start=5000), batch=100, atomic=True, cancelled=cancelled)
    assert caught.value.failure is Failure.CANCELLED
    assert len(assert_consistent(store)) == 300


def test_inside_a_callers_transaction(sqlite_store, image_bytes):
    store = sqlite_store
    actions.create_database(store, "db")
    with pytest.raises(RuntimeError):
        with store.writing():
            append_entries(store, "db", sample(300, image_bytes), batch=100)
            raise RuntimeError("the caller changes its mind")
    assert full_listing(store) == []


def test_cache_size_is_put_back(sqlite_store):
    store = sqlite_store
    actions.create_database(store, "db")
    before = store.sql.one("PRAGMA cache_size")[0]
    append_entries(store, "db", [entry(i) for i in range(10)], cache_mb=300)
    assert store.sql.one("PRAGMA cache_size")[0] == before


def test_killed_load_leaves_whole_transactions(tmp_path):
    """SIGKILL in the middle of a load: the committed transactions are there, whole, and
    the store is intact (reliability K2's bulk variant)."""
    url = "sqlite:///" + str(tmp_path / "kill.db")
    with Store.open(url) as store:
        actions.create_database(store, "db")
    script = textwrap.dedent(f"""
        from app.store import Store
        from app.store.bulk import append_entries
        from app.domain import NewEntry
        store = Store.open({url!r})
        entries = (NewEntry(f"k{{i}}", "l", i, None, None, None, None, None, (("m", str(i)),)) for i in range(10_000))
        append_entries(store, "db", entries, batch=250, commit_every=500)
    """)
    env = dict(os.environ, HASHLENS_FAULTS="bulk.batch=7:kill")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=os.getcwd(), capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    with Store.open(url) as store:
        rows = assert_consistent(store)
        # Batches 1-6 ran; transactions of two batches: the first three committed.
        assert [r.identifier for r in rows] == [f"k{i}" for i in range(1500)]
        assert store.sql.one("PRAGMA integrity_check")[0] == "ok"
