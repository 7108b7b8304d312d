"""A simulated workload: pods that become ready `pod_startup_s` after they are created.

Times are float seconds on any fixed axis (the replay uses UTC epoch seconds). The cluster is the
only place readiness lives; controllers read `replicas` (pods that exist, what the scale
subresource reports) and `ready(now_s)` (pods serving), and write `scale(target, now_s)`.

Invariants: 0 <= ready(t) <= replicas; a pod created at t is ready from t + pod_startup_s on
(inclusive); a scale-down removes not-yet-ready pods first, then the youngest ready ones (the
ReplicaSet controller's deletion order: unready before ready, newer before older).
"""

from __future__ import annotations

import bisect


class SimulatedCluster:
    """Pods of one workload in simulated time (no scheduling limits, no failures)."""

    def __init__(self, replicas: int, pod_startup_s: float, now_s: float, *, ready: bool = True):
        """Start with `replicas` pods, ready at once when `ready` (a warm start), else starting now."""
        if replicas < 0 or pod_startup_s < 0:
            raise ValueError("replicas and pod_startup_s must be >= 0")
        self.pod_startup_s = float(pod_startup_s)
        first_ready_s = now_s if ready else now_s + self.pod_startup_s
        self._ready_at_s: list[float] = [first_ready_s] * int(replicas)  # kept sorted ascending
        self.actions = 0  # scale calls that changed the pod count

    @property
    def replicas(self) -> int:
        """Pods that exist (starting or ready): the scale subresource's replicas."""
        return len(self._ready_at_s)

    def ready(self, now_s: float) -> int:
        """Pods ready at `now_s` (created at least pod_startup_s earlier)."""
        return bisect.bisect_right(self._ready_at_s, now_s)

    def scale(self, target: int, now_s: float) -> bool:
        """Set the pod count to `target` at `now_s`; True when it changed."""
        target = max(0, int(target))
        n = len(self._ready_at_s)
        if target == n:
            return False
        if target > n:
            # New pods are the latest to become ready, so appending keeps the list sorted.
            self._ready_at_s.extend([now_s + self.pod_startup_s] * (target - n))
        else:
            # The tail holds the not-yet-ready pods, then the youngest ready ones.
            del self._ready_at_s[target:]
        self.actions += 1
        return True
