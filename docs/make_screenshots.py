"""Renders the real Hashlens window offscreen into docs/screenshots/*.png from a sample store.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_screenshots.py [--out docs/screenshots]

It writes main-window.png (1280×800), main-window-minimum.png (the smallest size the
window allows, about 1010×565: it fits a 1024×600 screen), filtered.png, image-removed.png, main-window-dark.png and
main-window-minimum-dark.png, near-phash.png (near results by distance), empty-store.png
(a store with no databases), export-progress.png (an export under way) and audit-big.png
and audit-progress.png (the Audit window on a big database: --big entries, 300,000 by
default, made by the sample generator, so a million-entry store is simulated by a
third of one; --big 0 leaves these two out).

The store is built here with the same app.services.actions the window uses: generated
pictures (shapes, gradients, text), a few near-duplicates, metadata at different
coverage, and some entries whose image data was removed.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from app.services import actions  # noqa: E402
from app.store import Store  # noqa: E402

SUBJECTS = ["harbour", "lighthouse", "market", "bridge", "garden", "station", "museum", "skyline", "forest",
            "cathedral", "stadium", "river", "airport", "beach", "library", "canal"]
CAMERAS = ["Nikon D850", "Canon R5", "Sony A7 IV", "Fujifilm X-T4"]
SOURCES = ["press-archive", "web-crawl", "partner-feed"]


def picture(seed: int, size=(320, 240)) -> Image.Image:
    """A colourful synthetic photo: a sky gradient, a horizon, shapes and a sun."""
    rnd = random.Random(seed)
    w, h = size
    top = (rnd.randrange(40, 200), rnd.randrange(80, 220), rnd.randrange(150, 255))
    bottom = (rnd.randrange(150, 255), rnd.randrange(100, 230), rnd.randrange(60, 200))
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    horizon = rnd.randrange(h // 2, h - 30)
    ground = (rnd.randrange(20, 120), rnd.randrange(60, 160), rnd.randrange(20, 90))
    draw.polygon([(0, horizon), *[(x, horizon - rnd.randrange(0, 50)) for x in range(0, w + 40, 40)], (w, h), (0, h)],
                 fill=ground)
    sun = (rnd.randrange(20, w - 60), rnd.randrange(10, horizon - 50))
    draw.ellipse([sun[0], sun[1], sun[0] + 44, sun[1] + 44], fill=(255, rnd.randrange(180, 240), 80))
    for _ in range(rnd.randrange(3, 7)):
        x, bw = rnd.randrange(0, w - 40), rnd.randrange(18, 50)
        bh = rnd.randrange(30, 110)
        color = tuple(rnd.randrange(30, 230) for _ in range(3))
        draw.rectangle([x, horizon - bh, x + bw, horizon + 5], fill=color)
        for wy in range(horizon - bh + 6, horizon - 4, 12):
            for wx in range(x + 4, x + bw - 6, 10):
                if rnd.random() < 0.6:
                    draw.rectangle([wx, wy, wx + 4, wy + 5], fill=(250, 240, 180))
    return img.filter(ImageFilter.SMOOTH)


def encode(img: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def build_sample_store(path: Path, count: int = 240) -> str:
    """A small store with two databases, near-duplicates, metadata and removed images."""
    url = "sqlite:///" + str(path)
    store = Store.open(url)
    rnd = random.Random(42)
    actions.create_database(store, "Press photos")
    actions.create_database(store, "Partner logos")
    originals = []
    for i in range(count):
        subject = SUBJECTS[i % len(SUBJECTS)]
        if i > 20 and rnd.random() < 0.18:
            # A near-duplicate of an earlier picture: re-encoded, resized or cropped.
            base_seed = rnd.choice(originals)
            img = picture(base_seed)
            kind = rnd.choice(["jpeg", "resize", "crop"])
            if kind == "resize":
                img = img.resize((256, 192))
            elif kind == "crop":
                img = img.crop((8, 6, 312, 234))
            data = encode(img, "JPEG", 70 if kind == "jpeg" else 88)
            label = f"{SUBJECTS[base_seed % len(SUBJECTS)]}-{base_seed:04d}-copy"
        else:
            originals.append(i)
            data = encode(picture(i), rnd.choice(["PNG", "JPEG"]))
            label = f"{subject}-{i:04d}"
        metadata = [("source", rnd.choice(SOURCES))]
        if rnd.random() < 0.6:
            metadata.append(("importance", rnd.choice(["high", "medium", "low"])))
        if rnd.random() < 0.3:
            metadata.append(("camera", rnd.choice(CAMERAS)))
        if rnd.random() < 0.1:
            metadata.append(("rights", "editorial use only"))
        actions.train_image(store, "Press photos", data=data, identifier=f"{rnd.getrandbits(128):032x}",
                            label=label, metadata=metadata)
    listing = actions.list_image_hashes(
        store, __import__("app.domain", fromlist=["ListingQuery"]).ListingQuery("Press photos"))
    for row in listing.rows[5::9]:
        actions.null_image_data(store, "Press photos", row.identifier)
    for i in range(12):
        img = Image.new("RGB", (128, 128), (255, 255, 255))
        d = ImageDraw.Draw(img)
        d.ellipse([14, 14, 114, 114], fill=tuple(rnd.randrange(0, 255) for _ in range(3)))
        d.rectangle([44, 44, 84, 84], fill=(255, 255, 255))
        actions.train_image(store, "Partner logos", data=encode(img), identifier=f"logo-{i:02d}",
                            label=f"partner {i}", metadata=[("partner", f"P{i:02d}")])
    store.close()
    return url


def wait(app, condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not settle in time")
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "screenshots"))
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--big", type=int, default=300_000, help="entries of the audited database (0: no audit shots)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    work = Path(tempfile.mkdtemp(prefix="hashlens-shots-"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication.instance() or QApplication(["hashlens"])
    QCoreApplication.setOrganizationName("HashlensScreenshots")
    QCoreApplication.setApplicationName("Hashlens")
    url = build_sample_store(work / "sample.db")

    from ui.main_window import MainWindow
    from ui.settings import Settings
    from ui.theme import ThemeManager

    theme = ThemeManager(app, args.theme)
    window = MainWindow(theme=theme, settings=Settings())
    window.resize(1280, 800)
    window.show()
    window.open_store(url)
    wait(app, lambda: window.model.rowCount() > 0 and window.model.count is not None)
    window.select_database("Press photos")
    wait(app, lambda: window.model.query.database == "Press photos" and not window.model.loading
         and window.model.rowCount() > 0)

    def settle(selection_row: int | None):
        if selection_row is not None:
            window.table.select_row(selection_row)
            wait(app, lambda: window.image_pane.showing_image or window.image_pane.message_text not in ("", "Loading image…"))
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    settle(2)
    window.grab().save(str(out / "main-window.png"))

    window.resize(1, 1)  # Qt keeps it at the smallest size the window allows
    settle(None)
    print(f"minimum window size {window.width()}×{window.height()}", flush=True)
    window.grab().save(str(out / "main-window-minimum.png"))
    window.resize(1280, 800)
    settle(None)

    window.filter_panel.meta_key.setEditText("importance")
    window.filter_panel.meta_mode.setCurrentIndex(window.filter_panel.meta_mode.findText("equals"))
    window.filter_panel.meta_value.setText("high")
    window.filter_panel.image_data.setCurrentIndex(1)
    window.filter_panel.flush()
    wait(app, lambda: window.model.query is not None and bool(window.model.query.filters)
         and not window.model.loading and window.model.count is not None)
    settle(1)
    window.grab().save(str(out / "filtered.png"))

    window.filter_panel.clear()
    window.filter_panel.image_data.setCurrentIndex(2)
    window.filter_panel.flush()
    wait(app, lambda: window.model.query is not None and bool(window.model.query.filters) and not window.model.loading)
    settle(0)
    window.grab().save(str(out / "image-removed.png"))

    if args.theme == "light":
        # The same first view in the dark palette, for the README's look-and-feel note.
        window.filter_panel.clear()
        wait(app, lambda: window.model.query is not None and not window.model.query.filters
             and not window.model.loading)
        theme.set_mode("dark")
        settle(2)
        window.grab().save(str(out / "main-window-dark.png"))
        window.resize(1, 1)
        settle(None)
        window.grab().save(str(out / "main-window-minimum-dark.png"))
        window.resize(1280, 800)
        theme.set_mode("light")
        settle(None)

    # Near results of the selected entry: a Distance column, nearest first, the entry kept.
    window.table.select_row(4)
    settle(None)
    window.filter_panel.distance.setValue(20)
    window.filter_panel.use_selected.click()
    wait(app, lambda: window.model.query is not None and window.model.query.reference is not None
         and not window.model.loading and bool(window.table.selected_rows()))
    settle(None)
    window.grab().save(str(out / "near-phash.png"))
    window.filter_panel.clear()
    wait(app, lambda: window.model.query is not None and not window.model.query.filters and not window.model.loading)

    window.shutdown()
    window.close()

    empty = MainWindow(theme=theme, settings=Settings())
    empty.resize(1280, 800)
    empty.show()
    from app.store import Store as _Store

    _Store.open("sqlite:///" + str(work / "empty.db")).close()
    empty.open_store("sqlite:///" + str(work / "empty.db"))
    wait(app, lambda: empty.session.store is not None and "no image-hash databases" in empty.empty.title.text())
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    empty.grab().save(str(out / "empty-store.png"))
    empty.shutdown()
    empty.close()

    if args.big:
        audit_shots(app, work, out, args.big)
    print(f"wrote {', '.join(p.name for p in sorted(out.glob('*.png')))} to {out}")
    return 0


def export_shot(app, store, work: Path, out: Path, count: int):
    """The export dialog's progress while the big database is written to CSV: count,
    percentage and time left."""
    from app.domain import ListingQuery
    from ui.export_dialog import ExportDialog

    dialog = ExportDialog(store, ListingQuery("Catalogue", maxresults=100), None, [], None, listing_count=count)
    dialog.show()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("csv"))
    dialog.path_edit.setText(str(work / "export.csv"))
    dialog.export_button.click()
    shots = []

    def caught() -> bool:
        task = dialog.task
        if task is not None and task.dialog is not None and task.dialog.isVisible() \
                and task.dialog.bar.maximum() * 0.2 < task.dialog.bar.value() < task.dialog.bar.maximum():
            shots.append(task.dialog.grab())  # at once: the export may end any moment
        return bool(shots)

    wait(app, caught, timeout=120)
    shots[0].save(str(out / "export-progress.png"))
    wait(app, lambda: dialog.task is None, timeout=300)
    dialog.close()
    return dialog  # kept by the caller: Qt may still deliver to it while events are processed


def audit_shots(app, work: Path, out: Path, count: int) -> None:
    """The Audit window on a big database: under way (one bar for the whole audit) and done."""
    from app.services.sample import generate_sample
    from app.store import Store
    from ui.audit_view import AuditWindow

    url = "sqlite:///" + str(work / "big.db")
    started = time.monotonic()
    with Store.open(url) as store:
        generate_sample(store, "Catalogue", count, seed=7, images=200)
    print(f"built {count:,} entries in {time.monotonic() - started:.0f} s", flush=True)
    # The export on a store of its own: its dialog's private job service closes what it opened.
    exporting = Store.open(url)
    keep = export_shot(app, exporting, work, out, count)
    store = Store.open(url)
    audit = AuditWindow(store, "Catalogue")
    audit.resize(1100, 760)
    audit.show()
    audit.run()
    wait(app, lambda: 0.3 < audit.progress.value() / audit.progress.maximum() < 0.9, timeout=600)
    audit.grab().save(str(out / "audit-progress.png"))
    wait(app, lambda: audit.result is not None, timeout=900)
    audit.tabs.setCurrentIndex(1)  # Findings
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    audit.grab().save(str(out / "audit-big.png"))
    audit.shutdown()
    audit.close()
    store.close()
    exporting.close()
    del keep


if __name__ == "__main__":
    sys.exit(main())
