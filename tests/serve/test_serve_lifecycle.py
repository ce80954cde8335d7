"""`hashlens serve` at its edges: a request past its deadline over HTTP, and a real
command-line server stopped by SIGINT or SIGTERM (one process and two) while actions are
queued: every queued action ends Finished or cancelled, the process exits 0, the store
passes its integrity check and the request log holds every line."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from app.aci.actions import handle
from app.store import Store
from app.store.audit_queries import store_integrity
from tests.serve.client import HttpAci, http, post_multipart, queue_status, start, wait_for_action


@pytest.mark.server
def test_a_request_past_its_deadline_is_an_error_and_the_server_serves_on(pg_url, tmp_path):
    """A listing held by a lock another connection keeps is cancelled at the deadline:
    HTTP 200 with an ERRORTIMEOUT autnresponse; meanwhile and afterwards the server answers."""
    import psycopg

    store = Store.open(pg_url)
    from app.services import actions

    actions.create_database(store, "D")
    store.close()
    server = start(pg_url, tmp_path, deadline=0.5)
    blocker = psycopg.connect(pg_url)
    try:
        blocker.execute("LOCK TABLE hl_database IN ACCESS EXCLUSIVE MODE")  # held until rollback
        answered: dict = {}
        held = threading.Thread(target=lambda: answered.update(
            zip(("status", "headers", "body"), http(server.url, "GET", "/action=ListImageHashes&database=D"))))
        held.start()
        # While one worker waits on the lock, another answers at once.
        status, _, body = http(server.url, "GET", "/action=GetVersion")
        assert status == 200 and ET.fromstring(body).findtext("response") == "SUCCESS"
        held.join(60)
        assert not held.is_alive()
    finally:
        blocker.rollback()
        blocker.close()
    try:
        assert answered["status"] == 200
        root = ET.fromstring(answered["body"])
        assert root.findtext("action") == "LISTIMAGEHASHES" and root.findtext("response") == "ERROR"
        assert root.findtext("responsedata/error/errorcode") == "ERRORTIMEOUT"
        assert "0.5 seconds" in root.findtext("responsedata/error/errordescription")
        # The worker's connection was cancelled, not lost: every worker answers again.
        for _ in range(6):
            status, _, body = http(server.url, "GET", "/action=ListImageHashes&database=D")
            assert status == 200 and ET.fromstring(body).findtext("response") == "SUCCESS"
        server.flush_log()
        assert "action=LISTIMAGEHASHES outcome=ERROR ERRORTIMEOUT" in (tmp_path / "serve.log").read_text()
    finally:
        server.stop()


def _serve(sqlite_url: str, tmp_path, workers: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", "--store", sqlite_url,
         "serve", "--port", "0", "--workers", str(workers), "--log", str(tmp_path / "cli.log")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_with_actions_queued(sqlite_url, tmp_path, image_bytes, signum, workers):
    store = Store.open(sqlite_url)
    from app.services import actions

    actions.create_database(store, "D")
    store.close()
    proc = _serve(sqlite_url, tmp_path, workers)
    # The store's write lock, taken by the test: the first training waits for it (Processing)
    # and the others stay Queued, so the signal arrives with work in the queue.
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        line = proc.stdout.readline()
        assert "Serving" in line and f"{workers} process" in line, line + proc.stderr.read()
        server = SimpleNamespace(url=line.split(" at ", 1)[1].split(" ", 1)[0])
        client = HttpAci(server, "get")
        blocker.execute("BEGIN IMMEDIATE")
        tokens = [post_multipart(server, {"action": "TrainImageHash", "database": "D", "identifier": f"id{i}",
                                          "imagedata": ("a.png", image_bytes(i))}).findtext("responsedata/token")
                  for i in range(3)]
        assert all(tokens)
        wait_for_action(client, "TrainImageHash", tokens[0], statuses=("Processing",))
        assert queue_status(client, "TrainImageHash", tokens[2]).findtext("responsedata/actions/action/status") \
            == "Queued"
        proc.send_signal(signum)
        assert "Stopping" in proc.stderr.readline()
        # The queued two are cancelled while the first still waits (the log is written
        # every quarter second); only then may the running training finish.
        wait_for_log(tmp_path / "cli.log", [f"token={t} outcome=ERROR ERRORCANCELLED" for t in tokens[1:]])
        blocker.execute("ROLLBACK")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Stopped." in err and "Traceback" not in err
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The log was flushed whole: every request, every queued action's end, the stop.
    log = (tmp_path / "cli.log").read_text()
    assert log.count("action=TRAINIMAGEHASH outcome=SUCCESS") == 3
    assert "action=QUEUEINFO outcome=SUCCESS" in log
    assert log.rstrip().endswith("INFO hashlens.serve stopped")
    ended = {line.split(" token=", 1)[1].split(" ", 1)[0]: line.split(" outcome=", 1)[1].rsplit(" ms=", 1)[0]
             for line in log.splitlines() if " queued action=TRAINIMAGEHASH " in line}
    assert set(ended) == set(tokens)
    # The running one finishes (or, on a machine so busy that it waited out the store's
    # 5 s busy timeout first, fails without a change); the queued ones were cancelled.
    assert ended[tokens[0]] in ("FINISHED", "ERROR ERRORSTOREBUSY")
    assert [ended[t] for t in tokens[1:]] == ["ERROR ERRORCANCELLED"] * 2
    store = Store.open(sqlite_url)
    try:
        assert store_integrity(store)[0] == "ok"
        listing = ET.fromstring(handle(store, "action=ListImageHashes&database=D").text())
        assert [e.findtext("identifier") for e in listing.findall("responsedata/entry")] == \
            (["id0"] if ended[tokens[0]] == "FINISHED" else [])
        assert store.list_databases()[0].entry_count == (1 if ended[tokens[0]] == "FINISHED" else 0)
    finally:
        store.close()


def wait_for_log(path, needles: list[str], limit: float = 60.0) -> None:
    """Wait until the log file holds every needle (bounded; the log is written in batches)."""
    give_up = time.monotonic() + limit
    while not (path.exists() and all(n in path.read_text() for n in needles)):
        assert time.monotonic() < give_up, f"the log never said {needles}"
        time.sleep(0.02)


def test_a_signal_that_lands_on_another_thread_still_stops_the_wait():
    """The system may hand SIGTERM or SIGINT to any thread (a serving one, say); the main
    thread's wait must still end (a plain Event.wait() never woke: a CI run hung)."""
    script = (
        "import signal, threading\n"
        "from app.serve.workers import wait_for_stop\n"
        "stop = threading.Event()\n"
        "signal.signal(signal.SIGTERM, lambda *_: stop.set())\n"
        "ready, done = threading.Event(), threading.Event()\n"
        "def other():\n"
        "    ready.set()\n"
        "    done.wait(60)\n"
        "thread = threading.Thread(target=other)\n"
        "thread.start()\n"
        "ready.wait()\n"
        "signal.pthread_kill(thread.ident, signal.SIGTERM)\n"
        "wait_for_stop(stop)\n"
        "done.set()\n"
        "thread.join()\n"
        "print('stopped')\n")
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert result.stdout.strip() == "stopped", result.stderr
