"""Conformal interval arithmetic of Ebbtide's forecaster, pure (numpy and pandas only).

forecaster.model calibrates yhat_lower/yhat_upper from residuals in z (the transformed space):
the in-sample ones and those of held-out forecasts, split by lead time (how far after the
training data a point is) and by daily level band (the slots of the day ranked by fitted level).
These functions turn such residuals into quantiles; model.py decides which residuals they get
(docs/forecasting.md, "Intervals and calibration").

A lead bucket is `(residuals, n_eff)`: its finite holdout residuals and how many independent
observations they count for (a day's misfit moves all its hours, so one per day of lead, not
one per point), or None when it has none.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SKETCH_POINTS = 256  # holdout residuals kept per workload for a reused calibration


def conformal_quantile(resid: np.ndarray, q: float) -> float:
    """Split-conformal quantile of residuals: level ceil((n+1) q)/n (upper side), or
    floor((n+1) q)/n for low q; with too few residuals the extreme one."""
    r = np.sort(resid[np.isfinite(resid)])
    n = r.size
    if n == 0:
        return 0.0
    if q >= 0.5:
        k = math.ceil((n + 1) * q)
        return float(r[min(k, n) - 1])
    k = math.floor((n + 1) * q)
    return float(r[max(k, 1) - 1])


def pooled_quantile(r_in: np.ndarray, r_hold: np.ndarray, q: float, n_eff: float | None = None) -> float:
    """Quantile of in-sample and holdout residuals pooled with equal total weight per set (the
    few holdout residuals are the honest out-of-sample ones; the many in-sample ones are stable),
    with the split-conformal finite-sample correction on the holdout side: level
    q + (1 - q) / (n_eff + 1) (q - q / (n_eff + 1) below the median), n_eff = the number of
    independent holdout observations (default: every finite holdout residual)."""
    a, b = r_in[np.isfinite(r_in)], r_hold[np.isfinite(r_hold)]
    if b.size == 0:
        return conformal_quantile(a, q)
    n = b.size if n_eff is None else max(float(n_eff), 1.0)
    vals = np.concatenate([a, b])
    w = np.concatenate([np.full(a.size, 0.5 / max(a.size, 1)), np.full(b.size, 0.5 / b.size)])
    order = np.argsort(vals, kind="stable")
    vals, cw = vals[order], np.cumsum(w[order])
    level = q + (1 - q) / (n + 1) if q >= 0.5 else q - q / (n + 1)
    i = int(np.searchsorted(cw, level * cw[-1], side="left"))
    return float(vals[min(i, vals.size - 1)])


def lead_buckets(r_hold: np.ndarray, lead_hold_s: np.ndarray, edges_s: np.ndarray, block_s: float,
                  step_s: float, origin: np.ndarray | None = None) -> list[tuple[np.ndarray, float] | None]:
    """Holdout residuals split by lead bucket (len(edges_s) + 1 buckets; bucket k holds leads in
    (edges_s[k-1], edges_s[k]], lead in seconds after the last training point): per bucket its
    finite residuals and how many independent observations they count for (one per `block_s`
    of lead covered, summed over the forecast origins `origin` (one label per residual; default
    one origin); every residual when block_s is 0), or None when it has none."""
    ok = np.isfinite(r_hold)
    r_hold, lead_hold_s = r_hold[ok], lead_hold_s[ok]
    origin = np.zeros(r_hold.size) if origin is None else np.asarray(origin)[ok]
    out: list[tuple[np.ndarray, float] | None] = []
    lo = -math.inf
    for hi in [*edges_s.tolist(), math.inf]:
        m = (lead_hold_s > lo) & (lead_hold_s <= hi)
        if m.any():
            n_eff = float(m.sum())
            if block_s > 0:
                n_eff = sum((float(lead_hold_s[m & (origin == o)].max() - lead_hold_s[m & (origin == o)].min())
                             + step_s) / block_s for o in np.unique(origin[m]))
            out.append((r_hold[m], n_eff))
        else:
            out.append(None)
        lo = hi
    return out


def _monotone_in_lead(q_by_lead: np.ndarray, q: float) -> np.ndarray:
    """Quantiles by lead bucket made monotone and on their side of 0: an upper quantile (q >= 0.5)
    never decreases further ahead, a lower one never increases (the band never narrows)."""
    if q >= 0.5:
        return np.maximum.accumulate(np.maximum(q_by_lead, 0.0))
    return np.minimum.accumulate(np.minimum(q_by_lead, 0.0))


def bucket_quantiles(r_in: np.ndarray, buckets: list[tuple[np.ndarray, float] | None], q: float) -> np.ndarray:
    """One residual quantile per lead bucket: the in-sample residuals `r_in` pooled with the
    bucket's holdout residuals (equal total weight, `pooled_quantile` with the bucket's count
    of independent observations). A bucket without holdout residuals repeats the previous one
    (the first: in-sample only). Monotone in lead: the upper quantile (q >= 0.5) never
    decreases, the lower never increases, and each is on its side of 0."""
    out: list[float] = []
    for b in buckets:
        if b is None:
            out.append(out[-1] if out else conformal_quantile(r_in, q))
        else:
            out.append(pooled_quantile(r_in, b[0], q, b[1]))
    return _monotone_in_lead(np.asarray(out, dtype=float), q)


def level_bands(slot: np.ndarray, level: np.ndarray, n_slots: int, n_groups: int) -> np.ndarray:
    """Band (0 = lowest level) of each of `n_slots` slots: slots ranked by the median `level`
    of their points (`slot` holds each point's slot, 0 .. n_slots - 1), ties by slot number,
    cut into min(n_groups, n_slots) bands of equal slot count (band = rank x bands // slots:
    sizes differ by at most one when it does not divide). A slot with no finite level takes
    the median of the others (a middle band)."""
    n_groups = max(1, min(int(n_groups), int(n_slots)))
    ok = np.isfinite(level)
    med = np.full(n_slots, np.nan)
    if ok.any():
        frame = pd.DataFrame({"slot": slot[ok], "level": level[ok]}).groupby("slot")["level"].median()
        med[frame.index.to_numpy()] = frame.to_numpy()
    med = np.where(np.isfinite(med), med, np.nanmedian(med) if np.isfinite(med).any() else 0.0)
    order = np.argsort(med, kind="stable")
    bands = np.empty(n_slots, dtype=int)
    bands[order] = (np.arange(n_slots) * n_groups) // n_slots
    return bands


def group_buckets(r_hold: np.ndarray, lead_hold_s: np.ndarray, g_hold: np.ndarray,
                   buckets: list[tuple[np.ndarray, float] | None], edges_s: np.ndarray,
                   n_groups: int) -> list[list[tuple[np.ndarray, float] | None]]:
    """The lead buckets (`lead_buckets` of the same residuals: `buckets`) split by group: per
    group g, per bucket the holdout residuals of group g (`g_hold`) at that lead with the
    bucket's count of independent observations (a band of hours spans the same days of lead as
    the whole bucket, and a day's misfit moves all its hours), or None when it has none."""
    out = []
    for g in range(n_groups):
        m = g_hold == g
        sub = lead_buckets(r_hold[m], lead_hold_s[m], edges_s, 0.0, 1.0)
        out.append([None if b is None or sb is None else (sb[0], b[1]) for b, sb in zip(buckets, sub, strict=True)])
    return out


def group_quantiles(r_in: np.ndarray, g_in: np.ndarray, buckets: list[tuple[np.ndarray, float] | None],
                     group_buckets: list[list[tuple[np.ndarray, float] | None]], q: float,
                     min_points: int) -> np.ndarray:
    """Group-conditional ("Mondrian") conformal quantiles, shape (groups, lead buckets): row g
    pools group g's in-sample residuals (`r_in` where `g_in` == g) with its holdout residuals of
    each lead bucket (`group_buckets[g]`, `pooled_quantile`, the bucket's count of independent
    observations). A group with fewer than `min_points` finite in-sample residuals takes the
    pooled row (`bucket_quantiles` over all groups); a cell whose bucket has holdout residuals
    but none of the group takes the pooled value; a bucket without holdout residuals repeats the
    previous cell (the first: the group's in-sample quantile). Each row is monotone in lead and
    on its side of 0, like `bucket_quantiles`."""
    pooled = bucket_quantiles(r_in, buckets, q)
    out = np.tile(pooled, (max(len(group_buckets), 1), 1))
    for g, gbs in enumerate(group_buckets):
        m = (g_in == g) & np.isfinite(r_in)
        if int(m.sum()) < min_points:
            continue
        row: list[float] = []
        for k, (b, gb) in enumerate(zip(buckets, gbs, strict=True)):
            if b is None:
                row.append(row[-1] if row else conformal_quantile(r_in[m], q))
            elif gb is None:
                row.append(float(pooled[k]))
            else:
                row.append(pooled_quantile(r_in[m], gb[0], q, gb[1]))
        out[g] = _monotone_in_lead(np.asarray(row, dtype=float), q)
    return out


def sketch(r: np.ndarray) -> list[float]:
    """Sorted residuals, or `SKETCH_POINTS` evenly spaced quantiles of them when there are
    more (what a cached calibration keeps per lead bucket)."""
    r = np.sort(r[np.isfinite(r)])
    if r.size > SKETCH_POINTS:
        r = np.quantile(r, (np.arange(SKETCH_POINTS) + 0.5) / SKETCH_POINTS)
    return [float(x) for x in r]
