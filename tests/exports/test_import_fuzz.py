"""Mutated and random import files (a light, CI-sized stand-in for fuzzing F1-F3): the
importer either imports or raises its own clear error, and a refused file changes nothing."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import HashlensError, ListingQuery
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
from app.exports.importer import ImportOptions, import_file

from .conftest import add_plain, store_digest

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SEEDS: dict[str, bytes] = {}


def _seed(store, tmp_path, fmt: str) -> bytes:
    if fmt not in SEEDS:
        if not store.database_exists("Seed"):
            add_plain(store, "Seed", [("a", "=x", 1, [("k", "v,\"w\"")], 1), ("b\nc", "lbl", 2, [], 2)])
        path = tmp_path / f"seed.{fmt}"
        export_listing(store, ListingQuery("Seed", imagestatus=True, metadata=True), path,
                       ExportOptions(fmt, manifest=False))
        SEEDS[fmt] = path.read_bytes()
    return SEEDS[fmt]


mutations = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from(["set", "insert", "cut"])),
                     min_size=1, max_size=6)


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for where, byte, how in edits:
        if not out:
            out.append(byte)
            continue
        i = where % len(out)
        if how == "set":
            out[i] = byte
        elif how == "insert":
            out.insert(i, byte)
        else:
            del out[i:i + byte % 8 + 1]
    return bytes(out)


def _check(store, path, data):
    path.write_bytes(data)
    before = store_digest(store)
    try:
        import_file(store, path, f"F{uuid.uuid4().hex[:8]}", ImportOptions())
    except HashlensError as exc:
        assert "Traceback" not in exc.description and str(path) in exc.description
        assert store_digest(store) == before
    assert not store.db.in_transaction()


@FUZZ
@given(fmt=st.sampled_from(["xml", "csv", "json", "ndjson", "tsv"]), edits=mutations)
def test_mutated_exports(sqlite_store, tmp_path, fmt, edits):
    data = _mutate(_seed(sqlite_store, tmp_path, fmt), edits)
    _check(sqlite_store, tmp_path / f"fuzz.{fmt}", data)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from(["xml", "csv", "json", "ndjson", "tsv", "bin"]))
def test_random_bytes(sqlite_store, tmp_path, data, suffix):
    _check(sqlite_store, tmp_path / f"random.{suffix}", data)
