"""Render the app icon from resources/hashlens.svg into hicolor PNG sizes, .ico and .icns."""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

# The sizes the freedesktop icon theme spec lists for apps; Windows and macOS take theirs.
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICON_NAME = "io.github.hashlens.Hashlens"


def render_png(svg: bytes, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise SystemExit("render_icons: resources/hashlens.svg is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("svg", type=Path)
    parser.add_argument("out", type=Path, help="folder for hicolor/SIZExSIZE/apps/NAME.png, NAME.ico, NAME.icns")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(["render_icons"])  # noqa: F841 - Qt needs one
    svg = args.svg.read_bytes()
    largest = None
    for size in HICOLOR_SIZES:
        target = args.out / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        data = render_png(svg, size)
        target.write_bytes(data)
        largest = data
    scalable = args.out / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    scalable.write_bytes(svg)
    image = Image.open(io.BytesIO(largest))
    image.save(args.out / "hashlens.ico", sizes=[(s, s) for s in ICO_SIZES])
    image.save(args.out / "hashlens.icns")
    print(f"render_icons: {len(HICOLOR_SIZES)} PNG sizes, .ico and .icns in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
