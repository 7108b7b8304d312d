"""`ebbtide demo [--out DIR]`: the ebb after a big sale, forecast on synthetic traffic.

No network, no cluster: seeded synthetic live-stream traffic (a joint live event two weeks
before a Singles-Day-style sale, then the weeks after), Ebbtide's event-aware forecaster fitted
one day after the sale, compared with the baselines; a table on the terminal and, in DIR:

- forecast.png   history, actuals and every model's forecast, Ebbtide's band shaded;
- forecast.csv   `ts,yhat,yhat_lower,yhat_upper` (Ebbtide) plus `actual` and each baseline's
                 `<model>_yhat`, `<model>_upper`;
- traffic.csv, events.yaml   the generated trace and its calendar, ready for
                 `ebbtide backtest --csv DIR/traffic.csv --events DIR/events.yaml ...`.

The demo is a list of stages (scenario -> forecast -> outputs), each a function taking the
previous stage's result, so planner, replay and cost stages can be appended.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DEMO_START = "2026-10-14T00:00:00+08:00"
"""Local midnight the trace starts at (a Wednesday); the sale peaks 28 local days later (11.11)."""
DEMO_ZONE = "Asia/Shanghai"
DEMO_DAYS = 38
"""4 weeks before the sale, the sale, and a week of ebb after the cut (plus slack)."""
CUT_AFTER_EVENT = timedelta(days=1)
"""Forecast origin: this long after the sale ends (the situation DESIGN.md measures)."""
HORIZON = timedelta(days=7)


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="forecast the ebb after a sale on synthetic traffic (no cluster, no network)",
        description=__doc__.split("\n\n", 1)[0],
    )
    p.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default: out/demo)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic traffic (default: 7)")
    p.add_argument("--step", default="5m", metavar="DURATION",
                   help="interval of the synthetic traffic: 1m, 5m, 15m, 1h (default: 5m)")
    return p


@dataclass(frozen=True)
class Scenario:
    """Stage 1: the traffic, its calendar, and where the forecast starts."""

    trace: object  # forecaster.synthetic.SyntheticTrace
    cut: object  # pd.Timestamp, UTC, on the trace's grid
    horizon: timedelta


@dataclass(frozen=True)
class ForecastStage:
    """Stage 2: every model fitted before the cut; Ebbtide's run first."""

    runs: list  # list[forecaster.backtest.ModelRun]
    failures: dict[str, str]


def build_scenario(seed: int, step: timedelta) -> Scenario:
    import pandas as pd

    from forecaster.backtest import align_origin
    from forecaster.synthetic import SaleSpec, generate
    from policies.units import parse_time

    start = parse_time(DEMO_START)
    sales = (
        SaleSpec(name="brand-day-joint-live", kind="joint_live", day=10, peak_hour_local=21.0,
                 ramp=timedelta(days=1), peak_multiplier=2.5, event_after_peak=timedelta(hours=3),
                 ebb_tau=timedelta(hours=36), peace_ratio=1.05),
        SaleSpec(name="singles-day", day=28),
    )
    trace = generate(start, DEMO_DAYS, step, seed, sales, zone=DEMO_ZONE)
    main_event = trace.events[-1]
    cut = align_origin(trace.series, pd.Timestamp(main_event.end + CUT_AFTER_EVENT).ceil("1h"))
    return Scenario(trace, cut, HORIZON)


def run_forecasts(scenario: Scenario) -> ForecastStage:
    from scaler.cli.backtest import compare_models

    comparison = compare_models(scenario.trace.series, list(scenario.trace.events),
                                scenario.cut, scenario.horizon)
    return ForecastStage(list(comparison.runs), comparison.failures)


def daily_rows(scenario: Scenario, stage: ForecastStage):
    """Per local day of the horizon: actual and Ebbtide's mean and max, demand above upper."""
    import numpy as np
    import pandas as pd

    fc = stage.runs[0].forecast
    actual = scenario.trace.series.values.reindex(fc.index)
    frame = pd.DataFrame({"actual": actual, "yhat": fc.yhat, "upper": fc.yhat_upper})
    frame["above"] = np.clip(frame["actual"] - frame["upper"], 0.0, None)
    local_day = frame.index.tz_convert(scenario.trace.zone).date
    rows = []
    for day, g in frame.groupby(local_day):
        rows.append({
            "day": str(day),
            "actual_mean": float(g["actual"].mean()),
            "yhat_mean": float(g["yhat"].mean()),
            "upper_mean": float(g["upper"].mean()),
            "actual_max": float(g["actual"].max()),
            "upper_max": float(g["upper"].max()),
            "above_share": float(g["above"].sum() / g["actual"].sum()) if g["actual"].sum() > 0 else 0.0,
        })
    return rows


def write_outputs(out: Path, scenario: Scenario, stage: ForecastStage) -> dict[str, Path]:
    """forecast.csv, forecast.png, traffic.csv, events.yaml in `out`; returns name -> path."""
    import yaml

    from forecaster.csvio import write_series_csv
    from policies.errors import EbbtideError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EbbtideError(f"--out {out}: cannot create folder: {exc}") from None
    paths = {name: out / name for name in ("forecast.csv", "forecast.png", "traffic.csv", "events.yaml")}
    fc = stage.runs[0].forecast
    table = fc.to_csv_frame()
    table["actual"] = scenario.trace.series.values.reindex(fc.index).to_numpy()
    for r in stage.runs[1:]:
        table[f"{r.model}_yhat"] = r.forecast.yhat.to_numpy()
        table[f"{r.model}_upper"] = r.forecast.yhat_upper.to_numpy()
    table.to_csv(paths["forecast.csv"], index=False, float_format="%.6g")
    write_series_csv(scenario.trace.series, paths["traffic.csv"])
    events = [{k: (v.isoformat() if isinstance(v, datetime) else v)
               for k, v in e.model_dump(exclude_none=True).items()} for e in scenario.trace.events]
    paths["events.yaml"].write_text(yaml.safe_dump({"events": events}, sort_keys=False), encoding="utf-8")
    plot_forecast(paths["forecast.png"], scenario, stage)
    return paths


def plot_forecast(path: Path, scenario: Scenario, stage: ForecastStage) -> None:
    """History (10 days before the cut), actuals and forecasts, in local time; Agg, no display."""
    import pandas as pd
    from matplotlib.figure import Figure

    zone = scenario.trace.zone
    s = scenario.trace.series.values
    view = s[(s.index >= scenario.cut - pd.Timedelta(days=10))
             & (s.index < scenario.cut + pd.Timedelta(scenario.horizon))]
    fig = Figure(figsize=(12, 5.5), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    local = lambda idx: idx.tz_convert(zone).tz_localize(None)  # noqa: E731
    ax.plot(local(view.index), view.to_numpy(), color="0.35", lw=0.7, label="actual viewers")
    ebb = stage.runs[0].forecast
    ax.fill_between(local(ebb.index), ebb.yhat_lower.to_numpy(), ebb.yhat_upper.to_numpy(),
                    color="tab:blue", alpha=0.2,
                    label=f"ebbtide {ebb.lower_quantile:.0%}-{ebb.upper_quantile:.0%} band")
    ax.plot(local(ebb.index), ebb.yhat.to_numpy(), color="tab:blue", lw=1.4, label="ebbtide forecast")
    colors = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for r, c in zip(stage.runs[1:], colors):
        ax.plot(local(r.forecast.index), r.forecast.yhat.to_numpy(), color=c, lw=0.9, ls="--",
                label=r.model)
    lo, hi = view.index[0], view.index[-1]
    for e in scenario.trace.events:
        if e.end >= lo and e.start <= hi:
            ax.axvspan(local(pd.DatetimeIndex([max(pd.Timestamp(e.start), lo)]))[0],
                       local(pd.DatetimeIndex([min(pd.Timestamp(e.end), hi)]))[0],
                       color="gold", alpha=0.15, label=f"event: {e.name}")
    ax.set_xlim(local(pd.DatetimeIndex([lo]))[0], local(pd.DatetimeIndex([hi]))[0])
    ax.axvline(local(pd.DatetimeIndex([scenario.cut]))[0], color="k", lw=1, ls=":")
    ax.set_title(f"The ebb after {scenario.trace.events[-1].name}: forecast from "
                 f"{scenario.cut.tz_convert(zone):%Y-%m-%d %H:%M} ({zone})")
    ax.set_ylabel("concurrent viewers")
    ax.set_ylim(0, float(view.max()) * 1.05)
    ax.legend(loc="upper right", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)


def print_summary(scenario: Scenario, stage: ForecastStage, paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    import pandas as pd

    from scaler.cli.backtest import METRICS_LEGEND

    console = Console()
    tr = scenario.trace
    ev = tr.events[-1]
    console.print(
        f"[bold]Synthetic live-stream traffic[/]: {len(tr.series)} points of "
        f"{int(tr.series.step_s // 60)} min, {tr.series.start:%Y-%m-%d} .. {tr.series.end:%Y-%m-%d} UTC; "
        f"events: {', '.join(e.name for e in tr.events)}"
    )
    console.print(f"{ev.name} peaked {pd.Timestamp(ev.peak).tz_convert(tr.zone):%m-%d %H:%M} "
                  f"local; forecast from {scenario.cut.tz_convert(tr.zone):%m-%d %H:%M} for "
                  f"{scenario.horizon.days} days")
    days = Table(title="Ebbtide, day by day (local days; thousands of viewers)", header_style="bold")
    for col in ("day", "actual avg", "forecast avg", "upper avg", "actual max", "upper max",
                "above upper"):
        days.add_column(col, justify="right", no_wrap=True)
    k = (lambda v: f"{v / 1000:,.1f}")  # noqa: E731
    for r in daily_rows(scenario, stage):
        days.add_row(r["day"][5:], k(r["actual_mean"]), k(r["yhat_mean"]), k(r["upper_mean"]),
                     k(r["actual_max"]), k(r["upper_max"]), f"{100 * r['above_share']:.1f}%")
    console.print(days)
    models = Table(title=f"All models over the {scenario.horizon.days}-day horizon", header_style="bold")
    for col in ("model", "WAPE", "under", "over", "coverage", "fit s"):
        models.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for r in stage.runs:
        m = r.metrics
        models.add_row(r.model, f"{100 * m.wape:.1f}%", f"{100 * m.under_forecast:.1f}%",
                       f"{100 * m.over_forecast:.1f}%", f"{100 * m.coverage:.1f}%", f"{r.fit_s:.1f}")
    for name, err in stage.failures.items():
        models.add_row(name, f"[red]failed: {err}[/]", "", "", "", "")
    console.print(models)
    console.print(METRICS_LEGEND, style="dim")
    for n in stage.runs[0].forecast.notes:
        console.print(f"  ebbtide: {n}")
    for name, p in paths.items():
        console.print(f"wrote {p}")


def run(args) -> int:
    from policies.errors import EbbtideError
    from policies.units import parse_duration

    try:
        step = parse_duration(args.step)
    except ValueError as exc:
        raise EbbtideError(f"--step: {exc}") from None
    if step <= timedelta(0) or timedelta(days=1) % step != timedelta(0):
        raise EbbtideError(f"--step: {args.step!r} must divide a day (1m, 5m, 15m, 1h)")
    scenario = build_scenario(args.seed, step)
    stage = run_forecasts(scenario)
    paths = write_outputs(Path(args.out), scenario, stage)
    print_summary(scenario, stage, paths)
    return 0
