"""Pulling a whole database from the stand-in: pages join up, a server that changes mid-pull is re-read, never torn."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import Failure, HashlensError
from app.mediaserver.client import MediaServerClient, MediaServerError
from app.mediaserver.pull import pull
from tests.standin import Fault, HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture


class ListSink:
    """A sink that keeps what it is given, and how often it was told to start again."""

    def __init__(self):
        self.entries = []
        self.restarts = 0

    def restart(self):
        self.entries.clear()
        self.restarts += 1

    def add(self, entries):
        self.entries.extend(entries)

    def identifiers(self):
        return [e.identifier for e in self.entries]


def entries(n: int, prefix: str = "e") -> list[HashEntry]:
    return [HashEntry(f"{prefix}{i:03d}", f"l{i}", i % 2 == 0, [("n", str(i))]) for i in range(n)]


def client_for(server) -> MediaServerClient:
    return MediaServerClient(server.url, timeout=10, sleep=lambda s: None)


@pytest.mark.parametrize("size, page", [(0, 5), (1, 5), (23, 5), (20, 5), (7, 1), (7, 100)])
def test_a_pull_reads_every_entry_once_in_order(standin, size, page):
    server = standin({"db": entries(size)})
    sink = ListSink()
    summary = pull(client_for(server), "db", sink, page_size=page)
    assert sink.identifiers() == [e.identifier for e in entries(size)]
    assert [(e.label, e.has_image_data, e.metadata) for e in sink.entries] == [
        (e.label, e.has_image_data, tuple(e.metadata)) for e in entries(size)]
    assert (summary.entries, summary.restarts, summary.database) == (size, 0, "db")
    assert summary.pages == len(server.requests)
    assert all(r.params["imagestatus"] == "true" and r.params["metadata"] == "true" for r in server.requests)


def test_pages_overlap_by_one_entry(standin):
    server = standin({"db": entries(12)})
    pull(client_for(server), "db", ListSink(), page_size=5)
    assert [(r.params["start"], r.params["maxresults"]) for r in server.requests] == [
        ("1", "5"), ("5", "6"), ("10", "6")]


def insert_front(server):
    server.databases["db"].insert(0, HashEntry("new-front", "x"))


def remove_early(server):
    del server.databases["db"][1]


def append_end(server):
    server.databases["db"].append(HashEntry("new-end", "x"))


@pytest.mark.parametrize("change, restarts", [(insert_front, 1), (remove_early, 1), (append_end, 0)])
def test_a_change_between_pages_is_seen_and_the_result_is_the_servers_state(standin, change, restarts):
    server = standin({"db": entries(20)})
    server.add_fault(Fault("mutate", at=3, mutate=change))
    sink = ListSink()
    summary = pull(client_for(server), "db", sink, page_size=5)
    assert sink.identifiers() == [e.identifier for e in server.entries("db")]
    assert summary.restarts == restarts == sink.restarts
    assert len(set(sink.identifiers())) == len(sink.identifiers())


def test_a_server_that_keeps_changing_fails_clearly(standin):
    server = standin({"db": entries(20)})
    server.add_fault(Fault("mutate", at=2, times=None, mutate=insert_front))
    sink = ListSink()
    with pytest.raises(HashlensError) as caught:
        pull(client_for(server), "db", sink, page_size=5, max_restarts=2)
    assert caught.value.failure is Failure.SERVER_CHANGED
    assert "kept changing database 'db'" in str(caught.value) and "3 attempts" in str(caught.value)
    assert sink.restarts == 2


def test_a_cancelled_pull_stops_between_pages(standin):
    server = standin({"db": entries(20)})
    sink = ListSink()
    seen = []
    with pytest.raises(HashlensError) as caught:
        pull(client_for(server), "db", sink, page_size=5, progress=lambda p: seen.append(p.entries),
             cancelled=lambda: len(seen) >= 2)
    assert caught.value.failure is Failure.CANCELLED and "nothing was stored" in str(caught.value)
    assert len(server.requests) == 2


def test_a_fault_mid_pull_is_the_clients_error(standin):
    server = standin({"db": entries(20)})
    server.add_fault(Fault("malformed", at=3))
    with pytest.raises(MediaServerError) as caught:
        pull(client_for(server), "db", ListSink(), page_size=5)
    assert caught.value.kind == "unreadable" and "start=10" in str(caught.value)


def test_a_page_size_below_one_is_refused(standin):
    server = standin({"db": entries(2)})
    with pytest.raises(HashlensError) as caught:
        pull(client_for(server), "db", ListSink(), page_size=0)
    assert "page size is 0" in str(caught.value)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 30), page=st.integers(1, 8), inserts=st.booleans(),
       changes=st.lists(st.tuples(st.integers(1, 12), st.integers(0, 40)), max_size=4))
def test_one_sided_changes_at_any_moment_never_tear_the_copy(standin, size, page, inserts, changes):
    """Only additions or only removals (each shifts what follows): the pull ends equal to
    the server's final state, with no entry lost or repeated."""
    server = standin({"db": entries(size)})
    counter = iter(range(1000))

    def change_at(where):
        def mutate(s):
            db = s.databases["db"]
            if inserts:
                db.insert(min(where, len(db)), HashEntry(f"n{next(counter)}", "x"))
            elif db:
                del db[where % len(db)]
        return mutate

    for request, where in changes:
        server.add_fault(Fault("mutate", at=request, mutate=change_at(where)))
    sink = ListSink()
    pull(client_for(server), "db", sink, page_size=page, max_restarts=len(changes) + 1)
    assert sink.identifiers() == [e.identifier for e in server.entries("db")]
    server.stop()


def test_a_pull_collects_garbage_less_often_while_it_runs_and_restores_the_setting(standin):
    import gc

    server = standin({"db": entries(12)})
    before = gc.get_threshold()
    during = []
    pull(client_for(server), "db", ListSink(), page_size=5, progress=lambda p: during.append(gc.get_threshold()))
    assert gc.get_threshold() == before and all(t[0] >= 50_000 for t in during) and during
    with pytest.raises(HashlensError):
        pull(client_for(server), "db", ListSink(), page_size=5, cancelled=lambda: True)
    assert gc.get_threshold() == before
