"""Sample image-hash databases, generated from drawn images, for demos, tests and benchmarks.

Two kinds of entry, so that a million entries take about a minute (ours):

* The first `images` entries (default 2,000) are real training images: PNG and JPEG files
  of varied sizes with shapes, colours and text drawn by PIL, hashed exactly as training
  hashes them (`imaging.hash_image`, imagehash's pHash) and stored with their bytes. About
  one in eight is a near-duplicate of an earlier one (resized, cropped and/or re-encoded as
  a lower-quality JPEG), and about one in twenty has its image data removed, as
  NullImageHashImageData leaves it.
* Every later entry is a 32×32 grayscale image made in numpy, a batch at a time (a
  gradient, blocks, a disc, a bar; about one in ten a noisy copy of a recent one), hashed by
  `phash_gray32`, which reproduces imagehash.phash bit for bit on such images. These
  entries store no image data (hasimagedata false, as after NullImageHashImageData): a
  million small PNGs would add a gigabyte and most of the time, and listings never read
  image bytes anyway.

Metadata keys have different coverage: `source` on every entry, `importance` on about 60%,
`camera` on about 25%, `case` on about 1%, `reviewer` on about 0.3%, and `derived_from`
(the identifier of the original) on each near-duplicate. Identifiers are 32 lower-case hex
characters as Media Server generates them (MS), with an awkward human-style name (commas,
quotes, accents, a trailing space) now and then among the drawn images. Everything is a
function of `seed` and `images`: the same seed gives the same database, entry for entry,
and a smaller count gives the start of a bigger one.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain import NewEntry, check_text, counted, param_invalid
from app.services import actions, imaging
from app.store.bulk import append_entries
from app.source import SqlSource

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# NumPy, SciPy and Pillow are imported in the functions that use them, so the command
# line can build its `sample` parser without them (issue 15, start-up).
DEFAULT_IMAGES = 2000
MAX_COUNT = 100_000_000
# Entries per numpy batch of the fast path; fixed, so a seed gives the same data whatever
# the write batch is.
_CHUNK = 4096
# Training times start here (2023-01-01T00:00:00Z) and grow by 1–3 s per entry.
_EPOCH_MS = 1_672_531_200_000

_WORDS = (
    "harbour", "bicycle", "lantern", "meadow", "falcon", "granite", "orchid", "tram", "violin", "glacier",
    "compass", "teapot", "canyon", "beacon", "walrus", "saddle", "quarry", "lemon", "pylon", "ferry",
    "cactus", "anvil", "marble", "kettle", "tundra", "poppy", "badger", "chapel", "dune", "crane",
    "ember", "fjord",
)
_SOURCES = ("camera-upload", "web-crawl", "archive-scan", "partner-feed")
_IMPORTANCE = ("low", "medium", "high")
_CAMERAS = ("Canon EOS 5D", "Nikon D750", "Sony A7 III", "iPhone 12", "Pixel 7", "Fujifilm X-T4")
_AWKWARD = (
    "IMG_{n:04d}.jpg", "Café, Paris #{n}", 'quoted "{n}"', "trailing space {n} ", "a,b;c {n}",
    "<tag>&amp; {n}", "日本の写真 {n}", "back\\slash {n}", "Ünïcödé—{n}",
)
_COLOURS = (
    (220, 40, 40), (40, 160, 60), (40, 80, 200), (240, 200, 30), (140, 60, 170), (250, 130, 20),
    (30, 30, 30), (235, 235, 235), (20, 170, 170), (200, 90, 140),
)


@dataclass
class SampleReport:
    """What `generate_sample` made."""

    database: str
    entries: int = 0
    with_image_data: int = 0
    image_data_removed: int = 0
    near_duplicates: int = 0
    metadata_items: int = 0
    cancelled: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        text = (
            f"'{self.database}': {counted(self.entries, 'entry', 'entries')} ({self.with_image_data:,} with image data, "
            f"{counted(self.image_data_removed, 'drawn image')} removed, {counted(self.near_duplicates, 'near-duplicate')}, "
            f"{counted(self.metadata_items, 'metadata item')}) in {self.seconds:.1f} s"
        )
        return text + (" — cancelled; the entries committed so far were kept" if self.cancelled else "")


def generate_sample(
    store: SqlSource,
    database: str,
    count: int,
    *,
    seed: int = 0,
    images: int = DEFAULT_IMAGES,
    progress: Callable[[int, int | None], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SampleReport:
    """Create database `database` (it must not exist) holding `count` sample entries.

    Entries are committed in large transactions (see `bulk.append_entries`); a cancel or a
    failure keeps the transactions committed so far, and the report says so."""
    check_text("database", database)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise param_invalid("count", f"'{count}' is not a whole number from 0 to {MAX_COUNT:,}.")
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise param_invalid("images", f"'{images}' is not a whole number of 0 or more.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise param_invalid("seed", f"'{seed}' is not a whole number of 0 or more.")
    began = time.monotonic()
    actions.create_database(store, database)
    report = SampleReport(database)
    # Big transactions keep the random-keyed indexes from being rewritten at every
    # commit (see append_entries); the page cache grows with the load, up to 1 GB.
    commit_every = 20_000 if count <= 100_000 else max(500_000, count // 4)
    cache_mb = min(1024, max(64, count // 10_000))
    # Generation runs in a thread beside the writer: SQLite lets go of the GIL while it
    # steps through its indexes, which is most of a write, so the two overlap.
    chunks = _prefetched(sample_chunks(count, seed=seed, images=images))
    entries = _counted(chunks, report)
    try:
        report.entries = append_entries(
            store, database, entries, batch=20_000, commit_every=commit_every, cache_mb=cache_mb, total=count,
            progress=progress, cancelled=cancelled, action="GenerateSample",
        )
    finally:
        entries.close()
        chunks.close()  # stops the generating thread
    report.cancelled = report.entries < count
    report.seconds = time.monotonic() - began
    return report


def sample_entries(count: int, *, seed: int = 0, images: int = DEFAULT_IMAGES) -> Iterator[NewEntry]:
    """The entries of a sample database, in database order, generated lazily."""
    for chunk in sample_chunks(count, seed=seed, images=images):
        yield from chunk


def sample_chunks(count: int, *, seed: int = 0, images: int = DEFAULT_IMAGES) -> Iterator[list[NewEntry]]:
    """The same entries, a list at a time."""
    drawn = min(images, count)
    yield from _drawn_chunks(drawn, seed)
    yield from _fast_chunks(drawn, count, seed)


def _counted(chunks: Iterator[list[NewEntry]], report: SampleReport) -> Iterator[NewEntry]:
    """The entries one by one, counted into the report as they are taken."""
    for chunk in chunks:
        for e in chunk:
            report.metadata_items += len(e.metadata)
            if e.image_data is not None:
                report.with_image_data += 1
            elif e.image_format is not None:
                report.image_data_removed += 1
            if e.metadata and e.metadata[-1][0] == "derived_from":
                report.near_duplicates += 1
            yield e


def _prefetched(chunks: Iterator[list], depth: int = 4) -> Iterator[list]:
    """`chunks`, made by a background thread up to `depth` ahead. Closing this generator
    stops the thread; an error in the thread is raised here."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    thread = threading.Thread(target=produce, name="sample-generator", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# -- drawn images ---------------------------------------------------------------------------


def _drawn_chunks(n: int, seed: int) -> Iterator[list[NewEntry]]:
    import numpy as np

    originals: list[tuple[str, bytes]] = []  # (identifier, encoded bytes) of undamaged originals
    chunk: list[NewEntry] = []
    for i in range(n):
        rng = np.random.default_rng([seed, 1, i])
        derived_from = None
        if originals and rng.random() < 0.125:
            source_id, source = originals[int(rng.integers(len(originals)))]
            data = _near_duplicate(source, rng)
            derived_from = source_id
        else:
            data = _encode(_draw(rng), rng)
        hashed = imaging.hash_image(data, f"sample image {i + 1}")
        if rng.random() < 0.01:
            identifier = _AWKWARD[int(rng.integers(len(_AWKWARD)))].format(n=i + 1)
        else:
            identifier = rng.bytes(16).hex()
        label = f"{_WORDS[int(rng.integers(len(_WORDS)))]}-{i + 1:06d}"
        metadata = _metadata(rng.random(5), rng.integers(0, 1 << 30, 4), derived_from)
        entry = actions.prepare_entry(
            hashed, identifier=identifier, label=label, metadata=metadata, trained_at=_trained_at(i, rng),
        )
        if derived_from is None and len(originals) < 500:
            originals.append((identifier, data))
        if rng.random() < 0.05:
            # As NullImageHashImageData leaves an entry: the hash and facts, no bytes.
            entry = NewEntry(entry.identifier, entry.label, entry.phash, None, entry.image_format,
                             entry.width, entry.height, entry.sha256, entry.metadata, entry.trained_at)
        chunk.append(entry)
        if len(chunk) == 64:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _draw(rng: np.random.Generator) -> Image.Image:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    w, h = int(rng.integers(48, 321)), int(rng.integers(48, 241))
    top, bottom = _colour(rng), _colour(rng)
    # A vertical gradient background: few real photos are flat.
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    pixels = (np.array(top)[None, None, :] * (1 - ramp) + np.array(bottom)[None, None, :] * ramp)
    image = Image.fromarray(np.repeat(pixels, w, axis=1).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, 2))
        box = [x0, y0, max(x1, x0 + 4), max(y1, y0 + 4)]
        kind = int(rng.integers(4))
        if kind == 0:
            draw.rectangle(box, fill=_colour(rng))
        elif kind == 1:
            draw.ellipse(box, fill=_colour(rng), outline=_colour(rng))
        elif kind == 2:
            points = [(int(rng.integers(w)), int(rng.integers(h))) for _ in range(3)]
            draw.polygon(points, fill=_colour(rng))
        else:
            draw.line(box, fill=_colour(rng), width=int(rng.integers(1, 6)))
    if rng.random() < 0.7:
        text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(2, 7))))
        font = ImageFont.load_default(size=int(rng.integers(10, max(12, h // 3))))
        draw.text((int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))), text, fill=_colour(rng), font=font)
    return image


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    base = _COLOURS[int(rng.integers(len(_COLOURS)))]
    return tuple(int(min(255, max(0, c + rng.integers(-25, 26)))) for c in base)


def _encode(image: Image.Image, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    if rng.random() < 0.6:
        image.save(buf, "PNG")
    else:
        image.save(buf, "JPEG", quality=int(rng.integers(75, 96)))
    return buf.getvalue()


def _near_duplicate(data: bytes, rng: np.random.Generator) -> bytes:
    """A copy an operator would call the same picture: resized, cropped, re-encoded."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    if rng.random() < 0.6:
        scale = float(rng.uniform(0.5, 0.9))
        image = image.resize((max(16, int(w * scale)), max(16, int(h * scale))), Image.Resampling.LANCZOS)
        w, h = image.size
    if rng.random() < 0.5:
        dx, dy = int(w * rng.uniform(0.02, 0.08)), int(h * rng.uniform(0.02, 0.08))
        image = image.crop((dx, dy, w - dx, h - dy))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=int(rng.integers(35, 86)))
    return buf.getvalue()


def _trained_at(i: int, rng: np.random.Generator) -> int:
    return _EPOCH_MS + i * 3000 + int(rng.integers(0, 2000))


# -- metadata ---------------------------------------------------------------------------------

# Every combination of the three common keys, built once and shared by the entries that
# have it: (source, importance or none, camera or none).
_COMMON = [
    (("source", source),)
    + ((("importance", _IMPORTANCE[i]),) if i < len(_IMPORTANCE) else ())
    + ((("camera", _CAMERAS[c]),) if c < len(_CAMERAS) else ())
    for source in _SOURCES
    for i in range(len(_IMPORTANCE) + 1)
    for c in range(len(_CAMERAS) + 1)
]


def _common_index(u, picks) -> int:
    """Which of _COMMON an entry gets, from uniform draws `u` and integer draws `picks`."""
    s = picks[0] % len(_SOURCES)
    i = picks[1] % len(_IMPORTANCE) if u[0] < 0.6 else len(_IMPORTANCE)
    c = picks[2] % len(_CAMERAS) if u[1] < 0.25 else len(_CAMERAS)
    return (s * (len(_IMPORTANCE) + 1) + i) * (len(_CAMERAS) + 1) + c


def _metadata(u, picks, derived_from: str | None) -> tuple[tuple[str, str], ...]:
    items = _COMMON[_common_index(u, picks)]
    extra = []
    if u[2] < 0.01:
        extra.append(("case", f"CASE-{int(picks[3]) % 10000:04d}"))
    if u[3] < 0.003:
        extra.append(("reviewer", ("amira", "bo", "chen", "dara")[int(picks[3]) % 4]))
    if derived_from is not None:
        extra.append(("derived_from", derived_from))
    return items + tuple(extra) if extra else items


# -- the fast path: 32×32 grayscale in numpy ------------------------------------------------


def phash_gray32(pixels: np.ndarray) -> np.ndarray:
    """The 64-bit pHash of each 32×32 grayscale image in `pixels` (shape (n, 32, 32), uint8),
    bit for bit what imagehash.phash gives for the same image: its LANCZOS resize to 32×32
    leaves such an image as it is, then it takes the type-II DCT along each axis with
    scipy.fftpack, keeps the top-left 8×8 and sets a bit where a coefficient exceeds their
    median, first coefficient first. One call does the whole batch, and the second DCT
    runs on the eight rows that are kept only (each row's transform is independent)."""
    import numpy as np
    import scipy.fftpack

    if pixels.ndim != 3 or pixels.shape[1:] != (32, 32):
        raise ValueError("expected an array of shape (n, 32, 32)")
    rows = scipy.fftpack.dct(pixels, axis=1)[:, :8, :]
    low = scipy.fftpack.dct(rows, axis=2)[:, :, :8].reshape(len(pixels), 64)
    median = np.median(low, axis=1)
    bits = low > median[:, None]
    return np.packbits(bits, axis=1).view(">u8").ravel()


def gray32_batch(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` varied 32×32 grayscale images: a gradient, coarse blocks, a disc and a bar.
    Each part is built from a row and a column term broadcast together, so only a few
    operations touch all n×32×32 pixels."""
    import numpy as np

    f32 = np.float32
    axis = np.arange(32, dtype=f32)
    x, y = axis[None, None, :], axis[:, None][None]  # shapes (1, 1, 32) and (1, 32, 1)
    draw = rng.uniform(size=(12, n, 1, 1)).astype(f32)
    slope_x, slope_y, level, cx, cy, radius, disc, x0, y0, width, height, bar = draw
    img = (slope_x * 6 - 3) * x + ((slope_y * 6 - 3) * y + (level * 175 + 40))
    blocks = rng.normal(0, 40, (n, 4, 4)).astype(f32)
    img += np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)
    inside = ((x - cx * 32) ** 2 + ((y - cy * 32) ** 2 - (radius * 11 + 3) ** 2)) < 0
    img += inside * (disc * 240 - 120)
    x0, y0 = np.floor(x0 * 28), np.floor(y0 * 28)
    in_bar = ((x >= x0) & (x < x0 + np.floor(width * 17 + 3))) & ((y >= y0) & (y < y0 + np.floor(height * 17 + 3)))
    img += in_bar * (bar * 200 - 100)
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def _fast_chunks(first: int, count: int, seed: int) -> Iterator[list[NewEntry]]:
    import numpy as np

    previous: tuple[np.ndarray, list[str]] | None = None
    i = first
    chunk_no = 0
    while i < count:
        # Always a whole chunk of draws, of which the last chunk uses a part: a smaller
        # sample is then the start of a bigger one with the same seed.
        n = _CHUNK
        wanted = min(_CHUNK, count - i)
        rng = np.random.default_rng([seed, 2, chunk_no])
        pixels = gray32_batch(rng, n)
        hexes = rng.bytes(16 * n).hex()
        identifiers = [hexes[k * 32:(k + 1) * 32] for k in range(n)]
        # About one in ten is a noisy copy of a recent image (this batch's earlier ones or
        # the previous batch's), so near-duplicate searches find something.
        derived = np.full(n, -1, dtype=np.int64)
        if previous is not None:
            pool_pixels = np.concatenate([previous[0], pixels])
            pool_ids = previous[1] + identifiers
            offset = len(previous[1])
        else:
            pool_pixels, pool_ids, offset = pixels, identifiers, 0
        # A copy's source is never a copy made in this batch, whose pixels change below.
        is_copy = rng.random(n) < 0.1
        originals = np.flatnonzero(~is_copy)
        copies = np.flatnonzero(is_copy)
        choices = offset + np.searchsorted(originals, copies)  # sources available to each copy
        copies, choices = copies[choices > 0], choices[choices > 0]
        r = (rng.random(len(copies)) * choices).astype(np.int64)
        sources = np.where(r < offset, r, offset + originals[np.maximum(r - offset, 0)])
        noise = rng.integers(-6, 7, (len(copies), 32, 32))
        pixels[copies] = np.clip(pool_pixels[sources].astype(np.int16) + noise, 0, 255).astype(np.uint8)
        derived[copies] = sources
        hashes = phash_gray32(pixels).tolist()
        words = rng.integers(0, len(_WORDS), n).tolist()
        u = rng.random((n, 4))
        picks = rng.integers(0, 1 << 30, (n, 4))
        s = picks[:, 0] % len(_SOURCES)
        imp = np.where(u[:, 0] < 0.6, picks[:, 1] % len(_IMPORTANCE), len(_IMPORTANCE))
        cam = np.where(u[:, 1] < 0.25, picks[:, 2] % len(_CAMERAS), len(_CAMERAS))
        common = ((s * (len(_IMPORTANCE) + 1) + imp) * (len(_CAMERAS) + 1) + cam).tolist()
        rare = np.flatnonzero((u[:, 2] < 0.01) | (u[:, 3] < 0.003) | (derived >= 0)).tolist()
        stamps = (_EPOCH_MS + np.arange(i, i + n, dtype=np.int64) * 3000 + rng.integers(0, 2000, n)).tolist()
        metadata = [_COMMON[c] for c in common]
        for k in rare:
            source = pool_ids[derived[k]] if derived[k] >= 0 else None
            metadata[k] = _metadata(u[k], picks[k], source)
        yield [
            NewEntry(identifiers[k], f"{_WORDS[words[k]]}-{i + k + 1:06d}", hashes[k],
                     None, None, None, None, None, metadata[k], stamps[k])
            for k in range(wanted)
        ]
        previous = (pixels, identifiers)
        i += n
        chunk_no += 1
