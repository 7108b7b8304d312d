"""The replay simulator: Ebbtide's forecaster and planner run through a recorded trace in
simulated time, on a simulated cluster (pods ready after their start-up time), side by side with
a faithful Kubernetes HPA and the war-state baseline. See docs/replay.md.

Modules: `cluster` (pods and readiness), `hpa` (the HPA v2 algorithm), `warstate` (the
held-peak baseline), `forecasting` (refit schedule, cached predictions, rolling trust),
`runner` (the simulation loop and the accounting).
"""

from scaler.replay.cluster import SimulatedCluster
from scaler.replay.hpa import HpaReplay, HpaSettings, calculate_replicas
from scaler.replay.runner import (
    STRATEGIES,
    ReplayOptions,
    ReplayResult,
    StrategySummary,
    WindowSummary,
    replay,
)
from scaler.replay.warstate import WarWindow, war_floor, war_windows

__all__ = [
    "STRATEGIES", "HpaReplay", "HpaSettings", "ReplayOptions", "ReplayResult", "SimulatedCluster",
    "StrategySummary", "WarWindow", "WindowSummary", "calculate_replicas", "replay", "war_floor",
    "war_windows",
]
