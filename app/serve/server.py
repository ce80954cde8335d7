"""The running server: waitress for HTTP, a store connection per worker, the action
queue, the request log, and a clean stop.

waitress (pure-Python WSGI, maintained by the Pylons project) was chosen because it is
made for exactly this: a bounded pool of worker threads, request header and body size
limits enforced before the application sees a byte, buffering of slow clients in its
event loop so they cannot hold a worker, idle-connection timeouts, and no C extension
or external process to install (docs/serve.md)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import platformdirs
import waitress.server
import waitress.task

from app.sources import open_source
from app.serve.queue import ActionQueue
from app.serve.request_log import RequestLog
from app.serve.settings import ServeSettings
from app.serve.transport import AciApp, StorePool, Watchdog
from app.serve.workers import Forwarder, Handover, Helpers, bind_shared, can_share_port, helper_config

log = logging.getLogger("hashlens.serve")
LOG_BYTES = 5_000_000
LOG_BACKUPS = 5
HELPER_START_SECONDS = 60  # how long a start waits for its helper processes to serve
BACKLOG = 1024  # connections the kernel holds for accept (waitress's default)


# How long a thread waiting for the interpreter waits before the running thread is asked
# to let go (Python's default is 5 ms). waitress's event loop is such a thread: while
# worker threads run Python it waits, and the requests it has not read yet wait with it.
# 1 ms bounds that wait closer to one request's own work (docs/serve.md).
SWITCH_INTERVAL = 0.001


def dedicate_process() -> None:
    """Tune a process that does nothing but serve (the command line's, and each helper;
    not the window's, which serves beside its own work)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def default_log_path() -> Path:
    return Path(platformdirs.user_log_dir("hashlens", appauthor=False)) / "serve.log"


def open_store(url: str, read_only: bool):
    """The store for one worker: an existing one only (serving never creates a store)."""
    return open_source(url, read_only=read_only)


class _Dispatcher(waitress.task.ThreadedTaskDispatcher):
    """waitress's worker pool, closing each worker's store connection (and a helper's
    line to its primary) when the worker ends."""

    def __init__(self, stores: StorePool, forward: Forwarder | None = None):
        super().__init__()
        self._stores, self._forward = stores, forward

    def handler_thread(self, thread_no):
        try:
            super().handler_thread(thread_no)
        finally:
            self._stores.close_current()
            if self._forward is not None:
                self._forward.close_current()


class Server:
    """`hashlens serve` in-process: `start()` binds and serves on background threads
    (so a window or a test keeps its own thread), `stop()` ends it cleanly."""

    def __init__(self, settings: ServeSettings, *, gate: threading.Event | None = None,
                 forward: Forwarder | None = None, log_stream=None):
        """`forward` and `log_stream` make this a helper process of a primary
        (app.serve.workers): requests for the queue go to the primary, log lines to the stream."""
        self.settings = settings
        self._gate = gate
        self._forward = forward
        self._log_stream = log_stream
        self._helpers: Helpers | None = None
        self._handover: Handover | None = None
        self.queue: ActionQueue | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._log_handler: logging.Handler | None = None
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = self._server.effective_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def start(self) -> "Server":
        s = self.settings
        # Opening one store now reports a bad URL or an unreachable server before binding.
        open_store(s.store_url, s.read_only).close()
        self._start_log()
        stores = StorePool(lambda: open_store(s.store_url, s.read_only))
        if self._forward is None:
            self.queue = ActionQueue(lambda: open_store(s.store_url, s.read_only), lambda st: st.close(),
                                     workers=s.queue_workers, gate=self._gate, on_end=self._log_ended)
        self.watchdog = Watchdog()
        self.app = AciApp(s, stores, self.queue, self.watchdog, self.request_log.write, forward=self._forward)
        self._dispatcher = _Dispatcher(stores, self._forward)
        self._dispatcher.set_thread_count(s.threads)
        shared = self._forward is not None or (s.workers > 1 and can_share_port())
        try:
            # Several processes on one port: each binds it with SO_REUSEPORT (app.serve.workers).
            where = {"sockets": [bind_shared(s.host, s.port, BACKLOG, first=self._forward is None)]} if shared else {"host": s.host, "port": s.port}
            self._server = waitress.server.create_server(
                self.app, _dispatcher=self._dispatcher, **where, threads=s.threads, backlog=BACKLOG,
                connection_limit=s.connection_limit, channel_timeout=s.idle_timeout,
                # The request line and headers: a GET may carry base64 imagedata, up to
                # four times MaxInputString in all; beyond that waitress answers 431.
                max_request_header_size=max(262_144, 4 * s.max_input_string),
                # The body: the upload plus the other fields; beyond that waitress answers
                # 413 before reading it (reliability H5).
                max_request_body_size=s.max_upload_bytes * 2 + 4 * s.max_input_string,
                ident="Hashlens", expose_tracebacks=False, clear_untrusted_proxy_headers=True,
            )
        except BaseException:
            if self.queue is not None:
                self.queue.shutdown(1)
            self._dispatcher.shutdown(timeout=1)
            self._release()
            raise
        self.app.server_port = self.port
        if shared:
            self.app.log_tag = f" pid={os.getpid()}"
        if self.queue is not None:
            self.queue.token_prefix = f"{self._server.effective_host}:{self.port}"
        self._thread = threading.Thread(target=self._server.run, name="hashlens-serve", daemon=True)
        self._thread.start()
        if shared and self._forward is None:
            self._handover = Handover(self.app, stores.close_current)
            self._helpers = Helpers(s.workers - 1, helper_config(s, self._handover.address, self._handover.key,
                                                                 self.port), self.request_log.write_stamped)
            serving = self._helpers.wait_ready(HELPER_START_SECONDS)
            if serving < s.workers - 1:
                log.warning("%d of %d helper processes started", serving, s.workers - 1)
        if self._forward is None:
            log.info("serving %s on %s (read-only: %s, processes: %d)", _safe_url(s.store_url), self.url,
                     s.read_only, s.workers if shared else 1)
        return self

    @property
    def processes(self) -> int:
        """How many processes serve (this one and its helpers)."""
        return 1 + (len(self._helpers.pids) if self._helpers else 0)

    def _start_log(self) -> None:
        if self._log_stream is not None:
            self.request_log = RequestLog(None, stream=self._log_stream)
            path = None
        else:
            path = Path(self.settings.log_path) if self.settings.log_path else default_log_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.request_log = RequestLog(path, LOG_BYTES, LOG_BACKUPS)
        handler = self.request_log.handler()
        for name in ("hashlens.serve", "waitress"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        # waitress warns of queue depth under load; that is expected, not news.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.log_path = path
        self._log_handler = handler

    def _log_ended(self, item) -> None:
        """A queued action's outcome, in the request log beside the request that queued
        it (a token names no image or path, so it may be logged)."""
        outcome = "FINISHED" if item.error is None else f"ERROR {item.error.failure.code}"
        self.request_log.write(f"queued action={item.action.upper()} token={item.token} outcome={outcome} "
                               f"ms={(item.ended_at - (item.started_at or item.ended_at)) * 1000:.1f}")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (the command line's main thread)."""
        return self._stopped.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, cancel queued actions and stop the running ones (an import
        rolls back whole), let requests in progress finish, then close every connection."""
        if self._server is None or self._stopped.is_set():
            return
        server, deadline = self._server, time.monotonic() + timeout
        self._in_loop(lambda: waitress.server.wasyncore.dispatcher.close(server))
        if self._helpers is not None:
            # Helpers first: what they hand over is still answered while they finish.
            self._helpers.stop(max(0.5, deadline - time.monotonic()))
            self._handover.close()
        if self.queue is not None:
            self.queue.shutdown(max(0.5, deadline - time.monotonic()))
        self._dispatcher.shutdown(cancel_pending=True, timeout=max(0.5, deadline - time.monotonic()))
        # Let the event loop send what finished requests wrote before closing the sockets.
        while time.monotonic() < deadline and any(
                getattr(ch, "total_outbufs_len", 0) for ch in list(server._map.values())):
            time.sleep(0.02)
        self._in_loop(lambda: [d.handle_close() for d in list(server._map.values())])
        self._thread.join(max(0.5, deadline - time.monotonic()))
        log.info("stopped")
        self._release()
        self._stopped.set()

    def _in_loop(self, thunk) -> None:
        """Run `thunk` in the event loop's thread, woken through its pipe. When that pipe
        is already closed (the loop closes it after an error on it, and then runs no more
        thunks), run it here: stopping must close the sockets either way. Seen rarely
        under load, its cause not known (docs/serve.md)."""
        try:
            self._server.trigger.pull_trigger(thunk)
        except OSError as exc:
            log.warning("the event loop's wake-up pipe was closed (%s); stopping from this thread", exc)
            thunk()

    def _release(self) -> None:
        if hasattr(self, "watchdog"):
            self.watchdog.close()
        if hasattr(self, "app"):
            shutil.rmtree(self.app.upload_dir, ignore_errors=True)
        if self._log_handler is not None:
            for name in ("hashlens.serve", "waitress"):
                logging.getLogger(name).removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
            self.request_log.close()

    def flush_log(self) -> None:
        """Write every request logged so far to the log file (it is written in batches)."""
        self.request_log.flush()


def _safe_url(url: str) -> str:
    """The store URL without a password, for the log."""
    if "@" in url and "://" in url:
        scheme, _, rest = url.partition("://")
        creds, _, host = rest.rpartition("@")
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url
