"""The HPA's trade-off curve: the same faithful HPA at several target utilisations, and where
Ebbtide sits against it.

"Why not just lower the HPA's target?" An HPA at u = 0.6 also buys standing capacity against
bursts. Each target utilisation u gives one point (replica-hours, under-provisioned share) over
the same window; the points, in order of replica-hours, are the curve every HPA tuning can reach.
Ebbtide is compared with the curve twice:

- at equal spend: the HPA's under share at Ebbtide's replica-hours (linear interpolation between
  the two neighbouring tunings); Ebbtide's under share over it below 1 means Ebbtide serves more
  demand than any HPA tuning that costs the same;
- at equal service: the replica-hours the HPA needs to leave no more demand unserved than
  Ebbtide (the least replica-hours on the curve where its under share falls to Ebbtide's).

Both say when the answer is outside the curve (`CurveReading.outside`): the value is then the
nearest end of the curve, a bound, not an estimate. Pure functions besides `hpa_frontier`, which
runs `replay_hpa` once per target utilisation (no forecaster: seconds per trace).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from forecaster.series import Series
from policies.errors import EbbtideError
from policies.events import Event
from policies.schema import Policy
from scaler.replay.runner import ReplayOptions, replay_hpa

DEFAULT_UTILISATIONS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Target utilisations of the curve: 0.8 is Kubernetes' usual choice (the replay's `hpa`)."""


@dataclass(frozen=True)
class FrontierPoint:
    """The HPA at one target utilisation over one window (units in the names; the share is of
    all demand in the window, as StrategySummary's)."""

    target_utilisation: float
    replica_hours: float
    under_provisioned_share: float
    under_provisioned_minutes: float

    def to_dict(self) -> dict:
        return {"target_utilisation": self.target_utilisation, "replica_hours": round(self.replica_hours, 3),
                "under_provisioned_share": round(self.under_provisioned_share, 6),
                "under_provisioned_minutes": round(self.under_provisioned_minutes, 3)}


@dataclass(frozen=True)
class CurveReading:
    """A value read off the curve. `outside` is None when the argument lies within the curve;
    "below" when it is below the curve's range (less spend than the cheapest tuning, or an under
    share the cheapest tuning already reaches), "above" when beyond it. Outside, `value` is the
    nearest end's value: a bound (see the functions), not an interpolation."""

    value: float
    outside: str | None = None


def _by_spend(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """The curve in order of replica-hours, one point per replica-hours (the lowest share)."""
    if not points:
        raise EbbtideError("the HPA frontier has no points: give at least one target utilisation")
    out: list[FrontierPoint] = []
    for p in sorted(points, key=lambda p: (p.replica_hours, p.under_provisioned_share)):
        if not out or p.replica_hours != out[-1].replica_hours:  # equal spend: the lower share only
            out.append(p)
    return out


def under_share_at(points: Sequence[FrontierPoint], replica_hours: float) -> CurveReading:
    """The HPA's under-provisioned share at `replica_hours`, by linear interpolation between the
    two tunings whose replica-hours enclose it (the points in order of replica-hours; at equal
    replica-hours the lower share). Outside the curve: "below" with the cheapest tuning's share
    (spending less, the HPA would most likely leave at least that much unserved), "above" with the
    dearest tuning's."""
    pts = _by_spend(points)
    if replica_hours < pts[0].replica_hours:
        return CurveReading(pts[0].under_provisioned_share, "below")
    if replica_hours > pts[-1].replica_hours:
        return CurveReading(pts[-1].under_provisioned_share, "above")
    for a, b in zip(pts, pts[1:]):
        if a.replica_hours <= replica_hours <= b.replica_hours:
            if replica_hours == a.replica_hours:
                return CurveReading(a.under_provisioned_share)
            f = (replica_hours - a.replica_hours) / (b.replica_hours - a.replica_hours)
            return CurveReading(a.under_provisioned_share + f * (b.under_provisioned_share - a.under_provisioned_share))
    return CurveReading(pts[-1].under_provisioned_share)  # replica_hours == the only point's


def replica_hours_for_under_share(points: Sequence[FrontierPoint], under_share: float) -> CurveReading:
    """The least replica-hours at which the HPA's curve leaves at most `under_share` of demand
    unserved: walking the curve in order of replica-hours, the first segment where the share
    falls to `under_share`, interpolated linearly. Outside the curve: "below" when the cheapest
    tuning already does as well (value: its replica-hours, an upper bound), "above" when no tuning
    does (value: the dearest tuning's replica-hours, a lower bound)."""
    pts = _by_spend(points)
    if pts[0].under_provisioned_share <= under_share:
        return CurveReading(pts[0].replica_hours, "below")
    for a, b in zip(pts, pts[1:]):
        if b.under_provisioned_share <= under_share:
            drop = a.under_provisioned_share - b.under_provisioned_share
            f = (a.under_provisioned_share - under_share) / drop
            return CurveReading(a.replica_hours + f * (b.replica_hours - a.replica_hours))
    return CurveReading(pts[-1].replica_hours, "above")


def hpa_frontier(
    trace: Series,
    policy: Policy,
    event: str,
    workload_name: str | None = None,
    *,
    utilisations: Sequence[float] = DEFAULT_UTILISATIONS,
    extra_events: Sequence[Event] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    options: ReplayOptions = ReplayOptions(),
) -> list[FrontierPoint]:
    """The HPA of `options.hpa` (sync, tolerance, behaviour, metric lag) at each target utilisation,
    replayed alone (`replay_hpa`) with the same arguments as `replay`, over the weeks after `event`:
    one point per utilisation, in the order given."""
    bad = [u for u in utilisations if not (math.isfinite(u) and u > 0)]
    if bad or not utilisations:
        raise EbbtideError(f"HPA target utilisations must be positive numbers, got {list(utilisations)}")
    points = []
    for u in utilisations:
        hs = dataclasses.replace(options.hpa, target_utilisation=float(u))
        r = replay_hpa(trace, policy, workload_name, extra_events=extra_events, start=start, end=end,
                       options=dataclasses.replace(options, hpa=hs))
        s = r.window(event)
        points.append(FrontierPoint(float(u), s.replica_hours, s.under_provisioned_share,
                                    s.under_provisioned_minutes))
    return points
