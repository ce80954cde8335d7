"""Renders the Media Server mirrors dialog offscreen into docs/screenshots/mirror-dialog.png.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_mirror_screenshot.py [--out docs/screenshots]

A stand-in Media Server (the one the tests use) serves two databases; they are pulled
twice, with changes on the server in between, and the dialog shows the changes.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.mediaserver.client import MediaServerClient  # noqa: E402
from app.mediaserver import mirror  # noqa: E402
from app.store import Store  # noqa: E402
from tests.standin import HashEntry, Standin  # noqa: E402
from ui.mirror_dialog import MirrorDialog  # noqa: E402

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
        finally:
            store.close()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
