"""IDOL's JSON form: converted from the XML, it says exactly what the XML says."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from app.mediaserver_codec import writer as response
from app.serve.json_form import xml_to_json
from tests.serve.client import canonical, json_to_element

names = st.sampled_from(["entry", "identifier", "item", "key", "value", "token", "status", "a"])
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"), max_size=12).filter(
    lambda t: response.first_bad_xml_char(t) is None)


def _write(tree, depth=0) -> str:
    """A document in the serializer's way: `response.element` for leaves, indented lines."""
    name, content = tree
    if isinstance(content, str):
        return response.element(name, content)
    inner = "".join(f"\n{'  ' * (depth + 1)}{_write(child, depth + 1)}" for child in content)
    return f"<{name}>{inner}\n{'  ' * depth}</{name}>" if content else f"<{name}/>"


trees = st.recursive(st.tuples(names, texts), lambda kids: st.tuples(names, st.lists(kids, max_size=4)), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(trees, max_size=5))
def test_json_says_what_the_xml_says(children):
    xml_text = response.success("ListImageHashes", [_write(c) for c in children])
    document = json.loads(xml_to_json(xml_text))
    (name, body), = document.items()
    assert name == "autnresponse"
    assert body["@xmlns"] == {"autn": response.XMLNS}
    assert canonical(json_to_element(name, body)) == canonical(_grouped(ET.fromstring(xml_text)))


def _grouped(element: ET.Element) -> ET.Element:
    """The one thing the JSON form cannot keep: siblings of one name come together, at
    the place of the first of them (IDOL's JSON form does the same)."""
    children = list(element)
    first = {}
    for i, child in enumerate(children):
        first.setdefault(child.tag, i)
    for child in children:
        element.remove(child)
    for child in sorted(children, key=lambda c: first[c.tag]):
        element.append(_grouped(child))
    return element


def test_repeated_elements_are_lists_and_single_ones_objects():
    xml_text = response.success("X", ["<entry><identifier>a</identifier></entry>",
                                      "<entry><identifier>b</identifier></entry>", "<one>1</one>", "<empty/>"])
    data = json.loads(xml_to_json(xml_text))["autnresponse"]
    assert data["action"] == {"$": "X"}
    assert data["responsedata"]["entry"] == [{"identifier": {"$": "a"}}, {"identifier": {"$": "b"}}]
    assert data["responsedata"]["one"] == {"$": "1"}
    assert data["responsedata"]["empty"] == {}


def test_attributes_and_awkward_text():
    data = json.loads(xml_to_json('<autnresponse xmlns:autn="http://schemas.autonomy.com/aci/">'
                                  '<v n="1&amp;2">a&lt;b&#13;\n"é</v></autnresponse>'))
    assert data["autnresponse"]["v"] == {"@n": "1&2", "$": 'a<b\r\n"é'}
