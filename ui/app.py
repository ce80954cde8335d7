"""Starts the Hashlens window: the application object, palette, icon, error hook, store."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path

ORGANIZATION = "Hashlens"
APPLICATION = "Hashlens"
# The collector is off from start until the window has finished building after its first
# rows, or this long at the latest (a first page that never comes).
GC_OFF_AT_MOST_MS = 3000


def log_file() -> Path:
    import platformdirs

    folder = Path(platformdirs.user_log_dir("hashlens", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "hashlens-window.log"


def _configure_logging() -> Path | None:
    try:
        path = log_file()
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None  # no writable log folder: messages still reach the dialogs
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("hashlens")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def create_application(argv: list[str]):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["hashlens", *argv])
    # Workers call back into Python from SQLite for every row of a pHash filter (the
    # Hamming UDF), and the GUI thread needs the GIL for every cell it paints: a 1 ms
    # switch interval (default 5 ms) kept a 1,000-row repaint during such a count at
    # ~18 ms instead of ~40-50 ms here (measured with benchmarks/window.py's setup).
    sys.setswitchinterval(0.001)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Hashlens")
    return app  # its window icon is set by start(), after the first rows


def build_window(store_url: str | None = None, read_only: bool = False, log_path: Path | None = None):
    """The main window with its store opening; the caller shows it and runs the loop."""
    from app.sources import resolve_store_url
    from ui.main_window import MainWindow
    from ui.settings import Settings
    from ui.theme import ThemeManager
    from PySide6.QtWidgets import QApplication

    settings = Settings()
    theme = ThemeManager(QApplication.instance(), settings.theme())
    try:
        url, failure = resolve_store_url(store_url), None
    except Exception as exc:  # a broken $HASHLENS_STORE must not stop the window opening
        url, failure = None, exc
    reason = "Hashlens was started with --read-only" if read_only else None
    # The store opens (and reads the first page) while the window is built.
    window = MainWindow(force_read_only=read_only, theme=theme, settings=settings, log_path=log_path,
                        open_url=url, open_read_only=read_only, open_reason=reason)
    if os.environ.get(SMOKE_ENV) == "1":
        # No one is there to answer "Create a new store?": the smoke run says it was asked
        # and answers yes, as a person starting a fresh install would.
        window.prompter.create_store = _smoke_create_store
    if failure is not None:
        window.presenter.show_error(failure, "Open store")
    elif not window.opening_started:  # a new store file: the person is asked first
        window.open_store(url, read_only=read_only, reason=reason)
    return window


def start(argv: list[str], store_url: str | None = None, read_only: bool = False):
    """Everything `run` does before the event loop: returns (application, window)."""
    # Issue 15: no cyclic collection before the first rows. The imports and the window made
    # ~80 young and ~7 middle collections that found next to nothing and cost ~10 ms of CPU
    # before the first rows (measured here); it goes back on right after them (below).
    gc.disable()
    # The store layer before Qt (issue 15): once PySide6 is imported it reads the source of
    # every module an import statement names (its __feature__ check), but not of those
    # imported before it; peewee and the standard modules only the store uses were ~5 ms
    # of that here. The window needs them for its first page either way.
    from app import sources  # noqa: F401
    from app.services import actions  # noqa: F401

    app = create_application(argv)
    path = _configure_logging()
    window = build_window(store_url, read_only, log_path=path)
    window.presenter.install_excepthook()
    from PySide6.QtCore import QTimer

    from ui.icons import app_icon

    window.finished_building.connect(_sweep_export_folder)  # after the first rows
    window.finished_building.connect(gc.enable)
    # An X11 window draws every size of its icon when it is set: after the first rows too.
    # Set for the application only: the window and the dialogs take it from there.
    window.finished_building.connect(lambda: app.setWindowIcon(app_icon()))
    QTimer.singleShot(GC_OFF_AT_MOST_MS, gc.enable)
    window.show()
    # Move everything made so far (modules, classes, Qt wrappers) out of the collector's
    # reach: a full collection then scans only what browsing creates. Measured on a
    # 1,000,000-entry store with 1,000-row pages: full collections took ~100 ms (a
    # visible stall while paging) before, ~10-25 ms after.
    gc.freeze()
    return app, window


def _sweep_export_folder() -> None:
    """Remove temporary files a killed export left in the last export folder."""
    from PySide6.QtCore import QSettings

    from app.exports.atomic import sweep_stale

    folder = QSettings().value("export/last_folder", "", type=str)
    if folder:
        sweep_stale(folder)


# Set to 1 by the smoke tests of installed builds (wheel, bundle, .deb): the window says
# which store it opened on stdout and leaves through the normal exit path.
SMOKE_ENV = "HASHLENS_SMOKE_TEST"


def _smoke_create_store(path) -> bool:
    print(f"hashlens-smoke: asked to create {path}; yes", flush=True)
    return True


def _leave_when_store_settles(app, window) -> None:
    def opened(_store) -> None:
        print(f"hashlens-smoke: opened {window.session.url}", flush=True)
        app.exit(0)

    def failed(error) -> None:
        print(f"hashlens-smoke: failed {getattr(error, 'description', error)}", flush=True)
        app.exit(1)

    window.session.opened.connect(opened)
    window.session.open_failed.connect(failed)


def run(argv: list[str], store_url: str | None = None, read_only: bool = False) -> int:
    """The GUI entry point: `hashlens` with no subcommand and `hashlens-gui` land here."""
    app, window = start(argv, store_url, read_only)
    if os.environ.get(SMOKE_ENV) == "1":
        _leave_when_store_settles(app, window)
    code = 1
    try:
        code = app.exec()
        return code
    finally:
        window.presenter.uninstall_excepthook()
        if not window.shutdown():
            # A worker is stuck in a statement nothing could interrupt (a dead server
            # link): Qt would wait for it forever on the way out. Settings are saved.
            logging.getLogger("hashlens.ui").error("leaving with a worker still running")
            logging.shutdown()
            os._exit(code)
