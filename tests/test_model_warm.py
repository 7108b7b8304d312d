"""Warm refits of EbbtideForecaster (forecaster.model): what `params` carries and what a refit
given them (`fit(history, init=params)`) reuses, fits and forecasts. Issue #7: a refit of a
cached workload must cost about one Prophet fit, not the 3-9 of a cold fit.

Cases (seeded Prophet fits, slow):
- params are plain data (JSON round-trip) with the Stan keys and the warm state
- no event, no outlier: a cold fit is 2 Prophet fits (the outlier screen IS the main fit, plus
  the holdout calibration); a warm refit 1 h later is 1 fit, keeps the calibration (noted), and
  forecasts within 3% of a cold fit on the same history
- calibration reuse expires: a warm refit more than `recalibrate_every` after the calibration
  redoes the holdout fit; `warm_reuse=False` makes every fit cold
- outliers: points found outlying stay masked in a warm refit (noted), which is then 1 fit, and
  the burst still does not raise the forecast
- sale with the ebb observed: the cold fit scores every kernel (7 exponential taus, the power law
  on the 5 shortest); a warm refit on the same history keeps the kernel (noted) and fits only the plausible
  ones; 6 h later (more ebb observed) it scores only the previous plausible tau range +- one
  candidate, in the plausible kernel families (noted), picks a tau in it, and its band holds
  the true demand (counted with `settle_unheld_hedge` off; with it, at most one level refit
  more per exponential kernel searched)
- no ebb observed yet (cut before the sale ends): only the prior's 3 candidates are fitted
- a changed calendar (new event) is a different structure: the refit is cold (no "kept" note)
"""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

import forecaster.model as fm
from forecaster import intervals
from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from policies.events import Event

from test_model import SALE, SALE_PEAK, START, hourly_series, truth, wape

pytestmark = pytest.mark.slow
H = timedelta(hours=1)


@pytest.fixture
def fit_counter(monkeypatch):
    """Counts Prophet fits (EbbtideForecaster._fit_prophet calls)."""
    calls = {"n": 0}
    orig = fm.EbbtideForecaster._fit_prophet

    def counting(self, *a, **k):
        calls["n"] += 1
        return orig(self, *a, **k)

    monkeypatch.setattr(fm.EbbtideForecaster, "_fit_prophet", counting)

    def take() -> int:
        n, calls["n"] = calls["n"], 0
        return n

    return take


def _quiet_series(days: int, seed: int = 3) -> Series:
    all_s, _ = hourly_series(days, seed=seed, with_sale=False)
    return all_s.before(START + pd.Timedelta(days=days))


def test_params_are_plain_data_with_warm_state():
    model = EbbtideForecaster().fit(_quiet_series(21))
    params = json.loads(json.dumps(model.params))
    assert {"k", "m", "delta", "sigma_obs", "beta"} <= set(params)
    warm = params["ebbtide"]
    cal = warm["calibration"]
    assert cal["n_hold"] > 0 and len(cal["buckets"]) == len(ModelSettings().interval_lead_edges) + 1
    assert all(b is None or (len(b[0]) <= intervals.SKETCH_POINTS and b[1] > 0) for b in cal["buckets"])
    assert warm["best_tau_s"] is None and warm["n_ebb"] == 0


def test_quiet_series_warm_refit_is_one_fit_and_keeps_calibration(fit_counter):
    all_s, _ = hourly_series(21, seed=3, with_sale=False)
    hist = all_s.before(START + pd.Timedelta(days=21))
    cold = EbbtideForecaster().fit(hist)
    assert fit_counter() == 2  # the outlier screen is reused as the fit; plus the holdout fit
    later = all_s.before(START + pd.Timedelta(days=21, hours=1))
    warm = EbbtideForecaster().fit(later, init=cold.params)
    assert fit_counter() == 1
    assert any(n.startswith("warm refit: holdout calibration kept") for n in warm.notes)
    ref = EbbtideForecaster().fit(later)
    fit_counter()
    idx = later.future_index(timedelta(days=2))
    a, b = warm.predict(idx), ref.predict(idx)
    assert wape(b.yhat.to_numpy(), a.yhat.to_numpy()) < 0.03
    assert wape(b.yhat_upper.to_numpy(), a.yhat_upper.to_numpy()) < 0.05


def test_a_warm_refit_starts_stan_from_the_previous_params(monkeypatch):
    """params() stores delta and beta as lists; Prophet 1.5.0 read `.shape` on them and raised,
    so every warm refit was a failed warm-started Stan call plus a cold one (a sweep of the
    fitting engine). Now one Stan call, started from the previous optimum."""
    all_s, _ = hourly_series(21, seed=3, with_sale=False)
    cold = EbbtideForecaster().fit(all_s.before(START + pd.Timedelta(days=21)))
    calls: list[tuple[bool, str | None]] = []
    orig = fm._fit_stan

    def recording(m, df, **kwargs):
        try:
            orig(m, df, **kwargs)
        except Exception as exc:
            calls.append(("init" in kwargs, type(exc).__name__))
            raise
        calls.append(("init" in kwargs, None))

    monkeypatch.setattr(fm, "_fit_stan", recording)
    EbbtideForecaster().fit(all_s.before(START + pd.Timedelta(days=21, hours=1)), init=cold.params)
    assert calls == [(True, None)]


def test_calibration_reuse_expires_and_can_be_disabled(fit_counter):
    all_s, _ = hourly_series(21, seed=3, with_sale=False)
    cold = EbbtideForecaster().fit(all_s.before(START + pd.Timedelta(days=20)))
    fit_counter()
    day_later = all_s.before(START + pd.Timedelta(days=21))  # 24 h: not younger than recalibrate_every
    again = EbbtideForecaster().fit(day_later, init=cold.params)
    assert fit_counter() == 2
    assert not any(n.startswith("warm refit: holdout calibration kept") for n in again.notes)
    off = EbbtideForecaster(settings=ModelSettings(warm_reuse=False))
    off.fit(all_s.before(START + pd.Timedelta(days=20, hours=1)), init=cold.params)
    assert fit_counter() == 2


def test_outliers_stay_masked_in_a_warm_refit(fit_counter):
    all_s, _ = hourly_series(21, seed=7, with_sale=False)
    v = all_s.values.copy()
    burst = START + pd.Timedelta(days=16, hours=2)
    v[(v.index >= burst) & (v.index < burst + pd.Timedelta(hours=3))] *= 20.0
    s = Series(v, H, "burst")
    cold = EbbtideForecaster().fit(s.before(START + pd.Timedelta(days=21)))
    assert fit_counter() == 3  # screen, refit without the burst, holdout
    later = s.before(START + pd.Timedelta(days=21, hours=2))
    warm = EbbtideForecaster().fit(later, init=cold.params)
    assert fit_counter() == 1
    assert any(n.startswith("warm refit: 3 fit-grid points") for n in warm.notes)
    idx = later.future_index(timedelta(days=2))
    assert wape(truth(idx, with_sale=False), warm.predict(idx).yhat.to_numpy()) < 0.1


def _searched(state: dict) -> tuple[int, list[timedelta], set]:
    """The fits a warm refit's tau search makes from a cold fit's `state`: the previous plausible
    range and one neighbour either side, per kernel family kept (the power law on its taus)."""
    grid = list(ModelSettings().tau_candidates)
    idx = [grid.index(timedelta(seconds=x)) for x in state["plausible_s"]]
    allowed = grid[max(min(idx) - 1, 0):min(max(idx) + 1, len(grid) - 1) + 1]
    families = set(state["plausible_alpha"])  # kernel families (exponential 0, power-law alphas) kept
    power_taus = grid[:ModelSettings().power_tau_count]
    return sum(len([t for t in allowed if a == 0 or t in power_taus]) for a in families), allowed, families


def test_sale_warm_refits_narrow_the_tau_search(fit_counter):
    all_s, _ = hourly_series(24, seed=1)
    cut = SALE_PEAK + pd.Timedelta(days=1)
    hist = all_s.before(cut)
    s = ModelSettings(settle_unheld_hedge=False)  # the search's own fits; the hedge's are counted at the end
    cold = EbbtideForecaster([SALE], s).fit(hist)
    n_cold = fit_counter()
    # every kernel: 7 exponential taus + the power law on the 5 shortest (screen reused for one), holdout
    assert n_cold >= 1 + len(s.tau_candidates) + s.power_tau_count
    state = cold.params["ebbtide"]
    plausible = [timedelta(seconds=x) for x in state["plausible_s"]]

    same = EbbtideForecaster([SALE], s).fit(hist, init=cold.params)
    assert fit_counter() == len(plausible)  # kept choice: only the plausible fits, calibration kept
    assert any("kept from the previous fit" in n for n in same.notes)
    assert same.chosen_tau == cold.chosen_tau

    later = all_s.before(cut + pd.Timedelta(hours=6))
    warm = EbbtideForecaster([SALE], s).fit(later, init=cold.params)
    searched, allowed, _ = _searched(state)
    assert fit_counter() == searched
    assert any(n.startswith("warm refit: tau scored on") for n in warm.notes)
    assert warm.chosen_tau["flash-sale"] in allowed

    # With the hedge (the default): the same search, plus at most one level refit per exponential
    # kernel searched (`settle_unheld_hedge`).
    cold = EbbtideForecaster([SALE]).fit(hist)
    fit_counter()
    warm = EbbtideForecaster([SALE]).fit(later, init=cold.params)
    searched, allowed, families = _searched(cold.params["ebbtide"])
    assert any(n.startswith("warm refit: tau scored on") for n in warm.notes)
    assert searched <= fit_counter() <= searched + (len(allowed) if 0 in families else 0)
    f = warm.predict(later.future_index(timedelta(days=2)))
    # Capacity stays safe: the band holds the true demand. (yhat itself may follow a power-law
    # kernel here: 30 h of this exponential tail fit (1 + t/8h)^-1 about as well, the known
    # limit of choosing the ebb's family on a short tail, docs/forecasting.md.)
    assert (truth(f.frame.index) <= f.yhat_upper.to_numpy()).mean() >= 0.9


def test_no_ebb_observed_fits_only_the_prior_range(fit_counter):
    all_s, _ = hourly_series(24, seed=1)
    model = EbbtideForecaster([SALE]).fit(all_s.before(SALE_PEAK + pd.Timedelta(hours=2)))
    # prior centre 16 h and its neighbours within a factor 2 (8 h, 32 h): 3 fits, one of them
    # the reused screen; plus the holdout
    assert fit_counter() == 3 + 1
    assert sorted(model.params["ebbtide"]["plausible_s"]) == [8 * 3600.0, 16 * 3600.0, 32 * 3600.0]


def test_changed_calendar_refits_cold(fit_counter):
    all_s, _ = hourly_series(24, seed=1)
    hist = all_s.before(SALE_PEAK + pd.Timedelta(days=1))
    cold = EbbtideForecaster([SALE]).fit(hist)
    fit_counter()
    extra = Event(name="next-sale", kind="sale", start=(hist.end + pd.Timedelta(days=2)).isoformat(),
                  peak=(hist.end + pd.Timedelta(days=2, hours=6)).isoformat(),
                  end=(hist.end + pd.Timedelta(days=2, hours=8)).isoformat())
    again = EbbtideForecaster([SALE, extra]).fit(hist, init=cold.params)
    assert fit_counter() >= 1 + 7
    assert not any("kept" in n or n.startswith("warm refit") for n in again.notes)
