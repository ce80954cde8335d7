"""Icons from `resources/`: line-art SVGs tinted to the current palette, and the app icon."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QIconEngine, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

_SIZES = (16, 20, 24, 32, 48)


@lru_cache(maxsize=None)
def _svg_text(name: str) -> str:
    return (resources.files("resources") / "icons" / f"{name}.svg").read_text(encoding="utf-8")


def _render(svg: bytes, size: int, height: int | None = None) -> QPixmap:
    # Rendering through QSvgRenderer (not QIcon(file)) lets us tint the strokes: Qt's
    # SVG renderer draws `currentColor` as black, which vanishes on a dark palette.
    renderer = QSvgRenderer(QByteArray(svg))
    image = QImage(size, size if height is None else height, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return QPixmap.fromImage(image)


class _TintedSvgEngine(QIconEngine):
    """Draws a tinted SVG at the size and mode asked, when first asked (issue 15: rendering
    every icon at every size and mode up front was about half of building the window)."""

    def __init__(self, normal: bytes, disabled: bytes):
        super().__init__()
        self._svgs = (normal, disabled)
        self._pixmaps: dict[tuple[int, int, bool], QPixmap] = {}

    def pixmap(self, size: QSize, mode, state) -> QPixmap:
        grey = mode == QIcon.Mode.Disabled
        key = (size.width(), size.height(), grey)
        pixmap = self._pixmaps.get(key)
        if pixmap is None:
            pixmap = self._pixmaps[key] = _render(self._svgs[grey], max(1, size.width()), max(1, size.height()))
        return pixmap

    def paint(self, painter: QPainter, rect, mode, state) -> None:
        painter.drawPixmap(rect, self.pixmap(rect.size(), mode, state))

    def availableSizes(self, mode=QIcon.Mode.Normal, state=QIcon.State.Off):
        return [QSize(s, s) for s in _SIZES]

    def clone(self) -> QIconEngine:
        engine = _TintedSvgEngine(*self._svgs)
        _ENGINES.append(engine)  # Qt owns the clone; keep its Python side alive with it
        return engine


# Every engine made, kept alive for as long as the icons that draw through them (a few dozen).
_ENGINES: list[_TintedSvgEngine] = []


@lru_cache(maxsize=512)
def _icon(name: str, color: str, disabled: str) -> QIcon:
    text = _svg_text(name)
    engine = _TintedSvgEngine(text.replace("currentColor", color).encode("utf-8"),
                              text.replace("currentColor", disabled).encode("utf-8"))
    _ENGINES.append(engine)
    return QIcon(engine)


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
