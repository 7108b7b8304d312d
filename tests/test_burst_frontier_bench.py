"""bench/burst_frontier.py's model, on series small enough to work by hand.

Cases:
- pods: ceil(capacity / per_replica) at least min_replicas, binary noise buying no pod;
- the stabilised maximum over n points, NaN ignored;
- a flat hourly series has no shortfall; one jump 100 -> 200 (per_replica 10, min 1) leaves the
  HPA's 13 pods short by 70 for the pre-observation share (150 + 7.5 + 45 s of the hour) and one
  sync of its ramp (13 -> 25 pods), hand-computed;
- on an hourly grid the stabilisation window holds one point, so `HPA x m` at m = 1.25 is the HPA
  itself (1.0x its replica-hours and shortfall), and `last x m` at 1.25 too;
- more capacity before the observation never serves less: each family's shortfall falls as its
  cost rises along its curve;
- readings: the lowest cost meeting the shortfall target, the lowest shortfall within the cost
  target, None where the curve never gets there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("burst_frontier")


def _hours(n: int) -> np.ndarray:
    return np.asarray(pd.date_range("2026-10-01", periods=n, freq="h", tz="UTC").hour, dtype=int)


def test_pods(bench):
    got = bench.pods(np.array([0.0, 10.0, 10.5, 1000 * 1.1 / 100 * 10]), 10.0, 1)
    assert got.tolist() == [1, 1, 2, 11]
    assert bench.pods(np.array([5.0, 100.0]), 10.0, 4).tolist() == [4, 10]


def test_stabilised_max(bench):
    v = np.array([1.0, 5.0, np.nan, 2.0, 3.0])
    assert bench.stabilised_max(v, 2).tolist() == [1.0, 5.0, 5.0, 2.0, 3.0]
    assert bench.stabilised_max(v, 1)[[0, 1, 3, 4]].tolist() == [1.0, 5.0, 2.0, 3.0]


def test_flat_series_has_no_shortfall_and_one_jump_is_hand_computed(bench):
    s = bench.Setting.reference(min_replicas=1)
    v = np.full(60, 100.0)
    r = bench.frontier(v, 3600.0, 30, 50, 10.0, _hours(60), s)
    assert r["hpa_under_share"] == 0.0
    v[40] = 200.0
    r = bench.frontier(v, 3600.0, 30, 50, 10.0, _hours(60), s)
    pre = (150 + 7.5 + 45) / 3600
    assert r["pre"] == pytest.approx(pre)
    assert r["stabilised_points"] == 1
    # 13 pods (130) before the observation and during the first sync of the ramp, then 25
    total = 100.0 * 19 + 200.0
    assert r["hpa_under_share"] == pytest.approx(70.0 * (pre + 15 / 3600) / total)


def test_hpa_family_at_its_own_target_is_the_hpa(bench):
    rng = np.random.default_rng(3)
    n = 24 * 21
    v = 100 + 50 * np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(0, 10, n)
    r = bench.frontier(v, 3600.0, 24 * 14, n - 1, 10.0, _hours(n), bench.Setting.reference(min_replicas=1))
    for name in ("HPA x m", "last x m"):
        at = {p: (c, u) for p, c, u in r["families"][name]["curve"]}
        assert at[1.25] == (pytest.approx(1.0), pytest.approx(1.0))
    for name, fam in r["families"].items():
        curve = sorted(fam["curve"], key=lambda x: x[1])
        unders = [u for _, _, u in curve]
        assert all(a >= b - 1e-9 for a, b in zip(unders, unders[1:])), name


def test_readings(bench):
    curve = [(1.0, 0.9, 1.5), (1.2, 1.05, 0.8), (1.4, 1.2, 0.6), (1.6, 1.4, 0.4)]
    got = bench.readings(curve)
    assert got == {"cost_at_under_target": 1.2, "under_at_cost_target": 0.8, "both": False}
    assert bench.readings([(1.0, 1.05, 0.6)])["both"] is True
    assert bench.readings([(1.0, 1.3, 0.9)]) == {"cost_at_under_target": None, "under_at_cost_target": None,
                                                 "both": False}
