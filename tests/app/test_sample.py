"""Sample databases: the vectorised pHash equals imagehash's, the data has the promised
shape, a seed gives the same database, and the `hashlens sample` command works."""

from __future__ import annotations

import argparse
import statistics

import imagehash
import numpy as np
import pytest
from PIL import Image

from app.domain import Failure, HashlensError, ListingQuery, hamming
from app.services import actions, imaging
from app.services.sample import gray32_batch, generate_sample, phash_gray32, sample_entries
from app.store import Store
from app.store.store import MARK_SPACING


def reference_phash(pixels: np.ndarray) -> int:
    return int(str(imagehash.phash(Image.fromarray(pixels, "L"))), 16)


def test_vectorised_phash_is_imagehash_bit_for_bit():
    pixels = gray32_batch(np.random.default_rng(7), 1500)
    # Awkward cases where DCT coefficients tie or are all but zero: flat, ramps, checks.
    pixels[0] = 0
    pixels[1] = 255
    pixels[2] = 128
    pixels[3] = np.tile((np.arange(32) * 8).astype(np.uint8), (32, 1))
    pixels[4] = pixels[3].T
    pixels[5] = ((np.indices((32, 32)).sum(axis=0) % 2) * 255).astype(np.uint8)
    pixels[6] = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    ours = phash_gray32(pixels).tolist()
    assert ours == [reference_phash(p) for p in pixels]
    assert len(set(ours)) > 1400  # the generator makes varied images, not one picture


def test_vectorised_phash_checks_its_input():
    with pytest.raises(ValueError):
        phash_gray32(np.zeros((3, 16, 16), dtype=np.uint8))


def rows_of(store, database="sample"):
    return actions.list_image_hashes(store, ListingQuery(database, metadata=True, imagestatus=True)).rows


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One small sample shared by the shape tests (drawing images is the slow part)."""
    url = "sqlite:///" + str(tmp_path_factory.mktemp("sample") / "s.db")
    store = Store.open(url)
    seen = []
    report = generate_sample(store, "sample", 6000, seed=3, images=400, progress=lambda d, t: seen.append((d, t)))
    yield store, report, rows_of(store), seen
    store.close()


def test_sample_report_and_invariants(made):
    store, report, rows, seen = made
    assert report.entries == len(rows) == 6000 and not report.cancelled
    assert report.with_image_data + report.image_data_removed == 400
    assert 5 <= report.image_data_removed <= 40  # about one in twenty of the drawn images
    assert report.metadata_items == sum(r.meta_count for r in rows)
    assert seen[0] == (0, 6000) and seen[-1] == (6000, 6000)
    assert store.list_databases()[0].entry_count == 6000
    assert [r.position for r in rows] == list(range(1, 6001))
    marks = store.sql.all("SELECT ordinal FROM hl_mark ORDER BY ordinal")
    assert [m[0] for m in marks] == list(range(MARK_SPACING, 6001, MARK_SPACING))
    assert len({r.identifier for r in rows}) == 6000
    times = [r.trained_at for r in rows]
    assert times == sorted(times) and len(set(times)) == 6000


def test_drawn_entries_are_real_training_images(made):
    store, report, rows, _ = made
    drawn = rows[:400]
    stored = [r for r in drawn if r.has_image_data]
    assert len(stored) == report.with_image_data
    assert {r.image_format for r in stored} == {"PNG", "JPEG"}
    assert len({(r.width, r.height) for r in stored}) > 50  # varied sizes
    images = store.images_by_key([r.key for r in stored])
    for r in stored[:60]:
        hashed = imaging.hash_image(images[r.key])
        assert (hashed.phash, hashed.width, hashed.height, hashed.image_format) == (r.phash, r.width, r.height, r.image_format)
    assert not any(r.has_image_data for r in rows[400:])  # the fast path stores no bytes
    # The identifiers are Media Server-like 32 hex characters, with the odd awkward name.
    hexlike = [r for r in rows if len(r.identifier) == 32 and all(c in "0123456789abcdef" for c in r.identifier)]
    assert len(hexlike) >= 5990


def test_near_duplicates_are_near(made):
    _, report, rows, _ = made
    by_id = {r.identifier: r for r in rows}
    copies = [r for r in rows if r.metadata and dict(r.metadata).get("derived_from")]
    assert len(copies) == report.near_duplicates
    assert 0.07 * 6000 < len(copies) < 0.14 * 6000
    drawn = [hamming(r.phash, by_id[dict(r.metadata)["derived_from"]].phash) for r in copies if r.position <= 400]
    fast = [hamming(r.phash, by_id[dict(r.metadata)["derived_from"]].phash) for r in copies if r.position > 400]
    assert drawn and fast
    # A random pair of 64-bit hashes differs in about 32 bits; copies in far fewer.
    assert statistics.median(drawn) <= 12
    assert statistics.median(fast) <= 8
    unrelated = [hamming(a.phash, b.phash) for a, b in zip(rows[400:1400], rows[1400:2400])]
    assert statistics.median(unrelated) >= 20


def test_metadata_coverage(made):
    _, _, rows, _ = made
    n = len(rows)

    def share(key):
        return sum(1 for r in rows if key in dict(r.metadata)) / n

    assert share("source") == 1.0
    assert 0.55 < share("importance") < 0.65
    assert 0.21 < share("camera") < 0.29
    assert 0.004 < share("case") < 0.02
    assert 0 < share("reviewer") < 0.01
    for r in rows:  # source first, then the others in a fixed order
        assert r.metadata[0][0] == "source"


def test_same_seed_same_database(tmp_path):
    def make(name, seed):
        with Store.open("sqlite:///" + str(tmp_path / f"{name}.db")) as store:
            generate_sample(store, "s", 900, seed=seed, images=30)
            return [(r.identifier, r.label, r.phash, r.has_image_data, r.metadata, r.trained_at, r.width)
                    for r in rows_of(store, "s")]

    first = make("a", 11)
    assert make("b", 11) == first
    assert make("c", 12) != first


def test_entries_do_not_depend_on_how_they_are_read():
    whole = list(sample_entries(5000, seed=2, images=10))
    assert [e.identifier for e in whole[:4200]] == [e.identifier for e in sample_entries(4200, seed=2, images=10)]


def test_existing_database_is_refused(sqlite_store):
    actions.create_database(sqlite_store, "sample")
    actions.train_image(sqlite_store, "sample", data=_png(), identifier="kept")
    with pytest.raises(HashlensError) as caught:
        generate_sample(sqlite_store, "sample", 10, images=2)
    assert caught.value.failure is Failure.DATABASE_EXISTS
    assert [r.identifier for r in rows_of(sqlite_store)] == ["kept"]


@pytest.mark.parametrize("kwargs", [{"count": -1}, {"count": "10"}, {"count": 10, "images": -1},
                                    {"count": 10, "seed": -2}])
def test_bad_arguments(sqlite_store, kwargs):
    with pytest.raises(HashlensError) as caught:
        generate_sample(sqlite_store, "s", **kwargs)
    assert caught.value.failure is Failure.PARAM_INVALID
    assert not sqlite_store.database_exists("s")


def test_cancel_keeps_what_was_committed(sqlite_store):
    report = generate_sample(sqlite_store, "s", 50_000, images=0, cancelled=lambda: True)
    assert report.cancelled and report.entries == 0
    assert sqlite_store.list_databases()[0].entry_count == 0
    calls = []
    report = generate_sample(sqlite_store, "t", 50_000, images=0, cancelled=lambda: calls.append(1) or len(calls) > 2)
    assert report.cancelled and 0 < report.entries < 50_000
    assert sqlite_store.count(ListingQuery("t")).value == report.entries == len(rows_of(sqlite_store, "t"))


def _png():
    from tests.conftest import make_image

    return make_image(1)


# -- the command line -------------------------------------------------------------------------


def test_sample_command_through_its_own_parser(sqlite_store, capsys):
    from app.cli.sample_command import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["sample", "cli", "--count", "300", "--images", "20", "--seed", "4"])
    assert args.handler(sqlite_store, args) == 0
    out = capsys.readouterr().out
    assert "'cli': 300 entries" in out
    assert sqlite_store.count(ListingQuery("cli")).value == 300


def test_sample_command_through_main(sqlite_url, capsys):
    from app.cli import main

    assert main(["--store", sqlite_url, "sample", "Db One", "--count", "250", "--images", "10"]) == 0
    assert "250 entries" in capsys.readouterr().out
    assert main(["--store", sqlite_url, "sample", "Db One", "--count", "5"]) == 1
    assert "'database=Db One' already exists" in capsys.readouterr().err
    assert main(["--store", sqlite_url, "sample", "x", "--count", "0"]) == 2
    assert "must be 1 or more" in capsys.readouterr().err
