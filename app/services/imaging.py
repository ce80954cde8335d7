"""Reading training images safely and computing their perceptual hash.

Pillow, imagehash, NumPy and SciPy are imported at first use, not with this module: the
command line's plain commands import it without decoding anything (issue 15, start-up).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain import Failure, HashlensError

if TYPE_CHECKING:
    from PIL import Image

# Decoders we trust with files from anywhere; EPS, FITS, PSD and friends are refused
# (reliability I3).
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
IMAGE_SUFFIX_LIST = ", ".join(sorted(IMAGE_SUFFIXES))
# The format names an entry may record: what Pillow reports for the decoders above (a
# JPEG with a multi-picture header opens as MPO), and "unknown" for an image imported
# without a name. Anything else (a formula, a control character) is refused (ours).
STORED_FORMATS = frozenset(ALLOWED_FORMATS) | {"MPO", "unknown"}
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 256 * 1024 * 1024
# Whether phash_of resizes through `resample` (set in a training worker, use_fast_resize).
_fast_resize = False


@dataclass(frozen=True)
class HashedImage:
    data: bytes
    image_format: str
    width: int
    height: int
    phash: int
    sha256: str


def bad_image(source: str, why: str) -> HashlensError:
    return HashlensError(Failure.BAD_IMAGE, f"{source}: {why}", parameter="imagedata")


def read_image_file(path: Path) -> bytes:
    """The bytes of a regular image file under the size cap, read once (reliability I4)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise bad_image(str(path), "no such file.") from None
    except OSError as exc:
        raise bad_image(str(path), f"cannot read it ({exc.strerror}).") from None
    except (ValueError, UnicodeEncodeError):
        # NUL, or a lone surrogate the file system's encoding cannot carry.
        raise bad_image(repr(str(path)), "no file can have this name (it holds NUL or an unencodable character).") from None
    if not stat.S_ISREG(info.st_mode):
        raise bad_image(str(path), "not a regular file.")
    if info.st_size > MAX_FILE_BYTES:
        raise bad_image(str(path), f"the file is {info.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}.")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise bad_image(str(path), f"cannot read it ({exc.strerror}).") from None


def load_decoders() -> None:
    """Import the decoders and the pHash's DCT now. A training pool calls this before
    it forks its workers, which then inherit them instead of each importing them (imagehash
    imports scipy.fftpack on its first hash: 0.3 s of CPU per worker, measured here)."""
    import imagehash  # noqa: F401
    import numpy  # noqa: F401
    import scipy.fftpack  # noqa: F401
    from PIL import Image  # noqa: F401


def open_image(data: bytes, source: str = "image") -> Image.Image:
    """Decode image bytes fully, refusing bombs, truncation and untrusted formats."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise bad_image(source, "the image data is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise bad_image(source, f"the image is {width}×{height} px; the limit is {MAX_PIXELS:,} pixels.")
            image.load()
    except HashlensError:
        raise
    except UnidentifiedImageError:
        raise bad_image(source, f"not an image in a supported format ({', '.join(ALLOWED_FORMATS)}).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bad_image(source, f"refused as a decompression bomb ({exc}).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise bad_image(source, f"the image is damaged or truncated ({exc}).") from None
    return image


def display_image(data: bytes, max_side: int, source: str = "image") -> Image.Image:
    """Decode with `open_image`'s safety rules, shrink to fit `max_side` and convert to
    RGBA: the one decoder behind every picture the window shows."""
    image = open_image(data, source)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image.convert("RGBA")


def use_fast_resize() -> bool:
    """In a process that only hashes (a training worker): let phash_of shrink images with
    `resample`, Pillow's own pixels in 0.35 instead of 0.85 ms per 640×480 photograph
    (issue 15 item 5), once that process's BLAS multiplies on one thread. Returns
    whether it does."""
    global _fast_resize
    from app.services import resample

    _fast_resize = resample.one_blas_thread()
    return _fast_resize


def phash_of(image: Image.Image) -> int:
    """Hashlens's 64-bit pHash (imagehash's DCT hash); not Media Server's own measure.
    The bits are read straight from the hash's array, first bit highest, as its hex
    string spells them, without the string."""
    import imagehash
    import numpy as np

    if _fast_resize:
        from app.services import resample

        # The 32×32 grey image imagehash.phash would make of this one: its own convert
        # and resize of it are copies, so the hash is imagehash's of the same pixels.
        image = resample.shrink(image.convert("L"))
    return int.from_bytes(np.packbits(imagehash.phash(image).hash).tobytes(), "big")


def hash_image(data: bytes, source: str = "image") -> HashedImage:
    image = open_image(data, source)
    return HashedImage(
        data=data,
        image_format=image.format or "unknown",
        width=image.width,
        height=image.height,
        phash=phash_of(image),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def find_images(paths, skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Image files named directly, or found recursively in folders, in a stable order.

    Files in folders whose names do not end in an image suffix are left out; when
    `skipped` is given, each is appended to it as (path, reason) so a caller can say so."""
    found = []
    for p in map(Path, paths):
        if not p.is_dir():
            found.append(p)
            continue
        for f in sorted(f for f in p.rglob("*") if f.is_file()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                found.append(f)
            elif skipped is not None:
                skipped.append((str(f), f"not an image file name (Hashlens reads {IMAGE_SUFFIX_LIST})"))
    return found
