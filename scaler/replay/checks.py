"""Does the trace fit the workload it is replayed on? (pure)

A replay compares strategies inside the workload's limits. When the trace is in another unit
than `demand.per_replica`, or simply larger or smaller than the workload was sized for, the
limits decide the figures and the comparison says nothing about the strategies:

- demand above `max_replicas x per_replica`: no strategy can serve it, so every strategy's
  under-provisioning there is the cap's (and the war state's floor is clamped to the cap);
- demand that `min_replicas` serves at the HPA's target most of the time: every strategy sits
  on the same floor, so the savings measured are bounded by it;
- no event of the calendar around the replay: the war state is the plain HPA, and there is no
  post-event window to judge.

`fit_notes` names each case with its figures and the field to change. The replay still runs (a
user may want exactly that comparison); the notes go in its JSON and under its tables.
"""

from __future__ import annotations

import math

import numpy as np

FLOOR_SHARE = 0.5
"""min_replicas is named when it serves the demand on at least this share of the replay's time."""


def fit_notes(demand: np.ndarray, *, per_replica: float, min_replicas: int, max_replicas: int,
              target_utilisation: float, events_in_replay: int) -> list[str]:
    """Notes on a replay whose figures the workload's limits decide (see the module text).

    `demand` holds the demand of each equal simulation step (NaN where the trace has none);
    `target_utilisation` is the baseline HPA's share of per_replica per pod; `events_in_replay`
    counts the calendar occurrences the replay reaches: the event, the weeks after it, or its
    war-state hold inside the replay.
    """
    notes = []
    d = np.asarray(demand, dtype=float)
    d = d[np.isfinite(d)]
    if d.size:
        cap = max_replicas * per_replica
        over = float(np.mean(d > cap * (1 + 1e-9)))
        if over > 0:
            peak = float(d.max())
            notes.append(
                f"demand is above what max_replicas serves ({max_replicas} pods x per_replica {per_replica:g} = "
                f"{cap:g}) on {_share(over)} of the replay (its peak {peak:g} needs "
                f"{math.ceil(peak / per_replica - 1e-9)} pods): every strategy is capped there, so the "
                f"under-provisioning measured is the cap's; raise `scaling.max_replicas`, or give "
                f"`demand.per_replica` in the trace's unit")
        floor = max(1, min_replicas)  # the HPA's minReplicas is at least 1
        floored = float(np.mean(d <= floor * per_replica * target_utilisation))
        if floored >= FLOOR_SHARE:
            median = float(np.median(d))
            pods = math.ceil(median / (per_replica * target_utilisation) - 1e-9)
            notes.append(
                f"a floor of {floor} pods (min_replicas {min_replicas}) serves the demand at the HPA's target "
                f"({target_utilisation:g} x per_replica {per_replica:g} a pod) on {_share(floored)} of the replay "
                f"(the median demand, {median:g}, needs {pods} pod{'' if pods == 1 else 's'} at that target): "
                f"every strategy sits on that floor, so the savings measured are bounded by it; lower "
                f"`scaling.min_replicas`, or give "
                f"`demand.per_replica` in the trace's unit")
    if events_in_replay == 0:
        notes.append(
            "no event of the calendar (the policy's and --events) is inside the replay or holds war state into "
            "it: the war state is the plain HPA, and there is no event or post-event window to judge; declare "
            "the trace's events with --events")
    return notes


def _share(x: float) -> str:
    """A share as a percentage that never rounds a nonzero share to 0% (or a partial one to 100%)."""
    pct = 100 * x
    if 0 < pct < 0.1:
        return "<0.1%"
    if 99.9 < pct < 100:
        return ">99.9%"
    return f"{pct:.1f}%"
