"""Training images as QImages: `app.services.imaging` decodes, this module only converts."""

from __future__ import annotations

from PySide6.QtGui import QImage

from app.services import imaging


def decode(data: bytes, max_side: int, source: str = "image") -> QImage:
    """A QImage of `data` no larger than `max_side`; raises HashlensError (BAD_IMAGE).

    Safe on any thread: a QImage (unlike a QPixmap) may be made off the GUI thread, and
    this one owns its pixels: QImage(bytes, …) only points at the Python buffer, which
    can be freed while the image is still painted (a crash), so it is copied at once."""
    picture = imaging.display_image(data, max_side, source)
    width, height = picture.size
    pixels = picture.tobytes("raw", "RGBA")
    image = QImage(pixels, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
    del pixels  # from here on nothing refers to the Python buffer
    return image
