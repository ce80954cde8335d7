"""A mirror is an ordinary database: listed, exported and audited through `Source`, changed only by a pull, refused by every local write action."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from app.cli import main
from app.domain import Failure, HashlensError, ListingQuery, MirrorSource, NewEntry
from app.mediaserver_codec import names
from app.store import Store, mirrors
from app.store.bulk import append_entries
from app.store.schema import MIRRORS_AS_DATABASES
from tests.standin import HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(180)


def entries(n: int) -> list[HashEntry]:
    return [HashEntry(f"id{i:04d}", f"label {i}", i % 3 != 0, [("n", str(i)), ("k:v", "a,b")]) for i in range(n)]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def listed(store, name: str = "db") -> list[tuple]:
    rows = [r for batch in store.iter_listing(ListingQuery(name, imagestatus=True, metadata=True)) for r in batch]
    return [(r.identifier, r.label, r.phash, r.metadata) for r in rows]


def pulls(store, name: str = "db") -> list:
    return [r for r in store.history(database=name) if r.action == names.PULL_IMAGE_HASHES]


def test_a_pull_makes_an_ordinary_database_and_a_second_pull_replaces_its_entries(standin, store_url, capsys):
    server = standin({"db": entries(12)})
    assert run(capsys, "--store", store_url, "pull", server.url, "db", "--page-size", "5")[0] == 0
    with Store.open(store_url) as store:
        [info] = store.list_databases()
        assert (info.name, info.entry_count) == ("db", 12)
        assert info.mirror.source == MirrorSource(server.url, "db") and info.mirror.number == 1
        assert store.mirror_of("db") == MirrorSource(server.url, "db")
        rows = listed(store)
        # Server order, no pHash (not known), the server's metadata in its order.
        assert [r[0] for r in rows] == [e.identifier for e in server.entries("db")]
        assert {r[2] for r in rows} == {None}
        assert rows[4][3] == (("n", "4"), ("k:v", "a,b"))
        assert len(pulls(store)) == 1
        assert not [r for r in store.history(database="db") if r.action == names.APPEND_IMAGE_HASHES]
    db = server.databases["db"]
    db[2].label = "relabelled"
    del db[5]
    db.append(HashEntry("late", "new", True, [("x", "y")]))
    assert run(capsys, "--store", store_url, "pull", server.url, "db", "--page-size", "5")[0] == 0
    with Store.open(store_url) as store:
        rows = listed(store)
        assert [r[0] for r in rows] == [e.identifier for e in server.entries("db")]
        assert rows[2][1] == "relabelled" and "id0005" not in [r[0] for r in rows] and rows[-1][0] == "late"
        [info] = store.list_databases()
        assert info.entry_count == 12 and info.mirror.number == 2
        assert [s.number for s in mirrors.snapshots(store, "db")] == [1, 2]  # both kept for differences
        # One journal record per pull, saying what it did.
        assert [(r.params["snapshot"], r.params["entries"], r.params["replaced"]) for r in pulls(store)] == [
            (1, 12, 0), (2, 12, 12)]
        # start=N seeks by the position marks the bulk path keeps.
        page = store.list_page(ListingQuery("db", start=11, maxresults=5))
        assert [r.identifier for r in page.rows] == ["id0011", "late"] and page.total == 12


def test_db_list_marks_mirrors_and_the_listing_export_and_audit_read_them(standin, sqlite_url, tmp_path, capsys):
    server = standin({"db": entries(6)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    assert run(capsys, "--store", sqlite_url, "db", "create", "local")[0] == 0
    code, out, _ = run(capsys, "--store", sqlite_url, "db", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert f"mirror of {server.url} database 'db': snapshot 1, as of " in lines[0] and lines[0].startswith("db ")
    assert "mirror" not in lines[1]
    code, out, _ = run(capsys, "--store", sqlite_url, "list", "db", "--format", "json")
    assert code == 0 and "id0005" in out
    target = tmp_path / "db.csv"
    code, _, err = run(capsys, "--store", sqlite_url, "export", "db", "-o", str(target), "--format", "csv")
    assert code == 0, err
    assert target.read_text(encoding="utf-8").count("id000") == 6
    code, out, _ = run(capsys, "--store", sqlite_url, "aci",
                       "action=ListImageHashes&database=db&imagestatus=true&metadata=true")
    assert code == 0 and out.count("<identifier>") == 6 and "<key>k:v</key>" in out
    code, out, err = run(capsys, "--store", sqlite_url, "audit", "db")
    assert "Traceback" not in err and code in (0, 1, 3), err


# The write actions Media Server has for an existing entry are staged on a mirror instead
# (issue 12: tests/app/test_staged_changes.py); a move out of a mirror into a local
# database has no Media Server equivalent and is refused.
WRITES = [
    ("move out", lambda s: s.move_entry("db", "id0001", "local")),
    ("move in", lambda s: s.move_entry("local", "l1", "db")),
    ("train", lambda s: s.add_entry("db", NewEntry("t", "t", 1, None, None, None, None, None))),
    ("rename database", lambda s: s.rename_database("db", "renamed")),
    ("remove database", lambda s: s.remove_database("db")),
    ("bulk append", lambda s: append_entries(s, "db", [NewEntry("b", "b", 1, None, None, None, None, None)])),
    ("in a group", lambda s: _in_group(s)),
    # The bulk paths of training with a pool and of imports (issue 15) refuse it too.
    ("train a batch", lambda s: s.add_entries("db", [(NewEntry("t", "t", 1, None, None, None, None, None), None)])),
    ("import", lambda s: _import(s)),
]


def _import(store) -> None:
    from app.exports.importer import import_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.ndjson"
        path.write_text('{"identifier": "i", "phash": "0000000000000001"}\n', encoding="utf-8")
        import_file(store, path, "db")


def _in_group(store) -> None:
    with store.group(names.IMPORT_IMAGE_HASHES, "db"):
        store.add_entry("db", NewEntry("g", "g", 1, None, None, None, None, None))


@pytest.mark.parametrize("what, write", WRITES, ids=[w[0] for w in WRITES])
def test_every_local_write_refuses_a_mirror_and_changes_nothing(standin, store_url, capsys, what, write):
    server = standin({"db": entries(4)})
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    with Store.open(store_url) as store:
        store.create_database("local")
        store.add_entry("local", NewEntry("l1", "l", 5, None, None, None, None, None))
        before, token = listed(store), store.change_token()
        with pytest.raises(HashlensError) as caught:
            write(store)
        assert caught.value.failure is Failure.READ_ONLY and caught.value.parameter == "database"
        assert f"'db' is a mirror of {server.url} database 'db', so " in str(caught.value)
        assert listed(store) == before and store.change_token() == token
        assert [d.name for d in store.list_databases()] == ["db", "local"]


def test_the_command_line_and_the_aci_refuse_a_mirror_plainly(standin, sqlite_url, capsys):
    server = standin({"db": entries(3)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    for argv in (["db", "rename", "db", "other"], ["db", "remove", "db"]):
        code, out, err = run(capsys, "--store", sqlite_url, *argv)
        assert code == 1 and out == "" and "Traceback" not in err, argv
        assert err.startswith(f"hashlens: 'db' is a mirror of {server.url}") and "read-only here" in err, argv
    code, out, _ = run(capsys, "--store", sqlite_url, "aci", "action=RenameImageHashDatabase&database=db&newdatabase=x")
    assert code == 1 and "<response>ERROR</response>" in out and "ERRORREADONLY" in out and "is a mirror of" in out
    code, out, _ = run(capsys, "--store", sqlite_url, "aci", "action=CreateImageHashDatabase&database=db")
    assert code == 1 and "already exists" in out
    with Store.open(sqlite_url) as store:
        assert [r[0] for r in listed(store)] == ["id0000", "id0001", "id0002"]


def test_pulling_into_a_mirror_of_the_same_source_is_allowed_and_a_local_database_is_refused(
        standin, sqlite_url, capsys):
    server = standin({"db": entries(3)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--into", "copy")[0] == 0
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--into", "copy")[0] == 0
    assert run(capsys, "--store", sqlite_url, "db", "create", "mine")[0] == 0
    code, _, err = run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--into", "mine")
    assert code == 1 and "'mine' is a local database, not a mirror" in err
    with Store.open(sqlite_url) as store:
        assert {d.name: d.entry_count for d in store.list_databases()} == {"copy": 3, "mine": 0}


def test_removing_a_mirror_drops_its_database_and_snapshots(standin, sqlite_url, capsys):
    server = standin({"db": entries(3)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    code, out, _ = run(capsys, "--store", sqlite_url, "mirrors", "db", "--remove")
    assert code == 0 and "3 entries and 1 snapshot(s)" in out
    with Store.open(sqlite_url) as store:
        assert store.list_databases() == [] and store.mirror_of("db") is None and mirrors.snapshots(store, "db") == []
    assert run(capsys, "--store", sqlite_url, "mirrors", "--remove")[0] == 2
    code, _, err = run(capsys, "--store", sqlite_url, "mirrors", "db", "--remove")
    assert code == 1 and "'db' is not a mirror" in err
    assert run(capsys, "--store", sqlite_url, "db", "create", "db")[0] == 0  # the name is free again


def _as_an_older_store(url: str, local: str, then=None) -> None:
    """Make the store look as stores did before mirrors were databases: each mirror only in
    its snapshot tables, and no MIRRORS_AS_DATABASES row; and make a local database named
    `local`, as an older version let one take a mirror's name."""
    with Store.open(url) as store:
        with store.writing():
            for (name,) in store.sql.all("SELECT name FROM hl_mirror"):
                store.entries.remove_database(name)
            store.entries.create_database(local)
            store.sql.exec("DELETE FROM hl_store_info WHERE name = ?", (MIRRORS_AS_DATABASES,))
        if then is not None:
            then(store)


def test_an_older_store_s_mirrors_become_databases_on_the_first_writable_open(standin, store_url, capsys):
    server = standin({"db": entries(5), "logos": entries(2)})
    for remote in ("db", "logos"):
        assert run(capsys, "--store", store_url, "pull", server.url, remote)[0] == 0
    server.databases["db"][0].label = "newer"
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    with Store.open(store_url) as store:
        expected = listed(store)
    _as_an_older_store(store_url, local="logos")
    with Store.open(store_url, read_only=True) as store:
        assert [d.name for d in store.list_databases()] == ["logos"]  # a read-only open changes nothing
        assert [name for name, _, _ in mirrors.list_mirrors(store)] == ["db", "logos"]
    with Store.open(store_url) as store:
        infos = {d.name: d for d in store.list_databases()}
        assert set(infos) == {"db", "logos", "logos (mirror)"}
        assert infos["db"].mirror.number == 2 and infos["logos"].mirror is None
        assert infos["logos (mirror)"].entry_count == 2 and store.mirror_of("logos (mirror)") is not None
        assert listed(store) == expected and listed(store)[0][1] == "newer"  # the latest snapshot
        assert [r.params.get("materialized") for r in pulls(store)] == [None, None, True]
        assert any(r.action == names.RENAME_IMAGE_HASH_DATABASE and r.params["newdatabase"] == "logos (mirror)"
                   for r in store.history(database="logos"))
    with Store.open(store_url) as store:  # once only
        assert len(pulls(store)) == 3
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    with Store.open(store_url) as store:
        assert [s.number for s in mirrors.snapshots(store, "db")] == [1, 2, 3]


def test_a_pull_that_lists_an_identifier_twice_stores_nothing(standin, store_url, capsys):
    server = standin({"db": entries(4)})
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    server.databases["db"].append(HashEntry("id0001", "again"))
    code, _, err = run(capsys, "--store", store_url, "pull", server.url, "db")
    assert code == 1 and "listed an identifier twice" in err
    with Store.open(store_url) as store:
        assert [r[0] for r in listed(store)] == ["id0000", "id0001", "id0002", "id0003"]
        assert len(mirrors.snapshots(store, "db")) == 1 and len(pulls(store)) == 1


def test_refresh_pulls_each_mirror_again_from_where_it_came(standin, sqlite_url, capsys):
    server, other = standin({"db": entries(4)}), standin({"logos": entries(2)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    assert run(capsys, "--store", sqlite_url, "pull", other.url, "logos", "--into", "Logos")[0] == 0
    server.databases["db"][0].label = "changed"
    code, out, _ = run(capsys, "--store", sqlite_url, "refresh")
    assert code == 0 and "snapshot 2" in out and out.count("Pulled ") == 2
    code, out, _ = run(capsys, "--store", sqlite_url, "diff", "db")
    assert code == 3 and "id0000" in out
    code, _, err = run(capsys, "--store", sqlite_url, "refresh", "db", "nope")
    assert code == 2 and "'nope' is not a mirror; mirrors here: Logos, db." in err
    other.stop()  # the second server is gone: that refresh fails, the first still happens
    code, out, err = run(capsys, "--store", sqlite_url, "refresh", "Logos", "db", "--retries", "0")
    assert code == 1 and "'Logos' was not refreshed (its previous snapshot is kept)" in err and "snapshot 3" in out
    with Store.open(sqlite_url) as store:
        assert {d.name: d.mirror.number for d in store.list_databases()} == {"Logos": 2, "db": 3}


def test_a_version_1_store_s_mirror_becomes_a_database_when_it_is_migrated(standin, store_url, tmp_path, capsys):
    from tests.app.test_migration import _v1

    server = standin({"db": entries(5)})
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    with Store.open(store_url) as store:
        expected = listed(store)
    _as_an_older_store(store_url, local="local", then=_v1)
    with Store.open(store_url) as store:
        assert store.read_only and [d.name for d in store.list_databases()] == ["local"]
        store.migrate(tmp_path / "backup.db")
        assert store.schema_version == 2
        assert [d.name for d in store.list_databases()] == ["db", "local"] and listed(store) == expected
        rows = store.list_page(ListingQuery("db", imagestatus=True)).rows
        assert [r.declared_image_data for r in rows] == [e.has_image_data for e in server.entries("db")]


def test_attached_phashes_and_images_stay_with_their_entries_through_a_pull(standin, store_url, capsys):
    from tests.conftest import make_image

    server = standin({"db": entries(6)})
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    image = make_image(5)
    with Store.open(store_url) as store:
        store.attach_image("db", "id0001", 0x1234, image, "PNG", 64, 48, "ab" * 32)
        store.attach_image("db", "id0002", 0x5678)  # a pHash without keeping the image
        store.attach_image("db", "id0003", 0x9ABC, image, "PNG", 64, 48, "cd" * 32)
    db = server.databases["db"]
    db[1].label = "relabelled"  # the same image under another label
    del db[3]  # gone from the server: its pHash and image go too
    assert run(capsys, "--store", store_url, "pull", server.url, "db")[0] == 0
    with Store.open(store_url) as store:
        rows = {r.identifier: r for b in store.iter_listing(ListingQuery("db", imagestatus=True)) for r in b}
        assert rows["id0001"].phash == 0x1234 and rows["id0001"].has_image_data and rows["id0001"].label == "relabelled"
        assert store.image("db", "id0001").data == image
        assert rows["id0002"].phash == 0x5678 and not rows["id0002"].has_image_data
        assert "id0003" not in rows and {r.phash for i, r in rows.items() if i not in ("id0001", "id0002")} == {None}
        assert store.sql.one("SELECT COUNT(*) FROM hl_image")[0] == 1
        assert [d.name for d in store.list_databases()] == ["db"]
        assert pulls(store)[-1].params["kept_phashes"] == 2
        if store.backend == "sqlite":
            assert store.sql.one("PRAGMA integrity_check")[0] == "ok" and not store.sql.all("PRAGMA foreign_key_check")
