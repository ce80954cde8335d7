"""The difference of two listings: a merge in identifier order, proven against rebuilding one side from the other."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import HashlensError
from app.mediaserver import diff_report
from app.diff import DiffCounts, DiffEntry, compare

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)


@st.composite
def listings(draw):
    """Two listings over a shared pool of identifiers, each in identifier order."""
    pool = sorted(draw(st.sets(texts.filter(bool), max_size=12)))

    def side():
        chosen = [i for i in pool if draw(st.booleans())]
        out = []
        for identifier in chosen:
            keys = draw(st.lists(st.sampled_from(["a", "b", "k:1", "=x"]), unique=True, max_size=3))
            out.append(DiffEntry(identifier, draw(st.sampled_from(["cat", "dog", "", None])),
                                 draw(st.sampled_from([True, False, None])),
                                 tuple((k, draw(st.sampled_from(["1", "2", ""]))) for k in keys)))
        return out

    return side(), side()


def rebuild(old: list[DiffEntry], differences) -> list[DiffEntry]:
    """Apply the findings to the old side: it must give the new side exactly."""
    by_id = {e.identifier: e for e in old}
    for item in differences:
        if item.kind == "added":
            by_id[item.identifier] = item.entry
        elif item.kind == "removed":
            del by_id[item.identifier]
        else:
            e, c = by_id[item.identifier], item.change
            label = c.label[1] if c.label else e.label
            image = c.image_data[1] if c.image_data else e.has_image_data
            meta = dict(e.metadata)
            for m in c.metadata:
                if m.new is None:
                    del meta[m.key]
                else:
                    meta[m.key] = m.new
            by_id[item.identifier] = DiffEntry(e.identifier, label, image, tuple(meta.items()))
    return [by_id[k] for k in sorted(by_id)]


def as_sets(entries):
    return [(e.identifier, e.label, e.has_image_data, frozenset(e.metadata)) for e in entries]


@settings(max_examples=300, deadline=None)
@given(listings())
def test_the_findings_turn_the_old_side_into_the_new(sides):
    old, new = sides
    counts = DiffCounts()
    found = list(compare(old, new, counts))
    assert as_sets(rebuild(old, found)) == as_sets(new)
    assert [f.identifier for f in found] == sorted(f.identifier for f in found)
    assert (counts.added, counts.removed, counts.changed) == tuple(
        sum(f.kind == k for f in found) for k in ("added", "removed", "changed"))
    assert counts.equal == (as_sets(old) == as_sets(new))


@settings(max_examples=100, deadline=None)
@given(listings(), st.sampled_from(diff_report.FORMATS))
def test_every_format_writes_every_finding(sides, fmt):
    old, new = sides
    counts = DiffCounts()
    out = io.StringIO()
    diff_report.write(out, fmt, compare(old, new, counts), counts, old_name="A", new_name="B")
    text = out.getvalue()
    found = list(compare(old, new))
    if fmt == "json":
        doc = json.loads(text)
        for kind in ("added", "removed", "changed"):
            assert [o["identifier"] for o in doc[kind]] == [f.identifier for f in found if f.kind == kind]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert {r["identifier"] for r in rows} == {
            f.identifier if f.identifier[:1] not in "=+-@\t\r＝＋－＠'" else "'" + f.identifier for f in found}
    elif fmt == "text":
        assert len(text.splitlines()) == len(found) + 2
    else:
        assert text.startswith("<!DOCTYPE html>") and text.count("<tr><td>") == len(found)


def test_what_a_change_says():
    old = [DiffEntry("a", "cat", True, (("k", "1"), ("gone", "x"))), DiffEntry("b", "b", True, ())]
    new = [DiffEntry("a", "kitten", False, (("k", "2"), ("new", "y"))), DiffEntry("c", "c", None, ())]
    counts = DiffCounts()
    out = io.StringIO()
    diff_report.write(out, "text", compare(old, new, counts), counts, old_name="snapshot 1", new_name="snapshot 2")
    assert out.getvalue().splitlines() == [
        "Differences from snapshot 1 to snapshot 2",
        "~ a: relabelled 'cat' -> 'kitten'; image data removed; metadata 'k' changed: '1' -> '2'; "
        "metadata 'gone' removed (was 'x'); metadata 'new' added: 'y'",
        "- b  (label 'b')",
        "+ c  (label 'c')",
        "1 added, 1 removed, 1 changed (1 relabelled, 1 with image data removed, 1 with metadata changes).",
    ]
    doc = json.loads(_render("json", old, new))
    assert doc["changed"] == [{"identifier": "a", "label": {"old": "cat", "new": "kitten"},
                               "has_image_data": {"old": True, "new": False},
                               "metadata": [{"key": "k", "old": "1", "new": "2"},
                                            {"key": "gone", "old": "x", "new": None},
                                            {"key": "new", "old": None, "new": "y"}]}]
    assert doc["summary"]["added"] == 1 and doc["added"][0]["has_image_data"] is None


def _render(fmt, old, new) -> str:
    counts = DiffCounts()
    out = io.StringIO()
    diff_report.write(out, fmt, compare(old, new, counts), counts, old_name="A", new_name="B")
    return out.getvalue()


def test_equal_listings_say_so():
    same = [DiffEntry("a", "x", True, ())]
    assert _render("text", same, same).splitlines()[-1] == "No differences (1 entries on both sides)."
    assert json.loads(_render("json", same, same))["changed"] == []


def test_input_out_of_order_is_refused():
    with pytest.raises(HashlensError) as caught:
        list(compare([DiffEntry("b", None, None), DiffEntry("a", None, None)], []))
    assert "not in identifier order ('b' before 'a')" in str(caught.value)


def test_html_caps_rows_but_not_counts(monkeypatch):
    monkeypatch.setattr(diff_report, "HTML_ROWS_PER_KIND", 3)
    new = [DiffEntry(f"e{i}", "l", True, ()) for i in range(5)]
    html = _render("html", [], new)
    assert "Added (5)" in html and html.count("<tr><td>") == 3 and "and 2 more" in html
