"""`ebbtide demo [--out DIR]`: a sale and its ebb, end to end, in simulated time.

No network, no cluster. Seeded synthetic live-stream traffic (concurrent viewers: a joint live
event two weeks before a Singles-Day-style sale, then the weeks after) drives the replay
simulator with the reference policy's viewer-serving workload (`edge`) and its bitrate section:
Ebbtide's real forecaster (refitted every 24 simulated hours on hourly history), its real
planner and bitrate rules on every 5-minute tick, a simulated cluster with pod start-up, side
by side with plain autoscaling (a faithful HPA) and peak capacity kept for a week after the sale.
Viewers per tier come from the tiers' shares. Then everything is costed and reported. In DIR:

- report.html        the finance report (one self-contained file, charts inline);
- costs.csv          one line per local day, strategy and cost object (OpenCost-like columns);
- costs_by_event.csv the same per event window (the event, and the 14 days after it);
- plans.jsonl        every plan that changed the replicas or bitrate caps (Plan.to_json);
- traffic.csv, events.yaml   the generated trace and its calendar (`ebbtide backtest` reads them).

The demo is a list of stages (scenario -> replay -> report -> outputs), each a function taking
the previous stage's result.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DEMO_START = "2026-10-14T00:00:00+08:00"
"""Local midnight the trace starts at (a Wednesday); the sale peaks 28 local days later (11.11)."""
DEMO_ZONE = "Asia/Shanghai"
DEMO_DAYS = 44
"""4 weeks of history before the sale (the forecaster's lookback), the sale, 14 days of ebb, slack."""
BASE_VIEWERS = 80_000.0
"""Mean concurrent viewers of a normal weekday: a mid-size platform (peak ~1.4 M at the sale)."""
DEMO_WORKLOAD = "edge"
"""The reference policy's viewer-serving workload (demand = concurrent viewers)."""
REPLAY_BEFORE = timedelta(days=2)
"""The simulated range starts this long before the sale's ramp: normal days, then the war."""
EBB_DAYS = 14
TICK = timedelta(minutes=5)
"""Planning interval in the demo (the reference policy plans every minute; 5 minutes keeps the
demo under 3 minutes on 2 cores, and matches the trace's interval)."""
FORECAST_STEP = timedelta(hours=1)
REFIT_INTERVAL = timedelta(hours=24)
"""Forecast resolution and refit interval in the demo: hourly history fits in ~1.5 s; a refit
every 24 simulated hours is ~20 fits over the replay (production refits every 6 h)."""
EGRESS_BILLING = "daily_peak_bandwidth"
"""CDN billing in the demo: each day's peak bandwidth, as many live-streaming CDN contracts in
China bill (the reference policy shows monthly_p95; docs/reports.md compares them)."""
TRANSCODED_STREAMS = 400.0
"""Live rooms transcoded at once in the demo (rungs produced per stream follow the bitrate caps)."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="a sale and its ebb end to end on synthetic traffic: replay, costs, report (no cluster, no network)",
        description=__doc__.split("\n\n", 1)[0],
    )
    p.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default: out/demo)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic traffic (default: 7)")
    p.add_argument("--step", default="5m", metavar="DURATION",
                   help="interval of the synthetic traffic: 1m, 5m, 15m, 1h (default: 5m)")
    return p


@dataclass(frozen=True)
class Scenario:
    """Stage 1: the traffic, its calendar, the demo policy and the simulated range."""

    trace: object  # forecaster.synthetic.SyntheticTrace
    policy: object  # policies.schema.Policy
    start: datetime
    end: datetime

    @property
    def sale(self):
        return self.trace.events[-1]


@dataclass(frozen=True)
class ReplayStage:
    """Stage 2: the replay and what the recording planner kept."""

    result: object  # scaler.replay.ReplayResult
    recorder: object  # scaler.reporting.RecordingPlanner


def reference_policy_path() -> Path:
    """The reference policy shipped with the package (policies/examples/reference.yaml)."""
    from importlib.resources import files

    return Path(str(files("policies") / "examples" / "reference.yaml"))


def demo_policy(events) -> object:
    """The reference policy, reduced to the viewer-serving workload, with the demo's tick,
    forecast step and refit interval, and the synthetic trace's calendar. The step limit is a
    fraction per tick, so it is scaled to the demo's longer tick: a descent keeps the reference's
    pace per minute."""
    from policies.loading import load_policy

    policy = load_policy(reference_policy_path())
    w = policy.workload(DEMO_WORKLOAD)
    pace = min(1.0, w.scaling.max_scale_down_fraction * (TICK / policy.schedule.tick))
    w = w.model_copy(update={"forecast": w.forecast.model_copy(update={"step": FORECAST_STEP,
                                                                      "refit_interval": REFIT_INTERVAL}),
                             "scaling": w.scaling.model_copy(update={"max_scale_down_fraction": pace})})
    return policy.model_copy(update={"events": list(events), "workloads": [w],
                                     "schedule": policy.schedule.model_copy(update={"tick": TICK}),
                                     "cost": policy.cost.model_copy(update={"egress_billing": EGRESS_BILLING})})


def build_scenario(seed: int, step: timedelta) -> Scenario:
    from forecaster.synthetic import SaleSpec, generate
    from policies.units import parse_time

    start = parse_time(DEMO_START)
    sales = (
        SaleSpec(name="brand-day-joint-live", kind="joint_live", day=10, peak_hour_local=21.0,
                 ramp=timedelta(days=1), peak_multiplier=2.5, event_after_peak=timedelta(hours=3),
                 ebb_tau=timedelta(hours=36), peace_ratio=1.05),
        SaleSpec(name="singles-day", day=28),
    )
    trace = generate(start, DEMO_DAYS, step, seed, sales, base_level=BASE_VIEWERS, zone=DEMO_ZONE)
    sale = trace.events[-1]
    return Scenario(trace, demo_policy(trace.events), sale.start - REPLAY_BEFORE,
                    sale.end + timedelta(days=EBB_DAYS))


def run_replay(scenario: Scenario, on_progress=None) -> ReplayStage:
    from scaler.replay import replay
    from scaler.reporting import RecordingPlanner

    recorder = RecordingPlanner()
    result = replay(scenario.trace.series, scenario.policy, DEMO_WORKLOAD, start=scenario.start,
                    end=scenario.end, planner=recorder, on_progress=on_progress)
    return ReplayStage(result, recorder)


def build_report(scenario: Scenario, stage: ReplayStage, command: str):
    from scaler.reporting import build_report as build, from_replay

    tr = scenario.trace
    source = (f"simulated replay on synthetic traffic ({tr.series.name}, {int(tr.series.step_s // 60)}-minute "
              f"interval, ~{BASE_VIEWERS:,.0f} viewers on a normal day); Ebbtide's real forecaster and planner")
    inp = from_replay(stage.result, scenario.policy, recorder=stage.recorder, zone=DEMO_ZONE,
                      transcoded_streams=TRANSCODED_STREAMS, focus_event=scenario.sale.name, source=source,
                      command=command)
    return build(inp)


def write_outputs(out: Path, scenario: Scenario, stage: ReplayStage, report) -> dict[str, Path]:
    """report.html, costs.csv, costs_by_event.csv, plans.jsonl, traffic.csv, events.yaml."""
    import yaml

    from forecaster.csvio import write_series_csv
    from policies.errors import EbbtideError
    from scaler.reporting import write_report

    files = write_report(report, out)
    paths = {"report.html": files.html, "costs.csv": files.csv}
    if files.events_csv is not None:
        paths["costs_by_event.csv"] = files.events_csv
    try:
        plans = out / "plans.jsonl"
        with plans.open("w", encoding="utf-8") as f:
            for p in stage.recorder.changed_plans():
                f.write(json.dumps(p.to_json(), default=str, sort_keys=True) + "\n")
        paths["plans.jsonl"] = plans
        paths["traffic.csv"] = out / "traffic.csv"
        write_series_csv(scenario.trace.series, paths["traffic.csv"])
        events = [{k: (v.isoformat() if isinstance(v, datetime) else v)
                   for k, v in e.model_dump(exclude_none=True).items()} for e in scenario.trace.events]
        paths["events.yaml"] = out / "events.yaml"
        paths["events.yaml"].write_text(yaml.safe_dump({"events": events}, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise EbbtideError(f"--out {out}: cannot write: {exc}") from None
    return paths


def print_summary(console, scenario: Scenario, stage: ReplayStage, report, paths: dict[str, Path]) -> None:
    import pandas as pd
    from rich.markup import escape
    from rich.table import Table

    from scaler.reporting import format_money, strategy_label
    from scaler.reporting.model import savings_sentence, video_quality_sentence

    tr, res = scenario.trace, stage.result
    sim = res.to_dict()["simulation"]
    console.print(
        f"[bold]Synthetic live-stream traffic[/]: {len(tr.series)} points of {int(tr.series.step_s // 60)} min; "
        f"events: {', '.join(e.name for e in tr.events)}; {scenario.sale.name} peaked "
        f"{pd.Timestamp(scenario.sale.peak).tz_convert(tr.zone):%Y-%m-%d %H:%M} ({tr.zone})")
    console.print(f"Replayed {DEMO_WORKLOAD} from {pd.Timestamp(res.start).tz_convert(tr.zone):%m-%d %H:%M} to "
                  f"{pd.Timestamp(res.end).tz_convert(tr.zone):%m-%d %H:%M}: {sim['ticks']} ticks, "
                  f"{sim['refits']} forecaster refits, forecast trusted on "
                  f"{100 * (sim['trusted_tick_share'] or 0):.0f}% of ticks, {sim['wall_s']:.0f} s")
    if report.accuracy:  # trusted is the gate's verdict, not a promise: what the forecasts missed by
        console.print("Typical error (WAPE) of the forecasts held: " + "; ".join(
            f"{escape(a.label)} {100 * a.metrics.wape:.0f}%" for a in report.accuracy
            if a.metrics.wape == a.metrics.wape) + " (report.html: accuracy)")
    cur = report.currency
    table = Table(title="What each strategy cost (whole replay)", header_style="bold")
    for col in ("strategy", "server-hours", "compute", "CDN egress", "transcoding", "total", "demand unserved"):
        table.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=True)
    totals = report.totals()
    for s in report.input.strategies:
        c, q = totals[s], report.quality[s]
        table.add_row(strategy_label(s), f"{q.pod_hours:,.0f}", format_money(c.compute, cur),
                      format_money(c.egress, cur), format_money(c.transcoding, cur), format_money(c.total, cur),
                      "-" if q.unserved_share is None else f"{100 * q.unserved_share:.3f}%")
    console.print(table)
    console.print(f"[bold]{escape(report.headline.text)}[/]")
    video = video_quality_sentence(report)
    if video:
        console.print(escape(video))
    for b in report.baselines:
        console.print(savings_sentence(report.savings_daily[b], over="the whole replay"), style="dim")
    for name, p in paths.items():
        console.print(f"wrote {escape(str(p))}")


def run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from policies.errors import EbbtideError
    from policies.units import parse_duration

    try:
        step = parse_duration(args.step)
    except ValueError as exc:
        raise EbbtideError(f"--step: {exc}") from None
    if step <= timedelta(0) or timedelta(hours=1) % step != timedelta(0):
        # the demo forecasts hourly: a coarser trace (1d ran, and "saved 60%" on a forecast never trusted)
        raise EbbtideError(f"--step: {args.step!r} must divide an hour (1m, 5m, 15m, 1h)")
    if not str(args.out).strip():
        raise EbbtideError("--out: empty; give the folder to write the demo's files to (default: out/demo)")
    out = Path(args.out)
    blocker = next((q for q in (out, *out.parents) if q.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise EbbtideError(f"--out {out}: {blocker} is a file, not a folder (the demo writes a folder of files)")
    try:  # before the replay, not 30 s later
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise EbbtideError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    command = f"ebbtide demo --out {args.out} --seed {args.seed} --step {args.step}"
    console = Console(width=None if sys.stdout.isatty() else 120)
    progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(file=sys.stderr))
    with progress:
        t_gen = progress.add_task("synthetic traffic", total=1.0)
        t_rep = progress.add_task("replay (forecast + plan)", total=1.0)
        t_rep_report = progress.add_task("costs and report", total=2.0)
        scenario = build_scenario(args.seed, step)
        progress.update(t_gen, completed=1.0)
        stage = run_replay(scenario, on_progress=lambda f: progress.update(t_rep, completed=f))
        report = build_report(scenario, stage, command)
        progress.update(t_rep_report, completed=1.0)
        paths = write_outputs(out, scenario, stage, report)
        progress.update(t_rep_report, completed=2.0)
    print_summary(console, scenario, stage, report, paths)
    return 0
