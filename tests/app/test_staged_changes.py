"""Local edits on a mirror are staged: the local copy changes at once and the Media Server action joins the change-set in the same transaction; discard takes them back; push sends them."""

from __future__ import annotations

import pytest

from app.cli import main
from app.domain import Failure, HashlensError, ListingQuery
from app.diff import DiffCounts, compare
from app.mediaserver.mirror import compare_snapshots
from app.mediaserver_codec import names
from app.store import Store, changes
from tests.standin import HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(180)


def entries(n: int, prefix: str = "id") -> list[HashEntry]:
    return [HashEntry(f"{prefix}{i:04d}", f"label {i}", True, [("n", str(i))]) for i in range(n)]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def listed(store, name: str) -> list[tuple]:
    rows = [r for batch in store.iter_listing(ListingQuery(name, imagestatus=True, metadata=True)) for r in batch]
    return [(r.identifier, r.label, tuple(r.metadata)) for r in rows]


def server_rows(server, name: str) -> list[tuple]:
    return [(e.identifier, e.label, tuple(e.metadata)) for e in server.entries(name)]


EDITS = [
    ["relabel", "copy", "id0001", "cat"],
    ["meta", "update", "copy", "id0002", "n", "two"],
    ["meta", "add", "copy", "id0002", "source", "camera, left"],
    ["rename", "copy", "id0003", "renamed, with a comma"],
    ["remove", "copy", "id0004"],
    ["aci", "action=RemoveImageHashMetadata&database=copy&identifier=id0005&key=n"],
]


def test_edits_on_a_mirror_are_staged_listed_pushed_and_the_diff_shows_them(standin, store_url, capsys):
    server = standin({"db": entries(8)})
    assert run(capsys, "--store", store_url, "pull", server.url, "db", "--into", "copy")[0] == 0
    for argv in EDITS:
        code, out, err = run(capsys, "--store", store_url, *argv)
        assert code == 0, (argv, out, err)
    with Store.open(store_url) as store:
        # The local copy changed at once ...
        local = dict((i, (label, meta)) for i, label, meta in listed(store, "copy"))
        assert local["id0001"][0] == "cat" and local["id0002"][1] == (("n", "two"), ("source", "camera, left"))
        assert "id0004" not in local and "renamed, with a comma" in local and local["id0005"][1] == ()
        # ... and each edit staged, in the server's terms (the remote database's name).
        staged = changes.outstanding(store, "copy")
        assert [c.action for c in staged] == [
            names.RELABEL_IMAGE_HASH_IMAGE, names.UPDATE_IMAGE_HASH_METADATA, names.ADD_IMAGE_HASH_METADATA,
            names.RENAME_IMAGE_HASH, names.REMOVE_IMAGE_HASH, names.REMOVE_IMAGE_HASH_METADATA]
        assert {c.database for c in staged} == {"db"}
        assert staged[1].prior == {"value": "2"} and staged[5].prior == {"value": "5"}
    assert server.applied == []  # nothing sent yet
    code, out, _ = run(capsys, "--store", store_url, "changes", "copy")
    assert out.splitlines()[0] == ("action=RelabelImageHashImage&database=db&identifier=id0001&imagelabel=label%201"
                                   "&newimagelabel=cat")
    code, _, err = run(capsys, "--store", store_url, "pull", server.url, "db", "--into", "copy")
    assert code == 1 and "6 staged change(s)" in err
    code, out, err = run(capsys, "--store", store_url, "push", "copy")
    assert code == 0, (out, err)
    assert "6 change(s) confirmed, 0 failed." in out and "snapshot 2" in out
    with Store.open(store_url) as store:
        assert server_rows(server, "db") == listed(store, "copy")
        assert changes.outstanding(store, "copy") == []
        sides = compare_snapshots(store, "copy")
        counts = DiffCounts()
        found = list(compare(sides.old, sides.new, counts))
        assert (counts.added, counts.removed, counts.changed) == (1, 2, 3), found
    assert [a for a, _ in server.applied] == [c for c in (
        names.RELABEL_IMAGE_HASH_IMAGE, names.UPDATE_IMAGE_HASH_METADATA, names.ADD_IMAGE_HASH_METADATA,
        names.RENAME_IMAGE_HASH, names.REMOVE_IMAGE_HASH, names.REMOVE_IMAGE_HASH_METADATA)]


def test_a_refused_edit_stages_nothing(standin, sqlite_url, capsys):
    server = standin({"db": entries(3)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    code, _, err = run(capsys, "--store", sqlite_url, "relabel", "db", "id0001", "x", "--current", "wrong")
    assert code == 1 and "imagelabel=wrong" in err
    code, _, err = run(capsys, "--store", sqlite_url, "meta", "remove", "db", "id0001", "absent")
    assert code == 1
    with Store.open(sqlite_url) as store:
        assert changes.outstanding(store, "db") == []


def test_discard_returns_the_local_copy_to_the_snapshot_plus_the_remaining_changes(standin, sqlite_url, capsys):
    server = standin({"db": entries(6)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    with Store.open(sqlite_url) as store:
        snapshot = listed(store, "db")
    for argv in (["relabel", "db", "id0001", "one"], ["remove", "db", "id0002"], ["meta", "update", "db", "id0003", "n", "x"],
                 ["rename", "db", "id0004", "four"]):
        assert run(capsys, "--store", sqlite_url, *argv)[0] == 0
    code, out, _ = run(capsys, "--store", sqlite_url, "discard", "db", "--last", "2")
    assert code == 0 and "Discarded 2" in out and "2 remain" in out
    with Store.open(sqlite_url) as store:
        expected = [("id0001" if i == "id0001" else i, "one" if i == "id0001" else label, meta)
                    for i, label, meta in snapshot if i != "id0002"]
        assert listed(store, "db") == expected
        assert [c.action for c in changes.outstanding(store, "db")] == [names.RELABEL_IMAGE_HASH_IMAGE,
                                                                        names.REMOVE_IMAGE_HASH]
        assert [e.action for e in store.history(database="db")][-1] == names.DISCARD_IMAGE_HASH_CHANGES
    assert run(capsys, "--store", sqlite_url, "discard", "db")[0] == 0
    with Store.open(sqlite_url) as store:
        assert listed(store, "db") == snapshot and changes.outstanding(store, "db") == []
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0  # allowed again
    assert server.applied == []


def test_a_move_between_mirrors_of_one_server_is_staged_and_discarding_it_moves_it_back(standin, sqlite_url, capsys):
    server = standin({"db": entries(3), "other": entries(2, "o")})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--into", "A")[0] == 0
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "other", "--into", "B")[0] == 0
    assert run(capsys, "--store", sqlite_url, "move", "A", "id0001", "B")[0] == 0
    with Store.open(sqlite_url) as store:
        assert "id0001" in [r[0] for r in listed(store, "B")] and "id0001" not in [r[0] for r in listed(store, "A")]
        [move] = changes.outstanding(store, "A")
        assert move.line() == "action=MoveImageHash&database=db&identifier=id0001&newdatabase=other"
        with pytest.raises(HashlensError) as caught:
            store.create_database("local")
            store.move_entry("A", "id0000", "local")
        assert caught.value.failure is Failure.READ_ONLY and "only to another mirror of the same server" in \
            caught.value.description
    code, _, err = run(capsys, "--store", sqlite_url, "discard", "B")
    assert code == 0  # B has nothing staged itself
    assert run(capsys, "--store", sqlite_url, "discard", "A")[0] == 0
    with Store.open(sqlite_url) as store:
        assert [r[0] for r in listed(store, "A")] == ["id0000", "id0001", "id0002"]
        assert [r[0] for r in listed(store, "B")] == ["o0000", "o0001"]
    assert run(capsys, "--store", sqlite_url, "move", "A", "id0001", "B")[0] == 0
    code, out, err = run(capsys, "--store", sqlite_url, "push", "A")
    assert code == 0, (out, err)
    assert [e.identifier for e in server.entries("other")] == ["o0000", "o0001", "id0001"]
    assert server.applied == [(names.MOVE_IMAGE_HASH, {"database": "db", "identifier": "id0001",
                                                       "newdatabase": "other"})]
