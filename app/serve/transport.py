"""The WSGI application of `hashlens serve`: an HTTP request in, the ACI answer out.

It reads the request the ways Media Server accepts (MS): GET `/action=…`, `/?action=…`,
POST form-urlencoded and multipart/form-data; it checks who may do what, then hands the
action to the one dispatcher in `app.aci.actions` and the answer to the one serializer.
Every ACI answer, ERROR included, is HTTP 200 (MS: clients read <response>); only a
request that is not valid HTTP for this server gets a 4xx."""

from __future__ import annotations

import contextlib
import hmac
import io
import ipaddress
import logging
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

from app import __version__
from app.aci.actions import QUEUED, AciResponse, answer, canonical_action, error_response, prepare_queued
from app.mediaserver_codec import names
from app.mediaserver_codec import writer as response
from app.mediaserver_codec.request import Params, parse_query_string, requested_action
from app.domain import Failure, HashlensError, param_invalid, param_missing
from app.serve.json_form import xml_to_json
from app.serve.queue import ActionQueue, QueuedAction, Status
from app.serve.settings import TOKEN_HEADER, ServeSettings

log = logging.getLogger("hashlens.serve")

UPLOADS = ("imagedata", "dbdata")  # values bounded by the upload limit, not MaxInputString
# Actions that change nothing (ours: Media Server's documentation does not classify them).
READ_ACTIONS = {names.LIST_IMAGE_HASHES, names.LIST_IMAGE_HASH_DATABASES, names.SYNC_IMAGE_HASHES}
# Writes a file but leaves the store as it is, so a read-only server may run it (ours).
FILE_WRITING = {names.EXPORT_IMAGE_HASH_DATABASE}
PATH_PARAMETERS = ("imagepath", "dbpath")
XML = "application/xml; charset=UTF-8"
JSON = "application/json; charset=UTF-8"
_TIME_FORMAT = "%Y-%b-%d %H:%M:%S"  # QueueInfo's time stamps (after MS)
# Parameter names that would carry the access token in a URL (refused, with the token itself).
_TOKEN_PARAMETERS = (b"x-hashlens-token=", b"hashlens-token=", b"hashlens_token=", b"hashlenstoken=")
_AUTHENTICATE = [("WWW-Authenticate", f'{TOKEN_HEADER} realm="hashlens serve"')]
# A streamed answer whose whole text is at most this long is sent in one piece with a
# Content-Length (a page of a listing: one write, no chunked framing); a longer one is
# sent as it is made, in chunks, so memory stays flat.
WHOLE_ANSWER_BYTES = 1 << 20


class HttpRefusal(Exception):
    """A request refused at the HTTP level: a 4xx status with an ERROR autnresponse."""

    def __init__(self, status: str, error: HashlensError, headers: list[tuple[str, str]] | None = None):
        super().__init__(error.description)
        self.status, self.error, self.headers = status, error, headers or []


class StorePool:
    """One store per worker thread (its own connection), opened on first use."""

    def __init__(self, opener: Callable[[], object]):
        self._opener = opener
        self._local = threading.local()

    def current(self):
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._opener()
            self._local.store = store
        return store

    def close_current(self) -> None:
        store = getattr(self._local, "store", None)
        if store is not None:
            self._local.store = None
            with contextlib.suppress(Exception):
                store.close()


class Watchdog:
    """Cancels a request's store work when its deadline passes: one thread for all."""

    def __init__(self):
        self._cv = threading.Condition()
        self._items: dict[int, tuple[float, Callable[[], None]]] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._closed = False
        self._wakes_at: float | None = None  # when the thread next wakes; None: only when told
        self._thread = threading.Thread(target=self._run, name="hashlens-deadlines", daemon=True)
        self._thread.start()

    def watch(self, seconds: float, cancel: Callable[[], None]) -> int:
        when = time.monotonic() + seconds
        with self._cv:
            self._next += 1
            self._items[self._next] = (when, cancel)
            # Waking the thread costs a context switch per request; it is needed only
            # when this deadline comes before the thread's next wake-up.
            if self._wakes_at is None or when < self._wakes_at:
                self._cv.notify()
            return self._next

    def unwatch(self, key: int) -> bool:
        """Stop watching; True when the deadline had already passed."""
        with self._cv:
            self._items.pop(key, None)
            if key in self._fired:
                self._fired.discard(key)
                return True
            return False

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(5)

    def _run(self) -> None:
        with self._cv:
            while not self._closed:
                if not self._items:
                    self._wakes_at = None
                    self._cv.wait()
                    continue
                now = time.monotonic()
                due = [k for k, (when, _) in self._items.items() if when <= now]
                for key in due:
                    _, cancel = self._items.pop(key)
                    self._fired.add(key)
                    with contextlib.suppress(Exception):
                        cancel()
                if not due and self._items:
                    self._wakes_at = min(when for when, _ in self._items.values())
                    self._cv.wait(self._wakes_at - now)


class _StoreScope:
    """A request's store work inside the store's cancellable scope, under the deadline."""

    def __init__(self, store, watchdog: Watchdog, seconds: float):
        self.seconds = seconds
        self._scope = store.cancellable()
        handle = self._scope.__enter__()
        self._key = watchdog.watch(seconds, handle.cancel)
        self._watchdog = watchdog
        self.timed_out = False

    def close(self) -> None:
        self.timed_out = self._watchdog.unwatch(self._key) or self.timed_out
        scope, self._scope = self._scope, None
        if scope is not None:  # closed once, however many paths reach here
            with contextlib.suppress(HashlensError):
                scope.__exit__(None, None, None)

    def timeout_error(self) -> HashlensError:
        return HashlensError(Failure.TIMEOUT, f"The request took longer than this server's deadline of "
                                              f"{self.seconds:g} seconds and was stopped.")


class AciApp:
    """The WSGI callable. `server_port` is filled in once the socket is bound."""

    def __init__(self, settings: ServeSettings, stores: StorePool, queue: ActionQueue, watchdog: Watchdog,
                 log_line: Callable[[str], None] = lambda line: log.info("%s", line), *,
                 forward: Callable[[dict, bytes], tuple[str, list, bytes]] | None = None):
        """`forward`, in a helper process, hands a request for the queue to the primary."""
        self.settings = settings
        self.log_line = log_line
        self.forward = forward
        self._good_hosts: set[str] = set()  # Host headers already found acceptable
        self.log_tag = ""  # " pid=N" when several processes serve, so a line says which one
        self.stores = stores
        self.queue = queue
        self.watchdog = watchdog
        self.server_port = settings.port
        self.upload_dir = Path(tempfile.mkdtemp(prefix="hashlens-serve-"))

    # -- the request ---------------------------------------------------------------------

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        client = environ.get("REMOTE_ADDR", "?")
        json_form = None  # known once the parameters are read; a refusal reads the URL leniently
        try:
            self._check_host(environ.get("HTTP_HOST"))
            if self.settings.token is not None:
                self._check_token(environ)
            if self.forward is not None:
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)
            action, values = self._read(environ)
            if self.forward is not None and (action or "").lower() in _PRIMARY_ONLY:
                # The queue lives in the primary process: it answers (and logs) this one.
                status, headers, data = self.forward(environ, body)
                start_response(status, headers)
                return [data]
            json_form = self._response_format(values)
            result = self._dispatch(environ, client, action, values)
        except HttpRefusal as refusal:
            action_name, json_form = _asked(environ, json_form)
            text = response.error(action_name, refusal.error)
            body = (xml_to_json(text) if json_form else text).encode("utf-8")
            start_response(refusal.status, [("Content-Type", JSON if json_form else XML),
                                            ("Content-Length", str(len(body)))] + refusal.headers)
            self._log(client, action_name, f"HTTP {refusal.status[:3]} {refusal.error.failure.code}", started)
            return [body]
        except HashlensError as exc:
            action_name, json_form = _asked(environ, json_form)
            result = _Answer(error_response(action_name, exc))
        return self._respond(result, json_form, start_response, client, started)

    def _respond(self, result: "_Answer", json_form: bool, start_response, client: str, started: float):
        ans = result.answer
        outcome = "SUCCESS" if ans.ok else f"ERROR {ans.error.failure.code if ans.error else ''}".strip()
        if json_form or not ans.ok or result.scope is None:
            # Small or converted answers are rendered whole, so a deadline or late failure
            # still becomes a proper ERROR answer.
            try:
                text = ans.text()
            except HashlensError as exc:
                exc = result.scope.timeout_error() if result.scope and result.scope.timed_out else exc
                text, outcome = response.error(ans.action, exc), f"ERROR {exc.failure.code}"
            finally:
                if result.scope is not None:
                    result.scope.close()
            # Past the deadline the work was cancelled: the answer says why (ERRORTIMEOUT),
            # whether the cancel cut the work short (an ERRORCANCELLED from the first
            # batch, rendered at once by `answer`) or came just after it finished.
            if result.scope is not None and result.scope.timed_out and (
                    outcome == "SUCCESS" or (ans.error is not None and ans.error.failure is Failure.CANCELLED)):
                exc = result.scope.timeout_error()
                text, outcome = response.error(ans.action, exc), f"ERROR {exc.failure.code}"
            if json_form:
                text = xml_to_json(text)
            body = text.encode("utf-8")
            start_response("200 OK", [("Content-Type", JSON if json_form else XML), ("Content-Length", str(len(body)))])
            self._log(client, ans.action, outcome, started)
            return [body]
        # Gather the answer up to WHOLE_ANSWER_BYTES: a page is sent whole, with a length.
        head: list[bytes] = []
        size = 0
        chunks = iter(ans.chunks)
        try:
            for chunk in chunks:
                head.append(chunk.encode("utf-8"))
                size += len(head[-1])
                if size > WHOLE_ANSWER_BYTES:
                    break
            else:
                result.scope.close()
                if result.scope.timed_out:
                    exc = result.scope.timeout_error()
                    return self._whole(response.error(ans.action, exc).encode("utf-8"), XML, start_response,
                                       client, ans.action, f"ERROR {exc.failure.code}", started)
                return self._whole(b"".join(head), XML, start_response, client, ans.action, outcome, started)
        except HashlensError as exc:
            # Nothing is sent yet, so a failure in a later batch is still a proper ERROR.
            with contextlib.suppress(Exception):
                getattr(ans.chunks, "close", lambda: None)()
            result.scope.close()
            exc = result.scope.timeout_error() if result.scope.timed_out else exc
            return self._whole(response.error(ans.action, exc).encode("utf-8"), XML, start_response, client,
                               ans.action, f"ERROR {exc.failure.code}", started)
        except BaseException:
            with contextlib.suppress(Exception):
                getattr(ans.chunks, "close", lambda: None)()
            result.scope.close()
            raise
        start_response("200 OK", [("Content-Type", XML)])
        return _Stream(AciResponse(ans.action, True, _resume(head, chunks, ans.chunks)), result.scope,
                       lambda how: self._log(client, ans.action, how, started))

    def _whole(self, body: bytes, ctype: str, start_response, client: str, action: str, outcome: str,
               started: float):
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        self._log(client, action, outcome, started)
        return [body]

    # -- reading -------------------------------------------------------------------------

    def _check_host(self, host: str | None) -> None:
        """DNS rebinding (reliability H2): a browser tricked into calling this server sends
        the attacker's name in Host. Accept IP literals (no DNS involved), localhost and
        the names given with --allow-host, on this server's port only (ours)."""
        if host is None or host in self._good_hosts:
            return  # HTTP/1.0 clients may omit it; browsers never do
        name, port = _split_host(host)
        if port is not None and port != self.server_port:
            self._refuse_host(host)
        if port is None and self.server_port != 80:
            self._refuse_host(host)
        if name.lower() not in {"localhost", *(h.lower() for h in self.settings.allow_hosts)}:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                self._refuse_host(host)
        if len(self._good_hosts) < 64:  # the few names clients use, remembered (the port is fixed)
            self._good_hosts.add(host)

    def _check_token(self, environ) -> None:
        """--token-file (reliability H4): every request carries the token in the
        X-Hashlens-Token header; one in the URL is refused even when the header is right,
        because URLs end up in proxies' logs and browser histories (ours)."""
        token = self.settings.token.encode("utf-8")
        uri = environ.get("REQUEST_URI", "")
        uri_text = urllib.parse.unquote_to_bytes(uri)
        if token in uri_text or any(name in uri_text.lower() for name in _TOKEN_PARAMETERS):
            raise HttpRefusal("401 Unauthorized", HashlensError(
                Failure.NOT_AUTHORIZED, f"The access token was sent in the URL; send it only in the {TOKEN_HEADER} "
                                        "header, and make a new token (the one in the URL may have been recorded)."),
                _AUTHENTICATE)
        given = environ.get("HTTP_X_HASHLENS_TOKEN")
        if given is None:
            raise HttpRefusal("401 Unauthorized", HashlensError(
                Failure.NOT_AUTHORIZED, f"This server needs its access token in the {TOKEN_HEADER} header."),
                _AUTHENTICATE)
        if not hmac.compare_digest(given.encode("latin-1", "replace"), token):
            raise HttpRefusal("401 Unauthorized", HashlensError(
                Failure.NOT_AUTHORIZED, f"The {TOKEN_HEADER} header does not hold this server's access token."),
                _AUTHENTICATE)

    @staticmethod
    def _refuse_host(host: str):
        raise HttpRefusal("403 Forbidden", HashlensError(
            Failure.NOT_AUTHORIZED,
            f"The Host header '{host[:100]}' is not one this server answers to; use localhost or an IP address, "
            "or start the server with --allow-host NAME."))

    def _read(self, environ) -> tuple[str | None, dict[str, str | bytes]]:
        method = environ.get("REQUEST_METHOD", "GET")
        uri = _utf8(environ.get("REQUEST_URI", "").encode("latin-1"), "the request line")
        if uri.startswith(("http://", "https://")):
            uri = "/" + uri.split("/", 3)[-1] if uri.count("/") >= 3 else "/"
        action, values = parse_query_string(uri)
        if method in ("GET", "HEAD"):
            return action, values
        if method != "POST":
            raise HttpRefusal("405 Method Not Allowed", HashlensError(
                Failure.BAD_REQUEST, f"The method {method[:20]} is not used here; send GET or POST."),
                [("Allow", "GET, HEAD, POST")])
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        ctype = environ.get("CONTENT_TYPE", "")
        kind = ctype.split(";", 1)[0].strip().lower()
        if kind == "multipart/form-data":
            body_action, body_values = self._multipart(ctype, body)
        elif kind in ("application/x-www-form-urlencoded", ""):
            # In a form body '+' is a space (HTML forms, ours); a literal plus comes as %2B.
            text = _utf8(body, "the request body").replace("+", "%20")
            if _declares_json(text):
                environ["hashlens.json"] = True
            body_action, body_values = parse_query_string(text)
        else:
            raise HttpRefusal("415 Unsupported Media Type", HashlensError(
                Failure.BAD_REQUEST, f"A POST body of type '{kind[:60]}' is not understood; send "
                                     "application/x-www-form-urlencoded or multipart/form-data."))
        if action and body_action and action.lower() != body_action.lower():
            raise param_invalid("action", "the URL and the body name different actions.")
        for name, value in body_values.items():
            if name in values and values[name] != value:
                raise param_invalid(name, "the parameter is given twice with different values.")
            values[name] = value
        return action or body_action, values

    def _multipart(self, ctype: str, body: bytes) -> tuple[str | None, dict[str, str | bytes]]:
        malformed = param_invalid("body", "the multipart/form-data body is malformed (check its boundary "
                                          "and each part's Content-Disposition).")
        try:
            message = BytesParser(policy=policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
            if not message.is_multipart() or message.defects:
                raise malformed
            parts = list(message.iter_parts())
        except HashlensError:
            raise
        except Exception:
            raise malformed from None
        values: dict[str, str | bytes] = {}
        for part in parts:
            if part.defects or part.is_multipart():
                raise malformed
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str) or not name:
                raise malformed
            name = name.strip().lower()
            name = "action" if name == "a" else name
            data = part.get_payload(decode=True) or b""
            is_file = part.get_filename() is not None or part.get_content_type() not in ("text/plain",)
            value: str | bytes = data if name in UPLOADS and (is_file or name == "dbdata") else _utf8(data, name)
            if name in values and values[name] != value:
                raise param_invalid(name, "the parameter is given twice with different values.")
            values[name] = value
        return values.pop("action", None), values

    def _response_format(self, values: dict) -> bool:
        fmt = values.pop("responseformat", None)
        if fmt is None or (isinstance(fmt, str) and fmt.strip().lower() in ("", "xml")):
            return False
        if isinstance(fmt, str) and fmt.strip().lower() == "json":
            return True
        raise param_invalid("responseformat", f"'{str(fmt)[:40]}' is not a response format; use xml or json.")

    # -- deciding -----------------------------------------------------------------------

    def _dispatch(self, environ, client: str, action: str | None, values: dict) -> "_Answer":
        self._check_sizes(values)
        low = (action or "").lower()
        if low in _SERVER_ACTIONS:
            name, handler = _SERVER_ACTIONS[low]
            try:
                return _Answer(AciResponse(name, True, iter([handler(self, environ, client, Params(values))])))
            except HashlensError as exc:
                return _Answer(error_response(name, exc))
        try:
            name = canonical_action(action)
        except HashlensError as exc:
            return _Answer(error_response(action or "UNKNOWN", exc))
        try:
            self._check_permission(environ, client, name)
            self._check_paths(values)
            store = self.stores.current()
        except HashlensError as exc:
            return _Answer(error_response(name, exc))
        scope = _StoreScope(store, self.watchdog, self.settings.deadline)
        try:
            if name in QUEUED:
                staged = self._stage_upload(name, values)
                try:
                    job = prepare_queued(store, name, values)
                    if staged is not None:
                        job = _removing_afterwards(job, staged)
                    token = self.queue.submit(name, job)
                except BaseException:
                    if staged is not None:
                        staged.unlink(missing_ok=True)
                    raise
                scope.close()
                return _Answer(AciResponse(name, True, iter([response.success(name, [response.element("token", token)])])))
            return _Answer(answer(store, name, values), scope)
        except HashlensError as exc:
            scope.close()
            if scope.timed_out:
                exc = scope.timeout_error()
            return _Answer(error_response(name, exc))
        except BaseException:
            scope.close()
            raise

    def _check_sizes(self, values: dict) -> None:
        limit, upload = self.settings.max_input_string, self.settings.max_upload_bytes
        for name, value in values.items():
            if name in UPLOADS:
                if len(value) > upload * (4 / 3 if isinstance(value, str) else 1) + 4:
                    raise param_invalid(name, f"the upload is larger than this server's limit of {upload:,} bytes.")
            elif len(value) > limit:
                raise param_invalid(name, f"the value is {len(value):,} characters; this server's "
                                          f"MaxInputString is {limit:,}.")

    def _check_permission(self, environ, client: str, action: str) -> None:
        if action in READ_ACTIONS:
            return
        self._check_admin(environ, client, action)
        if self.settings.read_only and action not in FILE_WRITING:
            raise HashlensError(Failure.READ_ONLY, f"This server was started with --read-only; {action} "
                                                   "changes the store and is refused.")

    def _check_admin(self, environ, client: str, action: str) -> None:
        if not self.settings.is_admin(client):
            raise HashlensError(Failure.NOT_AUTHORIZED, f"{action} changes data and is accepted only from admin "
                                                        f"clients; {client} is not one (see --admin-clients).")
        # A web page in a browser on an admin machine must not drive write actions
        # (reliability H3): browsers mark such requests; Media Server clients send neither.
        site = environ.get("HTTP_SEC_FETCH_SITE", "").lower()
        origin = environ.get("HTTP_ORIGIN")
        if site in ("cross-site", "same-site") or (origin is not None and not self._own_origin(origin)):
            raise HashlensError(Failure.NOT_AUTHORIZED, f"{action} was sent by a web page of another site "
                                                        "and is refused.")

    def _own_origin(self, origin: str) -> bool:
        if not origin.startswith("http://"):
            return False
        try:
            self._check_host(origin[len("http://"):].rstrip("/"))
        except HttpRefusal:
            return False
        return True

    def _check_paths(self, values: dict) -> None:
        """imagepath and dbpath only inside the --allow-dir folders: a remote client must
        not make the server read or write arbitrary files (ours)."""
        for name in PATH_PARAMETERS:
            value = values.get(name)
            if not value or not isinstance(value, str):
                continue
            if not self.settings.allowed_dirs:
                raise HashlensError(Failure.NOT_AUTHORIZED, f"Parameter '{name}': this server accepts no file "
                                                            "paths (start it with --allow-dir FOLDER).", parameter=name)
            if "\x00" in value or not os.path.isabs(value):
                raise param_invalid(name, "give an absolute path inside a folder this server allows.")
            real = Path(os.path.realpath(value))
            if not any(real == d or d in real.parents for d in self.settings.allowed_dirs):
                raise HashlensError(Failure.NOT_AUTHORIZED, f"Parameter '{name}': the path is outside the folders "
                                                            "this server allows (--allow-dir).", parameter=name)

    def _stage_upload(self, action: str, values: dict) -> Path | None:
        """An uploaded export file (`dbdata`) becomes a private temporary file to import."""
        data = values.pop("dbdata", None)
        if data is None or action != names.IMPORT_IMAGE_HASH_DATABASE:
            return None
        if values.get("dbpath"):
            raise param_invalid("dbpath", "give dbpath or dbdata, not both.")
        if isinstance(data, str):
            data = data.encode("utf-8")
        fd, path = tempfile.mkstemp(dir=self.upload_dir, suffix=".hashlens-db")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        values["dbpath"] = path
        return Path(path)

    # -- the log --------------------------------------------------------------------------

    def _log(self, client: str, action: str, outcome: str, started: float) -> None:
        # No parameter values: they may be private (identifiers, paths, images) (ours);
        # no headers either (an X-Hashlens-Token must never reach the log).
        self.log_line(f"client={client} action={action.upper()} outcome={outcome} "
                      f"ms={(time.perf_counter() - started) * 1000:.1f}{self.log_tag}")


class _Answer:
    def __init__(self, answer: AciResponse, scope: _StoreScope | None = None):
        self.answer, self.scope = answer, scope


class _Stream:
    """A streamed XML answer; closing it ends the store scope and logs the request.

    A failure after the first batch cannot become an ERROR any more: the stream is cut
    (the connection closes without the end of the document), so the client sees an
    incomplete answer rather than a complete-looking wrong one."""

    def __init__(self, answer: AciResponse, scope: _StoreScope, on_close: Callable[[str], None]):
        self._answer, self._scope, self._on_close = answer, scope, on_close
        self._outcome = "SUCCESS (not sent)"

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._answer.chunks:
                yield chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")
        except HashlensError as exc:
            self._outcome = f"CUT {exc.failure.code}"
            raise
        self._outcome = "SUCCESS"

    def close(self) -> None:
        close = getattr(self._answer.chunks, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        self._scope.close()
        if self._scope.timed_out and self._outcome.startswith("CUT"):
            self._outcome = f"CUT {Failure.TIMEOUT.code}"
        self._on_close(self._outcome)


def _resume(head: list[bytes], rest: Iterator[str], source) -> Iterator[bytes | str]:
    """The chunks already read (as bytes), then the rest; closing it closes the source."""
    try:
        yield from head
        yield from rest
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _removing_afterwards(job, path: Path):
    """The job, then the staged upload it read removed, however it ended."""

    def run(store, cancelled):
        try:
            return job(store, cancelled)
        finally:
            path.unlink(missing_ok=True)

    return run


def _split_host(host: str) -> tuple[str, int | None]:
    host = host.strip()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    else:
        name, sep, port = host.rpartition(":")
        if not sep:
            name, port = host, None
    if port is not None:
        if not port.isdigit():
            return name, -1
        return name, int(port)
    return name, None


def _asked(environ, json_form: bool | None) -> tuple[str, bool]:
    """For a request refused before its parameters were read: the action it names (a
    known action is named in the answer even when its parameters are refused) and
    whether it asked for JSON, both read leniently from the URL (and a form body)."""
    uri = environ.get("REQUEST_URI", "")
    asked = requested_action(uri)
    name = names.canonical_action(asked) or _SERVER_ACTIONS.get((asked or "").lower(), ("UNKNOWN",))[0]
    if json_form is None:
        json_form = _declares_json(uri) or environ.get("hashlens.json", False)
    return name, bool(json_form)


def _declares_json(text: str) -> bool:
    """Whether a request asks for JSON, read leniently so that even a request that
    fails to parse gets its ERROR in the form it asked for."""
    return any(part.split("=", 1)[0].strip().lower() == "responseformat"
               and part.split("=", 1)[-1].strip().lower() == "json" for part in text.lstrip("/?").split("&"))


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise param_invalid(what, "the text is not valid UTF-8.") from None


# -- the actions only a server has ------------------------------------------------------


def _stamp(when: float | None) -> str:
    return time.strftime(_TIME_FORMAT, time.localtime(when)) if when else ""


def _action_lines(item: QueuedAction) -> list[str]:
    now = time.time()
    lines = ["<action>", f"  {response.element('token', item.token)}", f"  <status>{item.status.value}</status>",
             f"  <queued_time>{_stamp(item.queued_at)}</queued_time>",
             f"  <time_in_queue>{int((item.started_at or item.ended_at or now) - item.queued_at)}</time_in_queue>"]
    if item.started_at is not None:
        lines += [f"  <process_start_time>{_stamp(item.started_at)}</process_start_time>",
                  f"  <time_processing>{int((item.ended_at or now) - item.started_at)}</time_processing>"]
    if item.ended_at is not None:
        lines.append(f"  <process_end_time>{_stamp(item.ended_at)}</process_end_time>")
    if item.status is Status.FINISHED:
        lines += [f"  {line}" for line in item.result]
    if item.status is Status.ERROR and item.error is not None:
        lines += response.error_element(item.action, item.error, item.ended_at, indent="  ").rstrip("\n").split("\n")
    lines.append("</action>")
    return lines


def _queue_info(app: AciApp, environ, client: str, p: Params) -> str:
    """QueueInfo&QueueName=<action>&QueueAction=GetStatus|Stop|Cancel[&Token=T] (MS)."""
    queue_name = p.text("queuename")
    name = names.canonical_action(queue_name)
    if name not in QUEUED:
        raise param_invalid("queuename", f"'{queue_name}' is not a queue of this server; the queues are "
                                         + ", ".join(QUEUED) + ".")
    what = p.text("queueaction").lower()
    token = p.optional_text("token")
    if what == "getstatus":
        lines = [line for item in app.queue.actions(name, token) for line in _action_lines(item)]
        body = ["<actions>", *(f"  {line}" for line in lines), "</actions>"] if lines else ["<actions/>"]
        return response.success(names.QUEUE_INFO, body)
    if what in ("stop", "cancel"):
        app._check_admin(environ, client, f"QueueAction={what.capitalize()}")
        if what == "cancel":
            if token is None:
                raise param_missing("token")
            app.queue.cancel(name, token)
            return response.success(names.QUEUE_INFO, [response.element("token", token)])
        tokens = app.queue.stop(name, token)
        return response.success(names.QUEUE_INFO, [response.element("token", t) for t in tokens])
    raise param_invalid("queueaction", f"'{p.raw('queueaction')}' is not a queue action; use GetStatus, Stop "
                                       "or Cancel.")


def _get_status(app: AciApp, environ, client: str, p: Params) -> str:
    """GetStatus: a health check; what this server is and how busy its queues are (ours, after MS)."""
    lines = ["<product>Hashlens</product>", response.element("version", __version__),
             f"<aciport>{app.server_port}</aciport>", f"<acithreads>{app.settings.threads}</acithreads>",
             f"<readonly>{'true' if app.settings.read_only else 'false'}</readonly>", "<queues>"]
    for name in QUEUED:
        items = app.queue.actions(name)
        counts = {s: sum(1 for i in items if i.status is s) for s in Status}
        lines += ["  <queue>", f"    <name>{name}</name>",
                  *(f"    <{s.value.lower()}>{n}</{s.value.lower()}>" for s, n in counts.items()), "  </queue>"]
    lines.append("</queues>")
    return response.success(names.GET_STATUS, lines)


def _get_version(app: AciApp, environ, client: str, p: Params) -> str:
    return response.success(names.GET_VERSION, ["<productname>Hashlens</productname>",
                                           response.element("version", __version__)])


# What a helper process hands over to the primary (app.serve.workers): the queue's actions.
_PRIMARY_ONLY = {a.lower() for a in (*QUEUED, names.QUEUE_INFO, names.GET_STATUS)}

_SERVER_ACTIONS = {
    names.QUEUE_INFO.lower(): (names.QUEUE_INFO, _queue_info),
    names.GET_STATUS.lower(): (names.GET_STATUS, _get_status),
    names.GET_VERSION.lower(): (names.GET_VERSION, _get_version),
}
