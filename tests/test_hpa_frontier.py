"""The HPA's trade-off curve (scaler/replay/frontier.py, runner.replay_hpa) and the bench's reading of it.

Cases:
- `replay_hpa` at u = 0.8 equals the `hpa` column of the full replay (fake forecaster, real
  planner) on a synthetic 5-minute sale: same replica-hours, under share, under minutes,
  actions and peak, over the whole replay and over the post-event window; an event with no
  window in the replay is an error naming the windows there are;
- on that trace the HPA's replica-hours do not increase as the target utilisation rises
  (0.4 .. 0.9), and the u = 0.8 point of `hpa_frontier` is the `hpa` column again;
- interpolation by hand on a 3-point curve given out of spend order: the under share at 150,
  250 and exactly 200 replica-hours; below and above the curve (the nearest end, flagged);
  the replica-hours for an under share of 0.055, 0.02, one the cheapest tuning already reaches
  (below) and one no tuning reaches (above);
- on a curve that is not monotone the first segment reaching the share wins (hand-computed);
  two tunings with equal replica-hours read as the lower share;
- property: on any curve whose share falls as spend rises, reading the share at the
  replica-hours found for a share inside the curve gives that share back;
- errors for people: no points, a target utilisation <= 0 (library and --frontier-u, whose
  default is the library's);
- the bench: `frontier_reading` on a hand-made curve (ratios and outside flags); the frontier
  table prints for a row with `hpa_frontier`, says ABOVE when Ebbtide is above it, and a row from
  an older --json run (no frontier) prints nothing of it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_bench
from forecaster.synthetic import SaleSpec, generate
from policies.errors import EbbtideError
from policies.loading import load_policy_text
from scaler.replay import (
    FrontierPoint,
    HpaSettings,
    ReplayOptions,
    hpa_frontier,
    replay,
    replay_hpa,
    replica_hours_for_under_share,
    under_share_at,
)
from scaler.replay.frontier import DEFAULT_UTILISATIONS
from test_replay import POLICY, T0, LastDayPeak  # the replay tests' trace, policy and fake forecaster

@pytest.fixture(scope="module")
def sale():
    spec = SaleSpec(day=2, peak_multiplier=5.0, ramp=timedelta(hours=12))
    return generate(T0, 3, timedelta(minutes=5), seed=7, sale=spec, base_level=20_000.0)


@pytest.fixture(scope="module")
def policy():
    return load_policy_text(POLICY)


@pytest.fixture(scope="module")
def full(sale, policy):
    return replay(sale.series, policy, extra_events=list(sale.events), make_model=LastDayPeak)


def _same(a, b) -> None:
    assert a.replica_hours == b.replica_hours
    assert a.under_provisioned_share == b.under_provisioned_share
    assert a.under_provisioned_minutes == b.under_provisioned_minutes
    assert (a.scaling_actions, a.peak_replicas) == (b.scaling_actions, b.peak_replicas)


# --------------------------------------------------------------------------- replay_hpa
def test_hpa_only_replay_equals_the_hpa_column_of_the_full_replay(sale, policy, full):
    alone = replay_hpa(sale.series, policy, extra_events=list(sale.events))
    assert alone.settings.target_utilisation == 0.8
    assert (alone.start, alone.end) == (full.start, full.end)
    _same(alone.summary, full.strategies["hpa"])
    [w] = full.windows
    _same(alone.window(w.event), w.strategies["hpa"])
    assert full.strategies["hpa"].under_provisioned_share > 0  # the comparison has something to compare
    with pytest.raises(EbbtideError, match="no post-event window for 'nope'.*" + w.event):
        alone.window("nope")


def test_hpa_replica_hours_do_not_rise_with_the_target_utilisation(sale, policy, full):
    us = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    [w] = full.windows
    points = hpa_frontier(sale.series, policy, w.event, utilisations=us, extra_events=list(sale.events))
    assert [p.target_utilisation for p in points] == list(us)
    rh = [p.replica_hours for p in points]
    assert all(b <= a for a, b in zip(rh, rh[1:])), rh
    assert rh[0] > rh[-1]  # the curve spans something
    at_08 = points[us.index(0.8)]
    hpa = w.strategies["hpa"]
    assert (at_08.replica_hours, at_08.under_provisioned_share) == (hpa.replica_hours, hpa.under_provisioned_share)


def test_frontier_rejects_a_non_positive_utilisation(sale, policy):
    with pytest.raises(EbbtideError, match="positive"):
        hpa_frontier(sale.series, policy, "x", utilisations=(0.8, 0.0), extra_events=list(sale.events),
                     options=ReplayOptions(hpa=HpaSettings()))


# --------------------------------------------------------------------------- interpolation
CURVE = [  # given in u order: spend falls as u rises
    FrontierPoint(0.5, 300.0, 0.01, 10.0),
    FrontierPoint(0.7, 200.0, 0.03, 30.0),
    FrontierPoint(0.9, 100.0, 0.08, 80.0),
]


def test_under_share_at_interpolates_between_the_enclosing_tunings():
    assert under_share_at(CURVE, 150.0).value == pytest.approx(0.055)  # 0.08 + 0.5 x (0.03 - 0.08)
    assert under_share_at(CURVE, 250.0).value == pytest.approx(0.02)
    assert under_share_at(CURVE, 200.0).value == pytest.approx(0.03)
    assert under_share_at(CURVE, 125.0).value == pytest.approx(0.0675)  # 0.08 - 0.25 x 0.05
    assert under_share_at(CURVE, 150.0).outside is None


def test_under_share_outside_the_curve_is_the_nearest_end_flagged():
    low, high = under_share_at(CURVE, 50.0), under_share_at(CURVE, 400.0)
    assert (low.value, low.outside) == (0.08, "below")
    assert (high.value, high.outside) == (0.01, "above")


def test_replica_hours_for_an_under_share():
    assert replica_hours_for_under_share(CURVE, 0.055).value == pytest.approx(150.0)
    assert replica_hours_for_under_share(CURVE, 0.02).value == pytest.approx(250.0)
    assert replica_hours_for_under_share(CURVE, 0.03).value == pytest.approx(200.0)
    assert replica_hours_for_under_share(CURVE, 0.02).outside is None
    cheap, dear = replica_hours_for_under_share(CURVE, 0.09), replica_hours_for_under_share(CURVE, 0.005)
    assert (cheap.value, cheap.outside) == (100.0, "below")
    assert (dear.value, dear.outside) == (300.0, "above")


def test_a_curve_that_is_not_monotone_reads_its_first_crossing_and_the_lower_of_equal_spends():
    bumpy = [FrontierPoint(0.9, 100.0, 0.05, 0), FrontierPoint(0.8, 200.0, 0.02, 0),
             FrontierPoint(0.7, 300.0, 0.03, 0), FrontierPoint(0.6, 400.0, 0.01, 0)]
    # 0.025 is first reached between 100 (0.05) and 200 (0.02): 100 + 100 x 0.025 / 0.03
    assert replica_hours_for_under_share(bumpy, 0.025).value == pytest.approx(100.0 + 100.0 * 0.025 / 0.03)
    assert under_share_at(bumpy, 250.0).value == pytest.approx(0.025)
    twins = [FrontierPoint(0.8, 200.0, 0.04, 0), FrontierPoint(0.7, 200.0, 0.03, 0), FrontierPoint(0.6, 300.0, 0.01, 0)]
    assert under_share_at(twins, 200.0).value == pytest.approx(0.03)
    assert under_share_at(twins, 250.0).value == pytest.approx(0.02)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 50.0), st.floats(1e-4, 0.05)), min_size=2, max_size=7),
       st.floats(0.0, 1.0))
def test_reading_back_the_share_at_the_spend_found_for_it(steps, where):
    rh, share, points = 100.0, 0.5, []
    for i, (d_rh, d_share) in enumerate(steps):  # spend rises, share falls, strictly
        rh, share = rh + d_rh, share - d_share
        points.append(FrontierPoint(1.0 - i / 10, rh, share, 0.0))
    lo, hi = points[-1].under_provisioned_share, points[0].under_provisioned_share
    target = lo + where * (hi - lo) * 0.999 + 1e-9 * (hi - lo)  # strictly inside (lo, hi)
    need = replica_hours_for_under_share(points, target)
    assert need.outside is None
    assert under_share_at(points, need.value).value == pytest.approx(target, rel=1e-9, abs=1e-12)


def test_no_points_is_an_error():
    with pytest.raises(EbbtideError, match="no points"):
        under_share_at([], 1.0)
    with pytest.raises(EbbtideError, match="no points"):
        replica_hours_for_under_share([], 0.1)


# --------------------------------------------------------------------------- the bench
@pytest.fixture(scope="module")
def bench():
    return load_bench("replay")


def test_bench_frontier_reading_by_hand(bench):
    inside = bench.frontier_reading(150.0, 0.0275, CURVE)
    assert inside["hpa_under_share_at_ebbtide_replica_hours"] == pytest.approx(0.055)
    assert inside["ebbtide_under_vs_frontier"] == pytest.approx(0.5)
    # 0.0275 is reached between 200 (0.03) and 300 (0.01): 200 + 100 x 0.0025 / 0.02 = 212.5
    assert inside["hpa_replica_hours_for_ebbtide_under_share"] == pytest.approx(212.5)
    assert inside["frontier_replica_hours_vs_ebbtide"] == pytest.approx(212.5 / 150.0)
    assert inside["at_ebbtide_replica_hours_outside"] is None and inside["for_ebbtide_under_share_outside"] is None
    cheap = bench.frontier_reading(80.0, 0.2, CURVE)
    assert (cheap["at_ebbtide_replica_hours_outside"], cheap["for_ebbtide_under_share_outside"]) == ("below", "below")
    assert cheap["ebbtide_under_vs_frontier"] == pytest.approx(0.2 / 0.08)


def _row(bench, ebbtide_under: float, with_frontier: bool = True) -> dict:
    strat = {"replica_hours": 150.0, "under_provisioned_share": ebbtide_under, "under_provisioned_minutes": 5.0,
             "scaling_actions": 3}
    row = {"trace": "t", "after_days": 14, "workload": "edge",
           "strategies": {"ebbtide": dict(strat), "hpa": dict(strat), "static": dict(strat, replica_hours=300.0)},
           "ebbtide_vs_war": 0.5, "ebbtide_vs_hpa": 1.0, "under_vs_hpa": 1.0,
           "simulation": {"wall_s": 1.0, "refits": 1, "fit_s_median": 0.1, "trusted_tick_share": 1.0}}
    if with_frontier:
        row["hpa_frontier"] = [p.to_dict() for p in CURVE]
        row["frontier"] = bench.frontier_reading(150.0, ebbtide_under, CURVE)
    return row


def test_bench_prints_the_frontier_and_reads_older_json(bench, capsys):
    bench.print_frontier([_row(bench, 0.0275)])
    out = capsys.readouterr().out
    assert "Against every HPA tuning" in out and "u=0.5" in out and "u=0.9" in out
    assert "t: BELOW the HPA frontier" in out and "0.50x" in out
    bench.print_frontier([_row(bench, 0.11)])  # Ebbtide leaves 2x the HPA's 0.055 at equal spend
    assert "t: ABOVE the HPA frontier" in capsys.readouterr().out
    bench.print_frontier([_row(bench, 0.0275, with_frontier=False)])
    assert capsys.readouterr().out == ""


def test_bench_frontier_when_neither_leaves_demand_unserved(bench, capsys):
    """0 unserved against an HPA curve at 0: no ratio (it read 0.00x, "BELOW the HPA frontier")."""
    flat = [FrontierPoint(p.target_utilisation, p.replica_hours, 0.0, 0.0) for p in CURVE]
    reading = bench.frontier_reading(150.0, 0.0, flat)
    assert reading["ebbtide_under_vs_frontier"] is None
    row = _row(bench, 0.0)
    row["hpa_frontier"], row["frontier"] = [p.to_dict() for p in flat], reading
    bench.print_frontier([row])
    out = capsys.readouterr().out
    assert "t: level with the HPA frontier (neither leaves demand unserved at this spend)" in out
    assert "BELOW" not in out and "0.00x of it" not in out


def test_bench_frontier_u_option_rejects_non_positive_values(bench):
    assert bench.FRONTIER_U == DEFAULT_UTILISATIONS
    assert bench._utilisations("0.5, 0.7") == (0.5, 0.7)
    for bad in ("0,0.5", "x", ""):
        with pytest.raises(Exception, match="expected numbers|positive"):
            bench._utilisations(bad)
