"""Metrics, rolling-origin backtests and the trust gate (forecaster/backtest.py).

Cases:
- wape, under_forecast, over_forecast, smape, coverage on a small hand-computed example;
- NaN actuals are ignored; a NaN forecast where an actual exists raises; lengths must match;
- edge cases: zero total demand (0.0 when perfect, inf otherwise), no actuals at all (NaN),
  smape's 0/0 terms count 0; Metrics.to_dict makes non-finite values None;
- properties: wape == under + over when upper == yhat; smape in [0, 2]; coverage in [0, 1];
- evaluate() aligns actuals to the forecast's index and ignores missing actuals;
- rolling_origin with a last-value model on a ramp: per-origin and pooled WAPE equal the
  closed-form values; origins with too little training data are skipped with a reason; an
  origin between grid points is rounded up to the grid; last_origins tiles the series' end;
- forecast_at_cutoff trains before the (grid-rounded) cutoff, scores where actuals exist and
  gives no metrics past the data; a horizon shorter than a step is refused;
- judge_trust: too little history, WAPE over the bound, under-forecast over the bound, no
  scored origin (all untrusted with reasons naming the figures); a trusted verdict says why.
- growth (what the planner sizes on): anchored_growth_factors hand-computed (rise, fall -> 1,
  non-finite -> 1) and equal to scaler.safety.anchored_growth; pinball_loss hand-computed;
  growth_metrics on a hand-computed two-segment example (pairs never span segments, NaN pairs
  dropped); property: the growth never leaves more demand unserved than the observation alone;
- judge_trust with growth: level ok + growth no worse -> trusted; level ok + growth worse ->
  not; level off + growth strictly better -> trusted with level_trusted False; level off +
  growth only equal -> not (both reasons); no scored pair -> not;
- judge_issued: a forecast 2x too high with the right daily shape is trusted on its growth
  (level not), a flat one 2x too high is not; without per_unit only the level is judged.
- judge_and_fit: a first fit (no init) is warm-started from the trust bootstrap's model (fitted
  on the history minus the window) and reports warm False; with init that init is used and warm
  is True; an issued forecast overlapping the window means no bootstrap fit; a model without
  `init` is fitted plainly; model_params: a dict, else None (none, not a dict, or unreadable).
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecaster.backtest import (
    BacktestResult,
    Metrics,
    OriginResult,
    GrowthMetrics,
    TrustPolicy,
    align_origin,
    anchored_growth_factors,
    growth_metrics,
    judge_and_fit,
    model_params,
    judge_issued,
    judged_until,
    pinball_loss,
    forecast_at_cutoff,
    coverage,
    evaluate,
    judge_trust,
    last_origins,
    over_forecast,
    rolling_origin,
    smape,
    under_forecast,
    wape,
)
from forecaster.series import Forecast, Series

H = timedelta(hours=1)
T0 = pd.Timestamp("2026-03-02T00:00:00Z")
nan = float("nan")


def series(values, step=H) -> Series:
    idx = pd.date_range(T0, periods=len(values), freq=pd.Timedelta(step))
    return Series(pd.Series(np.asarray(values, dtype=float), index=idx), step, "test")


A = [10.0, 20.0, 0.0, 30.0]
F = [12.0, 15.0, 0.0, 30.0]
U = [15.0, 18.0, 1.0, 40.0]


def test_metrics_hand_computed():
    assert wape(A, F) == pytest.approx(7 / 60)
    assert under_forecast(A, U) == pytest.approx(2 / 60)
    assert over_forecast(A, U) == pytest.approx(16 / 60)
    assert coverage(A, U) == pytest.approx(0.75)
    assert smape(A, F) == pytest.approx((4 / 22 + 10 / 35 + 0 + 0) / 4)
    m = Metrics.of(A, F, U)
    assert (m.n_points, m.actual_total) == (4, 60.0)
    assert m.wape == pytest.approx(7 / 60) and m.coverage == pytest.approx(0.75)


def test_nan_actuals_ignored_nan_forecast_refused():
    a = [10.0, nan, 20.0]
    f = [12.0, 1e9, 15.0]
    assert wape(a, f) == pytest.approx(7 / 30)
    assert Metrics.of(a, f, f).n_points == 2
    with pytest.raises(ValueError, match="NaN"):
        wape([1.0, 2.0], [1.0, nan])
    with pytest.raises(ValueError, match="3 points"):
        wape([1.0, 2.0, 3.0], [1.0, 2.0])


def test_edge_cases_zero_demand_and_no_actuals():
    assert wape([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert wape([0.0, 0.0], [0.0, 1.0]) == math.inf
    assert under_forecast([0.0], [5.0]) == 0.0
    assert over_forecast([0.0], [5.0]) == math.inf
    assert smape([0.0, 0.0], [0.0, 3.0]) == pytest.approx(1.0)  # 0/0 -> 0, then 2*3/3 = 2
    for fn in (wape, under_forecast, over_forecast, smape, coverage):
        assert math.isnan(fn([nan, nan], [1.0, 2.0]))
    d = Metrics.of([0.0, nan], [1.0, 1.0], [1.0, 1.0]).to_dict()
    assert d["wape"] is None and d["over_forecast"] is None and d["n_points"] == 1
    assert d["coverage"] == 1.0


@given(
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)), min_size=1, max_size=50).filter(
        lambda xs: sum(a for a, _ in xs) > 0
    )
)
def test_metric_properties(pairs):
    a = np.array([p[0] for p in pairs])
    f = np.array([p[1] for p in pairs])
    assert wape(a, f) == pytest.approx(under_forecast(a, f) + over_forecast(a, f), rel=1e-9, abs=1e-12)
    assert 0.0 <= smape(a, f) <= 2.0
    assert 0.0 <= coverage(a, f) <= 1.0
    assert under_forecast(a, np.maximum(f, a)) == 0.0
    assert coverage(a, np.maximum(f, a)) == 1.0


def test_evaluate_aligns_on_forecast_index():
    actual = series([1.0, 2.0, 3.0, 4.0, nan, 6.0])
    idx = actual.index[3:].append(pd.DatetimeIndex([actual.end + pd.Timedelta(H)]))  # 4, nan, 6, (none)
    frame = pd.DataFrame({"yhat": [5.0, 0.0, 6.0, 9.0], "yhat_lower": 0.0, "yhat_upper": [5.0, 0.0, 5.0, 9.0]},
                         index=idx)
    m = evaluate(actual, Forecast(frame, "test"))
    assert m.n_points == 2
    assert m.wape == pytest.approx(1 / 10)
    assert m.under_forecast == pytest.approx(1 / 10)
    assert m.coverage == pytest.approx(0.5)


class LastValue:
    """Forecasts the last training value; upper = last + 1. Counts its fits."""

    name = "last_value"

    def fit(self, history: Series) -> "LastValue":
        self.last = float(history.values.dropna().iloc[-1])
        self.end = history.end
        self.train_len = len(history)
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        n = len(index)
        frame = pd.DataFrame({"yhat": [self.last] * n, "yhat_lower": [self.last] * n,
                              "yhat_upper": [self.last + 1] * n}, index=index)
        return Forecast(frame, self.name)


def test_rolling_origin_on_a_ramp_matches_closed_form():
    s = series(np.arange(100, dtype=float))  # y_t = t
    h = 4
    origins = [T0 + pd.Timedelta(hours=k) for k in (50, 70, 90)]
    res = rolling_origin(s, LastValue, origins, h * H, min_train=10 * H)
    assert res.model == "last_value"
    assert [o.train_points for o in res.origins] == [50, 70, 90]
    for o, k in zip(res.origins, (50, 70, 90)):
        # forecast k-1 for actuals k..k+h-1: errors 1..h, demand h*k + h(h-1)/2
        assert o.metrics.wape == pytest.approx((h * (h + 1) / 2) / (h * k + h * (h - 1) / 2))
        assert o.forecast.index[0] == T0 + pd.Timedelta(hours=k)
    total_err = 3 * h * (h + 1) / 2
    total_demand = sum(h * k + h * (h - 1) / 2 for k in (50, 70, 90))
    assert res.pooled.wape == pytest.approx(total_err / total_demand)
    assert res.pooled.n_points == 3 * h
    # upper = last + 1 covers only the first point of each horizon
    assert res.pooled.coverage == pytest.approx(1 / h)
    assert res.fit_s_median >= 0


def test_rolling_origin_skips_and_rounds_to_grid():
    s = series(np.arange(48, dtype=float))
    origins = [T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(hours=30, minutes=20),
               T0 + pd.Timedelta(hours=60)]
    res = rolling_origin(s, LastValue, origins, 3 * H, min_train=12 * H)
    assert len(res.origins) == 1
    assert res.origins[0].origin == T0 + pd.Timedelta(hours=31)
    assert res.origins[0].train_points == 31
    assert any("5h of training data, need 12h" in r for r in res.skipped)
    assert any("no actuals" in r for r in res.skipped)


def test_last_origins_tile_the_end():
    s = series(np.zeros(48))
    got = last_origins(s, 6 * H, 3)
    assert got == [T0 + pd.Timedelta(hours=h) for h in (30, 36, 42)]


def result_with(wape_value: float, under_value: float, n_origins: int = 3) -> BacktestResult:
    m = Metrics(n_points=10, actual_total=100.0, wape=wape_value, smape=0.1,
                under_forecast=under_value, over_forecast=0.1, coverage=0.9)
    fc = LastValue().fit(series([1.0])).predict(pd.DatetimeIndex([T0 + H]))
    return BacktestResult("m", H, tuple(OriginResult(T0, 10, 0.0, m, fc) for _ in range(n_origins)), m)


def test_judge_trust_reasons():
    policy = TrustPolicy(max_wape=0.4, min_history=timedelta(days=7), max_under=0.05)
    v = judge_trust(result_with(0.62, 0.01), timedelta(days=10), policy)
    assert not v.trusted and v.reasons == ("WAPE 0.62 above bound 0.40 over 3 origins",)

    v = judge_trust(result_with(0.2, 0.01), timedelta(days=2), policy)
    assert not v.trusted and v.reasons == ("only 2d of history, need 7d",)

    v = judge_trust(result_with(0.2, 0.08), timedelta(days=8), policy)
    assert not v.trusted and "under-forecast 0.08 of demand above bound 0.05" in v.reasons[0]

    v = judge_trust(result_with(math.inf, 0.0), timedelta(days=8), policy)
    assert not v.trusted and "WAPE inf" in v.reasons[0]

    empty = BacktestResult("m", H, (), Metrics.of([], [], []), ("origin x: no actuals in the horizon",))
    v = judge_trust(empty, timedelta(days=8), policy)
    assert not v.trusted and "0 backtest origins" in v.reasons[0] and "no actuals" in v.reasons[0]

    v = judge_trust(result_with(0.2, 0.01), timedelta(days=8), policy)
    assert v.trusted and v.reasons == ("WAPE 0.20 within bound 0.40 over 3 origins, "
                                       "under-forecast 0.01 within 0.05",)


def test_forecast_at_cutoff_and_align_origin():
    s = series(np.arange(30, dtype=float))
    assert align_origin(s, T0 + pd.Timedelta(minutes=90)) == T0 + pd.Timedelta(hours=2)
    assert align_origin(s, T0 + pd.Timedelta(hours=2)) == T0 + pd.Timedelta(hours=2)
    run = forecast_at_cutoff(s, LastValue(), T0 + pd.Timedelta(minutes=601), 3 * H)
    assert run.model == "last_value" and run.train_points == 11
    np.testing.assert_array_equal(run.forecast.yhat.to_numpy(), [10.0, 10.0, 10.0])
    assert run.metrics.wape == pytest.approx((1 + 2 + 3) / (11 + 12 + 13))
    past_end = forecast_at_cutoff(s, LastValue(), s.end + pd.Timedelta(H), 3 * H)
    assert past_end.metrics is None and len(past_end.forecast.index) == 3
    with pytest.raises(ValueError, match="shorter than the series step"):
        forecast_at_cutoff(s, LastValue(), T0 + pd.Timedelta(hours=5), timedelta(minutes=30))


# --------------------------------------------------------------------------- growth trust
def test_anchored_growth_factors_match_the_planner():
    from scaler.safety import anchored_growth

    got = anchored_growth_factors([1000.0, 700.0, 500.0, 800.0], [900.0, 900.0, nan, math.inf], 100.0)
    assert got.tolist() == pytest.approx([1.1, 1.0, 1.0, 1.0])  # (1000+100)/(900+100); fall; unknown
    for ahead, obs, per in [(1000.0, 900.0, 100.0), (50.0, 0.0, 10.0), (3.0, 7.0, 1.0), (0.0, 0.0, 5.0)]:
        assert anchored_growth_factors([ahead], [obs], per)[0] == pytest.approx(anchored_growth(ahead, obs, per))


def test_pinball_loss_hand_computed():
    # q 0.9: 5 unused -> 0.1 x 5; 10 unserved -> 0.9 x 10; over demand 30
    assert pinball_loss([10.0, 20.0], [15.0, 10.0], 0.9) == pytest.approx(9.5 / 30)
    assert pinball_loss([10.0, nan], [10.0, 99.0], 0.9) == 0.0
    assert math.isnan(pinball_loss([], [], 0.9))


def test_growth_metrics_hand_computed():
    # Sized as the planner sizes: (obs + per) x growth - per.
    # Segment 1: obs 100, U 200 -> 250, per 50: growth 300/250 = 1.2, sized 150 x 1.2 - 50 = 130,
    #            realised 120 (10 unused).
    #            obs 120, U 250 -> 150: growth 1, sized 120, realised 90 (30 unused).
    # Reactive: 100 for 120 (20 unserved), 120 for 90 (30 unused). Realised total 210.
    # Segment 2 has no pair with both actuals; segment 3 a single point (no pair).
    g = growth_metrics([(np.array([100.0, 120.0, 90.0]), np.array([200.0, 250.0, 150.0])),
                        (np.array([nan, 10.0]), np.array([1.0, 500.0])),
                        (np.array([5.0]), np.array([5.0]))], per_unit=50.0, quantile=0.9)
    assert g.n_points == 2
    assert g.loss_forecast == pytest.approx(0.1 * (10 + 30) / 210)
    assert g.loss_reactive == pytest.approx((0.9 * 20 + 0.1 * 30) / 210)
    assert g.under_forecast == 0.0 and g.under_reactive == pytest.approx(20 / 210)
    assert g.extra == pytest.approx(30 / 210)
    assert g.better and g.no_worse


def test_growth_is_scored_as_the_planner_sizes_a_night_at_zero():
    """A closed night (0 observed) that the forecast sees rising to 300: the planner sizes
    (0 + 50) x 350/50 - 50 = 300 (f504b27), and the trust check scores that, not 0 x 7 = 0. Scored
    as 0 it tied reactive sizing, so a forecast whose level the empty window could not judge
    (WAPE of zero demand) was never trusted on its growth either (the trust-gate audit)."""
    g = growth_metrics([(np.array([0.0, 300.0]), np.array([0.0, 300.0]))], per_unit=50.0, quantile=0.9)
    assert g.under_forecast == 0.0 and g.under_reactive == 1.0
    assert g.extra == 1.0 and g.better


@given(st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 1e4)), min_size=2, max_size=30),
       st.floats(0, 100), st.floats(0.5, 0.99))
def test_growth_never_serves_less_than_the_observation(pairs, per, q):
    a = np.array([p[0] for p in pairs])
    u = np.array([p[1] for p in pairs])
    g = growth_metrics([(a, u)], per, q)
    if g.n_points and a[1:].sum() > 0:
        assert g.under_forecast <= g.under_reactive + 1e-9
        assert g.extra >= 0.0


def growth_with(loss_forecast: float, loss_reactive: float) -> GrowthMetrics:
    return GrowthMetrics(n_points=10, quantile=0.9, loss_forecast=loss_forecast, loss_reactive=loss_reactive,
                         under_forecast=0.01, under_reactive=0.03, extra=0.02)


def test_judge_trust_with_growth():
    policy = TrustPolicy(max_wape=0.35, min_history=timedelta(days=7))
    v = judge_trust(result_with(0.2, 0.01), timedelta(days=8), policy, growth_with(0.05, 0.05))
    assert v.trusted and v.level_trusted and "WAPE 0.20 within bound 0.35" in v.reasons[0]

    v = judge_trust(result_with(0.2, 0.01), timedelta(days=8), policy, growth_with(0.06, 0.05))
    assert not v.trusted and v.reasons[0].startswith("growth scored worse than reactive sizing: pinball "
                                                     "loss at q0.9 0.06 with the forecast's growth vs 0.05")

    v = judge_trust(result_with(0.62, 0.01), timedelta(days=8), policy, growth_with(0.04, 0.05))
    assert v.trusted and v.level_trusted is False
    assert v.reasons[0].startswith("growth better than reactive sizing")
    assert "level not trusted: WAPE 0.62 above bound 0.35" in v.reasons[0]

    v = judge_trust(result_with(0.62, 0.01), timedelta(days=8), policy, growth_with(0.05, 0.05))
    assert not v.trusted and v.level_trusted is False
    assert v.reasons[0].startswith("growth no better than reactive sizing")
    assert v.reasons[1] == "WAPE 0.62 above bound 0.35 over 3 origins"

    v = judge_trust(result_with(0.62, 0.01), timedelta(days=2), policy, growth_with(0.04, 0.05))
    assert not v.trusted and v.reasons == ("only 2d of history, need 7d",)

    none = GrowthMetrics(0, 0.9, nan, nan, nan, nan, nan)
    v = judge_trust(result_with(0.2, 0.01), timedelta(days=8), policy, none)
    assert not v.trusted and "no consecutive forecast points" in v.reasons[0]


def _daily(n_hours: int, level: float) -> np.ndarray:
    h = np.arange(n_hours)
    return level * (1.0 + 0.5 * np.sin(2 * np.pi * h / 24.0))


def test_judge_issued_trusts_a_right_shape_at_a_wrong_level():
    hist = series(_daily(10 * 24, 1000.0))
    window = timedelta(days=1)
    idx = pd.date_range(hist.end - pd.Timedelta(hours=23), periods=30, freq="h")
    hours = ((idx - T0) / pd.Timedelta(hours=1)).to_numpy()
    shape = 1.0 + 0.5 * np.sin(2 * np.pi * hours / 24.0)

    def fc(y):
        return Forecast(pd.DataFrame({"yhat": y, "yhat_lower": 0.9 * y, "yhat_upper": 1.1 * y}, index=idx), "m")

    policy = TrustPolicy(max_wape=0.35, min_history=timedelta(days=7))
    span = timedelta(days=10)
    v = judge_issued(hist, [fc(2000.0 * shape)], window, span, policy, LastValue, per_unit=100.0)
    assert v.trusted and v.level_trusted is False  # level 2x: WAPE 1.0, but the rises were foreseen
    assert v.growth is not None and v.growth.n_points == 23 and v.growth.better

    v = judge_issued(hist, [fc(np.full(30, 2000.0))], window, span, policy, LastValue, per_unit=100.0)
    assert not v.trusted and "growth no better" in v.reasons[0]

    v = judge_issued(hist, [fc(2000.0 * shape)], window, span, policy, LastValue, per_unit=None)
    assert not v.trusted and v.growth is None and v.reasons == ("WAPE 1.00 above bound 0.35 over 1 origin",)


def _closed_shop(days: int, closed_from_hour: int | None) -> np.ndarray:
    """Hourly demand open 08:00-20:00 at 1000 with a daily shape, zero at night; from
    `closed_from_hour` on (None: never), zero for good."""
    y = _daily(days * 24, 1000.0)
    hours = np.arange(days * 24) % 24
    y[(hours < 8) | (hours >= 20)] = 0.0
    if closed_from_hour is not None:
        y[closed_from_hour:] = 0.0
    return y


def test_judged_until_ends_at_the_last_demand_when_the_window_saw_none():
    day, week = timedelta(days=1), timedelta(days=7)
    hist = series(_closed_shop(10, None))  # open until 20:00 each day; ends at 23:00 (3 closed hours)
    assert judged_until(hist, day, week) == (hist.end + H, "")  # demand in the last day: the history's end

    hist = series(_closed_shop(10, 8 * 24 + 20))  # closed from day 8 20:00 to the end (day 9 23:00)
    end, why = judged_until(hist, day, week)
    last = T0 + pd.Timedelta(days=8, hours=20)  # the 19:00 point's end
    assert end == last and why == (f"no demand in the last 1d: judged on the 1d up to the last demand, "
                                   f"{last.isoformat()}")
    assert judged_until(hist, timedelta(hours=29), week) == (hist.end + H, "")  # 29 h reach back to 19:00

    values = _closed_shop(10, 8 * 24 + 20)
    values[-5:] = nan  # no data is no demand either
    assert judged_until(series(values), day, week)[0] == last

    hist = series(_closed_shop(20, 10 * 24))  # nothing since day 10 00:00 (day 9 19:00 the last)
    end, why = judged_until(hist, day, week)
    assert end is None and why.startswith("no demand in the last 7d: nothing to judge the forecast on")


def test_judge_issued_over_a_closed_day_scores_the_last_open_one():
    """Scored on the closed day itself, a forecast of the usual day is infinitely wrong (WAPE and
    the growth's shares divide by zero demand): a right forecast lost trust on no evidence."""
    days = 10
    hist = series(_closed_shop(days, 8 * 24 + 20))  # open every day but the last
    window, span = timedelta(days=1), timedelta(days=days)
    policy = TrustPolicy(max_wape=0.35, min_history=timedelta(days=7))
    usual = _closed_shop(days + 2, None)  # what the shop does on a usual day: the right forecast until day 8

    def issued(first: pd.Timestamp, n: int) -> Forecast:
        i = int((first - T0) / H)
        y = usual[i:i + n]
        return Forecast(pd.DataFrame({"yhat": y, "yhat_lower": 0.9 * y, "yhat_upper": 1.1 * y},
                                     index=pd.date_range(first, periods=n, freq="h")), "m")

    fc = issued(T0 + pd.Timedelta(days=7, hours=12), 60)  # issued day 7 noon, through the closed day
    v = judge_issued(hist, [fc], window, span, policy, LastValue, per_unit=100.0)
    assert v.trusted and v.level_trusted, v.reasons
    assert v.reasons[-1].startswith("no demand in the last 1d: judged on the 1d up to the last demand")
    assert v.growth is not None and v.growth.n_points == 24  # into day 7 20:00 .. day 8 20:00, as issued

    shut = series(_closed_shop(20, 10 * 24))  # a week and more with no demand: nothing to judge on
    v = judge_issued(shut, [fc], window, timedelta(days=20), policy, LastValue, per_unit=100.0)
    assert not v.trusted and v.level_trusted is False and v.reasons[0].startswith("no demand in the last 7d")


class WarmLastValue(LastValue):
    """LastValue whose fit takes a warm start; `params` is the last value and the history end."""

    made: list["WarmLastValue"] = []

    def __init__(self):
        self.init_seen = None
        WarmLastValue.made.append(self)

    def fit(self, history: Series, init=None) -> "WarmLastValue":
        self.init_seen = init
        return super().fit(history)

    @property
    def params(self) -> dict:
        return {"last": self.last, "end": str(self.end)}


def test_judge_and_fit_warm_starts_the_first_fit_from_the_bootstrap():
    hist = series(_daily(10 * 24, 1000.0))
    window, span = timedelta(hours=6), timedelta(days=10)
    policy = TrustPolicy(max_wape=0.35, min_history=timedelta(days=7))
    WarmLastValue.made = []
    verdict, model, warm = judge_and_fit(hist, [], window, span, policy, WarmLastValue, None, None)
    boot, main = WarmLastValue.made
    assert boot.end == hist.end - pd.Timedelta(hours=6)  # trained without the last window
    assert main is model and main.init_seen == boot.params and not warm
    assert main.end == hist.end and verdict.reasons  # fitted on the whole history, judged

    WarmLastValue.made = []
    issued = [model.predict(pd.date_range(hist.end - pd.Timedelta(hours=5), periods=12, freq="h"))]
    _, model2, warm2 = judge_and_fit(hist, issued, window, span, policy, WarmLastValue, None, {"last": 1.0})
    assert WarmLastValue.made == [model2]  # the issued forecast overlaps the window: no bootstrap
    assert model2.init_seen == {"last": 1.0} and warm2

    _, plain, warm3 = judge_and_fit(hist, [], window, span, policy, LastValue, None, None)
    assert isinstance(plain, LastValue) and plain.end == hist.end and not warm3


def test_model_params_is_a_dict_or_none():
    class Unfitted:
        @property
        def params(self):
            raise RuntimeError("call fit first")

    assert model_params(WarmLastValue().fit(series([1.0, 2.0]))) == {"last": 2.0, "end": str(T0 + H)}
    assert model_params(LastValue()) is None
    assert model_params(Unfitted()) is None
    assert model_params(type("Odd", (), {"params": [1, 2]})()) is None
