"""`demand.lag`: how old the demand a query returns is. The controller places each sample that
long before its sample time (as the replay places the value it reads `metric_lag` late), and the
replay's metric lag defaults to it. Values worked by hand.

Cases:
- schema: default 150 s; a negative or fractional-second lag is refused;
- staleness is the sample's own age: an observation placed 150 s before a fresh sample is
  usable under max_staleness 2m; a sample 130 s old (observation 280 s back) is stale;
- the replay's HPA sees a demand step `demand.lag` late: 30 s with `lag: 30s` (pods asked at
  T + 30 s, ready at T + 90 s), 150 s by default (tests/test_hpa_replay.py), and an explicit
  `HpaSettings.metric_lag_s` wins;
- the controller slices the forecast from the bucket holding the observation, not `now`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from planner_helpers import NOW, obs, policy, state, step, untrusted, workload
from policies.loading import load_policy_text
from policies.schema import Workload
from scaler.planning import plan
from scaler.replay import HpaSettings, ReplayOptions, replay
from test_hpa_replay import POLICY, _trace, hold_planner


def test_default_lag_and_a_negative_or_fractional_one_refused():
    w = workload()
    assert w.demand.lag == timedelta(seconds=150)
    data = w.model_dump(mode="json")
    data["demand"]["lag"] = "-1s"
    with pytest.raises(ValidationError, match="lag"):
        Workload.model_validate(data)
    data["demand"]["lag"] = "1500ms"  # the history is read lag after each bucket: Prometheus wants whole seconds
    with pytest.raises(ValidationError, match="whole number of seconds"):
        Workload.model_validate(data)


def test_staleness_is_the_age_of_the_sample_not_of_the_demand_it_stands_for():
    w = workload()
    pol = policy(w, max_staleness="2m")
    fresh = plan(untrusted(), obs(1000, at=NOW - timedelta(seconds=150)), w, pol, state(8), NOW)
    assert fresh.data_ok and step(fresh, "reactive").after == 1000
    old = plan(untrusted(), obs(1000, at=NOW - timedelta(seconds=280)), w, pol, state(8), NOW)
    assert not old.data_ok and old.target_replicas == 8  # held: no scale-in on stale data
    assert "demand data stale" in step(old, "quality_guard").reason
    assert f"sample 2m10s old (from {(NOW - timedelta(seconds=130)).isoformat()}); max_staleness 2m" in \
        step(old, "quality_guard").reason


def _hpa_row(lag_line: str, options: ReplayOptions = ReplayOptions()):
    text = POLICY.replace("demand: {query: 'demand', per_replica: 100}",
                          "demand: {query: 'demand', per_replica: 100" + lag_line + "}")
    trace = _trace([800.0] * 12 + [1600.0] * 12)
    return replay(trace, load_policy_text(text), planner=hold_planner, options=options).timeline.iloc[12]


def test_the_replay_reads_demand_as_late_as_the_workload_says():
    row = _hpa_row(", lag: 30s")
    # the step at T is seen at T + 30 s: 20 pods asked then, ready at T + 90 s (pod start-up 60 s)
    assert row["replicas_hpa"] == pytest.approx((30 * 10 + 270 * 20) / 300)
    assert row["ready_hpa"] == pytest.approx((90 * 10 + 210 * 20) / 300)
    default = _hpa_row("")
    assert default["replicas_hpa"] == pytest.approx((150 * 10 + 150 * 20) / 300)
    forced = _hpa_row(", lag: 30s", ReplayOptions(hpa=HpaSettings(metric_lag_s=150.0)))
    assert forced["replicas_hpa"] == default["replicas_hpa"]


def test_the_forecast_is_sliced_from_the_bucket_holding_the_observation():
    import numpy as np
    import pandas as pd

    from forecaster.series import Forecast
    from scaler.fitting import CompactForecast

    idx = pd.date_range(pd.Timestamp(NOW) - pd.Timedelta(minutes=30), periods=30, freq="5min")
    y = np.linspace(100.0, 400.0, 30)
    c = CompactForecast.of(Forecast(pd.DataFrame({"yhat": y, "yhat_lower": y, "yhat_upper": y}, index=idx),
                                    "m", 0.9, 0.1))
    now = NOW + timedelta(seconds=60)  # 12:01, in the bucket [12:00, 12:05)
    assert c.slice_at(now, timedelta(hours=1)).index[0] == pd.Timestamp(NOW)
    # observed 150 s earlier, 11:58:30: the bucket [11:55, 12:00) is kept for the planner to read
    got = c.slice_at(now, timedelta(hours=1), now - timedelta(seconds=150))
    assert got.index[0] == pd.Timestamp(NOW) - pd.Timedelta(minutes=5)
    assert got.index[-1] < pd.Timestamp(now + timedelta(hours=1))
    # never later than now
    assert c.slice_at(now, timedelta(hours=1), now + timedelta(hours=2)).index[0] == pd.Timestamp(NOW)
