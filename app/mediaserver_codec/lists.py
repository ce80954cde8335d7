"""Identifier lists and TrainImageHash's metadata: the quoting codec, splitters and formatters.

Each formatter is the exact inverse of its splitter, so any text survives a round trip
(property-tested), whether typed in the window, on the command line or in an ACI request."""

from __future__ import annotations

from app.domain import param_invalid


def split_identifier_list(text: str) -> list[str]:
    """Split an `identifier` list at commas. An item in double quotes may hold commas,
    with `\\"` for a quote and `\\\\` for a backslash (ours, mirroring TrainImageHash's
    metadata quoting). Surrounding spaces of unquoted items are kept: they are data."""
    items = _split_quoted(text, ",", "identifier")
    return [item for item in items if item != ""]


def _split_quoted(text: str, sep: str, name: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    quoted_item = False
    while i < n:
        c = text[i]
        if c == '"' and not "".join(current).strip():
            # A quoted item: read to the closing quote, honouring backslash escapes.
            current = []
            i += 1
            while True:
                if i >= n:
                    raise param_invalid(name, f"a quote opened in '{text}' is never closed.")
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                    current.append(text[i + 1])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                current.append(c)
                i += 1
            quoted_item = True
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] != sep:
                raise param_invalid(name, f"unexpected text after a quoted item in '{text}'.")
            continue
        if c == sep:
            items.append("".join(current))
            current = []
            quoted_item = False
        else:
            if quoted_item:
                raise param_invalid(name, f"unexpected text after a quoted item in '{text}'.")
            current.append(c)
        i += 1
    items.append("".join(current))
    return items


_LIST_SPECIALS = ',"\\'
_META_SPECIALS = ':,"\\'


def quote_item(text: str, specials: str = _LIST_SPECIALS) -> str:
    """Quote an item if it is empty or holds a separator, a quote or a backslash; the
    inverse of the splitters here."""
    if not text or any(c in text for c in specials):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def format_identifier_list(identifiers) -> str:
    return ",".join(quote_item(i) for i in identifiers)


def parse_metadata(text: str) -> list[tuple[str, str]]:
    """TrainImageHash's `metadata`: `key:value,key:value`; a key or value holding `,` or
    `:` is written in double quotes, with `\\"` and `\\\\` inside (MS grammar)."""
    pairs = []
    for item in _split_metadata_items(text):
        if item == ("", None):
            continue
        key, value = item
        if value is None:
            raise param_invalid("metadata", f"'{key}' is not key:value.")
        pairs.append((key, value))
    return pairs


def _split_metadata_items(text: str):
    """Yield (key, value) pairs, reading quoted segments exactly."""
    i, n = 0, len(text)
    while i <= n:
        key, i = _read_segment(text, i, ":,")
        if i < n and text[i] == ":":
            value, i = _read_segment(text, i + 1, ",")
        else:
            value = None
        yield (key, value) if (key or value is not None) else ("", None)
        if i >= n:
            return
        if text[i] != ",":
            raise param_invalid("metadata", f"unexpected '{text[i]}' at position {i + 1} in '{text}'.")
        i += 1


def _read_segment(text: str, i: int, stops: str) -> tuple[str, int]:
    n = len(text)
    if i < n and text[i] == '"':
        out = []
        i += 1
        while True:
            if i >= n:
                raise param_invalid("metadata", f"a quote opened in '{text}' is never closed.")
            c = text[i]
            if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                out.append(c)
                i += 1
        if i < n and text[i] not in stops:
            raise param_invalid("metadata", f"unexpected text after a quoted part in '{text}'.")
        return "".join(out), i
    start = i
    while i < n and text[i] not in stops:
        i += 1
    return text[start:i], i


def format_metadata(pairs) -> str:
    """The canonical `metadata` text for pairs; `parse_metadata` reverses it exactly."""
    return ",".join(f"{quote_item(k, _META_SPECIALS)}:{quote_item(v, _META_SPECIALS)}" for k, v in pairs)
