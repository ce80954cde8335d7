"""Publishing a local database to the stand-in Media Server: every entry with image data trained exactly once, through every fault."""

from __future__ import annotations

import collections
import threading

import pytest

from app.domain import Failure, HashlensError, NewEntry
from app.mediaserver.client import MediaServerClient
from app.mediaserver.publish import publish
from app.mediaserver_codec import names
from app.store import Store, publishing
from tests.standin import Fault, HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture

# Awkward on purpose: a comma, quotes, a backslash, spaces at the ends, a colon in
# metadata, text outside ASCII.
AWKWARD = ["plain-1", "with,comma", 'quote"d', "back\\slash", " padded ", "Café ☕", "a:b"]


def local_store(url: str, n: int = 12, *, without_image: int = 3, database: str = "local") -> Store:
    store = Store.open(url)
    store.create_database(database)
    idents = AWKWARD + [f"entry-{i:04d}" for i in range(max(0, n - len(AWKWARD)))]
    for i, identifier in enumerate(idents[:n]):
        has_image = i >= without_image
        meta = (("colour", f"red, {i}"), ("k:ey", 'say "hi"'), ("plain", str(i)))
        store.add_entry(database, NewEntry(identifier, f"label {i}, ok", i * 7919, b"image-" + identifier.encode()
                                           if has_image else None, "png" if has_image else None, 4, 4, None, meta))
    return store


def publishable(store: Store, database: str = "local") -> dict[str, tuple]:
    from app.domain import ListingQuery

    rows = [r for b in store.iter_listing(ListingQuery(database, metadata=True)) for r in b]
    images = store.images_by_key([r.key for r in rows])
    return {r.identifier: (r.label, tuple(r.metadata), images[r.key]) for r in rows if r.key in images}


def client_for(server, **options) -> MediaServerClient:
    return MediaServerClient(server.url, timeout=options.pop("timeout", 10), sleep=lambda s: None, **options)


def assert_exactly_once(server, store: Store, remote: str = "remote", database: str = "local") -> None:
    """The server holds every publishable entry exactly once, as it is locally, and its
    log shows each trained once; no training was ever sent for an entry already there."""
    want = publishable(store, database)
    held = server.entries(remote)
    counts = collections.Counter(e.identifier for e in held)
    assert {i: c for i, c in counts.items() if c != 1} == {}
    assert {e.identifier: (e.label, tuple(e.metadata), e.image) for e in held} == want
    applied = collections.Counter(p["identifier"] for a, p in server.applied if a == names.TRAIN_IMAGE_HASH)
    assert applied == collections.Counter(list(want))
    refused_as_duplicate = [q for q in server.queue.values() if q.error and "already exists" in q.error]
    assert refused_as_duplicate == []


@pytest.fixture
def store(sqlite_url):
    s = local_store(sqlite_url)
    yield s
    s.close()


def test_publish_trains_every_entry_with_image_data_once(standin, store):
    server = standin({"remote": []})
    report = publish(store, client_for(server), "local", "remote")
    assert_exactly_once(server, store)
    assert report.complete, report.text()
    assert sorted(report.published) == sorted(publishable(store))
    assert report.without_image_data == AWKWARD[:3]
    assert "Without image data" in report.text() and "with,comma" in report.text()
    states = publishing.states(store, "local", server.url, "remote")
    assert {s for s, _ in states.values()} == {publishing.CONFIRMED}
    trains = [r for r in server.requests if r.action == names.TRAIN_IMAGE_HASH]
    assert all(r.method == "POST" for r in trains)
    assert all(r.params["database"] == "remote" for r in trains)


def test_publishing_again_sends_nothing(standin, store):
    server = standin({"remote": []})
    publish(store, client_for(server), "local", "remote")
    before = len([r for r in server.requests if r.action == names.TRAIN_IMAGE_HASH])
    report = publish(store, client_for(server), "local", "remote")
    assert len([r for r in server.requests if r.action == names.TRAIN_IMAGE_HASH]) == before
    assert report.published == [] and report.already == len(publishable(store)) and report.complete
    assert_exactly_once(server, store)


def test_entries_already_on_the_server_are_skipped(standin, store):
    there = [HashEntry("with,comma", "someone else's", True, [], b"x"), HashEntry("entry-0000", "theirs", True, [], b"y")]
    server = standin({"remote": list(there)})
    # 'with,comma' has no image locally (one of the first three); entry-0000 has one.
    report = publish(store, client_for(server), "local", "remote")
    assert report.already == 1
    trained = [p["identifier"] for a, p in server.applied]
    assert "entry-0000" not in trained and len(trained) == len(publishable(store)) - 1


def test_a_missing_remote_database_is_named_and_nothing_is_sent(standin, store):
    server = standin({"other": []})
    with pytest.raises(HashlensError) as caught:
        publish(store, client_for(server), "local", "remote")
    assert caught.value.failure is Failure.NO_SUCH_DATABASE and "'remote'" in caught.value.description
    assert names.TRAIN_IMAGE_HASH not in [r.action for r in server.requests]


def test_an_error_answer_stops_the_run_and_the_next_run_finishes(standin, store):
    server = standin({"remote": []})
    server.add_fault(Fault("error", at=3, action=names.TRAIN_IMAGE_HASH))
    first = publish(store, client_for(server), "local", "remote", in_flight=1)
    assert first.stopped and len(first.failed) == 1 and "told to fail" in first.failed[0][1]
    assert not first.complete
    assert len(first.published) == 2
    second = publish(store, client_for(server), "local", "remote")
    assert second.complete and second.already == 2
    assert_exactly_once(server, store)


def test_the_journal_records_every_training_sent_and_its_outcome(standin, store):
    server = standin({"remote": []})
    server.add_fault(Fault("error", at=3, action=names.TRAIN_IMAGE_HASH))
    before = store.change_token()
    report = publish(store, client_for(server), "local", "remote", in_flight=1)
    records = [e for e in store.history(database="local") if e.action == names.PUBLISH_IMAGE_HASH]
    outcomes = collections.defaultdict(list)
    for e in records:
        assert e.params["server"] == server.url and e.params["database"] == "remote"
        outcomes[e.identifier].append(e.params["outcome"])
    sent = [p["identifier"] for a, p in server.applied if a == names.TRAIN_IMAGE_HASH]
    assert sorted(report.published) == sorted(sent)
    for identifier in sent:
        assert outcomes[identifier][0] == publishing.SENT and outcomes[identifier][-1] == publishing.CONFIRMED
    (failed, reason), = report.failed
    assert outcomes[failed] == [publishing.SENT, publishing.FAILED]
    assert [e.params.get("error") for e in records if e.identifier == failed][-1] == reason
    # Entries marked before the refusal stopped the run but never sent say so last.
    for identifier in set(outcomes) - set(sent) - {failed}:
        assert outcomes[identifier] == [publishing.SENT, "not sent"]
    assert store.change_token() > before


def test_continue_on_error_goes_past_a_refusal(standin, store):
    server = standin({"remote": []})
    server.add_fault(Fault("error", at=2, action=names.TRAIN_IMAGE_HASH))
    report = publish(store, client_for(server), "local", "remote", continue_on_error=True)
    assert len(report.failed) == 1 and report.stopped is None
    assert len(report.published) == len(publishable(store)) - 1
    failed = report.failed[0][0]
    assert publishing.states(store, "local", server.url, "remote")[failed][0] == publishing.FAILED
    publish(store, client_for(server), "local", "remote")
    assert_exactly_once(server, store)


def test_a_queue_error_is_the_servers_word(standin, store):
    # The server already has the identifier when the queued action runs (someone else
    # trained it after our check): the action ends in Error, nothing is added twice.
    server = standin({"remote": []})

    def sneak_in(s):
        s.databases["remote"].append(HashEntry("entry-0001", "sneaked", True, [], b"z"))

    server.add_fault(Fault("mutate", at=2, action=names.TRAIN_IMAGE_HASH, mutate=sneak_in))
    report = publish(store, client_for(server), "local", "remote", in_flight=1, continue_on_error=True)
    assert [i for i, _ in report.failed] == ["entry-0001"] and "already exists" in report.failed[0][1]
    assert [e.label for e in server.entries("remote") if e.identifier == "entry-0001"] == ["sneaked"]
    assert len(report.published) == len(publishable(store)) - 1


@pytest.mark.parametrize("at", [1, 4, 9])
def test_a_connection_dropped_after_the_server_queued_it_is_not_sent_again(standin, store, at):
    server = standin({"remote": []})
    server.add_fault(Fault("drop_after_write", at=at, action=names.TRAIN_IMAGE_HASH))
    report = publish(store, client_for(server), "local", "remote")
    assert report.complete, report.text()
    assert len([r for r in server.requests if r.action == names.TRAIN_IMAGE_HASH]) == len(publishable(store))
    assert_exactly_once(server, store)


def test_a_connection_closed_before_the_server_acted_is_sent_again(standin, store):
    server = standin({"remote": []})
    server.add_fault(Fault("close", at=2, action=names.TRAIN_IMAGE_HASH))
    report = publish(store, client_for(server), "local", "remote")
    assert report.complete, report.text()
    assert len([r for r in server.requests if r.action == names.TRAIN_IMAGE_HASH]) == len(publishable(store)) + 1
    assert_exactly_once(server, store)


def test_a_stalled_training_times_out_and_is_resolved_before_sending_again(standin, store):
    server = standin({"remote": []})
    server.add_fault(Fault("stall", at=2, action=names.TRAIN_IMAGE_HASH))
    try:
        report = publish(store, client_for(server, timeout=1), "local", "remote", in_flight=2)
    finally:
        server.release()
    assert server.wait_stalled(0)
    assert report.complete, report.text()
    assert_exactly_once(server, store)


def test_trainings_held_in_the_queue_are_followed_to_their_end(standin, store):
    server = standin({"remote": []})
    server.hold_queue()
    done = threading.Event()
    result = {}

    def run():
        result["report"] = publish(store, client_for(server), "local", "remote", in_flight=3)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    # Wait until three trainings are queued and held, then let the queue run.
    while len(server.queue) < 3:
        assert not done.wait(0.01)
    assert len(server.queue) == 3  # never more than in flight
    server.run_queue()
    thread.join()
    assert result["report"].complete
    assert_exactly_once(server, store)


def test_open_marks_of_an_interrupted_run_are_checked_before_sending(standin, store):
    server = standin({"remote": []})
    client = client_for(server)
    publish(store, client, "local", "remote")
    # An earlier run marked two entries `sent` and died: one reached the server, one did not.
    pub = publishing.publication(store, "local", server.url, "remote", now=0)
    server.databases["remote"] = [e for e in server.databases["remote"] if e.identifier != "entry-0002"]
    server.applied = [(a, p) for a, p in server.applied if p["identifier"] != "entry-0002"]
    publishing.mark_sent(store, pub, ["entry-0001", "entry-0002"], now=0)
    report = publish(store, client, "local", "remote")
    assert report.resolved_earlier == 1 and sorted(report.published) == ["entry-0001", "entry-0002"]
    assert_exactly_once(server, store)


def test_a_server_restart_between_two_runs(standin, store):
    server = standin({"remote": []})
    server.hold_queue()
    done = threading.Event()

    def run():
        publish(store, client_for(server, timeout=2, retries=0), "local", "remote", in_flight=2)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    while len(server.queue) < 2:
        assert not done.wait(0.01)
    data = server.databases
    applied = server.applied
    port, url = server.port, server.url
    server.stop()  # the queued trainings are lost with it, as a restart loses a queue
    thread.join()
    assert len(publishing.open_marks(store, publishing.publication(store, "local", url, "remote", now=0))) >= 2
    again = standin(data, port=port)
    again.applied = applied
    report = publish(store, client_for(again), "local", "remote")
    assert report.complete, report.text()
    assert_exactly_once(again, store)


def test_publish_marks_on_every_backend(standin, store_url):
    """The marks' tables on SQLite, PostgreSQL and MariaDB: an interrupted run's open
    mark is resolved, the rest published, every entry on the server once."""
    local = local_store(store_url)
    try:
        server = standin({"remote": []})
        server.add_fault(Fault("drop_after_write", at=2, action=names.TRAIN_IMAGE_HASH))
        report = publish(local, client_for(server), "local", "remote")
        assert report.complete, report.text()
        assert_exactly_once(server, local)
        states = publishing.states(local, "local", server.url, "remote")
        assert sorted(states) == sorted(publishable(local)) and {s for s, _ in states.values()} == {"confirmed"}
    finally:
        local.close()


def test_a_complete_publish_makes_the_database_a_mirror_keeping_its_images(standin, store_url):
    from app.domain import ListingQuery, MirrorSource

    local = local_store(store_url, 10, without_image=0)
    try:
        server = standin({"remote": [HashEntry("theirs", "already there", True, [("k", "v")], b"t")]})
        before = {r.identifier: (r.phash, r.label) for b in local.iter_listing(ListingQuery("local")) for r in b}
        images = publishable(local)
        report = publish(local, client_for(server), "local", "remote")
        assert report.complete and "is now a mirror" in report.mirror, report.text()
        assert local.mirror_of("local") == MirrorSource(server.url, "remote")
        after = {r.identifier: (r.phash, r.label) for b in local.iter_listing(ListingQuery("local")) for r in b}
        # The server's listing, with each local entry's pHash and image kept by identifier.
        assert after == {**before, "theirs": (None, "already there")}
        assert {k: v for k, v in publishable(local).items() if k != "theirs"} == images
        # A mirror now: a local change is staged for a push to the server (issue 12 item 1).
        from app.store import changes

        local.relabel("local", "plain-1", "label 0, ok", "x")
        assert [c.identifier for c in changes.outstanding(local, "local")] == ["plain-1"]
        again = publish(local, client_for(server), "local", "remote")
        assert again.complete and again.published == [] and "already" in again.mirror
        other = standin({"remote": []})
        with pytest.raises(HashlensError) as refused:
            publish(local, client_for(other), "local", "remote")
        assert "is a mirror of" in refused.value.description
        assert names.TRAIN_IMAGE_HASH not in [r.action for r in other.requests]
    finally:
        local.close()


def test_entries_the_server_does_not_hold_keep_the_database_local(standin, store):
    server = standin({"remote": []})
    report = publish(store, client_for(server), "local", "remote")
    assert report.complete and "stays a local database" in report.mirror and "'plain-1'" in report.mirror
    assert store.mirror_of("local") is None
