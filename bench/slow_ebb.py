"""Traces from another generator than the synthetic suite's, cut a day after the event.

Why: forecaster.synthetic and bench/forecast.py's seeded suite were written next to the model,
and most of their sales leave a new peace level (x0.9-1.5) that the model's `settle` term draws
exactly. These traces come from an independent, plainer generator: a two-peak daily profile
(lunch and a sharp evening peak), weekends x1.25, one sale whose excess multiplies the whole day
(y = base x (1 + (m - 1) x excess)), ramping up over 6 h to its peak and then ebbing
exponentially (tau 10-72 h) or as a power law, back to the OLD level; Poisson counts or
lognormal noise; 1-minute to hourly; values from 0.004 to 3e9; a 36 h outage of zeros; a +3% a
day trend; timestamps with a +08:00 offset. Each is cut at the event's end + 1 day (`--days`
adds more) and forecast 7 days, Ebbtide against every baseline, as `ebbtide backtest` does.

    .venv/bin/python bench/slow_ebb.py                                   # the table (~1-2 min)
    .venv/bin/python bench/slow_ebb.py --set settle_needs_held_level=false   # the rule before
    .venv/bin/python bench/slow_ebb.py --days 1,2,3 --json
    .venv/bin/python bench/slow_ebb.py --days 1,2 --only hourly,30min --declare exact,peak-3h,shift-8h
                                     # the sale declared as a person may get it wrong (DECLARATIONS)

No file is read; the traces are generated (seeded) on each run.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import forecast as fb  # noqa: E402  (bench/forecast.py: its --set rules, HORIZON)
from forecaster.comparison import compare_at_cutoff  # noqa: E402
from forecaster.csvio import read_series_csv  # noqa: E402
from forecaster.model import ModelSettings  # noqa: E402
from forecaster.series import Series  # noqa: E402
from policies.events import Event  # noqa: E402

START = pd.Timestamp("2024-10-20T00:00:00Z")
PEAK = START + pd.Timedelta(days=21, hours=12)  # a Sunday noon
END = PEAK + pd.Timedelta(hours=2)


@dataclass(frozen=True)
class Probe:
    name: str
    step: str = "1h"
    days: int = 35
    scale: float = 1000.0
    mult: float = 8.0
    tau_h: float = 30.0
    power: bool = False
    zeros: bool = False
    trend: float = 0.0
    offset: str | None = None


PROBES = (
    Probe("hourly-lognormal-tiny", scale=0.004),
    Probe("hourly-lognormal-huge", scale=3e9),
    Probe("hourly-poisson-outage", zeros=True),
    Probe("hourly-poisson-trend", days=42, trend=0.03),
    Probe("hourly-poisson-+08:00", offset="Asia/Shanghai"),
    Probe("hourly-power-20x-weeks", days=56, mult=20.0, power=True, tau_h=6.0),
    Probe("1min-poisson", step="1min"),
    Probe("5min-poisson-low-counts", step="5min", scale=2.0),
    Probe("10min-poisson", step="10min"),
    Probe("15min-power-10h", step="15min", power=True, tau_h=10.0),
    Probe("30min-poisson-tau72h", step="30min", days=42, tau_h=72.0),
)


def trace(p: Probe, seed: int = 7) -> Series:
    """The probe's series (seeded; see the module docstring), read back from a `ts,value` CSV."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(p.step)
    idx = pd.date_range(START, periods=int(pd.Timedelta(days=p.days) / step), freq=step)
    h = np.asarray(idx.hour + idx.minute / 60, dtype=float)
    daily = 0.3 + np.exp(-(((h - 20) % 24) ** 2) / 8) + 0.5 * np.exp(-((h - 12.5) ** 2) / 4)
    weekly = np.where(np.asarray(idx.day_of_week) >= 5, 1.25, 1.0)
    days = np.asarray((idx - START) / pd.Timedelta(days=1), dtype=float)
    base = p.scale * daily * weekly * (1 + p.trend * days)
    t = np.asarray((idx - PEAK) / pd.Timedelta(hours=1), dtype=float)
    ramp = np.where((t > -6) & (t <= 0), np.exp(np.minimum(t, 0) / 2.0), 0.0)
    after = np.maximum(t, 0.0)
    ebb = (1 + after / p.tau_h) ** -1.2 if p.power else np.exp(-after / p.tau_h)
    mu = base * (1 + (p.mult - 1) * (ramp + np.where(t > 0, ebb, 0.0)))
    y = rng.poisson(mu).astype(float) if 1 <= p.scale < 1e6 else mu * rng.lognormal(0.0, 0.05, mu.size)
    if p.zeros:
        y[(days >= 10) & (days < 11.5)] = 0.0
    ts = idx.tz_convert(p.offset).strftime("%Y-%m-%dT%H:%M:%S%z") if p.offset else idx.strftime("%Y-%m-%dT%H:%M:%SZ")
    if p.offset:
        ts = ts.str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True)  # +0800 -> +08:00
    with tempfile.TemporaryDirectory() as d:  # through the CSV reader `ebbtide backtest` uses
        path = Path(d) / f"{p.name}.csv"
        pd.DataFrame({"ts": ts, "value": y}).to_csv(path, index=False, float_format="%.6g")
        return read_series_csv(path)


def event(shift_h: float = 0.0, peak_to_end_h: float = 2.0, ramp_h: float = 6.0) -> Event:
    """The sale as declared: the generator's ramp start, peak and end (shift 0), or moved."""
    peak = PEAK + pd.Timedelta(hours=shift_h)
    return Event(name="big-sale", kind="sale", start=(peak - pd.Timedelta(hours=ramp_h)).isoformat(),
                 peak=peak.isoformat(), end=(peak + pd.Timedelta(hours=peak_to_end_h)).isoformat())


DECLARATIONS = {
    "exact": lambda: [event()],
    "peak+3h": lambda: [event(3)],  # the whole entry 3 h late
    "peak-3h": lambda: [event(-3)],  # 3 h early: the declared end is 1 h before the real peak
    "shift-8h": lambda: [event(-8)],  # a +08:00 local time written as UTC: over before the peak
    "end=peak": lambda: [event(peak_to_end_h=0)],
    "end+12h": lambda: [event(peak_to_end_h=14)],
    "start-late": lambda: [event(ramp_h=1)],  # the ramp is not declared
    "day-window": lambda: [event(peak_to_end_h=12, ramp_h=12)],  # the whole (UTC) day of the peak
    "none": lambda: [],  # no calendar entry at all
}
"""How the sale is declared (`--declare`): a calendar entry is a person's, and may be off."""


def run(days: list[int], settings: ModelSettings, only: tuple[str, ...] = (),
        declare: tuple[str, ...] = ("exact",)) -> list[dict]:
    rows = []
    for p in PROBES:
        if only and not any(o in p.name for o in only):
            continue
        s = trace(p)
        for d, how in ((d, how) for d in days for how in declare):
            cut = END + pd.Timedelta(days=d)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c = compare_at_cutoff(s, DECLARATIONS[how](), cut, fb.HORIZON, settings)
            wapes = {r.model: r.metrics.wape for r in c.runs if r.metrics is not None}
            eb = c.ebbtide
            base = {k: v for k, v in wapes.items() if k != eb.model and math.isfinite(v)}
            best = min(base, key=base.get)
            notes = eb.forecast.notes
            rows.append({
                "trace": p.name, "cut": f"end +{d}d", "declared": how, "ebbtide_wape": wapes[eb.model],
                "coverage": eb.metrics.coverage, "best_baseline": best, "best_wape": base[best],
                "ratio_to_best": wapes[eb.model] / base[best] if base[best] > 0 else None,
                "level": ("forecast" if any(n.startswith("new peace level after the ebb") for n in notes)
                          else "hedged" if any("(`settle_unheld_hedge`)" in n and "mean" in n for n in notes)
                          else "band" if any("(`settle_unheld_hedge`)" in n for n in notes) else "-"),
                "fit_s": eb.fit_s,
            })
    return rows


def summary(rows: list[dict]) -> str:
    r = [x["ratio_to_best"] for x in rows if x["ratio_to_best"] is not None]
    cov = [x["coverage"] for x in rows]
    return (f"{len(r)} cuts: median ratio to the best baseline {statistics.median(r):.2f}, "
            f"{sum(x <= 0.5 for x in r)} <= 0.5, {sum(x > 1 for x in r)} > 1 (worse than the best baseline), "
            f"worst {max(r):.2f}; coverage of yhat_upper >= 0.9 on {sum(c >= 0.9 for c in cov)}/{len(cov)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", default="1", help="cuts: days after the event's end, comma-separated (default 1)")
    ap.add_argument("--only", default="", help="traces whose name contains one of these (comma-separated)")
    ap.add_argument("--declare", default="exact",
                    help=f"how the sale is declared, comma-separated: {', '.join(DECLARATIONS)} (default exact)")
    fb.add_bench_args(ap, "settle_needs_held_level=false")
    a = ap.parse_args(argv)
    declare = tuple(a.declare.split(","))
    if unknown := [x for x in declare if x not in DECLARATIONS]:
        ap.error(f"--declare: unknown {', '.join(unknown)} (one of {', '.join(DECLARATIONS)})")
    settings = fb.settings_with(a.set)  # the same --set rules as the forecast bench
    rows = run([int(x) for x in a.days.split(",")], settings, tuple(x for x in a.only.split(",") if x), declare)
    if a.json:
        fb.print_json(rows, summary(rows), a.set)
        return 0
    print(f"{'trace':26} {'cut':9} {'declared':10} {'Ebbtide':>8} {'cov':>5} {'best baseline':>20} {'wape':>6} "
          f"{'ratio':>6} level")
    for x in rows:
        print(f"{x['trace']:26} {x['cut']:9} {x['declared']:10} {100 * x['ebbtide_wape']:7.0f}% "
              f"{100 * x['coverage']:4.0f}% {x['best_baseline']:>20} {100 * x['best_wape']:5.0f}% "
              f"{x['ratio_to_best']:6.2f} {x['level']}")
    for how in declare if len(declare) > 1 else ():
        print(f"declared {how}: {summary([x for x in rows if x['declared'] == how])}")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
