"""The ACI dispatcher: each Media Server action mapped to the one Python implementation
in `app.services.actions` (or `app.exports` for whole-database files), with its
parameters read and its result written by `app.mediaserver_codec`."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app.domain import Failure, HashlensError, ListingQuery, param_invalid, param_missing
from app.mediaserver_codec import names, writer as response
from app.mediaserver_codec.lists import parse_metadata, split_identifier_list
from app.mediaserver_codec.request import Params, parse_query_string, requested_action, unknown_action
from app.services import actions
from app.source import Source


@dataclass
class AciResponse:
    """An answer: `ok` says SUCCESS or ERROR; `chunks` yields the XML text."""

    action: str
    ok: bool
    chunks: Iterator[str]
    error: HashlensError | None = None

    def text(self) -> str:
        return "".join(self.chunks)


def _list_image_hashes(store: Source, p: Params) -> Iterator[str]:
    query = ListingQuery(
        database=p.text("database"),
        identifiers=_identifiers(p),
        start=p.positive_int("start", 1),
        maxresults=p.positive_int("maxresults", None),
        imagestatus=p.boolean("imagestatus", False),
        metadata=p.boolean("metadata", False),
    ).validated()
    # No separate look-up of the database: `answer` renders the first batch at once, and
    # every way of reading a listing refuses an unknown database there (one statement
    # fewer per page).
    return _render_listing(store, query)


# A window of at most this many entries is read as one page (one statement on SQLite and
# PostgreSQL: the position mark, the rows and the count in one snapshot); a longer or
# unbounded one streams in keyset batches.
PAGE_AT_ONCE = 2000


def _render_listing(store: Source, query: ListingQuery) -> Iterator[str]:
    if query.maxresults is not None and query.maxresults <= PAGE_AT_ONCE:
        if not query.imagestatus and not query.metadata:
            yield response.identifier_listing(store.page_identifiers(query))
            return
        yield from response.listing([store.list_page(query).rows], imagestatus=query.imagestatus,
                                    metadata=query.metadata)
        return
    batches = store.iter_listing(query)
    try:
        yield from response.listing(batches, imagestatus=query.imagestatus, metadata=query.metadata)
    finally:
        batches.close()  # ends the read snapshot even if the reader stops early


def _identifiers(p: Params) -> tuple[str, ...] | None:
    raw = p.raw("identifier")
    if raw is None or raw == "":
        return None
    return tuple(split_identifier_list(raw))


def _prepare_train(store: Source, p: Params) -> "Job":
    database = p.text("database")
    path, data = p.path("imagepath"), p.raw("imagedata")
    if not path and not data:
        raise HashlensError(
            Failure.PARAM_MISSING, "One of the parameters 'imagepath' or 'imagedata' must be supplied.",
            parameter="imagepath",
        )
    if path and data:
        raise param_invalid("imagepath", "give imagepath or imagedata, not both.")
    decoded = None
    if isinstance(data, bytes):
        decoded = data  # an uploaded file part (multipart/form-data), not base64
    elif data:
        try:
            decoded = base64.b64decode(re.sub(r"\s+", "", data), validate=True)
        except (binascii.Error, ValueError):
            raise param_invalid("imagedata", "the value is not base64-encoded image data.") from None
    metadata = parse_metadata(p.raw("metadata") or "")
    identifier, label = p.optional_text("identifier"), p.optional_text("imagelabel")
    store.database_id(database)

    def train(store: Source, cancelled: Callable[[], bool]) -> list[str]:
        if cancelled():
            raise HashlensError(Failure.CANCELLED, "The training was stopped before it began; nothing was added.")
        new = actions.train_image(store, database, data=decoded, path=path or None,
                                  identifier=identifier, label=label, metadata=metadata)
        return [response.element("identifier", new)]

    return train


def _simple(fn: Callable[..., object], *names: str) -> Callable[[Source, Params], None]:
    """A handler for an action whose parameters are all required names."""

    def handler(store: Source, p: Params) -> None:
        fn(store, *(p.text(n) if n not in _OPTIONAL_EMPTY else _allow_empty(p, n) for n in names))

    return handler


_OPTIONAL_EMPTY = {"value", "newvalue"}  # a metadata value may be empty (ours)


def _allow_empty(p: Params, name: str) -> str:
    value = p.raw(name)
    if value is None:
        raise param_missing(name)
    return value


def _list_databases(store: Source, p: Params) -> str:
    lines = []
    for info in actions.list_databases(store):
        lines += ["<database>", f"  {response.element('name', info.name)}", "</database>"]
    return response.success(names.LIST_IMAGE_HASH_DATABASES, lines)


def _sync(store: Source, p: Params) -> None:
    actions.sync_image_hashes(store, p.optional_text("database"))


def _prepare_export(store: Source, p: Params) -> "Job":
    database, dbpath = p.text("database"), _dbpath(p)
    includeimagedata = p.boolean("includeimagedata", True)
    includemetadata = p.boolean("includemetadata", True)
    store.database_id(database)

    def export(store: Source, cancelled: Callable[[], bool]) -> list[str]:
        from app.exports.database_file import export_database  # only for this action: a heavy import

        export_database(store, database, dbpath, includeimagedata=includeimagedata,
                        includemetadata=includemetadata, cancelled=cancelled)
        return []

    return export


def _prepare_import(store: Source, p: Params) -> "Job":
    dbpath, database = _dbpath(p), p.optional_text("database")

    def import_(store: Source, cancelled: Callable[[], bool]) -> list[str]:
        from app.exports.database_file import import_database

        import_database(store, dbpath, database=database, cancelled=cancelled)
        return []

    return import_


def _dbpath(p: Params) -> str:
    path = p.path("dbpath")
    if path is None:
        raise param_missing("dbpath")
    return path


# A queued action's work: run against a store, checking `cancelled` between steps; it
# returns the pre-escaped lines of its result. Preparing one reads and checks every
# parameter first, so that a request error is answered at once (MS asynchronous actions).
Job = Callable[[Source, Callable[[], bool]], list[str]]

# The actions Media Server runs asynchronously; `hashlens serve` queues them, while
# `hashlens aci` runs them at once (ours).
QUEUED: dict[str, Callable[[Source, Params], Job]] = {
    names.TRAIN_IMAGE_HASH: _prepare_train,
    names.EXPORT_IMAGE_HASH_DATABASE: _prepare_export,
    names.IMPORT_IMAGE_HASH_DATABASE: _prepare_import,
}


def _at_once(prepare: Callable[[Source, Params], Job]) -> Callable[[Source, Params], list[str]]:
    def handler(store: Source, p: Params) -> list[str]:
        return prepare(store, p)(store, lambda: False)

    return handler


# The handler of each action, by its canonical name (`names` spells them, MS).
HANDLERS: dict[str, Callable] = {
    names.LIST_IMAGE_HASHES: _list_image_hashes,
    names.TRAIN_IMAGE_HASH: _at_once(_prepare_train),
    names.REMOVE_IMAGE_HASH: _simple(actions.remove_image_hash, "database", "identifier"),
    names.NULL_IMAGE_HASH_IMAGE_DATA: _simple(actions.null_image_data, "database", "identifier"),
    names.RENAME_IMAGE_HASH: _simple(actions.rename_image_hash, "database", "identifier", "newidentifier"),
    names.MOVE_IMAGE_HASH: _simple(actions.move_image_hash, "database", "identifier", "newdatabase"),
    names.RELABEL_IMAGE_HASH_IMAGE:
        _simple(actions.relabel_image, "database", "identifier", "imagelabel", "newimagelabel"),
    names.ADD_IMAGE_HASH_METADATA: _simple(actions.add_metadata, "database", "identifier", "key", "value"),
    names.UPDATE_IMAGE_HASH_METADATA:
        _simple(actions.update_metadata, "database", "identifier", "key", "newvalue"),
    names.REMOVE_IMAGE_HASH_METADATA: _simple(actions.remove_metadata, "database", "identifier", "key"),
    names.SYNC_IMAGE_HASHES: _sync,
    names.EXPORT_IMAGE_HASH_DATABASE: _at_once(_prepare_export),
    names.IMPORT_IMAGE_HASH_DATABASE: _at_once(_prepare_import),
    names.CREATE_IMAGE_HASH_DATABASE: _simple(actions.create_database, "database"),
    names.LIST_IMAGE_HASH_DATABASES: _list_databases,
    names.RENAME_IMAGE_HASH_DATABASE: _simple(actions.rename_database, "database", "newdatabase"),
    names.REMOVE_IMAGE_HASH_DATABASE: _simple(actions.remove_database, "database"),
}


def handle(store: Source | None, request: str, *, store_error: HashlensError | None = None) -> AciResponse:
    """Answer one ACI request. Every failure becomes an ERROR response; nothing raises."""
    # A known action is named in the response even when its parameters are refused.
    action_name = names.canonical_action(requested_action(request)) or "UNKNOWN"
    try:
        action, values = parse_query_string(request)
    except HashlensError as exc:
        return error_response(action_name, exc)
    return answer(store, action, values, store_error=store_error)


def canonical_action(action: str | None) -> str:
    """The action's Media Server spelling; raises the unknown-action error."""
    canonical = names.canonical_action(action)
    if canonical is None:
        raise unknown_action(action)
    return canonical


def prepare_queued(store: Source, action: str, values: dict[str, str | bytes]) -> Job:
    """Check a queued action's parameters now and return its work (for `hashlens serve`)."""
    return QUEUED[action](store, Params(values))


def error_response(action: str, exc: HashlensError) -> AciResponse:
    return AciResponse(action, False, iter([response.error(action, exc)]), exc)


def answer(store: Source | None, action: str | None, values: dict[str, str | bytes], *,
           store_error: HashlensError | None = None) -> AciResponse:
    """Answer one parsed ACI request: the action name and its parameters by lower-case name."""
    action_name = action or "UNKNOWN"
    try:
        action_name = canonical_action(action)
        handler = HANDLERS[action_name]
        if store is None:
            raise store_error or HashlensError(Failure.STORE_UNAVAILABLE, "No store is open.")
        result = handler(store, Params(values))
    except HashlensError as exc:
        return error_response(action_name, exc)
    if result is None:
        return AciResponse(action_name, True, iter([response.success(action_name)]))
    if isinstance(result, list):
        return AciResponse(action_name, True, iter([response.success(action_name, result)]))
    if isinstance(result, str):
        return AciResponse(action_name, True, iter([result]))
    # Render the first batch now, so that a failure there is still an ERROR response. A
    # failure in a later batch can only end the stream: the caller reports it.
    try:
        first = next(result, "")
    except HashlensError as exc:
        result.close()
        return error_response(action_name, exc)
    return AciResponse(action_name, True, _prepend(first, result))


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
