"""The cost model against examples worked on paper (docs/cost-model.md), and its errors.

Cases:
- compute: 2 replicas x 3 h x (1 core x $0.04 + 2 GiB x $0.005) = $0.30; split over UTC days
  ($0.10 + $0.20) and one Asia/Shanghai day; fractional replicas and NaN (unknown: free, noted);
  prices taken as the decimal written (0.015 -> 0.02, not the binary float's 0.01); half up.
- egress per GB: 1000 viewers x 2000 kbps x 1 h = 900 GB -> $18.00; two tiers -> 990 GB.
- daily peak: 288 samples at 100 Mbps with one at 250 -> $37.50; a 1-minute spike is averaged
  into its 5-minute sample (200 Mbps); a partial day on an hourly grid is prorated by its
  covered seconds (6 h at a 300 Mbps peak: $11.25, it was billed $45.00 in full).
- monthly p95: 20 samples 1..20 -> 19 Mbps (rank 19), prorated 6000 s / 30 d; 100 samples ->
  95 Mbps; a full 30-day month with 432 vs 433 spikes (the 5% boundary) -> $200 vs $1000;
  a timeline across a month end gives two charges.
- transcoding: 10 streams x 4 rungs x 2 h x $0.01 = $0.80; rungs_produced from tier caps.
- splitting a charge: billed per UTC day, reported per Asia/Shanghai day ($10 + $5); three
  8-hour windows of a $10 day get 3.33 + 3.34 + 3.33 (cumulative rounding).
- windows: a window partly outside the data; a window outside it has no line.
- savings: static 4 pods vs 2 pods -> $0.30 "potential"; realised wording; mismatched inputs.
- replay timeline frames -> timelines; CSV: header, types, totals, opens with the csv module.
- errors for people: naive or unordered timestamps, wrong lengths, negative values, single
  sample without end, bad window, unknown zone, a timeline given twice.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from policies.errors import EbbtideError
from policies.schema import Cost, Resources, Workload
from scaler.costing import (
    CSV_COLUMNS,
    EgressTimeline,
    ReplicaTimeline,
    TranscodingTimeline,
    compute_cost,
    cost_breakdown,
    egress_cost,
    rows_to_csv,
    rungs_produced,
    savings,
    transcoding_cost,
)

UTC = timezone.utc
PRICES = Cost(cpu_core_hour=0.04, memory_gib_hour=0.005, egress_per_gb=0.02, egress_per_mbps_day=0.15,
              egress_per_mbps_month=2.0, transcoding_per_rung_hour=0.01)
ONE_CORE_TWO_GIB = Resources(cpu_cores=1, memory_gib=2)


def hourly(start: str, values, **kw) -> ReplicaTimeline:
    ts = pd.date_range(start, periods=len(values), freq="h")
    return ReplicaTimeline("web", "live", "Deployment", "web", ts, np.asarray(values, float), ONE_CORE_TWO_GIB, **kw)


def mbps_timeline(start: str, mbps, freq: str = "5min", **kw) -> EgressTimeline:
    """One tier at 1000 kbps per viewer, so viewers = Mbps."""
    ts = pd.date_range(start, periods=len(mbps), freq=freq)
    return EgressTimeline(ts, {"all": (np.asarray(mbps, float), 1000.0)}, **kw)


# --------------------------------------------------------------------------- compute
def test_two_replicas_three_hours_is_thirty_cents():
    c = compute_cost(hourly("2024-11-01T00:00Z", [2, 2, 2]), PRICES)
    assert (c.cpu_core_hours, c.ram_gib_hours) == (Decimal("6"), Decimal("12"))
    assert (c.cpu_cost, c.ram_cost, c.total) == (Decimal("0.24"), Decimal("0.06"), Decimal("0.30"))


def test_compute_is_split_by_local_day():
    t = hourly("2024-11-01T23:00Z", [2, 2, 2])  # 23:00 .. 02:00 UTC = 07:00 .. 10:00 in Shanghai
    utc = cost_breakdown("actual", PRICES, replicas=[t])
    assert [p.label for p in utc.periods] == ["2024-11-01", "2024-11-02"]
    assert [(r["date"], r["cpu_core_hours"], r["total_cost"]) for r in utc.rows()] == [
        ("2024-11-01", Decimal("2"), Decimal("0.10")), ("2024-11-02", Decimal("4"), Decimal("0.20"))]
    sh = cost_breakdown("actual", PRICES, replicas=[t], zone="Asia/Shanghai")
    assert [(r["date"], r["start"], r["total_cost"]) for r in sh.rows()] == [
        ("2024-11-02", "2024-11-01T16:00:00Z", Decimal("0.30"))]


def test_fractional_replicas_and_unknown_intervals():
    t = hourly("2024-11-01T00:00Z", [1.5, np.nan, 0.5])
    c = compute_cost(t, PRICES)
    assert (c.cpu_core_hours, c.cpu_cost, c.ram_cost) == (Decimal("2"), Decimal("0.08"), Decimal("0.02"))
    b = cost_breakdown("actual", PRICES, replicas=[t])
    assert b.notes == ("replicas of live/web: 1 h without data (NaN) cost nothing",)


def test_prices_are_the_decimals_written_and_rounding_is_half_up():
    t = hourly("2024-11-01T00:00Z", [1])
    t = ReplicaTimeline(t.workload, t.namespace, t.kind, t.name, t.ts, t.replicas, ONE_CORE_TWO_GIB,
                        end=datetime(2024, 11, 1, 1, tzinfo=UTC))
    # 0.015 as a binary float is 0.01499999...; as written it is 0.015, half up -> 0.02.
    assert compute_cost(t, Cost(cpu_core_hour=0.015, memory_gib_hour=0)).cpu_cost == Decimal("0.02")
    assert compute_cost(t, Cost(cpu_core_hour=0.125, memory_gib_hour=0)).cpu_cost == Decimal("0.13")
    assert compute_cost(t, Cost(cpu_core_hour=0.125, memory_gib_hour=0), quantum=Decimal("0.0001")).cpu_cost == \
        Decimal("0.1250")


# --------------------------------------------------------------------------- egress
def test_per_gb_one_tier_and_two_tiers():
    ts = pd.date_range("2024-11-01T00:00Z", periods=12, freq="5min")
    one = EgressTimeline(ts, {"core": (np.full(12, 1000.0), 2000.0)})
    bill = egress_cost(one, PRICES, "per_gb")
    assert (bill.gb, bill.total) == (Decimal("900"), Decimal("18.00"))
    two = EgressTimeline(ts, {"core": (600.0, 3000.0), "edge": (np.full(12, 400.0), np.full(12, 1000.0))})
    assert egress_cost(two, PRICES, "per_gb").gb == Decimal("990")
    shares = EgressTimeline.from_shares(ts, np.full(12, 1000.0), {"core": 0.6, "edge": 0.4},
                                        {"core": 3000.0, "edge": 1000.0})
    assert egress_cost(shares, PRICES, "per_gb").total == Decimal("19.80")


def test_daily_peak_is_the_largest_five_minute_sample():
    mbps = np.full(288, 100.0)
    mbps[137] = 250.0
    bill = egress_cost(mbps_timeline("2024-11-01T00:00Z", mbps), PRICES, "daily_peak_bandwidth")
    (day,) = bill.charges
    assert (day.label, day.samples, day.rank, day.quantity, day.charge) == (
        "2024-11-01", 288, 288, Decimal("250"), Decimal("37.50"))


def test_daily_peak_averages_a_one_minute_spike_into_its_slot():
    mbps = np.full(1440, 100.0)
    mbps[54] = 600.0  # minute 4 of slot 10: (4 x 100 + 600) / 5 = 200 Mbps
    (day,) = egress_cost(mbps_timeline("2024-11-01T00:00Z", mbps, freq="min"), PRICES,
                         "daily_peak_bandwidth").charges
    assert (day.samples, day.quantity, day.charge) == (288, Decimal("200"), Decimal("30.00"))


def test_daily_peak_of_a_partial_day_is_prorated_by_its_covered_seconds():
    """Billed in full, the 18 hours outside the data were charged at a peak nobody measured for
    them: a replay starting mid-day overstated the saving against the HPA (the demo's by 3.9%)."""
    bill = egress_cost(mbps_timeline("2024-11-01T12:00Z", [100, 100, 100, 300, 100, 100], freq="h"), PRICES,
                       "daily_peak_bandwidth")
    (day,) = bill.charges
    # 300 Mbps x $0.15 a Mbps-day x 6 h / 24 h
    assert (day.samples, day.covered_s, day.quantity, day.proration, day.charge) == (
        72, 6 * 3600, Decimal("300"), Decimal("0.25"), Decimal("11.25"))


def test_monthly_p95_of_twenty_samples_drops_the_top_one_and_prorates():
    rng = np.random.default_rng(7)
    bill = egress_cost(mbps_timeline("2024-11-10T00:00Z", rng.permutation(np.arange(1, 21))),
                       Cost(egress_per_mbps_month=1000), "monthly_p95")
    (month,) = bill.charges
    assert (month.label, month.samples, month.rank, month.quantity) == ("2024-11", 20, 19, Decimal("19"))
    # 19 Mbps x 1000/Mbps-month x 6000 s / (30 x 86400 s) = 43.981...
    assert (month.covered_s, month.charge) == (6000, Decimal("43.98"))


def test_monthly_p95_of_one_hundred_samples_is_the_95th():
    bill = egress_cost(mbps_timeline("2024-11-10T00:00Z", np.arange(100, 0, -1)), PRICES, "monthly_p95")
    assert (bill.charges[0].rank, bill.charges[0].quantity) == (95, Decimal("95"))


@pytest.mark.parametrize("spikes, billed_mbps, charge", [(432, "100", "200.00"), (433, "500", "1000.00")])
def test_monthly_p95_over_a_full_month_frees_exactly_the_top_five_percent(spikes, billed_mbps, charge):
    mbps = np.full(30 * 288, 100.0)
    mbps[np.random.default_rng(1).choice(mbps.size, spikes, replace=False)] = 500.0
    (month,) = egress_cost(mbps_timeline("2024-11-01T00:00Z", mbps), PRICES, "monthly_p95").charges
    assert (month.samples, month.rank, month.proration) == (8640, 8208, Decimal("1"))
    assert (month.quantity, month.charge) == (Decimal(billed_mbps), Decimal(charge))


def test_monthly_p95_across_a_month_end_gives_two_charges():
    bill = egress_cost(mbps_timeline("2024-10-31T23:00Z", [100, 300], freq="h"), PRICES, "monthly_p95")
    assert [(c.label, c.quantity, c.covered_s) for c in bill.charges] == [
        ("2024-10", Decimal("100"), 3600), ("2024-11", Decimal("300"), 3600)]
    # 100 Mbps x $2 x 3600 / (31 d) = 0.2688...; 300 x 2 x 3600 / (30 d) = 0.8333...
    assert [c.charge for c in bill.charges] == [Decimal("0.27"), Decimal("0.83")]


def test_a_daily_charge_is_split_into_report_days_by_covered_seconds():
    t = mbps_timeline("2024-11-01T00:00Z", np.full(288, 100.0))  # one UTC billing day: $15.00
    b = cost_breakdown("actual", PRICES, egress=[t], billing="daily_peak_bandwidth", zone="Asia/Shanghai")
    assert [(r["date"], r["egress_cost"]) for r in b.rows()] == [("2024-11-01", Decimal("10.00")),
                                                                  ("2024-11-02", Decimal("5.00"))]


def test_three_windows_of_a_day_share_its_charge_by_cumulative_rounding():
    t = mbps_timeline("2024-11-01T00:00Z", np.full(288, 100.0))
    cost = Cost(egress_per_mbps_day=0.1)  # $10.00 for the day
    day0 = datetime(2024, 11, 1, tzinfo=UTC)
    windows = [(f"w{i}", day0 + timedelta(hours=8 * i), day0 + timedelta(hours=8 * i + 8)) for i in range(3)]
    b = cost_breakdown("actual", cost, egress=[t], by=windows, billing="daily_peak_bandwidth")
    assert [(r["window"], r["egress_cost"]) for r in b.rows()] == [
        ("w0", Decimal("3.33")), ("w1", Decimal("3.34")), ("w2", Decimal("3.33"))]


# --------------------------------------------------------------------------- transcoding
def test_transcoding_rung_hours():
    ts = pd.date_range("2024-11-01T00:00Z", periods=2, freq="h")
    tc = transcoding_cost(TranscodingTimeline(ts, np.array([10.0, 10.0]), 4), PRICES)
    assert (tc.rung_hours, tc.cost) == (Decimal("80"), Decimal("0.80"))


def test_rungs_produced_are_those_at_or_below_the_highest_cap():
    ladder = [6000, 3000, 1500, 800, 400]
    assert rungs_produced(ladder, {"core": 6000, "edge": 800}).tolist() == [5.0]
    assert rungs_produced(ladder, {"core": np.array([6000, 3000, 1500]), "edge": 800.0}).tolist() == [5.0, 4.0, 3.0]
    assert rungs_produced(ladder, np.array([2999.0, 400.0])).tolist() == [3.0, 1.0]


# --------------------------------------------------------------------------- windows
def test_window_partly_outside_the_data_and_one_outside_it():
    t = hourly("2024-11-01T00:00Z", [2, 2, 2])
    day0 = datetime(2024, 11, 1, tzinfo=UTC)
    windows = [("ebb", day0 + timedelta(hours=2), day0 + timedelta(hours=5)),
               ("later", day0 + timedelta(days=1), day0 + timedelta(days=2))]
    b = cost_breakdown("actual", PRICES, replicas=[t], by=windows)
    rows = [(r["window"], r["cpu_core_hours"], r["total_cost"]) for r in b.rows()]
    assert rows == [("ebb", Decimal("2"), Decimal("0.10"))]
    assert b.by_period()["later"].total == 0


# --------------------------------------------------------------------------- savings
def test_savings_against_static_peak_are_potential_until_nodes_go():
    actual = cost_breakdown("ebbtide", PRICES, replicas=[hourly("2024-11-01T00:00Z", [2, 2, 2])])
    static = cost_breakdown("static", PRICES, replicas=[hourly("2024-11-01T00:00Z", [4, 4, 4])])
    s = savings(actual, static)
    assert (s.total.cpu, s.total.ram, s.total.total) == (Decimal("0.24"), Decimal("0.06"), Decimal("0.30"))
    assert s.by_workload == {("live", "Deployment", "web"): s.total}
    assert s.compute_status == "potential" and "potential" in s.statement() and "nodes are released" in s.statement()
    assert "USD 0.30" in s.statement()
    assert savings(actual, static, compute_realised=True).compute_status == "realised"
    backwards = savings(static, actual)
    assert backwards.total.total == Decimal("-0.30") and "static cost USD 0.30 more" in backwards.statement()


def test_savings_refuse_different_currencies_or_periods():
    a = cost_breakdown("ebbtide", PRICES, replicas=[hourly("2024-11-01T00:00Z", [2, 2, 2])])
    eur = cost_breakdown("static", Cost(currency="EUR"), replicas=[hourly("2024-11-01T00:00Z", [4, 4, 4])])
    with pytest.raises(EbbtideError, match="in USD, static in EUR"):
        savings(a, eur)
    later = cost_breakdown("static", PRICES, replicas=[hourly("2024-11-03T00:00Z", [4, 4, 4])])
    with pytest.raises(EbbtideError, match="different periods"):
        savings(a, later)


# --------------------------------------------------------------------------- replay frames and CSV
WORKLOAD = Workload.model_validate({
    "name": "edge", "target": {"kind": "Deployment", "namespace": "live", "name": "edge-api"},
    "demand": {"query": "sum(x)", "per_replica": 100}, "resources": {"cpu_cores": 0.5, "memory_gib": 1},
    "scaling": {"max_replicas": 50}})


def replay_frame() -> pd.DataFrame:
    return pd.DataFrame({"ts": ["2024-11-01T00:00:00Z", "2024-11-01T01:00:00Z"], "demand": [1000.0, 500.0],
                         "replicas_ebbtide": [10.0, 5.5], "replicas_static": [10.0, 10.0],
                         "cap_core_kbps": [3000.0, 3000.0], "cap_edge_kbps": [3000.0, 1500.0]})


def test_timelines_from_a_replay_frame():
    frame = replay_frame()
    eb = ReplicaTimeline.from_replay(frame, "ebbtide", WORKLOAD)
    assert (eb.workload, eb.namespace, eb.kind, eb.name) == ("edge", "live", "Deployment", "edge-api")
    # 15.5 pod-h x (0.5 core x 0.04 + 1 GiB x 0.005) = 15.5 x 0.025 = 0.3875 -> 0.39 (0.31 + 0.08)
    c = compute_cost(eb, PRICES)
    assert (c.cpu_core_hours, c.cpu_cost, c.ram_cost) == (Decimal("7.75"), Decimal("0.31"), Decimal("0.08"))
    with pytest.raises(EbbtideError, match="replicas_hpa"):
        ReplicaTimeline.from_replay(frame, "hpa", WORKLOAD)
    ts = pd.to_datetime(frame["ts"], utc=True)
    eg = EgressTimeline.from_shares(ts, frame["demand"], {"core": 0.5, "edge": 0.5},
                                    {"core": frame["cap_core_kbps"], "edge": frame["cap_edge_kbps"]})
    # (500 x 3000 + 500 x 3000) + (250 x 3000 + 250 x 1500) kbps = 3000 + 1125 Mbps, 1 h each
    assert egress_cost(eg, PRICES, "per_gb").gb == Decimal("1856.25")


def test_csv_schema_types_and_totals(tmp_path):
    frame = replay_frame()
    rows = []
    for strategy in ("ebbtide", "static"):
        b = cost_breakdown(strategy, PRICES, replicas=[ReplicaTimeline.from_replay(frame, strategy, WORKLOAD)],
                           egress=[mbps_timeline("2024-11-01T00:00Z", [100, 200], freq="h")],
                           transcoding=[TranscodingTimeline(pd.to_datetime(frame["ts"], utc=True), 3, 4)])
        rows += b.rows()
    path = tmp_path / "costs.csv"
    assert rows_to_csv(rows, path) == 6
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        read = list(reader)
    assert len(read) == 6
    assert {r["strategy"] for r in read} == {"ebbtide", "static"}
    assert {r["controller_kind"] for r in read} == {"Deployment", "CDN", "Transcoding"}
    for r in read:
        datetime.strptime(r["date"], "%Y-%m-%d")
        assert datetime.strptime(r["start"], "%Y-%m-%dT%H:%M:%SZ") < datetime.strptime(r["end"], "%Y-%m-%dT%H:%M:%SZ")
        for col in ("cpu_core_hours", "ram_gib_hours", "egress_gb", "transcoding_rung_hours"):
            assert float(r[col]) >= 0 and Decimal(r[col]).as_tuple().exponent == -6
        money = {c: Decimal(r[c]) for c in ("cpu_cost", "ram_cost", "egress_cost", "transcoding_cost", "total_cost")}
        assert all(m.as_tuple().exponent == -2 for m in money.values())
        assert money["total_cost"] == sum(v for k, v in money.items() if k != "total_cost")
        assert r["currency"] == "USD" and r["window"] == ""
    static_web = next(r for r in read if r["strategy"] == "static" and r["controller_kind"] == "Deployment")
    assert (static_web["cpu_core_hours"], static_web["total_cost"]) == ("10.000000", "0.50")
    tc = next(r for r in read if r["controller_kind"] == "Transcoding")
    assert (tc["transcoding_rung_hours"], tc["transcoding_cost"]) == ("24.000000", "0.24")


# --------------------------------------------------------------------------- errors for people
@pytest.mark.parametrize("make, message", [
    (lambda: compute_cost(ReplicaTimeline("w", "ns", "Deployment", "w", pd.date_range("2024-11-01", periods=2,
                                                                                      freq="h"), np.ones(2)), PRICES),
     "replica timeline ns/w: timestamps have no zone"),
    (lambda: compute_cost(ReplicaTimeline("w", "ns", "Deployment", "w", pd.DatetimeIndex(
        ["2024-11-01T01:00Z", "2024-11-01T00:00Z"]), np.ones(2)), PRICES), "must be strictly increasing"),
    (lambda: compute_cost(replace(hourly("2024-11-01T00:00Z", [1, 2]), replicas=np.ones(3)), PRICES),
     "replicas has 3 values for 2 timestamps"),
    (lambda: compute_cost(hourly("2024-11-01T00:00Z", [1, -2]), PRICES), "must be finite and >= 0"),
    (lambda: compute_cost(hourly("2024-11-01T00:00Z", [1]), PRICES), "a single sample needs an explicit `end`"),
    (lambda: compute_cost(hourly("2024-11-01T00:00Z", [1], end=datetime(2024, 11, 1, tzinfo=UTC)), PRICES),
     "must be after the last timestamp"),
    (lambda: cost_breakdown("a", PRICES, replicas=[hourly("2024-11-01T00:00Z", [1, 1])],
                            by=[("w", datetime(2024, 11, 2, tzinfo=UTC), datetime(2024, 11, 1, tzinfo=UTC))]),
     "window w: end .* must be after start"),
    (lambda: cost_breakdown("a", PRICES, replicas=[hourly("2024-11-01T00:00Z", [1, 1])], zone="Mars/Base"),
     "zone: unknown IANA time zone 'Mars/Base'"),
    (lambda: cost_breakdown("a", PRICES, replicas=[hourly("2024-11-01T00:00Z", [1, 1])] * 2),
     "timeline\\(s\\) given twice: live/Deployment/web"),
    (lambda: cost_breakdown("a", PRICES), "no timelines given"),
])
def test_errors_name_what_is_wrong(make, message):
    with pytest.raises(EbbtideError, match=message):
        make()


def test_huge_inputs_cost_exactly_or_are_refused_never_negative():
    """The report sweep: 2e12 viewers at 6 Mbit/s wrapped int64 into negative costs (exit 0).
    Rates int64 cannot hold are now Python ints (exact); a cost past any bill is an error."""
    ts = pd.date_range("2024-11-01T00:00Z", periods=12, freq="5min")
    huge = egress_cost(EgressTimeline(ts, {"core": (np.full(12, 2e12), 6000.0)}), PRICES, "per_gb")
    # 2e12 x 6000 kbit/s x 3600 s = 4.32e22 bit = 5.4e12 GB, at 0.02 a GB
    assert huge.gb == Decimal("5400000000000") and huge.total == Decimal("108000000000.00")
    peak = egress_cost(EgressTimeline(ts, {"core": (np.full(12, 2e12), 6000.0)}), PRICES, "daily_peak_bandwidth")
    assert peak.total == Decimal("75000000000.00")  # 1.2e13 Mbps x 0.15 a Mbps-day x 1 h / 24 h (12 x 5 min)
    with pytest.raises(EbbtideError, match=r"a cost or quantity of 2e\+30 is beyond what Ebbtide adds up exactly"):
        compute_cost(hourly("2024-11-01T00:00Z", [1e30, 1e30]), PRICES)
