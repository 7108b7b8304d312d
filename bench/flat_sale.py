"""A declared sale that brought no peak: Ebbtide with `flat_event_ratio` on and off, same run.

Why: a calendar entry says a sale happened, not that it lifted this workload's traffic (NYC
taxi passengers on Black Friday stood at most 1.14x a typical Friday, and lower the holiday
weekend after). Fitted as a sale, such a dip became an ebb and a new peace level
(docs/forecasting.md, "A sale that brought no peak"). This generator is the case on its own:
35 days hourly, a daily cycle, weekends x0.8, a level wandering 3% a day, lognormal noise (sd
0.08); on a Friday a "sale" is declared 06:00-22:00 while the traffic falls to x0.85 or x0.7 for
that day (`1d`) or for it and the weekend after (`3d`). Cut 1, 1.5, 2, 3 and 4 days after the
Friday starts, forecast 7 days, Ebbtide (on, and off: `flat_event_ratio=0`) against every
baseline, as `ebbtide backtest` does.

    .venv/bin/python bench/flat_sale.py                 # the table (~3 min)
    .venv/bin/python bench/flat_sale.py --seeds 5 --json

No file is read; the traces are generated (seeded) on each run.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import forecast as fb  # noqa: E402  (bench/forecast.py: its --set rules, HORIZON)
from forecaster.model import ModelSettings  # noqa: E402
from forecaster.series import Series  # noqa: E402
from policies.events import Event  # noqa: E402

START = pd.Timestamp("2026-10-01T00:00:00Z")
FRIDAY = pd.Timestamp("2026-10-23T00:00:00Z")
SALE = Event(name="black-friday", kind="sale", start=(FRIDAY + pd.Timedelta(hours=6)).isoformat(),
             peak=(FRIDAY + pd.Timedelta(hours=14)).isoformat(), end=(FRIDAY + pd.Timedelta(hours=22)).isoformat())
"""The declared sale: a Friday, 06:00-22:00 UTC."""
DIPS = ((1, 0.85), (1, 0.7), (3, 0.7))
"""(days, factor): the traffic times `factor` from the Friday's 00:00 for `days` days."""
CUTS_H = (24, 36, 48, 72, 96)
"""Cuts, hours after the Friday's 00:00 (the sale ends at 22:00)."""


def trace(seed: int, days: int, factor: float) -> Series:
    """Seed `seed`'s traffic (module docstring) with the dip of `days` days at `factor`."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=35 * 24, freq="1h")
    hours = np.asarray((idx - START) / pd.Timedelta(hours=1), dtype=float)
    weekly = np.where(idx.day_of_week >= 5, 0.8, 1.0)
    wander = np.repeat(np.exp(np.cumsum(rng.normal(0.0, 0.03, 35))), 24)
    mu = 100.0 * (1.0 + 0.5 * np.sin(2 * np.pi * ((hours % 24) - 6) / 24)) * weekly * wander
    mu = np.where((idx >= FRIDAY) & (idx < FRIDAY + pd.Timedelta(days=days)), factor * mu, mu)
    return Series(pd.Series(mu * np.exp(rng.normal(0.0, 0.08, size=mu.size)), index=idx),
                  pd.Timedelta(hours=1).to_pytimedelta(), f"flat-sale-{seed}")


def run(seeds: int, settings: ModelSettings) -> list[dict]:
    off = replace(settings, flat_event_ratio=0.0)
    rows = []
    for seed in range(1, seeds + 1):
        for days, factor in DIPS:
            s = trace(seed, days, factor)
            for cut_h in CUTS_H:
                fields, notes = fb.on_off(s, [SALE], FRIDAY + pd.Timedelta(hours=cut_h), settings, off)
                rows.append({"seed": seed, "dip": f"{days}d x{factor:g}", "cut_h": cut_h, **fields,
                             "flat": any("brought no peak" in n for n in notes)})
    return rows


def summary(rows: list[dict]) -> list[str]:
    out = []
    for dip in dict.fromkeys(r["dip"] for r in rows):
        g = [r for r in rows if r["dip"] == dip]
        out.append(
            f"dip {dip:8}: {len(g)} cuts, flat on {sum(r['flat'] for r in g)}; {fb.on_off_line(g)}; WAPE on / off: "
            f"{sum(r['wape'] < r['wape_off'] - 0.005 for r in g)} lower, "
            f"{sum(r['wape'] > r['wape_off'] + 0.005 for r in g)} higher (by more than 0.005)")
    ratio = fb.geo([r["wape"] / r["wape_off"] for r in rows])
    out.append(f"all {len(rows)} cuts: WAPE on / off geometric mean {ratio:.2f}, "
               f"worst WAPE {max(r['wape_off'] for r in rows):.3f} -> {max(r['wape'] for r in rows):.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="traces per dip (default 3)")
    fb.add_bench_args(ap, "flat_event_ratio=1.5")
    a = ap.parse_args(argv)
    rows = run(a.seeds, fb.settings_with(a.set))
    if a.json:
        fb.print_json(rows, summary(rows), a.set)
        return 0
    print(f"{'seed':>4} {'dip':>9} {'cut':>5} {fb.ON_OFF_HEADER} flat")
    for r in rows:
        flat = "yes" if r["flat"] else "-"
        print(f"{r['seed']:4} {r['dip']:>9} {r['cut_h']:4}h {fb.on_off_cells(r, decimals=1)} {flat}")
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
