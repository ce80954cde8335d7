"""A pull's commit from its staging file: on SQLite the rows are derived in SQL, and they must be exactly the rows the bulk path writes for the same entries (keys in server order, metadata in its order, position marks, counts, the snapshot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.diff import metadata_json
from app.domain import Failure, HashlensError, MirrorSource
from app.mediaserver.staging import Staging, StoreStaging
from app.mediaserver_codec.reader import ImageStatus, ListedEntry
from app.store import Store, mirrors
from app.store.entries import MARK_SPACING

SOURCE = MirrorSource("http://127.0.0.1:1", "db")
# What an XML 1.0 answer can carry (no NUL, no C0 control but tab, line feed, CR).
text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r"), max_size=8)


def listed(n: int, *, variant: str = "") -> list[ListedEntry]:
    # Identifiers out of identifier order (server order is not sorted), some entries
    # without image status or metadata, keys not in sorted order.
    return [ListedEntry(f"id{(i * 7919) % n:06d}", {},
                        None if i % 11 == 0 else (ImageStatus(f"label {i}{variant}", "trained", i % 3 != 0),),
                        None if i % 13 == 0 else (("z", str(i)), ("a", "ä\n\"x\"")) if i % 2 else (), 0)
            for i in range(n)]


def tables(store: Store, name: str) -> dict[str, list]:
    """The mirror's rows, keys made relative so two stores compare."""
    db_id = store.database_id(name)
    entries = store.sql.all("SELECT id, identifier, label, phash, has_image_data, image_format, width, height, "
                            "byte_size, sha256, meta_count, trained_at, declared_image_data FROM hl_entry "
                            "WHERE database_id = ? ORDER BY id", (db_id,))
    first = entries[0][0] if entries else 0
    metadata = store.sql.all("SELECT m.entry_id, m.meta_key, m.meta_value FROM hl_metadata m JOIN hl_entry e "
                             "ON e.id = m.entry_id WHERE e.database_id = ? ORDER BY m.id", (db_id,))
    marks = store.sql.all("SELECT ordinal, entry_id FROM hl_mark WHERE database_id = ? ORDER BY ordinal", (db_id,))
    # Key order: a snapshot's rows are kept in server order (a discard rebuilds the local
    # copy from them in key order, app.store.changes.snapshot_in_server_order).
    snapshot = store.sql.all("SELECT identifier, label, has_image_data, metadata FROM hl_snapshot_entry ORDER BY "
                             "snapshot_id, id")
    return {
        "entries": [(e[0] - first, *e[1:]) for e in entries],
        "metadata": [(k - first, key, value) for k, key, value in metadata],
        "marks": [(o, k - first) for o, k in marks],
        "snapshot": snapshot,
        "count": store.sql.all("SELECT entry_count FROM hl_database WHERE id = ?", (db_id,)),
        "snapshots": [(s.number, s.entry_count) for s in mirrors.snapshots(store, name)],
    }


def commit(store: Store, entries: list[ListedEntry], *, plain: bool | str, taken_at: int = 1000):
    """Commit `entries` as a pull would: staged in a file and derived in SQL (plain False),
    through the bulk path (plain True), or stored page by page while pulling ("writer")."""
    if plain == "writer":
        return commit_while_pulling(store, entries, taken_at=taken_at)
    with Staging() as staged:
        staged.add(entries)
        given_entries = list(staged.entries()) if plain else staged
        return mirrors.commit_snapshot(store, "db", SOURCE, given_entries, taken_at=taken_at)


def commit_while_pulling(store: Store, entries: list[ListedEntry], *, taken_at: int = 1000, page: int = 7):
    """The SQLite pull's way: pages stored as they come, after a false start (a restart)."""
    with mirrors.SnapshotWriter(store, "db", SOURCE, dated=taken_at) as writer:
        sink = StoreStaging(writer)
        sink.add(entries[:page])
        sink.restart()
        for start in range(0, len(entries), page):
            sink.add(entries[start:start + page])
        return writer.finish(taken_at)


MODES = (False, True, "writer")


def test_the_staged_commit_writes_the_rows_the_bulk_path_writes(tmp_path):
    n = 2 * MARK_SPACING + 5
    results = []
    for plain in MODES:
        with Store.open(f"sqlite:///{tmp_path}/{plain}.db") as store:
            commit(store, listed(n), plain=plain)
            commit(store, listed(n - 3, variant=" again"), plain=plain, taken_at=2000)  # replaces the entries
            results.append(tables(store, "db"))
            assert store.db.execute_sql("PRAGMA foreign_key_check").fetchall() == []
            assert store.db.execute_sql("PRAGMA integrity_check").fetchone() == ("ok",)
    staged, bulk, writer = results
    assert staged == bulk == writer
    assert len(staged["entries"]) == n - 3 and [m[0] for m in staged["marks"]] == [MARK_SPACING, 2 * MARK_SPACING]
    # Server order is key order; the staging file is not left attached.
    assert [e[1] for e in staged["entries"]] == [e.identifier for e in listed(n - 3)]
    assert [e[0] for e in staged["snapshot"][n:]] == [e.identifier for e in listed(n - 3)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(text, st.none() | text, st.none() | st.booleans(),
                          st.none() | st.dictionaries(text, text, max_size=3)), max_size=12, unique_by=lambda r: r[0]))
def test_any_staged_entries_commit_as_the_bulk_path_commits_them(tmp_path_factory, rows):
    entries = [ListedEntry(ident, {}, None if label is None and flag is None else (ImageStatus(label, None, flag),),
                           None if meta is None else tuple(meta.items()), 0) for ident, label, flag, meta in rows]
    results = []
    for plain in MODES:
        with Store.open(f"sqlite:///{tmp_path_factory.mktemp('s')}/store.db") as store:
            commit(store, entries, plain=plain)
            results.append(tables(store, "db"))
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("mode", [False, "writer"])
def test_a_metadata_key_given_twice_refuses_the_pull_and_stores_nothing(tmp_path, mode):
    with Store.open(f"sqlite:///{tmp_path}/store.db") as store:
        commit(store, listed(20), plain=mode)
        before = tables(store, "db")
        bad = listed(20)
        bad[5] = bad[5]._replace(metadata=(("k", "1"), ("k", "2")))
        with pytest.raises(HashlensError) as caught:
            commit(store, bad, plain=mode, taken_at=2000)
        assert caught.value.failure == Failure.KEY_EXISTS and bad[5].identifier in caught.value.description
        assert tables(store, "db") == before
        # The connection is usable, nothing is left attached and no page table is left.
        assert [r[1] for r in store.db.execute_sql("PRAGMA database_list").fetchall()] in (["main"],
                                                                                          ["main", "temp"])
        assert store.db.execute_sql("SELECT name FROM temp.sqlite_master").fetchall() == []


@pytest.mark.parametrize("mode", [False, "writer"])
def test_an_identifier_listed_twice_refuses_the_pull_and_stores_nothing(tmp_path, mode):
    with Store.open(f"sqlite:///{tmp_path}/store.db") as store:
        commit(store, listed(20), plain=mode)
        before = tables(store, "db")
        bad = listed(20)
        bad[17] = bad[17]._replace(identifier=bad[3].identifier)  # on another page than the first
        with pytest.raises(HashlensError, match="listed an identifier twice"):
            commit(store, bad, plain=mode, taken_at=2000)
        assert tables(store, "db") == before


def test_pages_stored_while_pulling_are_seen_by_no_one_until_the_pull_is_complete(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with Store.open(url) as store, Store.open(url) as other:
        commit(store, listed(20), plain="writer")
        before = tables(other, "db")
        with mirrors.SnapshotWriter(store, "db", SOURCE, dated=2000) as writer:
            StoreStaging(writer).add(listed(30, variant=" new"))
            writer._wait()  # the page is stored, in the open transaction
            assert tables(other, "db") == before
            # Leaving without finish (a cancel, an error) rolls every page back.
        assert tables(store, "db") == tables(other, "db") == before
        with mirrors.SnapshotWriter(store, "db", SOURCE, dated=2000) as writer:
            StoreStaging(writer).add(listed(30, variant=" new"))
            writer.finish(3000)
        assert [(s.number, s.taken_at, s.entry_count) for s in mirrors.snapshots(other, "db")] == [(1, 1000, 20),
                                                                                                     (2, 3000, 30)]


def test_metadata_json_is_the_standard_encoding(tmp_path):
    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(text, text), max_size=4))
    def same(items):
        assert metadata_json(items) == json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    same()


def test_a_staging_file_is_removed_when_done_and_a_dead_pulls_file_by_the_next(tmp_path):
    with Staging(str(tmp_path)) as staged:
        staged.add(listed(3))
        assert os.path.exists(staged.path)
    assert not os.path.exists(staged.path)
    # A pull killed mid-way leaves its file; its process is gone, so the next pull removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"hashlens-pull-{dead.stdout.strip()}-x.sqlite"
    orphan.write_bytes(b"")
    alive = tmp_path / f"hashlens-pull-{os.getpid()}-y.sqlite"
    alive.write_bytes(b"")
    with Staging(str(tmp_path)):
        pass
    assert not orphan.exists() and alive.exists()


def test_a_writer_that_meets_a_pull_in_progress_is_told_the_store_is_busy_and_why(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with Store.open(url) as store, Store.open(url) as other:
        commit(store, listed(5), plain="writer")
        with mirrors.SnapshotWriter(store, "db", SOURCE, dated=2000) as writer:
            StoreStaging(writer).add(listed(8))
            other.db.execute_sql("PRAGMA busy_timeout = 0")  # no wait for the lock (the default is seconds)
            with pytest.raises(HashlensError) as caught:
                other.create_database("local")
            assert caught.value.failure == Failure.STORE_BUSY
            assert "a pull from a Media Server" in caught.value.description
            writer.finish(3000)
        other.create_database("local")  # free again once the pull is stored
        assert [s.entry_count for s in mirrors.snapshots(other, "db")] == [5, 8]
