"""Worker lanes: results on the GUI thread, newest ticket wins, connections kept, clean stop."""

from __future__ import annotations

import threading

import pytest

from app.domain import Failure, HashlensError
from app.store import Store
import shiboken6

from ui.workers import CancelToken, Workers


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
    # Job 1's outcome is emitted before job 3 runs, so it is handled before job 3's.
    qtbot.waitUntil(lambda: bool(delivered), timeout=3000)
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
    gate, started = threading.Event(), threading.Event()
    ran = []
    workers.submit("write", lambda: started.set() or gate.wait(2) or ran.append("first"), store=store)
    for n in range(5):
        workers.submit("write", lambda n=n: ran.append(n), store=store)
    workers.submit("ui", lambda: None, store=store)
    assert started.wait(5)
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

    holder.append(workers.submit("write", fn, on_progress=lambda p: seen.append((p.done, p.total))))
    qtbot.waitUntil(lambda: (3, 3) in seen, timeout=3000)


def test_nothing_is_delivered_to_a_deleted_owner(qtbot, workers):
    """A result for a widget that is gone is dropped, not handed to a dead C++ object."""
    from PySide6.QtWidgets import QWidget

    owner = QWidget()
    gate = threading.Event()
    delivered = []
    job = workers.submit("ui", lambda: gate.wait(5), owner=owner, on_done=delivered.append)
    later = workers.submit("ui", lambda: "later", on_done=delivered.append)
    owner.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(owner), timeout=3000)
    gate.set()
    qtbot.waitUntil(lambda: delivered == ["later"], timeout=3000)
    assert job.ended.is_set()


def test_a_task_shows_progress_and_its_cancel_ends_it_the_jobs_way(qtbot, workers):
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    started, outcomes = threading.Event(), []

    def work(progress, stop):
        progress(1, 4, "Reading")
        started.set()
        while not stop():
            stop._event.wait(0.01)
        raise HashlensError(Failure.CANCELLED, "cancelled")

    task = workers.run_task("task", work, title="T", text="Working", parent=parent, total=4,
                            on_done=outcomes.append, on_error=outcomes.append)
    assert started.wait(5)
    qtbot.waitUntil(lambda: "Reading: 1 of 4 (25%)" in task.dialog.rate.text(), timeout=3000)
    dialog = task.dialog
    task.request_cancel()
    qtbot.waitUntil(lambda: bool(outcomes), timeout=3000)
    assert outcomes[0].failure is Failure.CANCELLED and task.dialog is None and not dialog.isVisible()


def test_cancel_and_wait_returns_when_the_job_has_ended(qtbot, workers):
    stop, delivered = CancelToken(), []

    def work():
        while not stop():
            stop._event.wait(0.01)
        return "stopped"

    job = workers.submit("task", work, on_done=delivered.append)
    assert workers.cancel_and_wait(job, stop, 5000)
    assert job.ended.is_set()
    qtbot.waitUntil(lambda: not workers.busy("task"), timeout=3000)
    assert delivered == []  # its result is dropped: the dialog that asked is closing


def test_deleting_a_service_without_shutdown_does_not_hang(qtbot):
    from PySide6.QtCore import QObject

    parent = QObject()
    workers = Workers(parent)
    done = []
    workers.submit("ui", lambda: "x", on_done=done.append)
    qtbot.waitUntil(lambda: done == ["x"], timeout=3000)
    del workers
    parent.deleteLater()  # the pool's destructor waits for the lanes: they must stop
    qtbot.waitUntil(lambda: not shiboken6.isValid(parent), timeout=5000)


def test_progress_text_has_percentage_and_time_left():
    from ui.progress_dialog import describe_progress

    assert describe_progress(250, 1000, 5.0, "Hashing") == "Hashing: 250 of 1,000 (25%) · 50 per second · about 15 s left"
    assert describe_progress(1200, None, 2.0) == "1,200 done · 600 per second"
    assert describe_progress(1000, 1000, 2.0).endswith("500 per second")
