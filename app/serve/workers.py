"""Several processes serving one port (`hashlens serve --workers N`).

One Python process runs one thread of Python at a time, so on a machine with several
cores `hashlens serve` starts N-1 helper processes beside itself (the primary). Each
binds the same address with SO_REUSEPORT, so the kernel spreads new connections evenly
over the N listening sockets, and each has its own waitress, worker threads and store
connections. Only the primary holds the action queue: a helper answers the actions that
need no queue itself, and hands a request for a queued action, QueueInfo or GetStatus
over whole to the primary through a private local socket (authenticated with a random
key, in a folder only this user can read), with the client's address, so who-may-do-what
is decided once, by the primary, exactly as for a request it received itself.

A helper writes its request log lines to its standard output; the primary copies them
into the one log file. A helper ends when it is sent SIGTERM or when its standard input
closes (the primary is gone); the primary starts a helper again when one ends while it
is still serving (ours)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Listener
from pathlib import Path

from app.domain import Failure, HashlensError

log = logging.getLogger("hashlens.serve")

# Keys of a request's WSGI environ that cross to the primary (all of them plain text).
_ENVIRON_KEYS = ("REQUEST_METHOD", "REQUEST_URI", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
                 "REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SCRIPT_NAME")
RESTARTS_PER_MINUTE = 5  # a helper that keeps dying is not started again past this
READY = "hashlens-helper-ready"  # a helper's first line once it serves


def wait_for_stop(stop: threading.Event, step: float = 0.25) -> None:
    """Wait until `stop` is set, by a signal handler or another thread. The system gives
    a signal to any thread of the process; Python runs its handler in the main thread, and
    only when that thread next runs Python code, so a main thread blocked in a plain
    `wait()` would never see a signal that landed on a serving thread. Waking every
    `step` seconds lets the handler run."""
    while not stop.wait(step):
        pass


def can_share_port() -> bool:
    """Whether several processes can serve one port here (Linux and the BSDs, not a
    frozen bundle, whose executable cannot run a helper's Python)."""
    return hasattr(socket, "SO_REUSEPORT") and not getattr(sys, "frozen", False)


def bind_shared(host: str, port: int, backlog: int, *, first: bool = True) -> socket.socket:
    """A listening socket on host:port that other processes of this user can bind too.

    `first` (the primary): the port must be free. It is bound once without SO_REUSEPORT
    to find out, because another server of this user that shares its port would otherwise
    be joined silently and the two would split the connections."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0,
                                                         socket.AI_PASSIVE)[0]
    if first:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)  # OSError (address in use) when the port is taken
            address = probe.getsockname()  # port 0: the free port the system chose
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


# -- the primary's side ------------------------------------------------------------------


class Handover:
    """Where helpers hand requests over: a local socket in a private folder; each
    connection is served by its own thread, which calls the primary's WSGI app."""

    def __init__(self, app: Callable, on_thread_end: Callable[[], None]):
        self._app, self._on_thread_end = app, on_thread_end
        self.folder = Path(tempfile.mkdtemp(prefix="hashlens-serve-handover-"))  # mode 0700
        self.address = str(self.folder / "primary.sock")
        self.key = secrets.token_bytes(32)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.key)
        self._closed = False
        # A connection is closed only by its own thread, when it ends: close() shuts it
        # down (the thread then reads the end of the stream) and waits for the thread.
        # Closing it from close() raced the thread still reading it: a descriptor closed
        # twice (EBADF), or a read on a number the system had meanwhile given to another file.
        self._lock = threading.Lock()
        self._connections: dict = {}  # connection -> the thread serving it
        self._thread = threading.Thread(target=self._accept, name="hashlens-handover", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except Exception:  # noqa: BLE001 (a failed handshake, or closing)
                if self._closed:
                    return
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                thread = threading.Thread(target=self._serve, args=(conn,), name="hashlens-handover-conn",
                                          daemon=True)
                self._connections[conn] = thread
            thread.start()

    def _serve(self, conn) -> None:
        try:
            while True:
                try:
                    environ, body = conn.recv()
                except (EOFError, OSError):
                    return
                conn.send(self._call(environ, body))
        except (EOFError, OSError):
            return
        finally:
            with self._lock:
                self._connections.pop(conn, None)
                conn.close()
            self._on_thread_end()

    def _call(self, environ: dict, body: bytes) -> tuple[str, list, bytes]:
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                                   "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
                                   "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False})
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]

        result = self._app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return started[0], started[1], data

    def close(self) -> None:
        self._closed = True
        try:
            # Wake the accepting thread: a connection that is closed at once.
            Client(self.address, family="AF_UNIX", authkey=self.key).close()
        except Exception:  # noqa: BLE001
            pass
        self._listener.close()
        self._thread.join(5)
        with self._lock:  # no connection is added now: the accepting thread has ended
            threads = list(self._connections.values())
            for conn in self._connections:
                _shut(conn)
        deadline = time.monotonic() + 5
        for thread in threads:  # each closes its own connection and store connection
            thread.join(max(0.0, deadline - time.monotonic()))
        shutil.rmtree(self.folder, ignore_errors=True)


def _shut(conn) -> None:
    """Wake a thread blocked reading `conn`: it reads the end of the stream."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Helpers:
    """The helper processes: started, their log lines copied, restarted, stopped."""

    def __init__(self, count: int, config: dict, log_line: Callable[[str], None]):
        self._config, self._log_line = config, log_line
        self._stopping = False
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}
        self._copiers: dict[int, threading.Thread] = {}
        self._ready: dict[int, threading.Event] = {}
        self._started_at: list[float] = []
        for slot in range(count):
            self._start(slot)

    def wait_ready(self, timeout: float) -> int:
        """Wait until every helper serves (or has ended); how many serve."""
        deadline = time.monotonic() + timeout
        for event in list(self._ready.values()):
            event.wait(max(0.0, deadline - time.monotonic()))
        return sum(1 for slot, event in self._ready.items() if event.is_set() and self._procs[slot].poll() is None)

    def _start(self, slot: int) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen([sys.executable, "-c", "from app.serve.workers import helper_main; helper_main()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        proc.stdin.write(json.dumps(self._config).encode() + b"\n")
        proc.stdin.flush()  # stdin stays open: the helper ends when it closes
        self._procs[slot] = proc
        self._ready[slot] = threading.Event()
        self._started_at.append(time.monotonic())
        copier = threading.Thread(target=self._copy_log, args=(slot, proc), name=f"hashlens-helper-{slot}",
                                  daemon=True)
        self._copiers[slot] = copier
        copier.start()

    def _copy_log(self, slot: int, proc: subprocess.Popen) -> None:
        ready = self._ready[slot]
        for line in proc.stdout:
            text = line.decode("utf-8", "replace").rstrip("\n")
            if not ready.is_set() and text == READY:
                ready.set()
                continue
            self._log_line(text)
        proc.wait()
        ready.set()  # nobody waits for a helper that has ended
        with self._lock:
            if self._stopping:
                return
            recent = [t for t in self._started_at if t > time.monotonic() - 60]
            if len(recent) >= RESTARTS_PER_MINUTE * max(1, len(self._procs)):
                log.error("helper %d ended with status %s and is not started again (it keeps ending)",
                          slot, proc.returncode)
                return
            log.warning("helper %d ended with status %s; starting it again", slot, proc.returncode)
            self._start(slot)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values()]

    def stop(self, timeout: float) -> None:
        """SIGTERM to every helper: each stops accepting and finishes its requests."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for copier in list(self._copiers.values()):
            copier.join(max(0.1, deadline - time.monotonic()))  # the helpers' last log lines
        for proc in procs:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass


def helper_config(settings, address: str, key: bytes, port: int) -> dict:
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.init}
    fields.update(port=port, workers=1, log_path=None)
    return {"settings": fields, "handover": address, "key": key.hex()}


# -- a helper's side ---------------------------------------------------------------------


class Forwarder:
    """A helper's line to the primary: one connection per worker thread."""

    def __init__(self, address: str, key: bytes):
        self._address, self._key = address, key
        self._local = threading.local()

    def __call__(self, environ: dict, body: bytes) -> tuple[str, list, bytes]:
        plain = {k: environ[k] for k in _ENVIRON_KEYS if isinstance(environ.get(k), str)}
        plain.update({k: v for k, v in environ.items() if k.startswith("HTTP_") and isinstance(v, str)})
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = self._local.conn = Client(self._address, family="AF_UNIX", authkey=self._key)
                conn.send((plain, body))
                return conn.recv()
            except (OSError, EOFError) as exc:
                self.close_current()
                if attempt == 2:
                    raise HashlensError(Failure.CANCELLED, "The server is shutting down; the request was not "
                                                           "handled.") from exc
        raise AssertionError("unreachable")

    def close_current(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            try:
                conn.close()
            except OSError:
                pass


def helper_main() -> None:
    """A helper process: its configuration is one JSON line on standard input."""
    from app.serve.server import Server, dedicate_process
    from app.serve.settings import ServeSettings

    dedicate_process()
    config = json.loads(sys.stdin.readline())
    values = config["settings"]
    for name in ("admin_clients", "allow_dirs", "allow_hosts"):
        values[name] = tuple(values[name])
    settings = ServeSettings(**values)
    forwarder = Forwarder(config["handover"], bytes.fromhex(config["key"]))
    server = Server(settings, forward=forwarder, log_stream=sys.stdout)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin():
        sys.stdin.read()  # returns when the primary closes it or ends
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 (said on stderr; the primary serves on without this helper)
        print(f"hashlens serve helper: cannot serve: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    wait_for_stop(stop)
    server.stop()
