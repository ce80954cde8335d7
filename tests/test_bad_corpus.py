"""Replays the bad-input corpus: every case refused with its code and a clear message,
no traceback, and the store's content unchanged (reliability plan, section c.6)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest

from app.aci.actions import handle
from app.domain import HashlensError, NewEntry
from app.services import actions
from app.store import Store

CORPUS = Path(__file__).parent / "corpus" / "bad"
CASES = tomllib.loads((CORPUS / "manifest.toml").read_text())["case"]
TABLES = ["hl_store_info", "hl_database", "hl_entry", "hl_image", "hl_metadata", "hl_mark", "hl_journal"]


def content_digest(store: Store) -> str:
    """An ordered hash over every table: equal digests mean equal content."""
    digest = hashlib.sha256()
    for table in TABLES:
        for row in store.sql.all(f"SELECT * FROM {table} ORDER BY 1, 2"):
            digest.update(repr(row).encode())
    return digest.hexdigest()


@pytest.fixture
def seeded(sqlite_url):
    store = Store.open(sqlite_url)
    actions.create_database(store, "D")
    with store.writing():
        store.add_entry("D", NewEntry("e1", "label", 7, None, None, None, None, None, (("k", "v"),)))
    yield store
    store.close()


def _request_for(case, tmp_path) -> str:
    if case["operation"] == "aci-query":
        return case["request"]
    name = case["file"]
    if name == ":fifo":
        path = tmp_path / "pipe.png"
        os.mkfifo(path)
    elif name == ":directory":
        path = tmp_path
    else:
        path = CORPUS / name
    return f"action=TrainImageHash&database=D&imagepath={quote(str(path))}"


def _ids(cases):
    return [f"{c['operation']}:{c['note']}" for c in cases]


ACI_CASES = [c for c in CASES if c["operation"] in ("aci-query", "train-image")]
DB_CASES = [c for c in CASES if c["operation"] == "open-db"]


def test_corpus_is_large_enough():
    assert len(CASES) >= 48


@pytest.mark.parametrize("case", ACI_CASES, ids=_ids(ACI_CASES))
def test_request_is_refused_and_nothing_changes(seeded, tmp_path, case):
    before = content_digest(seeded)
    answer = handle(seeded, _request_for(case, tmp_path))
    text = answer.text()
    assert not answer.ok, text
    assert f"<errorcode>{case['code']}</errorcode>" in text
    assert case["fragment"] in answer.error.description, answer.error.description
    assert "Traceback" not in text
    assert content_digest(seeded) == before


@pytest.mark.parametrize("case", DB_CASES, ids=_ids(DB_CASES))
def test_damaged_store_is_refused_or_read_only_and_left_untouched(tmp_path, case):
    path = tmp_path / "store.db"
    shutil.copyfile(CORPUS / case["file"], path)
    original = path.read_bytes()
    try:
        with Store.open(f"sqlite:///{path}", read_only=True) as store:
            # Opened (a newer schema): readable, every write refused with the reason.
            with pytest.raises(HashlensError) as info:
                actions.create_database(store, "X")
    except HashlensError as exc:
        info = pytest.ExceptionInfo.from_exc_info((type(exc), exc, exc.__traceback__))
    assert case["fragment"] in info.value.description
    assert "Traceback" not in info.value.description
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db"]
