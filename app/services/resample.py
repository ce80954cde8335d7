"""Pillow's LANCZOS resize of a grey image to the pHash's 32×32, bit for bit, as matrix products.

imagehash.phash spends half its time in Pillow's resize (0.84 of 1.68 ms per 640×480
photograph here), a scalar loop over every tap of the filter. Pillow sums 8-bit pixels
times 22-bit integer weights and rounds each pass to 8 bits (Resample.c); those sums are
exact in float64 (every product and partial sum is an integer far below 2**53), so a
BLAS product gives Pillow's numbers exactly, in about half the time. The weights are
computed as Pillow computes them, the same double operations in the same order and the
same libm `sin` in the same process, and `shrink` compares its result with Pillow's own
on the second image of every shape before it trusts it: on any difference (another
Pillow, another algorithm) Pillow resizes everything from then on. Hashlens's decision
(issue 15 item 5).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import PIL
from PIL import Image

SIZE = 32  # imagehash.phash: hash_size 8 × highfreq_factor 4
PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
HALF = float(1 << (PRECISION_BITS - 1))
UNIT = 1.0 / (1 << PRECISION_BITS)
# Rows converted to float64 at a time: the copy stays under 8 MB whatever the image's size.
CHUNK_PIXELS = 1 << 20
# Longer sides are left to Pillow: their weights (about 112 bytes a pixel of the side,
# cached for the last 16 sides) would not stay small. So are bigger images: the array
# `shrink` copies them into would add a quarter to a decoded RGB image's memory.
MAX_SIDE = 16_384
MAX_PIXELS = 1 << 24
# Shapes `shrink` has seen: False once Pillow resized one, True once `shrink_pixels`
# matched Pillow on the next. Forgotten all at once when full.
MAX_SHAPES = 4096
_shapes: dict[tuple[int, int], bool] = {}
# Set when `shrink_pixels` ever differs from Pillow in this process.
_differs = False
# Images `shrink` has returned from `shrink_pixels` in this process: how a test or a
# profile of a training worker tells that the fast path ran, not just that it was allowed.
shrunk = 0
# Blocks of outputs per pass on a wide input (see _weights): 4 measured fastest of 1, 2, 4, 8.
BLOCKS = 4
# Pillow 13 runs the vertical pass first when the height shrinks more than twice as much
# as the width; earlier versions always start with the horizontal one.
VERTICAL_FIRST_RULE = int(PIL.__version__.split(".")[0]) >= 13



def _sin(values: np.ndarray) -> np.ndarray:
    """libm's sin, as Pillow's C calls it (NumPy's own vectorised sin may differ in the
    last bit, and a weight on a rounding edge would then differ)."""
    return np.fromiter(map(math.sin, values.tolist()), np.float64, len(values))


def _lanczos(x: np.ndarray) -> np.ndarray:
    """Resample.c's lanczos_filter, the same double operations in the same order."""
    def sinc(v):
        t = v * math.pi
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(v == 0.0, 1.0, _sin(t) / t)

    return np.where((x >= -3.0) & (x < 3.0), sinc(x) * sinc(x / 3), 0.0)


@lru_cache(maxsize=16)
def _weights(in_size: int) -> tuple[list[tuple[int, int, np.ndarray]], int, int]:
    """Pillow's integer weights from in_size pixels to SIZE (precompute_coeffs and
    normalize_coeffs_8bpc), with the first and the last-plus-one input they use. Each
    output uses a narrow band of the inputs, so the weights come in blocks of a few
    outputs each, (first input, last input + 1, weights), which multiply 2.5x fewer
    zeros than one matrix on a 640-px side."""
    scale = filterscale = in_size / SIZE
    if filterscale < 1.0:
        filterscale = 1.0
    support = 3.0 * filterscale
    inverse = 1.0 / filterscale
    one = float(1 << PRECISION_BITS)
    bounds, centers = [], []
    for xx in range(SIZE):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        bounds.append((xmin, min(int(center + support + 0.5), in_size)))
        centers.append(center)
    taps = np.concatenate([np.arange(lo, hi, dtype=np.float64) for lo, hi in bounds])
    outputs = np.repeat(np.arange(SIZE), [hi - lo for lo, hi in bounds])
    w = _lanczos((taps - np.asarray(centers)[outputs] + 0.5) * inverse)
    weights = np.zeros((in_size, SIZE))
    start = 0
    for xx, (lo, hi) in enumerate(bounds):
        k = w[start:start + hi - lo]
        start += hi - lo
        total = np.add.accumulate(k)[-1] if len(k) else 0.0  # a running sum, in order, as the C loop's
        if total != 0.0:
            k = k / total
        weights[lo:hi, xx] = np.trunc(np.where(k < 0, -0.5 + k * one, 0.5 + k * one))
    step = SIZE // BLOCKS if in_size > BLOCKS * 64 else SIZE
    blocks = []
    for lo in range(0, SIZE, step):
        first, last = bounds[lo][0], bounds[lo + step - 1][1]
        blocks.append((first, last, weights[first:last, lo:lo + step].copy()))
    return blocks, bounds[0][0], bounds[-1][1]


def _pass(rows: np.ndarray, blocks: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """One pass along the rows: each row times the weights, rounded and clipped to 8 bits
    as Pillow's clip8 does, a chunk of rows at a time."""
    n, m = rows.shape
    chunk = max(1, CHUNK_PIXELS // m)
    out = np.empty((n, SIZE), np.uint8)
    for start in range(0, n, chunk):
        part = rows[start:start + chunk].astype(np.float64, order="C")
        sums = np.hstack([part[:, first:last] @ weights for first, last, weights in blocks])
        out[start:start + len(part)] = np.clip(np.floor((sums + HALF) * UNIT), 0, 255)
    return out


def shrink_pixels(pixels: np.ndarray) -> np.ndarray:
    """Pillow's resize((32, 32), LANCZOS) of an 8-bit grey image given as an array."""
    height, width = pixels.shape
    need_horizontal, need_vertical = width != SIZE, height != SIZE
    vertical_first = VERTICAL_FIRST_RULE and height - SIZE > 0 and height - SIZE > (width - SIZE) * 2
    a = pixels
    if vertical_first:
        if need_vertical:
            a = _pass(a.T, _weights(height)[0]).T
        if need_horizontal:
            a = _pass(a, _weights(width)[0])
        return np.ascontiguousarray(a)
    vertical, first, last = _weights(height)
    if need_horizontal:
        a = _pass(a[first:last], _weights(width)[0])
        vertical = [(lo - first, hi - first, weights) for lo, hi, weights in vertical]
    if need_vertical:
        a = _pass(a.T, vertical).T
    return np.ascontiguousarray(a) if a is not pixels else pixels.copy()


def _pillows(image: Image.Image) -> Image.Image:
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def shrink(image: Image.Image) -> Image.Image:
    """`image.resize((32, 32), Image.LANCZOS)` of an "L" image, the same pixels. Pillow
    resizes the first image of each shape: making the weights for a new shape costs about
    what Pillow's whole resize does (0.5 ms for a 640-px side, 2.8 ms for 4,032 px), so
    they pay from a shape's second image on, as in a folder of one camera's photographs.
    That second image is resized both ways and compared. Pillow also takes the images
    over MAX_SIDE or MAX_PIXELS, whose weights or copy would not stay small."""
    global _differs, shrunk
    checked = _shapes.get(image.size)
    if checked is None or _differs or max(image.size) > MAX_SIDE or image.width * image.height > MAX_PIXELS:
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        _shapes.setdefault(image.size, False)
        return _pillows(image)
    pixels = shrink_pixels(np.asarray(image))
    if not checked:
        expected = _pillows(image)
        if not np.array_equal(pixels, np.asarray(expected)):
            _differs = True
            return expected
        _shapes[image.size] = True
    shrunk += 1
    return Image.fromarray(pixels, "L")


def one_blas_thread() -> bool:
    """Ask the OpenBLAS that NumPy multiplies with to use the calling thread only, as a
    training worker wants (its cores are taken by the other workers): otherwise a product
    of this size wakes OpenBLAS's threads, whose spinning cost up to 5x the CPU here.
    True when done; False where no OpenBLAS is found (then the caller keeps Pillow's
    resize). Found by name among the loaded libraries (Linux's /proc/self/maps); the
    names are those of NumPy's own OpenBLAS and of a system one."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    except OSError:
        return False
    done = False
    for path in sorted(p for p in paths if "openblas" in p.lower() and ".so" in p.rsplit("/", 1)[-1]):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            setter = getattr(library, name, None)
            if setter is not None:
                setter(1)
                done = True
                break
    return done
