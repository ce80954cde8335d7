"""IDOL's JSON form of an <autnresponse> (`responseformat=json`), converted from the XML.

One converter from the one serializer's XML, so the JSON can never say something the
XML does not (ours). The convention is IDOL's (MS): each element becomes an object,
its text under "$" and its attributes under "@name"; an element name that repeats
among its siblings becomes a list (at the place of its first occurrence), a name that
occurs once stays a single object; the root's namespace declaration appears as "@xmlns"."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from defusedxml.ElementTree import fromstring

from app.mediaserver_codec.writer import XMLNS

_NS_PREFIXES = {XMLNS: "autn"}


def _name(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        prefix = _NS_PREFIXES.get(uri)
        return f"{prefix}:{local}" if prefix else local
    return tag


def element_to_json(element: ET.Element) -> dict:
    """One element as IDOL's JSON object."""
    node: dict = {f"@{_name(k)}": v for k, v in element.attrib.items()}
    children = list(element)
    if children:
        for child in children:
            name = _name(child.tag)
            value = element_to_json(child)
            if name in node:
                existing = node[name]
                if isinstance(existing, list):
                    existing.append(value)
                else:
                    node[name] = [existing, value]
            else:
                node[name] = value
    elif element.text:
        node["$"] = element.text
    return node


def xml_to_json(xml_text: str) -> str:
    """The JSON text for a whole <autnresponse> document."""
    root = fromstring(xml_text)
    body = element_to_json(root)
    document = {_name(root.tag): {"@xmlns": {prefix: uri for uri, prefix in _NS_PREFIXES.items()}, **body}}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
