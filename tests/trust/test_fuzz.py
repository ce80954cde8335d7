"""The fuzz suite (issue 10): ACI requests and mutated import files. Bounded for CI
(hypothesis, a few hundred examples each); the long campaign runs under `soak`
(scripts/soak.sh); every input that ever failed is replayed from tests/corpus/fuzz/."""

import os
import random
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trust.fuzzing import (
    CORPUS, IMPORT_TARGETS, VALUES, AciBench, aci_campaign, check_aci, check_import, import_campaign, make_seeds,
    mutate, random_request,
)

FUZZ = settings(max_examples=300, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    bench = AciBench(tmp_path_factory.mktemp("aci"))
    yield bench
    bench.close()


@pytest.fixture
def in_bench(bench, monkeypatch):
    monkeypatch.chdir(bench.folder)  # a relative dbpath lands in the bench folder
    return bench


@FUZZ
@given(seed=st.integers(0, 2**32))
def test_aci_requests_from_the_pools(in_bench, seed):
    request = random_request(random.Random(seed), in_bench.values())
    assert check_aci(in_bench.store, request) is None, request


@FUZZ
@given(name=st.sampled_from(["start", "maxresults", "identifier", "database", "imagepath", "metadata", "dbpath"]),
       value=st.text(max_size=60) | st.sampled_from(VALUES))
def test_aci_any_text_in_any_parameter(in_bench, name, value):
    for action in ("ListImageHashes", "TrainImageHash", "ExportImageHashDatabase", "RemoveImageHash"):
        request = f"action={action}&database=db&{name}={value}"
        assert check_aci(in_bench.store, request) is None, request


@FUZZ
@given(raw=st.text(max_size=200))
def test_aci_any_request_text(in_bench, raw):
    assert check_aci(in_bench.store, raw) is None


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from app.store import Store

    folder = tmp_path_factory.mktemp("imports")
    store = Store.open(f"sqlite:///{folder / 'fuzz.db'}")
    seeds = make_seeds(store, folder)
    yield store, folder, seeds
    store.close()


@pytest.mark.parametrize("target", IMPORT_TARGETS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32))
def test_mutated_import_files(seeded, target, seed):
    store, folder, seeds = seeded
    path = folder / f"case.{target}"
    path.write_bytes(mutate(random.Random(seed), seeds[target]))
    assert check_import(store, path, target) is None


def _corpus(kind):
    folder = CORPUS / kind
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("path", _corpus("aci"), ids=lambda p: p.name)
def test_replay_aci_corpus(in_bench, path):
    request = path.read_bytes().decode("utf-8", "surrogatepass")
    assert check_aci(in_bench.store, request) is None


@pytest.mark.parametrize("path", _corpus("import"), ids=lambda p: p.name)
def test_replay_import_corpus(seeded, path):
    store, folder, _ = seeded
    target = path.name.split(".", 1)[1]
    case = folder / f"replay.{target}"
    case.write_bytes(path.read_bytes())
    assert check_import(store, case, target) is None


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.soak
def test_aci_campaign(tmp_path):
    runs = int(os.environ.get("HASHLENS_FUZZ_ACI", 100_000))
    bench = AciBench(tmp_path)
    before = _rss_mb()
    try:
        tally = aci_campaign(bench, runs, seed=int(os.environ.get("HASHLENS_FUZZ_SEED", 1)))
    finally:
        bench.close()
    print(f"\nFUZZ aci: {tally.runs:,} requests, {len(tally.failures)} escaping or partial, "
          f"peak RSS {before:.0f} -> {_rss_mb():.0f} MB")
    assert tally.failures == [], tally.failures[:5]


@pytest.mark.soak
@pytest.mark.parametrize("target", IMPORT_TARGETS)
def test_import_campaign(tmp_path, target):
    runs = int(os.environ.get("HASHLENS_FUZZ_FILES", 10_000))
    before = _rss_mb()
    tally = import_campaign(tmp_path, target, runs, seed=int(os.environ.get("HASHLENS_FUZZ_SEED", 1)))
    print(f"\nFUZZ import {target}: {tally.runs:,} files, {len(tally.failures)} escaping or partial, "
          f"peak RSS {before:.0f} -> {_rss_mb():.0f} MB")
    assert tally.failures == [], tally.failures[:5]
