"""What `hashlens serve` is told: address, limits, who may change the store, where files may be."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.domain import param_invalid

# Media Server's defaults (MS): MaxInputString 64,000 characters; uploads 10,000,000 bytes.
MAX_INPUT_STRING = 64_000
MAX_UPLOAD_BYTES = 10_000_000
DEFAULT_PORT = 14000  # Media Server's ACI port (MS)
LOOPBACK_CLIENTS = ("127.0.0.0/8", "::1")


def default_threads(workers: int) -> int:
    """HTTP worker threads per process when not told (docs/serve.md, "Threads and
    processes"): each process runs one thread of Python at a time, so threads past two
    (one in Python while the other waits for the store or a socket) add no throughput,
    only more threads for the event loop to wait behind for the interpreter, which is
    what made the slowest answers slow. One process alone keeps four, so that requests
    slowed by the store (bounded by the deadline) leave others a thread."""
    return 2 if workers > 1 else 4


@dataclass(frozen=True)
class ServeSettings:
    store_url: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    read_only: bool = False
    # Clients that may send write actions, as Media Server's AdminClients (MS): addresses or networks.
    admin_clients: tuple[str, ...] = LOOPBACK_CLIENTS
    # Folders inside which imagepath and dbpath are honoured; none means no paths at all (ours).
    allow_dirs: tuple[str, ...] = ()
    # Host header names accepted besides localhost and IP literals (DNS rebinding, reliability H2).
    allow_hosts: tuple[str, ...] = ()
    max_input_string: int = MAX_INPUT_STRING
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    deadline: float = 30.0  # seconds one request may spend in the store
    threads: int = 8  # HTTP worker threads, each with its own store connection
    queue_workers: int = 1  # threads running queued actions
    workers: int = 1  # processes serving the port (app.serve.workers); the command line defaults to the cores
    connection_limit: int = 200
    idle_timeout: int = 30  # seconds before an idle or stalled client connection is closed
    log_path: str | None = None
    # When set, every request must carry it in the X-Hashlens-Token header (reliability H4, ours).
    token: str | None = field(default=None, repr=False)
    admin_networks: tuple = field(init=False, repr=False, compare=False)
    allowed_dirs: tuple[Path, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        networks = []
        for item in self.admin_clients:
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise param_invalid("admin-clients", f"'{item}' is not an IP address or network "
                                                     "(such as 127.0.0.1, ::1 or 10.0.0.0/8).") from None
        object.__setattr__(self, "admin_networks", tuple(networks))
        dirs = []
        for item in self.allow_dirs:
            path = Path(item)
            if not path.is_absolute() or not path.is_dir():
                raise param_invalid("allow-dir", f"'{item}' is not an absolute path to an existing folder.")
            dirs.append(path.resolve())
        object.__setattr__(self, "allowed_dirs", tuple(dirs))
        for name in ("max_input_string", "max_upload_bytes", "threads", "queue_workers", "connection_limit",
                     "idle_timeout", "workers"):
            if getattr(self, name) < 1:
                raise param_invalid(name.replace("_", "-"), "must be 1 or more.")
        if not 0 <= self.port <= 65535:
            raise param_invalid("port", f"{self.port} is not a TCP port (0 to 65535).")
        if self.deadline <= 0:
            raise param_invalid("deadline", "must be more than 0 seconds.")

    def is_admin(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.admin_networks)


TOKEN_HEADER = "X-Hashlens-Token"


def load_or_create_token(path: str | Path) -> str:
    """The access token kept in `path` (reliability H4); a new one, from
    `secrets.token_urlsafe(32)`, when the file does not exist yet. The file is created
    whole (written under a temporary name, then linked into place, so a reader never sees
    half a token and a concurrent start never overwrites one) and readable by its owner
    only (mode 0600); an existing file that others may read is refused."""
    path = Path(path).expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".hashlens-token-")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temp, path)
            except FileExistsError:
                pass  # another server made it meanwhile: use that one
        finally:
            os.unlink(temp)
    if not path.is_file():
        raise param_invalid("token-file", f"'{path}' is not a file.")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise param_invalid("token-file", f"'{path}' may be read by other users; make it private first "
                                          f"(chmod 600 {path}).")
    token = path.read_text(encoding="utf-8", errors="replace").strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise param_invalid("token-file", f"'{path}' does not hold a token (one line of at least 16 characters "
                                          "without spaces); remove it to have a new one made.")
    return token
