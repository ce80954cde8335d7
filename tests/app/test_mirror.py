"""`hashlens pull`, `mirrors` and `diff` against the stand-in: complete snapshots, or a clear error with the previous one intact."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys

import pytest

from app.cli import main
from app.domain import ListingQuery
from app.store import Store, mirrors
from tests.standin import Fault, HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(180)


def entries(n: int) -> list[HashEntry]:
    return [HashEntry(f"id{i:04d}", f"label {i}", i % 4 != 0, [("n", str(i)), ("k:v", "a,b")]) for i in range(n)]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot_rows(url: str, name: str = "db") -> list[tuple]:
    """Every snapshot of the mirror, and the mirror's database as the listing reads it
    (its count, entries in order with their metadata, and the journal's pulls)."""
    with Store.open(url) as store:
        found = mirrors.snapshots(store, name)
        snaps = [(s.number, s.entry_count, [(e.identifier, e.label, e.has_image_data, e.items)
                                            for e in mirrors.snapshot_entries(store, name, s.number)])
                 for s in found]
        if not store.database_exists(name):
            return snaps
        count = {d.name: d.entry_count for d in store.list_databases()}[name]
        rows = [(r.identifier, r.label, r.metadata) for batch in store.iter_listing(
            ListingQuery(name, imagestatus=True, metadata=True)) for r in batch]
        journal = [(r.action, r.params) for r in store.history(database=name)]
        return snaps + [("database", count, rows, journal)]


def test_pull_pull_diff_on_every_backend(standin, store_url, capsys):
    server = standin({"db": entries(30)})
    code, out, err = run(capsys, "--store", store_url, "pull", server.url, "db", "--page-size", "7")
    assert code == 0 and "Pulled 30 entries" in out and "snapshot 1" in out, err
    code, _, err = run(capsys, "--store", store_url, "diff", "db")
    assert code == 1 and "has only snapshot 1" in err
    db = server.databases["db"]
    db[2].label = "relabelled"
    db[4].has_image_data = False  # it had none: no change
    db[1].has_image_data = False
    db[5].metadata = [("n", "changed")]
    del db[10]
    db.append(HashEntry("late", "new one", True, [("x", "y")]))
    code, out, _ = run(capsys, "--store", store_url, "pull", server.url, "db", "--page-size", "7")
    assert code == 0 and "snapshot 2" in out
    code, out, _ = run(capsys, "--store", store_url, "diff", "db", "--format", "json")
    assert code == 3
    doc = json.loads(out)
    assert [o["identifier"] for o in doc["added"]] == ["late"]
    assert [o["identifier"] for o in doc["removed"]] == ["id0010"]
    changed = {o["identifier"]: o for o in doc["changed"]}
    assert changed["id0002"]["label"] == {"old": "label 2", "new": "relabelled"}
    assert changed["id0001"]["has_image_data"] == {"old": True, "new": False}
    assert "id0004" not in changed
    assert changed["id0005"]["metadata"] == [{"key": "n", "old": "5", "new": "changed"},
                                             {"key": "k:v", "old": "a,b", "new": None}]
    code, out, _ = run(capsys, "--store", store_url, "diff", "db", "--from", "2", "--to", "2")
    assert code == 0 and "No differences (30 entries on both sides)." in out
    code, out, _ = run(capsys, "--store", store_url, "mirrors")
    assert code == 0 and "snapshot 2, 30 entries" in out and server.url in out


def test_diff_formats_and_an_output_file(standin, sqlite_url, tmp_path, capsys):
    server = standin({"db": entries(5)})
    run(capsys, "--store", sqlite_url, "pull", server.url, "db")
    server.databases["db"][0].label = "=HYPERLINK(1)"
    run(capsys, "--store", sqlite_url, "pull", server.url, "db")
    for fmt in ("text", "csv", "html", "json"):
        target = tmp_path / f"changes.{fmt}"
        code, out, err = run(capsys, "--store", sqlite_url, "diff", "db", "--format", fmt, "-o", str(target))
        assert code == 3 and out == "" and "1 changed" in err
        text = target.read_text(encoding="utf-8")
        assert "id0000" in text
    assert "'=HYPERLINK(1)" in (tmp_path / "changes.csv").read_text()
    assert (tmp_path / "changes.html").read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_diff_of_a_mirror_and_a_database_in_another_store(standin, sqlite_url, tmp_path, capsys):
    server = standin({"db": entries(3)})
    run(capsys, "--store", sqlite_url, "pull", server.url, "db")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert run(capsys, "--store", other, "db", "create", "local")[0] == 0
    code, out, _ = run(capsys, "--store", sqlite_url, "diff", "db", "local", "--other-store", other)
    assert code == 3 and out.count("\n- id") == 3 and "3 removed" in out
    code, _, err = run(capsys, "--store", sqlite_url, "diff", "db", "nope")
    assert code == 1 and "'database=nope' does not exist" in err


def test_pulling_over_something_else_is_refused(standin, sqlite_url, capsys):
    server, other = standin({"db": entries(3)}), standin({"db": entries(3)})
    assert run(capsys, "--store", sqlite_url, "db", "create", "local")[0] == 0
    code, _, err = run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--into", "local")
    assert code == 1 and "'local' is a local database, not a mirror" in err
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db")[0] == 0
    code, _, err = run(capsys, "--store", sqlite_url, "pull", other.url, "db")
    assert code == 1 and f"is a mirror of {server.url}" in err and "nothing was pulled" in err
    assert other.requests == []  # refused before a single request


def test_a_read_only_store_is_refused_before_any_request(standin, sqlite_url, capsys):
    server = standin({"db": entries(3)})
    assert run(capsys, "--store", sqlite_url, "db", "create", "Local")[0] == 0  # the store file exists
    code, _, err = run(capsys, "--store", sqlite_url, "--read-only", "pull", server.url, "db")
    assert code == 1 and "Cannot pull into 'db'" in err and server.requests == []


FAULTS = [
    (Fault("error", at=3), "answered ERROR"),
    (Fault("close", at=2, times=None), "closed the connection"),
    (Fault("close_mid", at=2, times=None), "closed the connection"),
    (Fault("http_status", at=2, times=None), "HTTP 502"),
    (Fault("malformed", at=2), "not well-formed"),
    (Fault("truncated", at=3), "truncated"),
    (Fault("not_autnresponse", at=2), "<html>"),
    (Fault("mutate", at=2, times=None, mutate=lambda s: s.databases["db"].insert(0, HashEntry(
        f"x{len(s.requests)}", "x"))), "kept changing"),
]


@pytest.mark.parametrize("fault, fragment", FAULTS, ids=[f[0].kind for f in FAULTS])
def test_every_fault_ends_in_a_clear_error_and_the_previous_snapshot_intact(standin, sqlite_url, capsys,
                                                                           fault, fragment):
    server = standin({"db": entries(20)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--page-size", "5")[0] == 0
    before = snapshot_rows(sqlite_url)
    server.databases["db"][0].label = "changed since"
    server.add_fault(fault)
    code, out, err = run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--page-size", "5",
                         "--retries", "1")
    assert code == 1 and fragment in err and "Traceback" not in err and out == ""
    assert err.startswith("hashlens: ") and len(err.strip().splitlines()) == 1
    assert snapshot_rows(sqlite_url) == before


def test_a_stall_past_the_timeout_keeps_the_previous_snapshot(standin, sqlite_url, capsys):
    server = standin({"db": entries(12)})
    assert run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--page-size", "5")[0] == 0
    before = snapshot_rows(sqlite_url)
    server.add_fault(Fault("stall", at=2, times=None))
    try:
        code, _, err = run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--page-size", "5",
                           "--timeout", "1", "--retries", "0")
    finally:
        server.release()
    assert code == 1 and "no answer within 1 s" in err
    assert snapshot_rows(sqlite_url) == before


def test_a_server_that_changes_once_is_re_read_into_a_whole_snapshot(standin, sqlite_url, capsys):
    server = standin({"db": entries(20)})
    server.add_fault(Fault("mutate", at=3, mutate=lambda s: s.databases["db"].insert(0, HashEntry("front", "f"))))
    code, out, _ = run(capsys, "--store", sqlite_url, "pull", server.url, "db", "--page-size", "5")
    assert code == 0 and "read again 1 time(s)" in out
    [(_, count, rows), (_, db_count, db_rows, _)] = snapshot_rows(sqlite_url)
    assert [r[0] for r in db_rows] == [r[0] for r in rows] and db_count == count
    assert sorted(r[0] for r in rows) == sorted(e.identifier for e in server.entries("db")) and count == 21


PULL = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"


def _kill_once(url: str, server_url: str, point: str) -> int:
    env = dict(os.environ, HASHLENS_FAULTS=point)
    result = subprocess.run([sys.executable, "-c", PULL, "--store", url, "pull", server_url, "db",
                             "--page-size", "50"], env=env, capture_output=True, timeout=120)
    return result.returncode


def _kill_points(n: int, seed: int) -> list[str]:
    """Kill points spread over the pull: while paging, before storing, per stored batch, before commit."""
    rng = random.Random(seed)
    pool = [f"pull.page={rng.randint(1, 7)}:kill" for _ in range(n)] + ["pull.store=1:kill", "pull.batch=1:kill",
                                                                        "pull.commit=1:kill"]
    rng.shuffle(pool)
    return pool[:n]


def _check_killed_pulls(standin, tmp_path, points: list[str]) -> None:
    server = standin({"db": entries(300)})
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    assert main(["--store", url, "pull", server.url, "db", "--page-size", "50"]) == 0
    before = snapshot_rows(url)
    server.databases["db"][7].label = "changed"
    for point in points:
        assert _kill_once(url, server.url, point) == -9, point
        assert snapshot_rows(url) == before, point
        with sqlite3.connect(tmp_path / "kill.db") as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert main(["--store", url, "pull", server.url, "db", "--page-size", "50"]) == 0
    assert [s[0] for s in snapshot_rows(url)] == [1, 2, "database"]


def test_a_killed_pull_leaves_the_previous_snapshot(standin, tmp_path):
    _check_killed_pulls(standin, tmp_path, ["pull.page=3:kill", "pull.batch=1:kill", "pull.commit=1:kill"])


@pytest.mark.soak
def test_thirty_pulls_killed_at_random_moments(standin, tmp_path):
    _check_killed_pulls(standin, tmp_path, _kill_points(30, seed=11))
