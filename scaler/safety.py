"""The planner's safety steps: small pure functions, each taking a replica count and returning
the adjusted count with a `Step` that says what it did and why (nomad-autoscaler style:
"capped count from 12 to 10 to stay within limits").

Every step is pure (no clock: `now` is an argument) and, apart from sizing, only ever moves a
scale-down back towards the current count or a count back inside the hard limits. That is what
makes "safest action wins" hold however the steps are composed: each scale-down restriction is a
floor `max(x, floor)` applied only when `x < current`, so their order does not change the result.

Data checks live here as well: `check_demand` (missing, stale, absurd demand), `check_collapse`
(demand that suddenly falls far below everything known: an outage or a broken metric) and
`check_slis` (quality SLIs in breach, missing or stale). Their verdicts drive the quality guard.

Units: replica counts are pods; demand is in the workload's demand unit (the unit of
`demand.query`, e.g. concurrent viewers); `per_replica` is demand one pod serves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from scipy.signal import lfilter

from policies.schema import QualitySli
from policies.units import format_duration, plural
from scaler.plans import SliReading, Step

#: A demand sample more than this many times above every reference level (the forecast now, the
#: last good sample, what the running pods serve, one pod's worth) may be a broken exporter or a
#: unit change, not traffic: it is not used for sizing and blocks scale-in until it has lasted
#: `scaling.jump_confirm` (confirm_jump); then it is believed (a viral spike is traffic).
ABSURD_JUMP_FACTOR = 100.0

#: A demand sample that falls, in one step, to less than 1/COLLAPSE_FACTOR of both the trusted
#: forecast's lower bound and the last good sample (one pod's worth added to each side) is taken
#: for an outage or a broken metric (exporter restart, counter reset, a dropped label), not for
#: viewers leaving: scale-in and bitrate cuts wait `scaling.collapse_confirm` (check_collapse).
#: 10: the lower bound (q0.1) is already the low side of the forecast, and on the real traces
#: the largest one-sample fall (per_replica = median / 10, as on the replay bench) is 1.9-5.4x
#: (NASA and NYC taxi hourly, Melbourne); the larger ones (NASA 5-minute 11x one evening, AAPL
#: 18-30x after bursts, UCI online retail 303x at closing time) come where the lower bound stops
#: the rule (docs/planner.md, "Demand collapse").
COLLAPSE_FACTOR = 10.0

#: Guard actions a data problem (missing, stale or absurd data) always implies.
DATA_GUARD_ACTIONS: tuple[str, ...] = ("freeze_scale_in", "restore_bitrate")

_ACTION_ORDER = ("freeze_scale_in", "restore_bitrate", "scale_up")


def fmt(x: float) -> str:
    """A number as people read it in a reason: `950`, `0.02`, `0.6667` (4 significant digits
    below 1000), and from 1000 up the nearest whole number, `1046`, `132583` (not `1.326e+05`;
    9999.7 is `10000`, not `1e+04`)."""
    if x is None:
        return "none"
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    if math.isfinite(x) and abs(x) >= 1e3:
        return f"{x:.0f}"
    return f"{x:.4g}"


def _significant(x: float, digits: int) -> str:
    """`x` to `digits` significant digits, never in exponent notation for |x| >= 1."""
    whole = len(str(int(abs(x)))) if math.isfinite(x) and abs(x) >= 1 else 0
    return f"{x:.{max(digits, whole)}g}"


def fmt_factors(factors: Sequence[float], arithmetic: Callable[[Sequence[float]], float],
                pods: Callable[[float], int], digits: int = 3) -> list[str]:
    """The factors of a reason's arithmetic (a growth, a divisor) as printed: the fewest
    significant digits, `digits` at least and 12 at most, such that `arithmetic` redone with the
    printed factors gives the same `pods(result)` and moves the result by at most half a unit
    or 0.01%. So the arithmetic a reason shows gives the pod count the plan took (243901 x
    `1.36 / 1.03` is 322044, 162 pods, where the plan sized 321582 for 161: printed
    `1.3596 / 1.0312`, 321575)."""
    exact = arithmetic(factors)
    want = pods(exact)
    texts = [_significant(f, digits) for f in factors]
    for k in range(digits, 13):
        texts = [_significant(f, k) for f in factors]
        shown = arithmetic([float(t) for t in texts])
        if abs(shown - exact) <= max(0.5, 1e-4 * abs(exact)) and pods(shown) == want:
            break
    return texts


def sample_age(at: datetime, now: datetime) -> str:
    """How old a sample is, for a reason: `sample 17m30s old (from T)`, or for a sample time after
    `now` (a clock problem) `sample time T is 6m in the future`."""
    if at <= now:
        return f"sample {format_duration(now - at)} old (from {at.isoformat()})"
    return f"sample time {at.isoformat()} is {format_duration(at - now)} in the future"


def replicas_for(demand: float, headroom: float, per_replica: float) -> int:
    """Pods needed for `demand` with `headroom` (fraction) on top: ceil(demand*(1+h)/per_replica).

    Rounded to 9 decimals before the ceiling, so binary noise (1000 * 1.1 / 100 =
    11.000000000000002) does not buy a pod. Never negative.
    """
    exact = demand * (1.0 + headroom) / per_replica
    return max(0, math.ceil(round(exact, 9)))


def anchored_growth(forecast_ahead: float, forecast_at_observation: float | None, per_replica: float) -> float:
    """Growth the forecast expects from the observation to the lead window, as a factor >= 1.

    (forecast_ahead + per_replica) / (forecast_at_observation + per_replica), at least 1: the
    demand observed, times this, is what capacity is sized to. One pod's worth is added to both
    levels so that a forecast near zero (a night, a shutdown) cannot turn noise into a huge
    factor. Without a forecast level at the observation (None, not finite): 1.
    """
    if forecast_at_observation is None or not math.isfinite(forecast_at_observation):
        return 1.0
    return max(1.0, (forecast_ahead + per_replica) / (forecast_at_observation + per_replica))


def points_ahead(observed_at: datetime, lead_end: datetime, grid_start: datetime, step: timedelta) -> int:
    """History points the lead window reaches beyond the one holding the observation, >= 0.

    On the grid start + i x step (point i covers [start + i x step, start + (i + 1) x step)):
    index(lead_end) - index(observed_at), where index(t) = floor((t - start) / step). A lead
    window that ends exactly where a point begins reaches that point (as the forecast's window
    maximum counts it). 0: everything capacity is decided for lies in the point being observed.
    """
    s = step.total_seconds()
    if s <= 0:
        raise ValueError("points_ahead(): step must be positive")

    def index(t: datetime) -> int:
        return math.floor(round((t - grid_start).total_seconds() / s, 9))

    return max(0, index(lead_end) - index(observed_at))


def min_burst_pairs(quantile: float) -> int:
    """Fewest (now, ahead) pairs a burst quantile is learnt from: ceil(1 / (1 - quantile)).

    With fewer, the q-quantile of the sample is its maximum (one outlier would size every tick).
    q 0.9 -> 10 pairs, q 0.95 -> 20, q 0.5 -> 2.
    """
    return max(1, math.ceil(round(1.0 / (1.0 - quantile), 9)))


BURST_SMOOTHING: tuple[float, ...] = (1.0, 0.7, 0.5, 0.3, 0.2, 0.1)
"""Smoothing factors the burst allowance's level is chosen from (`burst_growth`); 1.0, the
point alone, comes first and wins ties."""


@dataclass(frozen=True)
class BurstGrowth:
    """What `burst_growth` learnt from a demand history.

    `growth`: the quantile of the realised growth, >= 1; `pairs`: how many (level, ahead) pairs
    it was learnt from; `alpha`: the smoothing of the level it grows from (1.0: the point alone,
    as before levels were smoothed); `level`: that smoothed level after the history's last point
    (NaN when the history ends in missing data without any before it); `loss`: the mean
    quantile (pinball) loss of level x growth against the demand realised, per candidate alpha
    tried (1.0 first, then the others in the order given; what the choice was made on);
    `point_growth`: the growth learnt from the points themselves (alpha 1, over the same pairs),
    for a level that is a single observation. `spikes`: one-point spikes no traffic makes
    (`absurd_spikes`) left out of the history."""

    growth: float
    pairs: int
    alpha: float = 1.0
    level: float = math.nan
    loss: tuple[tuple[float, float], ...] = ()
    point_growth: float = math.nan
    spikes: int = 0


def smoothed_levels(values: Sequence[float], alpha: float) -> np.ndarray:
    """Exponentially smoothed level of `values` after each point: L[j] = alpha x v[j] +
    (1 - alpha) x L[j - 1], L[first finite] = v[first finite]; a missing point (NaN) keeps the
    level (L[j] = L[j - 1]; NaN before the first finite one). alpha 1: the values themselves
    (NaN kept where they are NaN)."""
    v = np.asarray(values, dtype=float)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"smoothed_levels(): alpha must be in (0, 1], got {alpha}")
    if alpha == 1.0:
        return v.copy()
    finite = np.isfinite(v)
    if not finite.any():
        return np.full_like(v, np.nan)
    first = int(np.argmax(finite))
    if finite[first:].all():  # the usual case, vectorised: the recursion as a first-order filter
        out = np.full_like(v, np.nan)
        x = v[first:]
        out[first:] = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])[0]
        return out
    out = np.empty_like(v)
    level = math.nan
    keep = 1.0 - alpha
    for j, x in enumerate(v.tolist()):
        if x == x:  # finite (NaN != NaN)
            level = x if level != level else alpha * x + keep * level
        out[j] = level
    return out


def absurd_spikes(values: Sequence[float], factor: float = ABSURD_JUMP_FACTOR) -> np.ndarray:
    """True at the one-point spikes of a demand history that no traffic makes: a point over
    `factor` x every finite point before it (those already found left out), which the next
    finite point falls back from by the same factor. A broken metric that lasted past
    `jump_confirm` leaves one; left in the history, it would size the burst allowance's
    smoothed level (and choose the smoothing) for hours after it. A jump that stays (the next
    point as high) is traffic and is kept; so is a spike in the last point (nothing after it
    yet), or at the history's start (nothing before it)."""
    v = np.asarray(values, dtype=float).copy()
    n = v.size
    hit = np.zeros(n, dtype=bool)
    if n < 3:
        return hit
    pos = np.arange(n)
    while True:
        fin = np.isfinite(v)
        running = np.maximum.accumulate(np.where(fin, v, -np.inf))
        before = np.concatenate(([-np.inf], running[:-1]))
        first_at = np.minimum.accumulate(np.where(fin, pos, n)[::-1])[::-1]  # first finite at or after j
        after = np.concatenate((first_at[1:], [n]))
        nxt = np.where(after < n, v[np.minimum(after, n - 1)], np.nan)
        new = fin & (before > 0) & (v > factor * before) & np.isfinite(nxt) & (nxt * factor < v)
        if not new.any():
            return hit
        hit |= new
        v[new] = np.nan


def lookback_peak(values: Sequence[float], factor: float = ABSURD_JUMP_FACTOR) -> float | None:
    """The highest demand of a lookback, the peak bitrate's `traffic_below` compares the traffic
    with, or None with no finite point. One-point spikes no traffic makes are left out
    (`absurd_spikes`), and so is a first or last point over `factor` x every other one (nothing
    yet confirms it as traffic): a broken metric's one sample of 3e9 in a week at 3000 would
    otherwise make the whole lookback look quiet and cut bitrate until it left the window.
    Leaving a point out can only lower the peak, so it can only withhold cuts."""
    v = np.asarray(values, dtype=float).copy()
    v[~np.isfinite(v) | absurd_spikes(v, factor)] = np.nan
    for edge in (0, -1):  # the first finite point, then the last, each against the points left
        seen = np.flatnonzero(np.isfinite(v))
        if seen.size < 2:
            break
        others = float(np.nanmax(np.delete(v, seen[edge])))
        if others > 0 and v[seen[edge]] > factor * others:
            v[seen[edge]] = np.nan
    return float(np.nanmax(v)) if np.isfinite(v).any() else None


def burst_growth(values: Sequence[float], ahead: int, quantile: float, per_replica: float,
                 alphas: Sequence[float] = BURST_SMOOTHING) -> BurstGrowth | None:
    """The `quantile` of the growth realised over `ahead` points of a demand history, >= 1, from
    the level (among `alphas`' smoothings) that predicted the history's bursts best.

    For a smoothing alpha and every j whose point v[j], level L[j] (`smoothed_levels`; v[j]
    itself at alpha 1) and points j+1..j+ahead are all finite, the ratio
    (max(v[j+1], ..., v[j+ahead]) + per_replica) / (L[j] + per_replica): how far demand rose,
    at most `ahead` points after a point, relative to the level there (one pod's worth on both
    sides, as in `anchored_growth`, so a night near zero does not turn noise into a huge
    factor). Its sample quantile with numpy's "higher" method (a ratio that was actually
    realised, never an interpolation below it), at least 1, is that alpha's growth G; the alpha
    whose L[j] x G had the lowest mean quantile loss against max(v[j+1..j+ahead]) over those
    pairs is chosen (ties: the larger alpha, so the point alone unless smoothing does better).
    Why: on noisy fine-grained history (5-minute counts) a single point is partly noise, and the
    ratio of two noisy points has a wider quantile than the noise of the next point alone; a
    smoothed level sizes the same coverage with less capacity. On hourly history with a daily
    cycle a smoothed level lags the rise and the point alone wins. A pure function of the history.

    One-point spikes no traffic makes (`absurd_spikes`) are left out first, as missing points
    (`spikes` counts them).

    None when `ahead` < 1 or fewer than `min_burst_pairs(quantile)` pairs at alpha 1.
    """
    if ahead < 1:
        return None
    v = np.asarray(values, dtype=float)
    spikes = absurd_spikes(v)
    if spikes.any():
        v = np.where(spikes, np.nan, v)
    if v.size <= ahead:
        return None
    nxt = np.lib.stride_tricks.sliding_window_view(v[1:], ahead).max(axis=1)  # NaN if any is NaN
    need = min_burst_pairs(quantile)
    best: tuple[float, float, int, float, float] | None = None  # (loss, growth, pairs, alpha, last level)
    losses: list[tuple[float, float]] = []
    for alpha in (1.0, *[a for a in alphas if a != 1.0]):
        levels = smoothed_levels(v, alpha)
        base = levels[: nxt.size]
        ok = np.isfinite(nxt) & np.isfinite(base) & np.isfinite(v[: nxt.size])
        pairs = int(ok.sum())
        if pairs < need:
            if alpha == 1.0:
                return None
            continue
        y, b = nxt[ok], base[ok]
        growth = max(1.0, float(np.quantile((y + per_replica) / (b + per_replica), quantile, method="higher")))
        cap = b * growth
        loss = float(np.mean(np.where(y > cap, quantile * (y - cap), (1.0 - quantile) * (cap - y))))
        losses.append((alpha, loss))
        if best is None or loss < best[0] - 1e-12 * max(1.0, best[0]):  # ties (to rounding) keep the larger alpha
            best = (loss, growth, pairs, alpha, float(levels[-1]))
        if alpha == 1.0:
            point_growth = growth
    assert best is not None  # alpha 1 came first and had enough pairs
    _, growth, pairs, alpha, level = best
    return BurstGrowth(growth, pairs, alpha, level, tuple(losses), point_growth, int(spikes.sum()))


def burst_duty(observed_at: datetime, lead_end: datetime, step: timedelta) -> float:
    """Share of the time the burst allowance is on, 0-1: min(1, (lead_end - observed_at) / step).

    The lead window reaches beyond the point holding the observation for that share of each
    history step (observed_at moves through its point while lead_end - observed_at, the metric
    lag plus the lead window, stays fixed). Hourly history with a 4m15s span: 0.07; 5-minute
    history: 0.85 (the allowance then stands on most ticks, as the headroom does).
    """
    s = step.total_seconds()
    if s <= 0:
        raise ValueError("burst_duty(): step must be positive")
    return min(1.0, max(0.0, (lead_end - observed_at).total_seconds() / s))


def scale_step(current: int, fraction: float, ticks: int = 1) -> int:
    """Largest scale-down over `ticks` ticks taken at once, pods: max(1, floor(current * fraction
    * ticks)); one tick's step by default. The pod is floored once per step taken, so a workload
    keeps its pace per minute whatever the tick: 0.1 a tick at a 1-minute tick is 0.025 a tick
    at 15 s with `scale_down_interval: 1m` (at least 1 pod a minute, not 4).

    A breach's scale-up (the guard) takes `ticks_in(1 minute, tick)` ticks' worth: a minute of
    scale-in undone at once, whatever the tick.
    """
    return max(1, math.floor(round(current * fraction * ticks, 9)))


def ticks_in(span: timedelta, tick: timedelta) -> int:
    """Whole ticks in `span`, at least 1: max(1, floor(span / tick)) (a ratio within 1e-9 of a
    whole number counts as it)."""
    if tick <= timedelta(0):
        raise ValueError("ticks_in(): tick must be positive")
    return max(1, math.floor(round(span / tick, 9)))


# --------------------------------------------------------------------------- data checks
@dataclass(frozen=True)
class DemandCheck:
    """Verdict on this tick's demand sample. `ok` False: missing, stale, or absurd (`problem`).
    `jump`: the sample, when what made it absurd is only its size (over ABSURD_JUMP_FACTOR x
    every known level: `confirm_jump` may still believe it); None otherwise."""

    value: float | None
    ok: bool
    problem: str = ""
    jump: float | None = None


def _not_a_count(v: float) -> str:
    """Why a sample that should be a count, a ratio or a duration is absurd: `not a number`,
    `infinite`, `negative: -3`."""
    if math.isnan(v):
        return "not a number"
    if math.isinf(v):
        return "infinite" if v > 0 else "negative: minus infinity"
    return f"negative: {fmt(v)}"


def stale(at: datetime, now: datetime, max_staleness: timedelta) -> bool:
    """A sample time more than `max_staleness` from `now`: older, or as far in the future (a
    clock problem). One rule for the demand and the quality SLIs."""
    return abs(now - at) > max_staleness


def check_demand(
    value: float | None,
    at: datetime | None,
    now: datetime,
    max_staleness: timedelta,
    references: Iterable[float | None],
    cause: str | None = None,
) -> DemandCheck:
    """Is the demand sample usable for sizing?

    Missing: no value or no sample time (`cause`, when the adapter knows why: what the reason
    says, e.g. "query 'sum(x)' failed: timed out after 1s"; Observation.demand_problem).
    Stale: sampled more than `max_staleness` before `now` (a sample from the future beyond the
    same tolerance counts as stale too: a clock problem).
    Absurd: NaN, infinite, negative, or above ABSURD_JUMP_FACTOR times the largest positive
    reference level (callers pass the forecast level now, the last good sample, the capacity of
    the running pods and one pod's worth, so "absurd" means far beyond everything known).
    """
    if value is None or at is None:
        if cause:
            why = cause
        elif value is None and at is not None:
            why = f"the sample from {at.isoformat()} holds no finite number"
        elif value is not None:
            why = "the sample has no time"
        else:
            why = "no sample this tick: the query failed or returned nothing"
        return DemandCheck(None, False, f"demand data missing ({why})")
    if stale(at, now, max_staleness):
        return DemandCheck(
            None, False,
            f"demand data stale ({sample_age(at, now)}; max_staleness {format_duration(max_staleness)})",
        )
    v = float(value)
    if math.isnan(v) or math.isinf(v) or v < 0:
        return DemandCheck(None, False, f"demand data absurd ({_not_a_count(v)})")
    refs = [float(r) for r in references if r is not None and math.isfinite(r) and r > 0]
    if refs and v > ABSURD_JUMP_FACTOR * max(refs):
        return DemandCheck(
            None, False,
            f"demand data absurd ({fmt(v)} is over {fmt(ABSURD_JUMP_FACTOR)}x every known level, "
            f"highest {fmt(max(refs))})",
            jump=v,
        )
    return DemandCheck(v, True)


@dataclass(frozen=True)
class JumpCheck:
    """Verdict of `confirm_jump`: the demand check to use this tick, the start of a jump under
    way (for `memory.jump_since`; None: none), and, on the tick one is believed, why."""

    demand: DemandCheck
    since: datetime | None
    reason: str = ""


def confirm_jump(demand: DemandCheck, now: datetime, since: datetime | None, confirm: timedelta) -> JumpCheck:
    """Is an absurd jump (`demand.jump`: a sample over ABSURD_JUMP_FACTOR x every known level)
    still a possible broken metric, or has it lasted long enough to be traffic?

    A jump STARTS at the first such sample and CONTINUES while the samples stay absurd by their
    size (`since`, from `memory.jump_since`, keeps its start; a missing or stale sample in
    between does not end it). While it lasts less than `confirm` (the policy's
    `scaling.jump_confirm`) after its start the sample stays unusable (the guard freezes
    scale-in and bitrate cuts, nothing is sized for it) and the problem says for how long more;
    from then on it is believed: `demand` becomes usable with the sample's value, and the
    reason says so. A believed sample becomes the last good one, so the next is measured
    against it. `confirm` 0s: believed at once. Pure: `now` is an argument."""
    if demand.jump is None:
        return JumpCheck(demand, since if not demand.ok else None)
    start = min(since, now) if since is not None else now
    if now - start >= confirm:
        return JumpCheck(
            DemandCheck(demand.jump, True), None,
            f"demand jump since {start.isoformat()} believed after jump_confirm {format_duration(confirm)}: "
            f"{demand.problem.removeprefix('demand data absurd ').strip('()')}; taken for traffic and sized for",
        )
    left = confirm - (now - start)
    return JumpCheck(
        DemandCheck(None, False, f"{demand.problem}; held {format_duration(left)} more as a possible broken "
                                 f"metric (jump_confirm {format_duration(confirm)}, since {start.isoformat()})",
                    jump=demand.jump),
        start,
    )


@dataclass(frozen=True)
class CollapseCheck:
    """Verdict of `check_collapse` on this tick's (usable) demand sample.

    `holding`: an unconfirmed collapse: the guard freezes scale-in and bitrate cuts, and the
    sample must not become `memory.last_demand` (the pre-collapse level stays the reference);
    `since`: the collapse's start, for `memory.collapse_since` (None: no collapse under way);
    `reason`: why it holds, or, on the tick a collapse is confirmed, that the low demand is
    accepted as real ("" otherwise).
    """

    holding: bool
    since: datetime | None
    reason: str = ""


def check_collapse(
    value: float | None,
    lower_bound: float | None,
    last_demand: float | None,
    per_replica: float,
    now: datetime,
    since: datetime | None,
    confirm: timedelta,
    factor: float = COLLAPSE_FACTOR,
) -> CollapseCheck:
    """Has demand suddenly collapsed below everything known (an outage or a broken metric)?

    `value`: the demand sample that passed `check_demand` (None: unusable this tick; nothing is
    decided and a collapse under way keeps its start, `since`). `lower_bound`: the trusted
    forecast's `yhat_lower` for the sample's time (None: no trusted forecast). `last_demand`: the
    last good sample before any collapse (`memory.last_demand`; None on a fresh start, e.g. a
    restarted controller: then the lower bound alone decides, so an outage under way when the
    controller restarts is still held). Demand units throughout;
    `per_replica` (> 0) is one pod's worth; `confirm` the policy's `scaling.collapse_confirm`.

    A reference R "collapsed" to the sample when (R + per_replica) > factor x (value +
    per_replica): one pod's worth on both sides (as in `anchored_growth`), so a zero below a
    lower bound of a few pods' worth (a quiet night, a shop's closing hour) is normal, however
    large `factor`; a zero needs R > (factor - 1) pods' worth. A collapse STARTS when both the
    lower bound and the last good sample collapsed to the sample: below what the forecast allows
    for, and sudden (a slow ebb the forecast missed moves `last_demand` down with it). It
    CONTINUES while the last good sample still collapsed to the sample and the lower bound did
    too or is unknown (a forecast that loses trust during an outage does not end it). While it
    lasts less than `confirm` after its start it holds; once `confirm` has passed the low demand
    is accepted as real (no hold, `since` None, a reason saying so) and the normal scale-down
    rules apply. `confirm` 0s turns the rule off. Pure: `now` is an argument.
    """
    if value is None:
        return CollapseCheck(False, since)
    if confirm <= timedelta(0):
        return CollapseCheck(False, None)

    def collapsed(ref: float | None) -> bool:
        return ref is not None and math.isfinite(ref) and ref + per_replica > factor * (value + per_replica)

    if lower_bound is not None and not math.isfinite(lower_bound):
        lower_bound = None
    sudden = collapsed(last_demand) if last_demand is not None else True
    under = collapsed(lower_bound) if lower_bound is not None else since is not None
    if not (sudden and under):
        return CollapseCheck(False, None)
    start = min(since, now) if since is not None else now
    seen = (f"demand {fmt(value)} is under 1/{fmt(factor)} of both the forecast's lower bound "
            f"{fmt(lower_bound) if lower_bound is not None else 'unknown (no trusted forecast)'} "
            f"and the last good sample "
            f"{fmt(last_demand) if last_demand is not None else 'unknown (a fresh start: the lower bound decides)'}")
    if now - start >= confirm:
        return CollapseCheck(
            False, None,
            f"demand collapse since {start.isoformat()} confirmed after collapse_confirm "
            f"{format_duration(confirm)}: {seen}; accepted as real, normal scale-down applies",
        )
    left = confirm - (now - start)
    return CollapseCheck(
        True, start,
        f"demand collapse since {start.isoformat()} (an outage or a broken metric?): {seen}; "
        f"no scale-in or bitrate cut for {format_duration(left)} more (collapse_confirm "
        f"{format_duration(confirm)})",
    )


@dataclass(frozen=True)
class QualityCheck:
    """Verdict on the quality SLIs this tick.

    `breaches`: (sli name, reason) of SLIs in breach; `data_problems`: reasons for SLIs whose
    reading is missing or stale; `actions`: union of the breaching SLIs' on_breach actions;
    `hold`: longest `hold` among breaching SLIs (the guard lasts that long after the breach).
    """

    breaches: tuple[tuple[str, str], ...] = ()
    data_problems: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    hold: timedelta = timedelta(0)

    @property
    def data_ok(self) -> bool:
        return not self.data_problems


def check_slis(
    slis: Sequence[QualitySli], readings: Sequence[SliReading], now: datetime, max_staleness: timedelta
) -> QualityCheck:
    """Compare each configured SLI with its latest reading (matched by name).

    A reading that is absent, None, NaN, without a sample time, older than `max_staleness` (or
    from further in the future: a clock problem), infinite or negative (an SLI is a ratio, a
    duration or a count) is a data problem (the guard treats it like a breach of freeze +
    restore, without a hold).
    Breach: value above (breach_when=above) or below (below) the threshold; equal is no breach.
    """
    by_name = {r.name: r for r in readings}
    breaches: list[tuple[str, str]] = []
    problems: list[str] = []
    actions: set[str] = set()
    hold = timedelta(0)
    for sli in slis:
        r = by_name.get(sli.name)
        if r is None or r.value is None or r.at is None or math.isnan(r.value):
            problems.append(f"SLI {sli.name} missing")
            continue
        if stale(r.at, now, max_staleness):
            problems.append(
                f"SLI {sli.name} stale ({sample_age(r.at, now)}; max_staleness {format_duration(max_staleness)})"
            )
            continue
        if math.isinf(r.value) or r.value < 0:
            problems.append(f"SLI {sli.name} absurd ({_not_a_count(r.value)}; quality SLIs are ratios, "
                            f"seconds or counts, >= 0)")
            continue
        above = r.value > sli.threshold
        below = r.value < sli.threshold
        if (sli.breach_when == "above" and above) or (sli.breach_when == "below" and below):
            breaches.append(
                (sli.name, f"SLI {sli.name} in breach ({fmt(r.value)} {sli.breach_when} {fmt(sli.threshold)})")
            )
            actions.update(sli.on_breach)
            hold = max(hold, sli.hold)
    return QualityCheck(tuple(breaches), tuple(problems), _ordered(actions), hold)


def _ordered(actions: Iterable[str]) -> tuple[str, ...]:
    s = set(actions)
    return tuple(a for a in _ACTION_ORDER if a in s)


# --------------------------------------------------------------------------- the guard's state
@dataclass(frozen=True)
class GuardState:
    """The quality guard this tick: whether it is active, what it does, until when it holds.

    `actions` ⊆ {freeze_scale_in, restore_bitrate, scale_up}; `live_breach` True when an SLI is in
    breach right now (scale_up acts only then, not during the hold); `until`/`held_actions`/
    `breach` go to the planner's memory (`breach`: the breach that set the hold, as the held
    guard's reason names it; "" without a hold); `reasons` explain it.
    """

    active: bool
    actions: tuple[str, ...]
    live_breach: bool
    until: datetime | None
    held_actions: tuple[str, ...]
    reasons: tuple[str, ...] = field(default=())
    breach: str = ""


def _held_effects(actions: Iterable[str]) -> str:
    """What a held guard does, for its reason (scale_up acts on a live breach only)."""
    s = set(actions)
    out = ["no scale-in (freeze_scale_in)"] if "freeze_scale_in" in s else []
    out.append("bitrate caps at the ladder top (restore_bitrate)" if "restore_bitrate" in s else "no bitrate cut")
    return " and ".join(out)


def guard_state(
    quality: QualityCheck,
    demand: DemandCheck,
    now: datetime,
    guard_until: datetime | None,
    held_actions: Sequence[str],
    collapse: CollapseCheck | None = None,
    held_breach: str = "",
) -> GuardState:
    """Combine live breaches, data problems, a demand collapse and the held guard from memory.

    A breach starts (or extends) the hold: until = max(previous until, now + hold). A data
    problem, or an unconfirmed demand collapse (`collapse.holding`), guards this tick only
    (freeze + restore), with no hold: when data comes back the planner trusts it again. The hold
    keeps the actions of the breaches that set it, and `held_breach` (memory.guard_breach) the
    breach whose hold ends last, so every tick of the hold can name the SLI it holds for.
    """
    reasons: list[str] = [r for _, r in quality.breaches]
    actions: set[str] = set(quality.actions)
    holding = guard_until is not None and guard_until > now
    until = guard_until if holding else None
    kept = set(held_actions) if holding else set()
    breach = held_breach if holding else ""
    if quality.breaches:
        new_until = now + quality.hold
        if until is None or new_until >= until:
            breach = (f"{'; '.join(r for _, r in quality.breaches)} at {now.isoformat()}, "
                      f"hold {format_duration(quality.hold)}")
        until = max(until, new_until) if until is not None else new_until
        kept |= set(quality.actions)
    if holding and not quality.breaches:
        after = f"the last breach ({held_breach})" if held_breach else "the last breach"
        reasons.append(f"guard held until {guard_until.isoformat()} after {after}: {_held_effects(kept)}")
    actions |= kept
    problems = list(quality.data_problems) + ([demand.problem] if not demand.ok else [])
    if collapse is not None and collapse.holding:
        problems.append(collapse.reason)
    if problems:
        actions |= set(DATA_GUARD_ACTIONS)
        reasons.extend(problems)
    if until is not None and until <= now:
        until = None
    return GuardState(
        active=bool(actions),
        actions=_ordered(actions),
        live_breach=bool(quality.breaches),
        until=until,
        held_actions=_ordered(kept) if until is not None else (),
        reasons=tuple(reasons),
        breach=breach if until is not None else "",
    )


# --------------------------------------------------------------------------- replica steps
def clamp(x: int, lo: int, hi: int, limits: str) -> tuple[int, Step]:
    """Bring `x` into [lo, hi]; `limits` says where the bounds come from (for the reason)."""
    if x > hi:
        return hi, Step("clamp", x, hi, f"capped count from {x} to {hi} to stay within limits ({limits})")
    if x < lo:
        return lo, Step("clamp", x, lo, f"raised count from {x} to {lo} to stay within limits ({limits})")
    return x, Step("clamp", x, x, f"{x} is within limits ({limits})")


def scale_down_ticks(
    now: datetime, last_step_down_at: datetime | None, interval: timedelta, tick: timedelta
) -> int:
    """Ticks' worth of step limit a scale-down may use now (scaling.scale_down_interval), >= 0.

    With an interval of at most one tick: 1 (a step every tick). Otherwise 0 while less than
    `interval` has passed since the last scale-down beyond the burst pods (`last_step_down_at`),
    else floor(interval / tick): one step per tick of the interval, taken at once. The pace of a
    long descent is unchanged (at most one step's worth per tick on average); it is made of one
    deletion per interval instead of one per tick.
    """
    if tick <= timedelta(0):
        raise ValueError("scale_down_ticks(): tick must be positive")
    if interval <= tick:
        return 1
    if last_step_down_at is not None and now - last_step_down_at < interval:
        return 0
    return ticks_in(interval, tick)


def limit_scale_down(
    x: int, current: int, fraction: float, speculative: int = 0, ticks: int = 1, interval: str = "", *,
    last_step_down_at: datetime | None = None, left: timedelta | None = None, demand_seen: bool = True,
) -> tuple[int, Step]:
    """At most `scale_step(current, fraction, ticks)` = max(1, floor(current * fraction * ticks))
    pods fewer than `current`, beyond the `speculative` pods of `current` (bought by the burst
    allowance alone for demand that has not come: they may go at once). So a scale-down is at
    most speculative + that many pods. `ticks` comes from `scale_down_ticks` (1: the plain
    per-tick limit; 0: only the speculative pods may go now); `interval` describes it for the
    reason (e.g. "scale_down_interval 5m"), and while it is pending (ticks 0)
    `last_step_down_at` and the time `left` say when the next step may come. `demand_seen`
    False: no usable demand sample this tick (the reason then does not say the burst did not
    come)."""
    if x >= current:
        return x, Step("step_limit", x, x, "no scale-down to limit")
    spec = min(max(0, speculative), current)
    base = current - spec
    allowed = scale_step(current, fraction, ticks) if ticks > 0 else 0
    released = min(spec, current - x)  # burst pods that leave: the sizing may still want some
    freed = ""
    they, them = ("it", "it") if spec == 1 else ("they", "them")
    if spec and released == spec:
        why = (f"the burst {they} {'was' if spec == 1 else 'were'} bought for did not come" if demand_seen
               else f"no usable demand sample this tick shows the burst {they} {'was' if spec == 1 else 'were'} "
                    f"bought for")
        freed = f"the {plural(spec, 'pod')} the burst allowance bought {_go(spec)} at once ({why})"
    elif spec:
        freed = (f"{released} of the {plural(spec, 'pod')} the burst allowance bought {_go(released)} at once: "
                 f"this tick's sizing wants {x} (the other {spec - released} stay)")
    if ticks == 1:
        size = f"{plural(allowed, 'pod')} per tick"
    else:
        size = f"{plural(allowed, 'pod')}: {fmt(fraction)} of {current} for each of the {ticks} ticks of {interval}"
    beyond = base - x
    if ticks == 0 and beyond > 0:
        if last_step_down_at is not None and left is not None:
            wait = f"last scale-down at {last_step_down_at.isoformat()}, {interval} ({format_duration(left)} left)"
        else:
            wait = f"{interval} has not passed since the last scale-down"
        if spec:
            text = f"{freed}; the scale-down beyond {them}, to {x}, is deferred: {wait}; kept {base}"
        else:
            text = f"scale-down to {x} deferred: {wait}; kept {current}"
        return base, Step("step_limit", x, base, text)
    if beyond <= allowed:
        if beyond <= 0:
            return x, Step("step_limit", x, x, freed)
        within = f"is within the step limit of {allowed}" + (f" ({size})" if ticks > 1 else "")
        if spec:
            return x, Step("step_limit", x, x, f"{freed}; the scale-down of {beyond} beyond {them} {within}")
        return x, Step("step_limit", x, x, f"scale-down of {beyond} {within}")
    y = base - allowed
    if spec:
        text = (f"limited scale-down from {current} to {y}: {freed}, then at most {allowed} more "
                f"({size}, max_scale_down_fraction {fmt(fraction)})")
    else:
        text = f"limited scale-down from {current} to {y} (at most {size}, max_scale_down_fraction {fmt(fraction)})"
    return y, Step("step_limit", x, y, text)


def _go(n: int) -> str:
    return "goes" if n == 1 else "go"


def prune_recommendations(
    recommendations: Iterable[tuple[datetime, int]], now: datetime, window: timedelta
) -> tuple[tuple[datetime, int], ...]:
    """Recommendations made within the stabilisation window (now - window, now], oldest first.

    The (time, replicas) tuples kept are the ones given (others, e.g. lists, become tuples), so
    the planner's digest can recognise them from tick to tick (scaler.planning._plain)."""
    since = now - window
    kept = []
    for rec in recommendations:
        t, r = rec
        if since < t <= now or t == now:
            kept.append(rec if type(rec) is tuple else (t, r))
    return tuple(kept)


def stabilise(
    x: int, current: int, window_recommendations: Sequence[tuple[datetime, int]], window: timedelta,
    burst_excluded: int = 0,
) -> tuple[int, Step]:
    """Scale down only to the highest recommendation in the window (HPA's stabilisation).

    `window_recommendations` includes this tick's recommendation, without the `burst_excluded`
    pods only the burst allowance buys (said in the reason when they are why the window is
    below `x`). Only restricts scale-down: the result is max(x, min(current, highest)).
    """
    if x >= current or not window_recommendations:
        return x, Step("stabilization", x, x, "no scale-down to stabilise")
    at, highest = max(window_recommendations, key=lambda rec: (rec[1], rec[0]))  # the latest of the highest
    y = max(x, min(current, highest))
    span = format_duration(window)
    if y == x:
        if window <= timedelta(0):
            return x, Step("stabilization", x, x, "no stabilisation window (stabilization 0s)")
        if highest == x:
            return x, Step("stabilization", x, x, f"{x} is the highest recommendation of the last {span}")
        without = (f", without the {plural(burst_excluded, 'pod')} only the burst allowance buys"
                   if burst_excluded else "")
        return x, Step(
            "stabilization", x, x,
            f"{x} is above every recommendation of the last {span} (highest {highest}{without}): "
            f"stabilisation holds nothing back",
        )
    if y == highest:
        return y, Step(
            "stabilization", x, y,
            f"held scale-down at {y}: the highest recommendation of the last {span} ({highest} at {at.isoformat()})",
        )
    return y, Step(
        "stabilization", x, y,
        f"kept {y}: the highest recommendation of the last {span}, {highest} at {at.isoformat()}, is not below it",
    )


def cooldowns(
    x: int,
    current: int,
    now: datetime,
    last_scale_up_at: datetime | None,
    last_scale_down_at: datetime | None,
    scale_down_cooldown: timedelta,
    scale_up_cooldown: timedelta,
    needed_now: int | None,
    speculative: int = 0,
) -> tuple[int, Step]:
    """Cooldowns. Scale-down waits `scale_down_cooldown` after the last scale-UP (no flapping:
    pods just added are not given back at once); consecutive scale-downs are paced by the step
    limit and the stabilisation window instead, so following demand down is not slowed to one
    step per cooldown. `last_scale_down_at` is accepted for the reason text only.

    Scale-up waits `scale_up_cooldown` after the last scale-up, but only the part driven by the
    forecast: the pods `needed_now` for the demand observed right now are never delayed
    (scale-up never waits), so during the cooldown x becomes max(current, min(x, needed_now)).

    The scale-down cooldown keeps the pods observed demand needed, not the `speculative` pods of
    `current` the burst allowance alone bought: it holds max(x, current - speculative).
    """
    if x < current:
        last = last_scale_up_at
        keep = current - min(max(0, speculative), current)
        if last is not None and now - last < scale_down_cooldown:
            left = scale_down_cooldown - (now - last)
            but = (f" (the {plural(current - keep, 'pod')} bought by the burst allowance alone may go)"
                   if keep < current else "")
            y = max(x, keep)
            return y, Step(
                "cooldown", x, y,
                f"kept {y}: scale-down cooldown of {format_duration(scale_down_cooldown)} after the "
                f"last scale-up at {last.isoformat()} ({format_duration(left)} left){but}",
            )
        since = (f"scale_down_cooldown {format_duration(scale_down_cooldown)}" if scale_down_cooldown <= timedelta(0)
                 else f"no scale-up within the last {format_duration(scale_down_cooldown)}")
        return x, Step("cooldown", x, x, f"no cooldown in force ({since})")
    if x > current and last_scale_up_at is not None and now - last_scale_up_at < scale_up_cooldown:
        allowed = max(current, min(x, needed_now if needed_now is not None else current))
        if allowed == x:
            return x, Step("cooldown", x, x, "scale-up covers demand observed now: not delayed by the cooldown")
        return allowed, Step(
            "cooldown", x, allowed,
            f"scale-up cooldown of {format_duration(scale_up_cooldown)} after {last_scale_up_at.isoformat()}: "
            f"scaled up only to {allowed}, what the demand observed now needs",
        )
    return x, Step("cooldown", x, x, "no cooldown in force")


def apply_guard(
    x: int,
    current: int,
    freeze_floor: int,
    guard: GuardState,
    step_up: int,
    may_step_up: bool,
) -> tuple[int, Step]:
    """The quality guard on replicas.

    freeze_scale_in: no fewer than `freeze_floor` (the current count; with an HPA, the pods it
    runs). scale_up (live breach only, when `may_step_up`): at least current + `step_up`.
    """
    if not guard.active:
        return x, Step("quality_guard", x, x, "quality SLIs within thresholds and data fresh")
    why = "; ".join(guard.reasons) or "quality guard active"
    y = x
    did: list[str] = []
    if "freeze_scale_in" in guard.actions and y < freeze_floor:
        y = freeze_floor
        did.append(f"blocked scale-in, kept {y}")
    if "scale_up" in guard.actions and guard.live_breach:
        if may_step_up and y < current + step_up:
            y = current + step_up
            did.append(f"scaled up one step (+{step_up}) to {y}")
        elif not may_step_up:
            did.append("breach scale-up waits for the last scale-up's pods to start")
    if not did:
        did.append(f"{x} already satisfies the guard")
    return y, Step("quality_guard", x, y, f"{'; '.join(did)}: {why}")
