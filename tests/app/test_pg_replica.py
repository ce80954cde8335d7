"""Hashlens on a PostgreSQL streaming replica (issue 10: beyond one server, tested).

A primary cluster of our own (initdb on a loopback port) and a standby made from it with
`pg_basebackup -R`: training on the primary shows up on the standby once replayed, and
Hashlens opened on the standby lists the same entries and refuses every change with a
plain sentence, not a driver error. Runs where the PostgreSQL server tools are installed
(CI has them); skipped elsewhere.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from app.domain import Failure, HashlensError, ListingQuery, NewEntry
from app.sources import open_source

pytestmark = pytest.mark.server


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")) if Path("/usr/lib/postgresql").exists() else []
    return str(versions[-1]) if versions else None


TOOLS = {name: _tool(name) for name in ("initdb", "pg_ctl", "pg_basebackup", "psql")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """PostgreSQL clusters in a scratch folder, run as the postgres account when we are root
    (the server refuses to run as root)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="hl-replica-", dir="/tmp"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.running: list[Path] = []

    def run(self, *argv: str) -> None:
        result = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{argv[0]}: {result.stdout}{result.stderr}"

    def start(self, data: Path, port: int) -> None:
        self.run(TOOLS["pg_ctl"], "-D", str(data), "-l", str(data) + ".log", "-w", "-t", "120", "-o",
                 f"-p {port} -c listen_addresses=127.0.0.1 -k {self.root}", "start")
        self.running.append(data)

    def close(self) -> None:
        for data in reversed(self.running):
            subprocess.run([*self.as_user, TOOLS["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def replica():
    if not all(TOOLS.values()):
        pytest.skip(f"PostgreSQL server tools not installed: {[n for n, p in TOOLS.items() if not p]}")
    cluster = Cluster()
    try:
        primary, standby = cluster.root / "primary", cluster.root / "standby"
        primary_port, standby_port = _free_port(), _free_port()
        cluster.run(TOOLS["initdb"], "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        cluster.start(primary, primary_port)
        cluster.run(TOOLS["psql"], "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres", "-c",
                    "CREATE DATABASE hashlens")
        yield cluster, primary_port, standby, standby_port
    finally:
        cluster.close()


def _lsn(port: int, sql: str) -> str:
    from psycopg import connect

    with connect(host="127.0.0.1", port=port, user="postgres", dbname="hashlens", autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def _wait_for_replay(primary_port: int, standby_port: int) -> None:
    """Poll the standby until it has replayed everything the primary has written."""
    target = _lsn(primary_port, "SELECT pg_current_wal_lsn()::text")
    for _ in range(100_000):
        if _lsn(standby_port, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            return
    raise AssertionError("the standby never replayed the primary's changes")


def test_a_standby_lists_what_the_primary_holds_and_refuses_every_change(replica):
    cluster, primary_port, standby, standby_port = replica
    primary_url = f"postgresql://postgres@127.0.0.1:{primary_port}/hashlens"
    standby_url = f"postgresql://postgres@127.0.0.1:{standby_port}/hashlens"
    with open_source(primary_url, create=True) as store:
        store.create_database("D")
        for i in range(30):
            store.add_entry("D", NewEntry(f"e{i:02d}", f"label {i}", i * 7919, None, None, None, None, None,
                                          (("k", str(i)),)))
    cluster.run(TOOLS["pg_basebackup"], "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
                "-D", str(standby), "-R", "-X", "stream")
    cluster.start(standby, standby_port)
    with open_source(primary_url) as store:  # more training after the copy, streamed over
        store.add_entry("D", NewEntry("late", "late", 1, None, None, None, None, None))
        expected = [r.identifier for r in store.list_page(ListingQuery("D")).rows]
    _wait_for_replay(primary_port, standby_port)

    with open_source(standby_url) as replica_store:
        assert replica_store.read_only
        assert "replica" in replica_store.read_only_reason()
        assert [r.identifier for r in replica_store.list_page(ListingQuery("D")).rows] == expected
        assert replica_store.count(ListingQuery("D")).value == 31
        token = replica_store.change_token()
        changes = [
            lambda: replica_store.create_database("E"),
            lambda: replica_store.add_entry("D", NewEntry("new", "n", 2, None, None, None, None, None)),
            lambda: replica_store.remove_entry("D", "e01"),
            lambda: replica_store.rename_entry("D", "e01", "x"),
            lambda: replica_store.move_entry("D", "e01", "D"),
            lambda: replica_store.add_metadata("D", "e01", "a", "b"),
            lambda: replica_store.remove_database("D"),
        ]
        for change in changes:
            with pytest.raises(HashlensError) as caught:
                change()
            assert caught.value.failure is Failure.READ_ONLY
            assert "read-only replica" in caught.value.description
            assert "transaction" not in caught.value.description  # our words, not the driver's
        assert replica_store.change_token() == token
