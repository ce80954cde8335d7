"""Media Server's wire language in one place: action names, requests, lists, responses.

Domain-level: this package imports only `app.domain`, so the ACI dispatcher, exports,
the command line, the window and a Media Server client can all use it without
depending on one another.

- `names`: the action names (the only place they are spelled).
- `request`: the query-string grammar, typed parameters, and the one `aci_line`/`aci_url` builder.
- `lists`: identifier lists and TrainImageHash's `key:value` metadata, quoted and split.
- `writer`: the streaming <autnresponse> writer.
- `reader`: the streaming, defused <autnresponse> reader."""

# Every name below is loaded from its module on first use (PEP 562), so importing one
# module of this package (`names`, say) loads only that one: the reader alone (defusedxml and
# ElementTree) is about 30 ms of a command's start-up (issue 15).
_HOMES = {
    "format_identifier_list": "lists", "format_metadata": "lists", "parse_metadata": "lists",
    "quote_item": "lists", "split_identifier_list": "lists",
    "Params": "request", "aci_line": "request", "aci_url": "request", "parse_query_string": "request",
    "unknown_action": "request",
    "DataValue": "reader", "ErrorDetail": "reader", "ImageStatus": "reader", "ListedEntry": "reader",
    "Response": "reader", "ResponseHead": "reader", "ResponseUnreadable": "reader", "iter_response": "reader",
    "read_response": "reader",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "DataValue", "ErrorDetail", "ImageStatus", "ListedEntry", "Params", "Response", "ResponseHead",
    "ResponseUnreadable", "aci_line", "aci_url", "format_identifier_list", "format_metadata", "iter_response",
    "parse_metadata", "parse_query_string", "quote_item", "read_response", "split_identifier_list",
    "unknown_action",
]
