"""Icons from `resources/`: line-art SVGs tinted to the current palette, and the app icon."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

_SIZES = (16, 20, 24, 32, 48)


@lru_cache(maxsize=None)
def _svg_text(name: str) -> str:
    return (resources.files("resources") / "icons" / f"{name}.svg").read_text(encoding="utf-8")


def _render(svg: bytes, size: int) -> QPixmap:
    # Rendering through QSvgRenderer (not QIcon(file)) lets us tint the strokes: Qt's
    # SVG renderer draws `currentColor` as black, which vanishes on a dark palette.
    renderer = QSvgRenderer(QByteArray(svg))
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return QPixmap.fromImage(image)


@lru_cache(maxsize=512)
def _icon(name: str, color: str, disabled: str) -> QIcon:
    icon = QIcon()
    for mode, tint in ((QIcon.Mode.Normal, color), (QIcon.Mode.Disabled, disabled)):
        svg = _svg_text(name).replace("currentColor", tint).encode("utf-8")
        for size in _SIZES:
            icon.addPixmap(_render(svg, size), mode)
    return icon


def icon(name: str, color: QColor | str | None = None) -> QIcon:
    """The named icon from resources/icons, drawn in the palette's text colour."""
    palette = QApplication.palette()
    if color is None:
        color = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    tint = QColor(color).name()
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    return _icon(name, tint, disabled)


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The application icon: the SVG where Qt's SVG plugin is present, else the PNG."""
    base = resources.files("resources")
    result = QIcon()
    svg = (base / "hashlens.svg").read_bytes()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pixmap = _render(svg, size)
        if not pixmap.isNull():
            result.addPixmap(pixmap)
    if result.isNull():
        pixmap = QPixmap()
        pixmap.loadFromData((base / "hashlens.png").read_bytes(), "PNG")
        result.addPixmap(pixmap)
    return result


def set_icon(target, name: str) -> None:
    """Give a button or action the named icon, remembered so a theme change can redraw it."""
    target.setProperty("icon_name", name)
    target.setIcon(icon(name))


def refresh_icons(root) -> None:
    """Redraw every icon set with `set_icon` under `root` (after the palette changed)."""
    from PySide6.QtCore import QObject

    for obj in [root, *root.findChildren(QObject)]:
        name = obj.property("icon_name") if hasattr(obj, "property") else None
        if name and hasattr(obj, "setIcon"):
            obj.setIcon(icon(name))


def icon_size() -> QSize:
    return QSize(20, 20)
