"""Killing a training batch at any entry keeps every entry committed before it, whole, and
nothing of the one in flight (reliability plan, K3)."""

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from app.domain import ListingQuery
from app.services import actions
from app.store import Store
from tests.conftest import make_image

TRAIN = """
import sys
from app.services import actions
from app.store import Store
store = Store.open(sys.argv[1])
actions.train_files(store, "D", [sys.argv[2]], workers=1)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    for i in range(32):
        (path / f"img{i:02d}.png").write_bytes(make_image(i + 1))
    return path


@pytest.mark.parametrize("kill_at", range(1, 31))
def test_kill_during_training_keeps_whole_entries_only(tmp_path, folder, kill_at):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
    env = dict(os.environ, HASHLENS_FAULTS=f"train.commit={kill_at}:kill")
    result = subprocess.run([sys.executable, "-c", TRAIN, url, str(folder)], env=env, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    with Store.open(url) as store:
        rows = store.list_page(ListingQuery("D", imagestatus=True)).rows
        assert [r.label for r in rows] == [f"img{i:02d}" for i in range(kill_at - 1)]
        assert store.count(ListingQuery("D")).value == kill_at - 1
        assert all(r.has_image_data for r in rows)
        images = store.images_by_key([r.key for r in rows])
        assert sorted(images) == sorted(r.key for r in rows)
        trained = [j for j in store.history() if j.action == "TrainImageHash"]
        assert len(trained) == kill_at - 1
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
