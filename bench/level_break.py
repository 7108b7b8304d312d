"""Ordinary traffic whose level steps a few days before the cut: the level break, on and off.

Why: with no event around, Ebbtide's level is Prophet's flat trend plus `recent_level`, whose
persistence is learnt from the history's ordinary days; a history whose level never stepped
gives it none, and the seasonal naive (or its average with Prophet) copies a week from before
the step. `level_break_sigma` carries a step that held for `level_break_days` undecayed. These
traces come from a plain generator of their own (not forecaster.synthetic): a two-peak daily
profile (lunch and evening), a weekend factor, a daily level that wanders, Poisson counts or
lognormal noise, hourly or 5-minute; the level is multiplied by a factor (x0.4-0.77 or
x1.3-2.5) from 1, 2, 3 or 5 days before the cut, and a control per seed has no step (does the
break fire by chance?). Each is cut and forecast 7 days, Ebbtide with the break (the settings
given) and without it (`level_break_sigma=0`, the model before) in the same run, against every
baseline, as `ebbtide backtest` does.

    .venv/bin/python bench/level_break.py                 # the table (~2-4 min on 2 cores)
    .venv/bin/python bench/level_break.py --seeds 4 --json
    .venv/bin/python bench/level_break.py --set level_break_days=1   # the one-day rule

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

START = pd.Timestamp("2025-03-03T00:00:00Z")
DAYS = 42
CUT = START + pd.Timedelta(days=35)
AGES = (1, 2, 3, 5)
"""Days before the cut the level steps."""


def trace(seed: int, age: int | None) -> tuple[Series, str, float]:
    """Seed `seed`'s traffic (see the module docstring), stepped `age` days before the cut (None:
    the control, no step; the same draws otherwise), a label and the step's factor."""
    rng = np.random.default_rng(20_000 + seed)
    step = pd.Timedelta("5min") if seed % 3 == 2 else pd.Timedelta("1h")
    scale = float(np.exp(rng.uniform(np.log(20), np.log(5000))))
    weekend = float(rng.uniform(0.6, 1.3))
    walk = float(rng.uniform(0.0, 0.05))
    poisson = bool(rng.random() < 0.5)
    lo = rng.random() < 0.5
    factor = float(np.exp(rng.uniform(np.log(0.4), np.log(0.77)) if lo else rng.uniform(np.log(1.3), np.log(2.5))))
    idx = pd.date_range(START, periods=int(pd.Timedelta(days=DAYS) / step), freq=step)
    h = np.asarray(idx.hour + idx.minute / 60, dtype=float)
    daily = 0.3 + np.exp(-(((h - 20) % 24) ** 2) / 8) + 0.5 * np.exp(-((h - 12.5) ** 2) / 4)
    weekly = np.where(np.asarray(idx.day_of_week) >= 5, weekend, 1.0)
    day = np.asarray((idx - START) // pd.Timedelta(days=1))
    level = np.exp(np.cumsum(rng.normal(0.0, walk, DAYS)))[day]
    mu = scale * daily * weekly * level
    if age is not None:
        mu = np.where(idx >= CUT - pd.Timedelta(days=age), mu * factor, mu)
    if poisson:
        y = rng.poisson(mu).astype(float)
    else:
        y = np.round(mu * rng.lognormal(0.0, 0.1, mu.size), 3)
    label = (f"s{seed} {'5min' if step < pd.Timedelta('1h') else 'hourly'} "
             f"{'poisson' if poisson else 'lognormal'} walk {walk:.2f}")
    return Series(pd.Series(y, index=idx), step.to_pytimedelta(), f"step-{seed}"), label, factor


def run(seeds: int, settings: ModelSettings) -> list[dict]:
    off = replace(settings, level_break_sigma=0.0)
    rows = []
    for seed in range(seeds):
        for age in (*AGES, None):
            s, label, factor = trace(seed, age)
            fields, notes = fb.on_off(s, (), CUT, settings, off)
            rows.append({"trace": label, "age_days": age, "factor": None if age is None else factor, **fields,
                         "break": any(n.startswith("recent level") and "level break" in n for n in notes)})
    return rows


def summary(rows: list[dict]) -> list[str]:
    out = []
    for age in (*AGES, None):
        g = [r for r in rows if r["age_days"] == age]
        if not g:
            continue
        name = f"step {age} d before" if age is not None else "no step (control)"
        out.append(
            f"{name:18}: {len(g)} cuts, break fired on {sum(r['break'] for r in g)}; {fb.on_off_line(g)}; coverage "
            f">= 0.9 on {sum(r['coverage_off'] >= 0.9 for r in g)} -> {sum(r['coverage'] >= 0.9 for r in g)}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12, help="traces per step age (default 12)")
    fb.add_bench_args(ap, "level_break_days=1")
    a = ap.parse_args(argv)
    rows = run(a.seeds, fb.settings_with(a.set))
    if a.json:
        fb.print_json(rows, summary(rows), a.set)
        return 0
    print(f"{'trace':34} {'step':>10} {fb.ON_OFF_HEADER} break")
    for r in rows:
        step = "-" if r["age_days"] is None else f"x{r['factor']:.2f}@-{r['age_days']}d"
        print(f"{r['trace']:34} {step:>10} {fb.on_off_cells(r)} {'yes' if r['break'] else '-'}")
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
