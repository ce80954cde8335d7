"""Icons from `resources/`: line-art SVGs tinted to the current palette, and the app icon."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QIconEngine, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

_SIZES = (16, 20, 24, 32, 48)  # the sizes an icon says it has (any size is drawn when asked)


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


class _TintedSvg(QIconEngine):
    """Draws one SVG in a normal and a disabled tint, each size when first asked for: the
    window's ~35 icons in 5 sizes and 2 modes took ~50 ms of start-up rendered up front,
    and most of those pixmaps (menus not yet opened, high-DPI sizes) are never shown."""

    def __init__(self, name: str, color: str, disabled: str):
        super().__init__()
        self.key = (name, color, disabled)
        self.pixmaps: dict[tuple[str, int], QPixmap] = {}

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        name, color, disabled = self.key
        tint = disabled if mode == QIcon.Mode.Disabled else color
        side = max(1, min(size.width(), size.height()))
        pixmap = self.pixmaps.get((tint, side))
        if pixmap is None:
            pixmap = self.pixmaps[(tint, side)] = _render(_svg_text(name).replace("currentColor", tint).encode(), side)
        return pixmap

    def paint(self, painter: QPainter, rect, mode: QIcon.Mode, state: QIcon.State) -> None:
        scale = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
        painter.drawPixmap(rect, self.pixmap(rect.size() * scale, mode, state))

    def availableSizes(self, mode=QIcon.Mode.Normal, state=QIcon.State.Off) -> list[QSize]:
        return [QSize(size, size) for size in _SIZES]

    def clone(self) -> QIconEngine:
        return _TintedSvg(*self.key)


@lru_cache(maxsize=512)
def _icon(name: str, color: str, disabled: str) -> QIcon:
    return QIcon(_TintedSvg(name, color, disabled))


def icon(name: str, color: QColor | str | None = None) -> QIcon:
    """The named icon from resources/icons, drawn in the palette's text colour."""
    palette = QApplication.palette()
    if color is None:
        color = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    tint = QColor(color).name()
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    return _icon(name, tint, disabled)


class _AppSvg(QIconEngine):
    """The application icon's SVG in its sizes, each drawn when first asked for (all seven
    took ~5 ms of start-up); any other size is the next larger one scaled down, as a QIcon
    of the seven pixmaps gives it."""

    SIZES = (16, 24, 32, 48, 64, 128, 256)

    def __init__(self, svg: bytes):
        super().__init__()
        self.svg = svg
        self.pixmaps: dict[int, QPixmap] = {}

    def _drawn(self, side: int) -> QPixmap:
        pixmap = self.pixmaps.get(side)
        if pixmap is None:
            pixmap = self.pixmaps[side] = _render(self.svg, side)
        return pixmap

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        side = max(1, min(size.width(), size.height()))
        if side in self.SIZES:
            return self._drawn(side)
        larger = next((s for s in self.SIZES if s > side), self.SIZES[-1])
        return self._drawn(larger).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation)

    def paint(self, painter: QPainter, rect, mode: QIcon.Mode, state: QIcon.State) -> None:
        painter.drawPixmap(rect, self.pixmap(rect.size(), mode, state))

    def availableSizes(self, mode=QIcon.Mode.Normal, state=QIcon.State.Off) -> list[QSize]:
        return [QSize(side, side) for side in self.SIZES]

    def clone(self) -> QIconEngine:
        return _AppSvg(self.svg)


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The application icon: the SVG where Qt's SVG plugin is present, else the PNG."""
    base = resources.files("resources")
    svg = (base / "hashlens.svg").read_bytes()
    if not _render(svg, 16).isNull():
        return QIcon(_AppSvg(svg))
    pixmap = QPixmap()
    pixmap.loadFromData((base / "hashlens.png").read_bytes(), "PNG")
    return QIcon(pixmap)


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
