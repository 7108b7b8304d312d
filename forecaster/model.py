"""Ebbtide's event-aware forecaster (and the plain-Prophet baseline): the ONE Prophet import.

The model, in the transformed space z = log1p(y / s) (forecaster.transforms), on a fit grid:

    z(t) = level + daily(t) + weekly(t) + holidays(t)
           + sum_e [ a_e * shape_e(t; tau_e) + b_e * inside_e(t) ] + noise

with a flat trend (a linear trend extrapolates a spike upwards; DESIGN.md), Fourier daily and
weekly seasonality switched on explicitly, Prophet holiday windows only for holiday-kind events
and national holidays, and hour-level event regressors for sales and joint live events
(forecaster.events): `shape` is ramp -> 1 -> the ebb kernel (exp(-(t - end)/tau), or the
long-tailed power law (1 + (t - end)/tau)^-alpha), so the ebb's height is tied to the peak the
model has seen; `inside` lets the plateau differ from the peak.

tau (the ebb time constant) is not learnable from a few hours of tail. Each event's `ebb` hint is
used when given; otherwise one Prophet fit per candidate kernel (the exponential on a geometric
tau grid, stretched so that no tau is shorter than a series step, and once the ebb is observed
the power law of each `ebb_power_alphas` on the shortest taus), scored on the
observed ebb windows of the history (earlier events in the lookback, and the tail of the latest
one). Candidates whose score is within noise of the best (paired difference of absolute errors
within two standard errors of 0) stay "plausible": the forecast is the best one, the interval spans all plausible ones (so
it widens when they disagree; with no ebb seen yet it spans the whole grid). While less ebb than
the prior's centre tau is observed, a longer best tau must beat the centre by more than noise
(`long_tau_needs_evidence`): a short tail shows a short tau, not how long a long one is.

Since the benchmark work (docs/forecasting.md has the measurements): z uses a scale of 0.1 x the
history's median (log-like over the normal range, so a multiplicative daily cycle is additive);
once the ebb is observed its starting height is learnt from the tail (`tail` regressor) and a
new peace level (`settle`, 1 - decay) once a daily cycle of tail is seen; short outlying runs
outside events are treated as missing for fitting; the recent seasonal profile of the residuals
is added with a weight the holdout picks; with no ebb observed the interval spans the prior's
neighbouring tau, not the whole grid. Since the long-tail work: power-law kernels (without a
settle level: the long tail is the competing explanation of a tail that stays up), no candidate
whose settle level would take the forecast below what the observed tail supports
(`settle_floor`), and with the ebb observed the interval spans the best kernel of each family.
With `country_holidays`, a public holiday the history never showed borrows the per-hour effect
of those it showed (`pooled_holidays`; its band also spans the forecast without it). Since the
multi-event work: an event's ebb counts as observed only until the next event starts
(`ebb_until_next_event`), and a calendar event with no occurrence in the history borrows the
fitted effect of the seen events of its kind (`unseen_borrows_effect`; the band also spans the
forecast without it), and the long-tau rule's bound counts only the latest free event's own
observed ebb, not an earlier event's (`long_tau_own_ebb`). Such an unseen event with a `lift`
hint in the calendar (policies.events: its peak as a multiple of the traffic without it) is
sized by the hint instead, through the same machinery: one borrowed entry whose shape
coefficient puts the forecast at its peak at `lift` x the fit's forecast without it
(`_lift_entry`); the band spans the forecast without it and the ebb ceiling leaves it uncapped.
Once the history holds a point of the event, its fitted effect is forecast and the hint unused.
A new peace level is forecast only once it is seen holding for `min_settle_tail` past half of
the kernel's move (`settle_needs_held_level`); before, a level the tail supports is a hedge
(`settle_unheld_hedge`: the band spans the best fit with it, yhat moves halfway in z when that
fit is better): a day of ebb cannot tell a new level from a slow ebb still under way. When the
other kernel family's best (exponential vs power law) fits the observed ebb within noise of the
best, yhat is the mean of the two in z (`ebb_family_hedge`). An event whose traffic kept rising
after its declared end is fitted moved to its observed peak (`event_align_within`;
forecaster.events.align_to_observed): calendar times are a person's. A run of the history well
above its usual level that no entry explains is modelled as an event with times read off the
data once its peak is past (`undeclared_events`; forecaster.events.undeclared_excursions). Cut
just after a joint live event's peak, yhat is the mean in z of the show going on and the show
over (`peak_hedge`): whether its audience stays is a prior there.

Intervals are calibrated, not Prophet's own: residuals in z on the requested grid, from the
in-sample fit and from a holdout (the last `holdout` of history, refitted without it), give
conformal quantiles per lead-time bucket (the holdout residuals of that lead pooled with the
in-sample ones, one observation per day of lead in the finite-sample correction, monotone so the
band never narrows further ahead), and per daily level band (`interval_groups`: the slots of the
day ranked by fitted level, each band its own quantiles); the band is [min_c zhat_c +
q_lo(band, lead), max_c zhat_c + q_hi(band, lead)] mapped back. The quantile arithmetic is
forecaster.intervals; every setting named here is a field of forecaster.settings.ModelSettings.
With no event in or near the history, the forecast is the average of this Prophet model and the
weekly seasonal naive, unless one of the two beats the average on every ordinary day of the
holdout (holidays left out; `no_event_average`); with a daily naive (under a week of history
before the holdout, `weekly_naive_min_training`), or under two weeks there
(`no_event_average_min_training`), the lowest holdout WAPE of the three wins; `notes` say
which; on holidays, and on days the naive would copy a holiday onto, Prophet's forecast
stays. The band of the naive or the average also spans Prophet's (`mode_band_spans_prophet`).

Fine data is fitted on a coarser grid (mean per bucket, in the series' own units) so that four
weeks of 1-minute data fit in seconds; predictions are interpolated back (in z, between bucket
centres) and multiplied by the within-bucket profile learnt from the history.

Time: Prophet refuses tz-aware `ds`, so `ds` is the UTC grid converted to `calendar_tz` (default
UTC) with the zone dropped. Event regressors are computed from the tz-aware UTC grid, so they are
exact whatever `calendar_tz` is; `calendar_tz` only decides on which local dates holiday windows
fall and in which clock daily seasonality lives.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import tempfile
import warnings
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecaster import events as evf
from forecaster import intervals
from forecaster.baselines import SeasonalNaive, nearest_on_grid, seasonal_sources
from forecaster.csvio import interval_text
from forecaster.series import Forecast, Series
from forecaster.settings import ModelSettings
from forecaster.transforms import Log1pScaled
from policies.events import Event
from policies.units import plural

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)

# Fit-grid steps tried from fine to coarse; never coarser than an hour (daily shape must survive).
_FIT_STEPS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=10),
              timedelta(minutes=15), timedelta(minutes=30), HOUR)


_STAN_KEYS = ("k", "m", "delta", "sigma_obs", "beta")
_WARM_KEY = "ebbtide"  # params[_WARM_KEY]: the fit's choices a warm refit may reuse
_WARM_VERSION = 4  # 2: ebb kernels (tau, power-law alpha) in the warm state; 3: interval level bands; 4: grid neighbours
_MAX_OUTLIERS_KEPT = 2000  # outlying fit-grid points remembered per workload for a warm refit


def _peak_ratio(shape: np.ndarray, k: float) -> np.ndarray:
    """g_K(shape) = log1p(K shape) / log1p(K), the peak-ratio transform of an event's `shape` in z
    (`_features`): a multiplicative excess y = base (1 + K shape) is log1p(K shape) in z, so the
    kernel keeps its shape in y; g_K(0) = 0, g_K(1) = 1 for every K; the plain shape for K <= 0.05."""
    return np.log1p(k * shape) / np.log1p(k) if k > 0.05 else shape


def _epoch_s(index: pd.DatetimeIndex) -> list[int]:
    """Whole epoch seconds of tz-aware timestamps."""
    return (index.as_unit("ns").asi8 // 1_000_000_000).tolist()


def _stan_init(init: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Stan part of a warm start (Prophet's init takes only its own parameters)."""
    if not init:
        return None
    # Prophet compares the shapes of delta and beta with its own (`.shape`): as the lists params()
    # stores them, it raised, the fit went cold, and no warm start ever took effect.
    out = {k: (np.asarray(init[k], dtype=float) if isinstance(init[k], (list, tuple)) else init[k])
           for k in _STAN_KEYS if k in init}
    return out or None


class _NewtonFallbacks(logging.Filter):
    """Takes Prophet's "Optimization terminated abnormally. Falling back to Newton." off stderr
    (the fit goes on and stands) and counts it, for the fit's notes."""

    count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "Falling back to Newton" in record.getMessage():
            _NewtonFallbacks.count += 1
            return False
        return True


_NEWTON = _NewtonFallbacks()


def _prophet_class():
    """Import Prophet quietly: no 'Importing plotly failed', no cmdstanpy chatter; its Newton
    fallbacks counted into the notes (`_NewtonFallbacks`), not printed."""
    logging.getLogger("prophet.plot").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    for name in ("prophet", "prophet.models"):  # prophet.models logs it; a filter sees its own logger's records
        if _NEWTON not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_NEWTON)
    import cmdstanpy

    cmdstanpy.disable_logging()
    from prophet import Prophet

    return Prophet


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="prophet")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*Pandas4Warning.*")
        yield


def _fit_stan(m: Any, df: pd.DataFrame, **kwargs: Any) -> None:
    """`m.fit(df, **kwargs)` with CmdStan's output in a folder of this fit, removed when the fit
    returns or fails. By default cmdstanpy keeps every run's CSV and log (~30 kB) in one temp
    folder until the process exits; an Ebbtide fit makes 7-20 runs, so a controller refitting
    for weeks (or a fit worker, which never exits) would fill the chart's `/tmp` emptyDir and be
    evicted. Prophet passes `output_dir` on to cmdstanpy's `optimize` and reads the result
    before returning."""
    with _quiet(), tempfile.TemporaryDirectory(prefix="ebbtide-stan-") as out:
        m.fit(df, output_dir=out, **kwargs)


# --------------------------------------------------------------------------- grid helpers

def choose_fit_step(step: timedelta, span: timedelta, max_points: int) -> timedelta:
    """The finest fit step (a whole multiple of `step`, from 1 min to 1 h) with at most
    `max_points` buckets over `span`; `step` itself when it is already an hour or coarser."""
    if step >= HOUR:
        return step
    for cand in _FIT_STEPS:
        if cand < step or (cand % step) != timedelta(0):
            continue
        if span / cand <= max_points:
            return cand
    return HOUR if HOUR % step == timedelta(0) else step


def _bucket_starts(index: pd.DatetimeIndex, fit_step: timedelta) -> pd.DatetimeIndex:
    return index.tz_convert("UTC").floor(pd.Timedelta(fit_step))


def aggregate_to_grid(values: pd.Series, fit_step: timedelta) -> pd.Series:
    """Mean of `values` per `fit_step` bucket (buckets aligned to the UTC epoch), in the
    series' own units (a rate per original step). NaN points are ignored; an all-NaN bucket is
    NaN. Index: bucket starts (tz-aware UTC)."""
    starts = _bucket_starts(values.index, fit_step)
    out = values.groupby(starts).mean()
    full = pd.date_range(out.index[0], out.index[-1], freq=pd.Timedelta(fit_step))
    return out.reindex(full)


TIE_Z = 1e-4  # mean |z error| this close to the lowest is the optimiser's rounding, not evidence


def lowest_loss_kernel(kernels, losses: dict) -> evf.EbbKernel:
    """The kernel with the lowest loss (mean |z error| on the observed ebb), the shortest (then the
    exponential) among those within `TIE_Z` of it. An exact tie is common: one ebb point at the
    event's end, where every kernel is 1. A near tie too: a coarse series' event coefficients fit
    its one ebb point to ~1e-6 whatever the kernel, and the order of such losses is Stan's
    convergence noise: on a daily test series (tests/test_longtail.py) it differed between two
    fresh installs a day apart, and so did the chosen tau (384 h one day)."""
    kernels = list(kernels)
    floor = min(losses[t] for t in kernels)
    return min(t for t in kernels if losses[t] <= floor + TIE_Z)


def _not_worse(err: np.ndarray, best_err: np.ndarray) -> bool:
    """Paired check on the same points: is mean(err - best_err) within two standard errors of
    0? Then the data cannot tell this candidate from the best one."""
    d = err - best_err
    if d.size < 2:
        return True
    se = float(np.std(d, ddof=1)) / math.sqrt(d.size)
    return float(np.mean(d)) <= 2.0 * se


def _naive_forecast(train: Series, index: pd.DatetimeIndex, season: timedelta, tz: str) -> np.ndarray | None:
    """The seasonal naive (`season`, on the clock of `tz`) fitted on `train` and predicted at
    `index`; None when `train` is shorter than a season (or a season is under two steps)."""
    if (season / train.step) < 2 or len(train) < season / train.step:
        return None
    try:
        return SeasonalNaive(season, tz=tz).fit(train).predict(index).yhat.to_numpy()
    except ValueError:
        return None


def long_tau_with_evidence(best: evf.EbbKernel, sse: dict[evf.EbbKernel, float], resid_sd: float,
                           centre: timedelta) -> evf.EbbKernel:
    """The ebb kernel to forecast with (`ModelSettings.long_tau_needs_evidence`), pure.

    `best` has the lowest score on the observed ebb; `sse` is each scored kernel's sum of
    squared z errors on the ebb points (best's included); `resid_sd` the noise sd in z;
    `centre` the prior's tau. When best's tau is longer than `centre`, the kernels of best's
    family (same power-law alpha) whose Gaussian log-likelihood ratio against best,
    (sse[k] - sse[best]) / (2 resid_sd^2), is at most 1/2 are indistinguishable from it, and
    the one nearest `centre` in log tau (ties: the shorter) is returned. Invariants: the
    result is best's family, its tau within [centre^2 / best.tau, best.tau] (never longer
    than best), its ratio at most 1/2; best itself when its tau <= centre or resid_sd is not
    > 0."""
    if best.tau <= centre or not resid_sd > 0:
        return best
    within = [k for k, v in sse.items()
              if k.alpha == best.alpha and (v - sse[best]) / (2.0 * resid_sd * resid_sd) <= 0.5]
    return min(within, key=lambda k: (abs(math.log(k.tau / centre)), k.tau))


def zero_outages(values: pd.Series, step: timedelta, min_run: timedelta, typical: float) -> np.ndarray:
    """Which points of `values` (a regular series, NaN = missing) are a collection outage read
    as zeros (`ModelSettings.zero_outage_typical`), pure: runs of exact zeros longer than
    `min_run` with an observed non-zero value after them, where at least `typical` of the
    observed values at the same times 1 and 7 days before and after (outside the run) are not
    zero."""
    v = values.to_numpy(dtype=float)
    mask = np.zeros(v.size, dtype=bool)
    if typical <= 0 or not v.size:
        return mask
    zero = v == 0.0
    later_data = np.flip(np.maximum.accumulate(np.flip(np.isfinite(v) & ~zero)))  # a non-zero at or after i
    shifts = [int(round(k * timedelta(days=d) / step)) for d in (1, 7) for k in (-1, 1)]
    for i, j in evf.true_runs(zero):
        if (j - i) * step > min_run and j < v.size and later_data[j]:
            at = np.concatenate([np.arange(i, j) + o for o in shifts])
            at = at[(at >= 0) & (at < v.size) & ((at < i) | (at >= j))]
            seen = v[at][np.isfinite(v[at])]
            if seen.size and float(np.mean(seen != 0.0)) >= typical:
                mask[i:j] = True
    return mask


def _robust_sd(r: np.ndarray) -> float:
    """Robust standard deviation of finite residuals `r`: 1.4826 x their median absolute
    deviation from the median (the sd for Gaussian noise, unmoved by a few outliers)."""
    return 1.4826 * float(np.median(np.abs(r - np.median(r))))


def _window_dates(holidays: pd.DataFrame) -> dict[date, str]:
    """Local dates (`calendar_tz`) covered by a holiday window of a Prophet holidays frame
    (forecaster.events.holidays_frame: holiday-kind events and `country_holidays`), with the
    holiday's name (the first window listed on a date)."""
    out: dict[date, str] = {}
    for row in holidays.itertuples(index=False):
        for k in range(int(row.lower_window), int(row.upper_window) + 1):
            out.setdefault((row.ds + pd.Timedelta(days=k)).date(), str(row.holiday))
    return out


def single_beats_average_daily(y: np.ndarray, forecasts: dict[str, np.ndarray],
                               days: np.ndarray) -> tuple[str, str]:
    """(`"blend"` or the name of one of the two `forecasts`, a note) for the no-event choice
    (`ModelSettings.no_event_average`), pure: the average of the two unless one of them has a
    lower WAPE than the average on every day of `days` (the local date of each point of `y`),
    over at least two days. The average's absolute error is at most the mean of the two (the
    triangle inequality), so both cannot win every day."""
    (a, fa), (b, fb) = forecasts.items()
    avg = 0.5 * (fa + fb)
    uniq = list(dict.fromkeys(days))
    if len(uniq) < 2:
        return "blend", " (the average: under two days to compare on)"
    wins = {a: 0, b: 0}
    for d in uniq:
        m = days == d
        w_avg = _wape(y[m], avg[m])
        for name, f in ((a, fa), (b, fb)):
            wins[name] += _wape(y[m], f[m]) < w_avg
    for name in (a, b):
        if wins[name] == len(uniq):
            return name, f" (it beat the average on each of the {len(uniq)} days)"
    return "blend", (f" (the average unless one beats it on every day: {a} on {wins[a]}, "
                     f"{b} on {wins[b]} of {len(uniq)})")


def recent_days_depart(z: np.ndarray, per_day: int, k: float, days: int = 7,
                       min_pairs: int = 7) -> tuple[bool, str]:
    """Is one of the last `days` days of `z` (a regular history in the model's transform,
    `per_day` points a day, NaN = missing) unlike the same day a week before it, beyond the
    usual week-on-week change? (`ModelSettings.no_event_average_departure`), pure. With w the
    points of a week, the week-on-week moves z[t] - z[t - w] are cut into days ending at the
    last point; d_j is the mean move of day j (0 = the last), over the points observed both
    then and a week before (none with under half of them: a masked burst or gap then does not
    move the day by the hours it leaves out). A day j < `days` departs
    when d_j is more than `k` robust sd (1.4826 MAD) from the median of the earlier d_j
    (j >= `days`). False with fewer than `min_pairs` earlier d_j or a zero spread. Returns
    (departs, a note naming the furthest day)."""
    z = np.asarray(z, dtype=float)
    w = 7 * per_day
    n = (len(z) - w) // per_day if per_day >= 1 else 0
    if n < days + min_pairs:
        return False, ""
    move = z[w:] - z[:-w]
    rows = move[len(move) - n * per_day:].reshape(n, per_day)[::-1]  # row 0: the last day
    seen = np.isfinite(rows)
    count = seen.sum(axis=1)
    d = np.where(count >= 0.5 * per_day, np.where(seen, rows, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
    earlier = d[days:][np.isfinite(d[days:])]
    recent = d[:days]
    if not np.isfinite(recent).any() or earlier.size < min_pairs:
        return False, ""
    centre, sd = float(np.median(earlier)), _robust_sd(earlier)
    if sd <= 0:
        return False, ""
    score = np.where(np.isfinite(recent), np.abs(recent - centre) / sd, -np.inf)
    j = int(np.argmax(score))
    ago = "the last day" if j == 0 else f"the day {j} day{'s' if j > 1 else ''} before the last"
    return bool(score[j] > k), (f"{ago}'s level moved {float(recent[j]):+.3f} in z from a week before, "
                                f"{float(score[j]):.1f} robust sd from the {earlier.size} earlier days' "
                                f"week-on-week moves")


def level_break(d: np.ndarray, k: float, days: int = 2, max_age: int = 7, min_days: int = 7,
                before: int = 3) -> tuple[bool, float, int]:
    """Did the level break in the last `max_age` days of the daily level misfits `d` (oldest
    first, NaN = no clean day) and hold for at least `days`? (`ModelSettings.level_break_sigma`)
    Pure. For each age j from `days` to `max_age`, the last j days are tested against the
    `before` days before them (the level before the break, their median). The scale is how far
    the misfit moves from one day to the next: the robust sd (1.4826 MAD) of the day-to-day
    changes of the days before the last j (at least `min_days` finite pairs, a non-zero
    spread), so a level that wanders (a flat trend under a drifting audience) is not read as a
    break, and one that jumps is. A break when each of the last j days lies more than `k` such
    sd from that median, all on the same side, and they differ from one another by at most `k`
    sd: a level that jumped and held, not one day off (an undeclared holiday, a bad day) nor an
    excursion rising or ebbing through them. `k` <= 0 never. Returns (breaks, the smallest jump
    of those days in sd, the break's age j in days; 0s when none)."""
    d = np.asarray(d, dtype=float)
    if k <= 0 or days < 1:
        return False, 0.0, 0
    for age in range(days, max(max_age, days) + 1):
        if d.size < age + before or not np.isfinite(d[len(d) - age:]).all():
            break
        last, earlier = d[len(d) - age:], d[:len(d) - age]
        ref = earlier[len(earlier) - before:]
        ref = ref[np.isfinite(ref)]
        steps = np.diff(earlier)
        steps = steps[np.isfinite(steps)]
        if not ref.size or steps.size < min_days:
            break
        sd = _robust_sd(steps)
        if sd <= 0:
            continue
        jump = (last - float(np.median(ref))) / sd
        score = float(np.min(np.abs(jump)))
        if score > k and (np.all(jump > 0) or np.all(jump < 0)) and float(np.ptp(last)) <= k * sd:
            return True, score, age
    return False, 0.0, 0


def _wape(y: np.ndarray, yhat: np.ndarray) -> float:
    m = np.isfinite(y) & np.isfinite(yhat)
    den = np.abs(y[m]).sum()
    return float(np.abs(y[m] - yhat[m]).sum() / den) if den > 0 else math.inf


# --------------------------------------------------------------------------- the model

@dataclass
class _Fitted:
    """One fitted Prophet model on the fit grid, with its event time constants."""

    prophet: Any
    taus: dict[str, timedelta]
    columns: tuple[str, ...]
    carried: tuple[tuple[str, float], ...] = ()
    """(event, w): the event's negative `inside` effect is carried into its ebb at prediction
    time with weight w in (0, 1] (`ModelSettings.ebb_start_cap`)."""
    pool: "_PooledHoliday | None" = None
    """The pooled public-holiday effect learnt with this fit (`ModelSettings.pooled_holidays`)."""
    pool_off: bool = False
    """Predict without the pooled holiday effect (`ModelSettings.pooled_holiday_band`)."""
    borrowed: tuple[tuple[str, tuple[tuple[float, float, float, float], ...]], ...] = ()
    """(unseen event, ((a, b, K, w), ...) per donor): the fitted shape coefficient a, inside
    coefficient b, peak ratio K and ebb-start carry w (0: none) of each seen event of its kind
    (`ModelSettings.unseen_borrows_effect`); their mean effect is added at prediction."""
    borrow_off: bool = False
    """Predict without the borrowed effects (the interval spans both)."""
    ended: tuple[str, ...] = ()
    """Events whose columns are zero after the history's end: the forecast as if they were over
    at the cut (`ModelSettings.peak_hedge`)."""
    lifted: tuple[tuple[str, float, int], ...] = ()
    """(unseen event, lift, donors set aside): the events of `borrowed` whose one entry comes from
    their calendar `lift` hint (`_lift_entry`), not from seen events, with how many seen events
    of their kind would have lent their effect otherwise (`unseen_borrows_effect`)."""


@dataclass(frozen=True)
class _EbbChoice:
    """The ebb kernel chosen for the events without an `ebb` hint (`_choose_ebb`), and the fits
    and scores the hedges and the band read."""

    fits: dict[evf.EbbKernel | None, _Fitted]
    """Every Prophet fit made, by kernel (None: no free event)."""
    best: evf.EbbKernel | None
    """The forecast's kernel."""
    plausible: list[evf.EbbKernel | None]
    """Kernels the band spans (the best among them)."""
    losses: dict[evf.EbbKernel | None, float]
    """Mean |z error| on the observed ebb of each scored kernel."""
    family: evf.EbbKernel | None
    """`ebb_family_hedge`: the other family's best, as good as the best."""
    neighbours: list[evf.EbbKernel]
    """In `plausible` only as the best's grid neighbours (`band_spans_neighbours`)."""
    hedge_kernels: list[evf.EbbKernel]
    """`settle_unheld_hedge`: kernels refitted with a level not yet held."""
    mask: np.ndarray
    """Fit-grid points of observed ebb the kernels were scored on."""
    n_points: int
    """How many (`mask.sum()`)."""


@dataclass(frozen=True)
class _PooledHoliday:
    """The pooled public-holiday effect of one fit: `by_hour[h]` is added (in z) at local hour
    h of every pooled holiday whose name is not in `seen` (24 values; an hour no seen holiday
    observed gets the mean of the others). `seen_days` are the days it was learnt on."""

    by_hour: np.ndarray
    seen: frozenset[str]
    seen_days: tuple[date, ...]


class EbbtideForecaster:
    """Event-aware Prophet forecaster of demand (see the module docstring for the model).

    `fit(history, init=None)` returns self; `predict(index)` may be called any number of times
    after one fit, for any tz-aware timestamps after the history (normally on its grid).
    Forecasts are >= 0 with yhat_lower <= yhat <= yhat_upper; equal inputs give equal outputs.
    """

    name = "ebbtide"

    def __init__(self, events: tuple[Event, ...] | list[Event] = (), settings: ModelSettings | None = None):
        self.events = tuple(events)
        self.settings = settings or ModelSettings()
        self._fitted_ok = False
        self._holiday_days: dict[date, str] = {}
        self._level_broke = False
        self._hedge: _Fitted | None = None  # `settle_unheld_hedge`: the fit with a level not yet held
        self._hedge_mean = False  # ... which fits the ebb better: yhat halfway to it
        self._ended: _Fitted | None = None  # `peak_hedge`: the best fit with the fresh peaks' events over
        self._family: _Fitted | None = None  # `ebb_family_hedge`: the other kernel family's best, as good
        self._ceiling: tuple[float, tuple[str, ...]] | None = None
        self._ramp_caps: tuple[tuple[Event, float], ...] = ()  # `ramp_ceiling`: (occurrence, cap)
        self._lift_used: frozenset[str] = frozenset()  # events sized by their `lift` in the chosen fit
        self._pool_days: dict[date, str] = {}

    # ---------------------------------------------------------------- public API
    @property
    def params(self) -> dict[str, Any]:
        """Stan parameters of the chosen fit (k, m, delta, sigma_obs, beta) and, under
        "ebbtide", the choices a warm refit may reuse (tau, holdout calibration; see
        `ModelSettings.warm_reuse`): pass them back as `fit(history, init=...)` or
        `ModelSettings(init=...)` to warm-start the next refit. Plain data (JSON-serialisable)."""
        self._need_fit()
        p = self._best.prophet.params
        out: dict[str, Any] = {
            k: (np.asarray(p[k])[0].tolist() if np.asarray(p[k]).ndim > 1 else float(np.asarray(p[k])[0]))
            for k in _STAN_KEYS}
        out[_WARM_KEY] = self._warm_out
        return out

    @property
    def notes(self) -> tuple[str, ...]:
        self._need_fit()
        return tuple(self._notes)

    @property
    def chosen_tau(self) -> dict[str, timedelta]:
        """Ebb time constant (exponential) or time scale (power law) per modelled event
        (calendar name); `chosen_ebb` says which kernel."""
        self._need_fit()
        return {n: evf.as_kernel(t).tau for n, t in self._best.taus.items()}

    @property
    def chosen_ebb(self) -> dict[str, evf.EbbKernel]:
        """Ebb kernel (tau and power-law alpha, 0 = exponential) per modelled event."""
        self._need_fit()
        return {n: evf.as_kernel(t) for n, t in self._best.taus.items()}

    def fit(self, history: Series, init: dict[str, Any] | None = None) -> "EbbtideForecaster":
        s = self.settings
        init = init if init is not None else s.init
        self._hedge, self._hedge_mean, self._family, self._ended = None, False, None, None
        values = history.values.astype(float)
        values = values[values.index > history.end - s.lookback]
        if not np.isfinite(values.to_numpy()).any():
            raise ValueError(f"ebbtide: history {history.name!r} has no observed values in the last "
                             f"{interval_text(s.lookback)}")
        self._step = history.step
        self._last = history.end
        notes: list[str] = []
        newton_before = _NewtonFallbacks.count
        outage = zero_outages(values, history.step, s.outlier_max_run, s.zero_outage_typical)
        self._outage_s = np.asarray(_epoch_s(values.index[outage]), dtype=np.int64)
        if outage.any():
            values = values.mask(outage)
            notes.append(f"collection outage: {int(outage.sum())} points in runs of zeros longer than "
                         f"{interval_text(s.outlier_max_run)}, where the same times a day and a week away are not "
                         f"zero, treated as missing (`zero_outage_typical`)")
        # The fit starts at the first observed point: a lookback that opens on a long hole (a new
        # service, a metric that read 0 before launch) would otherwise count as history, switch on
        # cycles the data cannot show, and extrapolate them (2 days after a 17-day hole: 4e32).
        values = values[values.index >= values.index[np.isfinite(values.to_numpy())][0]]
        span = history.end - values.index[0] + history.step
        self._fit_step = s.fit_step or choose_fit_step(history.step, span, s.max_fit_points)
        if self._fit_step % history.step != timedelta(0):
            raise ValueError(f"ebbtide: fit_step {interval_text(self._fit_step)} is not a multiple of the series "
                             f"step {interval_text(history.step)}")
        self._tf = Log1pScaled.fit(values.to_numpy(), s.scale_fraction)
        coarse = aggregate_to_grid(values, self._fit_step)
        self._profile = self._within_bucket_profile(values, coarse)
        notes.append(f"transform {self._tf.describe()}; fit grid {interval_text(self._fit_step)} "
                     f"({int(coarse.notna().sum())} points over {interval_text(span)})"
                     + (f", mapped back to {interval_text(history.step)}" if self._fit_step != history.step else ""))

        hist_start = values.index[0].to_pydatetime()
        hist_end = history.end.to_pydatetime()
        self._occ = evf.regressor_events(self.events, hist_start - s.ebb_span, hist_end + s.horizon_hint,
                                         s.calendar_tz)
        self._occ = [e for e in self._occ if e.end + s.ebb_span > hist_start]
        if s.event_align_within > timedelta(0):
            self._occ, moved = evf.align_to_observed(self._occ, coarse, self._fit_step, s.event_align_within,
                                                     s.event_align_min_ratio, s.ebb_span)
            notes.extend(moved)
        flat = self._flat_events(coarse, notes)
        self._unmodelled_excursion = False
        if s.undeclared_note_ratio > 0:
            self._occ = self._undeclared(coarse, notes)
        self._set_holidays(evf.holidays_frame((*self.events, *flat), hist_start, hist_end + s.horizon_hint,
                                              tz=s.calendar_tz, country=s.country_holidays))
        self._pool_days = (evf.pooled_holiday_days(s.country_holidays, hist_start, hist_end + s.horizon_hint)
                           if s.pooled_holidays and s.country_holidays else {})
        self._span_days = span / DAY
        self._coarse = coarse

        # Which events have a fixed tau (hint) and which share the candidate one.
        names = sorted({evf.base_name(e.name) for e in self._occ})
        hinted = {evf.base_name(e.name): e.ebb for e in self.events if e.ebb is not None}
        self._peak_excess = {k: max(v, 0.0) for k, v in self._estimate_peak_excess(coarse).items()}
        z = self._tf.forward(coarse.to_numpy())
        # With `settle_two_stage`, the outlier screen and the tau candidates are fitted WITHOUT the
        # settle level, which is added afterwards for the chosen tau (`_settle_refits`; see the
        # setting for what was measured).
        self._use_settle = not s.settle_two_stage
        structure = self._structure_key(names, hinted, history)
        warm = self._warm_state(init, structure)
        stan_init = _stan_init(init)
        self._kernels = self._kernel_grid(history.step)
        mid = self._prior_centre()
        screen_tau = warm["best_tau"] if warm and warm.get("best_tau") in self._kernels else mid
        screen_taus = {n: hinted.get(n) or screen_tau for n in names}
        z = self._premask_outliers(coarse.index, z, warm, notes)
        z, screen_fit = self._screen_outliers(coarse, z, screen_taus, stan_init, notes)
        self._outliers_s = _epoch_s(coarse.index[np.isnan(z) & coarse.notna().to_numpy()])
        observed = np.isfinite(z)

        ebb = self._choose_ebb(coarse, z, observed, names, hinted, screen_fit, screen_tau, warm, stan_init,
                               hist_end, notes)
        fits, best_tau, plausible = ebb.fits, ebb.best, ebb.plausible
        self._event_size_notes(names, hinted, fits[best_tau], notes)
        if not names:
            notes.append("no sale/joint_live event in or near the history: seasonal model only")
        if s.settle_level and s.settle_two_stage and names:
            self._settle_refits(fits, [best_tau, *plausible], names, hinted, coarse, z, observed, stan_init)
        self._best = fits[best_tau]
        self._family = self._family_hedge(fits, best_tau, ebb.family, ebb.losses, notes)
        self._ended = self._peak_hedge(hist_end, notes)
        self._hedge, self._hedge_mean = self._unheld_settle_fit(coarse.index, z, ebb.hedge_kernels, names, hinted,
                                                                observed, ebb.mask, stan_init, notes)
        self._pool_notes(hist_end, notes)
        if self._best.carried:
            notes.append(f"ebb starts at the event's fitted level at its end (at least the level without it) "
                         f"for {', '.join(n for n, _ in self._best.carried)}, not where the peak's shape alone "
                         f"would put it: the ebb's own height is not observed yet (< {interval_text(s.min_tail)} "
                         f"of ebb; `ebb_start_cap` lowers it, `ebb_start_at_event_level` raises it)")
        if any(c.endswith(":settle") for c in self._best.columns):
            notes.append("new peace level after the ebb (settle regressor) learnt from the observed tail")
        self._plausible = [fits[t] for t in plausible]
        self._neighbour = [t in ebb.neighbours for t in plausible]

        # Calibration (and, with no event around, the choice against the seasonal naive).
        self._mode = "prophet"
        self._calibrate(history, values, coarse, z, best_tau, names, hinted, stan_init, notes, warm)
        self._warm_out = {"structure": structure, "n_ebb": ebb.n_points,
                          "best_tau_s": best_tau.tau.total_seconds() if best_tau is not None else None,
                          "best_alpha": best_tau.alpha if best_tau is not None else None,
                          "plausible_s": [t.tau.total_seconds() for t in plausible if t is not None],
                          "plausible_alpha": [t.alpha for t in plausible if t is not None],
                          "neighbour_s": [t.tau.total_seconds() for t in ebb.neighbours],
                          "neighbour_alpha": [t.alpha for t in ebb.neighbours],
                          "family_s": ebb.family.tau.total_seconds() if self._family is not None else None,
                          "family_alpha": ebb.family.alpha if self._family is not None else None,
                          "calibration": self._calibration_state,
                          "outliers_s": self._outliers_s[-_MAX_OUTLIERS_KEPT:]}
        self._lift_used = frozenset(n for n, _, _ in self._best.lifted)
        self._ceiling = self._ebb_ceiling(values, hist_end)
        self._ramp_caps = self._ramp_ceiling(values, hist_end)
        if (newton := _NewtonFallbacks.count - newton_before) > 0:
            notes.append(f"Prophet's LBFGS optimiser ended abnormally in {plural(newton, 'run')} of this fit, "
                         "which fell back to Newton (the fit stands)")
        self._notes = notes
        self._fitted_ok = True
        return self

    def _choose_ebb(self, coarse: pd.Series, z: np.ndarray, observed: np.ndarray, names: list[str],
                    hinted: dict[str, timedelta], screen_fit: _Fitted | None, screen_tau: evf.EbbKernel,
                    warm: dict | None, stan_init: dict | None, hist_end: datetime, notes: list[str]) -> _EbbChoice:
        """The ebb kernel of the events without an `ebb` hint (the free ones), and every fit it
        took: one Prophet fit per candidate kernel, scored on the observed ebb (module docstring);
        with none observed yet, the prior's centre. `screen_fit` is the outlier screen's fit at
        `screen_tau`, reused when it masked nothing. Notes say why."""
        s = self.settings
        free = [n for n in names if n not in hinted]
        free_occ = [e for e in self._occ if evf.base_name(e.name) in free]
        mid = self._prior_centre()
        fits: dict[evf.EbbKernel | None, _Fitted] = {}
        hedge_kernels: list[evf.EbbKernel] = []  # `settle_unheld_hedge`: refitted with a level not yet held
        losses: dict[evf.EbbKernel | None, float] = {}
        abs_err: dict[evf.EbbKernel | None, np.ndarray] = {}
        z_in: dict[evf.EbbKernel | None, np.ndarray] = {}  # in-sample z of each scored kernel
        below_tail: list[evf.EbbKernel] = []
        family: evf.EbbKernel | None = None  # `ebb_family_hedge`: the other family's best, as good as best_tau
        neighbours: list[evf.EbbKernel] = []  # in `plausible` only as the best's grid neighbours
        ebb_mask = self._ebb_seen(coarse.index, free_occ) & observed
        n_ebb = int(ebb_mask.sum())
        candidates, kept = self._tau_candidates(free, n_ebb, warm, notes)
        if screen_fit is not None:
            # No outlier was masked: the screening fit IS the fit for its tau (same data, taus, init).
            fits[screen_tau if free else None] = screen_fit
        for tau in candidates:
            if tau not in fits:
                fits[tau] = self._fit_prophet(coarse.index, z, {n: hinted.get(n) or tau for n in names}, stan_init)
            if tau is not None and n_ebb and kept is None:
                zin = z_in[tau] = self._predict_z(fits[tau], coarse.index)
                abs_err[tau] = np.abs(z[ebb_mask] - zin[ebb_mask])
                losses[tau] = float(np.mean(abs_err[tau]))
                if s.settle_floor and self._settle_below_tail(fits[tau], coarse.index, observed):
                    below_tail.append(tau)
        if free and kept is not None:
            best_tau, plausible = kept
            neighbours = [t for t in (warm or {}).get("neighbours", []) if t in plausible]
            family = (warm or {}).get("family") if (warm or {}).get("family") in plausible else None
        elif free and n_ebb:
            def best_of(kernels):  # lowest mean |z error| on the ebb, ties to the shorter tau
                return lowest_loss_kernel(kernels, losses)

            allowed = [t for t in candidates if t not in below_tail]
            best_tau = best_of(allowed or candidates)
            if s.long_tau_needs_evidence:
                seen = self._own_ebb_points(coarse.index, free_occ, ebb_mask, hist_end) if s.long_tau_own_ebb else n_ebb
                best_tau = self._long_tau_evidence(best_tau, allowed or candidates, abs_err, seen,
                                                   z - z_in[best_tau], coarse.index, free, notes,
                                                   latest_only=seen < n_ebb)
            plausible = [t for t in allowed if _not_worse(abs_err[t], abs_err[best_tau])] or [best_tau]
            exp_allowed = [t for t in allowed if t.alpha == 0]
            if s.power_needs_evidence and best_tau.alpha > 0 and exp_allowed:
                best_exp = best_of(exp_allowed)
                if best_exp in plausible:  # the power law is not clearly better: keep the exponential
                    best_tau = best_exp
            hedge_kernels = [t for t in allowed if t.alpha == 0 or s.power_settle]
            others = [t for t in allowed if t.alpha != best_tau.alpha]
            if s.ebb_family_hedge and others and best_tau in allowed:
                other = best_of(others)
                if s.long_tau_needs_evidence:  # the same rule as the best's: a long tau needs evidence
                    other = self._long_tau_evidence(other, others, abs_err, seen, z - z_in[other], coarse.index,
                                                    free, [], latest_only=seen < n_ebb)
                if _not_worse(abs_err[other], abs_err[best_tau]):
                    family = other
                    if other not in plausible:
                        plausible.append(other)
            if s.band_spans_neighbours:
                same = sorted((t for t in candidates if t.alpha == best_tau.alpha), key=lambda t: t.tau)
                at = same.index(best_tau)
                for nb in same[max(at - 1, 0):at + 2]:
                    if nb in fits and nb not in below_tail and nb not in plausible:
                        plausible.append(nb)
                        neighbours.append(nb)
            if s.band_spans_families:
                for alpha in dict.fromkeys(t.alpha for t in allowed):
                    fam = best_of(t for t in allowed if t.alpha == alpha)
                    if fam not in plausible:
                        plausible.append(fam)
            notes.append(
                f"ebb tau for {', '.join(free)}: {best_tau.text()} (best fit over {n_ebb} observed ebb "
                f"points; plausible {', '.join(t.text() for t in plausible)}; mean |z error| "
                + ", ".join(f"{t.text()}={losses[t]:.3f}" for t in candidates) + ")")
            if neighbours:
                notes.append(f"interval reaches {s.neighbour_reach:g} of the way (in z) to the best kernel's grid "
                             f"neighbours {', '.join(t.text() for t in neighbours)}: tau is known to half a grid step")
            if below_tail:
                notes.append("not chosen, their new peace level below what the observed tail supports: "
                             + ", ".join(t.text() for t in below_tail))
            if not allowed:
                self._use_settle = False
                fits[best_tau] = self._fit_prophet(coarse.index, z, {n: hinted.get(n) or best_tau for n in names},
                                                   stan_init)
                notes.append(f"every kernel's peace level fell below the observed tail: {best_tau.text()} refitted "
                             f"without a new peace level")
        elif free:
            # No ebb observed: tau is a prior, not a fit. The forecast is the grid's geometric
            # centre and the interval spans its neighbours (a factor `prior_tau_spread` either
            # way), not the whole grid: the grid is wide so that data can choose, and spanning
            # it without data put the upper bound at 3-10x demand.
            best_tau, plausible = mid, list(candidates)
            notes.append(f"ebb tau for {', '.join(free)}: no ebb observed yet; prior centre {best_tau.text()}, "
                         f"interval spans {', '.join(t.text() for t in plausible)}")
        else:
            best_tau, plausible = None, [None]
        return _EbbChoice(fits, best_tau, plausible, losses, family, neighbours, hedge_kernels, ebb_mask, n_ebb)

    def _event_size_notes(self, names: list[str], hinted: dict[str, timedelta], fitted: _Fitted,
                          notes: list[str]) -> None:
        """Notes on what the calendar fixed (`ebb` hints) and where each event's size comes from in
        the chosen fit (`fitted`): a `lift` hint, its own history, the effects of seen events of
        its kind, or nothing to learn it from."""
        for n in names:
            if n in hinted:
                notes.append(f"ebb tau for {n}: {interval_text(hinted[n])} (from the event's `ebb` hint)")
        lifts = self._lifts()
        for n in names:
            col = f"{n}:shape"
            borrowed = dict(fitted.borrowed)
            lifted = {e: (lift, nd) for e, lift, nd in fitted.lifted}
            if col not in fitted.columns and n in lifted:
                lift, nd = lifted[n]
                notes.append(f"event {n} has no occurrence in the history: its size comes from its `lift` hint "
                             f"({lift:g}x at the peak, shape coefficient {borrowed[n][0][0]:+.2f} in z)"
                             + (f"; the hint wins over the mean fitted effect of {nd} seen event(s) of its kind "
                                f"(`unseen_borrows_effect`): it is the operator's explicit knowledge" if nd else "")
                             + "; the interval also spans the forecast without it")
            elif n in lifts and col in fitted.columns:
                notes.append(f"event {n}: its `lift` hint ({lifts[n]:g}x) is not used: the history holds its "
                             f"ramp, and the effect fitted to it is forecast (until its peak is seen, the hint "
                             f"still sets the `ramp_ceiling`)")
            elif col not in fitted.columns and n in borrowed:
                notes.append(f"event {n} has no occurrence in the history: it borrows the mean fitted effect of "
                             f"{len(borrowed[n])} seen event(s) of its kind (shape coefficient(s) "
                             + ", ".join(f"{a:+.2f}" for a, _, _, _ in borrowed[n])
                             + "; `unseen_borrows_effect`); the interval also spans the forecast without it")
            elif col not in fitted.columns:
                notes.append(f"event {n} has no occurrence in the history: its size cannot be learnt "
                             f"from data (no effect forecast: the planner sizes its ramp as ordinary "
                             f"traffic): give it a `lift` (its peak as a multiple of normal traffic, e.g. "
                             f"from last year's dashboards)")

    def _settle_refits(self, fits: dict, kernels: list, names: list[str], hinted: dict[str, timedelta],
                       coarse: pd.Series, z: np.ndarray, observed: np.ndarray, stan_init: dict | None) -> None:
        """`settle_two_stage`: the chosen and plausible `kernels`, scored without a new peace level,
        refitted with it where the history holds enough tail to learn it (`fits` updated)."""
        self._use_settle = True
        for t in dict.fromkeys(kernels):
            taus = {n: hinted.get(n) or t for n in names}
            feats = self._features(coarse.index, taus)
            if not any(self._learnable(c, feats[c].to_numpy(), observed, coarse.index)
                       for c in feats.columns if c.endswith(":settle")):
                continue  # too little tail for a new level at this tau: keep the fit
            refit = self._fit_prophet(coarse.index, z, taus, stan_init)
            if any(c.endswith(":settle") for c in refit.columns):
                fits[t] = refit

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        self._need_fit()
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise ValueError("ebbtide: predict needs a tz-aware DatetimeIndex")
        idx = index.tz_convert("UTC")
        z_best = self._fine_z(self._best, idx)
        reach = self.settings.neighbour_reach
        # The best fit is one of the plausible ones: its prediction (a Prophet predict) is reused.
        zs = [z_best + reach * (self._fine_z(f, idx) - z_best) if nb
              else z_best if f is self._best else self._fine_z(f, idx)
              for f, nb in zip(self._plausible, self._neighbour, strict=True)]
        # `ebb_start_cap` is a prior on the ebb's start, not data: the band still spans what the
        # fit itself says (the uncapped ebb), so the cap lowers yhat, never yhat_upper.
        zs += [self._fine_z(replace(f, carried=()), idx) for f in self._plausible if f.carried]
        # The pooled holiday effect is borrowed from other holidays, not observed on these days:
        # the band also spans the forecast without it (it is 0 off those days).
        if self.settings.pooled_holiday_band:
            zs += [self._fine_z(replace(f, pool_off=True), idx) for f in self._plausible if f.pool is not None]
        # A borrowed event size is a prior: the band also spans the forecast without it.
        zs += [self._fine_z(replace(f, borrow_off=True), idx) for f in self._plausible if f.borrowed]
        if self._family is not None:  # `ebb_family_hedge`: the other family's best fits as well
            z_best = 0.5 * (z_best + self._fine_z(self._family, idx))
        if self._ended is not None:  # `peak_hedge`: the event may be over at the cut
            z_end = self._fine_z(self._ended, idx)
            zs.append(z_end)
            z_best = 0.5 * (z_best + z_end)
        if self._hedge is not None:  # `settle_unheld_hedge`: the band spans both, yhat between them if it fits better
            z_h = self._fine_z(self._hedge, idx)
            zs.append(z_h)
            if self._hedge_mean:
                z_best = 0.5 * (z_best + z_h)
        shift = self._recent_at(idx)
        if shift is not None:  # `recent_level`: yhat moves, the band spans both
            z_best = z_best + shift
            zs.append(z_best)
        z_hi = np.max(zs, axis=0) + self._quantiles_at(idx, self._q_hi)
        z_lo = np.min(zs, axis=0) + self._quantiles_at(idx, self._q_lo)
        prof = self._profile_at(idx)
        yhat = self._tf.inverse(z_best) * prof
        upper = self._tf.inverse(z_hi) * prof
        lower = self._tf.inverse(z_lo) * prof
        if self.settings.uncertainty_samples > 0:
            pu, pl = self._prophet_interval(idx)
            upper = np.maximum(upper, pu * prof)
            lower = np.minimum(lower, pl * prof)
        notes = tuple(self._notes)
        if self._mode != "prophet":
            naive = self._naive.predict(idx)
            ny = naive.yhat.to_numpy()
            shift_hi = np.maximum(upper - yhat, 0.0)
            shift_lo = np.maximum(yhat - lower, 0.0)
            p_yhat, p_upper, p_lower = yhat, upper, lower
            yhat = ny if self._mode == "naive" else 0.5 * (yhat + ny)
            upper = (self._tf.inverse(self._tf.forward(yhat) + self._quantiles_at(idx, self._q_hi_mode))
                     if self._q_hi_mode is not None else yhat + shift_hi)
            lower = (self._tf.inverse(self._tf.forward(yhat) + self._quantiles_at(idx, self._q_lo_mode))
                     if self._q_lo_mode is not None else yhat - shift_lo)
            if self.settings.mode_band_spans_prophet:  # the choice rests on a few days of holdout
                upper, lower = np.maximum(upper, p_upper), np.minimum(lower, p_lower)
            off = self._naive_off_days(idx)
            if off.any():
                yhat, upper, lower = (np.where(off, p, m) for p, m in
                                      ((p_yhat, yhat), (p_upper, upper), (p_lower, lower)))
                dates = sorted(set(idx[off].tz_convert(self.settings.calendar_tz).date))
                notes += (f"Prophet's forecast, not the {self._mode}, on {int(off.sum())} points of "
                          + ", ".join(str(d) for d in dates)
                          + " (a holiday, or the day the seasonal naive would copy is one)",)
        if self._ceiling is not None:
            cap, mask = self._ceiling[0], self._ceiling_mask(idx)
            over = mask & ((yhat > cap) | (upper > cap))
            if over.any():
                yhat = np.where(mask, np.minimum(yhat, cap), yhat)
                upper = np.where(mask, np.minimum(upper, cap), upper)
                notes += (f"ebb ceiling: forecast after the end of {', '.join(self._ceiling[1])} capped at the "
                          f"highest value observed in the history ({cap:.6g}) on {int(over.sum())} of "
                          f"{len(idx)} points",)
        for e, cap in self._ramp_caps:
            mask = self._ramp_mask(idx, e)
            over = mask & ((yhat > cap) | (upper > cap))
            if over.any():
                # the lower bound keeps its ratio to yhat (an extrapolated lower bound is no floor)
                lower = np.where(mask & (yhat > cap), lower * cap / np.where(yhat > 0, yhat, 1.0), lower)
                yhat = np.where(mask, np.minimum(yhat, cap), yhat)
                upper = np.where(mask, np.minimum(upper, cap), upper)
                notes += (f"ramp ceiling: {e.name}'s ramp is seen in part, its peak not; forecast capped at "
                          f"{cap:.6g} (the history's highest value"
                          + (f" x its lift {e.lift:g}" if e.lift is not None else "")
                          + f") on {int(over.sum())} of {len(idx)} points: a size beyond it is not extrapolated "
                          f"from a partial ramp (declare `lift` when the event is expected bigger)",)
        yhat = np.clip(yhat, 0.0, None)
        upper = np.maximum(upper, yhat)
        lower = np.clip(np.minimum(lower, yhat), 0.0, None)
        frame = pd.DataFrame({"yhat": yhat, "yhat_lower": lower, "yhat_upper": upper}, index=idx)
        return Forecast(frame, model=self.name, upper_quantile=self.settings.upper_quantile,
                        lower_quantile=self.settings.lower_quantile, notes=notes)

    def _undeclared(self, coarse: pd.Series, notes: list[str]) -> list[Event]:
        """`undeclared_note_ratio` and `undeclared_events`: the occurrences to model, with an
        entry inferred for each run of the history that no calendar entry explains and whose peak
        is past (`forecaster.events.undeclared_excursions`); every such run is noted."""
        s = self.settings
        occ = list(self._occ)
        for x in evf.undeclared_excursions(coarse, self._occ, self._fit_step, s.ebb_span,
                                           s.undeclared_note_ratio, s.outlier_max_run):
            head = (f"undeclared event? the traffic stood at up to {x.ratio:.1f}x the typical level of its time "
                    f"of the week for {interval_text(x.run)} around {x.peak.isoformat()}, with no sale or joint "
                    f"live event in the calendar near it")
            if s.undeclared_events and x.fallen:
                e = x.event()
                occ.append(e)
                notes.append(f"{head}: modelled as an event {e.name} (start {e.start.isoformat()}, peak "
                             f"{e.peak.isoformat()}, end {e.end.isoformat()}, read off the history) with its own "
                             f"ebb; declare it (`events:`) to give it its real times (`undeclared_events`)")
            else:
                self._unmodelled_excursion = True
                why = ("it has not fallen from its peak yet" if s.undeclared_events
                       else "`undeclared_events` is off")
                notes.append(f"{head}: it is fitted as ordinary traffic ({why}); declare it (`events:`) to have "
                             f"its ebb modelled (`undeclared_note_ratio`)")
        return sorted(occ, key=lambda e: e.start)

    def _flat_events(self, coarse: pd.Series, notes: list[str]) -> list[Event]:
        """`flat_event_ratio`: the occurrences that brought no peak (forecaster.events.
        flat_occurrences) leave `_occ` (no ramp, ebb or settle level) and are returned as
        holiday-kind windows for the holidays frame; each is noted."""
        s = self.settings
        flat = evf.flat_occurrences(self._occ, coarse, self._fit_step, s.ebb_span, s.flat_event_ratio)
        if not flat:
            return []
        gone = {id(e) for e, _ in flat}
        self._occ = [e for e in self._occ if id(e) not in gone]
        for e, top in flat:
            notes.append(f"{e.name} ({e.kind}) brought no peak: its traffic stood at most {top:.2f}x the typical "
                         f"level of its time of the week in its window, under {s.flat_event_ratio:g}x; fitted as a "
                         f"holiday-kind date effect, with no ramp, ebb or new peace level (`flat_event_ratio`)")
        return [e.model_copy(update={"kind": "holiday", "recurrence": None}) for e, _ in flat]

    def _ebb_ceiling(self, values: pd.Series, hist_end: datetime) -> tuple[float, tuple[str, ...]] | None:
        """(cap, names) for `ebb_ceiling`: the highest value of the history, and the occurrences
        whose peak is in it (within the last point's interval: points are labelled at their start;
        their ebb is capped); None when the setting is off or none is."""
        seen = tuple(e.name for e in self._occ
                     if e.peak < hist_end + self._step and evf.base_name(e.name) not in self._lift_used)
        top = values.max(skipna=True)
        if not self.settings.ebb_ceiling or not seen or not np.isfinite(top):
            return None
        return float(top), seen

    def _ceiling_mask(self, idx: pd.DatetimeIndex) -> np.ndarray:
        """Points of `idx` in the ebb (end .. end + `ebb_span`) of an occurrence the ceiling
        covers and inside no event window (a later event may rise above any past value)."""
        names = set(self._ceiling[1]) if self._ceiling else set()
        ebbs = [e for e in self._occ if e.name in names]
        mask = (evf.ebb_windows(idx, ebbs, self.settings.ebb_span, self._step)
                & ~evf.in_or_after(idx, self._occ, timedelta(0), self._step))
        # An unseen event (its size borrowed, or from its `lift`) may rise above any past value.
        for e in self._occ:
            if e.name not in names and (self.settings.unseen_borrows_effect
                                        or evf.base_name(e.name) in self._lift_used):
                mask &= np.asarray(idx + pd.Timedelta(self._step) / 2 < pd.Timestamp(e.start))
        return mask

    def _lifts(self) -> dict[str, float]:
        """The calendar `lift` of each modelled event that has one, by calendar name."""
        return {evf.base_name(e.name): e.lift for e in self._occ if e.lift is not None}

    def _ramp_ceiling(self, values: pd.Series, hist_end: datetime) -> tuple[tuple[Event, float], ...]:
        """(occurrence, cap) for `ramp_ceiling`: each sale/joint live occurrence whose start is in
        the history (within the last point's interval) but whose peak is not, capped at the
        history's highest value times its `lift` (1 without one); () when the setting is off."""
        top = values.max(skipna=True)
        if not self.settings.ramp_ceiling or not np.isfinite(top):
            return ()
        edge = hist_end + self._step
        return tuple((e, float(top) * (e.lift or 1.0)) for e in self._occ if e.start < edge <= e.peak)

    def _ramp_mask(self, idx: pd.DatetimeIndex, e: Event) -> np.ndarray:
        """Points of `idx` in [e.start, e.end + `ebb_span`) and before the start of any other
        occurrence starting after e's start (a later event may rise above any past value)."""
        mid = idx + pd.Timedelta(self._step) / 2
        mask = np.asarray((mid >= pd.Timestamp(e.start)) & (mid < pd.Timestamp(e.end + self.settings.ebb_span)))
        for o in self._occ:
            if o.start > e.start:
                mask &= np.asarray(mid < pd.Timestamp(o.start))
        return mask

    # ---------------------------------------------------------------- internals
    def _need_fit(self) -> None:
        if not getattr(self, "_fitted_ok", False):
            raise RuntimeError("ebbtide: call fit(history) before predict/params")

    def _features(self, grid: pd.DatetimeIndex, taus: dict[str, timedelta]) -> pd.DataFrame:
        feats = evf.event_features(grid, self._occ, taus, self._fit_step,
                                   with_settle=self.settings.settle_level and self._use_settle,
                                   with_tail=self.settings.free_tail)
        if not self.settings.power_settle:
            feats = feats.drop(columns=[f"{n}:settle" for n, t in taus.items()
                                        if evf.as_kernel(t).alpha > 0 and f"{n}:settle" in feats])
        # In z (a log) a multiplicative excess y = base * (1 + K * shape) is log1p(K * shape), not
        # proportional to shape: with K the observed peak ratio, the regressor keeps the ebb's
        # exp(-t/tau) shape in y, so tau means the same as in the calendar (normalised to 0..1).
        for name, k in self._peak_excess.items():
            for col in (f"{name}:shape", f"{name}:tail"):
                if col in feats and k > 0.05:
                    feats[col] = _peak_ratio(feats[col].to_numpy(), k)
        return feats

    def _estimate_peak_excess(self, coarse: pd.Series) -> dict[str, float]:
        """K per event: (highest bucket inside an observed occurrence) / (median of the history
        outside all events) - 1, at least 0. Events never observed get 0 (plain shape)."""
        out: dict[str, float] = {}
        v = coarse.to_numpy()
        outside = ~evf.in_or_after(coarse.index, self._occ, timedelta(0), self._fit_step) & np.isfinite(v)
        base = float(np.median(v[outside])) if outside.any() else float(np.nanmedian(v))
        for e in self._occ:
            name = evf.base_name(e.name)
            m = evf.in_or_after(coarse.index, [e], timedelta(0), self._fit_step) & np.isfinite(v)
            if m.any() and base > 0:
                out[name] = max(out.get(name, 0.0), float(np.max(v[m])) / base - 1.0)
        return out

    def _frame(self, grid: pd.DatetimeIndex, taus: dict[str, timedelta], columns,
               carried: tuple[tuple[str, float], ...] = ()) -> pd.DataFrame:
        """Prophet's input frame on `grid`; for each (event, w) in `carried` (`_carried_inside`)
        the `inside` column also follows the ebb after the end (w x the shape's decay there), so
        the ebb starts at a + w b (the event's fitted level at its end, at least 0) and decays
        from it with the same kernel."""
        ds = grid.tz_convert(self.settings.calendar_tz).tz_localize(None)
        df = pd.DataFrame({"ds": ds})
        feats = self._features(grid, taus) if taus else pd.DataFrame(index=grid)
        for c in columns:
            df[c] = feats[c].to_numpy() if c in feats else 0.0
        for n, w in carried:
            ins, shp = df[f"{n}:inside"].to_numpy(), df[f"{n}:shape"].to_numpy()
            df[f"{n}:inside"] = np.where(ins > 0, ins, w * shp)  # shape is 0 before the start
        return df

    def _new_prophet(self, span_days: float):
        Prophet = _prophet_class()
        s = self.settings
        m = Prophet(
            growth="flat",
            yearly_seasonality=False, weekly_seasonality=False, daily_seasonality=False,
            holidays=self._holidays if len(self._holidays) else None,
            uncertainty_samples=s.uncertainty_samples,
            interval_width=s.upper_quantile - s.lower_quantile,
        )
        if span_days >= 2:
            m.add_seasonality("daily", period=1, fourier_order=s.daily_fourier_order)
        if span_days >= 7:
            m.add_seasonality("weekly", period=7, fourier_order=s.weekly_fourier_order)
        return m

    def _fit_prophet(self, grid: pd.DatetimeIndex, z: np.ndarray, taus: dict[str, timedelta],
                     init: dict[str, Any] | None, span_days: float | None = None, unheld: bool = False) -> _Fitted:
        feats = self._features(grid, taus) if taus else pd.DataFrame(index=grid)
        ok = np.isfinite(z)
        columns = tuple(c for c in feats.columns if self._learnable(c, feats[c].to_numpy(), ok, grid, unheld))
        df = pd.DataFrame({"ds": grid.tz_convert(self.settings.calendar_tz).tz_localize(None)})
        for c in columns:
            df[c] = feats[c].to_numpy()
        df["y"] = z
        df = df[ok].reset_index(drop=True)
        if len(df) < 2:
            raise ValueError("ebbtide: fewer than 2 observed points on the fit grid; need more history")
        m = self._new_prophet(self._span_days if span_days is None else span_days)
        self._add_regressors(m, columns)
        # LBFGS at every size: Prophet picks Newton below 100 points, which on these small fit
        # grids (daily data, a 2-day history) stopped short of the optimum and took up to 20 s per
        # fit; LBFGS reached an equal or higher posterior in ~0.1 s (Prophet still falls back to
        # Newton when LBFGS fails).
        kwargs: dict[str, Any] = {"seed": self.settings.seed, "algorithm": "LBFGS"}
        fitted = False
        if init:
            try:
                _fit_stan(m, df, init=init, **kwargs)
                fitted = True
            except Exception:  # shape mismatch with the warm start: refit cold
                m = self._new_prophet(self._span_days if span_days is None else span_days)
                self._add_regressors(m, columns)
        if not fitted:
            _fit_stan(m, df, **kwargs)
        f = _Fitted(m, dict(taus), columns, self._carried_inside(m, columns))
        f = replace(f, pool=self._pooled_effect(f, grid, z))
        borrowed, lifted = self._borrowed(f, grid)
        return replace(f, borrowed=borrowed, lifted=lifted)

    def _borrowed(self, f: _Fitted, grid: pd.DatetimeIndex) -> tuple[tuple, tuple]:
        """(`_Fitted.borrowed`, `_Fitted.lifted`) of fit `f` on the training `grid`: for each
        modelled sale/joint live event without a learnt `shape` (no occurrence observed), one
        entry from its calendar `lift` when it has one (`_lift_entry`: the operator's explicit
        knowledge wins), else the (a, b, K, w) of each event of its kind whose `shape` was learnt
        and whose peak lies in `grid` (`unseen_borrows_effect`)."""
        if not len(grid):
            return (), ()
        kinds = {evf.base_name(e.name): e.kind for e in self._occ}
        unseen = [n for n in kinds if f"{n}:shape" not in f.columns and n in f.taus]
        if not unseen:
            return (), ()
        donors_of: dict[str, tuple] = {}
        last = grid[-1] + pd.Timedelta(self._fit_step)
        seen = {evf.base_name(e.name) for e in self._occ if pd.Timestamp(e.peak) < last}
        learnt = [n for n in kinds if f"{n}:shape" in f.columns and f"{n}:inside" in f.columns and n in seen
                  and not n.startswith(evf.UNDECLARED_PREFIX)]
        if self.settings.unseen_borrows_effect and learnt:
            from prophet.utilities import regressor_coefficients

            coef = dict(zip(*(regressor_coefficients(f.prophet)[k] for k in ("regressor", "coef")), strict=True))
            carry = dict(f.carried)
            for n in unseen:
                donors_of[n] = tuple((float(coef[f"{d}:shape"]), float(coef[f"{d}:inside"]),
                                      self._peak_excess.get(d, 0.0), carry.get(d, 0.0))
                                     for d in learnt if kinds[d] == kinds[n])
        lifts = self._lifts()
        out, lifted = [], []
        for n in unseen:
            if n in lifts:
                out.append((n, (self._lift_entry(f, n, lifts[n]),)))
                lifted.append((n, lifts[n], len(donors_of.get(n, ()))))
            elif donors_of.get(n):
                out.append((n, donors_of[n]))
        return tuple(out), tuple(lifted)

    def _lift_entry(self, f: _Fitted, name: str, lift: float) -> tuple[float, float, float, float]:
        """The `borrowed` entry (a, b, K, w) that sizes the unseen event `name` by its calendar
        `lift`: at the fit-grid point of its peak p (the first point whose interval midpoint is
        at or after the peak, where `shape` reaches 1; or its neighbour before it when the
        shape is higher there, e.g. an event ending at its peak), the forecast is `lift` x the
        fit's own forecast without the event there, y0 (fitted terms, other events and the
        pooled holiday effect included; the borrowed ones not):

            a = (log1p(lift * y0 / s) - log1p(y0 / s)) / g_K(shape(p))    (z units; 0 if y0 = 0)

        with b = 0 (no separate plateau), w = 0 (no `inside` carried into the ebb) and K = lift - 1,
        the peak-ratio transform of `_features`: g_K(1) = 1 for every K, so K does not change the
        peak multiple; K = lift - 1 makes the effect y ~ y_base x (1 + (lift - 1) shape) when
        y >> s, as for a learnt event whose peak was `lift` x normal: the ramp linear in y and
        the ebb's excess decaying with the event's kernel (its `ebb` hint, else the fit's tau),
        where K = 0 would give y_base x lift ** shape, an excess falling faster than the kernel
        (lift 6, kernel at 1/e: 0.93 x y_base left instead of 5/e = 1.84). The residual profile
        and the recent-level shift are added to both forecasts alike in z afterwards
        (multiplicative in y): the multiple holds to within the log1p curvature near 0."""
        occ = self._occurrences(name)[0]
        step = pd.Timedelta(self._fit_step)
        half = step / 2
        first = (pd.Timestamp(occ.peak).tz_convert("UTC") - half).ceil(step)  # midpoint >= peak
        around = pd.DatetimeIndex([first - step, first])
        k = lift - 1.0
        shp = evf.shape(around, occ, f.taus[name], self._fit_step)
        g = _peak_ratio(shp, k)
        at = int(np.argmax(g))
        z0 = float(self._predict_z(f, around[at:at + 1])[0])
        y0 = max(float(np.expm1(z0)), 0.0)  # y0 / s
        a = (math.log1p(lift * y0) - math.log1p(y0)) / float(g[at]) if g[at] > 0 else 0.0
        return a, 0.0, k, 0.0

    def _borrow_at(self, f: _Fitted, grid: pd.DatetimeIndex) -> np.ndarray:
        """The borrowed effects of `f` in z at each point of `grid` (`_Fitted.borrowed`): per
        unseen event the mean over its donors of a g_K(shape) + b inside, inside carried along
        the ebb with w (as `_frame` does for a fitted event), g_K the peak-ratio transform of
        `_features`; never below 0 (a borrowed size adds an event's traffic: a donor's b < 0,
        the dip that ties its ramp to its level, would put the unseen ramp below normal)."""
        out = np.zeros(len(grid))
        if not f.borrowed or f.borrow_off:
            return out
        for n, donors in f.borrowed:
            occ = self._occurrences(n)
            shp = sum(evf.shape(grid, e, f.taus[n], self._fit_step) for e in occ)
            ins = sum(evf.inside(grid, e, self._fit_step) for e in occ)
            effect = np.zeros(len(grid))
            for a, b, k, w in donors:
                g = _peak_ratio(shp, k)
                effect += (a * g + b * np.where(ins > 0, ins, w * g)) / len(donors)
            out += np.maximum(effect, 0.0)
        return out

    def _pooled_effect(self, f: _Fitted, grid: pd.DatetimeIndex, z: np.ndarray) -> _PooledHoliday | None:
        """The pooled public-holiday effect of fit `f` on `grid` (`ModelSettings.pooled_holidays`):
        per local hour, the mean of z - (fitted z - its holiday terms) over the observed points
        of the seen pooled holidays outside sale/joint_live events; None when there is none."""
        if not self._pool_days:
            return None
        tz = self.settings.calendar_tz
        on = (evf.local_date_mask(grid, self._pool_days, tz) > 0) & np.isfinite(z)
        on &= ~evf.in_or_after(grid, self._occ, timedelta(0), self._fit_step)
        if not on.any():
            return None
        sel = grid[on]
        with _quiet():
            out = f.prophet.predict(self._frame(sel, f.taus, f.columns, f.carried))
        hol = out["holidays"].to_numpy() if "holidays" in out else np.zeros(len(sel))
        resid = z[on] - (out["yhat"].to_numpy() - hol)
        local = sel.tz_convert(tz)
        hours = np.asarray(local.hour)
        by_hour = np.full(24, float(np.mean(resid)))
        for h in np.unique(hours):
            by_hour[h] = float(np.mean(resid[hours == h]))
        days = tuple(sorted(set(local.date)))
        return _PooledHoliday(by_hour, frozenset(self._pool_days[d] for d in days), days)

    def _pool_at(self, f: _Fitted, grid: pd.DatetimeIndex) -> np.ndarray:
        """The pooled holiday effect of `f` in z at each point of `grid` (0 off the pooled
        holidays whose name the history did not show, and with `pool_off`)."""
        if f.pool is None or f.pool_off:
            return np.zeros(len(grid))
        days = [d for d, name in self._pool_days.items() if name not in f.pool.seen]
        mask = evf.local_date_mask(grid, days, self.settings.calendar_tz) > 0
        return np.where(mask, f.pool.by_hour[np.asarray(grid.tz_convert(self.settings.calendar_tz).hour)], 0.0)

    def _pool_notes(self, hist_end: datetime, notes: list[str]) -> None:
        """Say what the pooled holiday effect learnt and where it applies (or why it is off)."""
        s = self.settings
        if not self._pool_days:
            return
        pool = self._best.pool
        if pool is None:
            notes.append(f"pooled holiday effect: no public holiday of {s.country_holidays} on a working day "
                         f"observed in the history (unidentified): holidays ahead are forecast as ordinary days")
            return
        zone = ZoneInfo(s.calendar_tz)
        first, last = hist_end.astimezone(zone).date(), (hist_end + s.horizon_hint).astimezone(zone).date()
        ahead = [f"{d} {n}" for d, n in self._pool_days.items() if first <= d <= last and n not in pool.seen]
        notes.append(f"pooled holiday effect ({s.country_holidays}) learnt on "
                     + ", ".join(f"{d} {self._pool_days[d]}" for d in pool.seen_days)
                     + f": mean {np.mean(pool.by_hour):+.2f} in z (by hour {np.min(pool.by_hour):+.2f} .. "
                     + f"{np.max(pool.by_hour):+.2f}); applied to " + (", ".join(ahead) if ahead else "no day ahead"))

    def _carried_inside(self, m, columns: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
        """(event, w) for the events whose ebb start is capped (`ebb_start_cap`): the ebb's
        height is still tied to the peak (no `tail` column: less than `min_tail` of ebb observed),
        the shape's coefficient a > 0 and the `inside` one b < 0, so the event's fitted level at
        its end, a + b, is below a, where the ebb would otherwise start. The ebb then starts at
        max(a + b, 0) = a + w b with w = min(1, a / -b): capped at the event's level, never
        turned into a dip below the level without the event."""
        if not (self.settings.ebb_start_cap or self.settings.ebb_start_at_event_level):
            return ()
        names = [c.rpartition(":")[0] for c in columns if c.endswith(":inside")]
        names = [n for n in names if f"{n}:shape" in columns and f"{n}:tail" not in columns]
        if not names:
            return ()
        from prophet.utilities import regressor_coefficients

        coef = dict(zip(*(regressor_coefficients(m)[k] for k in ("regressor", "coef")), strict=True))
        out = []
        for n in names:
            a, b = float(coef[f"{n}:shape"]), float(coef[f"{n}:inside"])
            if self.settings.ebb_start_cap and a > 0 and b < 0:
                out.append((n, min(1.0, a / -b)))
            elif self.settings.ebb_start_at_event_level and b > 0:
                out.append((n, 1.0))  # the ebb starts at a + b, the event's level at its end
        return tuple(out)

    def _peak_hedge(self, hist_end: datetime, notes: list[str]) -> _Fitted | None:
        """`peak_hedge`: the best fit with the joint live events over at the cut whose peak is in
        the history and whose end is not (no whole bucket of their ebb observed), or None."""
        if not self.settings.peak_hedge:
            return None
        edge = hist_end + self._step
        shows = {evf.base_name(e.name) for e in self._occ
                 if e.kind == "joint_live" and e.peak < edge and e.end > hist_end}
        names = sorted(n for n in shows if f"{n}:shape" in self._best.columns)
        if not names:
            return None
        notes.append(f"peak of {', '.join(names)} seen, none of its ebb yet: its pace is a prior; the forecast is "
                     f"the mean (in z) of the event going on and the event over at the cut, the interval spans "
                     f"both (`peak_hedge`)")
        return replace(self._best, ended=tuple(names))

    def _family_hedge(self, fits: dict, best: evf.EbbKernel | None, other: evf.EbbKernel | None,
                      losses: dict, notes: list[str]) -> _Fitted | None:
        """`ebb_family_hedge`: the fit of the other kernel family's best (`other`, chosen as good
        as `best` on the observed ebb, or kept from the last fit) whose forecast yhat is averaged
        with (in z), or None. None too when the chosen fit carries a new peace level: a level seen
        holding that fits best is evidence for its kernel, and the mean with a fit without one
        (the power laws carry none, `power_settle`) would throw it away. (A power law chosen over
        an exponential with a level is hedged: a tail that stays up is what both explain.)"""
        if other is None or other == best or other not in fits:
            return None
        if any(c.endswith(":settle") for c in fits[best].columns):
            return None
        scores = (f" (mean |z error| {losses[other]:.3f} vs {losses[best]:.3f})"
                  if other in losses and best in losses else "")
        notes.append(f"the ebb's shape is not settled: {other.text()} fits the observed ebb as well as "
                     f"{best.text()}{scores}; the forecast is the mean (in z) of the two, the interval spans "
                     f"both (`ebb_family_hedge`)")
        return fits[other]

    def _unheld_settle_fit(self, grid: pd.DatetimeIndex, z: np.ndarray, kernels, names, hinted, observed,
                           ebb_mask: np.ndarray, stan_init, notes: list[str]) -> tuple[_Fitted | None, bool]:
        """`settle_unheld_hedge`: with the chosen fit holding no new peace level, each of `kernels`
        (the candidates that may carry one) refitted with a level that the observed ebb supports
        but has not shown holding yet; of those whose level is learnt and not below the observed
        tail (`settle_floor`), the one with the lowest mean |z error| on the observed ebb (None:
        no such fit), and whether it fits the ebb better than the chosen fit (the rule without
        `settle_needs_held_level` would then have forecast its level), so yhat moves halfway."""
        s = self.settings
        if (not (s.settle_level and s.settle_needs_held_level and s.settle_unheld_hedge and names and kernels
                 and self._use_settle and ebb_mask.any())
                or any(c.endswith(":settle") for c in self._best.columns)):
            return None, False

        def loss_of(fit: _Fitted) -> float:
            return float(np.mean(np.abs(z[ebb_mask] - self._predict_z(fit, grid)[ebb_mask])))

        best, best_loss = None, math.inf
        for kernel in kernels:
            taus = {n: hinted.get(n) or kernel for n in names}
            feats = self._features(grid, taus)
            if not any(self._learnable(c, feats[c].to_numpy(), observed, grid, unheld=True)
                       for c in feats.columns if c.endswith(":settle")):
                continue
            fit = self._fit_prophet(grid, z, taus, stan_init, unheld=True)
            if not any(c.endswith(":settle") for c in fit.columns) or (
                    s.settle_floor and self._settle_below_tail(fit, grid, observed)):
                continue
            loss = loss_of(fit)
            if loss < best_loss:
                best, best_loss = fit, loss
        if best is None:
            return None, False
        mean = best_loss < loss_of(self._best)
        if mean:
            notes.append(f"a new peace level fits the observed ebb better than the chosen fit but is not yet seen "
                         f"holding for {interval_text(s.min_settle_tail)}: the forecast is the mean (in z) of the "
                         f"fits with and without it, the interval spans both (`settle_unheld_hedge`)")
        else:
            notes.append(f"a new peace level is learnable from the observed ebb but not yet seen holding for "
                         f"{interval_text(s.min_settle_tail)}: the interval also spans the fit with it "
                         f"(`settle_unheld_hedge`)")
        return best, mean

    def _learnable(self, col: str, x: np.ndarray, ok: np.ndarray, grid: pd.DatetimeIndex,
                   unheld: bool = False) -> bool:
        """Can the history identify this regressor's coefficient? A column zero or constant over
        the observed points has nothing to learn; `tail` needs `min_tail` of observed ebb;
        `settle` needs `min_settle_tail` of it and half of the move to the new level observed
        (settle >= 0.5, i.e. at least tau * ln 2 of tail), else it would extrapolate a few
        hours' misfit for the whole horizon; with `settle_needs_held_level` (and not `unheld`,
        the hedge's refits) only the ebb from half of the move on counts. With
        `ebb_until_next_event` only the ebb observed before the next event's start counts for both."""
        if not ok.any():
            return False
        xo = x[ok]
        if np.abs(xo).max() <= 1e-6 or np.ptp(xo) <= 1e-6:
            return False
        name, _, kind = col.rpartition(":")
        if kind in ("settle", "tail") and self.settings.ebb_until_next_event:
            xo = x[ok & self._ebb_seen(grid, self._occurrences(name))]
            if not xo.size:
                return False
        if kind == "settle":
            held = xo >= 0.5 if self.settings.settle_needs_held_level and not unheld else xo > 0
            return (float(xo.max()) >= 0.5
                    and int(np.sum(held)) * self._fit_step >= self.settings.min_settle_tail)
        if kind == "tail":
            return int(np.sum(xo > 0)) * self._fit_step >= self.settings.min_tail
        return True

    def _occurrences(self, name: str) -> list:
        """The modelled occurrences (`_occ`) of the event named `name` (its base name)."""
        return [e for e in self._occ if evf.base_name(e.name) == name]

    def _ebb_seen(self, grid: pd.DatetimeIndex, occ) -> np.ndarray:
        """Mask of `grid` (fit-grid points) where the ebb of the occurrences `occ` is observable:
        `ebb_span` after each end, cut at the next event's start with `ebb_until_next_event`."""
        if self.settings.ebb_until_next_event:
            return evf.clean_ebb_windows(grid, occ, self._occ, self.settings.ebb_span, self._fit_step)
        return evf.ebb_windows(grid, occ, self.settings.ebb_span, self._fit_step)

    def _settle_below_tail(self, f: _Fitted, grid: pd.DatetimeIndex, observed: np.ndarray) -> bool:
        """Would this fit's new peace level take the forecast below what the observed tail
        supports (`settle_floor`)? Per event with a learnt `settle`: its level (the settle
        coefficient, in z) against min(0, the event's whole fitted effect at its last observed
        ebb point) - `settle_floor_tol`."""
        cols = [c for c in f.columns if c.endswith(":settle")]
        if not cols:
            return False
        from prophet.utilities import regressor_coefficients

        coef = dict(zip(*(regressor_coefficients(f.prophet)[k] for k in ("regressor", "coef")), strict=True))
        feats = self._features(grid, f.taus)
        for col in cols:
            name = col.rpartition(":")[0]
            occ = self._occurrences(name)
            seen = np.flatnonzero(self._ebb_seen(grid, occ) & observed)
            if not seen.size:
                continue
            last = seen[-1]
            effect_last = sum(coef[c] * float(feats[c].iloc[last]) for c in f.columns if c.startswith(name + ":"))
            if coef[col] < min(0.0, effect_last) - self.settings.settle_floor_tol:
                return True
        return False

    def _add_regressors(self, m, columns) -> None:
        for c in columns:
            if c.endswith(":settle"):
                m.add_regressor(c, standardize=False, prior_scale=self.settings.settle_prior_scale)
            else:
                m.add_regressor(c, standardize=False)

    def _screen_outliers(self, coarse: pd.Series, z: np.ndarray, taus: dict[str, timedelta],
                         init, notes: list[str]) -> tuple[np.ndarray, _Fitted | None]:
        """z with short outlying runs outside events set to NaN (see `outlier_sigma`), and the
        screening fit when nothing was masked (it is then the fit of z with `taus`: the caller
        reuses it instead of fitting the same data again)."""
        s = self.settings
        if s.outlier_sigma <= 0 or np.isfinite(z).sum() < 48:
            return z, None
        try:
            f = self._fit_prophet(coarse.index, z, taus, init)
        except ValueError:
            return z, None
        r = z - self._predict_z(f, coarse.index)
        ok = np.isfinite(r)
        med = float(np.median(r[ok]))
        sd = _robust_sd(r[ok])
        if not sd > 0:
            return z, f
        flag = ok & (np.abs(r - med) > s.outlier_sigma * sd)
        flag &= ~evf.in_or_after(coarse.index, self._occ, s.ebb_span, self._fit_step)
        max_run = max(1, int(s.outlier_max_run / self._fit_step))
        out = z.copy()
        n = 0
        for i, j in evf.true_runs(flag):
            if j - i <= max_run:
                out[i:j] = np.nan
                n += j - i
        if n:
            notes.append(f"outliers: {n} fit-grid points outside events treated as missing for fitting "
                         f"(|z residual| > {s.outlier_sigma:g} robust sd, runs <= {interval_text(s.outlier_max_run)})")
            return out, None
        return z, f

    def _predict_z(self, f: _Fitted, grid: pd.DatetimeIndex) -> np.ndarray:
        df = self._frame(grid, f.taus, f.columns, f.carried)
        if f.ended:
            after = np.asarray(grid > pd.Timestamp(self._last))
            for c in f.columns:
                if c.rpartition(":")[0] in f.ended:
                    df.loc[after, c] = 0.0
        with _quiet():
            out = f.prophet.predict(df)
        return out["yhat"].to_numpy() + self._pool_at(f, grid) + self._borrow_at(f, grid)

    def _coarse_grid_for(self, idx: pd.DatetimeIndex) -> pd.DatetimeIndex:
        fs = pd.Timedelta(self._fit_step)
        first = idx.min().floor(fs) - fs
        last = idx.max().floor(fs) + fs
        return pd.date_range(first, last, freq=fs)

    def _fine_z(self, f: _Fitted, idx: pd.DatetimeIndex, season=None) -> np.ndarray:
        """Predicted z on `idx` (with the weighted residual profile `season` = (weight, period,
        profile); default: the chosen one)."""
        season = getattr(self, "_season", None) if season is None else season
        z = self._fine_z_raw(f, idx)
        if season is not None and season[0] > 0:
            z = z + season[0] * self._profile_lookup(season[1], season[2], idx)
        return z

    def _residual_profile(self, grid: pd.DatetimeIndex, resid: np.ndarray,
                          exclude: np.ndarray) -> tuple[timedelta, np.ndarray] | None:
        """Median residual per slot of the season (a week with >= 2 weeks of usable points,
        else a day with >= 2 days) over the last `profile_periods` seasons; None if too short."""
        ok = np.isfinite(resid) & ~exclude
        if not ok.any():
            return None
        span = grid[ok][-1] - grid[ok][0]
        period = WEEK if span >= 2 * WEEK else (DAY if span >= 2 * DAY else None)
        if period is None or period < 2 * self._fit_step:
            return None
        since = grid[ok][-1] - self.settings.profile_periods * pd.Timedelta(period)
        ok &= np.asarray(grid > since)
        slots = int(period / self._fit_step)
        slot = self._slot(grid, period)
        prof = np.zeros(slots)
        frame = pd.DataFrame({"slot": slot[ok], "r": resid[ok]})
        med = frame.groupby("slot")["r"].median()
        prof[med.index.to_numpy()] = med.to_numpy()
        return period, prof

    def _profile_left_out(self, full: tuple[timedelta, np.ndarray], grid: pd.DatetimeIndex, resid: np.ndarray,
                          exclude: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
        """The residual profile `full` (= `_residual_profile(grid, resid, exclude)`: period,
        profile) at each point of `idx`, leaving out the point's own period: at a point inside the
        profile's window, the median residual of its slot over the window's OTHER periods (0 when
        there is none); elsewhere the profile. The in-sample residuals of a forecast with the
        profile are then honest: the profile is the median of as few as `profile_periods`
        residuals per slot, so with its own period in, one residual in three of the window is
        exactly 0."""
        period, prof = full
        ok = np.isfinite(resid) & ~exclude
        since = grid[ok][-1] - self.settings.profile_periods * pd.Timedelta(period)
        ok &= np.asarray(grid > since)
        out = self._profile_lookup(period, prof, idx)
        frame = pd.DataFrame({"slot": self._slot(grid[ok], period), "pid": self._period_of(grid[ok], period),
                              "r": resid[ok]})
        idx_pid, idx_slot = self._period_of(idx, period), self._slot(idx, period)
        for pid in np.unique(frame["pid"].to_numpy()):
            at = idx_pid == pid
            if not at.any():
                continue
            others = np.zeros(len(prof))
            med = frame[frame["pid"] != pid].groupby("slot")["r"].median()
            others[med.index.to_numpy()] = med.to_numpy()
            out[at] = others[idx_slot[at]]
        return out

    def _period_of(self, idx: pd.DatetimeIndex, period: timedelta) -> np.ndarray:
        """Which period (whole `period`s since the epoch, in the calendar zone, as `_slot`
        counts its slots) each timestamp falls in."""
        local = idx.tz_convert(self.settings.calendar_tz).tz_localize(None)
        return local.as_unit("ns").asi8 // pd.Timedelta(period).value

    def _slot(self, idx: pd.DatetimeIndex, period: timedelta) -> np.ndarray:
        """Slot of the season (fit-grid buckets since the epoch, modulo the period), in the
        calendar zone so that the week/day lines up with the audience's clock."""
        local = idx.tz_convert(self.settings.calendar_tz).tz_localize(None)
        ns = local.as_unit("ns").asi8
        step_ns = int(self._fit_step.total_seconds() * 1e9)
        return ((ns // step_ns) % int(period / self._fit_step)).astype(int)

    def _profile_lookup(self, period: timedelta, prof: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
        return prof[self._slot(idx, period)]

    def _fine_z_raw(self, f: _Fitted, idx: pd.DatetimeIndex) -> np.ndarray:
        """Predicted z on `idx`: on the fit grid, interpolated between bucket centres."""
        if self._fit_step == self._step and len(idx) and (idx.floor(pd.Timedelta(self._step)) == idx).all():
            return self._predict_z(f, idx)
        grid = self._coarse_grid_for(idx)
        zc = self._predict_z(f, grid)
        centres = grid.as_unit("ns").asi8 / 1e9 + self._fit_step.total_seconds() / 2
        mids = idx.as_unit("ns").asi8 / 1e9 + self._step.total_seconds() / 2
        return np.interp(mids, centres, zc)

    def _within_bucket_profile(self, values: pd.Series, coarse: pd.Series) -> np.ndarray:
        """Mean ratio value / bucket mean per position inside a bucket (normalised to mean 1)."""
        k = int(self._fit_step / self._step)
        if k <= 1:
            return np.ones(1)
        starts = _bucket_starts(values.index, self._fit_step)
        pos = ((values.index - starts) / pd.Timedelta(self._step)).astype(int)
        bucket_mean = coarse.reindex(starts).to_numpy()
        v = values.to_numpy()
        ok = np.isfinite(v) & np.isfinite(bucket_mean)
        num = np.bincount(pos[ok], weights=v[ok], minlength=k)
        den = np.bincount(pos[ok], weights=bucket_mean[ok], minlength=k)
        prof = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
        return prof / prof.mean() if prof.mean() > 0 else np.ones(k)

    def _profile_at(self, idx: pd.DatetimeIndex) -> np.ndarray:
        if self._profile.size <= 1:
            return np.ones(len(idx))
        starts = _bucket_starts(idx, self._fit_step)
        pos = ((idx - starts) / pd.Timedelta(self._step)).astype(int).to_numpy()
        return self._profile[np.clip(pos, 0, self._profile.size - 1)]

    def _fine_yhat(self, f: _Fitted, idx: pd.DatetimeIndex, season=None) -> np.ndarray:
        return self._tf.inverse(self._fine_z(f, idx, season)) * self._profile_at(idx)

    def _calibrate(self, history: Series, values: pd.Series, coarse: pd.Series, z: np.ndarray,
                   best_tau, names, hinted, init, notes: list[str], warm: dict | None = None) -> None:
        s = self.settings
        u, lq = s.upper_quantile, s.lower_quantile
        obs = values.dropna()
        y_obs = obs.to_numpy()
        self._q_hi_mode = self._q_lo_mode = None
        self._season = None
        event_time = evf.in_or_after(coarse.index, self._occ, s.ebb_span, self._fit_step)
        full_prof = r_coarse = None
        if s.seasonal_correction:
            r_coarse = z - self._predict_z(self._best, coarse.index)
            full_prof = self._residual_profile(coarse.index, r_coarse, event_time)
        self._premise_failed = None
        reused = self._reusable_calibration(warm, history, notes)
        if reused is not None:
            (weight, buckets, mode_buckets, n_hold, hold, self._slot_band, group_buckets,
             mode_group_buckets) = self._restore_calibration(reused, history, notes)
        else:
            weight, r_hold, lead_hold_s, t_hold, hold = self._holdout_calibration(
                history, values, coarse, z, obs, best_tau, names, hinted, init, full_prof is not None, event_time,
                notes)
        if full_prof is not None:
            self._season = (weight, *full_prof)
            notes.append(f"seasonal residual profile ({interval_text(full_prof[0])} period, last {s.profile_periods}) "
                         f"added with weight {weight:g}")
        # In-sample residuals on the requested grid (in z); with the residual profile, the
        # profile left out of each point's own period (`honest_in_sample`).
        yhat_in = self._fine_yhat(self._best, obs.index)
        yhat_fair = yhat_in
        if s.honest_in_sample and full_prof is not None and weight > 0:
            left_out = self._profile_left_out(full_prof, coarse.index, r_coarse, event_time, obs.index)
            yhat_fair = (self._tf.inverse(self._fine_z_raw(self._best, obs.index) + weight * left_out)
                         * self._profile_at(obs.index))
        r_in = self._tf.forward(y_obs) - self._tf.forward(yhat_fair)
        self._recent = None
        if s.recent_level:
            self._recent = self._recent_level(obs.index, self._tf.forward(y_obs) - self._tf.forward(yhat_in),
                                              history.end, notes)
        if reused is None:
            self._slot_band = self._level_bands(obs.index, yhat_in)
            buckets, group_buckets = self._grouped_buckets(r_hold, lead_hold_s, t_hold)
            mode_buckets = mode_group_buckets = None
            if self._mode != "prophet":
                mode_buckets, mode_group_buckets = self._grouped_buckets(*self._mode_holdout)
            n_hold = int(np.isfinite(r_hold).sum())
            self._calibration_state = self._calibration_record(history, weight, buckets, mode_buckets, n_hold, hold,
                                                               group_buckets, mode_group_buckets)
        g_in = self._band_of(obs.index)
        gmin = s.interval_group_min
        self._q_hi = intervals.group_quantiles(r_in, g_in, buckets, group_buckets, u, gmin)
        self._q_lo = intervals.group_quantiles(r_in, g_in, buckets, group_buckets, lq, gmin)
        notes.append(
            f"interval: conformal quantiles of z residuals ({r_in.size} in-sample, {n_hold} holdout "
            f"over the last {interval_text(hold)}) by lead {self._lead_labels()}"
            + (f" and daily level band ({self._slot_band.max() + 1} bands, quietest first)"
               if self._slot_band.max() > 0 else "")
            + f": {self._quantile_text(self._q_hi, self._q_lo)}"
            + (f", spread over {len(self._plausible)} plausible tau" if len(self._plausible) > 1 else ""))
        if self._mode != "prophet" and self._level_broke:
            notes.append(f"level break: Prophet's forecast with the recent level, not the {self._mode} the holdout "
                         f"chose (the seasonal naive would copy a week from before the break)")
            self._mode = "prophet"
        if self._mode != "prophet":
            self._calibrate_mode(history, obs, yhat_fair, mode_buckets, g_in, mode_group_buckets)
            notes.append(f"interval of the {self._mode} forecast (its residuals over the history and the holdout) by "
                         f"lead {self._lead_labels()}: {self._quantile_text(self._q_hi_mode, self._q_lo_mode)}"
                         + ("; the band also spans Prophet's (`mode_band_spans_prophet`)"
                            if s.mode_band_spans_prophet else ""))

    def _recent_level(self, index: pd.DatetimeIndex, resid: np.ndarray, hist_end: datetime,
                      notes: list[str]) -> tuple[float, float] | None:
        """(d0, phi) of `recent_level` from the fitted forecast's z residuals `resid` at `index`
        (the history's points), or None: d0 the mean over the last 24 h (up to `hist_end`), phi
        the AR(1) coefficient through 0 of consecutive 24 h block means (blocks aligned on
        `hist_end`, each needing half its points finite and outside event windows), or 1 when
        the last blocks are a level break (`level_break_sigma`, `level_break`; not when they
        touch a holiday); sets `_level_broke`."""
        self._level_broke = False
        clean = np.isfinite(resid) & ~evf.in_or_after(index, self._occ, self.settings.recent_level_after_event,
                                                      self._step)
        block = np.asarray((pd.Timestamp(hist_end) - index) // pd.Timedelta(DAY), dtype=int)
        per_block = max(int(DAY / self._step) // 2, 1)
        frame = pd.DataFrame({"b": block, "r": np.where(clean, resid, np.nan), "ev": ~clean & np.isfinite(resid)})
        g = frame.groupby("b")
        means = g["r"].mean().where(g["r"].count() >= per_block)
        if 0 not in means.index or g["ev"].sum().get(0, 0) > 0 or not np.isfinite(means.get(0, np.nan)):
            return None
        d = means.reindex(range(int(means.index.max()) + 1)).to_numpy()[::-1]  # oldest first
        d0 = float(means[0])
        broke, score, age = level_break(d, self.settings.level_break_sigma, self.settings.level_break_days)
        if broke and (evf.local_date_mask(index[block < age], self._holiday_days, self.settings.calendar_tz) > 0).any():
            broke = False  # a holiday's own effect, not a level
        if broke:
            self._level_broke = True
            notes.append(f"recent level: the last 24 h ran {d0:+.3f} in z from the fit; each of the last {age} days ran "
                         f"at least {score:.1f} robust sd of the daily changes from the days before them, on one "
                         f"side and alike (`level_break_sigma`): a level break, carried undecayed over the horizon "
                         f"(phi 1); the band spans it and the forecast without it")
            return d0, 1.0
        prev, cur = d[:-1], d[1:]
        ok = np.isfinite(prev) & np.isfinite(cur)
        if ok.sum() < 7 or not np.sum(prev[ok] ** 2) > 0:
            return None
        phi = float(np.clip(np.sum(prev[ok] * cur[ok]) / np.sum(prev[ok] ** 2), 0.0, 0.95))
        if phi <= 0 or d0 == 0:
            return None
        h = self.settings.horizon_hint / DAY
        notes.append(f"recent level: the last 24 h ran {d0:+.3f} in z from the fit; daily misfits persist "
                     f"with phi {phi:.2f} ({int(ok.sum())} day pairs): yhat shifted by {d0 * phi ** (1 / 24):+.3f} "
                     f"at the first hour, {d0 * phi ** h:+.3f} at {h:g} d; the band spans it and the forecast "
                     f"without it")
        return d0, phi

    def _recent_at(self, idx: pd.DatetimeIndex) -> np.ndarray | None:
        """The `recent_level` shift in z at each point of `idx` (None when there is none)."""
        rec = getattr(self, "_recent", None)
        if rec is None or self._mode != "prophet":
            return None
        lead_d = np.clip(np.asarray((idx - self._last) / pd.Timedelta(DAY), dtype=float), 0.0, None)
        return rec[0] * rec[1] ** lead_d

    def _level_bands(self, index: pd.DatetimeIndex, yhat: np.ndarray) -> np.ndarray:
        """Band of each slot of the day (fit-grid steps in `calendar_tz`): `intervals.level_bands` of the
        fitted level in z (`yhat` on `index`) outside event windows, `interval_groups` bands.
        One band when the fit grid is a day or coarser (or does not divide a day)."""
        s = self.settings
        if s.interval_groups <= 1 or self._fit_step >= DAY or DAY % self._fit_step != timedelta(0):
            return np.zeros(1, dtype=int)
        quiet = ~evf.in_or_after(index, self._occ, s.ebb_span, self._step) & np.isfinite(yhat)
        return intervals.level_bands(self._slot(index[quiet], DAY), self._tf.forward(yhat[quiet]),
                                     int(DAY / self._fit_step), s.interval_groups)

    def _band_of(self, idx: pd.DatetimeIndex) -> np.ndarray:
        """Daily level band (`intervals.level_bands`) of each timestamp: known in advance for any time."""
        if self._slot_band.size <= 1:
            return np.zeros(len(idx), dtype=int)
        return self._slot_band[self._slot(idx, DAY)]

    def _grouped_buckets(self, r_hold: np.ndarray, lead_hold_s: np.ndarray, t_hold: pd.DatetimeIndex) -> tuple:
        """(lead buckets, the same per daily level band) of holdout residuals at `t_hold`."""
        origin_s = (np.round(t_hold.as_unit("ns").asi8 / 1e9 - lead_hold_s)
                    if len(t_hold) == lead_hold_s.size else None)
        buckets = self._buckets(r_hold, lead_hold_s, origin_s)
        n_bands = int(self._slot_band.max()) + 1
        if n_bands <= 1:
            return buckets, []
        return buckets, intervals.group_buckets(r_hold, lead_hold_s, self._band_of(t_hold), buckets,
                                                self._lead_edges_s(), n_bands)

    def _lead_s(self, index: pd.DatetimeIndex, first: pd.Timestamp) -> np.ndarray:
        """Lead time in seconds of each point of `index` for a forecast whose first point is
        `first` (the first point after the training data has lead one series step)."""
        return np.asarray((index - first) / pd.Timedelta(seconds=1), dtype=float) + self._step.total_seconds()

    def _buckets(self, r_hold: np.ndarray, lead_hold_s: np.ndarray,
                 origin_s: np.ndarray | None = None) -> list[tuple[np.ndarray, float] | None]:
        """Holdout residuals by the settings' lead buckets (`intervals.lead_buckets`; `origin_s`:
        each residual's forecast origin, for the count of independent observations)."""
        return intervals.lead_buckets(r_hold, lead_hold_s, self._lead_edges_s(),
                                      self.settings.interval_block.total_seconds(), self._step.total_seconds(),
                                      origin_s)

    def _lead_edges_s(self) -> np.ndarray:
        """`interval_lead_edges` in seconds."""
        return np.array([e.total_seconds() for e in self.settings.interval_lead_edges], dtype=float)

    def _lead_labels(self) -> str:
        e = [interval_text(x) for x in self.settings.interval_lead_edges]
        if not e:
            return "(all leads)"
        return "(" + ", ".join([f"<= {e[0]}", *(f"{a}-{b}" for a, b in zip(e, e[1:])), f"> {e[-1]}"]) + ")"

    @staticmethod
    def _quantile_text(q_hi: np.ndarray, q_lo: np.ndarray) -> str:
        def rows(q, sign):
            return " | ".join("/".join(f"{sign}{x:.3f}" for x in r) for r in np.atleast_2d(q))
        return rows(q_hi, "+") + " above, " + rows(q_lo, "") + " below"

    def _quantiles_at(self, idx: pd.DatetimeIndex, q: np.ndarray) -> np.ndarray:
        """The quantiles `q` (daily level bands x lead buckets) looked up at each point's band
        and lead after the history."""
        lead = np.asarray((idx - self._last) / pd.Timedelta(seconds=1), dtype=float)
        q = np.atleast_2d(q)
        band = self._band_of(idx) if q.shape[0] > 1 else np.zeros(len(idx), dtype=int)
        return q[band, np.searchsorted(self._lead_edges_s(), lead, side="left")]

    def _holdout_calibration(self, history: Series, values: pd.Series, coarse: pd.Series, z: np.ndarray,
                             obs: pd.Series, best_tau, names, hinted, init, seasonal: bool,
                             event_time: np.ndarray, notes: list[str]) -> tuple:
        """The part of calibration that refits without the last `holdout`: the residual profile's
        weight (0, 1/2 or 1; 1/2 when undecided), the holdout residuals in z (events the holdout
        fit could not know left out) with their lead times in seconds and their timestamps, and
        the holdout span; with no event around, also the choice against the seasonal naive
        (sets `_mode`)."""
        s = self.settings
        weight = 0.5  # undecided (too little clean holdout): hedge half-way
        n_hold_coarse = int(min(s.holdout, (history.end - values.index[0]) / 4) / self._fit_step)
        hold = n_hold_coarse * self._fit_step
        r_hold = lead_hold_s = np.array([])
        t_hold = pd.DatetimeIndex([], tz="UTC")
        if not (n_hold_coarse >= 1 and coarse.notna().sum() > n_hold_coarse + 2):
            return weight, r_hold, lead_hold_s, t_hold, hold
        cut = coarse.index[-n_hold_coarse]
        taus = {n: hinted.get(n) or best_tau for n in names}
        try:
            f_hold, hold_prof = self._fit_before(coarse, z, cut, taus, init, seasonal, event_time)
        except ValueError:
            return weight, r_hold, lead_hold_s, t_hold, hold
        test = obs[obs.index >= cut]
        y_test = test.to_numpy()
        clean = ~evf.in_or_after(test.index, self._occ, s.ebb_span, self._step)
        ordinary = self._ordinary_points(test.index)
        season_h = None
        if hold_prof is not None and clean.sum() * self._step >= DAY:
            scored = self._scored_points(clean, ordinary)
            scores = {w: _wape(y_test[scored], self._fine_yhat(f_hold, test.index[scored], (w, *hold_prof)))
                      for w in (0.0, 0.5, 1.0)}
            weight = min(scores, key=lambda w: (scores[w], w))
            notes.append("seasonal residual profile: holdout WAPE "
                         + ", ".join(f"weight {w:g} {v:.3f}" for w, v in scores.items()) + f" -> {weight:g}")
        if hold_prof is not None:
            season_h = (weight, *hold_prof)
        yh = self._fine_yhat(f_hold, test.index, season_h or (0.0, WEEK, np.zeros(1)))
        r_hold, lead_hold_s, t_hold = self._held_out_residuals(test, yh, cut)
        scored = self._scored_points(np.ones(len(test), dtype=bool), ordinary)
        extra, forecasts = self._earlier_origins(coarse, z, obs, cut, n_hold_coarse, taus, init, seasonal,
                                                 event_time, weight)
        if not names and len(test) and history.step <= DAY:
            self._choose_vs_naive(history, [(cut, test, yh), *forecasts], scored, notes)
        self._holiday_note(test.index, ordinary, scored, notes)
        if extra:
            r_hold = np.concatenate([r_hold, *(e[0] for e in extra)])
            lead_hold_s = np.concatenate([lead_hold_s, *(e[1] for e in extra)])
            t_hold = t_hold.append([e[2] for e in extra])
            notes.append(f"interval: holdout residuals also from {len(extra)} earlier origin(s) "
                         + ", ".join(e[2][0].isoformat() if len(e[2]) else "(none kept)" for e in extra)
                         + f", each forecast {interval_text(hold)} ahead")
        return weight, r_hold, lead_hold_s, t_hold, hold

    def _earlier_origins(self, coarse: pd.Series, z: np.ndarray, obs: pd.Series,
                         cut: pd.Timestamp, n_hold_coarse: int, taus, init, seasonal: bool,
                         event_time: np.ndarray, weight: float) -> tuple[list[tuple], list[tuple]]:
        """The origins before the holdout's (`holdout_origins`): origin k is `k` holdout spans
        before `cut`, refitted on the history before it (residual profile of that fit, the
        holdout's `weight`) and forecast over the next span; used only with three spans of history
        before it. Returns, per origin, its held-out residuals in z (with lead times in seconds
        and timestamps; events whose peak that fit never saw left out, as in the holdout), and
        (origin, observed points, forecast) for `_choose_vs_naive`."""
        s = self.settings
        out: list[tuple] = []
        forecasts: list[tuple] = []
        for k in range(1, max(int(s.holdout_origins), 1)):
            at = len(coarse) - (k + 1) * n_hold_coarse
            end_at = at + n_hold_coarse
            if at < 3 * n_hold_coarse or coarse.iloc[:at].notna().sum() < 3 * n_hold_coarse // 2:
                break
            o_cut, o_end = coarse.index[at], coarse.index[end_at]
            try:
                f, prof = self._fit_before(coarse, z, o_cut, taus, init, seasonal, event_time)
            except ValueError:
                break
            test = obs[(obs.index >= o_cut) & (obs.index < o_end)]
            if not len(test):
                continue
            yh = self._fine_yhat(f, test.index, (weight, *prof) if prof is not None else (0.0, WEEK, np.zeros(1)))
            out.append(self._held_out_residuals(test, yh, o_cut))
            forecasts.append((o_cut, test, yh))
        return out, forecasts

    def _fit_before(self, coarse: pd.Series, z: np.ndarray, cut: pd.Timestamp, taus, init, seasonal: bool,
                    event_time: np.ndarray) -> tuple[_Fitted, tuple[timedelta, np.ndarray] | None]:
        """A forecast origin at `cut`: Prophet refitted on the fit-grid points before it, and (with
        `seasonal`) that fit's residual profile (`_residual_profile`, event windows left out); None
        for the profile without it or when too short. ValueError when the fit fails."""
        train = coarse.index < cut
        gi = coarse.index[train]
        f = self._fit_prophet(gi, z[train], taus, init, span_days=(cut - coarse.index[0]) / pd.Timedelta(days=1))
        prof = self._residual_profile(gi, z[train] - self._predict_z(f, gi), event_time[train]) if seasonal else None
        return f, prof

    def _held_out_residuals(self, test: pd.Series, yh: np.ndarray,
                            cut: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
        """(residuals in z, lead times in seconds, timestamps) of a forecast `yh` from the origin
        `cut` over the observed `test` points. Points inside an event whose peak that fit never
        saw say nothing about this model's error (it could not know the event's size): left out."""
        keep = np.ones(len(test), dtype=bool)
        for e in self._occ:
            if pd.Timestamp(e.peak) >= cut:
                keep &= ~evf.in_or_after(test.index, [e], self.settings.ebb_span, self._step)
        r = self._tf.forward(test.to_numpy()) - self._tf.forward(yh)
        return r[keep], self._lead_s(test.index, cut)[keep], test.index[keep]

    def _set_holidays(self, frame: pd.DataFrame) -> None:
        """Prophet's holidays frame for this fit (`_holidays`) and the local dates its windows
        cover, with their names (`_holiday_days`, `_window_dates`): computed once per fit, read
        by the holdout's and the prediction's holiday rules."""
        self._holidays = frame
        self._holiday_days = _window_dates(frame)

    def _naive_off_days(self, idx: pd.DatetimeIndex, season: timedelta | None = None,
                        last: pd.Timestamp | None = None) -> np.ndarray:
        """True at the points of `idx` where the seasonal naive (and the average) give way to
        Prophet (`naive_skips_holidays`): the point's local date is a holiday, or the date of
        the history point the naive copies there (`forecaster.baselines.seasonal_sources`, the
        naive of `season` on a history ending at `last`; default: the fitted naive's, the
        history's) is one."""
        days = self._holiday_days if self.settings.naive_skips_holidays else {}
        if not days or not len(idx):
            return np.zeros(len(idx), dtype=bool)
        tz = self.settings.calendar_tz
        src = seasonal_sources(idx, season or self._naive.season, tz, self._last if last is None else last)
        return (evf.local_date_mask(idx, days, tz) > 0) | (evf.local_date_mask(src, days, tz) > 0)

    def _ordinary_points(self, idx: pd.DatetimeIndex) -> np.ndarray:
        """True at the points of `idx` on ordinary days: no holiday window on their local date
        (`holdout_ordinary_days`; all True when it is off)."""
        days = self._holiday_days if self.settings.holdout_ordinary_days else {}
        if not days:
            return np.ones(len(idx), dtype=bool)
        return evf.local_date_mask(idx, days, self.settings.calendar_tz) == 0

    def _scored_points(self, base: np.ndarray, ordinary: np.ndarray) -> np.ndarray:
        """The holdout points a model choice is scored on: `base` on ordinary days, unless that
        leaves less than a day or less than half of `base` (then all of `base`)."""
        kept = base & ordinary
        if kept.sum() * self._step >= DAY and 2 * kept.sum() >= base.sum():
            return kept
        return base

    def _holiday_note(self, idx: pd.DatetimeIndex, ordinary: np.ndarray, scored: np.ndarray,
                      notes: list[str]) -> None:
        """Say which holiday dates of the holdout (`idx`) its model choices left out (`scored`
        is `ordinary`), or kept (too few ordinary points)."""
        if ordinary.all():
            return
        names = self._holiday_days
        dates = sorted(set(idx[~ordinary].tz_convert(self.settings.calendar_tz).date))
        text = ", ".join(f"{d} {names[d]}" for d in dates)
        if not scored.all():
            notes.append(f"holdout model choice scored on ordinary days only: left out {text} (the holdout refit "
                         f"may never have seen them, the seasonal naive copies an ordinary day)")
        else:
            notes.append(f"holdout model choice scored on all days, holidays included ({text}): too few "
                         f"ordinary days left without them")

    # ---------------------------------------------------------------- warm refits
    def _structure_key(self, names, hinted, history: Series) -> str:
        """What must be unchanged for a warm refit to reuse the previous tau choice and
        calibration: settings (but the warm start), series step, fit grid, the modelled event
        occurrences and hints (`ebb`, `lift`). A new event in the horizon, a policy change or a
        different step gives a different key, hence a cold refit."""
        occ = sorted((e.name, e.start.isoformat(), e.peak.isoformat(), e.end.isoformat())
                     + ((e.lift,) if e.lift is not None else ()) for e in self._occ)
        settings = replace(self.settings, init=None)
        text = repr((_WARM_VERSION, repr(settings), history.step.total_seconds(), self._fit_step.total_seconds(),
                     occ, sorted((n, hinted[n].total_seconds()) for n in names if n in hinted)))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def _warm_state(self, init: dict[str, Any] | None, structure: str) -> dict | None:
        """The previous fit's choices (from `params`), when a warm refit of the same `structure`
        (`_structure_key`) may reuse them."""
        w = (init or {}).get(_WARM_KEY)
        if not self.settings.warm_reuse or not isinstance(w, dict):
            return None
        if w.get("structure") != structure:
            return None
        try:
            best = (evf.EbbKernel(timedelta(seconds=w["best_tau_s"]), float(w.get("best_alpha") or 0.0))
                    if w.get("best_tau_s") is not None else None)
            alphas = w.get("plausible_alpha") or [0.0] * len(w.get("plausible_s", []))
            plausible = [evf.EbbKernel(timedelta(seconds=x), float(a))
                         for x, a in zip(w.get("plausible_s", []), alphas, strict=True)]
            neighbours = [evf.EbbKernel(timedelta(seconds=x), float(a))
                          for x, a in zip(w.get("neighbour_s", []), w.get("neighbour_alpha", []), strict=True)]
            family = (evf.EbbKernel(timedelta(seconds=w["family_s"]), float(w.get("family_alpha") or 0.0))
                      if w.get("family_s") is not None else None)
            return {"best_tau": best, "plausible": plausible, "neighbours": neighbours, "n_ebb": int(w["n_ebb"]),
                    "family": family,
                    "calibration": w.get("calibration"), "outliers_s": [int(x) for x in w.get("outliers_s", [])]}
        except (KeyError, TypeError, ValueError):
            return None

    def _premask_outliers(self, grid: pd.DatetimeIndex, z: np.ndarray, warm: dict | None,
                          notes: list[str]) -> np.ndarray:
        """Warm refit: the fit-grid points the previous fit treated as outliers stay missing, so
        the screening fit usually flags nothing new and is reused (one fit instead of two)."""
        if not warm or not warm["outliers_s"]:
            return z
        hit = np.isin(_epoch_s(grid), np.asarray(warm["outliers_s"], dtype=np.int64)) & np.isfinite(z)
        if not hit.any():
            return z
        notes.append(f"warm refit: {int(hit.sum())} fit-grid points the previous fit found outlying kept missing")
        out = z.copy()
        out[hit] = np.nan
        return out

    def _own_ebb_points(self, grid: pd.DatetimeIndex, free_occ, ebb_mask: np.ndarray, hist_end: datetime) -> int:
        """How many of the observed ebb points (`ebb_mask` on the fit `grid`) belong to the latest
        free occurrence started before `hist_end` (`long_tau_own_ebb`); all of them when there
        is no such occurrence."""
        started = [e for e in free_occ if e.start < hist_end]
        if not started:
            return int(ebb_mask.sum())
        latest = max(started, key=lambda e: e.start)
        return int((self._ebb_seen(grid, [latest]) & ebb_mask).sum())

    def _long_tau_evidence(self, best: evf.EbbKernel, kernels, abs_err: dict, n_ebb: int, resid: np.ndarray,
                           grid: pd.DatetimeIndex, free, notes: list[str],
                           latest_only: bool = False) -> evf.EbbKernel:
        """`long_tau_needs_evidence` on a fit: `best` has the lowest score of `kernels` on the
        observed ebb points (`abs_err`: each one's |z error| there), `n_ebb` of which count for
        the rule's bound (all of them, or with `latest_only` those of the latest free event:
        `long_tau_own_ebb`), `resid` is its z residual on `grid`; the noise sd is measured
        outside event and ebb windows."""
        taus = list(self.settings.tau_candidates)
        centre = taus[len(taus) // 2]
        if n_ebb * self._fit_step >= centre:
            return best
        quiet = np.isfinite(resid) & ~evf.in_or_after(grid, self._occ, self.settings.ebb_span, self._fit_step)
        sd = _robust_sd(resid[quiet]) if quiet.sum() >= 2 else 0.0
        sse = {k: float(np.sum(abs_err[k] ** 2)) for k in kernels}
        pick = long_tau_with_evidence(best, sse, sd, centre)
        if pick != best:
            llr = (sse[pick] - sse[best]) / (2.0 * sd * sd)
            notes.append(f"ebb tau for {', '.join(free)}: {pick.text()}, not the best-scoring {best.text()}: "
                         f"the observed ebb does not tell a tau longer than the prior's centre "
                         f"({interval_text(centre)}) apart from it (log-likelihood ratio {llr:.2f} <= 0.5 "
                         f"with the history's residual sd {sd:.3f} in z; `long_tau_needs_evidence`"
                         + (f"; the latest event's own ebb is {interval_text(n_ebb * self._fit_step)}, the rest "
                            f"an earlier event's: `long_tau_own_ebb`" if latest_only else "") + ")")
        return pick

    def _kernel_grid(self, step: timedelta) -> list[evf.EbbKernel]:
        """The ebb kernels to choose among: the exponential on every tau candidate, then each
        power-law exponent of `ebb_power_alphas` on the `power_tau_count` shortest taus; the
        taus stretched so that the shortest is at least `tau_min_steps` series steps."""
        s = self.settings
        factor = max(1.0, s.tau_min_steps * step.total_seconds() / min(s.tau_candidates).total_seconds())
        taus = sorted({timedelta(minutes=round(t.total_seconds() * factor / 60.0)) for t in s.tau_candidates})
        return ([evf.EbbKernel(t) for t in taus]
                + [evf.EbbKernel(t, a) for a in s.ebb_power_alphas for t in taus[:s.power_tau_count]])

    def _prior_centre(self) -> evf.EbbKernel:
        """The prior's ebb kernel: the exponential at the centre of `tau_candidates` (unstretched)."""
        taus = self.settings.tau_candidates
        return evf.EbbKernel(taus[len(taus) // 2])

    def _tau_candidates(self, free, n_ebb: int, warm: dict | None,
                        notes: list[str]) -> tuple[list, tuple | None]:
        """Which ebb kernels to fit, and (best, plausible) when they are kept from the last fit.

        Cold, ebb observed: the whole kernel grid (`_kernel_grid`). No ebb observed: only the
        prior's range (the exponential centre of `tau_candidates`, not stretched, and the
        exponentials within `prior_tau_spread` of it). Warm refit of the same structure: with
        no new ebb point since the last fit, the last choice is kept (only its plausible fits
        are redone); with more ebb observed, the last plausible tau range and one neighbour
        either side are scored, in the kernel families (alphas) that were plausible (the range
        moves a step per refit if the ebb says so)."""
        s = self.settings
        grid = self._kernels
        if not free:
            return [None], None
        if not n_ebb:
            # The prior is a physical time scale (the unstretched grid): before any ebb point
            # the step says nothing about how fast attention ebbs. Stretched (daily: 8 d centre),
            # the barely identified shape/inside pair of a coarse series carried the peak over
            # the week (measured: 5x over-forecast on a daily synthetic cut at the peak).
            mid = self._prior_centre().tau
            return [evf.EbbKernel(t) for t in s.tau_candidates
                    if abs(math.log(t / mid)) <= math.log(s.prior_tau_spread) + 1e-9], None
        if warm is None or not warm["n_ebb"] or warm["best_tau"] not in grid \
                or any(t not in grid for t in warm["plausible"]):
            return list(grid), None
        best, plausible = warm["best_tau"], [t for t in warm["plausible"]] or [warm["best_tau"]]
        if warm["n_ebb"] == n_ebb:
            notes.append(f"ebb tau for {', '.join(free)}: {best.text()} kept from the previous fit "
                         f"(no new ebb point since: {n_ebb} observed); plausible "
                         + ", ".join(t.text() for t in plausible))
            return list(dict.fromkeys([best, *plausible])), (best, plausible)
        taus = sorted({k.tau for k in grid})
        idx = [taus.index(t.tau) for t in [best, *plausible]]
        lo, hi = max(min(idx) - 1, 0), min(max(idx) + 1, len(taus) - 1)
        families = {t.alpha for t in [best, *plausible]}
        notes.append(f"warm refit: tau scored on {interval_text(taus[lo])}..{interval_text(taus[hi])} "
                     f"(the previous plausible range and one neighbour either side; kernels "
                     + ", ".join("exponential" if a == 0 else f"power {a:g}" for a in sorted(families)) + ")")
        return [k for k in grid if k.alpha in families and taus[lo] <= k.tau <= taus[hi]], None

    def _reusable_calibration(self, warm: dict | None, history: Series, notes: list[str]) -> dict | None:
        """The previous fit's calibration while younger than `recalibrate_every`, unless the
        no-event average's premise (`_average_premise`) changed since it was made: the model
        choice it holds was made under the other rule, so the holdout is redone."""
        cal = (warm or {}).get("calibration")
        if not isinstance(cal, dict) or self.settings.recalibrate_every <= timedelta(0):
            return None
        age_s = history.end.timestamp() - float(cal.get("at_s", -math.inf))
        if not 0 <= age_s < self.settings.recalibrate_every.total_seconds():
            return None
        was = cal.get("premise_failed")
        if was is not None and self.settings.no_event_average:
            now = self._average_premise(self._naive_history(history, []))
            if bool(now) != bool(was):
                notes.append("warm refit: holdout recalibrated, the no-event average's premise "
                             + (f"failed since the last calibration ({now})" if now else "holds again"))
                return None
        return cal

    def _calibration_record(self, history: Series, weight: float, buckets, mode_buckets, n_hold: int,
                            hold: timedelta, group_buckets=(), mode_group_buckets=()) -> dict:
        """What `_holdout_calibration` found, small enough to keep per workload: per lead bucket
        the holdout residuals as at most `intervals.SKETCH_POINTS` quantiles with their count of
        independent observations (for the conformal correction), and the same per daily level
        band with the band of each slot of the day; the same for the seasonal naive or average
        when the holdout chose one; the profile weight."""
        def enc(bs):
            return [None if b is None else [intervals.sketch(b[0]), float(b[1])] for b in bs]

        rec = {"at_s": history.end.timestamp(), "weight": float(weight), "buckets": enc(buckets),
               "n_hold": int(n_hold), "hold_s": hold.total_seconds(), "mode": self._mode,
               "slot_band": [int(x) for x in self._slot_band], "band_buckets": [enc(g) for g in group_buckets],
               "premise_failed": self._premise_failed}
        if self._mode != "prophet":
            rec.update(season_s=self._naive.season.total_seconds(), mode_buckets=enc(mode_buckets),
                       mode_band_buckets=[enc(g) for g in mode_group_buckets or ()])
        return rec

    def _restore_calibration(self, cal: dict, history: Series, notes: list[str]) -> tuple:
        """(weight, buckets, mode buckets, holdout count, holdout span, band of each slot of the
        day, buckets per band, mode buckets per band) of a cached calibration; sets the mode (and
        refits the seasonal naive on this history when it was chosen)."""
        def dec(bs):
            return [None if b is None else (np.asarray(b[0], dtype=float), float(b[1])) for b in bs]

        self._calibration_state = cal
        self._mode = cal.get("mode", "prophet")
        mode_buckets, mode_band_buckets = None, []
        if self._mode != "prophet":
            self._naive = SeasonalNaive(timedelta(seconds=cal["season_s"]),
                                        tz=self.settings.calendar_tz).fit(self._naive_history(history, notes))
            mode_buckets = dec(cal["mode_buckets"])
            mode_band_buckets = [dec(g) for g in cal.get("mode_band_buckets", [])]
        age = history.end.to_pydatetime() - datetime.fromtimestamp(cal["at_s"], tz=timezone.utc)
        notes.append(f"warm refit: holdout calibration kept from {interval_text(age)} ago (recalibrated every "
                     f"{interval_text(self.settings.recalibrate_every)})"
                     + (f"; {self._mode} mode kept" if self._mode != "prophet" else ""))
        return (float(cal["weight"]), dec(cal["buckets"]), mode_buckets, int(cal["n_hold"]),
                timedelta(seconds=cal["hold_s"]), np.asarray(cal.get("slot_band", [0]), dtype=int),
                [dec(g) for g in cal.get("band_buckets", [])], mode_band_buckets)

    def _choose_vs_naive(self, history: Series, origins: list[tuple], scored: np.ndarray,
                         notes: list[str]) -> None:
        """No event around: pick prophet, seasonal naive or their average on the `scored` points
        (`_scored_points`) of the holdout, the first of the forecast `origins` (origin, observed
        points, Prophet's forecast there), with the naive as the forecast applies it (Prophet
        where it meets a holiday, `_naive_off_days`): with the weekly naive and
        `no_event_average`, the average unless one wins every day
        (`single_beats_average_daily`), else the lowest WAPE. The chosen one's residuals over all
        points of every origin (for its interval) set `_mode_holdout`. Only the latest origin
        scores: scoring over two (tried) moved as many sweep cuts worse as better."""
        history = self._naive_history(history, notes)
        o_cut, test, yh = origins[0]
        train_hist = history.before(o_cut)
        trained = train_hist.end - train_hist.start  # the history before the holdout
        season = WEEK if trained >= self.settings.weekly_naive_min_training else DAY
        ny = self._naive_applied(history, origins[0], season)
        if ny is None:
            return
        y = test.to_numpy()
        ys, yhs, nys = y[scored], yh[scored], ny[scored]
        scores = {"prophet": _wape(ys, yhs), "naive": _wape(ys, nys), "blend": _wape(ys, 0.5 * (yhs + nys))}
        label = f"seasonal naive ({interval_text(season)})"
        average_rule = (self.settings.no_event_average and season == WEEK
                        and trained >= self.settings.no_event_average_min_training)
        premise = self._average_premise(history) if average_rule else ""
        self._premise_failed = bool(premise) if average_rule else None
        if average_rule and not premise:
            days = test.index[scored].tz_convert(self.settings.calendar_tz).date
            mode, why = single_beats_average_daily(ys, {"prophet": yhs, "naive": nys}, days)
        else:
            mode = min(scores, key=lambda k: (scores[k], k != "prophet"))
            why = f" (lowest WAPE, not the average: {premise})" if premise else ""
        notes.append("holdout WAPE: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
                     + f" -> {'prophet' if mode == 'prophet' else (label if mode == 'naive' else 'average of prophet and ' + label)}"
                     + why)
        if mode == "prophet":
            return
        self._mode = mode
        self._naive = SeasonalNaive(season, tz=self.settings.calendar_tz).fit(history)
        r, ld, t = [], [], []
        for k, origin in enumerate(origins):
            o_cut, test, yh = origin
            ny = self._naive_applied(history, origin, season) if k else ny
            if ny is None:
                continue
            comb = ny if mode == "naive" else 0.5 * (yh + ny)
            r.append(self._tf.forward(test.to_numpy()) - self._tf.forward(comb))
            ld.append(self._lead_s(test.index, o_cut))
            t.append(test.index)
        self._mode_holdout = (np.concatenate(r), np.concatenate(ld), t[0].append(t[1:]))

    def _average_premise(self, naive_history: Series) -> str:
        """Why the no-event average's premise (the week ahead ordinary, like the last) fails,
        or "" when it holds (`no_event_average_departure`): an event nobody declared fitted as
        ordinary traffic, or a day of the week the naive copies that moved from the week before
        it (`recent_days_depart` on `naive_history`, the history as the naive copies it)."""
        if self._unmodelled_excursion:
            return "an event nobody declared is in the history, fitted as ordinary traffic"
        if self.settings.no_event_average_departure <= 0:
            return ""
        h = naive_history
        recent = h.values[h.index > h.end - self.settings.lookback]
        departs, how = recent_days_depart(self._tf.forward(recent.to_numpy(dtype=float)), int(DAY / h.step),
                                          self.settings.no_event_average_departure)
        return how if departs else ""

    def _naive_history(self, history: Series, notes: list[str]) -> Series:
        """`history` as the seasonal naive copies it (`naive_skips_outliers`): the points of a
        collection outage and of the fit-grid buckets the outlier screen masked set missing, so
        the naive copies the season before there. `notes` say how many when any."""
        if not self.settings.naive_skips_outliers:
            return history
        idx = history.index
        hit = (np.isin(np.asarray(_epoch_s(idx), dtype=np.int64), self._outage_s)
               | np.isin(np.asarray(_epoch_s(_bucket_starts(idx, self._fit_step)), dtype=np.int64),
                         np.asarray(self._outliers_s, dtype=np.int64)))
        if not hit.any():
            return history
        notes.append(f"seasonal naive: {int(hit.sum())} history points the fit left out (outliers, outage) are "
                     f"copied from the season before, not repeated")
        return Series(history.values.mask(hit), history.step, history.name)

    def _naive_applied(self, history: Series, origin: tuple, season: timedelta) -> np.ndarray | None:
        """The seasonal naive from `origin` (origin, observed points, Prophet's forecast there)
        over its points as a forecast applies it: Prophet's value where the naive meets a
        holiday (`_naive_off_days`). None when the history before the origin is too short."""
        o_cut, test, yh = origin
        train_hist = history.before(o_cut)
        ny = _naive_forecast(train_hist, test.index, season, self.settings.calendar_tz)
        if ny is None:
            return None
        return np.where(self._naive_off_days(test.index, season, train_hist.end), yh, ny)

    def _calibrate_mode(self, history: Series, obs: pd.Series, yhat_in: np.ndarray,
                        buckets: list[tuple[np.ndarray, float] | None], g_in: np.ndarray, group_buckets) -> None:
        """Interval of the seasonal naive or the average (after `_choose_vs_naive` picked it):
        its holdout residuals pooled, per lead bucket, with its residuals over the history (last
        `lookback`): the seasonal naive's are out of sample (yhat(t) = y(the same local time a
        season before)); the average's mix them with the full fit's in-sample ones (residual
        profile included). By daily level band (`g_in`: the band of each history point) like the
        model's interval."""
        src = seasonal_sources(obs.index, self._naive.season, self.settings.calendar_tz)
        if self.settings.naive_skips_outliers:  # what the naive copies: outliers and outages left out
            lagged = self._naive.at(src)
        else:
            lagged = history.values.reindex(nearest_on_grid(src, history.end, history.step)).to_numpy()
        comb = lagged if self._mode == "naive" else 0.5 * (yhat_in + lagged)
        r_hist = self._tf.forward(obs.to_numpy()) - self._tf.forward(comb)
        u, lq = self.settings.upper_quantile, self.settings.lower_quantile
        gmin = self.settings.interval_group_min
        self._q_hi_mode = intervals.group_quantiles(r_hist, g_in, buckets, group_buckets, u, gmin)
        self._q_lo_mode = intervals.group_quantiles(r_hist, g_in, buckets, group_buckets, lq, gmin)

    def _prophet_interval(self, idx: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        grid = self._coarse_grid_for(idx)
        df = self._frame(grid, self._best.taus, self._best.columns, self._best.carried)
        np.random.seed(self.settings.seed)
        with _quiet():
            out = self._best.prophet.predict(df)
        centres = grid.as_unit("ns").asi8 / 1e9 + self._fit_step.total_seconds() / 2
        mids = idx.as_unit("ns").asi8 / 1e9 + self._step.total_seconds() / 2
        up = np.interp(mids, centres, out["yhat_upper"].to_numpy())
        lo = np.interp(mids, centres, out["yhat_lower"].to_numpy())
        return self._tf.inverse(up), self._tf.inverse(lo)


class PlainProphetForecaster:
    """Baseline: default Prophet on raw values (linear trend, daily + weekly seasonality on, no
    events, no transform), Prophet's own intervals at the given quantiles. This is what the
    event-aware model is measured against.

    `max_fit_points`: a sub-hourly history with more points is averaged onto the finest coarser
    grid (choose_fit_step) that has at most this many: 28 days at 1 min (40,320 points) took
    108 s to fit, the same days at 5 min about 7 s. Hourly data, and 5-min data up to 34 days,
    are fitted as they are."""

    name = "prophet"

    def __init__(self, upper_quantile: float = 0.9, lower_quantile: float = 0.1, seed: int = 0,
                 uncertainty_samples: int = 300, max_fit_points: int = 10_000):
        if not (0.0 < lower_quantile < upper_quantile < 1.0):
            raise ValueError("quantiles must satisfy 0 < lower < upper < 1")
        self.upper_quantile = upper_quantile
        self.lower_quantile = lower_quantile
        self.seed = seed
        self.uncertainty_samples = uncertainty_samples
        self.max_fit_points = max_fit_points
        self._m = None

    def fit(self, history: Series) -> "PlainProphetForecaster":
        Prophet = _prophet_class()
        v = history.values
        fit_step = choose_fit_step(history.step, history.end - history.start, self.max_fit_points)
        if fit_step != history.step:
            v = aggregate_to_grid(v, fit_step)
            # A bucket's mean stands for the middle of its points: label it there, so the daily
            # phase predicted at the series' own timestamps is not shifted.
            v.index = v.index + (pd.Timedelta(fit_step) - pd.Timedelta(history.step)) / 2
        v = v.dropna()
        if len(v) < 2:
            raise ValueError(f"prophet: history {history.name!r} has fewer than 2 observed points")
        span_days = (history.end - history.start) / pd.Timedelta(days=1)
        # Prophet's symmetric interval_width; the quantiles used are (1 -+ width) / 2.
        width = self.upper_quantile - self.lower_quantile
        m = Prophet(daily_seasonality=span_days >= 2, weekly_seasonality=span_days >= 14 - 1e-9,
                    yearly_seasonality=False, interval_width=width,
                    uncertainty_samples=self.uncertainty_samples)
        df = pd.DataFrame({"ds": v.index.tz_convert("UTC").tz_localize(None), "y": v.to_numpy()})
        _fit_stan(m, df, seed=self.seed)
        self._m = m
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        if self._m is None:
            raise RuntimeError("prophet: call fit(history) before predict")
        idx = index.tz_convert("UTC")
        np.random.seed(self.seed)  # Prophet samples its intervals from numpy's global generator
        with _quiet():
            out = self._m.predict(pd.DataFrame({"ds": idx.tz_localize(None)}))
        yhat = np.clip(out["yhat"].to_numpy(), 0.0, None)
        # With uncertainty_samples=0 Prophet returns no interval: the bounds collapse onto yhat.
        upper = np.maximum(out["yhat_upper"].to_numpy(), yhat) if "yhat_upper" in out else yhat
        lower = (np.clip(np.minimum(out["yhat_lower"].to_numpy(), yhat), 0.0, None)
                 if "yhat_lower" in out else yhat)
        frame = pd.DataFrame({"yhat": yhat, "yhat_lower": lower, "yhat_upper": upper}, index=idx)
        width = self.upper_quantile - self.lower_quantile
        return Forecast(frame, model=self.name, upper_quantile=0.5 + width / 2,
                        lower_quantile=0.5 - width / 2,
                        notes=("plain Prophet: raw values, linear trend, daily+weekly seasonality, no events",))
