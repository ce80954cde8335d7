"""The stand-in Media Server: documented ListImageHashes, write and queue behaviour, plus fault modes.

It answers only what Media Server's documentation states (see shared/spec/mediaserver-client.md);
where the documentation is silent it follows Hashlens's own decisions in shared/spec/actions.md
and says so. Tests choose the data, switch on faults and read the log of requests and of the
writes it applied. The XML is written by Hashlens's one writer, `app.mediaserver_codec.writer`.
"""

from __future__ import annotations

import collections
import email.parser
import functools
import email.policy
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from app.mediaserver_codec import names
from app.mediaserver_codec import writer as response
from app.mediaserver_codec.lists import parse_metadata, split_identifier_list
from app.mediaserver_codec.request import Params, parse_query_string
from app.domain import EntryRow, Failure, HashlensError, param_invalid, param_missing

# Media Server's default MaxFileUploadSize (MS).
MAX_UPLOAD_BYTES = 10_000_000
# How much of the body a "close_mid" fault sends before it hangs up.
_HALF = 0.5
_CHUNK = 64 * 1024

# The two spellings of the entry counters Media Server has used (MS).
COUNTER_SPELLINGS = {
    "numtrained": {},
    "numtrainedimages": {
        "<numtrained>1</numtrained>": "<numtrainedimages>1</numtrainedimages>",
        "<numfailed>0</numfailed>": "<numfailedimages>0</numfailedimages>",
        "<numuntrained>0</numuntrained>": "<numuntrainedimages>0</numuntrainedimages>",
    },
}

FAULT_KINDS = {
    "error",  # an ERROR autnresponse instead of the answer
    "close",  # the connection is closed without any answer
    "close_mid",  # headers and part of the body, then the connection is closed
    "stall",  # no answer until the test calls release(); the client's timeout fires first
    "malformed",  # a body that is not well-formed XML
    "truncated",  # a complete HTTP answer whose XML stops half-way
    "not_autnresponse",  # well-formed XML, but not an <autnresponse>
    "http_status",  # an HTTP error status with an HTML body, as a proxy sends
    "drop_after_write",  # a write is applied, then the connection is closed unanswered
    "mutate",  # the test's callable changes the data before the request is answered
}

# Faults that strike before the server acts on the request (a lost request, a proxy that
# never forwarded it, a refusal); the others strike after a write has been applied.
_BEFORE_ACTING = {"close", "http_status", "error", "stall"}


@dataclass
class HashEntry:
    """One image hash as the stand-in holds it."""

    identifier: str
    label: str
    has_image_data: bool = True
    metadata: list[tuple[str, str]] = field(default_factory=list)
    image: bytes | None = None


class SyntheticDatabase(Sequence):
    """A large read-only database whose entries are made on demand, so a test can serve a
    50 MB page or a million entries without holding them."""

    def __init__(self, size: int, metadata_items: int = 2, value_bytes: int = 24, prefix: str = "id",
                 variant: int = 0):
        self.size = size
        self.metadata_items = metadata_items
        self.filler = "v" * value_bytes
        self.prefix = prefix
        # A variant other than 0 relabels every 1,000th entry and changes a metadata value
        # of every 5,000th, so two pulls of one server have something to compare.
        self.variant = variant

    def __len__(self) -> int:
        return self.size

    def entry(self, index: int) -> HashEntry:
        changed = self.variant and index % 1000 == 0
        metadata = [(f"key{k}", f"{self.filler}{index}") for k in range(self.metadata_items)]
        if self.variant and index % 5000 == 1 and metadata:
            metadata[0] = (metadata[0][0], f"variant {self.variant}")
        return HashEntry(
            identifier=f"{self.prefix}{index:09d}",
            label=f"label-{index}" + (f" v{self.variant}" if changed else ""),
            has_image_data=index % 3 != 0,
            metadata=metadata,
        )

    def entries_xml(self, first: int, stop: int, imagestatus: bool, metadata: bool, batch: int = 500) -> Iterator[str]:
        """Entries first..stop-1 (0-based) written exactly as `writer.entry_xml` writes
        them, straight from the numbers: the benchmark's server must not be what it
        measures (a page of 10,000 in a few milliseconds instead of about 100)."""
        prefix, filler = response.xml_text(self.prefix), response.xml_text(self.filler)
        keys = [f"key{k}" for k in range(self.metadata_items)]
        variant = self.variant
        counters = ("</identifier>\n      <numimages>1</numimages>\n      <numtrained>1</numtrained>\n"
                    "      <numfailed>0</numfailed>\n      <numuntrained>0</numuntrained>\n")
        for low in range(first, stop, batch):
            parts = []
            add = parts.append
            for i in range(low, min(stop, low + batch)):
                add(f"    <entry>\n      <identifier>{prefix}{i:09d}{counters}")
                if imagestatus:
                    label = f"label-{i} v{variant}" if variant and i % 1000 == 0 else f"label-{i}"
                    add(f"      <images>\n        <image>\n          <label>{label}</label>\n"
                        f"          <status>trained</status>\n          <hasimagedata>"
                        f"{'false' if i % 3 == 0 else 'true'}</hasimagedata>\n        </image>\n      </images>\n")
                if metadata:
                    if keys:
                        add("      <metadata>\n")
                        for k, key in enumerate(keys):
                            value = f"variant {variant}" if k == 0 and variant and i % 5000 == 1 else f"{filler}{i}"
                            add(f"        <item>\n          <key>{key}</key>\n          <value>{value}</value>\n"
                                "        </item>\n")
                        add("      </metadata>\n")
                    else:
                        add("      <metadata/>\n")
                add("    </entry>\n")
            yield "".join(parts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.entry(i) for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.entry(index)

    def __iter__(self) -> Iterator[HashEntry]:
        return (self.entry(i) for i in range(self.size))


class IndexedDatabase(list):
    """A writable database that only grows (training), with an index by identifier, so
    a benchmark's 20,000 trainings and lookups cost the stand-in O(1) each. Any other
    change rebuilds the index."""

    def __init__(self, entries=()):
        super().__init__(entries)
        self._rebuild()

    def _rebuild(self) -> None:
        self.index = {e.identifier: i for i, e in enumerate(self)}

    def append(self, entry: HashEntry) -> None:
        self.index[entry.identifier] = len(self)
        super().append(entry)

    def _changed(name):
        def method(self, *args, **kwargs):
            result = getattr(list, name)(self, *args, **kwargs)
            self._rebuild()
            return result
        return method

    for _name in ("__setitem__", "__delitem__", "insert", "pop", "remove", "extend", "clear", "sort", "reverse"):
        locals()[_name] = _changed(_name)
    del _name, _changed


@dataclass
class Fault:
    """A fault on the `at`-th request (counted from when the fault was added) whose action
    matches `action` (any action when None), for `times` requests in a row (None: for ever)."""

    kind: str
    at: int = 1
    action: str | None = None
    times: int | None = 1
    status: int = 502
    mutate: Callable[[Standin], None] | None = None
    seen: int = 0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.kind == "mutate" and self.mutate is None:
            raise ValueError("a 'mutate' fault needs a mutate callable")

    def fires(self, action: str) -> bool:
        if self.action is not None and self.action.lower() != action.lower():
            return False
        self.seen += 1
        return self.seen >= self.at and (self.times is None or self.seen < self.at + self.times)


@dataclass
class Request:
    """One request as received: the method, the action and its parameters (image bytes left out)."""

    method: str
    action: str
    params: dict[str, str]


@dataclass
class QueuedAction:
    """An asynchronous TrainImageHash waiting in, or done with, the stand-in's queue."""

    token: str
    params: dict[str, str]
    image: bytes | None
    status: str = "Queued"
    error: str | None = None
    identifier: str | None = None


class _Dropped(Exception):
    """The fault says: close the connection without an answer."""


class Standin:
    """A stand-in Media Server on a free loopback port. Use as a context manager or call
    start() and stop(); `url` is its base address."""

    def __init__(self, databases: dict[str, Sequence[HashEntry]] | None = None, *,
                 counters: str = "numtrained", tls: ssl.SSLContext | None = None, port: int = 0):
        if counters not in COUNTER_SPELLINGS:
            raise ValueError(f"counters must be one of {sorted(COUNTER_SPELLINGS)}")
        self.databases: dict[str, Sequence[HashEntry]] = dict(databases or {})
        self.counters = counters
        self.tls = tls
        self._port = port  # 0: any free port; a restart passes the old one to keep the address
        self.requests: list[Request] = []
        self.bytes_sent = 0  # answer bodies, for tests that need a page of a given size
        self.applied: list[tuple[str, dict[str, str]]] = []
        self.faults: list[Fault] = []
        self.queue: dict[str, QueuedAction] = {}
        self._waiting: collections.deque[str] = collections.deque()  # tokens in the order queued
        self.lock = threading.RLock()
        self._stall_released = threading.Event()
        self._stalled = threading.Event()
        self._queue_gate = threading.Event()
        self._queue_gate.set()
        self._queue_wakeup = threading.Condition(self.lock)
        self._stopping = False
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Standin:
        handler = type("StandinHandler", (_Handler,), {"standin": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.05)  # prompt stop()
        for target in (serve, self._run_queue):
            thread = threading.Thread(target=target, name="standin", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        with self.lock:
            self._stopping = True
            self._queue_wakeup.notify_all()
        self._stall_released.set()
        self._queue_gate.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> Standin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- what tests call -----------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            if fault.kind == "stall":
                self._stall_released.clear()
                self._stalled.clear()
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def wait_stalled(self, timeout: float = 30) -> bool:
        """Wait until a request is held by a "stall" fault."""
        return self._stalled.wait(timeout)

    def release(self) -> None:
        """Let every stalled request go on."""
        self._stall_released.set()

    def hold_queue(self) -> None:
        """Keep queued TrainImageHash actions queued until run_queue()."""
        self._queue_gate.clear()

    def run_queue(self) -> None:
        self._queue_gate.set()
        with self.lock:
            self._queue_wakeup.notify_all()

    def entries(self, database: str) -> list[HashEntry]:
        return list(self.databases[database])

    def actions_received(self) -> list[str]:
        return [r.action.lower() for r in self.requests]

    # -- answering ----------------------------------------------------------------------------

    def answer(self, method: str, action: str | None, params: dict[str, str],
               image: bytes | None) -> tuple[Fault | None, Callable[[], Iterator[str]]]:
        """Record the request, pick the fault that fires, and return the body maker."""
        with self.lock:
            self.requests.append(Request(method, action or "", {k: v for k, v in params.items() if k != "imagedata"}))
            fault = next((f for f in self.faults if f.fires(action or "")), None)
            if fault is not None and fault.kind == "mutate":
                fault.mutate(self)
                fault = None
        if fault is not None and fault.kind in _BEFORE_ACTING:
            return fault, lambda: iter(())
        name = (action or "").lower()
        handler = _ACTIONS.get(name)
        try:
            if handler is None:
                if not action:
                    raise param_missing("action")
                # Media Server's wording for an unknown action (MS).
                raise HashlensError(Failure.NOT_IMPLEMENTED, "The requested action was not recognised",
                                    parameter="action")
            body = handler(self, Params(params), image, fault)
        except HashlensError as exc:
            text = response.error(action or "UNKNOWN", exc)
            return fault, lambda: iter([text])
        return fault, body

    def _database(self, name: str) -> Sequence[HashEntry]:
        db = self.databases.get(name)
        if db is None:
            # The wording OpenText's own scripts look for (MS).
            raise HashlensError(Failure.NO_SUCH_DATABASE, f"'database={name}' does not exist", parameter="database")
        return db

    def _writable(self, name: str) -> list[HashEntry]:
        db = self._database(name)
        if not isinstance(db, list):
            raise HashlensError(Failure.READ_ONLY, f"The stand-in database '{name}' is generated and read-only.")
        return db

    def _find(self, database: str, identifier: str) -> tuple[list[HashEntry], int]:
        db = self._writable(database)
        for index, entry in enumerate(db):
            if entry.identifier == identifier:
                return db, index
        raise HashlensError(Failure.NO_SUCH_IDENTIFIER,
                            f"The image hash '{identifier}' does not exist in database '{database}'.",
                            parameter="identifier")

    def _counted(self, chunks: Iterator[str]) -> Iterator[str]:
        swaps = COUNTER_SPELLINGS[self.counters]
        for chunk in chunks:
            for old, new in swaps.items():
                chunk = chunk.replace(old, new)
            yield chunk

    # -- the queue ----------------------------------------------------------------------------

    def _run_queue(self) -> None:
        while True:
            with self.lock:
                while self._waiting and self.queue[self._waiting[0]].status != "Queued":
                    self._waiting.popleft()  # stopped or cancelled meanwhile
                while not self._stopping and not (self._queue_gate.is_set() and self._waiting):
                    self._queue_wakeup.wait()
                if self._stopping:
                    return
                item = self.queue[self._waiting.popleft()]
                if item.status == "Queued":
                    self._train(item)

    def _train(self, item: QueuedAction) -> None:
        """Train atomically: on any error nothing is added (MS)."""
        p = Params(item.params)
        try:
            database = p.text("database")
            db = self._writable(database)
            identifier = p.optional_text("identifier") or secrets.token_hex(16)
            if (identifier in db.index) if isinstance(db, IndexedDatabase) else any(
                    e.identifier == identifier for e in db):
                raise HashlensError(Failure.IDENTIFIER_EXISTS, f"The image hash '{identifier}' already exists.")
            image = item.image
            if image is None:
                path = p.text("imagepath")
                try:
                    image = Path(path).read_bytes()
                except OSError as exc:
                    raise HashlensError(Failure.BAD_IMAGE, f"Cannot read imagepath '{path}': {exc.strerror}.") from None
            if not image:
                raise HashlensError(Failure.BAD_IMAGE, "The image data is empty.")
            metadata = parse_metadata(p.raw("metadata") or "")
            label = p.optional_text("imagelabel") or secrets.token_hex(16)
        except HashlensError as exc:
            item.status, item.error = "Error", exc.description
            return
        db.append(HashEntry(identifier, label, True, metadata, image))
        item.status, item.identifier = "Finished", identifier
        self.applied.append((names.TRAIN_IMAGE_HASH, dict(item.params, identifier=identifier)))


# -- actions ------------------------------------------------------------------------------------


def _empty(action: str) -> Callable[[], Iterator[str]]:
    text = response.success(action)
    return lambda: iter([text])


def _list_image_hashes(server: Standin, p: Params, image, fault) -> Callable[[], Iterator[str]]:
    db = server._database(p.text("database"))
    start = p.positive_int("start", 1)
    maxresults = p.positive_int("maxresults", None)
    imagestatus = p.boolean("imagestatus", False)
    metadata = p.boolean("metadata", False)
    raw_ids = p.raw("identifier")
    with server.lock:
        if raw_ids:
            # Unknown identifiers are left out; the result keeps database order (ours).
            wanted = set(split_identifier_list(raw_ids))
            if isinstance(db, IndexedDatabase):
                chosen = [db[i] for i in sorted(db.index[w] for w in wanted if w in db.index)]
            else:
                chosen = [e for e in db if e.identifier in wanted]
            window = chosen[start - 1: None if maxresults is None else start - 1 + maxresults]
        elif isinstance(db, list):
            window = db[start - 1: None if maxresults is None else start - 1 + maxresults]
        else:
            window = None  # generated on demand while streaming
    first = start
    if window is None and isinstance(db, SyntheticDatabase):
        stop = len(db) if maxresults is None else min(len(db), start - 1 + maxresults)
        return lambda: server._counted(response.listing(db.entries_xml(start - 1, stop, imagestatus, metadata),
                                                         imagestatus=imagestatus, metadata=metadata))

    def batches() -> Iterator[list[EntryRow]]:
        if window is not None:
            source: Iterator[HashEntry] = iter(list(window))
        else:
            stop = len(db) if maxresults is None else min(len(db), start - 1 + maxresults)
            source = (db.entry(i) for i in range(start - 1, stop))
        batch: list[EntryRow] = []
        for position, entry in enumerate(source, first):
            batch.append(EntryRow(position, position, entry.identifier, entry.label, entry.has_image_data, 0,
                                  None, None, None, None, len(entry.metadata), 0, tuple(entry.metadata)))
            if len(batch) == 500:
                yield batch
                batch = []
        yield batch

    return lambda: server._counted(response.listing(batches(), imagestatus=imagestatus, metadata=metadata))


def _write(action: str, fn: Callable[[Standin, Params], None]):
    """A synchronous write: applied, logged, answered with an empty SUCCESS (MS)."""

    def handler(server: Standin, p: Params, image, fault) -> Callable[[], Iterator[str]]:
        with server.lock:
            fn(server, p)
            server.applied.append((action, dict(p.values)))
        if fault is not None and fault.kind == "drop_after_write":
            raise _Dropped()
        return _empty(action)

    return handler


def remove_image_hash(server: Standin, p: Params) -> None:
    db, index = server._find(p.text("database"), p.text("identifier"))
    del db[index]


def null_image_data(server: Standin, p: Params) -> None:
    db, index = server._find(p.text("database"), p.text("identifier"))
    db[index].has_image_data = False
    db[index].image = None


def rename_image_hash(server: Standin, p: Params) -> None:
    database, new = p.text("database"), p.text("newidentifier")
    db, index = server._find(database, p.text("identifier"))
    if any(e.identifier == new for e in db):
        raise HashlensError(Failure.IDENTIFIER_EXISTS, f"The image hash '{new}' already exists.", parameter="newidentifier")
    db[index].identifier = new


def move_image_hash(server: Standin, p: Params) -> None:
    db, index = server._find(p.text("database"), p.text("identifier"))
    target = server._writable(p.text("newdatabase"))
    if any(e.identifier == db[index].identifier for e in target):
        raise HashlensError(Failure.IDENTIFIER_EXISTS, "The image hash already exists in the new database.",
                            parameter="newdatabase")
    target.append(db.pop(index))


def relabel_image(server: Standin, p: Params) -> None:
    db, index = server._find(p.text("database"), p.text("identifier"))
    label = p.text("imagelabel")
    if db[index].label != label:
        raise HashlensError(Failure.NO_SUCH_LABEL, f"The image label '{label}' does not exist.", parameter="imagelabel")
    db[index].label = p.text("newimagelabel")


def _metadata_index(entry: HashEntry, key: str) -> int | None:
    return next((i for i, (k, _) in enumerate(entry.metadata) if k == key), None)


def add_metadata(server: Standin, p: Params) -> None:
    db, index = server._find(p.text("database"), p.text("identifier"))
    key = p.text("key")
    if _metadata_index(db[index], key) is not None:
        raise HashlensError(Failure.KEY_EXISTS, f"The metadata key '{key}' already exists.", parameter="key")
    db[index].metadata.append((key, p.text("value")))


def _existing_key(server: Standin, p: Params) -> tuple[HashEntry, int]:
    """The entry and the index of its metadata item named by `key`; an error when absent."""
    db, index = server._find(p.text("database"), p.text("identifier"))
    key = p.text("key")
    at = _metadata_index(db[index], key)
    if at is None:
        raise HashlensError(Failure.NO_SUCH_KEY, f"The metadata key '{key}' does not exist.", parameter="key")
    return db[index], at


def update_metadata(server: Standin, p: Params) -> None:
    entry, at = _existing_key(server, p)
    entry.metadata[at] = (entry.metadata[at][0], p.text("newvalue"))


def remove_metadata(server: Standin, p: Params) -> None:
    entry, at = _existing_key(server, p)
    del entry.metadata[at]


def _train_image_hash(server: Standin, p: Params, image, fault) -> Callable[[], Iterator[str]]:
    """Asynchronous (MS): queue the action and answer its token at once."""
    if (image is None) == (not p.raw("imagepath")):
        raise param_invalid("imagedata", "give exactly one of imagedata (a multipart upload) or imagepath.")
    p.text("database")
    token = secrets.token_hex(20).upper()
    with server.lock:
        server.queue[token] = QueuedAction(token, dict(p.values), image)
        server._waiting.append(token)
        server._queue_wakeup.notify_all()
    if fault is not None and fault.kind == "drop_after_write":
        raise _Dropped()
    text = response.success(names.TRAIN_IMAGE_HASH, [response.element("token", token)])
    return lambda: iter([text])


def _queue_info(server: Standin, p: Params, image, fault) -> Callable[[], Iterator[str]]:
    queue = p.text("queuename")
    what = p.text("queueaction").lower()
    token = p.optional_text("token")
    if queue.lower() != names.TRAIN_IMAGE_HASH.lower():
        raise param_invalid("queuename", f"there is no queue '{queue}'; the asynchronous action here is "
                                         f"{names.TRAIN_IMAGE_HASH}.")
    with server.lock:
        if token is not None and token not in server.queue:
            raise param_invalid("token", f"no action with token '{token}' is in the queue.")
        chosen = [server.queue[token]] if token else list(server.queue.values())
        if what == "getstatus":
            lines = ["<actions>"]
            for item in chosen:
                lines.append("  <action>")
                lines.append("    " + response.element("token", item.token))
                lines.append("    " + response.element("status", item.status))
                if item.error is not None:
                    lines.append("    " + response.element("error", item.error))
                lines.append("  </action>")
            lines.append("</actions>")
            text = response.success(names.QUEUE_INFO, lines)
            return lambda: iter([text])
        if what not in ("stop", "cancel"):
            raise param_invalid("queueaction", f"'{p.raw('queueaction')}' is not GetStatus, Stop or Cancel.")
        if token is None:
            raise param_missing("token")
        item = server.queue[token]
        # Stop ends a running action, Cancel a queued one (MS); training is atomic, so
        # either way nothing is added.
        allowed = ("Queued", "Processing") if what == "stop" else ("Queued",)
        if item.status not in allowed:
            raise param_invalid("token", f"the action is {item.status}; {what} applies only to {' or '.join(allowed)} actions.")
        item.status = "Stopped" if what == "stop" else "Cancelled"
    return _empty(names.QUEUE_INFO)


_ACTIONS: dict[str, Callable] = {
    names.LIST_IMAGE_HASHES.lower(): _list_image_hashes,
    names.TRAIN_IMAGE_HASH.lower(): _train_image_hash,
    names.QUEUE_INFO.lower(): _queue_info,
}
for _name, _fn in ((names.REMOVE_IMAGE_HASH, remove_image_hash), (names.NULL_IMAGE_HASH_IMAGE_DATA, null_image_data),
                   (names.RENAME_IMAGE_HASH, rename_image_hash), (names.MOVE_IMAGE_HASH, move_image_hash),
                   (names.RELABEL_IMAGE_HASH_IMAGE, relabel_image), (names.ADD_IMAGE_HASH_METADATA, add_metadata),
                   (names.UPDATE_IMAGE_HASH_METADATA, update_metadata),
                   (names.REMOVE_IMAGE_HASH_METADATA, remove_metadata)):
    _ACTIONS[_name.lower()] = _write(_name, _fn)


# -- HTTP ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: Standin

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # tests read server.requests instead of stderr

    def do_GET(self):  # noqa: N802 - http.server's name
        self._serve("GET", self.path, None)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
            self._send_body(response.error("UNKNOWN", param_invalid(
                "imagedata", f"the upload is {length:,} bytes; the limit is {MAX_UPLOAD_BYTES:,}.")))
            return
        body = self.rfile.read(length)
        ctype = self.headers.get("Content-Type", "")
        image = None
        if ctype.lower().startswith("multipart/form-data"):
            params, image = _multipart(ctype, body)
            action = next((v for k, v in params.items() if k in ("action", "a")), None)
            params = {k: v for k, v in params.items() if k not in ("action", "a")}
            path_action, path_params = parse_query_string(self.path)
            params = {**path_params, **params}
            self._respond("POST", action or path_action, params, image)
            return
        self._serve("POST", self.path, body.decode("utf-8", "replace"))

    def _serve(self, method: str, path: str, form: str | None):
        try:
            action, params = parse_query_string(path.lstrip("/"))
            if form:
                form_action, form_params = parse_query_string(form)
                action, params = form_action or action, {**params, **form_params}
        except HashlensError as exc:
            self._send_body(response.error("UNKNOWN", exc))
            return
        self._respond(method, action, params, None)

    def _respond(self, method, action, params, image):
        server = self.standin
        try:
            fault, body = server.answer(method, action, params, image)
        except _Dropped:
            self._hang_up()
            return
        kind = fault.kind if fault is not None else None
        if kind == "close":
            self._hang_up()
            return
        if kind == "stall":
            server._stalled.set()
            server._stall_released.wait()
        if kind == "error":
            text = response.error(action or "UNKNOWN", HashlensError(
                Failure.STORE_BUSY, "The stand-in was told to fail this request."))
            self._send_body(text)
        elif kind == "malformed":
            self._send_body(f"<autnresponse><action>{(action or '').upper()}</action>"
                            "<response>SUCCESS</respons></autnresponse>")
        elif kind == "truncated":
            text = "".join(body())
            self._send_body(text[: len(text) // 2])
        elif kind == "not_autnresponse":
            self._send_body("<html><head><title>Welcome</title></head><body>Portal</body></html>")
        elif kind == "http_status":
            self._send_body(f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>",
                            status=fault.status, ctype="text/html")
        elif kind == "close_mid":
            data = "".join(body()).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: int(len(data) * _HALF)])
            self._hang_up()
        else:
            self._stream(body())

    def _hang_up(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_body(self, text: str, status: int = 200, ctype: str = "application/xml; charset=utf-8"):
        data = text.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.standin.bytes_sent += len(data)
        except OSError:
            pass  # the client gave up (a stalled request after its timeout)
        self.close_connection = True

    def _stream(self, chunks: Iterator[str]):
        """Chunked transfer, so a large listing never has to be held, and a cut is visible."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            pending: list[bytes] = []
            size = 0
            for chunk in chunks:
                data = chunk.encode("utf-8")
                pending.append(data)
                size += len(data)
                if size >= _CHUNK:
                    self._chunk(b"".join(pending))
                    pending, size = [], 0
            if pending:
                self._chunk(b"".join(pending))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.standin.bytes_sent += len(data)


def _multipart(ctype: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """Read a multipart/form-data body: text fields, and `imagedata` as bytes."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode("latin-1") + body)
    params: dict[str, str] = {}
    image = None
    for part in message.iter_parts():
        name = (part.get_param("name", header="content-disposition") or "").lower()
        payload = part.get_payload(decode=True) or b""
        if name == "imagedata":
            image = payload
        elif name:
            params[name] = payload.decode("utf-8")
    return params, image
