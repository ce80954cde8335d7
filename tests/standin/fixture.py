"""The pytest fixture that starts a stand-in Media Server for a test and stops it after."""

from __future__ import annotations

import pytest

from tests.standin.server import Standin


@pytest.fixture
def standin():
    """A factory: `standin({"db": [HashEntry(...)]}, counters=...)` starts a stand-in on a
    free loopback port; every stand-in started is stopped when the test ends."""
    started: list[Standin] = []

    def start(databases=None, **options) -> Standin:
        server = Standin(databases, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
