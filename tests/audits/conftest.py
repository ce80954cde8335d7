"""Fixtures for the audit tests: the planted-problem store, built once per module on SQLite."""

from __future__ import annotations

import shutil

import pytest

from app.store import Store

import audit_planted


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory):
    """A closed SQLite store file with the planted problems, and the facts about it."""
    path = tmp_path_factory.mktemp("planted") / "planted.db"
    store = Store.open("sqlite:///" + str(path))
    facts = audit_planted.build(store)
    store.close()
    return path, facts


@pytest.fixture
def planted_url(planted_file, tmp_path):
    """A private copy of the planted store that a test may change."""
    path, _ = planted_file
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    return "sqlite:///" + str(copy)
