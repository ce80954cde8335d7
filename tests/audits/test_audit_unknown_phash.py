"""Entries whose pHash is not known (issue 11 item 3): the audit never calls them
duplicates of each other, skips them in every pHash comparison, and says how many it
could not compare, in the text, JSON and HTML reports."""

from __future__ import annotations

import json

from app.audits.audit import run_audit
from app.audits.html_report import to_html
from app.audits.report import to_json, to_text
from app.domain import NewEntry
from app.services import actions
from app.store import Store


def _entry(identifier: str, phash: int | None, declared: bool | None = None) -> NewEntry:
    return NewEntry(identifier, identifier, phash, None, None, None, None, None, (), 1, declared)


def test_unknown_pHashes_are_skipped_and_counted(sqlite_url):
    with Store.open(sqlite_url) as store:
        actions.create_database(store, "D")
        for i in range(5):  # five entries from a Media Server: no pHash
            store.add_entry("D", _entry(f"ms{i}", None, True))
        store.add_entry("D", _entry("x", 0x0F0F0F0F0F0F0F0F))
        store.add_entry("D", _entry("y", 0x0F0F0F0F0F0F0F0F))  # a real duplicate of x
        actions.create_database(store, "E")
        store.add_entry("E", _entry("ms-other", None))
    with Store.open(sqlite_url, read_only=True) as store:
        result = run_audit(store)
    d = {x.name: x for x in result.databases}["D"]
    groups = [[m.identifier for m in g.members] for g in d.groups]
    assert groups == [["x", "y"]]  # the five unknown ones are not "identical"
    (skipped,) = [f for f in result.findings if f.kind == "not-compared" and f.database == "D"]
    assert skipped.count == 5 and set(skipped.identifiers) == {f"ms{i}" for i in range(5)}
    assert "5 entries have no pHash (not known" in skipped.message and "could not compare" in skipped.message
    assert not [f for f in result.findings if f.kind == "hash-degenerate"]
    assert not result.across_groups  # ms-other is compared with nothing either
    # The histogram counts only pairs that could be compared: x and y.
    assert sum(d.distance_histogram) == 1
    assert "could not compare" in to_text(result)
    assert any(f["kind"] == "not-compared" for f in json.loads(to_json(result))["findings"])
    assert "could not compare" in to_html(result)
