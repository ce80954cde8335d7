"""Worker processes that die with the process that started them.

A killed `hashlens train` left its pool workers alive with parent 1 for minutes,
holding the caller's pipes open (issue 10 item 6): a forked worker blocked on the task
queue never sees it close, because it holds the queue's other end itself. Each worker
therefore asks Linux to SIGKILL it when its parent dies (`PR_SET_PDEATHSIG`), and a
watchdog thread, the portable fallback, exits it once its parent pid changes."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# How often the fallback watchdog looks at the parent pid; it only matters where prctl
# is missing, and a second of orphan life is harmless.
WATCH_INTERVAL_S = 0.5


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here, in the worker: ctypes took 2 ms of every start-up that imports actions

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """A process pool initializer: pass the parent's pid (`initargs=(os.getpid(),)`)."""
    _set_parent_death_signal()
    # The parent may have died before the prctl took effect; then nothing would fire.
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="hashlens-lifeline", daemon=True).start()
