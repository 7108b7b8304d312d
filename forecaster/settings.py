"""Settings of Ebbtide's forecaster (`ModelSettings`): every knob of forecaster.model with what
its default means. Pure: a frozen dataclass validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from forecaster import events as evf


def _default_taus() -> tuple[timedelta, ...]:
    return evf.tau_grid(timedelta(hours=2), timedelta(hours=128), 7)


@dataclass(frozen=True)
class ModelSettings:
    """How EbbtideForecaster fits. Every default is generic (no trace was tuned for)."""

    upper_quantile: float = 0.9
    """Quantile yhat_upper stands for; capacity is sized to yhat_upper."""
    lower_quantile: float = 0.1
    """Quantile yhat_lower stands for."""
    seed: int = 0
    """Seed passed to Stan's optimizer (and to Prophet's sampler when uncertainty_samples > 0)."""
    fit_step: timedelta | None = None
    """Grid the model is fitted on. None: the finest of 1/5/10/15/30/60 min (multiple of the
    series step) giving at most `max_fit_points` points over the lookback."""
    max_fit_points: int = 2000
    """Budget of fit-grid points for the automatic fit_step (Prophet's cost grows with it)."""
    lookback: timedelta = timedelta(days=35)
    """History used for fitting (the most recent part). 5 weeks: 4+ weekly cycles."""
    daily_fourier_order: int = 8
    """Fourier order of the daily seasonality (always on when the history spans >= 2 days)."""
    weekly_fourier_order: int = 3
    """Fourier order of the weekly seasonality (always on from 7 days of history, one full
    cycle; Prophet's automatic rule needs more than 14 days)."""
    calendar_tz: str = "UTC"
    """Zone of Prophet's `ds`: local dates for holiday windows and the clock of daily
    seasonality. Event regressors are exact in any zone."""
    country_holidays: str | None = None
    """ISO country code (e.g. "CN", "US") whose public holidays become holiday windows."""
    pooled_holidays: bool = True
    """With `country_holidays`: a public holiday the history never showed borrows the effect of
    those it did. Prophet learns one coefficient per holiday NAME, so a holiday absent from the
    lookback (most of a forecast week's, with 4-5 weeks of history) keeps its prior (~0) and
    was forecast as an ordinary day. The pooled effect is, per local hour of the day, the mean
    residual in z of the fit WITHOUT its holiday terms on the seen holidays (the country's
    public holidays on its working days with observed points, outside sale/joint_live events):
    what a holiday did to that hour. It is added to the forecast on the working-day public
    holidays whose name has no observed day in the history; seen names keep their own window.
    Per hour, not one level: a day-level shift in z cannot draw a closed day (no orders in
    business hours, the usual nothing at night). No seen holiday: no effect (unidentified),
    and `notes` say so. UK retail: Good Friday, without orders, tells the royal wedding and May
    Day a week later. Holidays on the country's weekend are neither learnt from nor forecast
    (forecaster.events `pooled_holiday_days`). Computed from each fit (no extra Prophet fit)."""
    pooled_holiday_band: bool = True
    """The interval also spans the forecast WITHOUT the pooled holiday effect: on those days the
    effect is borrowed, not observed (a US Columbus Day is no Thanksgiving for a taxi fleet), and
    capacity is sized to the upper bound. Off holidays nothing changes."""
    tau_candidates: tuple[timedelta, ...] = field(default_factory=_default_taus)
    """Ebb time constants to choose among (geometric: 2h .. 128h, 7 values). Stretched for
    coarse series: see `tau_min_steps`."""
    tau_min_steps: float = 1.0
    """The candidate grid is multiplied by max(1, this x series step / its shortest candidate),
    so no candidate is shorter than this many series steps (a decay within one step cannot be
    seen): hourly and finer data keep 2 h .. 128 h, daily data get 1 d .. 64 d (weeks of
    decline). 0 disables the stretch."""
    ebb_power_alphas: tuple[float, ...] = (1.0,)
    """Exponents of power-law (hyperbolic) ebb kernels (1 + t / tau) ** -alpha scored next to
    the exponential ones once the ebb is observed, on the shortest `power_tau_count` taus of the
    same grid (forecaster.events `EbbKernel`): attention after news and launches decays fast,
    then with a long tail, which no single exponential follows. Each exponent adds
    `power_tau_count` Prophet fits to a cold fit with the ebb observed (none with no ebb
    observed: the prior is exponential). Empty: exponential kernels only (the model before the
    long-tail work)."""
    power_tau_count: int = 5
    """How many of the (stretched) grid's shortest taus carry the power-law kernels (hourly:
    2 h .. 32 h). A power law's tau is the length of its fast first phase; with tau of days it
    barely falls within a week, which the long exponentials already offer. Measured against all
    7 (bench/README.md): real "other" median 0.91 vs 1.00 (on a trace with no real ebb, taxi
    Thanksgiving +2 d, 128 h^-1 tied with the 128 h exponential on noise), power-law seeds'
    ebb median 0.56 vs 0.51 (the heaviest tail, alpha 0.75, wants a long tau), 12 fits vs 14."""
    power_settle: bool = False
    """Whether power-law kernels also get a new peace level (`settle`). Off: a long tail is the
    competing explanation of a tail that stays up (exponential to a new level, or power law back
    towards the old one), and with a level a short power-law kernel fits any first day of tail
    and extrapolates the level (measured on a (1 + t/12h)^-1 ebb cut a day after the end: the
    chosen kernel's 7-day WAPE 0.36 with the level, 0.08 without)."""
    power_needs_evidence: bool = False
    """Choose a power-law kernel only when it is clearly better than the best exponential (the
    exponential not `plausible` next to it); else the exponential is the forecast and the
    power law only widens the interval."""
    ebb_family_hedge: bool = True
    """When the best kernel of the other family (exponential vs power law) fits the observed ebb
    as well as the best one (within noise: `_not_worse`, a paired two-standard-error check), yhat
    is the mean (in z) of the two fits' forecasts; the band spans both (`band_spans_families`).
    A day of tail rarely tells an exponential from a power law, and the two part ways over the
    week: on tests/test_model.py's series (an exponential ebb, tau 16 h) cut a day after the
    end, the power law 8 h^-1 scored 0.085 against the exponential's 0.092 and forecast the week
    at 1.5-1.8x the actual demand (WAPE 0.58). The mean halves the log error of whichever is
    wrong (bench/README.md, "Exponential or power law: a hedge")."""
    peak_hedge: bool = True
    """Fitted after a joint live event's peak but before its end (its peak seen, no whole bucket
    of its ebb), what follows is a prior: the show's audience may stay to the announced end or
    leave within the hour, and the ebb's pace is the prior's centre (`tau_candidates`, 16 h).
    yhat is then the mean (in z) of the forecast with the event going on and the forecast with
    it over at the cut (its columns zero from the history's end on); the band spans both, so
    capacity (sized to yhat_upper) is unchanged. Attention after a launch or a keynote can be
    gone within hours: cut at such peaks, the calendar's event alone was forecast at 1.0-1.7x
    the best baseline's error on NASA's launch and AAPL's event, while the same traces with no
    calendar did better (bench/README.md, "Cut at a show's peak"). Sales are not hedged: a
    discount holds its buyers to its end (tests/test_model.py's sale, held 4 h after its peak,
    cut an hour after it: WAPE 0.07-0.09, 0.31-0.32 if it were hedged)."""
    band_spans_families: bool = True
    """With the ebb observed, the interval also spans the best candidate of each kernel family
    (the exponential, each power law), plausible or not: a day or three of tail rarely tells
    the tail's shape apart beyond doubt, a wrong shape's error grows with the lead (no
    residual set of the history shows it), and capacity is sized to the upper bound (measured
    on the seeded suite: a single power-law kernel chosen on a 1-day tail forecast well but
    its band held 34-48% of the week's points)."""
    band_spans_neighbours: bool = True
    """With the ebb observed, the interval also spans (`neighbour_reach` of the way towards) the
    best kernel's neighbours on its own family's tau grid (the next shorter and longer tau with
    the same exponent, when fitted and not below the observed tail): the grid steps tau by a
    factor 2, so the ebb's real time constant lies anywhere between the best grid point and its
    neighbours, and a slower tail than the best one's is what under-covers the days after a
    news-like spike (page views cut a day after the event held ~75% of the week under the upper
    bound with the best and each family's best alone; 99% with the neighbours at reach 0.5)."""
    neighbour_reach: float = 0.5
    """How far towards each grid neighbour the band reaches (`band_spans_neighbours`), in z
    between the best kernel's forecast (0) and the neighbour's (1). The best grid point is the
    one nearest the real tau, so the real tau lies within half a grid step of it: 0.5 reaches
    about tau x sqrt(2) (and / sqrt(2)) without another Prophet fit."""
    settle_floor: bool = True
    """A candidate whose new peace level (`settle`) would take the forecast below what the
    observed tail supports is not chosen: its level must not be below min(0, the event's fitted
    effect at the last observed ebb point) - `settle_floor_tol` (in z). While the tail is still
    above the old level, a negative level is the curvature of a wrong kernel extrapolated, not
    data; under-forecasting capacity is the worse error. When every candidate breaks it, the
    best one is refitted without the level (one extra Prophet fit)."""
    settle_floor_tol: float = 0.05
    """Slack of `settle_floor` in z (log units: about 5% of the level)."""
    ebb_ceiling: bool = True
    """After an event whose peak is in the history, the forecast over its ebb (end .. end +
    `ebb_span`, outside any event window) is capped at the highest value observed in the
    history: an ebb falls from the peak. Cut at (or just after) the event's end, no ebb point
    is observed yet and the event's `inside` and `shape` effects cannot be told apart; the
    forecast just after the end was then measured at 2-6.7x the highest value ever observed on
    page-view traces. The cap binds only on such forecasts; `notes` say when it did."""
    ramp_ceiling: bool = True
    """While an event's ramp is in the history but its peak is not (a fit inside the ramp),
    its size is extrapolated from the part of the ramp seen, often hours of night traffic whose
    rise in z says little about the peak; the forecast (yhat and the band) from the event's
    start until `ebb_span` after its end is then capped at the highest value observed in the
    history times the event's `lift` (1 without one), up to the start of a later event that has
    not started yet (yhat_lower keeps its ratio to yhat). Ebbtide so never extrapolates a first-time event beyond anything it has
    seen unless the calendar says how big it is (`lift`); the demand observed and the burst
    allowance still scale up for a ramp that goes higher. Measured (bench/README.md, "A ramp
    seen in part"): Melbourne's Boxing Day fitted 6 h into its declared ramp forecast 30k at the
    peak (12x the actual 2.4k, 6x the history's highest), and the replay pre-scaled to 404 pods
    where 43 served it. The cap binds only on such forecasts; `notes` say when it did."""
    ebb_start_cap: bool = True
    """Until the ebb's own starting height is learnt (`tail`, after `min_tail` of observed ebb),
    an ebb does not start above the event it follows: with the shape's coefficient a > 0 and
    the `inside` one b < 0 (in z), it starts at the event's fitted level at its end, a + b,
    but not below 0 (the level without the event), i.e. at max(a + b, 0) instead of a. Before
    any ebb point the two are barely identified (a cut inside the ramp, or at the end): on NYC
    taxi cut at Black Friday noon, 6 h of its morning dip seen, b = -0.73 and a = +0.62 put the
    ebb 0.62 above normal and the next day's forecast 1.7x the actual. The fit is unchanged;
    prediction carries `inside` along the ebb (w = min(1, a / -b) times the decay after the
    end). It can only lower yhat over an ebb, never below the forecast without the event; the
    interval still spans the uncapped ebb (a prior, not data: measured, capping the band too
    lost coverage at 9 of 16 synthetic peak cuts). `notes` say when it acts."""
    ebb_start_at_event_level: bool = True
    """The other side of `ebb_start_cap`: until the ebb's own starting height is learnt (`tail`),
    with the `inside` coefficient b > 0 (the event's level held through its window is above
    what the shape a explains) the ebb starts at the event's fitted level at its end, a + b,
    instead of a: the war state does not vanish at the calendar's end, it ebbs (docs/DOMAIN).
    Without it a sale that stays up through a long window (11.11 over 28 h: b carries the
    level, a is small) was forecast straight back to normal at its end: 77 against 535 in the
    first hour. Same mechanics as the cap (`inside` carried along the decay, w = 1); the band
    still spans the ebb from a, so the interval is never narrower. `notes` say when it acts."""
    long_tau_needs_evidence: bool = True
    """While less observed ebb than the prior's centre (the centre of `tau_candidates`, 16 h
    by default, as with no ebb; observed ebb = its points x the fit step) is seen, a tau longer
    than the centre is chosen only when the observed ebb tells it apart from the centre: else
    the candidate of the best one's family (exponential or power law) nearest the centre (in
    log tau) among those within noise of the best is the forecast. Within noise: Gaussian
    log-likelihood ratio (sum of squared z errors on the ebb points, difference to the best's,
    over 2 sigma^2) at most 1/2, the usual one-parameter 68% interval, sigma the robust sd
    (1.4826 MAD) of the best fit's z residuals outside event and ebb windows (the history's own
    noise on the fit grid; residuals are autocorrelated, so with several ebb points this
    overstates the evidence and the rule acts less). Why only
    long taus: a short observed ebb can show that tau is short (the level visibly drops) but
    not how long a long one is (every kernel with tau >> the observed span is flat over it, so
    the score saturates and a point above the fit, noise, picks the grid's longest), and a
    long tau holds the event's level for days. Why only before the centre's span: from then
    on the centre's kernel has fallen by 1 - 1/e over the observed ebb, and near-flat scores
    mean the fit's `tail` and `settle` terms let a short kernel mimic the tail seen, not that
    the tail is flat; the scores' choice extrapolates better there (measured on the 5-20 day
    synthetic ebbs cut 1-2 days in: long-ebb median ratio 0.44 with the rule acting there,
    0.35 with this bound, as without the rule). Measured: a 4.2x plateau held 31 h, cut 42 min
    after its end (5-minute data, one ebb point on the 30-minute grid, scores 0.097 at 128 h vs
    0.108 at 16 h, sigma 0.106) chose 128 h against a true 8 h and the ebb, starting at the
    event's level (`ebb_start_at_event_level`), stayed near the plateau all week (7-day WAPE
    116%). The interval is unchanged (it spans the plausible candidates, the best one's too);
    `notes` say when the rule acts."""
    prior_tau_spread: float = 2.0
    """With no ebb observed yet, the interval spans the tau candidates within this factor of
    the centre (the prior's central range) instead of the whole grid."""
    ebb_span: timedelta = timedelta(days=7)
    """How long after an event's end its observed ebb scores the tau candidates."""
    event_align_within: timedelta = timedelta(hours=12)
    """An event whose traffic kept rising after its declared end (a peak written in local time
    as UTC, a show whose crowd peaks hours after the announced time) is fitted with the whole
    entry moved so that its peak is the observed one, when that peak lies within this long after
    the declared end, stands at least `event_align_min_ratio` x the typical level of its time of
    the week and x the median of the quiet history, and is 1.25x higher (as a ratio) than
    anything inside the declared window; only once the whole window is observed and no other
    event starts in it (`forecaster.events.align_to_observed`). The ebb then starts where the
    traffic falls, instead of taking the rest of the rise as its first hours. Measured on
    bench/slow_ebb.py's traces declared 3 h or 8 h early: 9 of 28 cuts worse than the best
    baseline before, none after (bench/README.md, "Event times a person got wrong"). 0 turns
    it off."""
    event_align_min_ratio: float = 2.0
    """See `event_align_within`: how far above the typical level the later peak must stand."""
    undeclared_note_ratio: float = 3.0
    """A run of the history at least this many times the typical level of its time of the week
    for longer than `outlier_max_run`, with no sale or joint live occurrence from a day before
    it to its end (in an event's `ebb_span`, only traffic that rose 2x from the trough since
    that event's peak), is named in `notes` as an undeclared event
    (`forecaster.events.undeclared_excursions`), and modelled as one (`undeclared_events`).
    0 turns both off."""
    undeclared_events: bool = True
    """An undeclared run (`undeclared_note_ratio`) whose peak is past (the event's end, below,
    inside the history and the last bucket clearly under the peak) is modelled as an event of
    its own (kind `joint_live`, named `undeclared-<peak>`), with times read off the history
    (`forecaster.events.Excursion`): its ramp from where the traffic was last under 1.25x
    typical, its peak at the highest ratio, its end after the hold (within 1.25x of the peak)
    and the fast fall that follows (1.25x lower within the hour); its ebb is then fitted like a
    declared one's, instead of the spike being fitted as ordinary traffic (Prophet's trend and
    seasonality bend to it, or it is forecast to come back). It never lends its size to an
    unseen event of the calendar (`unseen_borrows_effect`). Measured (bench/README.md, "An event
    nobody declared"): bench/slow_ebb.py with no calendar entry, cuts worse than the best
    baseline 12 of 33 with a note only, none with this; the forecast bench with no calendar at
    all (`--no-calendar`), synthetic geometric mean ratio 0.958 -> 0.551; a main sale or Cyber
    Monday left out after a declared first event (a run in its ebb that rose 2x from the trough
    is another event): seeded two-event ebb cuts median 1.11 -> 0.68. Off: a note only."""
    flat_event_ratio: float = 1.25
    """A sale or joint live occurrence that brought no peak is fitted as a holiday-kind date
    effect, with no ramp, ebb or new peace level: its whole window [start, end) is in the
    history, half of its fit-grid buckets at least are observed, and its traffic, as a ratio to
    the typical level of its time of the week smoothed over an hour, stayed under this all
    through the window (forecaster.events.flat_occurrences; checked after `event_align_within`
    moved the entry, before undeclared events are looked for). An ebb is the fall from a peak;
    fitted as a sale, a window at or under the typical level made the kernel and `settle` carry
    whatever followed it (a holiday weekend's low) as an ebb and a new peace level. Measured
    (bench/README.md, "A sale that brought no peak"): NYC taxi's Black Friday, declared a sale,
    stood at most 1.14x a typical Friday; cut two days later the week was forecast 17% low
    (WAPE 0.17 against the weekly naive's 0.19; 0.07 now), and the 7-day sweep after it moved 4
    of 5 cuts better. 1.25 is the margin the event rules use for "clearly higher" (one noisy
    hour stands about that high); every declared event of the benches' other traces stood 2.2x
    or more. Until the window is wholly observed the entry stands (cut inside it, its peak may
    come). `notes` say when it acts. 0 turns it off."""
    unseen_borrows_effect: bool = True
    """A sale or joint live event of the calendar with no occurrence in the history (its size
    cannot be learnt: the main sale after a pre-sale wave, cut during the wave's ebb) borrows
    the fitted effect of the events of its kind whose peak the history holds: the mean of their
    `shape` and `inside` contributions (in z, with their peak ratio K and ebb start, each drawn
    on the unseen event's own calendar times and tau; never below 0). Without it such an event
    was forecast as no event at all (the seasonal level through a 3-15x main sale: capacity
    sized to the upper bound was not ready, as with the partner event in docs/DOMAIN.md that
    nearly took the servers down). The borrowed size is a prior, not data: the interval also spans the forecast
    without it, and the `ebb_ceiling` does not cap from the unseen event's start on (it may
    rise above any past value). No seen event of the kind: nothing borrowed, `notes` say so.
    An unseen event with a calendar `lift` hint is sized by the hint, not by donors (the
    operator's explicit knowledge wins), whether this setting is on or off."""
    ebb_until_next_event: bool = True
    """An event's ebb counts as observed only until the next sale/joint_live event starts
    (forecaster.events `clean_ebb_windows`): the points that score the tau candidates, that
    make its `tail` (`min_tail`) and new peace level (`settle`: `min_settle_tail`, half of the
    move) learnable, and its last observed ebb point for `settle_floor`. From the next event's
    start its ramp, peak and ebb lie on top of this ebb: a second sale two days after the first
    (Black Friday -> Cyber Monday), cut at the second's end, had the first's settle level learnt
    over the second's ramp and peak (its 1 - decay rises through them) and the forecast climbed
    from 2x to 12x the actual over the week (7-day WAPE 6.7). Off: the ebb counts for
    `ebb_span` whatever follows (the model before the multi-event work). With one event per
    history nothing changes."""
    long_tau_own_ebb: bool = True
    """With `long_tau_needs_evidence`, when the observed ebb that scores the shared tau holds
    an earlier free event's ebb (several events without an `ebb` hint in the history), the
    rule's bound counts only the observed ebb of the latest free event (the last one started
    before the history's end: the one whose ebb is forecast). An earlier event's ebb says
    nothing about the latest's tau except through the shared kernel, and each event has its
    own `tail` and `settle` terms, so near-flat scores on a small wave's long clean ebb are
    not evidence for a long tau of the main sale that follows. While the latest event's own
    ebb is shorter than the prior's centre, a best tau longer than the centre is then chosen
    only when it beats the centre by more than noise (same test and pick as
    `long_tau_needs_evidence`). Measured (bench/README.md, "Several events"): seed 23 (a 3.1x
    pre-sale wave, tau 28 h; 8 days later a 10.1x main sale, tau 32 h; 5-minute data) cut at
    the main sale's end: on the wave's 5-day ebb the mean |z error| was 0.035 at 16 h, 0.034
    at 32 h and 0.033 at 64 h, 64 h won and the main sale ebbed with it. With one event in the
    history nothing changes; off: the bound counts every observed ebb point."""
    holdout: timedelta = timedelta(days=7)
    """Recent history held out (refit without it) to calibrate intervals and to compare with the
    seasonal naive; at most a quarter of the history."""
    weekly_naive_min_training: timedelta = timedelta(days=7)
    """With no event around, the seasonal naive Prophet is compared with (and averaged with)
    copies the same local time a week back when the history before the holdout spans at least
    this much, else a day back. A week-back copy needs one week before the holdout, no more:
    every holdout point's source is then in it. The daily naive copies yesterday, so a Saturday
    onto a Sunday and a Friday onto a Monday, on traffic with a weekly cycle. 14 days was the
    rule before (2026-11-24), which sent histories of 9.3 to 18.7 days (a quarter held out) to
    the daily naive: over 107 ordinary weeks cut with 11 days of history (`bench/forecast.py
    --history 11d`) 1.35x -> 1.04x the best baseline (geometric mean), 75 -> 47 cuts above it.
    At least 7 days."""
    no_event_average_min_training: timedelta = timedelta(days=14)
    """`no_event_average` needs this much history before the holdout; with less (and the weekly
    naive), the lowest holdout WAPE of Prophet, the naive and their average decides. Prophet
    fitted on under three weeks is often far behind the naive (NYC taxi cut 2014-10-06 with 10
    days: holdout WAPE 0.218 against 0.067), the holdout of a few days rarely holds enough
    days for one of the two to win each, and the premise test (`no_event_average_departure`)
    needs three weeks. Measured with `bench/forecast.py --history` (bench/README.md, "Short
    histories"): over 107 ordinary weeks cut with 11 days, 1.049x -> 1.039x the best baseline
    (geometric mean), 51 -> 47 cuts above it; with no calendar (NASA and AAPL, an undeclared
    event in the copied week) the ebb cuts 0.813 -> 0.802. 0 days: the average from one week."""
    no_event_average: bool = True
    """With no event around and the weekly seasonal naive (`weekly_naive_min_training`), on two
    weeks of training (`no_event_average_min_training`), forecast the average of Prophet and the
    naive unless one of the two beats the average on every ordinary day of the holdout (its WAPE
    on that day's scored points lower; at least two such days); then that one alone. One week of
    holdout is too little to choose by its lowest WAPE: the choice follows the week's luck, and
    the average of two forecasts with different errors is rarely far behind the better one and
    often ahead of both. A model that loses every day (a Prophet fit gone wrong, a naive on a
    shape that moved) is still dropped. With the daily naive (under `weekly_naive_min_training`
    of history before the holdout) the lowest holdout WAPE still decides: yesterday's copy lacks
    the weekly cycle, and right after an event nobody declared it copies the ebb (NASA and AAPL
    with no calendar: 1.26-1.47x Prophet's holdout error; averaging lifted five of their cuts
    above the best baseline). False: the lowest holdout WAPE of the three (ties to Prophet)
    everywhere, the model before. Measured (bench/README.md, "No event around: the average"):
    over 58 swept ordinary weeks of two real traces, choosing by lowest WAPE was 0.897x the best
    baseline (geometric mean), the average 0.879x; NYC taxi's quiet cut coverage 0.88 -> 0.94."""
    no_event_average_departure: float = 5.0
    """`no_event_average` assumes the week ahead is ordinary, like the last. It does not hold, and
    the lowest holdout WAPE decides instead, when the history holds an event nobody declared
    that is fitted as ordinary traffic (`undeclared_note_ratio`: noted, not modelled), or when
    the mean level (in z) of one of the last 7 days (the week the naive copies) moved from the
    same day a week before by more than this many robust sd of the earlier days' week-on-week
    moves (`forecaster.model.recent_days_depart`; 0: never): a sale or show too small for the
    undeclared-event rule going on or ebbing at the cut, or inside the week the naive would
    repeat; an undeclared holiday; a closure. A warm refit redoes a reused holdout calibration
    when the premise changed since it was made. Declared holidays are tested too: leaving their
    days out (tried) moved a real quiet cut (Melbourne 2016-05-02, the Sunday before ANZAC Day
    in the week the naive copies) over the threshold, 0.72x -> 0.92x the best baseline. 5, as `outlier_sigma`: a robust sd from four
    weeks of days is itself uncertain by about a third, and at 3 a steady seeded series under
    15% hourly noise (tests/test_no_event_average.py) was flagged by chance (4.0). Measured (bench/README.md, "No event
    around: when the average's premise fails"): with no calendar, the seeded suite's small
    sales (2.8x, 3.3x) were averaged with a naive that copied an ordinary week, coverage 0.98
    -> 0.57 at their peaks."""
    mode_band_spans_prophet: bool = True
    """When the holdout chose the seasonal naive or the average (no event around), the band is
    the wider of that forecast's own band and Prophet's, point by point. The choice rests on a
    week of holdout or less, and the chosen forecast's own residuals on the days since the
    history's first week: a band that does not also span the model set aside is sure of a
    choice the data cannot make. Measured (bench/README.md, "The band spans Prophet's"): the
    bench's 30 real cuts, coverage of yhat_upper >= 0.9 on 28 -> 30 (NYC taxi's Christmas week
    0.86 -> 0.90 and 0.89 -> 0.92), at more spare capacity on the six cuts it moved (the share
    of demand a capacity sized to yhat_upper leaves unused: 0.39-0.40 -> 0.47 on those two);
    ordinary weeks swept, NYC taxi 21 -> 22 of 25 and Melbourne 28 -> 33 of 42 (spare 0.22 ->
    0.24, 0.25 -> 0.28), and with 11 days of history 73 -> 91 of 103 (spare 0.95 -> 1.20, UCI's
    closed nights included). The forecast (yhat) is unchanged. False: the chosen forecast's
    band alone."""
    naive_skips_holidays: bool = True
    """When the holdout chose the seasonal naive or the average (no event around), Prophet's
    forecast and band are used instead on the points whose local date is a holiday (public,
    `country_holidays`, or a holiday-kind event), or whose naive source (the same time one
    season back, in the history) falls on one: the naive copies an ordinary day onto a holiday
    and a holiday onto an ordinary day, while Prophet has the holiday's own window (or the
    pooled effect) and knows the ordinary day. The choice is made on ordinary days
    (`holdout_ordinary_days`), so it acts on ordinary days. `notes` name the days."""
    naive_skips_outliers: bool = True
    """The seasonal naive (its forecast with no event around, its holdout score, its interval)
    copies the history with the points the fit left out set missing: a collection outage (runs
    of zeros, `zero_outage_typical`) and the fit-grid buckets the outlier screen masked
    (`outlier_sigma`). SeasonalNaive fills a missing point from the season before, so a burst
    of a few hours a week ago, or an outage, is not repeated a week later. Without it the
    average copied half of such a burst: AAPL 5-min cut 2015-04-20, the 1-3 h burst of 04-14
    came back on 04-21 21:00-24:00Z at 1276 mentions per 5 minutes on average (113 observed)."""
    holdout_ordinary_days: bool = True
    """The holdout's model choices (the residual profile's weight; with no event around,
    Prophet vs the seasonal naive vs their average) are scored by WAPE on ordinary days only:
    the local dates (`calendar_tz`) of public holidays (`country_holidays`) and holiday-kind
    events are left out. The holdout refit has never seen a holiday inside the holdout, so its
    per-name window is unlearnt there, and the seasonal naive copies an ordinary day: neither
    error says how a model does on the ordinary days the choice is about (the forecast week may
    have no holiday at all; where it has one, the per-name window or the pooled effect acts,
    learnt on the full history). When the ordinary points would be fewer than a day or than
    half of the scored ones, all are scored. The interval's holdout residuals keep the
    holidays: a forecast week has unlearnt holidays too, and capacity is sized to the upper
    bound. `notes` name the days left out."""
    recent_level: bool = True
    """Carry the last day's level misfit into the forecast, decaying: d0, the mean z residual of
    the fitted forecast over the last 24 h of history (when none of it lies in an event's window
    or its `ebb_span`, and it holds half a day of points), is added to yhat at lead L days times
    phi ** L; phi is the history's own persistence of daily misfits, the AR(1) coefficient
    (through 0) of consecutive 24 h block means of the residuals outside event windows over the
    lookback, clipped to [0, 0.95] (at least 7 pairs, else no correction). Prophet's flat trend
    and fixed seasonality cannot follow a level that moved in the last days (the week after
    Christmas, a declining month); a seasonal naive copies the level whole, for a week; this
    carries it as long as the history says such moves last. The band spans the forecast with
    and without it (capacity is sized to yhat_upper: never lowered by it). Only the Prophet
    forecast (not the seasonal naive or the average, `_mode`), unless the level broke in the
    last days (`level_break_sigma`: phi 1, Prophet's forecast). `notes` say d0, phi and the shift
    on the first and last day."""
    recent_level_after_event: timedelta = timedelta(days=3)
    """`recent_level` stays off while the last 24 h touch an event's window or lie within this
    long after its end, and those days are left out of phi: the ebb's own fit (tau, the new
    peace level) owns them. After 3 days even the slowest plausible ebb of the prior (32 h) is
    down to a tenth, and the last day's misfit is a level again. It was `ebb_span` (7 days)
    before: NASA hourly cut a week after the launch (07-20, the launch's weekday) forecast the
    next day 25-35% high at a level the month had already left (24 h WAPE 31% against the daily
    naive's 11%; 24% now). Measured (bench/README.md, "The recent level after an ebb"): of 28
    cuts 3-7 days after the real traces' events 11 moved, 10 better, one worse by 0.002; of the
    bench's 30 real cuts one moved (0.427 -> 0.432), of its 118 seeded none; 0 restores the
    correction right after an end, 7d the rule before."""
    level_break_sigma: float = 5.0
    """A level break: the daily misfit (`recent_level`: the mean z residual of a 24 h block)
    jumped within the last 7 days and held (`forecaster.model.level_break`): each of the last
    j days (j from `level_break_days` to 7) lies more than this many robust sd of the history's
    day-to-day misfit changes (1.4826 MAD) from the median of the 3 days before them, all on
    one side and within this many sd of one another. The scale is the day-to-day change, not
    the misfits' spread, so a level that wanders under Prophet's flat trend is not read as a
    break and one that jumps is. A step (a migration, a lost channel, a new audience, a
    season's turn) is then carried undecayed (phi 1) over the horizon: the persistence
    `recent_level` learns from ordinary days says nothing of a step (~0 when none came
    before). Prophet's forecast (with it) is used even when the holdout chose the seasonal
    naive or the average: they copy a week from before the step. Not when those days touch a
    holiday's local date (public or declared: the holiday's own effect, not a level). The band
    still spans the forecast without the shift, so a break down never lowers yhat_upper. 5, as
    `outlier_sigma`. 0: never (the decaying correction alone). Measured (bench/README.md, "A
    level break"; `bench/level_break.py`)."""
    level_break_days: int = 2
    """Days a level break must have held (`level_break_sigma`). One day cannot tell a step from
    a day off nobody declared, nor a peak or an ebb going through the last day: tested with 1
    on the seeded suite with no calendar, the break fired at the peaks of undeclared sales and
    carried them over the week (geometric mean ratio 0.59 -> 0.66, a cut up to 5.3x the best
    baseline), and on NYC taxi's Black Friday (0.52 -> 1.10). With 2 a step is followed from
    its second day on (a controller refits hourly)."""
    honest_in_sample: bool = True
    """With the seasonal residual profile added (weight > 0), the interval's in-sample residuals
    use the profile with each point's own period left out (`_profile_left_out`): the profile is
    the median of the last `profile_periods` periods' residuals per slot, so in-sample it
    partly fits its own points and the residuals understate the error a new period meets.
    False: the profile as fitted (the model before this setting)."""
    holdout_origins: int = 2
    """Forecast origins whose held-out residuals calibrate the interval: the holdout (the last
    `holdout`) and, for each further origin, the `holdout` before the previous one, refitted
    without it and forecast over it (one more Prophet fit each; kept while the calibration is
    reused, `recalibrate_every`). An origin is used only when at least three times its span of
    history lies before it (the holdout's quarter rule). One week's holdout samples one week's
    luck: a second shows more of how far a week's level drifts from the fit. Only the interval
    uses the extra origins; the model choices (residual profile weight, Prophet vs the seasonal
    naive) stay with the latest holdout. 1: the latest holdout alone."""
    interval_lead_edges: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3))
    """Lead-time buckets of the interval (lead = time after the last observed point): one pair
    of residual quantiles per bucket (default: <= 1 d, 1-3 d, > 3 d), from the holdout residuals
    of that lead pooled with the in-sample ones, made monotone (the band never narrows with lead).
    Leads past the holdout use the last bucket that has holdout residuals. Empty: one pair."""
    interval_block: timedelta = timedelta(days=1)
    """Residuals within one block of lead time count as one observation in the finite-sample
    (conformal) correction: holdout residuals are correlated (a day's level misfit moves all its
    hours together), so a bucket of n residuals over d days is d observations, not n. The
    correction raises the level to q + (1 - q) / (d + 1). Zero: each residual counts (n)."""
    interval_groups: int = 4
    """Daily level bands of the interval (group-conditional, "Mondrian" conformal): the slots
    of the day (fit-grid steps, in `calendar_tz`) are ranked by the fitted level (median
    in-sample z outside event windows) and cut into this many bands of equal slot count
    (quietest first); each band gets its own residual quantiles per lead bucket, from its own
    in-sample and holdout residuals. The transform does not fully stabilise the variance
    (nights are noisier or quieter in z than evenings), so one quantile for all hours
    over-covers some hours and under-covers others. Every future point's band is known in
    advance (its time of day). Daily or coarser data: one band. 1: one pooled quantile per
    lead bucket (the model before this setting)."""
    interval_group_min: int = 48
    """In-sample residuals a band needs for its own quantiles (else it uses the pooled ones);
    a (band, lead bucket) cell without holdout residuals of its band uses the pooled value."""
    horizon_hint: timedelta = timedelta(days=7)
    """How far ahead predictions are expected; events starting within it are modelled."""
    uncertainty_samples: int = 0
    """Prophet's simulated intervals (slow). 0: intervals come only from calibrated residuals
    (the default); > 0: the wider of the two is used."""
    changepoint_prior_scale: float = 0.05
    """Unused with the flat trend; kept for the plain-Prophet baseline and future trend modes."""
    init: dict[str, Any] | None = None
    """Warm start: `params` of an earlier fit (Stan's init); ignored if its shape differs."""
    settle_level: bool = True
    """Model a new peace level after each event (a step from its end, in z: a multiplicative
    floor), learnt once part of the ebb is observed; DOMAIN.md: some viewers stay as regulars."""
    min_settle_tail: timedelta = timedelta(days=1)
    """Observed ebb needed (besides half of the move, settle >= 0.5) before a new peace level is
    learnt: less than a daily cycle cannot tell a level from the daily shape's misfit."""
    settle_needs_held_level: bool = True
    """With it, `min_settle_tail` counts only the observed ebb from where the kernel has made half
    of its move (settle >= 0.5) on: the new level must be seen holding for a daily cycle. Without
    it, any observed ebb counts, and with a day of tail a short kernel's settle step turns a slow
    ebb still under way into a permanent level (measured: bench/README.md, "A new level must be
    seen holding")."""
    settle_unheld_hedge: bool = True
    """With `settle_needs_held_level`, while a new level is learnable from the observed ebb but
    not yet seen holding: the exponential candidates are refitted with it allowed (one Prophet
    fit each where it is learnable), the band spans the best of them that is not below the
    observed tail (`settle_floor`), and when that fit's mean |z error| on the observed ebb is
    lower than the chosen fit's, yhat is the mean (in z) of the two. A day of tail cannot tell
    a new level from a slow ebb still under way."""
    settle_two_stage: bool = False
    """Score tau without the settle level, then add it for the chosen tau. Off by default:
    measured on the seeded synthetic suite it lost (median ratio 0.77 vs 0.47, coverage >= 0.9
    on 18/32 vs 27/32 cuts): with a raised peace level, a short tail scored without a level
    picks a tau that the level then cannot repair."""
    settle_prior_scale: float = 0.5
    """Prophet prior scale (sd, in z = log units) of the settle step: shrinks it towards 0 unless
    the observed tail supports it."""
    free_tail: bool = True
    """Once `min_tail` of the ebb is observed, learn its starting height from the tail itself
    (the `tail` regressor), not only from the peak (the `shape` tie)."""
    min_tail: timedelta = timedelta(hours=6)
    """Observed ebb needed before the ebb's starting height is learnt from the tail itself
    (the `tail` regressor) instead of only from the peak (the `shape` tie)."""
    scale_fraction: float = 0.1
    """Transform scale s as a fraction of the history's median (z = log1p(y / s))."""
    seasonal_correction: bool = True
    """Add the recent seasonal profile of the model's own residuals (median per hour-of-week, or
    hour-of-day with under 2 weeks, over the last `profile_periods` periods, event windows left
    out) to the forecast, weighted 0, 1/2 or 1 by the holdout: Prophet's low-order Fourier terms
    cannot draw a sharp weekly shape that repeats exactly, the seasonal naive can."""
    profile_periods: int = 3
    """How many recent weeks (or days) the residual profile is the median over."""
    outlier_sigma: float = 5.0
    """Fit-grid points outside events whose z residual of a first fit lies more than this many
    robust sd (1.4826 MAD) from the median are treated as missing when fitting (bursts without a
    tail, collection gaps read as zeros). 0 disables."""
    outlier_max_run: timedelta = timedelta(hours=6)
    """Only runs of flagged points at most this long are outliers; a longer departure is a regime
    change (level shift, shutdown) the model must see."""
    zero_outage_typical: float = 0.9
    """A run of exact zeros longer than `outlier_max_run`, followed by data again, is a
    collection outage read as zeros (a logging or scrape gap, a server down), not demand, when
    at the same times a day and a week before and after (where observed, outside the run) at
    least this share of the values is not zero: it is then treated as missing, for fitting and
    calibration alike (noted). Zeros that recur there (an online shop's nights or weekends, a
    closure on those days too) are demand; a run still going at the end of the history is kept
    (it cannot be told from demand that stopped). 0 disables. Measured: bench/README.md, "Long
    outages read as zeros"."""
    warm_reuse: bool = True
    """A warm refit (`fit(history, init=params)` with the same settings, step and modelled
    events) reuses the previous fit's choices: the tau choice when no new ebb point arrived
    (else only the previous plausible range +- one candidate is scored) and the holdout
    calibration while it is younger than `recalibrate_every`. False: every fit is cold."""
    recalibrate_every: timedelta = timedelta(hours=24)
    """Age after which a warm refit redoes the holdout calibration (one extra Prophet fit).
    0 disables the reuse."""

    def __post_init__(self) -> None:
        if not (0.0 < self.lower_quantile < self.upper_quantile < 1.0):
            raise ValueError(f"quantiles must satisfy 0 < lower ({self.lower_quantile}) < upper "
                             f"({self.upper_quantile}) < 1")
        if self.event_align_min_ratio <= 1.0:
            raise ValueError(f"event_align_min_ratio must be > 1 (a peak above the typical level), got "
                             f"{self.event_align_min_ratio}")
        if not self.flat_event_ratio >= 0:
            raise ValueError(f"flat_event_ratio must be >= 0 (0: off), got {self.flat_event_ratio}")
        if not self.no_event_average_departure >= 0:
            raise ValueError(f"no_event_average_departure must be >= 0, got {self.no_event_average_departure}")
        if self.recent_level_after_event < timedelta(0):
            raise ValueError(f"recent_level_after_event must be >= 0, got {self.recent_level_after_event}")
        if not self.level_break_sigma >= 0 or self.level_break_days < 1:
            raise ValueError(f"level_break_sigma must be >= 0 and level_break_days >= 1, got "
                             f"{self.level_break_sigma} and {self.level_break_days}")
        if self.prior_tau_spread < 1.0:
            raise ValueError(f"prior_tau_spread must be >= 1, got {self.prior_tau_spread}")
        if not self.tau_candidates or any(t <= timedelta(0) for t in self.tau_candidates):
            raise ValueError("tau_candidates must be a non-empty list of positive durations")
        if any(not a > 0 for a in self.ebb_power_alphas):
            raise ValueError(f"ebb_power_alphas must be positive exponents, got {self.ebb_power_alphas}")
        if self.power_tau_count < 1:
            raise ValueError(f"power_tau_count must be >= 1, got {self.power_tau_count}")
        if self.tau_min_steps < 0:
            raise ValueError(f"tau_min_steps must be >= 0, got {self.tau_min_steps}")
        if any(e <= timedelta(0) for e in self.interval_lead_edges) or list(self.interval_lead_edges) != sorted(
                set(self.interval_lead_edges)):
            raise ValueError("interval_lead_edges must be positive durations in increasing order")
        if self.interval_block < timedelta(0):
            raise ValueError(f"interval_block must be >= 0, got {self.interval_block}")
        if not 0.0 <= self.neighbour_reach <= 1.0:
            raise ValueError(f"neighbour_reach must be within 0..1, got {self.neighbour_reach}")
        if self.no_event_average_min_training < timedelta(0):
            raise ValueError(f"no_event_average_min_training must be >= 0, got {self.no_event_average_min_training}")
        if self.weekly_naive_min_training < timedelta(days=7):
            raise ValueError(f"weekly_naive_min_training must be at least 7 days (a week-back copy needs a week), "
                             f"got {self.weekly_naive_min_training}")
        if self.interval_groups < 1 or self.interval_group_min < 1:
            raise ValueError(f"interval_groups and interval_group_min must be >= 1, got "
                             f"{self.interval_groups} and {self.interval_group_min}")
