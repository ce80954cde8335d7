"""ACI requests: the query string read into an action and typed parameters, and the one
builder of `action=Name&k=v` lines and request URLs.

One parser serves the command line, the window's action log and the ACI, so a value
means the same thing wherever it is typed (reliability P1); one builder writes every
line Hashlens shows or sends, so each reads back through that parser unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

from app.domain import Failure, HashlensError, check_text, param_invalid, param_missing

_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0"}
MAX_INT = 2**63 - 1


def parse_query_string(text: str) -> tuple[str | None, dict[str, str]]:
    """Split `action=X&name=value…` into the action and its parameters.

    Names match regardless of case (MS); `a=` is short for `action=` (MS). Values are
    percent-decoded as UTF-8; `+` stays a plus sign, because base64 `imagedata` holds
    pluses (ours). A parameter given twice with different values is refused rather than
    one silently winning (ours)."""
    text = text.strip()
    if text.startswith("/"):
        text = text[1:]
    if text.startswith("?"):
        text = text[1:]
    params: dict[str, str] = {}
    for part in text.split("&"):
        if not part.strip():
            continue
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        try:
            value = unquote(raw, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise param_invalid(name, "the percent-encoded value is not valid UTF-8.") from None
        if name == "a":
            name = "action"
        if name in params and params[name] != value:
            raise param_invalid(name, "the parameter is given twice with different values.")
        params[name] = value
    return params.pop("action", None), params


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
        text = value.strip()
        if not text.isdigit():
            raise param_invalid(name, f"'{value}' is not a whole number of 1 or more.")
        number = int(text)
        if number < 1 or number > MAX_INT:
            raise param_invalid(name, f"'{value}' is out of range; use a whole number from 1 to {MAX_INT}.")
        return number


def unknown_action(action: str | None) -> HashlensError:
    if not action:
        return HashlensError(Failure.PARAM_MISSING, "The required parameter 'action' was not supplied.",
                             parameter="action")
    return HashlensError(Failure.NOT_IMPLEMENTED, f"The action '{action}' is not implemented by Hashlens.",
                         parameter="action")
