"""The ACI parameter grammar: query strings, identifier lists and the metadata codec."""

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from app.aci.params import (
    Params, format_identifier_list, format_metadata, parse_metadata, parse_query_string, split_identifier_list,
)
from app.domain import HashlensError

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(text.filter(bool), text), max_size=6))
def test_metadata_codec_round_trips(pairs):
    encoded = format_metadata(pairs)
    assert parse_metadata(encoded) == pairs
    assert format_metadata(parse_metadata(encoded)) == encoded


@settings(max_examples=200, deadline=None)
@given(st.lists(text.filter(bool), max_size=8))
def test_identifier_list_round_trips(items):
    assert split_identifier_list(format_identifier_list(items)) == items


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_gives_a_typed_error(raw):
    for parser in (parse_metadata, split_identifier_list):
        try:
            parser(raw)
        except HashlensError as exc:
            assert exc.parameter in ("metadata", "identifier")


def test_media_server_metadata_examples():
    assert parse_metadata("importance:high,colour:red") == [("importance", "high"), ("colour", "red")]
    assert parse_metadata('"a:b":"c,d"') == [("a:b", "c,d")]
    assert parse_metadata('k:"say \\"hi\\""') == [("k", 'say "hi"')]
    assert parse_metadata("") == []
    with pytest.raises(HashlensError, match="key:value"):
        parse_metadata("lonely")
    with pytest.raises(HashlensError, match="never closed"):
        parse_metadata('"open:x')


def test_identifier_lists_keep_spaces_and_drop_empty_items():
    assert split_identifier_list("a, b ,,c") == ["a", " b ", "c"]
    assert split_identifier_list('"x,y",z') == ["x,y", "z"]


def test_query_string_forms():
    assert parse_query_string("/action=A&x=1") == ("A", {"x": "1"})
    assert parse_query_string("?a=A&X=%2B+1") == ("A", {"x": "++1"})
    assert parse_query_string("a=A&&=3&y") == ("A", {"y": ""})
    with pytest.raises(HashlensError, match="twice"):
        parse_query_string("a=A&x=1&X=2")
    assert parse_query_string("a=A&x=1&x=1") == ("A", {"x": "1"})


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("Yes", True), ("on", True), ("y", True), ("1", True),
    ("false", False), ("No", False), ("OFF", False), ("n", False), ("0", False), (None, False), ("", False),
])
def test_booleans(value, expected):
    assert Params({} if value is None else {"b": value}).boolean("b", False) is expected


@pytest.mark.parametrize("value", ["2", "truthy", "t", " ", "-1"])
def test_non_booleans_are_errors(value):
    with pytest.raises(HashlensError, match="not a Boolean"):
        Params({"b": value}).boolean("b", False)
