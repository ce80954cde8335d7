"""The `source` fixture: a fresh, empty Source of every kind the contract covers."""

from __future__ import annotations

import pytest

from app.sources import open_source
from tests.contract.memory_source import MemorySource


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server),
                        pytest.param("mysql", marks=pytest.mark.server), "memory"])
def source(request):
    """An empty source: the SQL store on each backend, and the in-memory test source."""
    if request.param == "memory":
        yield MemorySource()
        return
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param]
    store = open_source(request.getfixturevalue(fixture), create=True)
    try:
        yield store
    finally:
        store.close()
