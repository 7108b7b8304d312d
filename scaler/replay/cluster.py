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
    """Pods of one workload in simulated time (no scheduling limits, no failures).

    Pods are kept as cohorts (pods created by one scale call share their ready time), so memory
    and time per call grow with the number of scale-ups still alive, never with the pod count:
    a policy with `per_replica: 0.001` or `max_replicas: 1000000000` replays millions of pods.
    """

    def __init__(self, replicas: int, pod_startup_s: float, now_s: float, *, ready: bool = True):
        """Start with `replicas` pods, ready at once when `ready` (a warm start), else starting now."""
        if replicas < 0 or pod_startup_s < 0:
            raise ValueError("replicas and pod_startup_s must be >= 0")
        self.pod_startup_s = float(pod_startup_s)
        first_ready_s = now_s if ready else now_s + self.pod_startup_s
        # Cohort i becomes ready at _ready_at_s[i] (ascending); _pods_upto[i] counts the pods of
        # cohorts 0..i (strictly ascending, so no cohort is empty).
        self._ready_at_s: list[float] = [first_ready_s] if replicas > 0 else []
        self._pods_upto: list[int] = [int(replicas)] if replicas > 0 else []
        self.actions = 0  # scale calls that changed the pod count

    @property
    def replicas(self) -> int:
        """Pods that exist (starting or ready): the scale subresource's replicas."""
        return self._pods_upto[-1] if self._pods_upto else 0

    def ready(self, now_s: float) -> int:
        """Pods ready at `now_s` (created at least pod_startup_s earlier)."""
        i = bisect.bisect_right(self._ready_at_s, now_s)
        return self._pods_upto[i - 1] if i else 0

    def scale(self, target: int, now_s: float) -> bool:
        """Set the pod count to `target` at `now_s`; True when it changed."""
        target = max(0, int(target))
        n = self.replicas
        if target == n:
            return False
        if target > n:
            # New pods are the latest to become ready, so appending keeps the cohorts sorted.
            ready_at = now_s + self.pod_startup_s
            if self._ready_at_s and self._ready_at_s[-1] == ready_at:
                self._pods_upto[-1] = target
            else:
                self._ready_at_s.append(ready_at)
                self._pods_upto.append(target)
        else:
            # The last cohorts hold the not-yet-ready pods, then the youngest ready ones.
            while self._pods_upto and len(self._pods_upto) > 1 and self._pods_upto[-2] >= target:
                self._ready_at_s.pop()
                self._pods_upto.pop()
            if target == 0:
                self._ready_at_s.clear()
                self._pods_upto.clear()
            else:
                self._pods_upto[-1] = target
        self.actions += 1
        return True
