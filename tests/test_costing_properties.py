"""Invariants of the cost model (docs/cost-model.md section 6), over random timelines (hypothesis).

Cases:
- lines add up: total() == sum of by_workload() == sum of by_period() == sum of by_namespace(),
  per component, exactly; every row's total_cost is the sum of its components.
- bandwidth charges add up: the day lines of an egress timeline equal the billing-period
  charges of egress_cost(), whatever the report zone and billing zone (per-GB: in the same
  zone); so do windows that partition the data.
- savings == baseline - actual per component, per period, per cost object and in total.
- monotone: more replicas, higher prices -> compute never cheaper; more viewers or bitrate ->
  egress never cheaper under each billing model.
- zero replicas -> zero compute; zero viewers -> zero egress.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.schema import Cost, Resources
from scaler.costing import (
    ComponentCosts,
    CostBreakdown,
    EgressTimeline,
    ReplicaTimeline,
    TranscodingTimeline,
    cost_breakdown,
    egress_cost,
    savings,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = datetime(2024, 10, 30, tzinfo=timezone.utc)
ZONES = st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kathmandu"])
BILLINGS = st.sampled_from(["per_gb", "daily_peak_bandwidth", "monthly_p95"])
STEPS_S = st.sampled_from([60, 300, 900, 3600, 5400, 7200])
price = st.decimals(min_value=0, max_value=5, places=4).map(float)


@st.composite
def grids(draw, max_n: int = 40) -> tuple[pd.DatetimeIndex, int]:
    """A regular grid somewhere around the Oct/Nov month end (days, month and DST edges)."""
    n = draw(st.integers(1, max_n))
    step = draw(STEPS_S)
    offset_s = draw(st.integers(0, 4 * 86400))
    ts = pd.date_range(BASE + timedelta(seconds=offset_s), periods=n, freq=f"{step}s")
    return ts, step


def values(n: int, hi: float, nan: bool = True) -> st.SearchStrategy:
    elem = st.floats(0, hi, allow_nan=False)
    if nan:
        elem = st.one_of(elem, elem, elem, st.just(float("nan")))
    return st.lists(elem, min_size=n, max_size=n).map(lambda v: np.array(v, float))


@st.composite
def replica_timelines(draw, name: str) -> ReplicaTimeline:
    ts, step = draw(grids())
    r = draw(values(len(ts), 60.0))
    res = Resources(cpu_cores=draw(st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.5])),
                    memory_gib=draw(st.sampled_from([0.5, 1.0, 2.0, 6.0])))
    ns = draw(st.sampled_from(["live", "api"]))
    end = ts[-1].to_pydatetime() + timedelta(seconds=step)
    return ReplicaTimeline(name, ns, "Deployment", name, ts, r, res, end=end)


@st.composite
def egress_timelines(draw) -> EgressTimeline:
    ts, step = draw(grids(60))
    n = len(ts)
    tiers = {t: (draw(values(n, 5000.0)), draw(st.sampled_from([400.0, 1500.0, 3000.0])))
             for t in draw(st.sets(st.sampled_from(["core", "silent", "edge"]), min_size=1))}
    return EgressTimeline(ts, tiers, end=ts[-1].to_pydatetime() + timedelta(seconds=step))


@st.composite
def prices(draw) -> Cost:
    return Cost(cpu_core_hour=draw(price), memory_gib_hour=draw(price), egress_per_gb=draw(price),
                egress_per_mbps_day=draw(price), egress_per_mbps_month=draw(price),
                transcoding_per_rung_hour=draw(price))


@st.composite
def scenarios(draw) -> dict:
    k = draw(st.integers(1, 3))
    reps = [draw(replica_timelines(f"w{i}")) for i in range(k)]
    egr = [draw(egress_timelines())] if draw(st.booleans()) else []
    trc = []
    if draw(st.booleans()):
        ts, step = draw(grids())
        trc = [TranscodingTimeline(ts, draw(values(len(ts), 200.0)), draw(st.integers(1, 6)),
                                   end=ts[-1].to_pydatetime() + timedelta(seconds=step))]
    return {"replicas": reps, "egress": egr, "transcoding": trc}


def _sum(costs) -> ComponentCosts:
    out = ComponentCosts()
    for c in costs:
        out = out + c
    return out


def _check_lines_add_up(b: CostBreakdown) -> None:
    total = b.total()
    assert _sum(b.by_workload().values()) == total
    assert _sum(b.by_period().values()) == total
    assert _sum(b.by_namespace().values()) == total
    for row in b.rows():
        assert row["total_cost"] == row["cpu_cost"] + row["ram_cost"] + row["egress_cost"] + row["transcoding_cost"]


@SETTINGS
@given(scenarios(), prices(), ZONES, ZONES, BILLINGS)
def test_lines_add_up_to_totals_by_day(sc, cost, zone, billing_zone, billing):
    b = cost_breakdown("actual", cost, zone=zone, billing_zone=billing_zone, billing=billing, **sc)
    _check_lines_add_up(b)
    # Bandwidth charges are split, never re-rounded: the day lines add up to the bill. Per-GB
    # lines are rounded on their own, so they match the bill's days only in the same zone.
    if billing != "per_gb" or zone == billing_zone:
        for t in sc["egress"]:
            bill = egress_cost(t, cost, billing, billing_zone=billing_zone)
            assert b.by_workload()[("", "CDN", t.name)].egress == bill.total


@SETTINGS
@given(egress_timelines(), prices(), ZONES, st.sampled_from(["daily_peak_bandwidth", "monthly_p95"]),
       st.lists(st.integers(1, 10**6), max_size=4))
def test_windows_partitioning_the_data_share_the_charges_exactly(t, cost, billing_zone, billing, cuts):
    start = t.ts[0].to_pydatetime()
    end = t.end
    span = int((end - start).total_seconds())
    edges = sorted({0, span, *[c % span for c in cuts]})
    windows = [(f"w{i}", start + timedelta(seconds=a), start + timedelta(seconds=b))
               for i, (a, b) in enumerate(zip(edges, edges[1:]))]
    b = cost_breakdown("actual", cost, egress=[t], by=windows, billing=billing, billing_zone=billing_zone)
    _check_lines_add_up(b)
    assert b.total().egress == egress_cost(t, cost, billing, billing_zone=billing_zone).total


def _other_strategy(sc: dict, data: st.DataObject) -> dict:
    """The same timelines (same grids, same cost objects) with other values: a baseline."""
    def redraw(n: int, hi: float) -> np.ndarray:
        return data.draw(values(n, hi))

    return {
        "replicas": [ReplicaTimeline(t.workload, t.namespace, t.kind, t.name, t.ts, redraw(len(t.ts), 60.0),
                                     t.resources, t.end) for t in sc["replicas"]],
        "egress": [EgressTimeline(t.ts, {k: (redraw(len(t.ts), 5000.0), kb) for k, (_, kb) in t.tiers.items()}, t.end)
                   for t in sc["egress"]],
        "transcoding": [TranscodingTimeline(t.ts, redraw(len(t.ts), 200.0), t.rungs, t.end) for t in sc["transcoding"]],
    }


@settings(SETTINGS, max_examples=25)
@given(scenarios(), prices(), ZONES, BILLINGS, st.data())
def test_savings_are_baseline_minus_actual(sc, cost, zone, billing, data):
    actual = cost_breakdown("ebbtide", cost, zone=zone, billing=billing, **sc)
    baseline = cost_breakdown("static", cost, zone=zone, billing=billing, **_other_strategy(sc, data))
    s = savings(actual, baseline)
    assert s.total == baseline.total() - actual.total()
    for comp in ("cpu", "ram", "egress", "transcoding"):
        assert getattr(s.total, comp) == getattr(baseline.total(), comp) - getattr(actual.total(), comp)
    bp, ap = baseline.by_period(), actual.by_period()
    assert s.by_period == {k: bp[k] - ap[k] for k in bp}
    aw, bw = actual.by_workload(), baseline.by_workload()
    assert s.by_workload == {k: bw[k] - aw[k] for k in bw}
    assert _sum(s.by_workload.values()) == s.total == _sum(s.by_period.values())


@SETTINGS
@given(replica_timelines("web"), prices(), st.data(), ZONES)
def test_compute_is_monotone_in_replicas_and_prices(t, cost, data, zone):
    n = len(t.ts)
    more = np.where(np.isnan(t.replicas), np.nan, t.replicas + data.draw(values(n, 5.0, nan=False)))
    dearer = Cost(cpu_core_hour=cost.cpu_core_hour + data.draw(price),
                  memory_gib_hour=cost.memory_gib_hour + data.draw(price))
    base = cost_breakdown("a", cost, replicas=[t], zone=zone).total()
    bigger = cost_breakdown("a", cost, replicas=[ReplicaTimeline(t.workload, t.namespace, t.kind, t.name, t.ts, more,
                                                                 t.resources, t.end)], zone=zone).total()
    pricier = cost_breakdown("a", dearer, replicas=[t], zone=zone).total()
    assert bigger.cpu >= base.cpu and bigger.ram >= base.ram
    assert pricier.cpu >= base.cpu and pricier.ram >= base.ram
    zero = ReplicaTimeline(t.workload, t.namespace, t.kind, t.name, t.ts, np.zeros(n), t.resources, t.end)
    zb = cost_breakdown("a", cost, replicas=[zero], zone=zone)
    assert zb.total() == ComponentCosts() and all(ln.cpu_core_hours == 0 for ln in zb.lines)


@SETTINGS
@given(egress_timelines(), prices(), BILLINGS, ZONES, st.data())
def test_egress_is_monotone_in_viewers_bitrate_and_price(t, cost, billing, billing_zone, data):
    n = len(t.ts)
    more = {}
    for tier, (viewers, kbps) in t.tiers.items():
        extra = data.draw(values(n, 500.0, nan=False))
        faster = kbps * data.draw(st.sampled_from([1, 1.5, 2]))
        more[tier] = (np.where(np.isnan(viewers), np.nan, viewers + extra), faster)
    dearer = cost.model_copy(update={k: getattr(cost, k) + data.draw(price)
                                     for k in ("egress_per_gb", "egress_per_mbps_day", "egress_per_mbps_month")})
    base = egress_cost(t, cost, billing, billing_zone=billing_zone).total
    assert egress_cost(EgressTimeline(t.ts, more, t.end), cost, billing, billing_zone=billing_zone).total >= base
    assert egress_cost(t, dearer, billing, billing_zone=billing_zone).total >= base
    silent = EgressTimeline(t.ts, {k: (np.zeros(n), kb) for k, (_, kb) in t.tiers.items()}, t.end)
    assert egress_cost(silent, cost, billing, billing_zone=billing_zone).total == Decimal(0)
