"""Bitrate caps per viewer tier: pure rules over the policy's ladder (no clock, no I/O).

For each tier the cap is the LOWEST rung among the applicable cap rules that name the tier
(ladder top when none applies), never below the tier's `hd_floor` (a hard invariant: the core
tier keeps its HD floor always). A rule applies when all its conditions hold:

- `hours`: `now` in the local time window `HH:MM-HH:MM` of the rule's IANA `timezone` (the
  window may wrap midnight; start inclusive, end exclusive; equal ends = all day);
- `traffic_below`: the traffic level (the highest forecast `yhat` over the next tick, or the
  demand observed now if higher) is below `traffic_below` x the peak level. Unknown level or
  peak -> the rule does not apply (no cut on missing information);
- `after_event`: within EBB_WINDOW (14 d) after an event's end, with no event in progress or
  about to start.

Changes are stepped: a cut moves at most `step_rungs` rungs per tick; a restore jumps straight
to its target (safest wins, and every cut is reversible). A tier with no cap written yet starts
from the ladder top; one whose written cap is no rung of the ladder (another policy's ladder, a
hand edit) gets the ladder top first, and cuts from the next tick. While the quality guard
restores bitrate, every tier is at the ladder top; while any guard is active no tier cap is cut.

Weak-network profile: when the weak-network viewers' packet-loss ratio is known and above
`loss_above`, every tier gets the profile's `fec_profile` (anti-loss FEC/retransmission) and its
weak-network viewers the profile's `cap` (never above the tier cap, never below the floor; not
stepped: it follows the network, also under a guard that only freezes scale-in, and it is lifted
while the guard restores bitrate). A loss reading outside 0..1 is no ratio: no profile.

Egress estimate (when the tier's concurrent viewers are known), GB per hour:
    viewers x max_kbps [kbit/s] x 3600 [s/h] / 8 [bit/byte] / 1e6 [kB/GB]
It is an upper bound: viewers below the cap (player adaptation, weak networks) use less.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from forecaster.series import Forecast
from policies.events import EBB_SPAN
from policies.schema import Bitrate, CapRule
from policies.units import format_duration, plural
from scaler.plans import Observation, Step, TierCap
from scaler.safety import fmt

#: How long after an event's end `after_event` rules apply (the ebb, policies.events.EBB_SPAN).
EBB_WINDOW = EBB_SPAN

_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class BitrateContext:
    """What bitrate rules need beyond the policy and the forecast, computed by the planner.

    `tick`: planning interval (the traffic level looks this far ahead).
    `peak_demand`: the peak level `traffic_below` is relative to (demand units; the lookback's
    peak when known), None when unknown.
    `demand_now`: demand observed now if it passed the data checks, else None.
    `ebb_since`: end of the most recent event when `now` lies within EBB_WINDOW after it and no
    event is in progress or about to start; None otherwise.
    `peak_source`: what `peak_demand` is, for the reasons (e.g. "the highest 1h point of the
    demand history over the forecast lookback 28d"); `ebb_event`: the name of the event that
    ended at `ebb_since`.
    """

    tick: timedelta
    peak_demand: float | None = None
    demand_now: float | None = None
    ebb_since: datetime | None = None
    peak_source: str = ""
    ebb_event: str | None = None


def egress_gb_per_hour(viewers: float, kbps: float) -> float:
    """GB delivered per hour to `viewers` concurrent viewers at `kbps` kbit/s each."""
    return viewers * kbps * 3600.0 / 8.0 / 1e6


def traffic_level(forecast: Forecast | None, now: datetime, tick: timedelta, demand_now: float | None) -> float | None:
    """Expected demand over the next tick: max forecast yhat in [now, now + tick], or the demand
    observed now when higher. None when neither is known (or the forecast has no finite point)."""
    return _traffic(forecast, now, tick, demand_now)[0]


def _traffic(forecast: Forecast | None, now: datetime, tick: timedelta,
             demand_now: float | None) -> tuple[float | None, str]:
    """`traffic_level` and where it comes from, for the reasons: the demand observed now, or the
    forecast's yhat over the next tick when that is higher."""
    level: float | None = None
    if forecast is not None and len(forecast.frame):
        index = forecast.index
        ts = (index if index.unit == "ns" else index.as_unit("ns")).asi8
        lo = np.searchsorted(ts, _ns(now), side="left")
        hi = np.searchsorted(ts, _ns(now + tick), side="right")
        vals = forecast.yhat.to_numpy(dtype=float)[lo:hi]
        vals = vals[np.isfinite(vals)]
        if vals.size:
            level = float(vals.max())
    source = f"the forecast's yhat over the next {format_duration(tick)}"
    if demand_now is not None and math.isfinite(demand_now) and (level is None or demand_now >= level):
        level, source = demand_now, "the demand observed now"
    return level, source if level is not None else ""


def _ns(t: datetime) -> int:
    return pd.Timestamp(t).value


def _in_hours(rule: CapRule, now: datetime) -> tuple[bool | None, str]:
    """Whether `now` is inside the rule's local hours; None (with why) when they cannot be read."""
    if rule.hours is None:
        return True, ""
    m = _HOURS.match(rule.hours)
    try:
        if m is None:
            raise ValueError
        start = time(int(m.group(1)), int(m.group(2)))
        end = time(int(m.group(3)), int(m.group(4)))
    except ValueError:
        return None, f"rule {rule.name}: hours {rule.hours!r} unreadable, rule skipped"
    try:
        zone = ZoneInfo(rule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"rule {rule.name}: unknown timezone {rule.timezone!r}, rule skipped"
    local = now.astimezone(zone).time().replace(tzinfo=None)
    if start == end:
        inside = True
    elif start < end:
        inside = start <= local < end
    else:
        inside = local >= start or local < end
    return inside, f"{rule.hours} {rule.timezone} (local {local.strftime('%H:%M')})"


def rule_applies(
    rule: CapRule, now: datetime, level: float | None, peak: float | None, ebb_since: datetime | None, *,
    level_source: str = "", peak_source: str = "", ebb_event: str | None = None,
) -> tuple[bool, str]:
    """Whether a cap rule applies now, with a short explanation: the deciding condition when it
    does not, every condition (joined by "and") when it does. `level_source`, `peak_source`:
    where the traffic level and the peak come from; `ebb_event`: the event whose ebb it is."""
    inside, why = _in_hours(rule, now)
    if inside is None:
        return False, why
    if not inside:
        return False, f"rule {rule.name}: outside {why}"
    parts = []
    if rule.hours is not None:
        parts.append(f"in {why}")
    if rule.traffic_below is not None:
        if level is None or peak is None or peak <= 0:
            return False, f"rule {rule.name}: traffic level or peak unknown, rule skipped"
        traffic = (f"traffic {fmt(level)}" + (f" ({level_source})" if level_source else "")
                   + " {} " + f"{rule.traffic_below:g} x peak {fmt(peak)}"
                   + (f" ({peak_source})" if peak_source else ""))
        if not level < rule.traffic_below * peak:
            return False, f"rule {rule.name}: {traffic.format('not below')}"
        parts.append(traffic.format("below"))
    if rule.after_event:
        if ebb_since is None:
            return False, f"rule {rule.name}: not in an ebb (no event ended within {EBB_WINDOW.days} d)"
        event = f"event {ebb_event}" if ebb_event else "an event"
        parts.append(f"in the ebb, {format_duration(now - ebb_since)} after {event} ended at {ebb_since.isoformat()}")
    return True, f"rule {rule.name} applies" + (f": {' and '.join(parts)}" if parts else "")


def plan_bitrate(
    bitrate: Bitrate,
    forecast: Forecast | None,
    quality: Observation,
    now: datetime,
    current_caps: Mapping[str, str] | tuple[tuple[str, str], ...],
    guard_active: bool,
    context: BitrateContext,
    *,
    allow_cuts: bool = True,
) -> tuple[tuple[TierCap, ...], list[Step]]:
    """Caps for every tier (in policy order) and one Step per tier.

    `forecast`: a forecast the planner trusts, or None. `current_caps`: tier -> rung now written.
    `guard_active`: the quality guard restores bitrate (every tier at the ladder top).
    `allow_cuts` False (any guard active, e.g. a breach whose on_breach omits restore_bitrate):
    caps may rise but not fall. Invariants: each tier's rung is at or above its hd_floor; a cut
    moves at most `step_rungs` rungs from the current cap.
    """
    ladder = [r.name for r in bitrate.ladder]
    kbps = {r.name: r.kbps for r in bitrate.ladder}
    index = {name: i for i, name in enumerate(ladder)}
    current = dict(current_caps)
    viewers = dict(quality.tier_viewers)
    level, level_source = _traffic(forecast, now, context.tick, context.demand_now)
    peak = context.peak_demand

    applicable: list[CapRule] = []
    verdicts: list[str] = []
    steps: list[Step] = []
    if not guard_active and bitrate.rules:
        for rule in bitrate.rules:
            ok, why = rule_applies(rule, now, level, peak, context.ebb_since, level_source=level_source,
                                   peak_source=context.peak_source, ebb_event=context.ebb_event)
            verdicts.append(why)
            if ok:
                applicable.append(rule)
        steps.append(Step("bitrate:rules", None, ", ".join(r.name for r in applicable) or None,
                          "; ".join(verdicts)))

    wn = bitrate.weak_network
    loss = quality.weak_network_loss
    weak = wn is not None and loss is not None and 0.0 <= loss <= 1.0 and loss > wn.loss_above

    caps: list[TierCap] = []
    for tier in bitrate.tiers:
        floor_i = index[tier.hd_floor]
        cur_name = current.get(tier.name)
        cur_i = index.get(cur_name, 0) if cur_name is not None else 0
        unknown = cur_name is not None and cur_name not in index
        if unknown:  # what the viewers get now is not known: no cut from it, the top first
            start_note = (f" (the cap written, {cur_name!r}, is no rung of the ladder: the ladder top this "
                          f"tick, cuts from the next)")
        else:
            start_note = "" if cur_name in index else " (no cap written yet: starting from the ladder top)"
        if guard_active:
            target_i, why = 0, "quality guard: restored to the ladder top"
        else:
            target_i, why = 0, "no cap rule applies"
            for rule in applicable:
                rung = rule.caps.get(tier.name)
                if rung is not None and index[rung] > target_i:
                    target_i = index[rung]
                    why = f"rule {rule.name} applies (bitrate:rules) and caps {tier.name} at {rung}"
            if target_i > floor_i:
                why += f", raised to the tier's floor {tier.hd_floor}"
                target_i = floor_i
        if not allow_cuts and target_i > cur_i:
            target_i, why = cur_i, f"{why}; cut withheld while the quality guard is active"
        if unknown:
            target_i = 0
        if target_i > cur_i:
            new_i = min(target_i, cur_i + bitrate.step_rungs)
            move = (f"stepped down from {ladder[cur_i]} to {ladder[new_i]}"
                    + (f" (at most {plural(bitrate.step_rungs, 'rung')} per tick)" if new_i < target_i else ""))
        elif target_i < cur_i:
            new_i, move = target_i, f"restored from {ladder[cur_i]} to {ladder[target_i]}"
        else:
            new_i, move = cur_i, f"kept {ladder[cur_i]}"
        new_i = min(new_i, floor_i)  # the floor is a hard invariant, whatever was written before
        rung = ladder[new_i]

        fec = "standard"
        weak_rung = weak_kbps = None
        if weak:
            fec = wn.fec_profile  # type: ignore[union-attr]
            if wn.cap is not None and not guard_active:  # type: ignore[union-attr]
                weak_i = min(max(new_i, index[wn.cap]), floor_i)  # type: ignore[union-attr]
                weak_rung, weak_kbps = ladder[weak_i], kbps[ladder[weak_i]]
        n = viewers.get(tier.name)
        egress = egress_gb_per_hour(n, kbps[rung]) if n is not None and math.isfinite(n) and n >= 0 else None
        caps.append(TierCap(tier.name, rung, kbps[rung], fec, egress, weak_rung, weak_kbps))

        extra = ""
        if weak:
            extra = f"; weak network (loss {loss:.3g} > {wn.loss_above:g}): FEC {fec}"  # type: ignore[union-attr]
            if weak_rung is not None:
                extra += f", weak-network viewers capped at {weak_rung}"
        steps.append(Step(f"bitrate:{tier.name}", cur_name, rung, f"{why}; {move}{start_note}{extra}"))
    return tuple(caps), steps
