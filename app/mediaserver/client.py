"""A client for a running Media Server's ACI over HTTP(S): reads retried with backoff, writes sent once.

Built on the standard library's `http.client`: it gives the two things the client needs
and a higher-level library would hide - the moment a request has been sent (a write that
was sent but not answered may or may not have taken effect) and the raw answer stream,
fed to the one streaming reader in `app.mediaserver_codec` so a 50 MB page is never held.

Every fault is a `MediaServerError` whose message names the server, the request and what
went wrong, in words a person can act on. Success is decided from the answer's
<response>, not from the HTTP status (MS).
"""

from __future__ import annotations

import http.client
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from app.domain import Failure, HashlensError
from app.mediaserver_codec import names
from app.mediaserver_codec.lists import format_identifier_list, format_metadata
from app.mediaserver_codec.reader import (
    ErrorDetail, ListedEntry, Response, ResponseHead, ResponseUnreadable, iter_response, read_response,
)
from app.mediaserver_codec.request import aci_line

DEFAULT_PORT = 14000  # Media Server's ACI port when the address names none (MS)
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
# HTTP statuses a proxy or a restarting server answers for a moment; worth another try.
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
_ERROR_BODY_CAP = 64 * 1024
_READ_CHUNK = 64 * 1024
_SHOWN_REQUEST = 160


class MediaServerError(HashlensError):
    """A request to a Media Server that failed. `kind` says how (refused, dns, timeout,
    tls, http_status, closed, unreadable, error, uncertain, unreachable); `transient`
    says whether a read is worth repeating; `detail` holds the server's own ERROR."""

    def __init__(self, failure: Failure, kind: str, server: str, request: str, what: str, *,
                 transient: bool = False, detail: ErrorDetail | None = None):
        super().__init__(failure, f"Media Server at {server}: {what} (request: {request})", parameter=None)
        self.kind = kind
        self.server = server
        self.request = request
        self.transient = transient
        self.detail = detail


@dataclass(frozen=True)
class QueuedAction:
    """The state of one asynchronous action, as QueueInfo GetStatus reports it."""

    token: str | None
    status: str | None
    error: str | None


class _Unanswered(Exception):
    """Raised inside the client when a sent request got no (whole) answer."""


class MediaServerClient:
    """One Media Server, addressed as `http(s)://host[:port][/prefix]` (port 14000 when
    omitted). `ca_file` replaces the system CA bundle for https; `cert_file` (and
    `key_file`) present a client certificate. `sleep` is injectable so tests do not wait."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, sleep: Callable[[float], None] = time.sleep):
        self.url, self._scheme, self._host, self._port, self._prefix = _parse_address(url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._tls: ssl.SSLContext | None = None
        if self._scheme == "https":
            self._tls = _tls_context(self.url, ca_file, cert_file, key_file)

    # -- reads: retried --------------------------------------------------------------------

    def list_entries(self, database: str, *, start: int = 1, maxresults: int | None = None,
                     identifiers: list[str] | None = None, imagestatus: bool = True,
                     metadata: bool = True) -> Iterator[ListedEntry]:
        """ListImageHashes, one entry at a time as the answer streams in. A transient
        fault before the first entry is retried; after it, the fault is raised (the
        caller decides how to re-read, as a page may have changed meanwhile)."""
        return self._entries(_listing_line(database, start, maxresults, identifiers, imagestatus, metadata),
                             self.retries)

    def list_page(self, database: str, *, start: int = 1, maxresults: int | None = None,
                  identifiers: list[str] | None = None, imagestatus: bool = True,
                  metadata: bool = True) -> list[ListedEntry]:
        """A whole page of ListImageHashes; a transient fault anywhere repeats the page."""
        line = _listing_line(database, start, maxresults, identifiers, imagestatus, metadata)
        return self._retrying(lambda: list(self._entries(line, retries=0)))

    def read(self, action: str, params: Mapping[str, object] | None = None) -> Response:
        """Any read action with a short answer, by GET; retried on transient faults. An
        ERROR answer raises MediaServerError with kind "error" and is never retried."""
        line = aci_line(action, params or {})

        def once() -> Response:
            try:
                answer = read_response(self._get(line), what=self._what(line))
            except ResponseUnreadable as exc:
                raise self._unreadable(line, exc) from None
            return self._checked(line, answer)

        return self._retrying(once)

    def queue_status(self, token: str | None = None, queue: str = names.TRAIN_IMAGE_HASH) -> list[QueuedAction]:
        """QueueInfo GetStatus for one action (by token) or the whole queue (MS)."""
        answer = self.read(names.QUEUE_INFO, {"queuename": queue, "queueaction": "GetStatus", "token": token})
        groups: list[dict[str, str]] = []
        for value in answer.values:
            name = value.path.rsplit("/", 1)[-1]
            if not value.path.startswith("actions/action/"):
                continue
            if not groups or name in groups[-1]:
                groups.append({})
            groups[-1][name] = value.text
        return [QueuedAction(g.get("token"), g.get("status"), g.get("error")) for g in groups]

    # -- writes: sent once ------------------------------------------------------------------

    def write(self, action: str, params: Mapping[str, object]) -> Response:
        """A synchronous write (RemoveImageHash and the like) by POST, sent once. If it
        was sent but not answered, MediaServerError kind "uncertain" says to check
        before sending it again (its effect is unknown)."""
        line = aci_line(action, params)
        return self._send_once(line, line.encode("utf-8"), "application/x-www-form-urlencoded")

    def train(self, database: str, image: bytes, *, identifier: str | None = None, label: str | None = None,
              metadata: list[tuple[str, str]] | tuple = ()) -> str:
        """TrainImageHash with the image as a multipart `imagedata` upload; returns the
        token of the queued action (MS: asynchronous). Follow it with queue_status and
        confirm the result with ListImageHashes: the finished action's result is not
        documented (unknown)."""
        fields = {"action": names.TRAIN_IMAGE_HASH, "database": database, "identifier": identifier,
                  "imagelabel": label, "metadata": format_metadata(metadata) if metadata else None}
        boundary = "hashlens-" + secrets.token_hex(16)
        body = _multipart(boundary, fields, image)
        shown = aci_line(names.TRAIN_IMAGE_HASH, {k: v for k, v in fields.items() if k != "action"}) + \
            f"&imagedata=<{len(image):,} bytes>"
        answer = self._send_once(shown, body, f"multipart/form-data; boundary={boundary}")
        token = answer.value("token")
        if not token:
            raise MediaServerError(Failure.BAD_RESPONSE, "unreadable", self.url, self._shown(shown),
                                   f"the answer to {names.TRAIN_IMAGE_HASH} holds no <token>")
        return token

    def stop(self, token: str, queue: str = names.TRAIN_IMAGE_HASH) -> None:
        """Stop a running asynchronous action (MS)."""
        line = aci_line(names.QUEUE_INFO, {"queuename": queue, "queueaction": "Stop", "token": token})
        self._send_once(line, line.encode("utf-8"), "application/x-www-form-urlencoded")

    def cancel(self, token: str, queue: str = names.TRAIN_IMAGE_HASH) -> None:
        """Cancel a queued asynchronous action (MS)."""
        line = aci_line(names.QUEUE_INFO, {"queuename": queue, "queueaction": "Cancel", "token": token})
        self._send_once(line, line.encode("utf-8"), "application/x-www-form-urlencoded")

    # -- the machinery ----------------------------------------------------------------------

    def _entries(self, line: str, retries: int) -> Iterator[ListedEntry]:
        attempt = 0
        while True:
            yielded = False
            body = None
            try:
                head: ResponseHead | None = None
                body = self._get(line)
                for part in iter_response(body, what=self._what(line)):
                    if isinstance(part, ListedEntry):
                        if head is not None and not head.ok:
                            continue
                        yielded = True
                        yield part
                    elif isinstance(part, ResponseHead):
                        head = part
                    elif isinstance(part, ErrorDetail):
                        raise self._server_error(line, part)
                if head is not None and not head.ok:
                    raise self._server_error(line, None)
                return
            except ResponseUnreadable as exc:
                raise self._unreadable(line, exc) from None
            except MediaServerError as exc:
                if yielded or not exc.transient or attempt >= retries:
                    raise
            finally:
                if body is not None:
                    body.close()
            attempt += 1
            self._sleep(self.backoff * 2 ** (attempt - 1))

    def _retrying(self, once: Callable[[], object]):
        attempt = 0
        while True:
            try:
                return once()
            except MediaServerError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
            attempt += 1
            self._sleep(self.backoff * 2 ** (attempt - 1))

    def _checked(self, line: str, answer: Response) -> Response:
        if not answer.ok:
            raise self._server_error(line, answer.error)
        return answer

    def _get(self, line: str) -> _Body:
        connection = self._open(line)
        try:
            connection.request("GET", self._prefix + "/" + line, headers={"Accept": "application/xml"})
            return self._answer(connection, line)
        except _Unanswered as exc:
            connection.close()
            raise exc.args[0] from None
        except OSError as exc:
            connection.close()
            raise self._fault(line, exc) from None

    def _send_once(self, line: str, body: bytes, content_type: str) -> Response:
        """POST a request that changes something: sent exactly once."""
        connection = self._open(line)
        try:
            connection.request("POST", self._prefix + "/", body=body,
                               headers={"Content-Type": content_type, "Accept": "application/xml"})
        except OSError as exc:
            connection.close()
            raise self._fault(line, exc) from None
        # From here on the server may have acted on it.
        try:
            answer = read_response(self._answer(connection, line), what=self._what(line))
        except ResponseUnreadable as exc:
            raise self._uncertain(line, exc.reason) from None
        except _Unanswered as exc:
            raise self._uncertain(line, _reason_of(exc.args[0])) from None
        except MediaServerError as exc:
            raise self._uncertain(line, _reason_of(exc)) from None
        except OSError as exc:
            raise self._uncertain(line, _reason_of(self._fault(line, exc))) from None
        finally:
            connection.close()
        return self._checked(line, answer)

    def _open(self, line: str) -> http.client.HTTPConnection:
        if self._tls is not None:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise self._fault(line, exc) from None
        return connection

    def _answer(self, connection: http.client.HTTPConnection, line: str) -> _Body:
        try:
            reply = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise _Unanswered(self._fault(line, exc)) from None
        if reply.status == 200:
            return _Body(self, connection, reply, line)
        # Not 200: Media Server itself answers 200 even for an ERROR, so this is most
        # likely a proxy; but if the body is an autnresponse, it is the server's word.
        try:
            data = reply.read(_ERROR_BODY_CAP)
        except (OSError, http.client.HTTPException):
            data = b""
        connection.close()
        try:
            answer = read_response(data, what=self._what(line))
        except ResponseUnreadable:
            answer = None
        if answer is not None:
            return _Body(self, None, _Bytes(data), line)
        raise MediaServerError(
            Failure.SERVER_UNREACHABLE, "http_status", self.url, self._shown(line),
            f"the answer was HTTP {reply.status} {reply.reason} instead of a Media Server response; "
            "a proxy or gateway between Hashlens and Media Server may be failing",
            transient=reply.status in TRANSIENT_STATUSES)

    def _fault(self, line: str, exc: BaseException) -> MediaServerError:
        """One plain message per transport fault."""
        shown, server = self._shown(line), self.url

        def fault(kind: str, what: str, transient: bool = False) -> MediaServerError:
            return MediaServerError(Failure.SERVER_UNREACHABLE, kind, server, shown, what, transient=transient)

        if isinstance(exc, ssl.SSLCertVerificationError):
            return fault("tls", f"the TLS certificate was not accepted ({exc.verify_message}); if the server "
                                "uses its own certificate authority, give its CA file")
        if isinstance(exc, ssl.SSLError):
            return fault("tls", f"the TLS connection failed ({exc.reason or exc}); check that the address "
                                "is https:// only if the server speaks TLS, and the client certificate")
        if isinstance(exc, socket.gaierror):
            return fault("dns", f"the host name '{self._host}' could not be found (DNS: {exc.strerror}); "
                                "check the address")
        if isinstance(exc, ConnectionRefusedError):
            return fault("refused", f"the connection to port {self._port} was refused; is Media Server running, "
                                    "and is its ACI port right?", transient=True)
        if isinstance(exc, TimeoutError):
            return fault("timeout", f"no answer within {self.timeout:g} s", transient=True)
        if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError,
                            BrokenPipeError, ConnectionAbortedError)):
            return fault("closed", "the server closed the connection before the answer was complete",
                         transient=True)
        if isinstance(exc, http.client.HTTPException):
            return fault("closed", f"the answer was not valid HTTP ({type(exc).__name__})", transient=True)
        if isinstance(exc, OSError):
            return fault("unreachable", f"the server could not be reached ({exc.strerror or exc})")
        return fault("unreachable", f"the request failed ({exc})")

    def _server_error(self, line: str, detail: ErrorDetail | None) -> MediaServerError:
        said = detail.describe() if detail is not None else "no error detail was given"
        code = f" ({detail.errorcode})" if detail is not None and detail.errorcode else ""
        return MediaServerError(Failure.SERVER_ERROR, "error", self.url, self._shown(line),
                                f"the server answered ERROR: {said}{code}", detail=detail)

    def _unreadable(self, line: str, exc: ResponseUnreadable) -> MediaServerError:
        return MediaServerError(Failure.BAD_RESPONSE, "unreadable", self.url, self._shown(line) or exc.what,
                                f"the answer cannot be read: {exc.reason}")

    def _uncertain(self, line: str, why: str) -> MediaServerError:
        return MediaServerError(
            Failure.WRITE_UNCERTAIN, "uncertain", self.url, self._shown(line),
            f"the request was sent but not answered ({why}); it may or may not have taken effect: "
            "check the server (for example with ListImageHashes) before sending it again")

    def _what(self, line: str) -> str:
        return f"The answer of {self.url} to {self._shown(line)}"

    @staticmethod
    def _shown(line: str) -> str:
        return line if len(line) <= _SHOWN_REQUEST else line[:_SHOWN_REQUEST] + "…"


class _Body:
    """The answer stream handed to the reader: maps transport faults met while reading
    to MediaServerError, and notices an answer cut short of its Content-Length."""

    def __init__(self, client: MediaServerClient, connection, reply, line: str):
        self._client, self._connection, self._reply, self._line = client, connection, reply, line

    def read(self, size: int = _READ_CHUNK) -> bytes:
        try:
            data = self._reply.read(size)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self._client._fault(self._line, exc) from None
        if not data:
            remaining = getattr(self._reply, "length", None)
            self.close()
            if remaining:
                raise self._client._fault(self._line, http.client.IncompleteRead(b"", remaining))
        return data

    def close(self) -> None:
        if getattr(self, "_connection", None) is not None:
            self._connection.close()
            self._connection = None


class _Bytes:
    def __init__(self, data: bytes):
        self._data, self._at = data, 0
        self.length = 0

    def read(self, size: int) -> bytes:
        chunk = self._data[self._at:self._at + size]
        self._at += len(chunk)
        return chunk


def _listing_line(database: str, start: int, maxresults: int | None, identifiers: list[str] | None,
                  imagestatus: bool, metadata: bool) -> str:
    return aci_line(names.LIST_IMAGE_HASHES, {
        "database": database, "imagestatus": imagestatus, "metadata": metadata, "start": start,
        "maxresults": maxresults, "identifier": None if identifiers is None else format_identifier_list(identifiers)})


def _reason_of(exc: MediaServerError) -> str:
    return exc.description.split(": ", 1)[-1].rsplit(" (request:", 1)[0]


def _parse_address(url: str) -> tuple[str, str, str, int, str]:
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    problem = None
    if scheme not in ("http", "https"):
        problem = f"the scheme '{parts.scheme}' is not http or https"
    elif not parts.hostname:
        problem = "it names no host"
    elif parts.query or parts.fragment:
        problem = "it holds a query or fragment; give only http(s)://host:port"
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        problem = problem or "its port is not a number from 1 to 65535"
        port = 0
    if problem:
        raise HashlensError(Failure.PARAM_INVALID, f"The Media Server address '{url}' cannot be used: {problem}.",
                            parameter="url")
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    prefix = parts.path.rstrip("/")
    return f"{scheme}://{shown_host}:{port}{prefix}", scheme, host, port, quote(prefix, safe="/")


def _tls_context(url: str, ca_file: str | None, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """The system CA bundle, or only `ca_file` when given; a client certificate if given."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        which = "client certificate" if cert_file and ca_file is None else "CA file or client certificate"
        raise HashlensError(Failure.PARAM_INVALID, f"Cannot use the {which} for {url}: "
                                                   f"{getattr(exc, 'strerror', None) or exc}.") from None
    return context


def _multipart(boundary: str, fields: Mapping[str, str | None], image: bytes) -> bytes:
    parts: list[bytes] = []
    for name, value in fields.items():
        if value is None:
            continue
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                     f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode() + value.encode("utf-8") + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="imagedata"; filename="image"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + image + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
