"""The kill campaign (issue 10): a small run in CI on SQLite, 30 runs per operation on
SQLite and PostgreSQL under `soak` (scripts/soak.sh records the figures)."""

import zlib

import pytest

from tests.trust.killing import OPERATIONS, Backend, campaign, kill_points


@pytest.fixture(scope="module")
def sqlite_backend(tmp_path_factory):
    backend = Backend("sqlite", tmp_path_factory.mktemp("kills"))
    backend.prepare()
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def pg_backend(tmp_path_factory):
    pytest.importorskip("psycopg")
    backend = Backend("postgresql", tmp_path_factory.mktemp("pgkills"))
    try:
        backend.prepare()
    except Exception as exc:  # the server may be absent on a developer machine
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield backend
    backend.close()


@pytest.mark.slow
@pytest.mark.parametrize("op", OPERATIONS)
def test_kills_at_checkpoints_leave_a_consistent_store(sqlite_backend, op):
    tally = campaign(sqlite_backend, op, runs=3 if op != "export" else len(kill_points("export")))
    assert tally.failures == []
    assert tally.kills == tally.runs


@pytest.mark.soak
@pytest.mark.parametrize("backend_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
@pytest.mark.parametrize("op", OPERATIONS)
def test_kill_campaign(request, backend_name, op):
    backend = request.getfixturevalue(f"{'pg' if backend_name == 'postgresql' else 'sqlite'}_backend")
    tally = campaign(backend, op, runs=30, random_runs=3, seed=zlib.crc32(op.encode()))
    print(f"\nKILLS {backend_name} {op}: {tally.runs} runs, {tally.kills} killed, {len(tally.failures)} failures")
    assert tally.failures == []
    assert tally.kills >= 30
