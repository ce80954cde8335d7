"""Training images are read safely: bombs, truncation, garbage and risky formats refused."""

import io
import struct
import zlib

import pytest
from PIL import Image

from app.domain import HashlensError
from app.services import imaging


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's first bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, fragment", [
    (b"", "empty"),
    (b"hello world", "not an image"),
    (png_header_claiming(9000, 9000), "9000×9000 px; the limit is 50,000,000"),
    (png_header_claiming(20000, 20000), "bomb"),
    (png_header_claiming(60000, 60000), "bomb"),
])
def test_refused(data, fragment):
    with pytest.raises(HashlensError, match=fragment):
        imaging.hash_image(data, "test")


def test_truncated_jpeg_refused(image_bytes):
    data = image_bytes(3, size=(200, 200), fmt="JPEG")
    with pytest.raises(HashlensError, match="truncated"):
        imaging.hash_image(data[: len(data) // 3], "cut.jpg")


def test_risky_format_refused():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PCX")
    with pytest.raises(HashlensError, match="supported format"):
        imaging.hash_image(buf.getvalue(), "x.pcx")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_allowed_formats_hash(image_bytes, fmt):
    hashed = imaging.hash_image(image_bytes(5, fmt=fmt), "x")
    assert hashed.image_format == fmt and (hashed.width, hashed.height) == (64, 48)
    assert 0 <= hashed.phash < 2**64 and len(hashed.sha256) == 64


def test_phash_is_imagehash_phash(image_bytes):
    import imagehash

    data = image_bytes(9)
    assert imaging.hash_image(data).phash == int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)


def test_fifo_and_directory_refused(tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(HashlensError, match="not a regular file"):
            imaging.read_image_file(path)


def _varied_images():
    """Sizes from 1 px to 2000 px, every common mode, and JPEGs with EXIF orientation."""
    import numpy as np

    rng = np.random.default_rng(5)
    smooth = np.add.outer(np.arange(480), np.arange(640)).astype(np.float64)
    images = []
    for size in [(1, 1), (7, 3), (33, 31), (640, 480), (2000, 1500)]:
        noise = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        images.append(Image.fromarray(noise, "RGB"))
    base = Image.fromarray((smooth % 256).astype(np.uint8)).convert("RGB")
    for mode in ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I", "F", "1"]:
        images.append(base.convert(mode) if mode != "I;16" else Image.fromarray((smooth * 50).astype(np.uint16)))
    out = []
    for i, image in enumerate(images):
        fmt = "TIFF" if image.mode in ("I", "F", "I;16", "CMYK", "LA") else ("JPEG" if i % 2 and image.mode in ("RGB", "L") else "PNG")
        buf = io.BytesIO()
        image.save(buf, fmt)
        out.append(buf.getvalue())
    for orientation in (1, 3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        base.save(buf, "JPEG", exif=exif)
        out.append(buf.getvalue())
    return out


def test_phash_is_imagehash_phash_of_the_full_image_on_varied_images():
    """Training hashes exactly what imagehash.phash hashes of the fully decoded image
    (JPEG draft decoding is not used: it changed 57 of 300 photographs' hashes here)."""
    import imagehash

    for data in _varied_images():
        expected = int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)
        assert imaging.hash_image(data).phash == expected
