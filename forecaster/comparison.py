"""Ebbtide against its baselines at one forecast origin: the list of models and the comparison.

This is where the event-aware model (forecaster.model) meets the baselines, so it is the one
place besides forecaster.model that may reach Prophet (through forecaster.model only); the
baseline and backtest modules stay Prophet-free (.importlinter). `ebbtide backtest`, the demo
and the bench all compare through here, so they compare the same models the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from forecaster.backtest import ModelRun, forecast_at_cutoff
from forecaster.baselines import statistical_baselines
from forecaster.model import EbbtideForecaster, ModelSettings, PlainProphetForecaster
from forecaster.series import Forecaster, Series
from policies.events import Event


def baseline_models(step: timedelta, upper_quantile: float = 0.9,
                    lower_quantile: float = 0.1) -> list[Forecaster]:
    """Fresh, unfitted baselines for a series of this step, in report order: seasonal naive
    (day, week, where the season fits the step), Holt-Winters, plain Prophet (no events)."""
    models = statistical_baselines(step, upper_quantile=upper_quantile, lower_quantile=lower_quantile)
    models.append(PlainProphetForecaster(upper_quantile=upper_quantile, lower_quantile=lower_quantile))
    return models


@dataclass(frozen=True)
class Comparison:
    """Every model fitted before one origin: `runs` with Ebbtide first, then the baselines that
    worked; `failures` maps a baseline that raised to its error text."""

    runs: tuple[ModelRun, ...]
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ebbtide(self) -> ModelRun:
        return self.runs[0]


def compare_at_cutoff(series: Series, events: list[Event] | tuple[Event, ...], cutoff,
                      horizon: timedelta, settings: ModelSettings | None = None) -> Comparison:
    """Fit Ebbtide (with `events`) and each baseline on the points before `cutoff` and forecast
    `horizon` on the series' grid; score each where actuals exist.

    Ebbtide failing raises (ValueError for input it cannot use); a baseline failing is recorded
    in `failures` and the others still run. `settings` defaults to ModelSettings with
    `horizon_hint` at least `horizon`.
    """
    if settings is None:
        settings = ModelSettings(horizon_hint=max(horizon, ModelSettings().horizon_hint))
    ebb = EbbtideForecaster(tuple(events), settings)
    runs = [forecast_at_cutoff(series, ebb, cutoff, horizon)]
    failures: dict[str, str] = {}
    for model in baseline_models(series.step, settings.upper_quantile, settings.lower_quantile):
        try:
            runs.append(forecast_at_cutoff(series, model, cutoff, horizon))
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            failures[model.name] = str(exc)
    return Comparison(tuple(runs), failures)
