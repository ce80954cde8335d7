"""Killing `hashlens publish` at random moments (SIGKILL at its checkpoints), then running it again: every entry with image data is trained exactly once."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys

import pytest

from app.store import Store
from tests.app.test_publish import assert_exactly_once, local_store, publishable
from tests.standin.fixture import standin  # noqa: F401 - the fixture

PUBLISH = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
ENTRIES = 40  # 37 with image data (the first three have none)
RUNS = 30


def _publish(url: str, server_url: str, remote: str, faults: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("HASHLENS_FAULTS", None)
    if faults:
        env["HASHLENS_FAULTS"] = faults
    return subprocess.run([sys.executable, "-c", PUBLISH, "--store", url, "publish", "local", server_url, remote,
                           "--in-flight", "3"], env=env, capture_output=True, text=True, timeout=120)


def _kill_points(n: int, seed: int) -> list[str]:
    """Anywhere in a run: after marking, after an answer, after recording, at a store
    commit, after resolving the marks an earlier kill left open."""
    rng = random.Random(seed)
    pool = ["publish.marked=1:kill", "publish.recorded=1:kill"]
    pool += [f"publish.answered={rng.randint(1, ENTRIES - 3)}:kill" for _ in range(n)]
    pool += [f"store.commit={rng.randint(1, 6)}:kill" for _ in range(n // 3)]
    rng.shuffle(pool)
    return pool[:n]


@pytest.mark.slow
def test_killed_publishes_then_run_again_train_each_entry_exactly_once(standin, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    local_store(url, ENTRIES).close()
    remotes = {f"r{i}": [] for i in range(RUNS)}
    server = standin(remotes)
    points = _kill_points(RUNS, seed=int(os.environ.get("HASHLENS_KILL_SEED", "12")))
    killed = 0
    for i, point in enumerate(points):
        remote = f"r{i}"
        first = _publish(url, server.url, remote, point)
        killed += first.returncode == -9
        assert first.returncode in (-9, 0), (point, first.stderr)
        # A second kill while resolving what the first one left open.
        if first.returncode == -9 and i % 3 == 0:
            second = _publish(url, server.url, remote, "publish.resolved=1:kill")
            assert second.returncode in (-9, 0), (point, second.stderr)
        last = _publish(url, server.url, remote)
        assert last.returncode == 0, (point, last.stdout, last.stderr)
        with Store.open(url) as store:
            applied = [(a, p) for a, p in server.applied if p.get("database") == remote]
            view = _View(server, remote, applied)
            assert_exactly_once(view, store, remote)
        with sqlite3.connect(tmp_path / "kill.db") as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert killed >= RUNS * 2 // 3  # the kills really happened
    with Store.open(url) as store:
        assert len(publishable(store)) == ENTRIES - 3


class _View:
    """One remote database of the stand-in, as assert_exactly_once reads a server."""

    def __init__(self, server, remote, applied):
        self._server, self.applied = server, applied
        self.queue = {t: q for t, q in server.queue.items() if q.params.get("database") == remote}

    def entries(self, remote):
        return self._server.entries(remote)
