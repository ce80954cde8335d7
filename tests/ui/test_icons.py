"""The tinted line-art icons: drawn in the palette's colours at the size asked for, and
only when asked for (start-up renders none of them up front)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon

from ui import icons


def _ink(pixmap) -> set[str]:
    image = pixmap.toImage()
    return {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())
            if image.pixelColor(x, y).alpha() == 255}


def test_icon_is_drawn_in_each_modes_tint_at_the_asked_size(qapp):
    icon = icons.icon("refresh", QColor("#ff0000"))
    normal = icon.pixmap(QSize(40, 40))
    disabled = icon.pixmap(QSize(40, 40), QIcon.Mode.Disabled)
    assert normal.size() == QSize(40, 40) and not normal.isNull()
    assert _ink(normal) == {"#ff0000"}
    assert _ink(disabled) and "#ff0000" not in _ink(disabled)
    assert QSize(20, 20) in icon.availableSizes()


def test_icons_render_nothing_until_a_pixmap_is_asked_for(qapp, monkeypatch):
    rendered = []
    real = icons._render
    monkeypatch.setattr(icons, "_render", lambda svg, size: rendered.append(size) or real(svg, size))
    icon = icons.icon("export", QColor("#123456"))
    assert rendered == []
    icon.pixmap(QSize(16, 16))
    icon.pixmap(QSize(16, 16))
    assert rendered == [16]
