"""The request log of `hashlens serve`: one line per request, written off the request path.

A request only appends its line to an in-memory list (no lock held across I/O, no
formatting machinery, no flush); one writer thread writes what has gathered every
quarter second, or at once when told (`flush`), and rotates the file by size as
`logging.handlers.RotatingFileHandler` does (`serve.log`, `serve.log.1`, …). Under load
that is one write and one flush per batch instead of per request. The server's other
messages (start, stop, waitress's own warnings) go through `handler()` into the same
file in the same order."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

FLUSH_EVERY = 0.25  # seconds a line may wait before it is written


class RequestLog:
    """The log file at `path`, rotated past `max_bytes` with `backups` kept; or, with
    `stream` (a helper process's standard output), lines written there, unrotated."""

    def __init__(self, path: Path | None, max_bytes: int = 0, backups: int = 0, *, stream=None):
        self.path = Path(path) if path is not None else None
        self.max_bytes, self.backups = (max_bytes, backups) if stream is None else (0, 0)
        self._stream = stream
        self._lines: deque[str] = deque()
        self._second, self._stamp = -1, ""
        self._io = threading.Lock()  # held while writing or rotating the file
        self._wake = threading.Event()
        self._closed = False
        self._file = stream if stream is not None else open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._size = 0 if stream is not None else self._file.tell()
        self._thread = threading.Thread(target=self._run, name="hashlens-serve-log", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        """One line (without its newline), stamped with the local time now."""
        now = time.time()
        second = int(now)
        if second != self._second:  # the date and time change once a second, not per request
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        self._lines.append(f"{self._stamp},{int(now % 1 * 1000):03d} {text}\n")

    def write_stamped(self, line: str) -> None:
        """A line already stamped (one a helper process logged)."""
        self._lines.append(line + "\n")

    def flush(self) -> None:
        """Write every line appended so far (tests, and stopping)."""
        with self._io:
            self._drain()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(5)
        with self._io:
            self._drain()
            if self._stream is None:
                self._file.close()

    def handler(self) -> logging.Handler:
        """A logging handler writing into this log (for the server's occasional messages)."""
        log = self

        class _Handler(logging.Handler):
            def emit(self, record):
                try:
                    log.write(f"{record.levelname} {record.name} {record.getMessage()}")
                except Exception:  # noqa: BLE001 (logging must never raise into the server)
                    self.handleError(record)

        return _Handler()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_EVERY)
            if self._lines:
                with self._io:
                    self._drain()

    def _drain(self) -> None:
        if self._file.closed:
            return
        lines = self._lines
        while lines:
            batch = []
            try:
                while len(batch) < 10_000:
                    batch.append(lines.popleft())
            except IndexError:
                pass
            text = "".join(batch)
            if self.max_bytes and self._size + len(text) > self.max_bytes and self._size > 0:
                self._rotate()
            try:
                self._file.write(text)
            except (OSError, ValueError):
                return  # the primary is gone (a helper's pipe): nothing to keep the lines for
            self._size += len(text.encode("utf-8")) if not text.isascii() else len(text)
        try:
            self._file.flush()
        except (OSError, ValueError):
            pass

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._size = 0
