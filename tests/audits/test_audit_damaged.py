"""Damaged store files (reliability F6, as a deterministic sweep): the read-only open and
the audit either report or refuse with a clear error; nothing else escapes, and the file
is never changed."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from PIL import Image, ImageDraw

from app.audits.audit import run_audit
from app.audits.model import AuditOptions, Level
from app.domain import HashlensError
from app.services import actions
from app.store import Store
from app.store import journal as journal_module


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A small store in rollback-journal form (one file, no WAL) to mutate."""
    return _build(tmp_path_factory.mktemp("damaged") / "small.db")


def _build(path) -> bytes:
    # A fixed clock makes the file, and so the sweep, the same on every run.
    clock = iter(range(1_700_000_000_000, 1_800_000_000_000, 1000))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(journal_module, "now_ms", lambda: next(clock))
        mp.setattr(journal_module, "_current_user", lambda: "auditor")
        store = Store.open("sqlite:///" + str(path))
        actions.create_database(store, "db")
        for seed in range(40):
            actions.train_image(store, "db", data=_image(seed), identifier=f"id-{seed:03d}",
                                label=f"label {seed % 7}", metadata=[("k", str(seed % 3))])
        store.sql.exec("PRAGMA journal_mode=DELETE")
        store.close()
    return path.read_bytes()


def _image(seed: int) -> bytes:
    image = Image.new("RGB", (48, 40), ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    ImageDraw.Draw(image).rectangle([seed % 30, seed % 20, seed % 30 + 16, seed % 20 + 12], fill=(255, 255 - seed, 0))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    page = 4096
    for _ in range(rng.randint(1, 6)):
        # Skip the 100-byte header of page 1 sometimes, hit it other times.
        at = rng.randrange(0 if rng.random() < 0.2 else 100, len(buf))
        span = rng.choice([1, 4, 16, 64, page // 4])
        fill = rng.choice([b"\x00", b"\xff", None])
        for i in range(at, min(len(buf), at + span)):
            buf[i] = rng.randrange(256) if fill is None else fill[0]
    return bytes(buf)


def test_the_sweep_is_repeatable(small_store, tmp_path):
    """The file is made the same every run, so a failure seen once is seen again."""
    assert _build(tmp_path / "again.db") == small_store


def test_damaged_files_are_reported_or_refused_never_crash(small_store, tmp_path):
    _sweep(small_store, tmp_path, 120, seed=20240501)


@pytest.mark.soak
def test_damaged_files_soak(small_store, tmp_path):
    _sweep(small_store, tmp_path, 5000, seed=7)


def _sweep(small_store: bytes, tmp_path, runs: int, seed: int) -> None:
    """Any exception other than HashlensError, from the opener or the audit, fails the
    test: it would reach a person as a traceback."""
    rng = random.Random(seed)
    outcomes = {"reported": 0, "refused": 0, "clean": 0}
    for n in range(runs):
        target = tmp_path / f"m{n}.db"
        data = _mutate(small_store, rng)
        target.write_bytes(data)
        before = hashlib.sha256(data).hexdigest()
        try:
            store = Store.open("sqlite:///" + str(target), read_only=True)
        except HashlensError as exc:
            assert exc.description and "Traceback" not in exc.description
            outcomes["refused"] += 1
        else:
            try:
                result = run_audit(store, options=AuditOptions(across=False))
            except HashlensError as exc:
                assert exc.description and "Traceback" not in exc.description
                outcomes["refused"] += 1
            else:
                if result.worst() is Level.ERROR:
                    outcomes["reported"] += 1
                else:
                    outcomes["clean"] += 1
            finally:
                store.close()
        assert hashlib.sha256(target.read_bytes()).hexdigest() == before, f"mutation {n} changed the file"
        for leftover in tmp_path.glob(f"m{n}.db*"):
            leftover.unlink()
    # The sweep must exercise both paths, or it proves nothing.
    assert outcomes["reported"] > runs // 12 and outcomes["refused"] > runs // 24, outcomes
