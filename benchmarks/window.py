"""The window on a 1,000,000-entry store: start-up, paging, filtering, jumps and stalls.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/window.py [--count 1000000] [--reps 30]

Builds (once) benchmarks/data/window-<count>.db with the sample generator, then starts the
real window in a child process (`ui.app.create_application` + `build_window`, as
`hashlens` does) and times, each beside a raw baseline measured in the same run:

- process start → first rows painted, against a child that shows the same page in a plain
  QTableView over rows fetched with raw sqlite3 (the least any Qt window can do);
- a page change to an uncached page, the next page (prefetched), a filter change and a
  jump to the last page, each until the rows are painted, against the raw sqlite3 query
  for the same rows;
- event-loop stalls, for 100- and 1,000-row pages in the light and the dark palette: a
  5 ms timer records every gap while a driver scrolls, pages, jumps, sorts by four columns
  both ways, selects rows, types a filter and filters by pHash, 60 steps a second; each gap
  over 50 ms is listed with the step that was running and the GUI thread's own CPU time in
  it (the rest of a gap is waiting for the GIL or, on a busy machine, for a core);
- the Python cost of showing a page already in memory (the page change and every data()
  call of the paint, GUI-thread CPU).

Targets (issues 3 and 15): first rows painted < 0.62 s (DB Browser for SQLite on the same
store in issue 15's run); page change and jump < 50 ms; no event-loop gap > 50 ms; Python
cost of showing a page < 5 ms. On a machine busier than its cores (load average), the
first paint is judged by the process's CPU time and gaps by the GUI thread's CPU time, and
the output says so. The script exits 1 when a target is missed.

--count 10000000 runs the same on 10 million entries (building that store once takes
about 10 minutes on a quiet machine, 42 minutes under load here, and 4.7 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_common import DATA, DATABASE, sample_store, status_mb  # noqa: E402
TARGET_FIRST_PAINT_S = 0.62
TARGET_PAGE_MS = 50.0
TARGET_STALL_MS = 50.0
# The Python the GUI thread spends showing a page already in memory (issue 15, item 2).
TARGET_PAGE_PYTHON_MS = 5.0
# Gaps longer than this are listed with the step that was running (--verbose: all of them).
REPORT_GAP_MS = 30.0


# -- the store -------------------------------------------------------------------------------


# -- helpers for the children ----------------------------------------------------------------


def _report(**values) -> None:
    print("RESULT " + json.dumps(values), flush=True)


_BEGAN = time.monotonic()


def _progress(what: str) -> None:
    """A line on stderr as each part of a child begins (the parent shows it if the child fails)."""
    print(f"[{time.monotonic() - _BEGAN:7.1f} s] {what}", file=sys.stderr, flush=True)


def _first_paint_probe(app, view, has_rows, on_painted):
    """Call on_painted(monotonic) right after the view first paints with rows in it."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class Probe(QObject):
        done = False

        def eventFilter(self, obj, event):
            if not self.done and event.type() == QEvent.Type.Paint and has_rows():
                self.done = True
                QTimer.singleShot(0, lambda: on_painted(time.monotonic()))
            return False

    probe = Probe(app)
    view.viewport().installEventFilter(probe)
    return probe


def baseline_child(path: str) -> None:
    """A plain QTableView over one page fetched with raw sqlite3: the floor for start-up."""
    from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QTableView

    app = QApplication(["baseline"])
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT e.id, e.identifier, e.label, e.has_image_data, e.phash, e.meta_count, e.trained_at FROM hl_entry e "
        "JOIN hl_database d ON d.id = e.database_id WHERE d.name = ? ORDER BY e.id LIMIT 100", (DATABASE,)
    ).fetchall()

    class Plain(QAbstractTableModel):
        def rowCount(self, parent=QModelIndex()):
            return 0 if parent.isValid() else len(rows)

        def columnCount(self, parent=QModelIndex()):
            return 0 if parent.isValid() else 7

        def data(self, index, role=Qt.ItemDataRole.DisplayRole):
            return str(rows[index.row()][index.column()]) if role == Qt.ItemDataRole.DisplayRole else None

    model = Plain()
    view = QTableView()
    view.setModel(model)
    view.resize(1400, 860)

    def painted(at):
        _report(first_paint=at)
        app.quit()

    _first_paint_probe(app, view, lambda: model.rowCount() > 0, painted)
    view.show()
    QTimer.singleShot(20000, app.quit)
    app.exec()


def start_window(path: str) -> tuple[object, object, dict] | None:
    """Start the real window as `hashlens` does and run it until it first paints rows:
    (app, window, results with 'app_created' and 'first_paint' monotonic times), or None
    when it never paints rows."""
    import tempfile

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from ui.app import start

    # Keep the benchmark's window state out of the person's own settings.
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="hl-bench-"))
    results: dict = {}
    probe = []

    def painted(at):
        results["first_paint"] = at
        QApplication.instance().exit(0)

    # The probe must be in place before the window first paints: hook window creation.
    from ui import main_window

    original = main_window.MainWindow.show

    def show(self):
        results["app_created"] = time.monotonic()
        probe.append(_first_paint_probe(QApplication.instance(), self.table,
                                        lambda: self.model.rowCount() > 0, painted))
        self.resize(1400, 860)
        original(self)

    main_window.MainWindow.show = show
    app, window = start([], "sqlite:///" + path)
    # A deadline that must not outlive the first paint: QCoreApplication.exit() called later
    # would make every event loop the measurements run return at once, for good.
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(lambda: app.exit(1))
    deadline.start(60000)
    code = app.exec()
    deadline.stop()
    if code != 0:
        return None
    return app, window, results


def page_cost(app, window, loop, pages: int = 20) -> dict:
    """The GUI thread's cost of showing a page already in memory, as a person paging back
    and forth sees it: the model swaps the page in and the window updates (pager, status,
    panes), then the table paints. `python_ms` is the Python part: the page change itself
    plus every data() call of the paint, timed inside them; `gui_cpu_ms` also counts Qt's
    own painting. Thread CPU time, so other processes on the machine do not count."""
    from PySide6.QtCore import QTimer

    model, table = window.model, window.table

    def settle(ms):
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    starts = [1 + i * model.page_size for i in range(pages)]
    for start in starts:  # fetched (and prepared) once: what follows is served from memory
        model.go_to(start)
        while model.loading:
            settle(20)
    original = type(model).data
    in_data = [0.0]

    def timed_data(self, index, role=0):
        began = time.thread_time()
        try:
            return original(self, index, role)
        finally:
            in_data[0] += time.thread_time() - began

    python, cpu = [], []
    type(model).data = timed_data
    try:
        for start in starts[::-1] + starts:
            settle(5)
            in_data[0] = 0.0
            began = time.thread_time()
            model.go_to(start)
            changed = time.thread_time()
            table.viewport().repaint()
            painted = time.thread_time()
            python.append((changed - began + in_data[0]) * 1000)
            cpu.append((painted - began) * 1000)
    finally:
        type(model).data = original
    return {"python_ms": python, "gui_cpu_ms": cpu}


def stall_run(app, window, loop, page_size: int, palette: str, near_target: str, rnd) -> dict:
    """Every event-loop gap over REPORT_GAP_MS while a driver pages, jumps, sorts,
    filters, selects and scrolls at 60 steps a second, in one page size and palette; each
    gap with the step running and the GUI thread's own CPU time within it (the rest of a
    gap is waiting: for the GIL held by a worker, or for a core on a busy machine)."""
    from PySide6.QtCore import QTimer

    model, table, panel = window.model, window.table, window.filter_panel

    def settle(ms):
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    _progress(f"stall run: {page_size}-row pages, {palette}")
    window.set_theme(palette)
    window.pager.page_size.setCurrentIndex(window.pager.page_size.findData(page_size))
    panel.clear()
    settle(600)
    while model.loading:
        settle(50)
    cost = page_cost(app, window, loop)
    _progress("  page cost measured; driving")
    model.first_page()
    settle(300)

    ticks = []  # (wall, GUI thread CPU) every 5 ms
    tick = QTimer()
    tick.setInterval(5)
    tick.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    bar = table.verticalScrollBar()
    total = model.count.value if model.count is not None else 1

    def scroll_steps():
        return [("scroll", v) for v in range(0, max(1, bar.maximum()) + 1, max(1, bar.maximum() // 60))]

    script = (scroll_steps()
              + [("next", None)] * 20 + [("previous", None)] * 5
              + [("jump", rnd.randrange(1, max(2, total))) for _ in range(10)]
              + [("last", None), ("first", None)]
              + [("sort", (col, desc)) for col in COLUMNS_FOR_SORT for desc in (False, True)] + [("sort", (0, False))]
              + [("wait", None)] * 10
              + [("select", rnd.randrange(0, page_size)) for _ in range(20)]
              + [("extend", rnd.randrange(0, page_size)) for _ in range(10)]
              + [("type", c) for c in "label-12"] + [("clear", None)] + [("wait", None)] * 20
              + [("near", None)] + [("scroll", v) for v in range(0, 3000, 100)] + [("clear", None)]
              + [("wait", None)] * 40)
    marks = []
    position = [0]

    def step():
        if position[0] >= len(script):
            driver.stop()
            QTimer.singleShot(300, loop.quit)
            return
        kind, value = script[position[0]]
        position[0] += 1
        marks.append((time.perf_counter(), f"{kind}#{position[0]}"))
        if kind == "scroll":
            bar.setValue(min(value, bar.maximum()))
        elif kind == "next":
            if model.has_next():
                model.next_page()
        elif kind == "previous":
            model.previous_page()
        elif kind == "jump":
            model.go_to(value)
        elif kind == "last":
            model.last_page()
        elif kind == "first":
            model.first_page()
        elif kind == "sort":
            column, desc = value
            table.sortByColumn(column, Qt_order(desc))
        elif kind in ("select", "extend"):
            if value < model.rowCount():
                table.select_row(value, extend=kind == "extend")
        elif kind == "clear":
            panel.clear()
        elif kind == "near":
            panel.near_hash.setText(near_target)
            panel.flush()
        elif kind == "type":
            panel.label_text.setText(panel.label_text.text() + value)
            panel.label_text.textEdited.emit(panel.label_text.text())

    driver = QTimer()
    driver.setInterval(16)
    driver.timeout.connect(step)
    tick.start()
    driver.start()
    loop.exec()
    tick.stop()
    panel.clear()
    while model.loading:
        settle(50)
    gaps = []
    for (w0, c0), (w1, c1) in zip(ticks, ticks[1:]):
        wall = (w1 - w0) * 1000
        if wall > REPORT_GAP_MS:
            during = next((label for t, label in reversed(marks) if t <= w0), "start")
            gaps.append((round(wall, 1), round((c1 - c0) * 1000, 1), during))
    walls = [(b[0] - a[0]) * 1000 for a, b in zip(ticks, ticks[1:])]
    busy = [(b[1] - a[1]) * 1000 for a, b in zip(ticks, ticks[1:])]
    return {"page_size": page_size, "palette": palette, "ticks": len(ticks), "steps": len(script),
            "max_gap_ms": max(walls, default=0.0), "max_gui_cpu_in_gap_ms": max(busy, default=0.0),
            "gaps": gaps, **cost}


# Columns the stall run sorts by (header clicks): label, pHash, metadata count, trained at.
COLUMNS_FOR_SORT = (2, 6, 5, 8)


def Qt_order(descending: bool):
    from PySide6.QtCore import Qt

    return Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder


def window_child(path: str, reps: int, page_sizes=(100, 1000), palettes=("light", "dark")) -> None:
    """The real window: first paint, then page, filter and jump timings and stalls."""
    from PySide6.QtCore import QEventLoop, QTimer

    started = start_window(path)
    if started is None:
        _report(error="the window never painted rows")
        return
    app, window, results = started
    model, table = window.model, window.table
    loop = QEventLoop()

    def wait_page(trigger, timeout_ms=20000) -> float:
        """ms from trigger to the new page painted (page_loaded, then a synchronous paint)."""
        done = []

        def on_page(_page):
            if not done and not model.loading and model.page is not None and model.page.query == model.query:
                table.viewport().repaint()
                done.append(time.perf_counter())
                loop.quit()

        model.page_loaded.connect(on_page)
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(timeout_ms)
        began = time.perf_counter()
        trigger()
        if not done:
            loop.exec()
        model.page_loaded.disconnect(on_page)
        if not done:
            raise RuntimeError("no page arrived in time")
        return (done[0] - began) * 1000

    def settle(ms=100):
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    total = model.count.value
    rnd = random.Random(7)
    _progress("first paint done; page changes")
    settle(300)

    # An uncached page anywhere in the listing ("go to entry N"); the first one reads a cold
    # file and is reported apart.
    results["page_cold"] = wait_page(lambda: model.go_to(rnd.randrange(1, total)))
    results["page_uncached"] = [wait_page(lambda: model.go_to(rnd.randrange(1, total))) for _ in range(reps)]
    # The next page: the model prefetched it while the person looked at this one (the
    # prefetch starts 120 ms after a page is shown).
    nexts = []
    for _ in range(reps):
        settle(250)
        nexts.append(wait_page(model.next_page))
    results["page_next"] = nexts
    # The last page, with the cache emptied each time so the store is really asked.
    jumps = []
    for _ in range(max(5, reps // 3)):
        wait_page(model.first_page)
        model._cache.clear()
        jumps.append(wait_page(model.last_page))
    results["jump_last"] = jumps
    _progress("filters")
    # A filter change: label contains a short random text, typed at once; beside it the
    # same first page of the same filter through raw sqlite3.
    panel = window.filter_panel
    raw = sqlite3.connect(path)
    db_id = raw.execute("SELECT id FROM hl_database WHERE name = ?", (DATABASE,)).fetchone()[0]
    filters, filters_raw = [], []
    for _ in range(max(5, reps // 3)):
        text = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(2))

        def apply(text=text):
            panel.label_text.setText(text)
            panel.flush()

        filters.append(wait_page(apply))
        began = time.perf_counter()
        raw.execute("SELECT id, identifier, label, has_image_data, phash, image_format, width, height, byte_size, "
                    "meta_count, trained_at FROM hl_entry WHERE database_id = ? AND label LIKE ? ESCAPE '!' "
                    "ORDER BY id LIMIT ?", (db_id, f"%{text}%", model.page_size)).fetchall()
        filters_raw.append((time.perf_counter() - began) * 1000)
        settle(50)
    results["filter_change"] = filters
    results["filter_raw"] = filters_raw
    wait_page(panel.clear)
    # A near-duplicate filter (pHash within 8 bits): no index serves it, every entry is
    # compared (SQLite calls a Python function per row).
    settle(300)
    target = model.row(0).phash_hex
    near = []
    for _ in range(3):
        def apply_near():
            panel.near_hash.setText(target)
            panel.flush()

        near.append(wait_page(apply_near, timeout_ms=60000))
        wait_page(panel.clear)
        model._cache.clear()
    results["near_filter"] = near
    _progress("near filter done")
    raw.close()

    # Stalls and the Python cost of showing a page, for each page size and palette.
    results["runs"] = [stall_run(app, window, loop, size, palette, target, rnd)
                       for palette in palettes for size in page_sizes]
    # VmHWM, not ru_maxrss: a child starts with its parent's ru_maxrss, which held the
    # store it had just built (1.4 GB reported at 10,000,000 entries on a first run).
    results["rss_mb"] = status_mb("VmHWM")
    window.shutdown()
    window.close()
    _report(**results)


# -- the parent --------------------------------------------------------------------------------


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_child(args: list[str]) -> tuple[float, dict]:
    """(monotonic start, the child's RESULT with 'cpu_s': its whole CPU time)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached, not compiled per run
    cpu = _children_cpu_s()
    began = time.monotonic()
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return began, dict(json.loads(line[len("RESULT "):]), cpu_s=_children_cpu_s() - cpu)
    raise SystemExit(f"child failed:\n{out.stdout}\n{out.stderr}")


def raw_page_ms(path: Path, reps: int) -> dict:
    """The same rows with raw sqlite3 and the best plain query: keyset on the primary key."""
    conn = sqlite3.connect(path)
    db_id = conn.execute("SELECT id FROM hl_database WHERE name = ?", (DATABASE,)).fetchone()[0]
    lo, hi = conn.execute("SELECT MIN(id), MAX(id) FROM hl_entry WHERE database_id = ?", (db_id,)).fetchone()
    rnd = random.Random(3)
    sql = ("SELECT id, identifier, label, has_image_data, phash, image_format, width, height, byte_size, "
           "meta_count, trained_at FROM hl_entry WHERE database_id = ? AND id >= ? ORDER BY id LIMIT ?")
    times = []
    for _ in range(reps * 5):
        began = time.perf_counter()
        rows = conn.execute(sql, (db_id, rnd.randint(lo, hi), 100)).fetchall()
        keys = [r[0] for r in rows if r[9]]
        if keys:
            conn.execute(f"SELECT entry_id, meta_key, meta_value FROM hl_metadata WHERE entry_id IN "
                         f"({','.join('?' * len(keys))}) ORDER BY entry_id, id", keys).fetchall()
        times.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    conn.execute(sql, (db_id, hi - 99, 100)).fetchall()
    last = (time.perf_counter() - began) * 1000
    conn.close()
    return {"page": statistics.median(times), "last": last}


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} ms   max {max(values):7.2f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--child", choices=["window", "baseline", "first-paint"])
    parser.add_argument("--path")
    parser.add_argument("--verbose", action="store_true", help="list every event-loop gap over 30 ms")
    parser.add_argument("--page-sizes", default="100,1000", help="page sizes of the stall runs (default 100,1000)")
    parser.add_argument("--palettes", default="light,dark", help="palettes of the stall runs (default light,dark)")
    args = parser.parse_args(argv)
    if args.child == "baseline":
        baseline_child(args.path)
        return 0
    if args.child == "window":
        window_child(args.path, args.reps, _sizes(args.page_sizes), args.palettes.split(","))
        return 0
    if args.child == "first-paint":  # startup.py: only the first rows painted
        started = start_window(args.path)
        _report(**started[2]) if started else _report(error="the window never painted rows")
        return 0

    path = DATA / f"window-{args.count}.db"
    sample_store(path, args.count, seed=1)
    raw = raw_page_ms(path, args.reps)
    base_start, base = run_child(["--child", "baseline", "--path", str(path)])
    start, res = run_child(["--child", "window", "--path", str(path), "--reps", str(args.reps),
                            "--page-sizes", args.page_sizes, "--palettes", args.palettes])
    if "error" in res:
        raise SystemExit(res["error"])
    first_paint = res["first_paint"] - start
    plain_paint = base["first_paint"] - base_start
    print(f"\nHashlens window on {args.count:,} entries ({path.name}), {args.reps} repetitions\n")
    print(f"process start → first rows painted   {first_paint * 1000:8.0f} ms   "
          f"(plain QTableView + raw sqlite3: {plain_paint * 1000:.0f} ms, ratio {first_paint / plain_paint:.2f}×; "
          f"target < {TARGET_FIRST_PAINT_S * 1000:.0f} ms, DB Browser for SQLite in issue 15's run)")
    print(f"  of which Python, imports and building the window   {(res['app_created'] - start) * 1000:6.0f} ms")
    print(f"raw sqlite3 page of 100 (+ metadata)  {raw['page']:8.2f} ms;  last page by key {raw['last']:.2f} ms")
    print(f"first page change after start (cold file pages): {res['page_cold']:.0f} ms\n")
    for name, key, ref in (("page change, uncached (go to N)", "page_uncached", raw["page"]),
                           ("next page (prefetched)", "page_next", raw["page"]),
                           ("jump to the last page", "jump_last", raw["last"])):
        values = res[key]
        print(f"{name:34s} {fmt(values)}   ({statistics.median(values) / max(ref, 1e-3):6.1f}× raw query; "
              f"target < {TARGET_PAGE_MS:.0f} ms)")
    flt, flt_raw = statistics.median(res["filter_change"]), statistics.median(res["filter_raw"])
    print(f"{'filter change (label contains)':34s} {fmt(res['filter_change'])}   (raw sqlite3, same filter and "
          f"page: median {flt_raw:.2f} ms; the window adds {flt - flt_raw:.1f} ms)")
    print(f"{'near-duplicate filter (pHash ≤ 8)':34s} {fmt(res['near_filter'])}   (a full scan; no target)")
    # On a machine shared with other work (load at or above its cores) a wall-clock gap
    # also counts the time the GUI thread waited for a core: stalls are then judged by the
    # GUI thread's own CPU time within each gap (what Hashlens spends), and the line says so.
    busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    stall_misses, cost_misses = 0, 0
    print(f"\nstalls: a driver pages (next ×20, previous ×5), jumps (go to N ×10, last, first), sorts "
          f"({len(COLUMNS_FOR_SORT)} columns both ways), selects (×30), types a filter, filters by pHash and "
          f"scrolls, 60 steps a second; a 5 ms timer measures every event-loop gap"
          f"{'; busy machine (load ' + format(os.getloadavg()[0], '.1f') + '): judged by GUI-thread CPU' if busy else ''}")
    for run in res["runs"]:
        over = [g for g in run["gaps"] if (g[1] if busy else g[0]) > TARGET_STALL_MS]
        stall_misses += len(over)
        python = statistics.median(run["python_ms"])
        cost_ok = python < TARGET_PAGE_PYTHON_MS
        cost_misses += not cost_ok
        print(f"  {run['page_size']:>5}-row pages, {run['palette']:<5}: longest gap {run['max_gap_ms']:6.1f} ms "
              f"(GUI thread busy at most {run['max_gui_cpu_in_gap_ms']:5.1f} ms of a gap); gaps over "
              f"{TARGET_STALL_MS:.0f} ms: {sum(1 for g in run['gaps'] if g[0] > TARGET_STALL_MS)} by the clock, "
              f"{sum(1 for g in run['gaps'] if g[1] > TARGET_STALL_MS)} by GUI CPU "
              f"{'ok' if not over else 'MISSED'}")
        print(f"        showing a page from memory: Python {python:.2f} ms median, {max(run['python_ms']):.2f} ms max "
              f"(target < {TARGET_PAGE_PYTHON_MS:.0f} ms {'ok' if cost_ok else 'MISSED'}); with Qt's painting "
              f"{statistics.median(run['gui_cpu_ms']):.2f} ms GUI-thread CPU")
        limit = REPORT_GAP_MS if args.verbose else TARGET_STALL_MS
        for wall, cpu, during in run["gaps"]:
            if wall > limit:
                print(f"        gap {wall:7.1f} ms (GUI thread busy {cpu:5.1f} ms) during {during}")
    print(f"peak RSS of the window process: {res['rss_mb']:.0f} MB")
    # The first paint by the clock only on an idle machine; on a busy one startup.py judges
    # it by CPU time (its first-paint children do nothing else).
    verdicts = [("first paint", first_paint < TARGET_FIRST_PAINT_S)] if not busy else []
    verdicts += [
        ("page change", statistics.median(res["page_uncached"]) < TARGET_PAGE_MS),
        ("jump", statistics.median(res["jump_last"]) < TARGET_PAGE_MS),
        ("stalls", stall_misses == 0),
        ("page cost", cost_misses == 0),
    ]
    print("\n" + "  ".join(f"{name}: {'ok' if ok else 'MISSED'}" for name, ok in verdicts))
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
