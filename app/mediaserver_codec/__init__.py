"""Media Server's wire language in one place: action names, requests, lists, responses.

Domain-level: this package imports only `app.domain`, so the ACI dispatcher, exports,
the command line, the window and a Media Server client can all use it without
depending on one another.

- `names`: the action names (the only place they are spelled).
- `request`: the query-string grammar, typed parameters, and the one `aci_line`/`aci_url` builder.
- `lists`: identifier lists and TrainImageHash's `key:value` metadata, quoted and split.
- `writer`: the streaming <autnresponse> writer.
- `reader`: the streaming, defused <autnresponse> reader."""

from app.mediaserver_codec.lists import (
    format_identifier_list, format_metadata, parse_metadata, quote_item, split_identifier_list,
)
from app.mediaserver_codec.reader import (
    DataValue, ErrorDetail, ImageStatus, ListedEntry, Response, ResponseHead, ResponseUnreadable, iter_response,
    read_response,
)
from app.mediaserver_codec.request import Params, aci_line, aci_url, parse_query_string, unknown_action

__all__ = [
    "DataValue", "ErrorDetail", "ImageStatus", "ListedEntry", "Params", "Response", "ResponseHead",
    "ResponseUnreadable", "aci_line", "aci_url", "format_identifier_list", "format_metadata", "iter_response",
    "parse_metadata", "parse_query_string", "quote_item", "read_response", "split_identifier_list",
    "unknown_action",
]
