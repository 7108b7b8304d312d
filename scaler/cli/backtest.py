"""`ebbtide backtest`: forecast a `ts,value` CSV from a cutoff and compare with the baselines.

    ebbtide backtest --csv FILE --cutoff ISO --horizon DURATION [--events EVENTS.yaml]
                     [--forecast-out OUT.csv] [--json] [--country CC] [--calendar-tz ZONE]

Trains on the rows before the cutoff (rounded up to the file's interval), forecasts the horizon at
the file's interval with Ebbtide's event-aware model and every baseline, and scores each where
actual rows exist after the cutoff. OUT.csv holds Ebbtide's `ts,yhat,yhat_lower,yhat_upper`
(yhat_upper is the bound capacity is sized to). `--json` prints one JSON document (see
`build_report`); otherwise a table. `--country` (ISO 3166 code) models that country's public
holidays and `--calendar-tz` (IANA zone, default UTC) is the local calendar of holiday dates
and of the daily cycle: Ebbtide's ModelSettings `country_holidays` and `calendar_tz`, as the
forecast bench sets them (the baselines take neither).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from policies.errors import EbbtideError

METRICS_LEGEND = (
    "WAPE: sum|actual - yhat| / sum actual; under: share of demand above yhat_upper (not served by "
    "capacity sized to it); over: capacity sized to yhat_upper left unused, as a share of demand; "
    "coverage: share of points at or below yhat_upper"
)

MIN_TRAIN = timedelta(days=1)
OUTSIDE_SHOWN = 5
"""Events outside the history and the forecast warned about one by one; the rest are counted."""
"""Least observed history before the cutoff: less cannot show even one daily cycle."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "backtest",
        help="forecast a ts,value CSV from a cutoff; compare Ebbtide with baselines",
        description=__doc__.split("\n\n", 1)[0],
    )
    p.add_argument("--csv", required=True, metavar="FILE", help="`ts,value` CSV (ISO 8601 times with zone)")
    p.add_argument("--cutoff", required=True, metavar="ISO",
                   help="train on rows before this time (ISO 8601 with zone, e.g. 2015-07-14T13:00:00Z)")
    p.add_argument("--horizon", required=True, metavar="DURATION", help="how far to forecast: 24h, 7d, 90m")
    p.add_argument("--events", metavar="EVENTS.yaml", help="event calendar (same schema as a policy's `events`)")
    p.add_argument("--forecast-out", metavar="OUT.csv", help="write Ebbtide's forecast as ts,yhat,yhat_lower,yhat_upper")
    p.add_argument("--json", action="store_true", help="print metrics as JSON instead of a table")
    p.add_argument("--country", metavar="CC", help="model this country's public holidays (ISO 3166 code, "
                   "e.g. US, CN, DE; default: none)")
    p.add_argument("--calendar-tz", metavar="ZONE", default="UTC", help="IANA zone of the trace's local "
                   "calendar (holiday dates, the daily cycle), e.g. Asia/Shanghai. Default UTC")
    return p


def _parse_flags(args):
    from policies.units import parse_duration, parse_time

    try:
        horizon = parse_duration(args.horizon)
    except ValueError as exc:
        raise EbbtideError(f"--horizon: {exc}") from None
    if horizon <= timedelta(0):
        raise EbbtideError(f"--horizon: must be positive, got {args.horizon!r}")
    try:
        cutoff = parse_time(args.cutoff)
    except ValueError as exc:
        raise EbbtideError(f"--cutoff: {exc}") from None
    return cutoff, horizon


def _model_settings(args, horizon: timedelta):
    """Ebbtide's ModelSettings from --country / --calendar-tz (checked here, before any fitting:
    an unknown code or zone would otherwise fail inside the first fit)."""
    from forecaster.model import ModelSettings
    from scaler.cli.common import check_calendar

    country = check_calendar(args.country, args.calendar_tz)
    return ModelSettings(horizon_hint=max(horizon, ModelSettings().horizon_hint),
                         calendar_tz=args.calendar_tz, country_holidays=country)


def run(args) -> int:
    import pandas as pd

    from forecaster.backtest import align_origin, observed_span
    from forecaster.csvio import interval_text, read_series_csv
    from policies.events import load_events_file
    from policies.units import format_duration

    cutoff, horizon = _parse_flags(args)
    settings = _model_settings(args, horizon)
    if args.forecast_out and not Path(args.forecast_out).resolve().parent.is_dir():
        raise EbbtideError(f"--forecast-out {args.forecast_out}: folder does not exist")
    series = read_series_csv(args.csv)
    events = load_events_file(args.events) if args.events else []
    where = args.csv
    last = series.end + pd.Timedelta(series.step)
    if not (series.start < pd.Timestamp(cutoff) <= last):
        raise EbbtideError(
            f"--cutoff {cutoff.isoformat()} is outside the data in {where} "
            f"({series.start.isoformat()} .. {series.end.isoformat()}); it must fall after the first "
            f"row and at most one interval after the last"
        )
    if horizon < series.step:
        raise EbbtideError(f"--horizon {format_duration(horizon)} is shorter than the interval of {where} "
                           f"({interval_text(series.step)})")
    origin = align_origin(series, cutoff)
    span = observed_span(series.before(origin))
    if span < MIN_TRAIN:
        raise EbbtideError(f"{where}: only {format_duration(span)} of data before the cutoff "
                           f"{origin.isoformat()}, need at least {format_duration(MIN_TRAIN)}")

    until = origin + pd.Timedelta(horizon)
    lo, hi = series.start.to_pydatetime(), until.to_pydatetime()
    # An event that ended before the history is still modelled while its ebb reaches into it.
    reach = lo - settings.ebb_span
    outside = [e for e in events
               if not any(o.end > reach and o.start <= hi for o in e.occurrences(reach, hi, settings.calendar_tz))]
    for e in outside[:OUTSIDE_SHOWN]:
        later = e.start > hi and e.start - hi < timedelta(days=366)  # just not reached yet: no hint
        print(f"warning: {args.events}: event {e.name} ({e.start.isoformat()} .. {e.end.isoformat()}) falls "
              f"outside the history and the forecast ({series.start.isoformat()} .. {until.isoformat()}): it has "
              f"no effect{'' if later else ' (a wrong year?)'}", file=sys.stderr)
    if len(outside) > OUTSIDE_SHOWN:
        print(f"warning: {args.events}: and {len(outside) - OUTSIDE_SHOWN} more events outside the history and "
              f"the forecast (no effect)", file=sys.stderr)
    from policies.events import holiday_off_midnight, recurring_run_warning

    if (run := recurring_run_warning(events)) is not None:
        print(f"warning: {args.events}: {run}", file=sys.stderr)
    for e in events:
        if (off := holiday_off_midnight(e, settings.calendar_tz)) is not None:
            print(f"warning: {args.events}: {off}", file=sys.stderr)
    comparison = compare_models(series, events, origin, horizon, settings)
    runs, failures = list(comparison.runs), comparison.failures
    if args.forecast_out:
        out = Path(args.forecast_out)
        try:
            runs[0].forecast.to_csv_frame().to_csv(out, index=False, float_format="%.10g")
        except OSError as exc:
            raise EbbtideError(f"--forecast-out {out}: cannot write: {exc}") from None
    report = build_report(where, series, events, origin, horizon, runs, failures)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(report)
    return 0


def compare_models(series, events, origin, horizon, settings=None):
    """forecaster.comparison.compare_at_cutoff, with Ebbtide's failure told as an input error."""
    from forecaster.comparison import compare_at_cutoff

    try:
        return compare_at_cutoff(series, events, origin, horizon, settings)
    except ValueError as exc:
        raise EbbtideError(f"{series.name}: Ebbtide could not forecast from {origin.isoformat()}: {exc}") from None


def build_report(file, series, events, origin, horizon, runs, failures) -> dict:
    """The JSON document `--json` prints.

    Keys: file, interval, cutoff (rounded to the grid), horizon, train_start, train_points,
    forecast_points, actual_points (rows with a value inside the horizon), events (names),
    note (why metrics are missing, or null), and models: {name: {fit_s, upper_quantile,
    metrics (wape, smape, under_forecast, over_forecast, coverage, n_points, actual_total; null
    without actuals), notes, error}} with Ebbtide first.
    """
    from forecaster.csvio import interval_text
    from policies.units import format_duration

    first = runs[0]
    n_actual = first.metrics.n_points if first.metrics else 0
    note = None
    if n_actual == 0:
        note = (f"no actuals in {file} after the cutoff: this is a pure forecast, metrics are null")
    elif n_actual < len(first.forecast.index):
        note = (f"metrics cover the {n_actual} of {len(first.forecast.index)} horizon points that have "
                f"actuals in {file}")
    models: dict[str, dict] = {}
    for r in runs:
        models[r.model] = {
            "fit_s": round(r.fit_s, 3),
            "upper_quantile": r.forecast.upper_quantile,
            "metrics": r.metrics.to_dict() if r.metrics else None,
            "notes": list(r.forecast.notes),
            "error": None,
        }
    for name, err in failures.items():
        models[name] = {"fit_s": None, "upper_quantile": None, "metrics": None, "notes": [], "error": err}
    return {
        "file": str(file),
        "interval": interval_text(series.step),
        "cutoff": origin.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "horizon": format_duration(horizon),
        "train_start": series.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "train_points": first.train_points,
        "train_missing": int(series.before(origin).values.isna().sum()),
        "forecast_points": len(first.forecast.index),
        "actual_points": n_actual,
        "events": [e.name for e in events],
        "note": note,
        "models": models,
    }


def _fmt(v, pct: bool = True) -> str:
    """A metric for the table: a share as a percentage, else 2 decimals; beyond 100,000 (a
    forecast off by orders of magnitude, e.g. a baseline copying a value of 1e300) in powers of
    ten, so the column stays readable."""
    if v is None:
        return "-"
    x = 100 * v if pct else v
    text = f"{x:.0e}" if abs(x) >= 1e5 else (f"{x:.1f}" if pct else f"{x:.2f}")
    return text + ("%" if pct else "")


def print_table(report: dict) -> None:
    """A rich table of the report, one row per model."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    # Paths, event names, errors and notes are printed as written ([brackets] are not markup).
    console.print(
        f"[bold]{escape(report['file'])}[/]: {report['train_points']} points of {report['interval']}"
        + (f" ({report['train_missing']} of them missing)" if report.get("train_missing") else "")
        + f" before "
        f"{report['cutoff']}, forecasting {report['horizon']} ({report['forecast_points']} points)"
        + (f"; events: {escape(', '.join(report['events']))}" if report["events"] else "")
    )
    table = Table(show_header=True, header_style="bold")
    for col in ("model", "WAPE", "sMAPE", "under", "over", "coverage", "fit s"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for name, m in report["models"].items():
        if m["error"]:
            table.add_row(name, f"[red]failed: {escape(m['error'])}[/]", "", "", "", "", "")
            continue
        x = m["metrics"] or {}
        table.add_row(name, _fmt(x.get("wape")), _fmt(x.get("smape"), pct=False),
                      _fmt(x.get("under_forecast")), _fmt(x.get("over_forecast")),
                      _fmt(x.get("coverage")), f"{m['fit_s']:.2f}")
    console.print(table)
    console.print(METRICS_LEGEND, style="dim")
    if report["note"]:
        console.print(f"note: {escape(report['note'])}")
    for n in report["models"].get("ebbtide", {}).get("notes", []):
        console.print(f"  ebbtide: {escape(n)}")
