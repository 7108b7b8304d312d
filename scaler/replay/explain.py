"""Where Ebbtide's replica-hours go: a per-tick log of the planner's steps and its breakdown.

The replay logs, at every Ebbtide tick, the demand the planner saw and what each plan step did
to the replica count. `explain()` integrates that log over a time range (a tick's decision
holds until the next tick) and splits Ebbtide's replica-hours into additive parts:

    replica-hours = demand           (true demand / per_replica: the floor any strategy pays)
                  + lag              (observed demand - true demand: the metric lag, either sign)
                  + forecast         (sized demand - observed: quantile and lead-window maximum)
                  + burst            (burst allowance: the recent history's growth over the lead
                                      window's unobserved points, above the forecast's)
                  + headroom         (sized x headroom / per_replica)
                  + rounding/limits  (ceil to whole pods, min_replicas, event pre-scaling)
                  + step_limit, stabilization, cooldown, guard, other
                                     (pods kept by the scale-down restrictions on descents)

Every part is in replica-hours; they add up to the replica-hours Ebbtide wrote over the range
(`target`), up to the part of the range before the first tick. Alongside: the share of ticks
trusted vs reactive, capacity/demand (ready capacity over true demand) per mode for Ebbtide and
the HPA, and the forecast band: mean (yhat_upper - yhat) / yhat at the tick, trusted ticks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaler.plans import Plan

#: Restriction steps whose increments are attributed (in plan order).
HOLD_STEPS = ("step_limit", "stabilization", "cooldown", "quality_guard", "limits")


@dataclass
class TickLog:
    """One row per Ebbtide tick (appended by the replay), as growable lists."""

    t_s: list[int] = field(default_factory=list)
    trusted: list[bool] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)  # demand the planner saw (lagged), NaN if none
    sized: list[float] = field(default_factory=list)  # demand sized for by the demand step (NaN: held)
    burst: list[float] = field(default_factory=list)  # demand sized for after the burst allowance (NaN: held)
    with_headroom: list[float] = field(default_factory=list)  # sized x (1 + headroom) / per_replica, pods
    recommendation: list[int] = field(default_factory=list)  # after clamp (before descent limits)
    holds: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in HOLD_STEPS})
    target: list[int] = field(default_factory=list)
    band: list[float] = field(default_factory=list)  # (yhat_upper - yhat) / yhat at the tick, NaN if none

    def add(self, t_s: int, p: Plan, observed: float | None, headroom: float, per_replica: float,
            yhat_now: float | None, upper_now: float | None) -> None:
        """Log plan `p` made at `t_s` on `observed` demand."""
        by_name: dict[str, list] = {}
        for s in p.steps:
            by_name.setdefault(s.name, []).append(s)
        sizing = (by_name.get("demand") or by_name.get("reactive") or [None])[0]
        sized = float(sizing.after) if sizing is not None and sizing.after is not None else math.nan
        b = (by_name.get("burst") or [None])[0]
        burst = float(b.after) if b is not None and b.after is not None else sized
        clamp = (by_name.get("clamp") or [None])[0]  # a test planner may have no steps
        self.t_s.append(t_s)
        self.trusted.append(bool(p.forecast_trusted))
        self.observed.append(math.nan if observed is None else float(observed))
        self.sized.append(sized)
        self.burst.append(burst)
        self.with_headroom.append(burst * (1.0 + headroom) / per_replica if math.isfinite(burst) else math.nan)
        self.recommendation.append(int(clamp.after) if clamp is not None else int(p.target_replicas))
        for name in HOLD_STEPS:
            st = by_name.get(name)
            self.holds[name].append(sum(int(x.after) - int(x.before) for x in st) if st else 0)
        self.target.append(int(p.target_replicas))
        ok = yhat_now is not None and upper_now is not None and yhat_now > 0
        self.band.append((upper_now - yhat_now) / yhat_now if ok else math.nan)


def explain(log: TickLog, t0_s: int, t1_s: int, tick_s: int, demand_at, per_replica: float,
            ready_capacity_ratio) -> dict:
    """Breakdown of Ebbtide's replica-hours over ticks in [t0_s, t1_s) (see module doc).

    `demand_at(t_s)` is the true demand; `ready_capacity_ratio(strategy, t_s, t1_s)` returns
    (summed ready capacity, summed demand) over [t_s, t1_s) for a strategy.
    """
    t = np.asarray(log.t_s, dtype=np.int64)
    sel = (t >= t0_s) & (t < t1_s)
    if not sel.any():
        return {}
    h = tick_s / 3600.0
    idx = np.flatnonzero(sel)
    trusted = np.asarray(log.trusted, dtype=bool)[idx]
    target = np.asarray(log.target, dtype=float)[idx]
    rec = np.asarray(log.recommendation, dtype=float)[idx]
    obs = np.asarray(log.observed, dtype=float)[idx]
    sized = np.asarray(log.sized, dtype=float)[idx]
    withh = np.asarray(log.with_headroom, dtype=float)[idx]
    true = np.array([demand_at(x) for x in t[idx]], dtype=float)
    true0 = np.where(np.isfinite(true), true, 0.0)
    obs0 = np.where(np.isfinite(obs), obs, true0)
    sized0 = np.where(np.isfinite(sized), sized, obs0)
    burst = np.asarray(log.burst, dtype=float)[idx]
    burst0 = np.where(np.isfinite(burst), burst, sized0)
    withh0 = np.where(np.isfinite(withh), withh, burst0 / per_replica)
    parts = {
        "demand": true0 / per_replica,
        "lag": (obs0 - true0) / per_replica,
        "forecast": (sized0 - obs0) / per_replica,
        "burst": (burst0 - sized0) / per_replica,
        "headroom": withh0 - burst0 / per_replica,
        "rounding_limits_event": rec - withh0,
    }
    holds = {name: np.asarray(log.holds[name], dtype=float)[idx] for name in HOLD_STEPS}
    parts.update({"step_limit": holds["step_limit"], "stabilization": holds["stabilization"],
                  "cooldown": holds["cooldown"], "guard": holds["quality_guard"] + holds["limits"]})
    parts["other"] = target - sum(parts.values())
    total = float(target.sum() * h)
    out: dict = {
        "replica_hours": round(total, 1),
        "parts_replica_hours": {k: round(float(v.sum() * h), 1) for k, v in parts.items()},
        "trusted_tick_share": round(float(trusted.mean()), 4),
    }
    for mode, m in (("trusted", trusted), ("reactive", ~trusted)):
        if not m.any():
            continue
        sub = {"ticks": int(m.sum()), "replica_hours": round(float(target[m].sum() * h), 1),
               "demand_replica_hours": round(float(parts["demand"][m].sum() * h), 1)}
        sub["parts_replica_hours"] = {k: round(float(v[m].sum() * h), 1) for k, v in parts.items()}
        out[mode] = sub
    # Capacity / demand over the ticks of each mode, Ebbtide and the HPA alike.
    for strategy in ("ebbtide", "hpa"):
        for mode, m in (("trusted", trusted), ("reactive", ~trusted)):
            if not m.any():
                continue
            cap = dem = 0.0
            for i in np.flatnonzero(m):
                c, d = ready_capacity_ratio(strategy, int(t[idx[i]]), min(int(t[idx[i]]) + tick_s, t1_s))
                cap += c
                dem += d
            out.setdefault(mode, {})[f"capacity_over_demand_{strategy}"] = round(cap / dem, 3) if dem else None
    band = np.asarray(log.band, dtype=float)[idx][trusted]
    band = band[np.isfinite(band)]
    out["band_upper_over_yhat_mean"] = round(float(band.mean()), 3) if band.size else None
    # Time spent descending: ticks where some restriction kept pods above the recommendation.
    held = (target > rec) & (target > 0)
    out["held_on_descent_tick_share"] = round(float(held.mean()), 4)
    return out


def format_explain(name: str, ex: dict) -> str:
    """A few lines for people: where the replica-hours of one window go."""
    if not ex:
        return f"{name}: no ticks"
    parts = ex["parts_replica_hours"]
    total = ex["replica_hours"]

    def pct(v: float) -> str:
        return f"{100 * v / total:.0f}%" if total else "-"

    lines = [f"{name}: {total:.0f} replica-h; trusted {100 * ex['trusted_tick_share']:.0f}% of ticks; "
             f"held above recommendation on {100 * ex['held_on_descent_tick_share']:.0f}% of ticks; "
             f"band (upper-yhat)/yhat {ex['band_upper_over_yhat_mean']}"]
    lines.append("  parts: " + ", ".join(f"{k} {v:.0f} ({pct(v)})" for k, v in parts.items()))
    if "hpa_above_floor_replica_hours" in ex:
        lines.append(f"  (HPA-owned: the parts split the minReplicas floor; the HPA ran "
                     f"{ex['hpa_above_floor_replica_hours']:.0f} replica-h above it)")
    for mode in ("trusted", "reactive"):
        m = ex.get(mode)
        if not m or "ticks" not in m:
            continue
        p = m["parts_replica_hours"]
        lines.append(f"  {mode}: {m['ticks']} ticks, {m['replica_hours']:.0f} replica-h for "
                     f"{m['demand_replica_hours']:.0f} of demand; capacity/demand ebbtide "
                     f"{m.get('capacity_over_demand_ebbtide')} vs hpa {m.get('capacity_over_demand_hpa')}; "
                     + ", ".join(f"{k} {v:.0f}" for k, v in p.items() if k != "demand"))
    return "\n".join(lines)
