"""The import's quick checks agree with the careful ones they stand in for: every text the
quick pass accepts, `check_text` accepts, and the other way round."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import HashlensError, all_storable, check_text
from app.exports import readers
from app.exports.readers import ImportRefused

# Texts near every rule's edge: empty, white space, control and non-characters, surrogates,
# and lengths around 254 bytes of UTF-8 in one- to four-byte characters.
_chars = st.sampled_from(["a", " ", "\t", "\n", "\x00", "\x01", "\x7f", "é", "€", "\ud800", "\ufffe", "\uffff",
                          "😀", "\U0010ffff", "\u2028", "\r"])
_texts = st.one_of(
    st.text(_chars, max_size=8),
    st.builds(lambda c, n, tail: c * n + tail, st.sampled_from(["a", "é", "€", "😀"]), st.integers(60, 260),
              st.text(_chars, max_size=2)),
    st.text(max_size=70),
)


def _passes(text: str, allow_empty: bool) -> bool:
    try:
        check_text("x", text, allow_empty=allow_empty)
    except HashlensError:
        return False
    return True


@settings(max_examples=1500, deadline=None)  # no timing assertion: the machine is shared
@given(st.lists(_texts, max_size=4), st.lists(_texts, max_size=3))
def test_all_storable_is_check_text(texts, values):
    expected = all(_passes(t, False) for t in texts) and all(_passes(v, True) for v in values)
    assert all_storable(texts, values) == expected


# -- a JSON line read the quick way (C decoder, pairs) is read as the careful way reads it -------------

_KEYS = st.sampled_from(["identifier", "label", "phash", "trained_at", "metadata", "hasimagedata", "width",
                         "position", "image", "sha256", "k", "j", "unknown"])
_scalars = st.one_of(
    st.sampled_from(["a3e8156fb9bb569c", "A3E8156FB9BB569C", "0x1f", "2023-01-01T00:00:00.817Z", "x", "", "bad\u0001",
                     "aGk=", "not base64"]),
    st.integers(-2, 2**64 + 2), st.sampled_from([0, 10**30, 1.5]), st.booleans(), st.none(),
)


class _Pairs(list):
    """A JSON object written as its pairs, so a key may be written twice."""


def _objects(values):
    return st.lists(st.tuples(_KEYS, values), max_size=6).map(_Pairs)


_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=2), _objects(inner)), max_leaves=8)
_space = st.sampled_from(["", " ", "\t", "\r\n"])


@st.composite
def _json_text(draw, value):
    def dump(v):
        if isinstance(v, _Pairs):
            return "{" + ",".join(f"{draw(_space)}{json.dumps(k)}{draw(_space)}:{draw(_space)}{dump(x)}" for k, x in v) + "}"
        if isinstance(v, list):
            return "[" + ",".join(dump(x) for x in v) + "]"
        return json.dumps(v)

    return dump(draw(value)) + draw(st.sampled_from(["", "\n", " \r\n", " x", "\x0b"]))


def _read(read, *args):
    try:
        return read(*args)
    except ImportRefused as exc:
        return "refused", exc.description


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_json_text(_objects(_values)), _json_text(_values)))
def test_quick_json_entry_is_the_careful_one(text):
    assert _read(readers._quick_entry, "f", text, 7) == _read(
        lambda: readers.entry_from_object("f", readers._loads("f", text, 7), 7))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_json_text(_objects(_scalars)), _json_text(_values)))
def test_quick_metadata_cell_is_the_careful_one(text):
    careful = _read(lambda: readers._metadata("f", 7, readers._loads("f", text, 7)))
    try:
        quick = readers._quick_metadata("f", text, 7)
    except (ValueError, ImportRefused):
        return  # doubted: the CSV reader reads the row the careful way, which words any refusal
    assert quick == careful
