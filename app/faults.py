"""Deterministic fault hooks for kill and failure tests (SQLite's "fail at step n").

`checkpoint(name)` does nothing unless HASHLENS_FAULTS names it, for example
`HASHLENS_FAULTS=export.row=137:kill` (SIGKILL this process at the 137th call) or
`export.fsync=1:ENOSPC` (raise OSError(ENOSPC) at the first call)."""

from __future__ import annotations

import errno
import os
import signal

_counts: dict[str, int] = {}


def _plan() -> dict[str, tuple[int, str]]:
    spec = os.environ.get("HASHLENS_FAULTS", "")
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, rest = item.partition("=")
        at, _, what = rest.partition(":")
        plan[name] = (int(at), what or "kill")
    return plan


def checkpoint(name: str) -> None:
    if "HASHLENS_FAULTS" not in os.environ:
        return
    step = _plan().get(name)
    if step is None:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] != step[0]:
        return
    what = step[1]
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    code = getattr(errno, what, None)
    if code is None:
        raise RuntimeError(f"fault injected at {name}")
    raise OSError(code, os.strerror(code))


def reset() -> None:
    _counts.clear()
