"""The request side of the Media Server codec: query strings, the line builder, identifier
lists, the metadata codec and the action names."""

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from app.mediaserver_codec import (
    Params, aci_line, aci_url, format_identifier_list, format_metadata, parse_metadata, parse_query_string, split_identifier_list,
)
from app.domain import HashlensError
from app.mediaserver_codec import names

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


def test_identifier_list_round_trips_a_leading_space_and_quote():
    # The window's own codec once lost this one.
    for items in ([' "x'], [' "x', "a,b"], ['"'], ["\\"], [" "], ['a"b', ' , ']):
        assert split_identifier_list(format_identifier_list(items)) == items


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_any_single_identifier_round_trips(item):
    assert split_identifier_list(format_identifier_list([item])) == [item]


name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(lambda n: n not in ("a", "action"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(names.ACI_ACTIONS), st.dictionaries(name, text, max_size=6))
def test_aci_line_reads_back_through_the_parser(action, params):
    line = aci_line(action, params)
    assert parse_query_string(line) == (action, params)
    assert parse_query_string("/" + line) == (action, params)


def test_aci_line_forms():
    line = aci_line(names.LIST_IMAGE_HASHES, [("database", "My DB"), ("identifier", format_identifier_list(["a,b", "c"]))],
                    imagestatus=True, metadata=False, start=None, maxresults=10)
    # Values percent-encoded; commas and colons stay readable; None left out; Booleans as words.
    assert line == ('action=ListImageHashes&database=My%20DB&identifier=%22a,b%22,c'
                    '&imagestatus=true&metadata=false&maxresults=10')
    assert aci_line(names.REMOVE_IMAGE_HASH, {"identifier": "x&y=z+1/é"}) == \
        "action=RemoveImageHash&identifier=x%26y%3Dz%2B1%2F%C3%A9"
    assert aci_url("http://ms.example:14000/", names.SYNC_IMAGE_HASHES) == "http://ms.example:14000/action=SyncImageHashes"


def test_action_names_match_regardless_of_case():
    assert names.canonical_action("listimagehashes") == names.LIST_IMAGE_HASHES
    assert names.canonical_action("LISTIMAGEHASHDATABASES") == names.LIST_IMAGE_HASH_DATABASES
    assert names.canonical_action("ListImageHash") is None and names.canonical_action(None) is None
    assert names.response_action(names.TRAIN_IMAGE_HASH) == "TRAINIMAGEHASH"
    assert len(set(names.ACI_ACTIONS)) == len(names.ACI_ACTIONS) == 17
