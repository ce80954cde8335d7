"""The near-duplicate index against brute force: exact, deterministic, and its groups."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.audits import near
from app.domain import Failure, HashlensError, hamming

MASK = (1 << 64) - 1


def _as_sets(pairs):
    return list(zip(pairs.i.tolist(), pairs.j.tolist(), pairs.distance.tolist()))


@st.composite
def hash_sets(draw):
    """Random 64-bit hashes with planted near pairs (flips of up to 12 bits) and copies."""
    base = draw(st.lists(st.integers(0, MASK), min_size=0, max_size=60))
    planted = []
    for _ in range(draw(st.integers(0, 40))):
        if not base:
            break
        src = base[draw(st.integers(0, len(base) - 1))]
        bits = draw(st.lists(st.integers(0, 63), max_size=12, unique=True))
        flipped = src
        for b in bits:
            flipped ^= 1 << b
        planted.append(flipped)
    copies = [base[0]] * draw(st.integers(0, 3)) if base else []
    values = base + planted + copies
    order = draw(st.permutations(range(len(values))))
    return np.array([values[i] for i in order], dtype=np.uint64)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hashes=hash_sets(), radius=st.integers(0, 12))
def test_near_pairs_equal_brute_force(hashes, radius):
    assert _as_sets(near.near_pairs(hashes, radius)) == _as_sets(near.brute_force_pairs(hashes, radius))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hashes=hash_sets(), radius=st.integers(1, 12), scale=st.sampled_from([10**5, 10**6, 10**7, 10**8]))
def test_band_plans_equal_brute_force(hashes, radius, scale):
    """Small sets pick brute force by themselves, so force the plans chosen for big ones."""
    u = np.unique(hashes)
    plan = near.make_plan(scale, radius)
    assert not plan.brute
    got = near.distinct_pairs(u, radius, plan=plan, workers=2)
    want = near.distinct_pairs(u, radius, plan=near.Plan((), 0.0))
    assert _as_sets(got) == _as_sets(want)


def test_plan_for_millions_is_three_bands_at_radius_two():
    plan = near.make_plan(1_000_000, 8)
    assert [(b.width, b.radius) for b in plan.bands] == [(22, 2), (21, 2), (21, 2)]
    assert sum(b.width for b in plan.bands) == 64
    # The pigeonhole condition for every radius and size.
    for n in (10, 10**4, 10**6, 10**7):
        for r in range(0, 17):
            p = near.make_plan(n, r)
            assert p.brute or sum(b.radius + 1 for b in p.bands) >= r + 1


def test_every_planted_pair_found_and_nothing_false_on_many_hashes():
    rng = np.random.default_rng(7)
    h = rng.integers(0, 2**64, 20_000, dtype=np.uint64)
    planted = []
    for k in range(300):
        i = int(rng.integers(0, len(h)))
        bits = rng.choice(64, int(rng.integers(0, 9)), replace=False)
        v = int(h[i])
        for b in bits:
            v ^= 1 << int(b)
        planted.append((i, len(h)))
        h = np.append(h, np.uint64(v))
    plan = near.make_plan(10**7, 8)
    u, inverse = np.unique(h, return_inverse=True)
    pairs = near.distinct_pairs(u, 8, plan=plan)
    found = set(zip(pairs.i.tolist(), pairs.j.tolist()))
    for a, b in planted:
        va, vb = inverse[a], inverse[b]
        assert va == vb or (min(va, vb), max(va, vb)) in found
    for a, b, d in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.distance.tolist()):
        assert hamming(int(u[a]), int(u[b])) == d <= 8


def _reference_groups(hashes, radius):
    n = len(hashes)
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in range(n):
        for j in range(i + 1, n):
            if hamming(int(hashes[i]), int(hashes[j])) <= radius:
                parent[find(j)] = find(i)
    comps = {}
    for i in range(n):
        comps.setdefault(find(i), []).append(i)
    groups = []
    for members in comps.values():
        if len(members) > 1:
            d = max(hamming(int(hashes[a]), int(hashes[b])) for a in members for b in members)
            groups.append((tuple(members), d))
    return sorted(groups)


@settings(max_examples=100, deadline=None)
@given(hashes=hash_sets(), radius=st.integers(0, 10))
def test_groups_are_connected_components_in_order(hashes, radius):
    groups = near.near_groups(hashes, radius)
    assert [(g.members, g.max_distance) for g in groups] == _reference_groups(hashes, radius)
    assert all(g.exact_max for g in groups)
    assert [g.members[0] for g in groups] == sorted(g.members[0] for g in groups)


def test_groups_are_deterministic_across_runs_and_workers():
    rng = np.random.default_rng(3)
    h = rng.integers(0, 2**64, 5000, dtype=np.uint64)
    h[100:200] = h[:100] ^ np.uint64(0b1011)
    runs = [near.near_groups(h, 8, workers=w) for w in (1, 2, 1, 2)]
    assert all(r == runs[0] for r in runs)
    assert len(runs[0]) >= 100


def test_chained_group_reports_its_largest_internal_distance():
    a = 0x0F0F0F0F0F0F0F0F
    chain = [a, a ^ 0b11111, a ^ 0b1111111111]  # 5 apart, 5 apart, 10 end to end
    groups = near.near_groups(np.array(chain, dtype=np.uint64), 5)
    assert [(g.members, g.max_distance) for g in groups] == [((0, 1, 2), 10)]


def test_many_copies_of_one_hash_do_not_explode():
    h = np.zeros(200_000, dtype=np.uint64)
    h[-1] = 1 << 40
    groups = near.near_groups(h, 8)
    assert len(groups) == 1 and len(groups[0].members) == 200_000 and groups[0].max_distance == 1


def test_signed_hashes_and_python_ints_are_accepted():
    values = [-1, (1 << 64) - 2, 5]
    assert near.as_hashes(np.array([-1], dtype=np.int64))[0] == np.uint64(MASK)
    pairs = near.near_pairs(values, 1)
    assert _as_sets(pairs) == [(0, 1, 1)]


@pytest.mark.parametrize("bad", [-1, 33, 2.5, True, "8"])
def test_bad_radius_is_a_clear_error(bad):
    with pytest.raises(HashlensError) as err:
        near.near_pairs(np.zeros(3, dtype=np.uint64), bad)
    assert err.value.failure is Failure.PARAM_INVALID and "0 to 32" in err.value.description


def test_search_can_be_cancelled():
    h = np.random.default_rng(1).integers(0, 2**64, 50_000, dtype=np.uint64)
    with pytest.raises(HashlensError) as err:
        near.near_groups(h, 8, cancelled=lambda: True)
    assert err.value.failure is Failure.CANCELLED


def test_progress_reaches_the_total():
    seen = []
    h = np.random.default_rng(2).integers(0, 2**64, 3000, dtype=np.uint64)
    near.distinct_pairs(np.unique(h), 8, plan=near.make_plan(10**6, 8), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] > 0
    assert all(d <= t for d, t in seen)


def test_components_join_chains_and_stars():
    label = near.components(7, np.array([5, 1, 2, 0]), np.array([6, 2, 3, 5]))
    assert label.tolist() == [0, 1, 1, 1, 4, 0, 0]


def test_diameter_of_a_huge_group_is_a_marked_lower_bound():
    values = np.arange(30, dtype=np.uint64)
    assert near.diameter(values) == (max(hamming(a, b) for a in range(30) for b in range(30)), True)
    d, exact = near.diameter(values, limit=10)
    assert not exact and d <= 5


def test_crowded_buckets_grow_the_kernel_buffers_and_stay_exact():
    """A cluster of 3,000 hashes differing only in 11 bits spread over all three bands
    (more pairs per chunk than the kernel's first output capacity), and 6,000 hashes
    sharing one band key next to a lone hash's key (more neighbours than its first
    comparison buffer): both buffers grow and the answer still equals brute force."""
    rng = np.random.default_rng(11)
    spread = np.array([1, 5, 9, 23, 27, 30, 44, 47, 50, 61, 63], dtype=np.uint64)
    flips = rng.integers(0, 2, (3000, len(spread)), dtype=np.uint64)
    cluster = np.uint64(0x9E3779B97F4A7C15) ^ (flips << spread).sum(axis=1, dtype=np.uint64)
    plan = near.make_plan(10**7, 8)
    band0 = np.uint64((1 << plan.bands[0].width) - 1)
    crowd = (rng.integers(0, 2**64, 6000, dtype=np.uint64) & ~band0) | np.uint64(0b10)
    lone = crowd[:5] ^ np.uint64(0b11)  # key 0b01: the crowd's key is one flip away
    u = np.unique(np.concatenate([cluster, crowd, lone]))
    got = near.distinct_pairs(u, 8, plan=plan, workers=2)
    want = near.distinct_pairs(u, 8, plan=near.Plan((), 0.0))
    assert len(want) > 10_000
    assert np.array_equal(got.i, want.i) and np.array_equal(got.j, want.j)
    assert np.array_equal(got.distance, want.distance)
