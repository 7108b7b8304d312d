"""Group-conditional ("Mondrian") interval quantiles by daily level band (forecaster.model).

Cases (fast):
- level_bands by hand: slots ranked by their median level, cut into equal bands (ties by slot
  number); a slot with no data takes the others' median; more bands than slots is capped
- group_buckets + group_quantiles by hand: each band's in-sample residuals pooled with its own
  holdout residuals per lead bucket (weights and finite-sample level worked out below); a cell
  whose bucket has holdout residuals but none of the band takes the pooled value; a band with
  too few in-sample residuals takes the pooled row; monotone rows
- property: every row is monotone in lead and on its side of 0, whatever the residuals and bands
- settings refuse interval_groups < 1
Cases (slow, seeded Prophet fits):
- heteroscedastic series (quiet nights, noisy evenings, no event): with level bands each
  band's coverage of the held-out week is near the nominal 0.9, the noisy band's upper
  quantile is wider than the quiet band's, and the noisy band is covered better than with one
  pooled quantile (interval_groups=1); the notes say the interval is by band
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.intervals import group_buckets, group_quantiles, lead_buckets, level_bands
from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series

DAY_S, HOUR_S = 86400.0, 3600.0


def test_level_bands_by_hand():
    slot = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    level = np.array([3.0, 1.0, 4.0, 2.0, 3.0, 1.0, 4.0, 2.0])  # medians per slot: 3, 1, 4, 2
    # Ranks: slot 1 (1.0), slot 3 (2.0), slot 0 (3.0), slot 2 (4.0).
    np.testing.assert_array_equal(level_bands(slot, level, 4, 2), [1, 0, 1, 0])
    np.testing.assert_array_equal(level_bands(slot, level, 4, 4), [2, 0, 3, 1])
    np.testing.assert_array_equal(level_bands(slot, level, 4, 9), [2, 0, 3, 1])  # capped at 4 slots
    np.testing.assert_array_equal(level_bands(slot, level, 4, 1), [0, 0, 0, 0])
    # 6 slots, 4 bands: band = rank * 4 // 6 -> ranks 0..5 -> 0, 0, 1, 2, 2, 3.
    # Slots 4 and 5 have no data: they take the median of the others (2.5), ranked after
    # slot 3 (2.0) and before slot 0 (3.0), ties by slot number.
    np.testing.assert_array_equal(level_bands(slot, level, 6, 4), [2, 0, 3, 0, 1, 2])
    # The median, not the mean, of a slot's points: one outlying point does not move it.
    np.testing.assert_array_equal(
        level_bands(np.array([0, 0, 0, 1, 1, 1]), np.array([1.0, 1.0, 99.0, 2.0, 2.0, 2.0]), 2, 2), [0, 1])


def _two_band_case():
    """In-sample: band 0 holds 0.01 .. 0.50 (50 residuals), band 1 holds 1 .. 49 (49). Holdout,
    lead buckets (<= 1 d, > 1 d): day 1 has band 0's [1..6] (leads 1-6 h) and band 1's
    [10, 20, .., 60] (leads 7-12 h); day 2 has only band 1's six 7s (leads 25-30 h)."""
    r_in = np.concatenate([np.arange(1, 51) / 100.0, np.arange(1.0, 50.0)])
    g_in = np.concatenate([np.zeros(50, dtype=int), np.ones(49, dtype=int)])
    r_hold = np.concatenate([np.arange(1.0, 7.0), np.arange(10.0, 70.0, 10.0), np.full(6, 7.0)])
    lead = np.concatenate([np.arange(1, 13), np.arange(25, 31)]) * HOUR_S
    g_hold = np.array([0] * 6 + [1] * 6 + [1] * 6)
    edges = np.array([DAY_S])
    buckets = lead_buckets(r_hold, lead, edges, DAY_S, HOUR_S)
    return r_in, g_in, r_hold, lead, g_hold, edges, buckets


def test_group_buckets_split_by_band_with_the_bucket_count():
    _, _, r_hold, lead, g_hold, edges, buckets = _two_band_case()
    # Bucket counts: day 1 covers leads 1-12 h -> 0.5 day; day 2 covers 25-30 h -> 0.25 day.
    assert [b[1] for b in buckets] == [0.5, 0.25]
    gb = group_buckets(r_hold, lead, g_hold, buckets, edges, 2)
    np.testing.assert_array_equal(gb[0][0][0], np.arange(1.0, 7.0))
    assert gb[0][0][1] == 0.5 and gb[0][1] is None  # band 0 has nothing after day 1
    np.testing.assert_array_equal(gb[1][0][0], np.arange(10.0, 70.0, 10.0))
    np.testing.assert_array_equal(gb[1][1][0], np.full(6, 7.0))
    assert gb[1][1][1] == 0.25  # the bucket's count, not the band's shorter span


def test_group_quantiles_by_hand():
    r_in, g_in, r_hold, lead, g_hold, edges, buckets = _two_band_case()
    gb = group_buckets(r_hold, lead, g_hold, buckets, edges, 2)
    q = group_quantiles(r_in, g_in, buckets, gb, 0.9, 40)
    # Every bucket counts as one independent observation (0.5 and 0.25 day are floored at 1):
    # level 0.9 + 0.1 / 2 = 0.95 of the pool, in-sample and holdout each weighing one half.
    # Band 0, day 1: in-sample 50 x 0.01 = 0.5, then holdout 1..6 at 1/12 each: cumulative
    # 0.583, 0.667, 0.75, 0.833, 0.917, 1.0 -> the first >= 0.95 is 6.
    # Band 0, day 2: the bucket has holdout residuals, none of band 0 -> the pooled value.
    # Pooled, day 1: 99 in-sample at 0.5/99, 12 holdout at 1/24; above 49 only the holdout 50
    # and 60: cumulative 0.917 before 50, 0.958 at it -> 50. Pooled, day 2: through the six
    # holdout 7s (1/12 each) 57/99 * 0.5 + 0.5 = 0.788, then 8, 9, .. at 0.5/99 each: the 33rd
    # (40) is the first at >= 0.95; monotone -> max(50, 40) = 50. So band 0: (6, 50).
    # Band 1, day 1: in-sample 1..49 at 1/98, holdout 10..60 at 1/12: 0.833 before 50, 0.917 at
    # it, 1.0 at 60 -> 60. Day 2: 7/98 + 0.5 = 0.571 through the 7s, then the 38th value
    # after 7 (45) reaches 0.95; monotone -> max(60, 45) = 60.
    np.testing.assert_allclose(q, [[6.0, 50.0], [60.0, 60.0]])
    # Too few in-sample residuals per band (min 60): both rows are the pooled one.
    np.testing.assert_allclose(group_quantiles(r_in, g_in, buckets, gb, 0.9, 60), [[50.0, 50.0], [50.0, 50.0]])
    # No holdout at all: each band's own split-conformal quantile, ceil((n + 1) 0.9)-th:
    # band 0 the 46th of 0.01..0.50 (0.46), band 1 the 45th of 1..49 (45).
    none = [None, None]
    np.testing.assert_allclose(group_quantiles(r_in, g_in, none, [none, none], 0.9, 40),
                               [[0.46, 0.46], [45.0, 45.0]])
    # One band (no split): the pooled row, shape (1, buckets).
    assert group_quantiles(r_in, g_in, buckets, [], 0.9, 40).shape == (1, 2)


@given(st.lists(st.floats(-3, 3), min_size=1, max_size=80), st.integers(1, 5), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_group_quantile_rows_monotone_in_lead(vals, n_groups, seed):
    rng = np.random.default_rng(seed)
    r_hold = np.asarray(vals)
    lead = rng.uniform(0, 8 * DAY_S, r_hold.size)
    g_hold = rng.integers(0, n_groups, r_hold.size)
    r_in = rng.normal(size=200)
    g_in = rng.integers(0, n_groups, r_in.size)
    edges = np.array([DAY_S, 3 * DAY_S])
    buckets = lead_buckets(r_hold, lead, edges, DAY_S, HOUR_S)
    gb = group_buckets(r_hold, lead, g_hold, buckets, edges, n_groups)
    hi = group_quantiles(r_in, g_in, buckets, gb, 0.9, 10)
    lo = group_quantiles(r_in, g_in, buckets, gb, 0.1, 10)
    assert hi.shape == lo.shape == (n_groups, 3)
    assert (np.diff(hi, axis=1) >= 0).all() and (hi >= 0).all()
    assert (np.diff(lo, axis=1) <= 0).all() and (lo <= 0).all()


def test_settings_refuse_no_groups():
    with pytest.raises(ValueError):
        ModelSettings(interval_groups=0)


# --------------------------------------------------------------------------- slow (Prophet)

START = pd.Timestamp("2026-03-02T00:00:00Z")


def _hetero_series(seed: int, days: int = 35) -> tuple[Series, np.ndarray]:
    """Hourly demand, no event: level 100 x (1 + 0.7 sin) peaking at 18:00 UTC, multiplicative
    noise whose sd follows the level (0.03 at the quiet night trough, 0.33 at the busy evening
    peak). Returns the series and the noise sd of each point."""
    idx = pd.date_range(START, periods=days * 24, freq="1h")
    hour = idx.hour.to_numpy()
    shape = np.sin(2 * np.pi * (hour - 12) / 24)  # -1 at 06:00, +1 at 18:00
    level = 100.0 * (1.0 + 0.7 * shape)
    sd = 0.18 + 0.15 * shape
    rng = np.random.default_rng(seed)
    y = level * np.exp(rng.normal(0.0, 1.0, idx.size) * sd)
    return Series(pd.Series(np.round(y), index=idx), timedelta(hours=1), "hetero"), sd


@pytest.mark.slow
def test_heteroscedastic_series_band_coverage_near_nominal():
    cov_bands, cov_pooled_noisy, widths = [], [], []
    for seed in (11, 12, 13):
        series, sd = _hetero_series(seed)
        cut = START + pd.Timedelta(days=28)
        hist = series.before(cut)
        idx = hist.future_index(timedelta(days=7))
        y = series.values.reindex(idx).to_numpy()
        noisy = sd[-len(idx):] > 0.28  # the busiest, noisiest hours (about 6 of 24)
        model = EbbtideForecaster(settings=ModelSettings(seed=0)).fit(hist)
        assert any("daily level band (4 bands" in n for n in model.notes)
        up = model.predict(idx).yhat_upper.to_numpy()
        bands = model._band_of(idx)
        cov_bands.append([float(np.mean(y[bands == b] <= up[bands == b])) for b in range(4)])
        widths.append(model._q_hi[:, 0])
        pooled = EbbtideForecaster(settings=ModelSettings(seed=0, interval_groups=1)).fit(hist)
        up1 = pooled.predict(idx).yhat_upper.to_numpy()
        cov_pooled_noisy.append((float(np.mean(y[noisy] <= up[noisy])), float(np.mean(y[noisy] <= up1[noisy]))))
    cov = np.mean(cov_bands, axis=0)  # per band over 3 x 42 held-out points
    # Nominal 0.9 (0.95 in the first day with one independent observation); a binomial sd
    # over 126 points is 0.027: every band within [0.8, 1.0], none pinned at 1 by a band
    # sized for the noisy hours.
    assert (cov >= 0.8).all(), cov
    assert (cov[:2] < 1.0).all(), cov
    # The quiet band's quantile is narrower than the noisy band's (the pooled one sits between).
    w = np.mean(widths, axis=0)
    assert w[0] < 0.6 * w[-1], w
    # The noisy hours: covered near nominal with bands, clearly less with one pooled quantile.
    with_bands, pooled_only = np.mean(cov_pooled_noisy, axis=0)
    assert with_bands >= 0.85 and with_bands > pooled_only + 0.04, (with_bands, pooled_only)
