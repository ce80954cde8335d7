"""Pushing a mirror's change-set to the stand-in Media Server: each action applied exactly once under every fault mode."""

from __future__ import annotations

import copy

import pytest

from app.domain import Failure, HashlensError
from app.mediaserver import push as push_module
from app.mediaserver.client import MediaServerClient
from app.mediaserver.mirror import compare_snapshots, pull_mirror
from app.mediaserver_codec import names
from app.mediaserver_codec.request import Params
from app.diff import DiffCounts, compare
from app.store import Store, changes
from tests.standin import Fault, HashEntry
from tests.standin import server as standin_module
from tests.standin.fixture import standin  # noqa: F401 - the fixture
from tests.standin.server import Standin

pytestmark = pytest.mark.timeout(180)

DB = "db"


def initial() -> list[HashEntry]:
    out = [HashEntry(f"id{i:03d}", f"label {i}", True, [("n", str(i)), ("colour", "red")]) for i in range(12)]
    out.append(HashEntry("a,b", "comma label", True, [("k:v", "a,b")]))
    out.append(HashEntry('quote"d', "quoted", False, []))
    return out


# One of each write action, a chain on one entry (rename, then relabel under the new
# name) and entries whose identifiers cannot be asked for by name.
ACTIONS: list[tuple[str, list[tuple[str, str]], dict]] = [
    (names.RELABEL_IMAGE_HASH_IMAGE, [("identifier", "id000"), ("imagelabel", "label 0"), ("newimagelabel", "cat")], {}),
    (names.ADD_IMAGE_HASH_METADATA, [("identifier", "id001"), ("key", "source"), ("value", "camera 1")], {}),
    (names.UPDATE_IMAGE_HASH_METADATA, [("identifier", "id002"), ("key", "colour"), ("newvalue", "blue")],
     {"value": "red"}),
    (names.REMOVE_IMAGE_HASH_METADATA, [("identifier", "id003"), ("key", "colour")], {"value": "red"}),
    (names.RENAME_IMAGE_HASH, [("identifier", "id004"), ("newidentifier", "renamed 4")], {}),
    (names.RELABEL_IMAGE_HASH_IMAGE, [("identifier", "renamed 4"), ("imagelabel", "label 4"),
                                      ("newimagelabel", "dog")], {}),
    (names.NULL_IMAGE_HASH_IMAGE_DATA, [("identifier", "id005")], {}),
    (names.REMOVE_IMAGE_HASH, [("identifier", "id006")], {}),
    (names.RELABEL_IMAGE_HASH_IMAGE, [("identifier", "a,b"), ("imagelabel", "comma label"),
                                      ("newimagelabel", "still, a comma")], {}),
    (names.ADD_IMAGE_HASH_METADATA, [("identifier", 'quote"d'), ("key", "q"), ("value", "1")], {}),
    (names.MOVE_IMAGE_HASH, [("identifier", "id007"), ("newdatabase", "other")], {}),
]


def sent_params(action, params) -> dict:
    return {"database": DB, **dict(params)}


def intended(databases: dict) -> dict:
    """The server's data after every action applied once, in order, by the stand-in's own rules."""
    server = Standin(copy.deepcopy(databases))
    for action, params, _ in ACTIONS:
        handler = {names.REMOVE_IMAGE_HASH: standin_module.remove_image_hash,
                   names.NULL_IMAGE_HASH_IMAGE_DATA: standin_module.null_image_data,
                   names.RENAME_IMAGE_HASH: standin_module.rename_image_hash,
                   names.MOVE_IMAGE_HASH: standin_module.move_image_hash,
                   names.RELABEL_IMAGE_HASH_IMAGE: standin_module.relabel_image,
                   names.ADD_IMAGE_HASH_METADATA: standin_module.add_metadata,
                   names.UPDATE_IMAGE_HASH_METADATA: standin_module.update_metadata,
                   names.REMOVE_IMAGE_HASH_METADATA: standin_module.remove_metadata}[action]
        handler(server, Params(sent_params(action, params)))
    return server.databases


def data(databases: dict) -> dict:
    return {name: [(e.identifier, e.label, e.has_image_data, list(e.metadata)) for e in entries]
            for name, entries in databases.items()}


def applied_writes(*servers: Standin) -> list[tuple[str, dict]]:
    return [(a, p) for s in servers for a, p in s.applied]


def expected_writes() -> list[tuple[str, dict]]:
    return [(a, sent_params(a, p)) for a, p, _ in ACTIONS]


@pytest.fixture
def setup(standin, sqlite_url):
    """A stand-in with two databases, a store with a mirror of one of them and the
    change-set staged; returns (server, store, client, original databases)."""
    databases = {DB: initial(), "other": [HashEntry("o1", "other 1", True, [])]}
    original = copy.deepcopy(databases)
    server = standin(databases)
    store = Store.open(sqlite_url)
    client = MediaServerClient(server.url, timeout=5, retries=0)
    pull_mirror(store, client, DB)
    stage(store, ACTIONS)
    yield server, store, client, original
    store.close()


def stage(store, actions, mirror=DB, database=DB):
    changes.ensure_table(store)
    with store.writing():
        for action, params, prior in actions:
            changes.append(store, mirror, action, [("database", database), *params], prior)


def test_a_push_on_every_backend(standin, store_url):
    databases = {DB: initial(), "other": [HashEntry("o1", "other 1", True, [])]}
    original = copy.deepcopy(databases)
    server = standin(databases)
    with Store.open(store_url) as store:
        client = MediaServerClient(server.url, timeout=5, retries=0)
        pull_mirror(store, client, DB)
        stage(store, ACTIONS)
        server.add_fault(Fault("drop_after_write", at=1, action=names.MOVE_IMAGE_HASH))
        report = push_module.push(store, client, DB)
        assert report.ok, report.lines()
        assert data(server.databases) == data(intended(original))
        assert applied_writes(server) == expected_writes()
        assert changes.change_set(store, DB) == [] and report.snapshot.snapshot.number == 2


def test_a_clean_push_applies_each_action_once_confirms_each_and_takes_a_snapshot(setup):
    server, store, client, original = setup
    report = push_module.push(store, client, DB)
    assert report.ok, report.lines()
    assert len(report.confirmed) == len(ACTIONS)
    assert data(server.databases) == data(intended(original))
    assert applied_writes(server) == expected_writes()
    # Every row confirmed and settled by the fresh snapshot; nothing outstanding.
    assert report.snapshot is not None and report.snapshot.snapshot.number == 2
    assert changes.change_set(store, DB) == []
    # The diff between the two snapshots is exactly the pushed changes.
    sides = compare_snapshots(store, DB)
    counts = DiffCounts()
    found = {(d.identifier if hasattr(d, "identifier") else None) for d in compare(sides.old, sides.new, counts)}
    assert counts.removed == 3 and counts.added == 1  # id006 removed, id004 renamed away, id007 moved away; "renamed 4"
    assert {"id000", "id001", "id002", "id003", "id005", "a,b", 'quote"d'} <= found
    # Identifiers with a comma or a quote were never asked for by name.
    for request in server.requests:
        if request.action.lower() == names.LIST_IMAGE_HASHES.lower():
            assert "a,b" not in request.params.get("identifier", "") and '"' not in request.params.get("identifier", "")
    # The journal holds each action sent and its outcome.
    outcomes = [(e.params["action"], e.params["outcome"]) for e in store.history()
                if e.action == names.PUSH_IMAGE_HASH_CHANGE]
    assert outcomes == [(a, s) for a, _, _ in ACTIONS for s in ("sent", "confirmed")]


@pytest.mark.parametrize("n", [1, 5, len(ACTIONS)])
def test_an_error_on_the_nth_action_stops_there_and_the_next_push_resumes(setup, n):
    server, store, client, original = setup
    action = ACTIONS[n - 1][0]
    at = [a for a, _, _ in ACTIONS[:n]].count(action)
    server.add_fault(Fault("error", at=at, action=action))
    report = push_module.push(store, client, DB)
    assert not report.ok and report.snapshot is None
    assert [o.state for o in report.outcomes] == ["confirmed"] * (n - 1) + ["failed"]
    assert "The stand-in was told to fail this request." in report.failed[0].note
    assert "the server refused" in report.stopped and names.LIST_IMAGE_HASHES not in report.stopped
    assert applied_writes(server) == expected_writes()[:n - 1]
    # Nothing after it was sent; the failed change is still outstanding.
    assert [c.state for c in changes.outstanding(store, DB)] == ["failed"] + ["pending"] * (len(ACTIONS) - n)
    # Our own partial push is not someone else's change: the second push is not refused.
    again = push_module.push(store, client, DB)
    assert again.ok, again.lines()
    assert data(server.databases) == data(intended(original))
    assert applied_writes(server) == expected_writes()


def test_continue_on_error_goes_past_a_refused_action(setup):
    server, store, client, original = setup
    server.add_fault(Fault("error", at=1, action=names.NULL_IMAGE_HASH_IMAGE_DATA))
    report = push_module.push(store, client, DB, continue_on_error=True)
    assert len(report.failed) == 1 and len(report.confirmed) == len(ACTIONS) - 1 and report.stopped is None
    assert report.snapshot is None  # one change is still outstanding
    again = push_module.push(store, client, DB)
    assert again.ok and len(again.confirmed) == 1 and again.snapshot is not None
    assert data(server.databases) == data(intended(original))
    assert sorted(map(repr, applied_writes(server))) == sorted(map(repr, expected_writes()))


@pytest.mark.parametrize("n", [1, 4, 9, len(ACTIONS)])
def test_a_connection_dropped_after_the_server_applied_an_action_is_not_sent_again(setup, n):
    server, store, client, original = setup
    action = ACTIONS[n - 1][0]
    at = [a for a, _, _ in ACTIONS[:n]].count(action)
    server.add_fault(Fault("drop_after_write", at=at, action=action))
    report = push_module.push(store, client, DB)
    assert report.ok, report.lines()
    assert "took effect" in report.outcomes[n - 1].note
    assert data(server.databases) == data(intended(original))
    assert applied_writes(server) == expected_writes()


def test_a_stalled_request_is_checked_then_sent_again_once(standin, sqlite_url):
    databases = {DB: initial(), "other": []}
    original = copy.deepcopy(databases)
    server = standin(databases)
    with Store.open(sqlite_url) as store:
        pull_mirror(store, MediaServerClient(server.url), DB)
        stage(store, ACTIONS)
        server.add_fault(Fault("stall", at=1, action=names.REMOVE_IMAGE_HASH))
        client = MediaServerClient(server.url, timeout=1, retries=0)
        report = push_module.push(store, client, DB)
        assert report.ok, report.lines()
        server.release()
        assert data(server.databases) == data(intended(original))
        assert applied_writes(server) == expected_writes()
        sent = [r for r in server.requests if r.action == names.REMOVE_IMAGE_HASH]
        assert len(sent) == 2  # the stalled one, never applied, and the one sent after the check


def test_a_server_restart_between_two_pushes(standin, sqlite_url):
    databases = {DB: initial(), "other": []}
    original = copy.deepcopy(databases)
    first = standin(databases)
    port = first.port
    with Store.open(sqlite_url) as store:
        pull_mirror(store, MediaServerClient(first.url), DB)
        stage(store, ACTIONS)
        client = MediaServerClient(first.url, timeout=5, retries=0)

        def progress(done, total):
            if done == 3:
                first.stop()  # the server goes away mid-push

        report = push_module.push(store, client, DB, progress=progress)
        assert len(report.confirmed) == 3 and report.stopped
        states = [c.state for c in changes.outstanding(store, DB)]
        assert states[0] == "sent" and set(states[1:]) == {"pending"}
        second = standin(first.databases, port=port)  # the same data, back on the same address
        again = push_module.push(store, client, DB)
        assert again.ok, again.lines()
        assert data(second.databases) == data(intended(original))
        assert applied_writes(first, second) == expected_writes()


def test_someone_elses_change_refuses_the_push_before_anything_is_sent(setup):
    server, store, client, original = setup
    server.databases[DB][2].metadata = [("n", "2"), ("colour", "green")]  # someone else edits id002
    with pytest.raises(HashlensError) as caught:
        push_module.push(store, client, DB)
    assert caught.value.failure is Failure.SERVER_CHANGED
    assert "'id002'" in caught.value.description and "Nothing was sent" in caught.value.description
    assert server.applied == []
    report = push_module.push(store, client, DB, force=True)
    assert len(report.others) == 1
    # The update of a key that exists still applies: blue replaces green.
    assert report.ok and server.databases[DB][2].metadata == [("n", "2"), ("colour", "blue")]


def test_a_dry_run_sends_nothing_and_lists_the_plan(setup):
    server, store, client, _ = setup
    report = push_module.push(store, client, DB, dry_run=True)
    assert server.applied == [] and len(report.planned) == len(ACTIONS)
    text = "\n".join(report.lines())
    assert "nothing was sent" in text and "action=RelabelImageHashImage&database=db&identifier=id000" in text
    assert [c.state for c in changes.outstanding(store, DB)] == ["pending"] * len(ACTIONS)


def test_scripts_hold_each_request_and_the_reverse_of_what_can_be_reversed(setup, tmp_path):
    server, store, client, original = setup
    script, undo = tmp_path / "push.aci", tmp_path / "undo.aci"
    assert push_module.write_scripts(store, DB, str(script), str(undo)) == len(ACTIONS)
    assert server.applied == []
    lines = script.read_text(encoding="utf-8").splitlines()
    requests = [line for line in lines if line and not line.startswith("#")]
    assert len(requests) == len(ACTIONS)
    assert all(r.startswith(server.url + "/action=") for r in requests)
    assert "identifier=a%2Cb" in requests[8] or "identifier=a,b" in requests[8]
    assert lines[lines.index(requests[0]) - 1] == "# 1. relabel 'id000' in 'db' from 'label 0' to 'cat'"
    undo_text = undo.read_text(encoding="utf-8")
    assert undo_text.count("CANNOT BE UNDONE") == 2  # the removal and the null image data
    # Sending the script line by line, then the undo script, restores every reversible change.
    import urllib.request
    for r in requests:
        with urllib.request.urlopen(r) as answer:
            assert b"SUCCESS" in answer.read()
    assert data(server.databases) == data(intended(original))
    for r in [line for line in undo_text.splitlines() if line and not line.startswith("#")]:
        with urllib.request.urlopen(r) as answer:
            assert b"SUCCESS" in answer.read(), r
    restored = data(server.databases)
    before = data(original)
    gone = {"id005", "id006"}  # nulled image data, removed: said so in the script
    assert [e for e in restored[DB] if e[0] not in gone] == [e for e in before[DB] if e[0] not in gone] or \
        sorted(e for e in restored[DB] if e[0] not in gone) == sorted(e for e in before[DB] if e[0] not in gone)


def test_a_pull_into_a_mirror_with_staged_changes_is_refused(setup):
    server, store, client, _ = setup
    with pytest.raises(HashlensError) as caught:
        pull_mirror(store, client, DB)
    assert f"has {len(ACTIONS)} staged change(s)" in caught.value.description
    assert "hashlens push db" in caught.value.description
    push_module.push(store, client, DB, snapshot=False)
    pull_mirror(store, client, DB)  # everything confirmed: allowed


# -- the command line ------------------------------------------------------------------------------


def run(capsys, *argv) -> tuple[int, str, str]:
    from app.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def staged_url(standin, sqlite_url):
    databases = {DB: initial(), "other": [HashEntry("o1", "other 1", True, [])]}
    server = standin(databases)
    server.original = copy.deepcopy(databases)
    with Store.open(sqlite_url) as store:
        pull_mirror(store, MediaServerClient(server.url), DB)
        stage(store, ACTIONS)
    return server, sqlite_url


def test_cli_changes_script_dry_run_push_and_diff(staged_url, tmp_path, capsys):
    server, url = staged_url
    code, out, err = run(capsys, "--store", url, "changes", DB)
    assert code == 0 and out.splitlines()[0] == ("action=RelabelImageHashImage&database=db&identifier=id000"
                                                 "&imagelabel=label%200&newimagelabel=cat")
    assert len(out.splitlines()) == len(ACTIONS) and f"{len(ACTIONS)} staged change(s)" in err
    code, out, _ = run(capsys, "--store", url, "push", DB, "--script", str(tmp_path / "s.aci"), "--undo-script",
                       str(tmp_path / "u.aci"), "--path-only")
    assert code == 0 and "nothing was sent" in out and server.applied == []
    assert (tmp_path / "s.aci").read_text(encoding="utf-8").count("\n/action=") == len(ACTIONS)
    code, out, _ = run(capsys, "--store", url, "push", DB, "--dry-run")
    assert code == 0 and "Dry run" in out and server.applied == []
    code, out, err = run(capsys, "--store", url, "push", DB)
    assert code == 0, err
    assert f"{len(ACTIONS)} change(s) confirmed, 0 failed." in out and "snapshot 2" in out
    assert applied_writes(server) == expected_writes()
    code, out, _ = run(capsys, "--store", url, "diff", DB)
    assert code == 3 and "id000" in out
    code, out, _ = run(capsys, "--store", url, "push", DB)
    assert code == 0 and "no staged changes" in out


def test_cli_push_reports_the_refused_action_and_exits_1(staged_url, capsys):
    server, url = staged_url
    server.add_fault(Fault("error", at=1, action=names.RENAME_IMAGE_HASH))
    code, out, _ = run(capsys, "--store", url, "push", DB, "--retries", "0")
    assert code == 1
    assert "FAILED  rename 'id004' in 'db' to 'renamed 4': the server answered ERROR: The stand-in was told to " \
           "fail this request." in out
    code, out, _ = run(capsys, "--store", url, "changes", DB)
    assert out.startswith("# failed: rename 'id004'")


@pytest.mark.parametrize("argv, flag", [
    (["push", DB, "--script", "x.aci", "--dry-run"], "--dry-run"),
    (["push", DB, "--path-only"], "--path-only"),
    (["discard", DB, "--last", "0"], "--last"),
    (["push", DB, "--timeout", "soon"], "--timeout"),
])
def test_cli_usage_mistakes_exit_2_naming_the_flag(staged_url, capsys, argv, flag):
    _, url = staged_url
    code, out, err = run(capsys, "--store", url, *argv)
    assert code == 2 and flag in err and "Traceback" not in err


def test_cli_discard_the_last_changes(staged_url, capsys):
    server, url = staged_url
    code, out, _ = run(capsys, "--store", url, "discard", DB, "--last", "2")
    assert code == 0 and f"{len(ACTIONS) - 2} remain" in out
    code, out, _ = run(capsys, "--store", url, "changes", DB)
    assert len(out.splitlines()) == len(ACTIONS) - 2
    code, out, _ = run(capsys, "--store", url, "discard", DB)
    assert code == 0 and "0 remain" in out
    code, out, _ = run(capsys, "--store", url, "pull", server.url, DB)
    assert code == 0


# -- kills -----------------------------------------------------------------------------------------

PUSH = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"


def _kill_points(n: int, seed: int) -> list[str]:
    """Checkpoints spread over a push: after recording 'sent' (before the request), after
    the answer, after the confirmation, inside any of its commits, before and inside the
    snapshot at the end."""
    import random

    rng = random.Random(seed)
    pool = []
    for _ in range(n):
        which = rng.choice(["push.sent", "push.answered", "push.confirmed", "store.commit", "store.commit"])
        pool.append(f"{which}={rng.randint(1, 2 * len(ACTIONS) if which == 'store.commit' else len(ACTIONS))}:kill")
    pool[:3] = ["push.snapshot=1:kill", "pull.commit=1:kill", "pull.page=1:kill"]
    rng.shuffle(pool)
    return pool


@pytest.mark.slow
def test_thirty_pushes_killed_at_random_checkpoints_then_pushed_again_apply_each_action_once(standin, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    databases = {DB: initial(), "other": [HashEntry("o1", "other 1", True, [])]}
    original = copy.deepcopy(databases)
    server = standin(databases)
    template = tmp_path / "template.db"
    with Store.open(f"sqlite:///{template}") as store:
        pull_mirror(store, MediaServerClient(server.url), DB)
        stage(store, ACTIONS)
    want = data(intended(original))
    killed = 0
    for point in _kill_points(30, seed=12):
        shutil.copy(template, tmp_path / "kill.db")
        url = f"sqlite:///{tmp_path / 'kill.db'}"
        with server.lock:
            server.databases.clear()
            server.databases.update(copy.deepcopy(original))
            server.applied.clear()
        argv = [sys.executable, "-c", PUSH, "--store", url, "push", DB, "--retries", "0", "--timeout", "30"]
        first = subprocess.run(argv, env=dict(os.environ, HASHLENS_FAULTS=point), capture_output=True, timeout=120)
        killed += first.returncode == -9
        assert first.returncode in (-9, 0), (point, first.stderr)
        second = subprocess.run(argv, capture_output=True, timeout=120)
        assert second.returncode == 0, (point, second.stdout, second.stderr)
        assert data(server.databases) == want, point
        assert applied_writes(server) == expected_writes(), point
        with Store.open(url) as store:
            assert changes.outstanding(store, DB) == [], point
    assert killed >= 25


def test_cli_refuses_a_push_over_someone_elses_change_and_names_force(staged_url, capsys):
    server, url = staged_url
    server.databases[DB][1].metadata.append(("source", "someone else"))
    code, out, err = run(capsys, "--store", url, "push", DB)
    assert code == 1 and "Someone else changed 1 entry" in err and f"hashlens push {DB} --force" in err
    assert server.applied == []


def test_one_push_at_a_time(setup):
    server, store, client, _ = setup
    holder = changes.acquire_lease(store, DB)
    with pytest.raises(HashlensError) as caught:
        push_module.push(store, client, DB)
    assert caught.value.failure is Failure.STORE_BUSY and "Another push of 'db' is running" in caught.value.description
    assert server.applied == []
    changes.release_lease(store, DB, holder)
    # A lease left by a process that is gone (a killed push) is taken over.
    with store.writing():
        store.sql.exec("INSERT INTO hl_push_lease (mirror, holder, since) VALUES (?, ?, ?)",
                       (DB, f"{__import__('socket').gethostname()}:999999999:dead", 0))
    assert push_module.push(store, client, DB).ok


def test_a_cancelled_push_stops_between_actions_and_the_next_push_finishes(setup):
    server, store, client, original = setup
    done = []
    report = push_module.push(store, client, DB, progress=lambda n, total: done.append(n),
                              cancelled=lambda: len(done) >= 4)
    assert report.stopped.startswith("cancelled") and len(report.confirmed) == 4 and report.snapshot is None
    assert applied_writes(server) == expected_writes()[:4]
    again = push_module.push(store, client, DB)
    assert again.ok and len(again.confirmed) == len(ACTIONS) - 4
    assert applied_writes(server) == expected_writes()
    assert data(server.databases) == data(intended(original))
