"""Replay benchmark: Ebbtide vs a plain HPA vs war-state capacity on the real traces.

    .venv/bin/python bench/replay.py [--data DIR] [--trace NAME ...] [--jobs N] [--json]
                                     [--workload NAME] [--after DAYS] [--explain]
                                     [--frontier-u U,U,...] [--from-json FILE]
    .venv/bin/python bench/replay.py --csv TRACE.csv --events EVENTS.yaml [--event NAME]
                                     [--country CC] [...]    # a trace of your own, same rules
    .venv/bin/python bench/replay.py --synthetic SEED [--synthetic SEED ...] --after 10
                                     # bench/forecast.py's seeded synthetic traces, same rules
    .venv/bin/python bench/replay.py --policy policies/examples/minimal.yaml [...]
                                     # another policy's workload (its first, or --workload), same rules

For each trace in ../shared/data (skipped, with a message, when absent), one workload of the
reference policy (policies/examples/reference.yaml; default `edge`, the viewer-serving tier:
the traces count requests, visitors and passengers, i.e. demand served per request, not
long-lived streams; `--workload ingest|transcode|api` replays another; `api` has an HPA, so
Ebbtide moves its minReplicas and the HPA scales on top; `--policy FILE` replays a workload of
another policy instead, e.g. the issue's minimal one, every scaling field at its default) is
replayed from 7 days before the declared event to 14 days after its end (`--after`; clipped to
the trace; a yearly event: its last occurrence that ends inside the trace, measured as
NAME@YEAR; an event that does not end inside the trace with data after it is an error), and
the three strategies are compared over the weeks after the event: replica-hours
and their ratio to war state and to the HPA, demand above ready capacity (%) and its ratio to
the HPA, scaling actions, and wall time.
The 5-minute files are replayed as their own traces (`nasa-5min`, `aapl-5min`, the hourly
files' events): there the burst allowance is on most of the time (docs/planner.md, step 1b).

Against every HPA tuning, from the same run: the same faithful HPA replayed alone
(scaler.replay.replay_hpa, no forecaster: seconds a trace) at each target utilisation of
`--frontier-u` (default 0.4 .. 0.9) over the same window gives the HPA's trade-off curve
(`hpa_frontier`: replica-hours, under share, under minutes per u); `frontier` reads it at
Ebbtide's replica-hours (the HPA's under share at equal spend, and Ebbtide's over it: < 1 means
Ebbtide beats every HPA tuning that costs the same) and at Ebbtide's under share (the
replica-hours an HPA tuning needs to serve as well, over Ebbtide's). Outside the curve the
figures are bounds, and say so (scaler/replay/frontier.py).

Feasibility, from the same run: the demand floor, replica-hours of ceil(demand / per_replica)
over the window (no headroom, no start-up lag; `floor_min_replicas_*` with min_replicas held),
and its ratio to war state. Where the floor alone is above 0.5x war state, no strategy meets
"<= 0.5x war" with zero under-provisioning; the table says so.

One rule scales the policy to every trace, with nothing tuned per file:
- per_replica = median(trace) / 10 (the median demand needs ~10 replicas); of a trace idle more
  than half the time (a shop's nights and closed days: median 0), the median of its non-zero
  values / 10 (the demand when there is any);
- max_replicas = max(the policy's, ceil(2 x max(trace) / per_replica)) (never clamps a peak);
- the policy's events are replaced by the trace's event, declared as a person would from the
  data README (the event's local calendar day, peak at the README's time or midday), and its
  country holidays by the trace's country on its audience's calendar (`calendar_tz`: Melbourne and
  NYC in their own zones, as bench/forecast.py); bitrate planning is left out (the traces are not
  viewer counts). Everything else is the reference policy as written.

During the event itself ([start, end), not measured by the targets: `during` in the JSON, one
line per trace): the same figures, where pre-scaling shows (pods ready on the ramp) and where it
costs (pods bought for a ramp that did not come).

Issue targets, over the weeks after each event: Ebbtide replica-hours <= 0.5x war state and
<= 1.1x the HPA's, with under-provisioned demand <= 0.64x the HPA's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = Path(os.environ.get("EBBTIDE_SHARED_DATA", REPO.parent / "shared" / "data"))
POLICY = REPO / "policies" / "examples" / "reference.yaml"
BEFORE = timedelta(days=7)
AFTER = timedelta(days=14)
WORKLOAD = "edge"
TARGETS = {"vs_war": 0.5, "vs_hpa": 1.1, "under_vs_hpa": 0.64}
FRONTIER_U = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # scaler.replay.frontier.DEFAULT_UTILISATIONS (imported late)


@dataclass(frozen=True)
class Trace:
    name: str
    file: str
    country: str | None
    event: dict
    calendar: tuple[dict, ...] = ()
    """Other events of the trace's calendar (modelled too, not measured)."""
    calendar_tz: str = "UTC"
    """The audience's zone (`forecast.calendar_tz`): local holiday dates, as bench/forecast.py sets it."""


def custom_trace(csv: Path, events_file: Path, event_name: str | None = None, country: str | None = None,
                 calendar_tz: str = "UTC") -> Trace:
    """A trace of your own: `csv` (ts,value) with the events of `events_file` as its calendar;
    the measured event is `event_name` (default: the first in the file). For checking Ebbtide on
    traces that are not in ../shared/data with exactly the bench's rules."""
    from policies.errors import EbbtideError
    from policies.events import load_events_file
    from scaler.cli.common import check_calendar

    country = check_calendar(country, calendar_tz)
    events = load_events_file(events_file)
    if not events:
        raise EbbtideError(f"{events_file}: no events; the bench measures the weeks after one")
    chosen = next((e for e in events if e.name == event_name), None) if event_name else events[0]
    if chosen is None:
        raise EbbtideError(f"{events_file}: no event named {event_name!r} (have: {', '.join(e.name for e in events)})")
    dump = lambda e: e.model_dump(mode="json", exclude_none=True)  # noqa: E731
    return Trace(Path(csv).stem, str(Path(csv).resolve()), country, dump(chosen),
                 tuple(dump(e) for e in events if e is not chosen), calendar_tz)


TRACES = (
    Trace("nasa", "nasa_jul95_hourly.csv", "US",
          {"name": "sts-70-launch", "kind": "joint_live", "start": "1995-07-13T00:00:00-04:00",
           "peak": "1995-07-13T13:41:00Z", "end": "1995-07-14T00:00:00-04:00"}),
    Trace("aapl", "nab_twitter_aapl_hourly.csv", "US",
          {"name": "apple-event", "kind": "joint_live", "start": "2015-03-09T00:00:00-04:00",
           "peak": "2015-03-09T17:00:00Z", "end": "2015-03-10T00:00:00-04:00"}),
    Trace("melbourne", "melbourne_bourke_st_pedestrians_hourly.csv", "AU",
          {"name": "boxing-day", "kind": "sale", "start": "2015-12-26T00:00:00+11:00",
           "peak": "2015-12-26T12:00:00+11:00", "end": "2015-12-27T00:00:00+11:00"},
          calendar_tz="Australia/Melbourne"),
    Trace("nyc-taxi", "nab_nyc_taxi_passengers_hourly.csv", "US",
          {"name": "thanksgiving", "kind": "holiday", "start": "2014-11-27T00:00:00-05:00",
           "peak": "2014-11-27T12:00:00-05:00", "end": "2014-11-28T00:00:00-05:00"},
          calendar_tz="America/New_York"),
)
# The same events at 5-minute resolution: the history the planner learns the burst allowance
# from is then finer than the lead window's reach (docs/planner.md, step 1b).
TRACES += (
    Trace("nasa-5min", "nasa_jul95_5min.csv", "US", TRACES[0].event),
    Trace("aapl-5min", "nab_twitter_aapl_5min.csv", "US", TRACES[1].event),
)


def typical_demand(series) -> float:
    """The trace's median, or, when it is idle more than half the time (median 0), the median of
    its non-zero values. EbbtideError when it holds no demand at all."""
    from policies.errors import EbbtideError

    v = series.values.dropna()
    med = float(v.median()) if len(v) else math.nan
    if not med > 0:
        med = float(v[v > 0].median()) if (v > 0).any() else math.nan
    if not med > 0:
        raise EbbtideError(f"{series.name}: no demand above 0 in the trace: nothing to size replicas to")
    return med


def scaled_policy(policy, series, country: str, workload: str = WORKLOAD, calendar_tz: str = "UTC"):
    """The reference policy's `workload`, scaled to the trace by the one rule above."""
    wl = policy.workload(workload)
    per_replica = typical_demand(series) / 10.0
    top = float(series.values.max())
    max_replicas = max(wl.scaling.max_replicas, math.ceil(2 * top / per_replica))
    wl = wl.model_copy(update={
        "demand": wl.demand.model_copy(update={"per_replica": per_replica}),
        "scaling": wl.scaling.model_copy(update={"max_replicas": max_replicas}),
        "forecast": wl.forecast.model_copy(update={"country_holidays": country, "calendar_tz": calendar_tz}),
    })
    return policy.model_copy(update={"workloads": [wl], "events": [], "bitrate": None})


def demand_floor(series, per_replica: float, start, end, min_replicas: int = 0) -> float:
    """Replica-hours of max(min_replicas, ceil(demand / per_replica)) over [start, end).

    The least capacity that serves all of the (step-held) demand with no headroom and no
    start-up lag: no strategy serves everything for less. Points with no value count 0 pods
    (min_replicas with it). Each point covers [ts, ts + step), clipped to the range.
    """
    import numpy as np
    import pandas as pd

    step = pd.Timedelta(series.step)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    idx = series.index.as_unit("ns").asi8
    v = series.values.to_numpy(dtype=float)
    lo = np.maximum(idx, t0.value)
    hi = np.minimum(idx + step.value, t1.value)
    hours = np.clip((hi - lo) / 3.6e12, 0.0, None)  # ns -> h
    with np.errstate(invalid="ignore"):
        pods = np.where(np.isfinite(v), np.ceil(np.round(v / per_replica, 9)), 0.0)
    return float((np.maximum(pods, min_replicas) * hours).sum())


def frontier_reading(ebbtide_replica_hours: float, ebbtide_under_share: float, points) -> dict:
    """Ebbtide against the HPA's curve (a list of scaler.replay.FrontierPoint): the HPA's under
    share at Ebbtide's replica-hours and Ebbtide's over it, and the replica-hours the HPA needs
    for Ebbtide's under share over Ebbtide's. `*_outside`: None inside the curve, else "below" or
    "above" (the ratio is then a bound: <= below, >= above)."""
    from scaler.replay import replica_hours_for_under_share, under_share_at

    at = under_share_at(points, ebbtide_replica_hours)
    need = replica_hours_for_under_share(points, ebbtide_under_share)
    return {
        "hpa_under_share_at_ebbtide_replica_hours": round(at.value, 6),
        "at_ebbtide_replica_hours_outside": at.outside,
        # None when both leave nothing unserved: no ratio, and neither side of the curve
        "ebbtide_under_vs_frontier": None if not ebbtide_under_share and not at.value
        else _ratio(ebbtide_under_share, at.value),
        "hpa_replica_hours_for_ebbtide_under_share": round(need.value, 3),
        "for_ebbtide_under_share_outside": need.outside,
        "frontier_replica_hours_vs_ebbtide": _ratio(need.value, ebbtide_replica_hours),
    }


def _ratio(a: float, b: float) -> float:
    return (a / b) if b else (0.0 if not a else math.inf)


def _bench_module(name: str):
    """bench/<name>.py (a script, not a package), loaded once as `ebbtide_bench_<name>`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"ebbtide_bench_{name}", REPO / "bench" / f"{name}.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
        spec.loader.exec_module(module)
    return module


def synthetic_traces(seeds, folder: Path) -> list[Trace]:
    """bench/forecast.py's seeded synthetic traces (`synthetic_cases`: wide draws of peak, ebb
    shape and length, noise, outages, level steps; seeds 20-23 with two events) written to
    `folder` as `synthetic-SEED.csv` and replayed as traces of your own (`custom_trace`'s rules):
    the measured event is the trace's last sale or joint live event (the main sale after a
    pre-sale wave), the others are its calendar; no country holidays, the traces' own zone.
    A generalisation check of the planner on traces nobody tuned it to."""
    import yaml

    fb = _bench_module("forecast")
    unknown = sorted(set(seeds) - set(fb.SYNTHETIC_SEEDS))
    if unknown:
        from policies.errors import EbbtideError

        raise EbbtideError(f"--synthetic: no seed {unknown[0]} (the suite has {min(fb.SYNTHETIC_SEEDS)}-"
                           f"{max(fb.SYNTHETIC_SEEDS)})")
    out = []
    for case, series in fb.synthetic_cases(tuple(seeds)):
        name = series.name or f"synthetic-{len(out)}"
        csv = folder / f"{name}.csv"
        frame = series.values.rename("value").to_frame()
        frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame.index.name = "ts"
        frame.to_csv(csv, float_format="%.6g")
        events = folder / f"{name}.yaml"
        dump = [e.model_dump(mode="json", exclude_none=True) for e in case.events]
        events.write_text(yaml.safe_dump({"events": dump}, sort_keys=False))
        measured = max((e for e in case.events if e.kind in ("sale", "joint_live")), key=lambda e: e.peak)
        out.append(custom_trace(csv, events, measured.name, None, case.calendar_tz))
    return out


def measured_occurrence(event, series, calendar_tz: str, where: str):
    """The occurrence of `event` the bench measures: the event itself, or for a yearly one the
    last occurrence (`Event.occurrences`, named NAME@YEAR) that ends inside the trace. Its end
    must lie inside the trace with data after it (the weeks after it are what is measured):
    otherwise an EbbtideError naming the trace's range and the event's."""
    from policies.errors import EbbtideError

    start, end = series.start.to_pydatetime(), series.end.to_pydatetime()
    inside = [o for o in event.occurrences(start, end, calendar_tz) if start <= o.end < end]
    if not inside:
        which = "no occurrence of the yearly event" if event.recurrence == "yearly" else "the event"
        raise EbbtideError(
            f"{where}: {which} {event.name} ({event.start.isoformat()} .. {event.end.isoformat()}) does not end "
            f"inside the trace ({start.isoformat()} .. {end.isoformat()}) with data after it: the bench "
            f"measures the days after an event's end")
    return inside[-1]


def _with_fields(policy, section: str, **fields):
    """`policy` with the given fields (those not None) of its replayed workload's `section`
    (`scaling`, `demand`) replaced: the bench's flags that set a policy field."""
    changes = {k: v for k, v in fields.items() if v is not None}
    if not changes:
        return policy
    w = policy.workloads[0]
    part = getattr(w, section).model_copy(update=changes)
    return policy.model_copy(update={"workloads": [w.model_copy(update={section: part})]})


def run_trace(trace: Trace, data: Path, workload: str = WORKLOAD, after: timedelta = AFTER,
              frontier_u: tuple[float, ...] = FRONTIER_U, lift_factor: float | None = None,
              event_lookahead: timedelta | None = None, jump_confirm: timedelta | None = None,
              policy_file: Path = POLICY, demand_shape: str = "step", demand_lag: timedelta | None = None) -> dict:
    import time

    from forecaster.csvio import read_series_csv
    from policies.errors import EbbtideError
    from policies.events import Event
    from policies.loading import load_policy
    from scaler.replay import ReplayOptions, hpa_frontier, replay

    series = read_series_csv(data / trace.file)
    declared = Event.model_validate(trace.event)
    event = measured_occurrence(declared, series, trace.calendar_tz, trace.file)
    lift = None
    if lift_factor is not None and event.kind != "holiday":  # an operator's estimate, off by lift_factor
        measured = _bench_module("lift").measured_lift(series, event)
        lift = lift_factor * measured if measured is not None and lift_factor * measured > 1.0 else None
        declared = Event.model_validate({**declared.model_dump(), "lift": lift})
        event = Event.model_validate({**event.model_dump(), "lift": lift})
    calendar = [declared, *(Event.model_validate(e) for e in trace.calendar)]
    policy = scaled_policy(load_policy(policy_file), series, trace.country, workload, trace.calendar_tz)
    # --event-lookahead, --jump-confirm: the replayed workload's scaling fields of those names;
    # --demand-lag: how old the demand both controllers observe is
    policy = _with_fields(policy, "scaling", event_lookahead=event_lookahead, jump_confirm=jump_confirm)
    policy = _with_fields(policy, "demand", lag=demand_lag)
    options = ReplayOptions(window_after=after, demand_shape=demand_shape)
    r = replay(series, policy, extra_events=calendar, start=event.start - BEFORE, end=event.end + after,
               options=options)
    d = r.to_dict()
    w = next((x for x in d["windows"] if x["event"] == event.name), None)
    if w is None:  # measured_occurrence makes sure it is there; said plainly if not
        raise EbbtideError(f"{trace.file}: the replay holds no window after {event.name} to measure")
    during = next((x for x in d["during"] if x["event"] == event.name), None)
    s = w["strategies"]
    eb, hpa, war = s["ebbtide"], s["hpa"], s["static"]
    per = policy.workloads[0].demand.per_replica
    floor_h = demand_floor(series, per, w["start"], w["end"])
    floor_min_h = demand_floor(series, per, w["start"], w["end"], max(1, policy.workloads[0].scaling.min_replicas))
    wall0 = time.perf_counter()
    points = hpa_frontier(series, policy, event.name, utilisations=frontier_u, extra_events=calendar,
                          start=event.start - BEFORE, end=event.end + after, options=options)
    frontier_wall_s = time.perf_counter() - wall0
    return {
        "trace": trace.name, "file": trace.file, "event": event.name, "workload": workload,
        "lift_factor": lift_factor, "lift": lift, "demand_shape": demand_shape,
        "demand_lag_s": policy.workloads[0].demand.lag.total_seconds(),
        "event_lookahead_s": None if event_lookahead is None else event_lookahead.total_seconds(),
        "jump_confirm_s": policy.workloads[0].scaling.jump_confirm.total_seconds(),
        "after_days": after / timedelta(days=1),
        "per_replica": per,
        "window": [w["start"], w["end"]],
        "strategies": s,
        "ebbtide_vs_war": _ratio(eb["replica_hours"], war["replica_hours"]),
        "ebbtide_vs_hpa": _ratio(eb["replica_hours"], hpa["replica_hours"]),
        "under_vs_hpa": _ratio(eb["under_provisioned_share"], hpa["under_provisioned_share"]),
        "during": during,
        "during_under_vs_hpa": (_ratio(during["strategies"]["ebbtide"]["under_provisioned_share"],
                                      during["strategies"]["hpa"]["under_provisioned_share"]) if during else None),
        "floor_replica_hours": round(floor_h, 3),
        "floor_vs_war": _ratio(floor_h, war["replica_hours"]),
        "floor_min_replicas_replica_hours": round(floor_min_h, 3),
        "floor_min_replicas_vs_war": _ratio(floor_min_h, war["replica_hours"]),
        "explain": w.get("explain", {}),
        "hpa_frontier": [p.to_dict() for p in points],
        "frontier": frontier_reading(eb["replica_hours"], eb["under_provisioned_share"], points),
        "hpa_frontier_wall_s": round(frontier_wall_s, 2),
        "simulation": d["simulation"],
        "sim_s_per_day": round((d["simulation"]["wall_s"] - d["simulation"]["fit_s_total"])
                               / ((r.end - r.start) / timedelta(days=1)), 3),
        "whole_replay": d["strategies"],
        "notes": d["notes"],
    }


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else "inf" if x == math.inf else f"{x:.2f}x"


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 130, markup=False)  # names as written
    days = rows[0].get("after_days", AFTER.days) if rows else AFTER.days
    wl = rows[0].get("workload", "ingest") if rows else WORKLOAD
    table = Table(title=f"workload {wl}: weeks after each event (event end + {days:g} d)", header_style="bold")
    for col in ("trace", "strategy", "replica-h", "vs war", "vs HPA", "under %", "under vs HPA",
                "under min", "actions", "wall s", "floor vs war"):
        table.add_column(col, justify="left" if col in ("trace", "strategy") else "right", no_wrap=True)
    for row in rows:
        s = row["strategies"]
        for name, label in (("ebbtide", "ebbtide"), ("hpa", "hpa"), ("static", "war state")):
            x = s[name]
            table.add_row(
                row["trace"] if name == "ebbtide" else "", label, f"{x['replica_hours']:.0f}",
                _fmt_ratio(x["replica_hours"] / s["static"]["replica_hours"]),
                _fmt_ratio(x["replica_hours"] / s["hpa"]["replica_hours"]),
                f"{100 * x['under_provisioned_share']:.3f}",
                _fmt_ratio(x["under_provisioned_share"] / s["hpa"]["under_provisioned_share"])
                if s["hpa"]["under_provisioned_share"] else "-",
                f"{x['under_provisioned_minutes']:.0f}", str(x["scaling_actions"]),
                f"{row['simulation']['wall_s']:.0f}" if name == "ebbtide" else "",
                _floor_cell(row) if name == "ebbtide" else "")
    console.print(table)
    for row in rows:
        ok = [row["ebbtide_vs_war"] <= TARGETS["vs_war"], row["ebbtide_vs_hpa"] <= TARGETS["vs_hpa"],
              row["under_vs_hpa"] <= TARGETS["under_vs_hpa"]]
        sim = row["simulation"]
        console.print(f"{row['trace']}: targets vs war {'met' if ok[0] else 'MISSED'}, vs HPA "
                      f"{'met' if ok[1] else 'MISSED'}, under-provisioning {'met' if ok[2] else 'MISSED'}; "
                      f"{sim['refits']} refits (median fit {sim['fit_s_median']} s), forecast trusted on "
                      f"{100 * (sim['trusted_tick_share'] or 0):.0f}% of ticks"
                      + (f"; simulation {row['sim_s_per_day']} s per simulated day besides the fits"
                         if "sim_s_per_day" in row else ""))
        if (during := row.get("during")) is not None:
            ds = during["strategies"]
            console.print(f"{row['trace']}: during the event itself ({during['start']} .. {during['end']}, not "
                          f"measured by the targets): under-provisioned {_pct(ds['ebbtide'])} Ebbtide, "
                          f"{_pct(ds['hpa'])} HPA, {_pct(ds['static'])} war state; replica-h "
                          f"{ds['ebbtide']['replica_hours']:.0f} / {ds['hpa']['replica_hours']:.0f} / "
                          f"{ds['static']['replica_hours']:.0f}")
        for note in row.get("notes", ()):
            console.print(f"{row['trace']}: note: {note}")
        floor = row.get("floor_vs_war")
        if floor is not None and floor > TARGETS["vs_war"]:
            console.print(f"{row['trace']}: INFEASIBLE vs war: the demand floor (ceil(demand / per_replica), no "
                          f"headroom, no start-up lag) is already {floor:.2f}x war state, above "
                          f"{TARGETS['vs_war']:g}x: no strategy meets <= {TARGETS['vs_war']:g}x war with zero "
                          f"under-provisioning on this trace")
        elif (with_min := row.get("floor_min_replicas_vs_war")) is not None and with_min > TARGETS["vs_war"]:
            console.print(f"{row['trace']}: INFEASIBLE vs war with the policy's min_replicas: the demand floor "
                          f"with min_replicas held is {with_min:.2f}x war state (without it {floor:.2f}x): no "
                          f"strategy that keeps min_replicas and serves all demand meets <= "
                          f"{TARGETS['vs_war']:g}x war on this trace")


def _pct(s: dict) -> str:
    return f"{100 * s['under_provisioned_share']:.2f}%"


def print_frontier(rows: list[dict]) -> None:
    """Ebbtide against the HPA at every target utilisation (rows from older JSON without
    `hpa_frontier` are left out)."""
    from rich.console import Console
    from rich.table import Table

    rows = [r for r in rows if r.get("hpa_frontier")]
    if not rows:
        return
    console = Console(width=None if sys.stdout.isatty() else 200, markup=False)  # names as written
    us = sorted({p["target_utilisation"] for r in rows for p in r["hpa_frontier"]})
    table = Table(title="Against every HPA tuning: replica-h vs Ebbtide's / under % (weeks after each event)",
                  header_style="bold")
    for col in ("trace", "ebbtide", *(f"u={u:g}" for u in us), "under vs HPA, equal spend",
                "HPA spend for equal under"):
        table.add_column(col, justify="left" if col == "trace" else "right", no_wrap=True)
    for row in rows:
        eb = row["strategies"]["ebbtide"]
        by_u = {p["target_utilisation"]: p for p in row["hpa_frontier"]}
        cells = [f"{eb['replica_hours']:.0f} / {100 * eb['under_provisioned_share']:.3f}"]
        for u in us:
            p = by_u.get(u)
            cells.append("-" if p is None else f"{_fmt_ratio(_ratio(p['replica_hours'], eb['replica_hours']))} / "
                                               f"{100 * p['under_provisioned_share']:.3f}")
        f = row["frontier"]
        table.add_row(row["trace"], *cells,
                      _bound(f["at_ebbtide_replica_hours_outside"]) + _fmt_ratio(f["ebbtide_under_vs_frontier"]),
                      _bound(f["for_ebbtide_under_share_outside"]) + _fmt_ratio(f["frontier_replica_hours_vs_ebbtide"]))
    console.print(table)
    for row in rows:
        f = row["frontier"]
        side = f["at_ebbtide_replica_hours_outside"]
        where = {None: "", "below": " (Ebbtide spends less than the cheapest tuning: a bound)",
                 "above": " (Ebbtide spends more than the dearest tuning: a bound)"}[side]
        level = f["ebbtide_under_vs_frontier"] is None
        verdict = ("level with the HPA frontier (neither leaves demand unserved at this spend)" if level
                   else "BELOW the HPA frontier" if f["ebbtide_under_vs_frontier"] < 1 and side != "above"
                   else "ABOVE the HPA frontier" if f["ebbtide_under_vs_frontier"] > 1 and side != "below"
                   else "on the HPA frontier" if side is None else "not comparable at equal spend")
        console.print(f"{row['trace']}: {verdict}: at Ebbtide's {row['strategies']['ebbtide']['replica_hours']:.0f} "
                      f"replica-h an HPA leaves {100 * f['hpa_under_share_at_ebbtide_replica_hours']:.3f}% of demand "
                      f"unserved{where}, Ebbtide {_bound(side)}{_fmt_ratio(f['ebbtide_under_vs_frontier'])} of it; "
                      f"an HPA tuning needs {_bound(f['for_ebbtide_under_share_outside'])}"
                      f"{_fmt_ratio(f['frontier_replica_hours_vs_ebbtide'])} Ebbtide's replica-h to serve as well")


def _bound(outside: str | None) -> str:
    """Outside the curve a reading is a bound: '<= ' below it, '>= ' above it."""
    return {None: "", "below": "<= ", "above": ">= "}[outside]


def _floor_cell(row: dict) -> str:
    """The demand floor vs war state, and with min_replicas held; '-' for JSON from older runs."""
    floor, with_min = row.get("floor_vs_war"), row.get("floor_min_replicas_vs_war")
    if floor is None:
        return "-"
    return f"{_fmt_ratio(floor)} ({_fmt_ratio(with_min)})" if with_min is not None else _fmt_ratio(floor)


def print_explain(rows: list[dict]) -> None:
    """Where Ebbtide's replica-hours went in each post-event window (see scaler/replay/explain.py)."""
    from scaler.replay.explain import format_explain

    for row in rows:
        print(format_explain(f"{row['trace']} ({row.get('workload', '?')})", row.get("explain") or {}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the real traces (../shared/data)")
    ap.add_argument("--trace", action="append", choices=[t.name for t in TRACES], help="only these traces")
    ap.add_argument("--csv", type=Path, help="replay a trace of your own (ts,value) instead of the shared ones; "
                    "needs --events")
    ap.add_argument("--events", type=Path, help="events file (YAML) of --csv: the first event (or --event) is measured")
    ap.add_argument("--event", help="name of the measured event in --events (default: the first)")
    ap.add_argument("--country", help="country whose holidays the forecaster models for --csv (ISO code, e.g. US)")
    ap.add_argument("--calendar-tz", default="UTC", help="IANA zone of --csv's audience (local holiday dates). "
                    "Default UTC")
    ap.add_argument("--synthetic", type=int, action="append", metavar="SEED",
                    help="replay bench/forecast.py's seeded synthetic trace SEED (repeatable) instead of "
                    "the shared ones, with the same rules as --csv (its last sale/joint live event measured; "
                    "the traces end 10-14 days after it: use --after 10)")
    ap.add_argument("--jobs", type=int, default=1, help="traces replayed in parallel (processes). Default 1")
    ap.add_argument("--policy", type=Path, default=POLICY, help="policy whose workload is replayed, scaled to each "
                    "trace by the same rule. Default policies/examples/reference.yaml")
    ap.add_argument("--workload", help=f"workload of the policy to replay. Default: {WORKLOAD} of the reference "
                    "policy, the first workload of another")
    ap.add_argument("--after", type=float, default=AFTER.days, metavar="DAYS",
                    help=f"days after the event's end that are replayed and measured. Default {AFTER.days}")
    ap.add_argument("--explain", action="store_true",
                    help="also print where Ebbtide's replica-hours go (scaler/replay/explain.py)")
    ap.add_argument("--frontier-u", type=_utilisations, default=FRONTIER_U, metavar="U,U,...",
                    help="HPA target utilisations of the frontier (replayed HPA-only). Default "
                    + ",".join(f"{u:g}" for u in FRONTIER_U))
    ap.add_argument("--lift-factor", type=float, metavar="F",
                    help="declare the measured event's `lift` as F x its measured lift (bench/lift.py: its "
                         "highest value over the same slot 1-3 weeks before), as an operator's estimate off by F; "
                         "left undeclared where that is not above 1 and on holidays (no lift there)")
    ap.add_argument("--event-lookahead", metavar="DURATION",
                    help="set the replayed workload's scaling.event_lookahead (e.g. 2h); default: the policy's")
    ap.add_argument("--jump-confirm", metavar="DURATION",
                    help="set the replayed workload's scaling.jump_confirm (e.g. 0s; 1000d: a jump over 100x "
                         "everything known is never believed, the rule before it); default: the policy's")
    ap.add_argument("--demand-shape", choices=("step", "linear"), default="step",
                    help="how demand runs between trace points (ebbtide replay --demand-shape): step (the default) "
                         "or linear, for every strategy alike")
    ap.add_argument("--demand-lag", metavar="DURATION",
                    help="set the replayed workload's demand.lag, the age of the demand Ebbtide and the HPA "
                         "observe (the reference edge is a gauge of viewers at the 150s default, the lag of a "
                         "rate() query; a gauge lags about the scrape interval, e.g. 30s)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--from-json", type=Path, metavar="FILE", help="print the table of an earlier --json run")
    args = ap.parse_args(argv)
    if args.from_json:
        rows = json.loads(args.from_json.read_text())["traces"]
        print_table(rows)
        print_frontier(rows)
        if args.explain:
            print_explain(rows)
        return 0
    with contextlib.ExitStack() as scratch:  # the synthetic traces' folder goes when the run ends
        return _replay(args, scratch)


def _replay(args: argparse.Namespace, scratch: contextlib.ExitStack) -> int:
    todo = []
    if args.csv or args.events:
        from policies.errors import EbbtideError

        if not (args.csv and args.events):
            print("error: --csv and --events go together (the events file names the event measured)", file=sys.stderr)
            return 2
        try:
            todo.append(custom_trace(args.csv, args.events, args.event, args.country, args.calendar_tz))
        except (EbbtideError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.synthetic:
        import tempfile

        from policies.errors import EbbtideError

        try:
            folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="ebbtide-synthetic-"))
            todo.extend(synthetic_traces(sorted(set(args.synthetic)), Path(folder)))
        except EbbtideError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif not args.data.is_dir():
        print(f"skipped: real traces not found at {args.data} (set EBBTIDE_SHARED_DATA)", file=sys.stderr)
        return 0
    for t in () if todo else TRACES:
        if args.trace and t.name not in args.trace:
            continue
        if not (args.data / t.file).is_file():
            print(f"skipped {t.name}: {args.data / t.file} not found", file=sys.stderr)
            continue
        todo.append(t)
    from policies.errors import EbbtideError
    from policies.units import parse_duration

    if not args.after > 0:
        print(f"error: --after {args.after:g}: the days measured after the event must be more than 0", file=sys.stderr)
        return 2
    after = timedelta(days=args.after)

    durations = {}
    for flag, text in (("--event-lookahead", args.event_lookahead), ("--jump-confirm", args.jump_confirm),
                       ("--demand-lag", args.demand_lag)):
        try:
            durations[flag] = parse_duration(text) if text else None
        except ValueError as exc:
            print(f"error: {flag} {text!r}: {exc}", file=sys.stderr)
            return 2
    lookahead, jump = durations["--event-lookahead"], durations["--jump-confirm"]
    try:
        args.workload = _workload_of(args.policy, args.workload)
    except EbbtideError as exc:  # a policy that does not load (its errors, file and line), no such workload
        print(f"error: {exc}", file=sys.stderr)
        return 2

    one = functools.partial(run_trace, data=args.data, workload=args.workload, after=after,
                            frontier_u=args.frontier_u, lift_factor=args.lift_factor, event_lookahead=lookahead,
                            jump_confirm=jump, policy_file=args.policy, demand_shape=args.demand_shape,
                            demand_lag=durations["--demand-lag"])
    try:
        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                rows = list(pool.map(one, todo))
        else:
            rows = [one(t) for t in todo]
    except EbbtideError as exc:  # a bad CSV or policy: say what and where, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"targets": TARGETS, "after_days": args.after, "policy": str(args.policy),
                   "workload": args.workload, "traces": rows},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(rows)
        print_frontier(rows)
        if args.explain:
            print_explain(rows)
    return 0


def _workload_of(policy_file: Path, name: str | None) -> str:
    """The workload replayed: `name` when the policy has it (EbbtideError naming those it has
    otherwise); not given, `edge` of the reference policy, the first workload of another."""
    from policies.errors import EbbtideError
    from policies.loading import load_policy

    names = [w.name for w in load_policy(policy_file).workloads]
    if name is None:
        name = WORKLOAD if policy_file.resolve() == POLICY.resolve() else names[0]
    if name not in names:
        raise EbbtideError(f"{policy_file}: unknown workload {name!r}; the policy has: {', '.join(names)}")
    return name


def _utilisations(text: str) -> tuple[float, ...]:
    """--frontier-u: comma-separated target utilisations, each > 0."""
    try:
        us = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,0.6,0.7, got {text!r}") from None
    if not us or any(not (math.isfinite(u) and u > 0) for u in us):
        raise argparse.ArgumentTypeError(f"target utilisations must be positive numbers, got {text!r}")
    return us


if __name__ == "__main__":
    sys.exit(main())
