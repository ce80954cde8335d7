"""Worker lanes: results on the GUI thread, newest ticket wins, connections kept, clean stop."""

from __future__ import annotations

import threading

import pytest

from app.domain import Failure, HashlensError
from app.store import Store
from ui.workers import Workers


@pytest.fixture
def workers(qtbot):
    w = Workers()
    yield w
    assert w.shutdown(5000)
    assert w.active_threads == 0


def test_result_arrives_on_gui_thread(qtbot, workers):
    seen = []
    main = threading.get_ident()
    workers.submit("ui", lambda: threading.get_ident(), on_done=lambda t: seen.append((t, threading.get_ident())))
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    worker_thread, delivered_on = seen[0]
    assert worker_thread != main
    assert delivered_on == main


def test_newest_ticket_wins_and_stale_jobs_never_run(qtbot, workers):
    gate = threading.Event()
    ran, delivered = [], []

    def job(n):
        def fn():
            ran.append(n)
            if n == 1:
                gate.wait(5)
            return n
        return fn

    workers.submit("ui", job(1), kind="page", on_done=delivered.append)
    qtbot.waitUntil(lambda: ran == [1], timeout=3000)
    for n in (2, 3):
        workers.submit("ui", job(n), kind="page", on_done=delivered.append)
    gate.set()
    qtbot.waitUntil(lambda: bool(delivered), timeout=3000)
    qtbot.wait(50)
    # Job 1 ran but was superseded: dropped. Job 2 was stale before it started: skipped.
    assert delivered == [3]
    assert ran == [1, 3]


def test_kinds_are_independent(qtbot, workers):
    got = []
    workers.submit("ui", lambda: "a", kind="page", on_done=got.append)
    workers.submit("ui", lambda: "b", kind="count", on_done=got.append)
    qtbot.waitUntil(lambda: len(got) == 2, timeout=3000)
    assert sorted(got) == ["a", "b"]


def test_errors_are_delivered_and_surprises_become_clear_errors(qtbot, workers, caplog):
    errors = []
    workers.submit("ui", lambda: (_ for _ in ()).throw(HashlensError(Failure.PARAM_INVALID, "bad")),
                   on_error=errors.append)
    workers.submit("ui", lambda: 1 / 0, on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=3000)
    assert errors[0].description == "bad"
    assert errors[1].failure is Failure.STORE_FAILED
    assert "ZeroDivisionError" in errors[1].description
    assert "Traceback" not in errors[1].description
    assert "Traceback" in caplog.text  # the details went to the log


def test_error_without_handler_goes_to_error_signal(qtbot, workers):
    with qtbot.waitSignal(workers.error, timeout=3000) as blocker:
        workers.submit("ui", lambda: (_ for _ in ()).throw(HashlensError(Failure.STORE_BUSY, "busy")))
    assert blocker.args[0].description == "busy"


def test_lane_keeps_its_connection_between_jobs(qtbot, workers, sqlite_url):
    store = Store.open(sqlite_url)
    ids = []
    for _ in range(3):
        workers.submit("ui", lambda: id(store.db.connection()), store=store, on_done=ids.append)
    qtbot.waitUntil(lambda: len(ids) == 3, timeout=3000)
    assert len(set(ids)) == 1
    store.close()


def test_interrupt_stops_a_running_sqlite_statement(qtbot, workers, sqlite_url):
    store = Store.open(sqlite_url)
    errors, started = [], threading.Event()

    def endless():
        started.set()
        # A statement that would run for minutes; only an interrupt ends it.
        store.sql.one("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n")

    job = workers.submit("count", endless, store=store, on_error=errors.append)
    assert started.wait(3)
    # Interrupting before the statement has begun does nothing in SQLite: keep asking.
    qtbot.waitUntil(lambda: workers.interrupt("count", job) is not None and bool(errors), timeout=5000)
    assert errors[0].failure is Failure.CANCELLED
    store.close()


def test_shutdown_cancels_queued_work_and_stops_every_thread(qtbot, sqlite_url):
    workers = Workers()
    store = Store.open(sqlite_url)
    gate = threading.Event()
    ran = []
    workers.submit("write", lambda: gate.wait(2) or ran.append("first"), store=store)
    for n in range(5):
        workers.submit("write", lambda n=n: ran.append(n), store=store)
    workers.submit("ui", lambda: None, store=store)
    qtbot.wait(50)
    gate.set()
    assert workers.shutdown(5000)
    assert workers.active_threads == 0
    assert all(r == "first" for r in ran)  # nothing queued ran after the stop
    store.close()


def test_progress_reaches_the_gui_thread(qtbot, workers):
    holder, seen = [], []
    progress = workers.progress_callback(holder)

    def fn():
        for i in range(1, 4):
            progress(i, 3)
        return "done"

    holder.append(workers.submit("write", fn, on_progress=lambda d, t: seen.append((d, t))))
    qtbot.waitUntil(lambda: (3, 3) in seen, timeout=3000)
