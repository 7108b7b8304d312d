"""Builders for planner tests (test_planning, test_safety, test_bitrate, test_planner_properties):
small policies, workloads, forecasts built directly as forecaster.series.Forecast frames (no
Prophet), observations and cluster states, all around one fixed `NOW`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from forecaster.series import Forecast
from policies.schema import Policy, Workload
from scaler.plans import Observation, PlannerMemory, PlanningState, SliReading, TrustedForecast, WorkloadState

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def workload(
    *,
    per_replica: float = 100,
    headroom: float = 0.1,
    min_replicas: int = 1,
    max_replicas: int = 50,
    max_scale_down_fraction: float = 0.1,
    scale_down_cooldown: str = "10m",
    scale_up_cooldown: str = "0s",
    stabilization: str = "5m",
    pod_startup: str = "60s",
    quantile: float = 0.9,
    quality: list[dict] | None = None,
    hpa: str | None = None,
    horizon: str = "24h",
    burst_lookback: str = "7d",
    burst_quantile: float | None = None,
    burst_smoothing: bool = True,
    burst_bridge: str = "0s",
) -> Workload:
    data = {
        "name": "edge",
        "target": {"kind": "Deployment", "namespace": "live", "name": "edge"},
        "demand": {"query": "sum(viewers)", "per_replica": per_replica},
        "pod_startup": pod_startup,
        "scaling": {
            "min_replicas": min_replicas, "max_replicas": max_replicas, "quantile": quantile,
            "headroom": headroom, "max_scale_down_fraction": max_scale_down_fraction,
            "scale_down_cooldown": scale_down_cooldown, "scale_up_cooldown": scale_up_cooldown,
            "stabilization": stabilization, "burst_lookback": burst_lookback, "burst_quantile": burst_quantile,
            "burst_smoothing": burst_smoothing, "burst_bridge": burst_bridge,
        },
        "forecast": {"horizon": horizon},
        "quality": quality or [],
    }
    if hpa:
        data["hpa"] = {"name": hpa}
    return Workload.model_validate(data)


def sli(name: str = "rebuffering", threshold: float = 0.02, **kw) -> dict:
    return {"name": name, "query": f"{name}_ratio", "threshold": threshold, **kw}


def policy(wl: Workload, *, events: list[dict] | None = None, bitrate: dict | None = None,
           tick: str = "1m", max_staleness: str = "5m") -> Policy:
    data = {
        "apiVersion": "ebbtide/v1",
        "schedule": {"tick": tick},
        "prometheus": {"max_staleness": max_staleness},
        "events": events or [],
        "workloads": [wl.model_dump(mode="json")],
    }
    if bitrate is not None:
        data["bitrate"] = bitrate
    return Policy.model_validate(data)


def forecast(upper, *, start: datetime = NOW, step: timedelta = MIN, yhat=None, quantile: float = 0.9) -> Forecast:
    """A Forecast whose yhat_upper is `upper` (one value per step from `start`); yhat defaults
    to the same values, yhat_lower to 0."""
    upper = np.asarray(upper, dtype=float)
    yhat = upper.copy() if yhat is None else np.asarray(yhat, dtype=float)
    idx = pd.date_range(pd.Timestamp(start), periods=len(upper), freq=pd.Timedelta(step))
    frame = pd.DataFrame({"yhat": yhat, "yhat_lower": np.zeros_like(upper), "yhat_upper": upper}, index=idx)
    return Forecast(frame, model="test", upper_quantile=quantile)


def flat(level: float, *, hours: float = 24, start: datetime = NOW, step: timedelta = MIN) -> Forecast:
    return forecast([level] * int(timedelta(hours=hours) / step), start=start, step=step)


def trusted(fc: Forecast | None) -> TrustedForecast:
    return TrustedForecast(fc, True)


def growth_only(fc: Forecast | None) -> TrustedForecast:
    """A forecast trusted on its growth while its level failed the rolling check."""
    return TrustedForecast(fc, True, ("WAPE 0.52 above bound 0.35; growth better than reactive",), level_trusted=False)


def untrusted(fc: Forecast | None = None, reason: str = "rolling WAPE 0.52 above trust bound 0.35") -> TrustedForecast:
    return TrustedForecast(fc, False, (reason,))


def obs(demand: float | None, *, at: datetime | None = NOW, slis: dict[str, float] | None = None,
        sli_at: datetime = NOW, **kw) -> Observation:
    readings = tuple(SliReading(n, v, sli_at) for n, v in (slis or {}).items())
    return Observation(demand, at if demand is not None else at, readings, **kw)


def state(replicas: int, *, memory: PlannerMemory | None = None, hpa_min: int | None = None,
          hpa_max: int | None = None, caps: dict[str, str] | None = None) -> PlanningState:
    cluster = WorkloadState(replicas, replicas, hpa_min, hpa_max, tuple((caps or {}).items()))
    return PlanningState(cluster, memory or PlannerMemory())


def step(plan, name: str):
    """The plan's step called `name` (the first one)."""
    for s in plan.steps:
        if s.name == name:
            return s
    raise AssertionError(f"no step {name!r} in {[s.name for s in plan.steps]}")
