"""The war-state baseline: what platforms do today around a big event.

Before each event the team raises the floor to the replicas the event's peak needed (peak demand
/ per_replica, with the policy's headroom), ready by the event's ramp start, and keeps it until
`hold_after` (7 days) after the event's end; a reactive HPA runs throughout and may go above the
floor. Outside those windows the baseline is the plain HPA.

"The peak the event needed" is taken from the trace itself (hindsight): the baseline is the best
case of war-state planning, never an under-sized guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from forecaster.series import Series
from policies.events import Event

HOLD_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class WarWindow:
    """The floor held for one event occurrence: `replicas` over [hold_from, hold_until)."""

    event: str
    hold_from: datetime
    hold_until: datetime
    replicas: int
    peak_demand: float


def peak_replicas(peak_demand: float, per_replica: float, headroom: float, min_replicas: int,
                  max_replicas: int) -> int:
    """ceil(peak_demand / per_replica x (1 + headroom)), clamped to [min_replicas, max_replicas]."""
    need = math.ceil(peak_demand / per_replica * (1.0 + headroom) - 1e-9)
    return int(min(max(need, min_replicas), max_replicas))


def war_windows(events: list[Event], demand: Series, *, per_replica: float, headroom: float,
                min_replicas: int, max_replicas: int, pod_startup: timedelta,
                hold_after: timedelta = HOLD_AFTER) -> list[WarWindow]:
    """One window per event occurrence whose [start, end) overlaps the trace (others skipped).

    The peak is the highest trace value among intervals overlapping [start, end) (the interval
    that starts at `end` is after the event, as its own figures count it); the floor is
    raised `pod_startup` before `start` so the pods are ready when the ramp begins.
    """
    idx = demand.index
    step = pd.Timedelta(demand.step)
    vals = demand.values.to_numpy(dtype=float)
    out: list[WarWindow] = []
    for ev in events:
        m = (idx + step > pd.Timestamp(ev.start)) & (idx < pd.Timestamp(ev.end))
        seg = vals[np.asarray(m)]
        if seg.size == 0 or np.isnan(seg).all():
            continue
        peak = float(np.nanmax(seg))
        out.append(WarWindow(
            event=ev.name,
            hold_from=ev.start - pod_startup,
            hold_until=ev.end + hold_after,
            replicas=peak_replicas(peak, per_replica, headroom, min_replicas, max_replicas),
            peak_demand=peak,
        ))
    return out


def war_floor(windows: list[WarWindow], now: datetime, base_min: int) -> int:
    """The HPA floor at `now`: the largest held replicas of the windows active, else base_min."""
    floor = base_min
    for w in windows:
        if w.hold_from <= now < w.hold_until:
            floor = max(floor, w.replicas)
    return floor


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def war_floors(windows: list[WarWindow], t_s: np.ndarray, base_min: int) -> np.ndarray:
    """`war_floor(windows, t, base_min)` at every whole epoch second of `t_s` at once (int64
    array), the window bounds compared in integer microseconds (a datetime's resolution), so
    exactly as the datetimes compare."""
    floors = np.full(t_s.shape, base_min, dtype=np.int64)
    t_us = t_s * 1_000_000
    one_us = timedelta(microseconds=1)
    for w in windows:
        on = ((w.hold_from - _EPOCH) // one_us <= t_us) & (t_us < (w.hold_until - _EPOCH) // one_us)
        floors[on] = np.maximum(floors[on], w.replicas)
    return floors
