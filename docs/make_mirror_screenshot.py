"""Renders mirrors offscreen: the main window browsing a mirror with its Changes view, and the Media Server mirrors dialog.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_mirror_screenshot.py [--out docs/screenshots]

A stand-in Media Server (the one the tests use) serves two databases; they are pulled
twice, with changes on the server in between. It writes mirror-window.png (1280×800: the
picker's server mark, the mirror in the table, the Changes view docked below),
changes-view.png (the Changes view alone) and mirror-dialog.png.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QCoreApplication, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.mediaserver.client import MediaServerClient  # noqa: E402
from app.mediaserver import mirror  # noqa: E402
from app.store import Store  # noqa: E402
from tests.standin import HashEntry, Standin  # noqa: E402
from ui.mirror_dialog import MirrorDialog  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402

SUBJECTS = ["harbour", "lighthouse", "market", "bridge", "garden", "station", "museum", "skyline"]


def press_photos(count: int) -> list[HashEntry]:
    rnd = random.Random(7)
    return [HashEntry(f"{rnd.getrandbits(128):032x}", f"{SUBJECTS[i % len(SUBJECTS)]}-{i:04d}", rnd.random() > 0.2,
                      [("source", rnd.choice(["press-archive", "web-crawl"])), ("importance", "high")])
            for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).parent / "screenshots"))
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
        QCoreApplication.setOrganizationName("HashlensScreenshots")
        photos = press_photos(1800)
        server = Standin({"PressPhotos": photos, "PartnerLogos": press_photos(40)}).start()
        store = Store.open(f"sqlite:///{folder}/store.db")
        client = MediaServerClient(server.url)
        try:
            for name in ("PressPhotos", "PartnerLogos"):
                mirror.pull_mirror(store, client, name, page_size=500)
            store.create_database("Local archive")  # a local database beside the mirrors
            photos[3].label = "harbour-0003-retouched"
            photos[10].has_image_data = False
            photos[12].metadata = [("source", "press-archive"), ("importance", "low")]
            del photos[20]
            photos.append(HashEntry("4f1c9e7a0b3d4c6e8f2a1b0c9d8e7f6a", "skyline-1800", True, [("source", "partner")]))
            report = mirror.pull_mirror(store, client, "PressPhotos", page_size=500)
            dialog = MirrorDialog(store)
            dialog.url_combo.setCurrentText(server.url)
            dialog.databases_edit.setText("PressPhotos, PartnerLogos")
            dialog.status.setText(report.text())
            dialog.refresh_mirrors(select="PressPhotos")
            dialog.show()
            app.processEvents()
            dialog._on_mirror_list_selection_changed()
            app.processEvents()
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            dialog.grab().save(str(out / "mirror-dialog.png"))
            print(out / "mirror-dialog.png")
            dialog.close()
            store.close()
            window_shots(app, f"sqlite:///{folder}/store.db", out)
        finally:
            store.close()
            server.stop()
    return 0


def wait(app, condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def window_shots(app, url: str, out: Path) -> None:
    """The main window on the mirror 'PressPhotos', its Changes view shown below the table."""
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    window.open_store(url)
    wait(app, lambda: window.filter_panel.database is not None)
    window.select_database("PressPhotos")
    wait(app, lambda: window.filter_panel.database == "PressPhotos" and window.model.page is not None
         and not window.model.loading)
    window.changes_dock.show()
    wait(app, lambda: window.changes_view.changes is not None)
    for _ in range(10):
        app.processEvents()
    window.resizeDocks([window.changes_dock], [250], Qt.Orientation.Vertical)
    window.table.selectRow(3)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "mirror-window.png"))
    window.changes_view.grab().save(str(out / "changes-view.png"))
    print(out / "mirror-window.png")
    print(out / "changes-view.png")
    window.shutdown()
    window.close()


if __name__ == "__main__":
    sys.exit(main())
