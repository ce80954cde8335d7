"""A pull's staging file gives back every entry as staged, metadata as the JSON text the store keeps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.diff import metadata_json
from app.mediaserver.staging import Staging
from app.mediaserver_codec.reader import ImageStatus, ListedEntry

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(text, st.none() | text, st.none() | st.booleans(),
                          st.none() | st.lists(st.tuples(text, text), max_size=3)), max_size=6))
def test_staged_entries_come_back_as_staged(rows):
    listed = [ListedEntry(ident, {}, None if label is None and flag is None else (ImageStatus(label, None, flag),),
                          None if meta is None else tuple(meta), 0) for ident, label, flag, meta in rows]
    with Staging() as staging:
        staging.add(listed)
        back = list(staging.entries())
    assert [(e.identifier, e.label, e.has_image_data) for e in back] == [
        (e.identifier, e.label, e.has_image_data) for e in listed]
    assert [e.metadata for e in back] == [metadata_json(e.metadata or ()) for e in listed]
    assert [e.items for e in back] == [e.metadata or () for e in listed]
