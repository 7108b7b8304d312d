"""The replay simulator: Ebbtide's forecaster and planner run through a recorded trace in
simulated time, on a simulated cluster (pods ready after their start-up time), side by side with
a faithful Kubernetes HPA and the war-state baseline. See docs/replay.md.

Modules: `cluster` (pods and readiness), `hpa` (the HPA v2 algorithm), `warstate` (the
held-peak baseline), `forecasting` (refit schedule, cached predictions, rolling trust),
`runner` (the simulation loop and the accounting; `replay_hpa`, the HPA alone), `frontier` (the
HPA's trade-off curve over target utilisations, read at Ebbtide's spend and shortfall).
"""

from scaler.replay.cluster import SimulatedCluster
from scaler.replay.frontier import (
    CurveReading,
    FrontierPoint,
    hpa_frontier,
    replica_hours_for_under_share,
    under_share_at,
)
from scaler.replay.hpa import HpaReplay, HpaSettings, calculate_replicas
from scaler.replay.runner import (
    STRATEGIES,
    HpaOnlyResult,
    ReplayOptions,
    ReplayResult,
    StrategySummary,
    WindowSummary,
    replay,
    replay_hpa,
)
from scaler.replay.warstate import WarWindow, war_floor, war_windows

__all__ = [
    "STRATEGIES", "CurveReading", "FrontierPoint", "HpaOnlyResult", "HpaReplay", "HpaSettings", "ReplayOptions",
    "ReplayResult", "SimulatedCluster", "StrategySummary", "WarWindow", "WindowSummary", "calculate_replicas",
    "hpa_frontier", "replay", "replay_hpa", "replica_hours_for_under_share", "under_share_at", "war_floor", "war_windows",
]
