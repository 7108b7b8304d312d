"""A faithful replay of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2), in simulated time.

Follows kube-controller-manager's `pkg/controller/podautoscaler` (horizontal.go,
replica_calculator.go) for one resource-utilisation-style metric:

- every `sync_s` (15 s) the HPA reads the metric as it was `metric_lag_s` ago (scrape interval
  plus rate window: the HPA never sees the present);
- per-pod utilisation is computed over READY pods: usage_ratio = demand / (ready x per_replica x
  target_utilisation); pods still starting are "unready";
- within tolerance (|1 - ratio| <= 0.1) nothing changes; otherwise desired = ceil(ratio x ready);
  on a scale-up while pods are still starting, those pods count as using 0 and the ratio is
  recomputed over all pods: if that ratio is within tolerance or flips direction, nothing changes
  (this is what stops the HPA from piling up pods while earlier ones start);
- behaviour (the API defaults): scale-down stabilisation 300 s (take the highest recommendation
  of the window), scale-up stabilisation 0 s; scale-up limited per 15 s period to the larger of
  +100% and +4 pods; scale-down limited to -100% per 15 s (no limit in effect);
- replicas below minReplicas are raised to it at once, above maxReplicas lowered, with no rate
  limit (as the controller does); when the metric is missing (NaN) the HPA does nothing.

Known simplifications (docs/replay.md): utilisation is exact, not truncated to whole percent;
pending and starting pods are both "unready"; no missing-metric pods; no CPU-initialisation
period beyond start-up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

_EPS = 1e-9  # guards ceil() against float noise (8.000000001 -> 8)


@dataclass(frozen=True)
class HpaSettings:
    """The HPA's parameters; defaults are Kubernetes' defaults plus a typical metric lag."""

    sync_s: float = 15.0
    """--horizontal-pod-autoscaler-sync-period. Default 15 s."""
    tolerance: float = 0.1
    """Ratio tolerance: |1 - usage_ratio| <= this -> no change. Default 0.1."""
    target_utilisation: float = 0.8
    """Target share of per_replica each ready pod should carry. Default 0.8."""
    metric_lag_s: float | None = None
    """Age of the demand metric, seconds, for the HPA and Ebbtide alike. None (default): the replayed
    workload's `demand.lag` (default 150 s: scrape interval 30 s + rate window 2 m)."""
    scale_down_stabilisation_s: float = 300.0
    """behavior.scaleDown.stabilizationWindowSeconds. Default 300 s."""
    scale_up_stabilisation_s: float = 0.0
    """behavior.scaleUp.stabilizationWindowSeconds. Default 0 s."""
    scale_up_pods: int = 4
    """behavior.scaleUp Pods policy: pods added per period. Default 4."""
    scale_up_percent: float = 100.0
    """behavior.scaleUp Percent policy: % added per period. Default 100."""
    scale_up_period_s: float = 15.0
    """Period of both scale-up policies (selectPolicy Max). Default 15 s."""
    scale_down_percent: float = 100.0
    """behavior.scaleDown Percent policy: % removed per period. Default 100."""
    scale_down_period_s: float = 15.0
    """Period of the scale-down policy. Default 15 s."""


def calculate_replicas(demand: float, current: int, ready: int, per_replica: float,
                       settings: HpaSettings) -> int:
    """The replica calculator: desired replicas for `demand` (unit of per_replica) given
    `current` pods of which `ready` are ready. Returns `current` when nothing should change."""
    if ready <= 0 or current <= 0:
        return current  # no pod reports a metric: the controller errors out and does nothing
    target = per_replica * settings.target_utilisation
    usage_ratio = demand / (ready * target)
    unready = current - ready
    if not (unready > 0 and usage_ratio > 1.0):
        if abs(1.0 - usage_ratio) <= settings.tolerance:
            return current
        return math.ceil(usage_ratio * ready - _EPS)
    # Scale-up with pods still starting: they count as using 0% of their request.
    new_ratio = demand / (current * target)
    if abs(1.0 - new_ratio) <= settings.tolerance or new_ratio < 1.0:
        return current
    new = math.ceil(new_ratio * current - _EPS)
    return current if new < current else new


class HpaReplay:
    """One HPA's controller state (recommendations, scale events) across syncs.

    Call `sync(now_s, demand_seen, current, ready, min_replicas)` every `settings.sync_s`;
    it returns the replicas to write (equal to `current` when it does nothing). `min_replicas`
    may change between syncs (the war-state baseline and Ebbtide's HPA mode move it).
    """

    def __init__(self, settings: HpaSettings, per_replica: float, max_replicas: int):
        self.settings = settings
        self.per_replica = float(per_replica)
        self.max_replicas = int(max_replicas)
        self._recommendations: deque[tuple[float, int]] = deque()
        self._up_events: deque[tuple[float, int]] = deque()
        self._down_events: deque[tuple[float, int]] = deque()
        self._initialised = False
        self.rescales = 0

    def sync(self, now_s: float, demand_seen: float, current: int, ready: int, min_replicas: int) -> int:
        s = self.settings
        min_replicas = max(1, int(min_replicas))  # an HPA's minReplicas is >= 1
        max_replicas = max(min_replicas, self.max_replicas)
        if not self._initialised:
            # maybeInitScaleDownStabilizationWindow: no scale-down right after the HPA appears.
            self._recommendations.append((now_s, current))
            self._initialised = True
        if current == 0:
            return 0  # scaled to zero by hand: autoscaling disabled
        if current > max_replicas:
            desired = max_replicas
        elif current < min_replicas:
            desired = min_replicas
        else:
            if demand_seen is None or math.isnan(demand_seen):
                return current  # metric missing: the controller logs an error and waits
            proposed = calculate_replicas(demand_seen, current, ready, self.per_replica, s)
            desired = self._normalise(now_s, current, proposed, min_replicas, max_replicas)
        if desired != current:
            self._store_event(now_s, current, desired)
            self.rescales += 1
        return desired

    # ---------------------------------------------------------------- behaviour
    def _normalise(self, now_s: float, current: int, desired: int, min_replicas: int, max_replicas: int) -> int:
        s = self.settings
        up_cutoff = now_s - s.scale_up_stabilisation_s
        down_cutoff = now_s - s.scale_down_stabilisation_s
        up = [rec for t, rec in self._recommendations if t > up_cutoff]
        down = [rec for t, rec in self._recommendations if t > down_cutoff]
        up_rec = min(desired, min(up)) if up else desired
        down_rec = max(desired, max(down)) if down else desired
        stabilised = min(max(current, up_rec), down_rec)
        self._recommendations.append((now_s, desired))
        oldest_needed = min(up_cutoff, down_cutoff)
        while self._recommendations and self._recommendations[0][0] <= oldest_needed:
            self._recommendations.popleft()

        if stabilised > current:
            added = self._change_in_period(self._up_events, now_s, s.scale_up_period_s)
            deleted = self._change_in_period(self._down_events, now_s, s.scale_up_period_s)
            period_start = current - added + deleted
            limit = max(period_start + s.scale_up_pods,
                        math.ceil(period_start * (1 + s.scale_up_percent / 100.0)))
            limit = max(limit, current)  # no further scale-up until old events age out
            return min(stabilised, limit, max_replicas)
        if stabilised < current:
            added = self._change_in_period(self._up_events, now_s, s.scale_down_period_s)
            deleted = self._change_in_period(self._down_events, now_s, s.scale_down_period_s)
            period_start = current - added + deleted
            limit = int(period_start * (1 - s.scale_down_percent / 100.0))
            limit = min(limit, current)
            return max(stabilised, limit, min_replicas)
        return stabilised

    @staticmethod
    def _change_in_period(events: deque[tuple[float, int]], now_s: float, period_s: float) -> int:
        cutoff = now_s - period_s
        return sum(n for t, n in events if t > cutoff)

    def _store_event(self, now_s: float, current: int, desired: int) -> None:
        events = self._up_events if desired > current else self._down_events
        events.append((now_s, abs(desired - current)))
        keep_s = max(self.settings.scale_up_period_s, self.settings.scale_down_period_s)
        for q in (self._up_events, self._down_events):
            while q and q[0][0] <= now_s - keep_s:
                q.popleft()
