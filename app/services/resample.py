"""Pillow's LANCZOS resize of a grey image to the pHash's 32×32, bit for bit, as matrix products.

imagehash.phash spends half its time in Pillow's resize (0.84 of 1.68 ms per 640×480
photograph here), a scalar loop over every tap of the filter. Pillow sums 8-bit pixels
times 22-bit integer weights and rounds each pass to 8 bits (Resample.c); those sums are
exact in float64 (every product and partial sum is an integer far below 2**53), so a
BLAS product gives Pillow's numbers exactly, in about half the time. The weights are
computed as Pillow computes them, the same double operations in the same order and the
same libm `sin` in the same process, and `verified()` compares the result with Pillow's
own on probe images once per process: on any difference (another Pillow, another
algorithm) the caller keeps Pillow's resize. Hashlens's decision (issue 15 item 5).
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

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
# cached for the last 16 sides) would not stay small.
MAX_SIDE = 16_384
# Blocks of outputs per pass on a wide input (see _weights): 4 measured fastest of 1, 2, 4, 8.
BLOCKS = 4
# Pillow 13 runs the vertical pass first when the height shrinks more than twice as much
# as the width; earlier versions always start with the horizontal one.
VERTICAL_FIRST_RULE = int(PIL.__version__.split(".")[0]) >= 13
# (width, height) of the probes: both pass orders, one pass only, enlarging, tiny, wide.
PROBES = ((640, 480), (480, 640), (80, 717), (717, 80), (33, 31), (7, 3), (1, 1), (32, 500), (500, 32),
          (1500, 40), (97, 1003))


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


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
    one = 1 << PRECISION_BITS
    weights = np.zeros((in_size, SIZE))
    bounds = []
    for xx in range(SIZE):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = [_lanczos((x + xmin - center + 0.5) * inverse) for x in range(xmax)]
        total = 0.0
        for w in taps:
            total += w
        if total != 0.0:
            taps = [w / total for w in taps]
        for x, w in enumerate(taps):
            weights[xmin + x, xx] = int(-0.5 + w * one) if w < 0 else int(0.5 + w * one)
        bounds.append((xmin, xmin + xmax))
    step = SIZE // BLOCKS if in_size > BLOCKS * 64 else SIZE
    blocks = [(bounds[lo][0], bounds[lo + step - 1][1],
               weights[bounds[lo][0]:bounds[lo + step - 1][1], lo:lo + step].copy()) for lo in range(0, SIZE, step)]
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


def shrink(image: Image.Image) -> Image.Image:
    """`image.resize((32, 32), Image.LANCZOS)` of an "L" image, the same pixels; Pillow's
    own for a side over MAX_SIDE, whose weights would take too much memory."""
    if max(image.size) > MAX_SIDE:
        return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return Image.fromarray(shrink_pixels(np.asarray(image)), "L")


@cache
def verified() -> bool:
    """Whether `shrink` gives Pillow's own pixels on random probe images of varied shapes
    (both pass orders, one pass only, enlarging): checked once per process; a training
    pool checks before it forks, and its workers inherit the answer."""
    rng = np.random.default_rng(15)
    for width, height in PROBES:
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        expected = np.asarray(Image.fromarray(pixels, "L").resize((SIZE, SIZE), Image.Resampling.LANCZOS))
        if not np.array_equal(shrink_pixels(pixels), expected):
            return False
    return True


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
