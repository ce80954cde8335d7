"""Passing store trouble is not damage: the window says it in the status bar, reconnects by
itself and keeps working; it says "damaged" only when a fresh connection fails too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app import sources
from app.domain import Failure, HashlensError
from tests.ui.conftest import ANIMALS_TOTAL, wait_idle
from ui.errors import dialog_events

FIELD_ERROR = ("The store {} is damaged or is not a Hashlens store (file is not a database). "
               "Run 'hashlens audit' for an integrity report; Hashlens never repairs it in place.")


@pytest.fixture
def dialogs(qapp):
    """Every message box shown, as (kind, title, text), observed through the one seam."""
    shown = []
    dialog_events().shown.connect(lambda *args: shown.append(args))
    yield shown
    dialog_events().shown.disconnect()


class FlakySource:
    """The SQL store, except that its listing fails the way the field report did while
    `failures` lasts (another process was using the same SQLite file)."""

    failures = 0

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def list_page(self, query):
        if FlakySource.failures > 0 and query.start == 1:  # the page shown, not a prefetch
            FlakySource.failures -= 1
            raise HashlensError(Failure.STORE_UNAVAILABLE, FIELD_ERROR.format(self._inner.describe()))
        return self._inner.list_page(query)


@pytest.fixture
def flaky_scheme(monkeypatch):
    """A `flaky+sqlite:///path` scheme through the public opener registry."""
    monkeypatch.setattr(sources, "_OPENERS", dict(sources._OPENERS))

    def opener(url, *, read_only=False, create=False):
        return FlakySource(sources.open_source(url.replace("flaky+sqlite", "sqlite", 1), read_only=read_only,
                                               create=create))

    sources.register_scheme("flaky+sqlite", opener)
    FlakySource.failures = 0
    yield
    FlakySource.failures = 0


def test_a_passing_failure_is_a_status_message_and_the_window_recovers(qtbot, make_window, browse_url,
                                                                         flaky_scheme, dialogs):
    window = make_window(browse_url.replace("sqlite", "flaky+sqlite", 1))
    FlakySource.failures = 1
    with qtbot.waitSignal(window.session.recovered, timeout=10000):
        window.refresh()
    wait_idle(qtbot, window)
    assert dialogs == []
    assert "Hashlens reconnected" in window.status_bar.currentMessage()
    assert window.model.count.value == ANIMALS_TOTAL and window.model.rowCount() == 100


def test_damaged_is_said_only_when_a_fresh_connection_fails_too(qtbot, make_window, browse_url,
                                                                  flaky_scheme, dialogs):
    window = make_window(browse_url.replace("sqlite", "flaky+sqlite", 1))
    path = browse_url.removeprefix("sqlite:///")
    with open(path, "r+b") as f:  # really damaged now: the header is gone
        f.write(b"\0" * 100)
    FlakySource.failures = 1
    window.refresh()
    qtbot.waitUntil(lambda: bool(dialogs), timeout=10000)
    kind, title, text = dialogs[0]
    assert kind == "warning" and ("damaged" in text or "not a" in text)


def test_a_command_line_job_on_the_same_file_raises_no_alarm(qtbot, make_window, browse_url, dialogs):
    """`hashlens sample` writes the store in another process while the window polls,
    refreshes and pages: no dialog, and the window sees the new database afterwards."""
    window = make_window(browse_url, poll_ms=20)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    job = subprocess.Popen([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))", "--store", browse_url, "sample", "--count", "20000",
                            "--images", "20", "Busy"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pages = 0
        while job.poll() is None:
            window.refresh()
            window.model.next_page() if pages % 2 == 0 else window.model.previous_page()
            wait_idle(qtbot, window, timeout=20000)
            pages += 1
        out, err = job.communicate()
        assert job.returncode == 0, err.decode()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    window.refresh()
    qtbot.waitUntil(lambda: "Busy" in window.database_panel.names(), timeout=10000)
    assert dialogs == [] and pages > 0


def test_a_transient_error_is_a_status_message_not_a_dialog(qtbot, window, dialogs):
    busy = HashlensError(Failure.STORE_BUSY, "The store is busy (locked by another program); nothing was written.")
    busy.transient = True
    window.presenter.show_error(busy, "Relabel")
    assert dialogs == [] and window.status_bar.currentMessage().startswith("Relabel: The store is busy")
