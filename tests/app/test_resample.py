"""Issue 15 item 5: training workers shrink images for the pHash with matrix products
(app.services.resample); the pixels, and so every hash, are Pillow's and imagehash's own."""

import io
import subprocess
import sys

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from app.services import imaging, resample
from tests.app.test_imaging import _varied_images


def pillows(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels, "L").resize((32, 32), Image.Resampling.LANCZOS))


def noise(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 900), st.integers(1, 900), st.integers(0, 2**32 - 1))
def test_shrink_is_pillows_resize_on_any_shape(width, height, seed):
    pixels = noise(width, height, seed)
    assert np.array_equal(resample.shrink_pixels(pixels), pillows(pixels))


@pytest.mark.parametrize("width", [33, 40, 100, 300])
@pytest.mark.parametrize("step", [-1, 0, 1])
def test_shrink_on_either_side_of_pillows_pass_order_rule(width, step):
    """Pillow 13 starts with the vertical pass when the height shrinks by more than twice
    what the width does: shapes on the boundary and one pixel either side."""
    height = 32 + 2 * (width - 32) + step
    pixels = noise(width, height, width * 3 + step)
    assert np.array_equal(resample.shrink_pixels(pixels), pillows(pixels))


@pytest.mark.parametrize("shape", [(32, 32), (32, 700), (700, 32), (1, 1), (5, 2000), (2000, 5), (3000, 2200)])
def test_shrink_on_edge_shapes(shape):
    pixels = noise(*shape, seed=sum(shape))
    assert np.array_equal(resample.shrink_pixels(pixels), pillows(pixels))


@pytest.mark.parametrize("shape", [(resample.MAX_SIDE + 1, 3), (4097, 4096)])
def test_a_side_or_an_image_over_the_limits_is_left_to_pillow(monkeypatch, shape):
    monkeypatch.setattr(resample, "_shapes", {})
    image = Image.fromarray(noise(*shape, seed=4), "L")
    for _ in range(2):
        assert np.array_equal(np.asarray(resample.shrink(image)), np.asarray(resample._pillows(image)))
    assert resample._shapes == {shape: False}


def test_a_difference_from_pillow_turns_the_fast_path_off(monkeypatch):
    """`shrink` checks a shape's second image against Pillow's resize before trusting it;
    an algorithm that is not this Pillow's (here the other pass order, Pillow 12's against
    13's or the reverse) is caught there, and Pillow resizes everything from then on."""
    monkeypatch.setattr(resample, "_shapes", {})
    monkeypatch.setattr(resample, "_differs", False)
    monkeypatch.setattr(resample, "VERTICAL_FIRST_RULE", not resample.VERTICAL_FIRST_RULE)
    tall = noise(80, 517, seed=3)
    assert not np.array_equal(resample.shrink_pixels(tall), pillows(tall))
    for _ in range(3):
        assert np.array_equal(np.asarray(resample.shrink(Image.fromarray(tall, "L"))), pillows(tall))
    assert resample._differs


def test_shrink_uses_its_own_pixels_once_a_shape_matched(monkeypatch):
    monkeypatch.setattr(resample, "_shapes", {})
    image = Image.fromarray(noise(640, 480, seed=9), "L")
    for _ in range(3):
        assert np.array_equal(np.asarray(resample.shrink(image)), np.asarray(resample._pillows(image)))
    assert resample._shapes == {(640, 480): True} and not resample._differs


def _photographs():
    """Smooth pictures with edges in varied shapes (wide, tall enough for the vertical
    pass first, tiny), as JPEG and PNG."""
    out = []
    for i, (width, height) in enumerate([(640, 480), (480, 640), (120, 900), (900, 120), (33, 200), (64, 48)]):
        y, x = np.mgrid[0:height, 0:width]
        rgb = np.stack([(x * 255 // width), (y * 255 // height), ((x + y + i * 40) % 256)], axis=-1)
        rgb[height // 3: height // 2, width // 4: width // 2] = (200, 30, 90)
        buf = io.BytesIO()
        Image.fromarray(rgb.astype(np.uint8), "RGB").save(buf, "JPEG" if i % 2 == 0 else "PNG", quality=85)
        out.append(buf.getvalue())
    return out


def test_fast_path_hash_is_imagehash_phash_of_the_full_image(monkeypatch):
    """Twice each: Pillow resizes the first image of a shape, `resample` the next ones."""
    monkeypatch.setattr(imaging, "_fast_resize", True)
    monkeypatch.setattr(resample, "_shapes", {})
    for data in _varied_images() + _photographs():
        expected = int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)
        assert imaging.hash_image(data).phash == expected
        assert imaging.hash_image(data).phash == expected
    assert sum(resample._shapes.values()) >= 8  # so the second hash of each went through resample


def numpy_uses_openblas() -> bool:
    """What NumPy's build says it multiplies with: scipy-openblas in its Linux wheels."""
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {}).get("name", "")
    return "openblas" in str(blas).lower()


# Run in a process of its own (it changes BLAS for the whole process): what a training
# worker does first, then the thread count each loaded OpenBLAS reports, read through
# OpenBLAS's own getters rather than through the code under test.
WORKER_START = """
import ctypes, json
import numpy
from app.services import imaging, resample

def counts():
    with open("/proc/self/maps") as maps:
        paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    found = []
    for path in sorted(p for p in paths if "openblas" in p.lower()):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(library, name):
                found.append(getattr(library, name)())
                break
    return found

before = counts()
done = imaging.use_fast_resize()
print(json.dumps({"done": done, "fast": imaging._fast_resize, "before": before, "after": counts()}))
"""


def test_a_worker_process_multiplies_on_one_blas_thread():
    """Where NumPy multiplies with OpenBLAS (its Linux wheels bundle scipy-openblas, as
    here and on CI) the worker must find it and leave it one thread, as OpenBLAS itself
    then reports; where NumPy was built with another BLAS, it must say False and keep
    Pillow's resize."""
    import json
    import os

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # so one thread is a change
    out = subprocess.run([sys.executable, "-c", WORKER_START], capture_output=True, text=True,
                         check=True, env=env).stdout
    result = json.loads(out)
    if numpy_uses_openblas():
        assert result == {"done": True, "fast": True, "before": [2], "after": [1]}
    else:
        assert result["done"] is False and result["fast"] is False


def test_without_openblas_one_blas_thread_says_false():
    """The other answer, in a process that has loaded no OpenBLAS: the function's own
    source run before NumPy is imported (importing `resample` would load it)."""
    code = (
        "import ast, sys\n"
        "tree = ast.parse(open(sys.argv[1]).read())\n"
        "node = next(n for n in tree.body if getattr(n, 'name', '') == 'one_blas_thread')\n"
        "space = {}\n"
        "exec(compile(ast.Module([node], []), sys.argv[1], 'exec'), space)\n"
        "assert 'numpy' not in sys.modules and 'openblas' not in open('/proc/self/maps').read()\n"
        "print(space['one_blas_thread']())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, resample.__file__], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_a_worker_without_openblas_keeps_pillows_resize(monkeypatch):
    """When one_blas_thread finds no OpenBLAS, phash_of never calls `resample`."""
    monkeypatch.setattr(imaging, "_fast_resize", True)
    monkeypatch.setattr(resample, "one_blas_thread", lambda: False)
    monkeypatch.setattr(resample, "_shapes", {})
    assert imaging.use_fast_resize() is False and imaging._fast_resize is False
    data = _photographs()[0]
    before = resample.shrunk
    for _ in range(2):
        assert imaging.hash_image(data).phash == int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)
    assert resample.shrunk == before and resample._shapes == {}
