"""The catalogue benchmark's object counts (its timings are reported, never asserted)."""

from __future__ import annotations

from benchmarks.catalogue import measure


def test_objects_grow_linearly_with_a_fixed_cost_per_api_and_consumer() -> None:
    base, small, large = (measure(size, timing=False) for size in (0, 4, 8))
    for m in (small, large):
        assert (m.per_api, m.mesh_per_api, m.per_consumer) == (2, 1, 3)
    per_pair = 2 + 1 + 3
    # The first APIs add the plugins they share by content; more APIs add nothing shared.
    shared = small.objects - base.objects - 4 * per_pair
    assert large.objects - small.objects == 4 * per_pair
    assert 0 < shared <= 3
    # Resources (objects plus generated keys) grow by the same amount for every 4 more pairs.
    assert small.resources - base.resources - shared == large.resources - small.resources
