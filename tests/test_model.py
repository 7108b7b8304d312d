"""EbbtideForecaster and its helpers (forecaster.model), on small synthetic series made inline.

Cases (fast):
- choose_fit_step: finest grid within the point budget, multiples of the step only, hour cap
- aggregate_to_grid: 1-minute counts -> hourly means by hand, NaN ignored, empty bucket NaN
- split-conformal quantile by hand
- lead-time quantiles by hand: per-bucket pooled quantile, one observation per day in the
  finite-sample correction, empty buckets repeat the previous one, monotone in lead; property:
  upper quantiles never decrease and lower never increase with lead, on either side of 0
- ModelSettings refuses bad quantiles and a prior tau spread below 1; predict before fit is an error
Cases (slow, seeded Prophet fits):
- determinism: two fits on equal input give equal forecasts, predict repeatable
- sale-and-decay (settle level off: the series has none): cut one day after the sale, the ebb is
  forecast within 15% WAPE of the truth, a tau near the true one is chosen and noted, the
  forecast is far better than plain Prophet
- settle level: after a sale that leaves a raised peace level (x1.3), the default model forecasts
  the new level (upper bound covers >= 85% of held-out points) where the model without it
  under-forecasts
- calibration: yhat_upper covers >= 85% of held-out noisy points (target quantile 0.9)
- lead-time interval: on a level that drifts (random walk), the band is wider > 3 days ahead than
  within the first day and never narrower further ahead within a daily level band; on a stationary series the held-out week's coverage is at least the
  upper quantile minus three binomial standard errors
- cut at the peak: interval spans the prior's neighbours (8h, 16h, 32h), not the whole grid,
  covers the held-out points and stays bounded
- outliers: a 3-hour burst without a tail outside events is treated as missing for fitting
  (noted) and does not raise the forecast
- seasonal residual profile: a sharp weekly shape Fourier order 3 cannot draw is picked up
  (the holdout chooses a positive weight, noted) and the forecast beats the model without it
- fit grid for 1-minute input: fitted hourly, forecast returned on the 1-minute grid, following
  the daily cycle; a non-UTC predict index yields the same instants in UTC
- no event: behaves like a seasonal model (at least as good as the seasonal naive of a week)
- warm start: params round-trip into fit(init=...) with the same forecast (within tolerance)
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.model import (
    EbbtideForecaster,
    ModelSettings,
    PlainProphetForecaster,
    aggregate_to_grid,
    choose_fit_step,
)
from forecaster import events as evf
from forecaster.intervals import bucket_quantiles, conformal_quantile, lead_buckets, pooled_quantile
from forecaster.series import Series
from forecaster.transforms import Log1pScaled
from policies.events import Event

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
START = pd.Timestamp("2026-10-01T00:00:00Z")
SALE_PEAK = START + pd.Timedelta(days=21, hours=12)
TAU_TRUE_H = 16.0


def truth(index: pd.DatetimeIndex, with_sale: bool = True) -> np.ndarray:
    """Noise-free demand: 100 with a daily cycle (x0.5 .. x1.5), a sale 8x above it from ramp
    (6 h) to end (4 h after the peak), then an excess decaying with tau 16 h."""
    hours = np.asarray((index - START) / pd.Timedelta(hours=1), dtype=float)
    daily = 1.0 + 0.5 * np.sin(2 * np.pi * ((hours % 24) - 6) / 24)
    base = 100.0 * daily
    if not with_sale:
        return base
    t = (index - SALE_PEAK) / pd.Timedelta(hours=1)
    t = np.asarray(t, dtype=float)
    excess = np.where((t >= -6) & (t < 0), (t + 6) / 6, 0.0)
    excess = np.where((t >= 0) & (t < 4), 1.0, excess)
    excess = np.where(t >= 4, np.exp(-(t - 4) / TAU_TRUE_H), excess)
    return base * (1.0 + 7.0 * excess)


def noisy(index, seed=1, with_sale=True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mu = truth(index, with_sale)
    return mu * np.exp(rng.normal(0.0, 0.08, size=mu.size))


SALE = Event(name="flash-sale", kind="sale", start=(SALE_PEAK - pd.Timedelta(hours=6)).isoformat(),
             peak=SALE_PEAK.isoformat(), end=(SALE_PEAK + pd.Timedelta(hours=4)).isoformat())


def hourly_series(days: float, seed=1, with_sale=True) -> tuple[Series, pd.DatetimeIndex]:
    full = pd.date_range(START, periods=int(days * 24) + 24 * 7, freq="1h")
    y = noisy(full, seed, with_sale)
    all_s = Series(pd.Series(y, index=full), H, "synthetic")
    return all_s, full


def day_after_end(seed: int, days: float = 35) -> tuple[Series, pd.DatetimeIndex, np.ndarray]:
    """`hourly_series(days, seed)` cut a day after the sale's end (4 h after its peak): the
    history, the next 7 days' index and the actual values there."""
    all_s, _ = hourly_series(days, seed=seed)
    hist = all_s.before(SALE_PEAK + pd.Timedelta(hours=4 + 24))
    fut = hist.future_index(timedelta(days=7))
    return hist, fut, all_s.values.reindex(fut).to_numpy()


def wape(y, f):
    return float(np.abs(y - f).sum() / np.abs(y).sum())


# --------------------------------------------------------------------------- fast

def test_choose_fit_step():
    assert choose_fit_step(MIN, timedelta(days=28), 2000) == timedelta(minutes=30)  # 1344 points
    assert choose_fit_step(MIN, timedelta(days=28), 700) == H  # 672 points
    assert choose_fit_step(MIN, timedelta(days=1), 2000) == MIN  # 1440 points
    assert choose_fit_step(timedelta(minutes=5), timedelta(days=28), 3000) == timedelta(minutes=15)
    assert choose_fit_step(timedelta(minutes=7), timedelta(days=28), 100) == timedelta(minutes=7)  # no multiple
    assert choose_fit_step(H, timedelta(days=400), 10) == H
    assert choose_fit_step(MIN, timedelta(days=400), 10) == H  # never coarser than an hour


def test_aggregate_to_grid_hand_values():
    idx = pd.date_range("2026-01-01T00:58:00Z", periods=6, freq="1min")  # 00:58 .. 01:03
    v = pd.Series([1.0, 3.0, 10.0, np.nan, 20.0, 30.0], index=idx)
    out = aggregate_to_grid(v, H)
    assert list(out.index) == [pd.Timestamp("2026-01-01T00:00:00Z"), pd.Timestamp("2026-01-01T01:00:00Z")]
    np.testing.assert_allclose(out.to_numpy(), [2.0, 20.0])
    gap = pd.Series([1.0, 5.0], index=pd.DatetimeIndex([pd.Timestamp("2026-01-01T00:10:00Z"),
                                                         pd.Timestamp("2026-01-01T02:10:00Z")]))
    out2 = aggregate_to_grid(gap, H)
    assert np.isnan(out2.iloc[1]) and out2.iloc[2] == 5.0


def test_conformal_quantile_by_hand():
    r = np.arange(1.0, 11.0)  # 1..10
    assert conformal_quantile(r, 0.9) == 10.0  # ceil(11 * 0.9) = 10th smallest
    assert conformal_quantile(r, 0.5) == 6.0  # ceil(5.5) = 6th
    assert conformal_quantile(r, 0.1) == 1.0  # floor(1.1) = 1st


def lead_quantiles(r_in, r_hold, lead_hold_s, q, edges_s, block_s, step_s):
    """One residual quantile per lead bucket, as the model computes it: the holdout residuals of
    each lead (`lead_buckets`) pooled with the in-sample ones (`bucket_quantiles`)."""
    return bucket_quantiles(r_in, lead_buckets(r_hold, lead_hold_s, edges_s, block_s, step_s), q)


def test_lead_quantiles_by_hand():
    day_s, hour_s = 86400.0, 3600.0
    lead = np.arange(1, 25) * hour_s  # first day: leads 1 h .. 24 h
    r_hold = np.concatenate([np.arange(1.0, 25.0), np.full(24, 0.5)])  # day 2: small errors
    lead_hold = np.concatenate([lead, lead + day_s])
    edges = np.array([day_s, 3 * day_s])
    none = np.array([])
    # Day 1 is one observation: level 0.9 + 0.1 / 2 = 0.95 -> ceil(0.95 * 24) = 23rd of 1..24.
    q = lead_quantiles(none, r_hold, lead_hold, 0.9, edges, day_s, hour_s)
    np.testing.assert_allclose(q, [23.0, 23.0, 23.0])  # day 2's 0.5 is raised to day 1's; 3 d+ repeats
    # Counting every point: level 0.9 + 0.1 / 25 = 0.904 -> ceil(21.7) = 22nd.
    assert lead_quantiles(none, r_hold, lead_hold, 0.9, edges, 0.0, hour_s)[0] == 22.0
    assert pooled_quantile(none, r_hold[:24], 0.9, 1.0) == 23.0
    # Pooled with in-sample residuals (equal total weight): 24 in-sample zeros and day 1 -> the
    # 0.95 level of the mixture is the 0.9 level of day 1 alone: ceil(0.9 * 24) = 22nd.
    q_pool = lead_quantiles(np.zeros(24), r_hold, lead_hold, 0.9, edges, day_s, hour_s)
    assert q_pool[0] == 22.0
    # Lower side: <= 0 and never increasing; with no holdout at all, in-sample only.
    lo = lead_quantiles(none, -r_hold, lead_hold, 0.1, edges, day_s, hour_s)
    assert (lo <= 0).all() and (np.diff(lo) <= 0).all()
    np.testing.assert_allclose(lead_quantiles(np.arange(1.0, 11.0), none, none, 0.9, edges, day_s, hour_s),
                               [10.0, 10.0, 10.0])


@given(st.lists(st.floats(-3, 3), min_size=1, max_size=60), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_lead_quantiles_monotone_in_lead(vals, seed):
    rng = np.random.default_rng(seed)
    r = np.asarray(vals)
    lead = rng.uniform(0, 8 * 86400.0, r.size)
    edges = np.array([86400.0, 3 * 86400.0])
    hi = lead_quantiles(rng.normal(size=10), r, lead, 0.9, edges, 86400.0, 3600.0)
    lo = lead_quantiles(rng.normal(size=10), r, lead, 0.1, edges, 86400.0, 3600.0)
    assert hi.shape == lo.shape == (3,)
    assert (np.diff(hi) >= 0).all() and (hi >= 0).all()
    assert (np.diff(lo) <= 0).all() and (lo <= 0).all()


def test_settings_and_unfitted_errors():
    with pytest.raises(ValueError):
        ModelSettings(upper_quantile=0.5, lower_quantile=0.6)
    with pytest.raises(ValueError):
        ModelSettings(prior_tau_spread=0.5)
    with pytest.raises(ValueError):
        ModelSettings(interval_lead_edges=(timedelta(days=3), timedelta(days=1)))
    with pytest.raises(ValueError):
        ModelSettings(interval_block=timedelta(hours=-1))
    with pytest.raises(RuntimeError):
        EbbtideForecaster().predict(pd.date_range(START, periods=2, freq="1h"))


# --------------------------------------------------------------------------- slow (Prophet)

@pytest.fixture(scope="module")
def ebb_case():
    """Fitted once: cut one day after the sale's end, forecast the next 3 days."""
    all_s, full = hourly_series(26)
    cut = SALE_PEAK + pd.Timedelta(hours=4 + 24)
    hist = all_s.before(cut)
    model = EbbtideForecaster([SALE]).fit(hist)
    idx = hist.future_index(timedelta(days=3))
    return model, hist, idx, all_s


@pytest.mark.slow
def test_deterministic(ebb_case):
    model, hist, idx, _ = ebb_case
    again = EbbtideForecaster([SALE]).fit(hist)
    pd.testing.assert_frame_equal(model.predict(idx).frame, again.predict(idx).frame)
    pd.testing.assert_frame_equal(model.predict(idx).frame, model.predict(idx).frame)


@pytest.mark.slow
def test_decay_learned(ebb_case):
    _, hist, idx, _ = ebb_case
    # The decay alone (this series has no new peace level): with the default settle level a
    # day of tail cannot tell "tau 16 h" from "tau 32 h and a lower level" (measured WAPE 0.20,
    # over-forecast, see docs/forecasting.md), so the decay is checked without it; and among
    # exponential kernels only: on this noise draw a day of tail fits the power law
    # (1 + t/8h)^-1 slightly better in-sample (mean |z error| 0.085 vs 0.092), whose long tail
    # then over-forecasts (the family choice on one day of tail is a known limit, covered by the
    # interval spanning both families; docs/forecasting.md).
    model = EbbtideForecaster([SALE], ModelSettings(settle_level=False, ebb_power_alphas=())).fit(hist)
    f = model.predict(idx)
    assert wape(truth(idx), f.yhat.to_numpy()) < 0.15
    tau_h = model.chosen_tau["flash-sale"] / H
    assert 8 <= tau_h <= 32  # within a factor 2 of the true 16 h
    assert any("ebb tau for flash-sale" in n for n in f.notes)
    assert (f.yhat_lower <= f.yhat).all() and (f.yhat <= f.yhat_upper).all() and (f.yhat_lower >= 0).all()
    plain = PlainProphetForecaster(uncertainty_samples=0).fit(hist).predict(idx)
    assert wape(truth(idx), f.yhat.to_numpy()) < 0.5 * wape(truth(idx), plain.yhat.to_numpy())


@pytest.mark.slow
def test_upper_covers_held_out_points(ebb_case):
    model, hist, idx, all_s = ebb_case
    f = model.predict(idx)
    actual = all_s.values.reindex(idx).to_numpy()
    assert np.mean(actual <= f.yhat_upper.to_numpy()) >= 0.85


@pytest.mark.slow
def test_cut_at_peak_spans_candidates():
    all_s, _ = hourly_series(26)
    hist = all_s.before(SALE_PEAK + pd.Timedelta(hours=1))
    model = EbbtideForecaster([SALE]).fit(hist)
    idx = hist.future_index(timedelta(days=3))
    f = model.predict(idx)
    assert any("no ebb observed yet" in n and "interval spans 8h, 16h, 32h" in n for n in f.notes)
    actual = all_s.values.reindex(idx).to_numpy()
    assert np.mean(actual <= f.yhat_upper.to_numpy()) >= 0.85
    assert np.isfinite(f.yhat_upper).all() and f.yhat_upper.max() < 50 * np.nanmax(hist.values)


@pytest.mark.slow
def test_one_minute_input_fits_on_coarse_grid():
    idx = pd.date_range(START, periods=6 * 24 * 60, freq="1min")
    y = noisy(idx, seed=3, with_sale=False)
    s = Series(pd.Series(y, index=idx), MIN, "one-minute")
    hist = s.before(START + pd.Timedelta(days=5))
    model = EbbtideForecaster(settings=ModelSettings(max_fit_points=200)).fit(hist)
    assert model._fit_step == H
    future = hist.future_index(timedelta(days=1))
    f = model.predict(future.tz_convert("America/New_York"))
    assert len(f.frame) == 24 * 60 and f.index.equals(future)
    assert any("fit grid 1h" in n and "mapped back to 1min" in n for n in f.notes)
    assert wape(truth(future, with_sale=False), f.yhat.to_numpy()) < 0.1


@pytest.mark.slow
def test_no_event_at_least_as_good_as_weekly_naive():
    from forecaster.baselines import SeasonalNaive

    all_s, _ = hourly_series(28, seed=5, with_sale=False)
    hist = all_s.before(START + pd.Timedelta(days=28))
    idx = hist.future_index(timedelta(days=7))
    f = EbbtideForecaster().fit(hist).predict(idx)
    n = SeasonalNaive(timedelta(days=7)).fit(hist).predict(idx)
    actual = all_s.values.reindex(idx).to_numpy()
    assert wape(actual, f.yhat.to_numpy()) <= wape(actual, n.yhat.to_numpy()) + 1e-9


@pytest.mark.slow
def test_warm_start_round_trip(ebb_case):
    model, hist, idx, _ = ebb_case
    params = model.params
    assert set(params) == {"k", "m", "delta", "sigma_obs", "beta", "ebbtide"}
    warm = EbbtideForecaster([SALE]).fit(hist, init=params)
    np.testing.assert_allclose(warm.predict(idx).yhat, model.predict(idx).yhat, rtol=0.02)


@pytest.mark.slow
def test_a_fit_leaves_no_files_behind(ebb_case, monkeypatch, tmp_path):
    """CmdStan's files of every run (a CSV and a log, ~30 kB, 7-20 runs a fit) go when the fit
    returns, warm-started or not, Ebbtide or plain Prophet: a controller refits for weeks, and
    its pod's /tmp is a size-limited emptyDir."""
    import cmdstanpy

    model, hist, _, _ = ebb_case
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def stan_files() -> int:
        return sum(len(dirs) + len(files) for _, dirs, files in os.walk(cmdstanpy._TMPDIR))

    before = stan_files()
    EbbtideForecaster([SALE]).fit(hist, init=model.params)
    EbbtideForecaster([SALE]).fit(hist)
    PlainProphetForecaster(uncertainty_samples=0).fit(hist)
    assert stan_files() == before
    assert not list(scratch.iterdir())


@pytest.mark.slow
def test_outlier_burst_is_treated_as_missing():
    all_s, full = hourly_series(21, seed=7, with_sale=False)
    v = all_s.values.copy()
    burst = START + pd.Timedelta(days=16, hours=2)
    v[(v.index >= burst) & (v.index < burst + pd.Timedelta(hours=3))] *= 20.0
    s = Series(v, H, "burst")
    hist = s.before(START + pd.Timedelta(days=21))
    idx = hist.future_index(timedelta(days=2))
    f = EbbtideForecaster().fit(hist).predict(idx)
    assert any(n.startswith("outliers: 3 fit-grid points") for n in f.notes)
    raw = EbbtideForecaster(settings=ModelSettings(outlier_sigma=0)).fit(hist).predict(idx)
    assert wape(truth(idx, with_sale=False), f.yhat.to_numpy()) < 0.1
    assert wape(truth(idx, with_sale=False), f.yhat.to_numpy()) <= wape(truth(idx, with_sale=False),
                                                                        raw.yhat.to_numpy()) + 1e-9


@pytest.mark.parametrize("missing", ["empty", "zeros"])
def test_a_lookback_that_opens_on_a_long_hole_fits_from_the_first_observed_point(missing):
    """A new service: 17 days of nothing (no data, or a metric reading 0, which the outage rule
    makes missing), then 2 days of traffic. The hole counted as history: weekly terms were
    switched on for 2 days of data and extrapolated (here yhat_upper 10,561 against a history
    peaking at 158, WAPE 8.2; yhat 4e32 on NASA). Now it is fitted on the 2 days: 219, WAPE 0.13."""
    all_s, _ = hourly_series(19, seed=3, with_sale=False)
    hist = all_s.before(START + pd.Timedelta(days=19))
    v = hist.values.copy()
    v[v.index < START + pd.Timedelta(days=17)] = np.nan if missing == "empty" else 0.0
    idx = hist.future_index(timedelta(days=7))
    got = EbbtideForecaster().fit(Series(v, H, "holed")).predict(idx)
    assert got.yhat_upper.max() <= 2.0 * float(np.nanmax(v))
    assert wape(truth(idx, with_sale=False), got.yhat.to_numpy()) < 0.3
    assert any(n.endswith("(48 points over 48h)") for n in got.notes), got.notes


def test_prophets_newton_fallback_is_a_note_not_a_line_on_stderr(monkeypatch, caplog):
    """Prophet logs "Optimization terminated abnormally. Falling back to Newton." as a warning
    (it leaked to the command line's stderr); the fit goes on and stands, so it is counted into
    the fit's notes instead. Other Prophet warnings still pass."""
    import logging

    from forecaster import model as fm

    real = fm._fit_stan

    def abnormal(m, df, **kw):
        logging.getLogger("prophet.models").warning("Optimization terminated abnormally. Falling back to Newton.")
        real(m, df, **kw)

    monkeypatch.setattr(fm, "_fit_stan", abnormal)
    all_s, _ = hourly_series(8, seed=2, with_sale=False)
    hist = all_s.before(START + pd.Timedelta(days=8))
    with caplog.at_level(logging.WARNING):
        f = EbbtideForecaster().fit(hist).predict(hist.future_index(timedelta(hours=6)))
        logging.getLogger("prophet").warning("something else")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("prophet")] == ["something else"]
    [note] = [n for n in f.notes if n.startswith("Prophet's LBFGS optimiser ended abnormally in ")]
    assert note.endswith("runs of this fit, which fell back to Newton (the fit stands)")


@pytest.mark.slow
def test_seasonal_residual_profile_draws_a_sharp_weekly_shape():
    idx = pd.date_range(START, periods=28 * 24 + 7 * 24, freq="1h")
    rng = np.random.default_rng(11)
    hours = np.asarray((idx - START) / pd.Timedelta(hours=1), dtype=int)
    mu = truth(idx, with_sale=False) * np.where((hours // 24) % 7 == 3, 2.0, 1.0)  # one day a week x2
    s = Series(pd.Series(mu * np.exp(rng.normal(0, 0.05, mu.size)), index=idx), H, "weekly-spike")
    hist = s.before(START + pd.Timedelta(days=28))
    fut = hist.future_index(timedelta(days=7))
    f = EbbtideForecaster().fit(hist).predict(fut)
    plain = EbbtideForecaster(settings=ModelSettings(seasonal_correction=False)).fit(hist).predict(fut)
    truth_f = mu[-7 * 24:]
    note = [n for n in f.notes if n.startswith("seasonal residual profile (")]
    assert note and not note[0].endswith("weight 0")
    assert wape(truth_f, f.yhat.to_numpy()) < wape(truth_f, plain.yhat.to_numpy())


@pytest.mark.slow
def test_settle_level_follows_a_raised_peace_level():
    idx = pd.date_range(START, periods=28 * 24, freq="1h")
    t = np.asarray((idx - SALE_PEAK) / pd.Timedelta(hours=1), dtype=float)
    raised = np.where(t >= 4, 1.0 + 0.3 * (1 - np.exp(-(t - 4) / TAU_TRUE_H)), 1.0)
    y = noisy(idx, seed=9) * raised
    s = Series(pd.Series(y, index=idx), H, "raised")
    hist = s.before(SALE_PEAK + pd.Timedelta(hours=4 + 48))
    fut = hist.future_index(timedelta(days=3))
    actual = s.values.reindex(fut).to_numpy()
    f = EbbtideForecaster([SALE]).fit(hist).predict(fut)
    old = EbbtideForecaster([SALE], ModelSettings(settle_level=False)).fit(hist).predict(fut)
    assert any(n.startswith("new peace level after the ebb") for n in f.notes)
    assert np.mean(actual <= f.yhat_upper.to_numpy()) >= 0.85
    assert wape(actual, f.yhat.to_numpy()) < wape(actual, old.yhat.to_numpy())


def _drifting_series(days: int, seed: int) -> Series:
    """Hourly demand on a daily cycle whose level is a random walk in log space (sd 0.15 a
    day, applied hourly), with 3% noise: the error of any forecast grows with its lead time."""
    idx = pd.date_range(START, periods=days * 24, freq="1h")
    rng = np.random.default_rng(seed)
    level = np.cumsum(rng.normal(0.0, 0.15 / np.sqrt(24), idx.size))
    y = truth(idx, with_sale=False) * np.exp(level + rng.normal(0.0, 0.03, idx.size))
    return Series(pd.Series(y, index=idx), H, "drifting")


@pytest.mark.slow
def test_interval_widens_with_lead_time():
    # The calibrated band: where the holdout chose the naive or the average over Prophet, the
    # band also spans Prophet's by default (`mode_band_spans_prophet`), and its width from the
    # chosen centre then follows the two centres' distance hour by hour
    # (tests/test_no_event_average.py); the conformal quantiles themselves never narrow ahead.
    widened = 0
    for seed in (11, 12, 13):
        all_s = _drifting_series(35, seed)
        hist = all_s.before(START + pd.Timedelta(days=28))
        idx = hist.future_index(timedelta(days=7))
        model = EbbtideForecaster(settings=ModelSettings(mode_band_spans_prophet=False)).fit(hist)
        f = model.predict(idx)
        tf = Log1pScaled.fit(hist.values.to_numpy(), model.settings.scale_fraction)
        width_z = tf.forward(f.yhat_upper.to_numpy()) - tf.forward(f.yhat.to_numpy())
        lead = (idx - hist.end) / pd.Timedelta(days=1)
        band = model._band_of(idx)
        for b in np.unique(band):  # never narrower further ahead, within each daily level band
            assert (np.diff(width_z[band == b]) >= -1e-9).all()
        widened += np.median(width_z[lead > 3]) > np.median(width_z[lead <= 1]) + 1e-6
        assert any("by lead (<= 24h, 24h-72h, > 72h)" in n for n in f.notes)
    # One holdout week is one realisation of the walk: most seeds, not necessarily all, widen.
    assert widened >= 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_held_out_week_coverage_at_least_quantile_bound(seed):
    all_s, _ = hourly_series(28, seed=seed, with_sale=False)
    hist = all_s.before(START + pd.Timedelta(days=28))
    idx = hist.future_index(timedelta(days=7))
    s = ModelSettings()
    f = EbbtideForecaster(settings=s).fit(hist).predict(idx)
    actual = all_s.values.reindex(idx).to_numpy()
    q, n = s.upper_quantile, idx.size
    bound = q - 3.0 * np.sqrt(q * (1.0 - q) / n)  # the quantile less three binomial standard errors
    assert np.mean(actual <= f.yhat_upper.to_numpy()) >= bound


@pytest.mark.parametrize("name", ["holidays", "daily", "trend", "yhat"])
def test_events_named_as_prophet_keeps_names_are_fitted(name):
    # an event called `holidays` (or `daily`, Prophet's own seasonality) made every fit fail
    all_s, _ = hourly_series(26)
    hist = all_s.before(SALE_PEAK - pd.Timedelta(days=2))
    day = (SALE_PEAK - pd.Timedelta(days=9)).normalize()
    hol = Event(name=name, kind="holiday", start=day.isoformat(), peak=(day + pd.Timedelta(hours=12)).isoformat(),
                end=(day + pd.Timedelta(days=1)).isoformat())
    sale = SALE.model_copy(update={"name": name + "-sale"})
    f = EbbtideForecaster([hol, sale]).fit(hist).predict(hist.future_index(timedelta(hours=6)))
    assert f.frame.notna().all().all() and len(f.frame) == 6
    assert evf.prophet_holiday_name(name) == f"event:{name}"
    assert evf.prophet_holiday_name("singles-day") == "singles-day"
