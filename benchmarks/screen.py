"""Launch → rows on the screen, timed from screen captures under Xvfb (startup.py uses it).

Any two programs are measured the same way, whatever they are written in: each is started
on its own fresh X display (Xvfb, 1280×800×24, no window manager) with fresh settings
(XDG_CONFIG_HOME in a temporary folder), while a capturer on that display grabs the whole
screen every ~20 ms (a PySide6 QScreen.grabWindow over one X connection, ~12 ms a grab;
Pillow's ImageGrab reconnects every grab and took ~350 ms here). The capturer keeps the
frames that changed, and after the screen has been still for a while (or a deadline) finds
the first frame in which a table's rows are drawn: a vertical strip of the screen holding
at least ROWS_DRAWN lines of text at one constant pitch. Menus, toolbars, headers and form
panels hold fewer (the window's filter panel is 8 lines at one pitch); a page of rows at
1280×800 holds 17 (DB Browser for SQLite) to 30. The time is from just before the program's
process is started to that frame.

Needs the Debian packages `xvfb` (Xvfb) and, for the peer, `sqlitebrowser`; `missing()`
says which are absent, and the caller skips the measure with that message. With
HL_SCREEN_FRAMES=FOLDER every changed frame is saved there, the first with rows marked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SCREEN = "1280x800x24"
GRAB_EVERY_S = 0.02
STILL_S = 2.0  # the screen unchanged this long after rows are drawn: the run is over
DEADLINE_S = 30.0
ROWS_DRAWN = 12  # text lines at one pitch in one strip
STRIP = 64  # strip width in pixels (strips overlap by half)


def missing(peer: str | None = "sqlitebrowser") -> list[str]:
    """The programs this measure needs that are not installed, with their Debian packages."""
    need = {"Xvfb": "xvfb"}
    if peer:
        need[peer] = peer
    return [f"{program} (apt-get install {package})" for program, package in need.items() if not shutil.which(program)]


class Display:
    """A fresh Xvfb display, ready when entered (Xvfb writes its number to -displayfd once
    it accepts clients); stopped on exit."""

    def __enter__(self) -> str:
        read, write = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"],
                                     pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        number = b""
        try:
            while not number.endswith(b"\n"):
                chunk = os.read(read, 16)
                if not chunk:
                    raise RuntimeError(f"Xvfb exited ({self.proc.wait()}) before opening a display")
                number += chunk
        except BaseException:
            _stop(self.proc)
            raise
        finally:
            os.close(read)
        return ":" + number.decode().strip()

    def __exit__(self, *exc) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen, group: bool = False) -> None:
    """Terminate `proc` (its whole process group when `group`), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    try:
        send(signal.SIGTERM)
        proc.wait(5)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def time_to_rows(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Seconds from starting `argv` on a fresh display to its first frame with rows drawn,
    and the CPU seconds the program's process had used by then (read from /proc as each
    changed frame is kept; what a busy machine inflates least)."""
    with Display() as display, tempfile.TemporaryDirectory(prefix="hl-screen-") as home:
        env = dict(env or os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=home,
                   XDG_DATA_HOME=home, XDG_CACHE_HOME=home, XDG_RUNTIME_DIR=home)
        capturer = subprocess.Popen([sys.executable, __file__, "--capture"], env=env, text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        program = None
        try:
            if capturer.stdout.readline().strip() != "READY":
                raise RuntimeError(f"the screen capturer did not start: {capturer.stderr.read().strip()}")
            began = time.monotonic()
            program = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
            capturer.stdin.write(f"{began} {program.pid}\n")
            capturer.stdin.flush()
            out, err = capturer.communicate(timeout=DEADLINE_S + 60)
        finally:
            if program is not None:
                _stop(program, group=True)
            _stop(capturer)
        for line in out.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
                if os.environ.get("HL_SCREEN_FRAMES"):
                    print(f"  {os.path.basename(argv[0])}: {result}", file=sys.stderr)
                if result.get("rows_at") is None:
                    raise RuntimeError(f"{os.path.basename(argv[0])}: no rows on the screen within {DEADLINE_S:.0f} s")
                return result["rows_at"] - began, result["cpu_s"]
        raise RuntimeError(f"the screen capturer failed: {err.strip()}")


# -- the capturer (a child on the display) -----------------------------------------------------


def rows_drawn(gray) -> int:
    """The most text lines at one constant pitch in any vertical strip of a grayscale frame."""
    import numpy as np

    height, width = gray.shape
    best = 0
    for x in range(0, width - STRIP + 1, STRIP // 2):
        strip = gray[:, x:x + STRIP].astype(np.int16)
        ink = (strip.max(axis=1) - strip.min(axis=1)) > 90
        # Runs of pixel rows with ink: text lines are 5-30 px tall; taller runs are lines, borders.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], ink.view(np.int8), [0]))))
        tops = [int(a) for a, b in zip(edges[::2], edges[1::2]) if 5 <= b - a <= 30]
        run, pitch = 1, None
        for above, below in zip(tops, tops[1:]):
            step = below - above
            if pitch is not None and abs(step - pitch) <= 2:
                run += 1
            else:
                run, pitch = 2, step
            best = max(best, run)
    return best


def capture() -> None:
    """Grab the screen until it has been still for STILL_S after rows appear (or the
    deadline); print RESULT with the monotonic time of the first frame with rows drawn."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([])
    screen = app.primaryScreen()
    print("READY", flush=True)
    began, pid = sys.stdin.readline().split()
    began, pid = float(began), int(pid)
    frames, last, changed, grabs = [], None, began, 0
    while True:
        now = time.monotonic()
        grabs += 1
        image = screen.grabWindow(0).toImage()
        if last is None or image != last:
            frames.append((now, image, _cpu_s(pid)))
            last, changed = image, now
        if now - began > DEADLINE_S or (len(frames) > 1 and now - changed > STILL_S and _has_rows(frames[-1][1])):
            break
        time.sleep(GRAB_EVERY_S)
    first = next((i for i, (_, image, _) in enumerate(frames) if _has_rows(image)), None)
    rows_at, cpu_s = frames[first][0::2] if first is not None else (None, None)
    keep = os.environ.get("HL_SCREEN_FRAMES")  # a folder: keep the frames, to check what was judged
    if keep:
        for i, (at, image, _) in enumerate(frames):
            image.save(os.path.join(keep, f"{os.getpid()}-{i:03d}-{at - began:07.3f}s{'-rows' if i == first else ''}.png"))
    print("RESULT " + json.dumps({"rows_at": rows_at, "cpu_s": cpu_s, "frames": len(frames), "grabs": grabs}), flush=True)
    del app


def _cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds of process `pid` so far (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _has_rows(image) -> bool:
    import numpy as np
    from PySide6.QtGui import QImage

    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    data = np.frombuffer(gray.constBits(), np.uint8).reshape(gray.height(), gray.bytesPerLine())[:, :gray.width()]
    return rows_drawn(data) >= ROWS_DRAWN


if __name__ == "__main__" and sys.argv[1:] == ["--capture"]:
    capture()
