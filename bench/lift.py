"""An event the history does not hold yet, and the `lift` hint (policies.events.Event.lift).

    .venv/bin/python bench/lift.py [--only NAME] [--factors 0.5,1,2] [--synthetic] [--json]

The situation: a partner's first joint live show, or Singles Day whose last occurrence is beyond
the lookback (and Prometheus' retention). Pre-scaling must decide before the ramp, when the
history holds no point of the event, so its size cannot be learnt (only borrowed from a seen
event of its kind, when there is one). Here each real trace's sale or joint live event with a
clear ebb (bench/forecast.py's calendars), and with `--synthetic` each seeded synthetic trace's
last one (bench/forecast.py's suite), is cut at the event's START, and Ebbtide forecasts 7 days:

- `none`: the calendar as the other benches declare it (no lift): what Ebbtide does unhinted;
- `xF` for each factor F of `--factors`: the event's `lift` set to F x its measured lift, i.e. an
  operator's estimate off by that factor (0.5: half the real size; 2: twice); left out where
  that is not above 1 (no lift can say so).

Measured lift: the highest value in [start, end) over the median of the same slot 1, 2 and 3
weeks earlier (what the same time saw without the event). It uses the event's own data, as an
operator's estimate from last year's dashboards would: the factors say how much an error in it
costs.

Figures per cut and variant, over the event window [start, end): `under`, the share of its demand
above yhat_upper (capacity sized to the upper bound misses it: what pre-scaling is for);
`peak cover`, yhat_upper at the event's highest point over the actual there (>= 1: covered); and
over the 7 days the WAPE and the coverage of yhat_upper. The best baseline (lowest 7-day WAPE of
seasonal naive, Holt-Winters, plain Prophet; none of them knows the event) is shown beside.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import forecast as fb  # noqa: E402  (bench/forecast.py: calendars, synthetic suite, DATA)
from forecaster.backtest import evaluate  # noqa: E402
from forecaster.comparison import baseline_models  # noqa: E402
from forecaster.csvio import read_series_csv  # noqa: E402
from forecaster.events import REGRESSOR_KINDS  # noqa: E402
from forecaster.model import EbbtideForecaster, ModelSettings  # noqa: E402
from forecaster.series import Forecast, Series  # noqa: E402
from policies.events import Event  # noqa: E402

WEEKS = (1, 2, 3)
"""Weeks before whose same slot the measured lift's baseline is the median of."""


def measured_lift(series: Series, event: Event) -> float | None:
    """The event's highest value in [start, end) over the median of the same slot `WEEKS` weeks
    earlier (those that exist and are > 0). None when either is missing or the ratio is not > 1."""
    v = series.values
    inside = v[(v.index >= pd.Timestamp(event.start)) & (v.index < pd.Timestamp(event.end))].dropna()
    if inside.empty:
        return None
    t = inside.idxmax()
    before = v.reindex([t - pd.Timedelta(weeks=k) for k in WEEKS]).to_numpy(dtype=float)
    before = before[np.isfinite(before) & (before > 0)]
    if not before.size:
        return None
    lift = float(inside.max() / np.median(before))
    return lift if lift > 1.0 else None


def event_window(series: Series, fc: Forecast, event: Event) -> dict:
    """{"under", "peak_cover"} of `fc` over [event start, end) (see the module docstring)."""
    y = series.values.reindex(fc.frame.index).to_numpy(dtype=float)
    ts = fc.frame.index
    on = np.asarray((ts >= pd.Timestamp(event.start)) & (ts < pd.Timestamp(event.end))) & np.isfinite(y)
    if not on.any():
        return {"under": None, "peak_cover": None}
    upper = fc.frame["yhat_upper"].to_numpy(dtype=float)
    d = y[on]
    under = float(np.maximum(d - upper[on], 0.0).sum() / d.sum()) if d.sum() > 0 else 0.0
    top = int(np.argmax(d))
    return {"under": under, "peak_cover": float(upper[on][top] / d[top]) if d[top] > 0 else None}


def _with_lift(events: tuple[Event, ...], name: str, lift: float) -> tuple[Event, ...]:
    """`events` with `name`'s lift set to `lift`, validated as a calendar entry is."""
    return tuple(Event.model_validate({**e.model_dump(), "lift": lift}) if e.name == name else e for e in events)


def run_cut(case: fb.Case, series: Series, event: Event, factors: tuple[float, ...], log) -> dict:
    """One cut at `event`'s start: Ebbtide without a lift and with each factor's, and the best baseline."""
    cut = series.index[series.index <= pd.Timestamp(event.start)][-1]  # no history point reaches into it
    history = series.before(cut)
    index = series.future_index(fb.HORIZON, cut)
    index = index[index <= series.end]
    settings = ModelSettings(calendar_tz=case.calendar_tz, country_holidays=case.country)
    lift = measured_lift(series, event)
    row = {"trace": case.file, "event": event.name, "kind": event.kind, "cut": cut.isoformat(),
           "measured_lift": lift, "variants": {}}
    # A lift must be > 1 (Event.lift): a factor that puts it at or below 1 cannot be declared.
    variants = [("none", None)] + [(f"x{f:g}", f * lift) for f in factors if lift is not None and f * lift > 1.0]
    for label, value in variants:
        log(f"  {case.file} | {event.name} | ebbtide {label} ...")
        events = _with_lift(case.events, event.name, value) if value is not None else case.events
        model = EbbtideForecaster(events, settings)
        model.fit(history)
        fc = model.predict(index)
        m = evaluate(series, fc).to_dict()
        row["variants"][label] = {"lift": value, "wape": m["wape"], "coverage": m["coverage"],
                                  **event_window(series, fc, event),
                                  "notes": [n for n in fc.notes if "lift" in n or "no occurrence" in n]}
    best = None
    for b in baseline_models(series.step):
        log(f"  {case.file} | {event.name} | {b.name} ...")
        try:
            b.fit(history)
            fc = b.predict(index)
        except Exception as exc:  # a baseline failing is a result, not a crash of the bench
            log(f"    {b.name}: {type(exc).__name__}: {exc}")
            continue
        m = evaluate(series, fc).to_dict()
        if m["wape"] is not None and (best is None or m["wape"] < best["wape"]):
            best = {"name": b.name, "wape": m["wape"], "coverage": m["coverage"], **event_window(series, fc, event)}
    row["best_baseline"] = best
    return row


def cases(only: str, synthetic: bool) -> list[tuple[fb.Case, Series, Event]]:
    """(case, series, event) per cut: the real traces' clear-ebb sale/joint live events, then the
    synthetic suite's last sale/joint live event per seed."""
    out = []
    if fb.DATA.is_dir():
        for case in fb.CASES:
            if only and only not in case.file or not (fb.DATA / case.file).exists():
                continue
            clear = any(c[2] for c in case.cuts)
            for e in case.events:
                if e.kind in REGRESSOR_KINDS and clear:
                    out.append((case, read_series_csv(fb.DATA / case.file), e))
    else:
        print(f"bench/lift.py: real traces not found at {fb.DATA} (set EBBTIDE_SHARED_DATA)", file=sys.stderr)
    if synthetic:
        for case, series in fb.synthetic_cases():
            if only and only not in case.file and only != fb.synthetic_group(case.file):
                continue
            e = max((x for x in case.events if x.kind in REGRESSOR_KINDS), key=lambda x: x.start)
            out.append((replace(case, file=case.file.split(" (")[0]), series, e))
    return out


def summary(rows: list[dict], factors: tuple[float, ...]) -> list[str]:
    """Per variant: median event-window under, cuts whose peak is covered, median 7-day WAPE ratio."""
    lines = []
    labels = ["none"] + [f"x{f:g}" for f in factors]
    for group, sel in (("real", [r for r in rows if not r["trace"].startswith("synthetic-")]),
                       ("synthetic", [r for r in rows if r["trace"].startswith("synthetic-")])):
        if not sel:
            continue
        base = [r["best_baseline"] for r in sel if r["best_baseline"]]
        if base:
            lines.append(f"{group:9s} best baseline : event under median {fb._pct(np.median([b['under'] for b in base]))}, "
                         f"peak covered {sum((b['peak_cover'] or 0) >= 1 for b in base)}/{len(base)}")
        for lab in labels:
            vs = [(r["variants"][lab], r["best_baseline"]) for r in sel if lab in r["variants"]]
            if not vs:
                continue
            ratios = [v["wape"] / b["wape"] for v, b in vs if b and b["wape"]]
            lines.append(f"{group:9s} ebbtide {lab:5s}: event under median {fb._pct(np.median([v['under'] for v, _ in vs]))}, "
                         f"peak covered {sum((v['peak_cover'] or 0) >= 1 for v, _ in vs)}/{len(vs)}, "
                         f"7-day WAPE / best baseline median {np.median(ratios):.2f}, "
                         f"coverage median {np.median([v['coverage'] for v, _ in vs]):.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="only traces whose file name contains this (synthetic: or group)")
    p.add_argument("--factors", default="0.5,1,2",
                   help="lift = factor x the measured lift, per variant (comma-separated). Default 0.5,1,2")
    p.add_argument("--synthetic", action="store_true", help="also the seeded synthetic suite")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = p.parse_args(argv)
    try:
        factors = tuple(float(x) for x in args.factors.split(",") if x.strip())
    except ValueError:
        print(f"error: --factors {args.factors!r}: comma-separated numbers, e.g. 0.5,1,2", file=sys.stderr)
        return 2
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    rows = [run_cut(case, series, e, factors, log) for case, series, e in cases(args.only, args.synthetic)]
    if args.json:
        json.dump({"factors": factors, "rows": rows, "summary": summary(rows, factors)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        b = r["best_baseline"] or {}
        cells = " | ".join(f"{k} under {fb._pct(v['under'])} cover {v['peak_cover'] or 0:.2f} wape {fb._pct(v['wape'])}"
                           for k, v in r["variants"].items())
        lift = r["measured_lift"]
        print(f"{r['trace'][:28]:28s} {r['event'][:20]:20s} lift {lift or 0:5.1f} | {cells} | "
              f"{b.get('name', '-')} under {fb._pct(b.get('under'))} cover {b.get('peak_cover') or 0:.2f} "
              f"wape {fb._pct(b.get('wape'))}")
    print("\n".join(summary(rows, factors)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
