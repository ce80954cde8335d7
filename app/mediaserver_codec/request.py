"""ACI requests: the query string read into an action and typed parameters, and the one
builder of `action=Name&k=v` lines and request URLs.

One parser serves the command line, the window's action log and the ACI, so a value
means the same thing wherever it is typed (reliability P1); one builder writes every
line Hashlens shows or sends, so each reads back through that parser unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

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


# Commas and colons are Media Server's list separators: kept readable, since percent-
# decoding comes before any list is split, so they read back the same (ours).
_LINE_SAFE = ",:"

ParamValue = str | int | bool | None


def aci_line(action: str, params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]] = (),
             **named: ParamValue) -> str:
    """`action=Name&key=value…`, parameters in the order given, every value percent-
    encoded as UTF-8 (RFC 3986 unreserved characters, `,` and `:` kept); a None value is
    left out and a Boolean is written `true`/`false`. `parse_query_string` reads it back."""
    pairs = list(params.items() if isinstance(params, Mapping) else params) + list(named.items())
    parts = [f"action={quote(action, safe='')}"]
    for name, value in pairs:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        parts.append(f"{name}={quote(str(value), safe=_LINE_SAFE)}")
    return "&".join(parts)


def aci_url(base: str, action: str, params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]] = (),
            **named: ParamValue) -> str:
    """The GET URL of a request: `http://host:port/action=Name&…`, the form Media
    Server documents and OpenText's own scripts build (MS)."""
    return base.rstrip("/") + "/" + aci_line(action, params, **named)


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
