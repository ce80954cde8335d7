"""`hashlens serve`: answer the ACI over HTTP until SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading

from app.cli.common import positive_int, whole_number
from app.serve.settings import (DEFAULT_PORT, LOOPBACK_CLIENTS, MAX_INPUT_STRING, MAX_UPLOAD_BYTES, ServeSettings,
                                default_threads, load_or_create_token)
from app.store import resolve_store_url


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="answer the image-hash actions over HTTP, as Media Server does",
        description="Serve the store's image-hash actions on Media Server's ACI interface: "
                    "http://HOST:PORT/action=ListImageHashes&database=... Write actions are accepted only "
                    "from admin clients; imagepath and dbpath only inside --allow-dir folders. "
                    "Stop with Ctrl+C or SIGTERM: queued actions are cancelled, running ones stopped.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=whole_number(0), default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}, Media Server's ACI port; 0 picks a free one)")
    p.add_argument("--read-only", dest="serve_read_only", action="store_true",
                   help="refuse every action that changes the store")
    p.add_argument("--admin-clients", metavar="LIST", default=",".join(LOOPBACK_CLIENTS),
                   help="comma-separated addresses or networks allowed to send write actions "
                        "(default: loopback only)")
    p.add_argument("--allow-dir", action="append", default=[], metavar="FOLDER",
                   help="a folder inside which imagepath and dbpath are honoured (repeatable; default none)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name clients may use in the Host header besides localhost and IP addresses")
    p.add_argument("--max-input-string", type=positive_int, default=MAX_INPUT_STRING, metavar="N",
                   help=f"longest parameter value in characters (default {MAX_INPUT_STRING:,})")
    p.add_argument("--max-upload", type=positive_int, default=MAX_UPLOAD_BYTES, metavar="BYTES",
                   help=f"largest imagedata or dbdata upload (default {MAX_UPLOAD_BYTES:,})")
    p.add_argument("--deadline", type=positive_int, default=30, metavar="SECONDS",
                   help="longest time one request may spend in the store (default 30)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="HTTP worker threads per process (default 2 when several processes serve, else 4)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="processes serving the port, each with its own threads and store connections "
                        f"(default: the number of cores, here {os.cpu_count() or 1}; 1 where the system cannot "
                        "share a port between processes)")
    p.add_argument("--token-file", metavar="PATH",
                   help="require an access token in the X-Hashlens-Token header of every request: the token "
                        "in PATH, made (and the file created, readable by you only) when PATH does not exist. "
                        "Media Server clients send no token, so the default is none")
    p.add_argument("--log", metavar="PATH", help="request log file (rotated; default in your log folder)")
    p.set_defaults(handler=run_serve, needs_store=False)


def run_serve(_store, args) -> int:
    from app.serve.server import Server, dedicate_process
    from app.serve.workers import can_share_port, wait_for_stop

    token = load_or_create_token(args.token_file) if args.token_file else None
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers > 1 and not can_share_port():
        workers = 1  # one process serves (Windows, a frozen bundle): it keeps the one-process threads
    settings = ServeSettings(
        store_url=resolve_store_url(args.store), host=args.host, port=args.port,
        read_only=args.read_only or args.serve_read_only,
        admin_clients=tuple(a for a in args.admin_clients.split(",") if a.strip()),
        allow_dirs=tuple(args.allow_dir), allow_hosts=tuple(args.allow_host),
        max_input_string=args.max_input_string, max_upload_bytes=args.max_upload,
        deadline=float(args.deadline), threads=args.threads or default_threads(workers), log_path=args.log,
        workers=workers, token=token,
    )
    dedicate_process()
    server = Server(settings)
    try:
        server.start()
    except OSError as exc:
        print(f"hashlens: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Serving {settings.store_url.split('@')[-1]} at {server.url} "
          f"({'read-only' if settings.read_only else 'admin clients: ' + args.admin_clients}; "
          f"{server.processes} process{'es' if server.processes > 1 else ''}"
          f"{'; token required in the X-Hashlens-Token header' if token else ''}). "
          f"Log: {server.log_path}. Stop with Ctrl+C.", flush=True)
    try:
        wait_for_stop(stop_requested)
    finally:
        print("Stopping: cancelling queued actions, finishing requests in progress...", file=sys.stderr, flush=True)
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Stopped.", file=sys.stderr)
    return 0
