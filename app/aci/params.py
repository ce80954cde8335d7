"""ACI requests: the query string, typed parameters, identifier lists and the metadata codec.

One parser serves the command line, the window's action log and the ACI, so a value
means the same thing wherever it is typed (reliability P1)."""

from __future__ import annotations

import os
from urllib.parse import unquote

from app.domain import Failure, HashlensError, check_text, param_invalid, param_missing, whole_number

_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0"}


def parse_query_string(text: str) -> tuple[str | None, dict[str, str]]:
    """Split `action=X&name=value…` into the action and its parameters.

    Names match regardless of case (MS); `a=` is short for `action=` (MS). Values are
    percent-decoded as UTF-8; `+` stays a plus sign, because base64 `imagedata` holds
    pluses (ours). A parameter given twice with different values is refused rather than
    one silently winning (ours)."""
    params: dict[str, str] = {}
    for name, raw in _named_parts(text):
        try:
            value = unquote(raw, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise param_invalid(name, "the percent-encoded value is not valid UTF-8.") from None
        if name in params and params[name] != value:
            raise param_invalid(name, "the parameter is given twice with different values.")
        params[name] = value
    return params.pop("action", None), params


def requested_action(text: str) -> str | None:
    """The action a request names, read leniently (no decoding errors, no checks), so that
    an ERROR response about a bad parameter still names the action that was asked for."""
    for name, raw in _named_parts(text):
        if name == "action":
            return unquote(raw, encoding="utf-8", errors="replace")
    return None


def _named_parts(text: str):
    """(lower-case name, raw value) for each `name=value` of a query string; `a` is `action`."""
    text = text.strip().removeprefix("/").removeprefix("?")
    for part in text.split("&"):
        name, _, raw = part.partition("=")
        name = name.strip().lower()
        if name:
            yield ("action" if name == "a" else name), raw


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


class Params:
    """Typed access to one request's parameters, each error naming the parameter."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if value is None or value == "":
            raise param_missing(name)
        return check_text(name, value)

    def optional_text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        return check_text(name, value)

    def raw(self, name: str) -> str | None:
        return self.values.get(name)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise param_invalid(name, f"'{value}' is not a Boolean; use true or false (also yes/no, on/off, y/n, 1/0).")

    def positive_int(self, name: str, default: int | None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        return whole_number(name, value)

    def path(self, name: str) -> str | None:
        """A file path: refused when it holds NUL or a character the file system's
        encoding cannot carry (a lone surrogate), which no file name can."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if "\0" in value:
            raise param_invalid(name, f"the path holds a NUL character at position {value.index(chr(0)) + 1}, "
                                      "which no file name can.")
        try:
            os.fsencode(value)
        except UnicodeEncodeError as exc:
            raise param_invalid(name, f"character U+{ord(value[exc.start]):04X} at position {exc.start + 1} "
                                      "cannot be part of a file name.") from None
        return value


def unknown_action(action: str | None) -> HashlensError:
    if not action:
        return HashlensError(Failure.PARAM_MISSING, "The required parameter 'action' was not supplied.",
                             parameter="action")
    return HashlensError(Failure.NOT_IMPLEMENTED, f"The action '{action}' is not implemented by Hashlens.",
                         parameter="action")
