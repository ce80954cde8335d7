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


def test_a_worker_process_multiplies_on_one_blas_thread():
    """What a training worker does first (in a process of its own: it changes BLAS for
    the whole process). NumPy's wheels carry OpenBLAS; elsewhere the answer may be False
    and Pillow's resize stays, so only the Linux wheel's answer is pinned."""
    code = ("import numpy; from app.services import imaging; print(imaging.use_fast_resize())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if "openblas" in str(np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})).lower():
        assert out.strip() == "True"
