"""What `hashlens serve` is told: address, limits, who may change the store, where files may be."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from app.domain import param_invalid

# Media Server's defaults (MS): MaxInputString 64,000 characters; uploads 10,000,000 bytes.
MAX_INPUT_STRING = 64_000
MAX_UPLOAD_BYTES = 10_000_000
DEFAULT_PORT = 14000  # Media Server's ACI port (MS)
LOOPBACK_CLIENTS = ("127.0.0.0/8", "::1")


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
