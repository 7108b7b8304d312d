"""The cost model (docs/cost-model.md): compute, CDN egress and transcoding, from timelines.

Pure: no clock, no I/O except `rows_to_csv`. Money is `Decimal`; physical quantities arrive
as floats and are quantised once to integers (time to 1 s, replicas to 0.001 pod, bandwidth to
1 bit/s, stream-rungs to 0.001 rung), after which everything is exact (integers, `Fraction`)
until each line is rounded once, half up, to the `quantum` (default 0.01). Totals are sums of
rounded lines, so every table adds up to the cent.

Inputs are step functions: value `v[i]` holds over `[ts[i], ts[i+1])`, the last one until `end`
(default: one more interval as long as the previous). NaN = unknown: costs nothing, not covered.

Public API:
    ReplicaTimeline, EgressTimeline, TranscodingTimeline, rungs_produced
    compute_cost, egress_cost, transcoding_cost                 (one timeline, one range)
    cost_breakdown -> CostBreakdown (lines by day or event window; rows() for costs.csv)
    savings(actual, baseline) -> Savings; csv_text(rows), rows_to_csv(rows, path); CSV_COLUMNS
    currency_quantum(currency) -> the minor unit money is rounded to
"""

from __future__ import annotations

__all__ = [
    "CENT", "CSV_COLUMNS", "BillingCharge", "ComponentCosts", "ComputeCost", "CostBreakdown", "CostLine",
    "EgressBill", "EgressTimeline", "Period", "ReplicaTimeline", "Savings", "TranscodingCost",
    "TranscodingTimeline", "compute_cost", "cost_breakdown", "decimal_of", "egress_cost", "round_money",
    "csv_text", "currency_quantum", "rows_to_csv", "rungs_produced", "savings", "spreadsheet_safe", "transcoding_cost",
]

import csv
import io
import math
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from policies.errors import EbbtideError
from policies.events import FORMULA_STARTS
from policies.schema import Cost, Resources, Workload

CENT = Decimal("0.01")
QUANTITY_PLACES = Decimal("0.000001")  # quantities shown to 6 decimals; money uses exact values
SLOT_S = 300  # CDN bandwidth samples: 5-minute averages
P95_PERMILLE = 950  # monthly_p95: the ceil(0.95 n)-th smallest sample
MILLI = 1000
EgressBilling = Literal["per_gb", "daily_peak_bandwidth", "monthly_p95"]

CSV_COLUMNS = (
    "strategy", "date", "window", "start", "end", "namespace", "controller_kind", "controller",
    "cpu_core_hours", "ram_gib_hours", "egress_gb", "transcoding_rung_hours",
    "cpu_cost", "ram_cost", "egress_cost", "transcoding_cost", "total_cost", "currency",
)


# --------------------------------------------------------------------------- exact helpers
def decimal_of(value: float | Decimal | str, what: str = "price") -> Decimal:
    """A price (or a request) as the decimal the policy wrote: `Decimal(str(float))` (0.031611,
    not its binary neighbour). Decimals and strings pass through. Negative or non-finite ->
    EbbtideError."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if not d.is_finite() or d < 0:
        raise EbbtideError(f"{what} must be a finite number >= 0, got {value!r}")
    return d


def _exact(value: float | Decimal | str, what: str = "price") -> Fraction:
    return Fraction(decimal_of(value, what))


def currency_quantum(currency: str) -> Decimal:
    """The minor unit of an ISO 4217 currency, what its money is rounded to (CLDR's digits):
    0.01 for USD, EUR, CNY; 1 for JPY, KRW; 0.001 for KWD, BHD."""
    from babel.numbers import get_currency_precision

    return Decimal(1).scaleb(-get_currency_precision(currency))


def round_money(amount: Fraction, quantum: Decimal = CENT) -> Decimal:
    """`amount` (exact, currency) rounded half up to a multiple of `quantum`."""
    q = Fraction(quantum)
    steps = math.floor(amount / q + Fraction(1, 2))
    if abs(steps) >= MAX_STEPS:
        raise EbbtideError(f"a cost or quantity of {float(amount):.3g} is beyond what Ebbtide adds up exactly "
                           f"(more than any bill): check the inputs' units (pods, viewers, streams, prices)")
    return (Decimal(steps) * quantum).quantize(quantum, rounding=ROUND_HALF_UP)


MAX_STEPS = 10 ** 24
"""Largest rounded amount, in quanta (cents, millionths), `round_money` accepts: totals are sums of
such lines in Decimal's 28 digits, which would round them silently past this (1e22 currency units
in cents, more than any bill)."""


def _quantity(x: Fraction) -> Decimal:
    """An exact quantity for display: 6 decimals, half up."""
    return round_money(x, QUANTITY_PLACES)


NO_QUANTITY = Decimal(0).quantize(QUANTITY_PLACES)


def _epoch_s(t: datetime | pd.Timestamp, what: str) -> int:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise EbbtideError(f"{what}: time {ts} has no zone; give times with a zone (e.g. ...Z or +08:00)")
    return int(math.floor(ts.timestamp()))


def _utc(t_s: int) -> datetime:
    return datetime.fromtimestamp(t_s, tz=timezone.utc)


def _zone(name: str, what: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise EbbtideError(f"{what}: unknown IANA time zone {name!r} (e.g. UTC, Asia/Shanghai)") from None


def _midnight_s(d: date, zone: zoneinfo.ZoneInfo) -> int:
    return int(datetime.combine(d, time(0), tzinfo=zone).timestamp())


def _local_date(t_s: int, zone: zoneinfo.ZoneInfo) -> date:
    return datetime.fromtimestamp(t_s, tz=zone).date()


def _days(t0_s: int, t1_s: int, zone: zoneinfo.ZoneInfo) -> list[tuple[date, int, int]]:
    """Local calendar days (date, start_s, end_s) covering [t0_s, t1_s)."""
    out = []
    d = _local_date(t0_s, zone)
    while True:
        a, b = _midnight_s(d, zone), _midnight_s(d + timedelta(days=1), zone)
        if a >= t1_s:
            break
        out.append((d, a, b))
        d += timedelta(days=1)
    return out


def _months(t0_s: int, t1_s: int, zone: zoneinfo.ZoneInfo) -> list[tuple[date, int, int]]:
    """Local calendar months (first day, start_s, end_s) covering [t0_s, t1_s)."""
    out = []
    d = _local_date(t0_s, zone).replace(day=1)
    while True:
        nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        a, b = _midnight_s(d, zone), _midnight_s(nxt, zone)
        if a >= t1_s:
            break
        out.append((d, a, b))
        d = nxt
    return out


# --------------------------------------------------------------------------- step functions
class _Steps:
    """An integer rate held over contiguous intervals [edges[i], edges[i+1]) (seconds since the
    epoch), with a known/unknown mask. Integrals are exact Python ints."""

    def __init__(self, edges_s: np.ndarray, rate: np.ndarray, known: np.ndarray):
        self.edges = edges_s
        self.rate = np.where(known, rate, 0).astype(object)
        lens = np.diff(edges_s)
        self._cum = np.concatenate([[0], np.cumsum(self.rate * lens.astype(object))]).astype(object)
        self._cov = np.concatenate([[0], np.cumsum(np.where(known, lens, 0))]).astype(np.int64)
        self._known = known.astype(np.int64)

    @property
    def start_s(self) -> int:
        return int(self.edges[0])

    @property
    def end_s(self) -> int:
        return int(self.edges[-1])

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.clip(np.asarray(t, dtype=np.int64), self.edges[0], self.edges[-1])
        i = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.edges) - 2)
        return t, i

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Integral of the rate from the first edge to each t (object array of ints)."""
        t, i = self._locate(t)
        return self._cum[i] + self.rate[i] * (t - self.edges[i]).astype(object)

    def covered_until(self, t: np.ndarray) -> np.ndarray:
        """Known (covered) seconds from the first edge to each t."""
        t, i = self._locate(t)
        return self._cov[i] + self._known[i] * (t - self.edges[i])

    def integral(self, a: int, b: int) -> int:
        c = self.cumulative(np.array([a, b]))
        return int(c[1] - c[0]) if b > a else 0

    def covered(self, a: int, b: int) -> int:
        c = self.covered_until(np.array([a, b]))
        return int(c[1] - c[0]) if b > a else 0

    def overlaps(self, a: int, b: int) -> bool:
        return a < self.end_s and b > self.start_s

    def unknown_s(self) -> int:
        return int(self.end_s - self.start_s - self._cov[-1])


def _edges(ts: pd.DatetimeIndex | Sequence, end: datetime | None, what: str) -> np.ndarray:
    idx = pd.DatetimeIndex(ts)
    if len(idx) == 0:
        raise EbbtideError(f"{what}: the timeline is empty")
    if idx.tz is None:
        raise EbbtideError(f"{what}: timestamps have no zone; give them with a zone (e.g. UTC)")
    ns = idx.as_unit("ns").asi8
    if np.any(np.diff(ns) <= 0):
        raise EbbtideError(f"{what}: timestamps must be strictly increasing")
    s = ns // 1_000_000_000  # floor to whole seconds
    if end is None:
        if len(s) < 2:
            raise EbbtideError(f"{what}: a single sample needs an explicit `end`")
        end_s = int(s[-1] + (s[-1] - s[-2]))
    else:
        end_s = _epoch_s(end, what)
        if end_s <= s[-1]:
            raise EbbtideError(f"{what}: end {end} must be after the last timestamp {idx[-1]}")
    return np.concatenate([s, [end_s]]).astype(np.int64)


def _values(x: object, n: int, what: str, field_name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise EbbtideError(f"{what}: {field_name} has {arr.size} values for {n} timestamps")
    if np.any(arr[np.isfinite(arr)] < 0) or np.any(np.isinf(arr)):
        raise EbbtideError(f"{what}: {field_name} must be finite and >= 0 (NaN = unknown)")
    return arr


def _quantise(x: np.ndarray, per_unit: int) -> np.ndarray:
    """Floats -> integers of 1/per_unit, half to even (NaN -> 0; mask them separately). Values
    int64 cannot hold become Python ints: a cast wrapped past 9.2e18 units (2e12 viewers at
    6 Mbit/s) into negative costs."""
    scaled = np.rint(np.where(np.isfinite(x), x, 0.0) * per_unit)
    if scaled.size == 0 or np.abs(scaled).max() < 2.0 ** 62:
        return scaled.astype(np.int64)
    return np.array([int(v) for v in scaled], dtype=object)


# --------------------------------------------------------------------------- timelines
@dataclass(frozen=True)
class ReplicaTimeline:
    """Pods of one workload over time: `replicas[i]` (pods, may be a fractional time-weighted
    mean; NaN = unknown) holds over [ts[i], ts[i+1]), the last until `end`. `resources` are the
    requests per replica (cores, GiB). `workload` is the policy's name for it."""

    workload: str
    namespace: str
    kind: str
    name: str
    ts: pd.DatetimeIndex
    replicas: np.ndarray
    resources: Resources = field(default_factory=Resources)
    end: datetime | None = None

    @classmethod
    def for_workload(cls, workload: Workload, ts: Sequence | pd.DatetimeIndex, replicas: Sequence[float],
                     end: datetime | None = None) -> "ReplicaTimeline":
        """A timeline for a policy workload (target and resources from the policy)."""
        t = workload.target
        return cls(workload.name, t.namespace, t.kind, t.name, pd.DatetimeIndex(ts), np.asarray(replicas, float),
                   workload.resources, end)

    @classmethod
    def from_replay(cls, frame: pd.DataFrame, strategy: str, workload: Workload,
                    end: datetime | None = None) -> "ReplicaTimeline":
        """From a replay timeline (`ts`, `replicas_<strategy>`, one row per trace interval)."""
        col = f"replicas_{strategy}"
        if col not in frame.columns or "ts" not in frame.columns:
            raise EbbtideError(f"replay timeline has no `ts`/`{col}` column (columns: {', '.join(frame.columns)})")
        return cls.for_workload(workload, pd.to_datetime(frame["ts"], utc=True), frame[col].to_numpy(float), end)

    def _steps(self) -> _Steps:
        what = f"replica timeline {self.namespace}/{self.name}"
        edges = _edges(self.ts, self.end, what)
        r = _values(self.replicas, len(edges) - 1, what, "replicas")
        return _Steps(edges, _quantise(r, MILLI), np.isfinite(r))


@dataclass(frozen=True)
class EgressTimeline:
    """Viewers and bitrate per tier over time: `tiers[name] = (viewers, kbps)`, each an array
    aligned with `ts` or a scalar (concurrent viewers; kbit/s per viewer). Bandwidth =
    sum over tiers of viewers x kbps; an interval with any NaN is unknown. `name` labels the CDN
    contract in reports."""

    ts: pd.DatetimeIndex
    tiers: Mapping[str, tuple[object, object]]
    end: datetime | None = None
    name: str = "cdn"

    @classmethod
    def from_shares(cls, ts: Sequence | pd.DatetimeIndex, viewers: Sequence[float], shares: Mapping[str, float],
                    kbps: Mapping[str, object], end: datetime | None = None, name: str = "cdn") -> "EgressTimeline":
        """Total `viewers` split by tier `shares` (0-1), each tier at `kbps[tier]` (array or scalar)."""
        v = np.asarray(viewers, float)
        missing = sorted(set(shares) - set(kbps))
        if missing:
            raise EbbtideError(f"egress timeline {name}: no kbps for tier(s) {', '.join(missing)}")
        return cls(pd.DatetimeIndex(ts), {t: (v * s, kbps[t]) for t, s in shares.items()}, end, name)

    def _steps(self) -> _Steps:
        what = f"egress timeline {self.name}"
        edges = _edges(self.ts, self.end, what)
        n = len(edges) - 1
        if not self.tiers:
            raise EbbtideError(f"{what}: no tiers")
        bw_kbps = np.zeros(n)
        known = np.ones(n, dtype=bool)
        for tier, (viewers, kbps) in self.tiers.items():
            v = _values(viewers, n, what, f"tier {tier} viewers")
            k = _values(kbps, n, what, f"tier {tier} kbps")
            known &= np.isfinite(v) & np.isfinite(k)
            bw_kbps = bw_kbps + np.where(np.isfinite(v) & np.isfinite(k), v * k, 0.0)
        return _Steps(edges, _quantise(bw_kbps, 1000), known)  # bit/s


@dataclass(frozen=True)
class TranscodingTimeline:
    """Transcoded streams and rungs per stream over time (`rungs` array or scalar). Rung-hours =
    streams x rungs x hours. `name` labels the transcoding service in reports."""

    ts: pd.DatetimeIndex
    streams: object
    rungs: object
    end: datetime | None = None
    name: str = "transcoding"

    def _steps(self) -> _Steps:
        what = f"transcoding timeline {self.name}"
        edges = _edges(self.ts, self.end, what)
        n = len(edges) - 1
        s = _values(self.streams, n, what, "streams")
        r = _values(self.rungs, n, what, "rungs")
        known = np.isfinite(s) & np.isfinite(r)
        return _Steps(edges, _quantise(np.where(known, s * r, np.nan), MILLI), known)


def rungs_produced(ladder_kbps: Sequence[float], cap_kbps: object | Mapping[str, object]) -> np.ndarray:
    """Rungs a transcoder must produce per stream: ladder rungs at or below the highest cap over
    all tiers (kbit/s). `cap_kbps` is one array/scalar, or tier -> array/scalar."""
    if isinstance(cap_kbps, Mapping):
        if not cap_kbps:
            raise EbbtideError("rungs_produced: no tier caps given")
        caps = np.broadcast_arrays(*[np.atleast_1d(np.asarray(c, float)) for c in cap_kbps.values()])
        top = np.max(np.vstack(caps), axis=0)
    else:
        top = np.atleast_1d(np.asarray(cap_kbps, float))
    ladder = np.sort(np.asarray(ladder_kbps, float))
    return np.searchsorted(ladder, top * (1 + 1e-12), side="right").astype(float)


# --------------------------------------------------------------------------- money types
@dataclass(frozen=True)
class ComponentCosts:
    """Money per component (currency). `compute` = cpu + ram; `total` = all four."""

    cpu: Decimal = Decimal(0)
    ram: Decimal = Decimal(0)
    egress: Decimal = Decimal(0)
    transcoding: Decimal = Decimal(0)

    @property
    def compute(self) -> Decimal:
        return self.cpu + self.ram

    @property
    def total(self) -> Decimal:
        return self.cpu + self.ram + self.egress + self.transcoding

    def __add__(self, other: "ComponentCosts") -> "ComponentCosts":
        return ComponentCosts(self.cpu + other.cpu, self.ram + other.ram, self.egress + other.egress,
                              self.transcoding + other.transcoding)

    def __sub__(self, other: "ComponentCosts") -> "ComponentCosts":
        return ComponentCosts(self.cpu - other.cpu, self.ram - other.ram, self.egress - other.egress,
                              self.transcoding - other.transcoding)

    def to_dict(self) -> dict[str, str]:
        return {"cpu": str(self.cpu), "ram": str(self.ram), "egress": str(self.egress),
                "transcoding": str(self.transcoding), "total": str(self.total)}


def _sum(costs: Iterable[ComponentCosts]) -> ComponentCosts:
    out = ComponentCosts()
    for c in costs:
        out = out + c
    return out


@dataclass(frozen=True)
class ComputeCost:
    """Compute of one workload over one range: quantities (6 decimals) and money (rounded once)."""

    cpu_core_hours: Decimal
    ram_gib_hours: Decimal
    cpu_cost: Decimal
    ram_cost: Decimal

    @property
    def total(self) -> Decimal:
        return self.cpu_cost + self.ram_cost


@dataclass(frozen=True)
class TranscodingCost:
    rung_hours: Decimal
    cost: Decimal


@dataclass(frozen=True)
class BillingCharge:
    """One billing period of an egress bill.

    `quantity` is GB (per_gb), the peak Mbps (daily_peak_bandwidth) or the p95 Mbps
    (monthly_p95); `samples` the 5-minute samples seen (0 for per_gb); `rank` the 1-based rank of
    the billed sample (monthly_p95: ceil(0.95 samples)); `covered_s` the seconds with data;
    `proration` = covered_s / period seconds (monthly_p95), else 1; `charge` rounded once.
    """

    label: str
    start: datetime
    end: datetime
    quantity: Decimal
    unit: str
    samples: int
    rank: int
    covered_s: int
    proration: Decimal
    charge: Decimal


@dataclass(frozen=True)
class EgressBill:
    """An egress timeline billed under one model: a charge per billing period (day or month in
    `billing_zone`); `total` = sum of the charges."""

    billing: EgressBilling
    billing_zone: str
    charges: tuple[BillingCharge, ...]
    gb: Decimal

    @property
    def total(self) -> Decimal:
        return sum((c.charge for c in self.charges), Decimal(0))


# --------------------------------------------------------------------------- component costs
def _range(steps: _Steps, start: datetime | None, end: datetime | None, what: str) -> tuple[int, int]:
    a = steps.start_s if start is None else _epoch_s(start, what)
    b = steps.end_s if end is None else _epoch_s(end, what)
    if b < a:
        raise EbbtideError(f"{what}: end {_utc(b)} is before start {_utc(a)}")
    return a, b


def _compute(steps: _Steps, resources: Resources, cost: Cost, a: int, b: int, quantum: Decimal
             ) -> tuple[Fraction, Fraction, ComputeCost]:
    milli_replica_s = steps.integral(a, b)
    pod_h = Fraction(milli_replica_s, MILLI * 3600)
    core_h = pod_h * _exact(resources.cpu_cores, "cpu_cores")
    gib_h = pod_h * _exact(resources.memory_gib, "memory_gib")
    return core_h, gib_h, ComputeCost(
        _quantity(core_h), _quantity(gib_h),
        round_money(core_h * _exact(cost.cpu_core_hour), quantum),
        round_money(gib_h * _exact(cost.memory_gib_hour), quantum),
    )


def compute_cost(timeline: ReplicaTimeline, cost: Cost, *, start: datetime | None = None,
                 end: datetime | None = None, quantum: Decimal = CENT) -> ComputeCost:
    """Compute of one workload over [start, end) (default: the whole timeline):
    core-h = sum replicas x dt_h x cpu_cores; GiB-h likewise; each cost rounded once."""
    steps = timeline._steps()
    a, b = _range(steps, start, end, f"compute {timeline.namespace}/{timeline.name}")
    return _compute(steps, timeline.resources, cost, a, b, quantum)[2]


def transcoding_cost(timeline: TranscodingTimeline, cost: Cost, *, start: datetime | None = None,
                     end: datetime | None = None, quantum: Decimal = CENT) -> TranscodingCost:
    """Rung-hours = sum streams x rungs x dt_h over [start, end), x transcoding_per_rung_hour."""
    steps = timeline._steps()
    a, b = _range(steps, start, end, f"transcoding {timeline.name}")
    return _transcoding(steps, cost, a, b, quantum)


def _transcoding(steps: _Steps, cost: Cost, a: int, b: int, quantum: Decimal) -> TranscodingCost:
    rung_h = Fraction(steps.integral(a, b), MILLI * 3600)
    return TranscodingCost(_quantity(rung_h), round_money(rung_h * _exact(cost.transcoding_per_rung_hour), quantum))


def _gb(bits: int) -> Fraction:
    return Fraction(bits, 8 * 10**9)


def _slot_samples(steps: _Steps) -> tuple[np.ndarray, list[Fraction | None]]:
    """5-minute slots touching the timeline: (slot start seconds, mean bit/s over the covered
    seconds of the slot, None when no second of it is covered)."""
    first = (steps.start_s // SLOT_S) * SLOT_S
    last = -(-steps.end_s // SLOT_S) * SLOT_S
    edges = np.arange(first, last + SLOT_S, SLOT_S, dtype=np.int64)
    bits = np.diff(steps.cumulative(edges))
    cov = np.diff(steps.covered_until(edges))
    samples = [Fraction(int(b), int(c)) if c > 0 else None for b, c in zip(bits, cov)]
    return edges[:-1], samples


@dataclass(frozen=True)
class _Charge:
    """A billing-period charge (already rounded) and where its covered seconds lie."""

    start_s: int
    end_s: int
    covered_s: int
    charge: Decimal


def _bandwidth_charges(steps: _Steps, cost: Cost, billing: EgressBilling, zone_name: str,
                       quantum: Decimal) -> list[tuple[BillingCharge, _Charge]]:
    zone = _zone(zone_name, "billing_zone")
    out = []
    if billing == "per_gb":
        p = _exact(cost.egress_per_gb)
        for d, a, b in _days(steps.start_s, steps.end_s, zone):
            gb = _gb(steps.integral(a, b))
            cov = steps.covered(a, b)
            charge = round_money(gb * p, quantum)
            out.append((BillingCharge(d.isoformat(), _utc(a), _utc(b), _quantity(gb), "GB", 0, 0, cov,
                                      _quantity(Fraction(1)), charge), _Charge(a, b, cov, charge)))
        return out
    slot_start, samples = _slot_samples(steps)
    if billing == "daily_peak_bandwidth":
        periods = [(d.isoformat(), a, b) for d, a, b in _days(steps.start_s, steps.end_s, zone)]
        p = _exact(cost.egress_per_mbps_day)
    elif billing == "monthly_p95":
        periods = [(d.strftime("%Y-%m"), a, b) for d, a, b in _months(steps.start_s, steps.end_s, zone)]
        p = _exact(cost.egress_per_mbps_month)
    else:
        raise EbbtideError(f"unknown egress billing {billing!r} (per_gb, daily_peak_bandwidth, monthly_p95)")
    for label, a, b in periods:
        i0, i1 = np.searchsorted(slot_start, [a, b], side="left")
        # Sorted by the float first (monotone in the exact value, so the order is exact) and
        # by the Fraction only on float ties: 10x faster than comparing Fractions.
        seen = sorted((s for s in samples[i0:i1] if s is not None), key=lambda f: (float(f), f))
        cov = steps.covered(a, b)
        if not seen:
            out.append((BillingCharge(label, _utc(a), _utc(b), NO_QUANTITY, "Mbps", 0, 0, cov, NO_QUANTITY,
                                      Decimal(0).quantize(quantum)), _Charge(a, b, cov, Decimal(0))))
            continue
        n = len(seen)
        # A period the data covers in part is prorated by its covered seconds: the hours outside
        # the range compared (a replay's or a report's edges) are not measured for any strategy.
        proration = Fraction(cov, b - a)
        rank = n if billing == "daily_peak_bandwidth" else -(-n * P95_PERMILLE // 1000)  # ceil(0.95 n)
        mbps = seen[rank - 1] / 10**6
        charge = round_money(mbps * p * proration, quantum)
        out.append((BillingCharge(label, _utc(a), _utc(b), _quantity(mbps), "Mbps", n, rank, cov,
                                  _quantity(proration), charge), _Charge(a, b, cov, charge)))
    return out


def egress_cost(timeline: EgressTimeline, cost: Cost, billing: EgressBilling | None = None, *,
                billing_zone: str = "UTC", quantum: Decimal = CENT) -> EgressBill:
    """The egress bill of a timeline under `billing` (default: `cost.egress_billing`): per
    billing day (per_gb, daily_peak_bandwidth) or month (monthly_p95) in `billing_zone`."""
    billing = billing or cost.egress_billing
    steps = timeline._steps()
    charges = _bandwidth_charges(steps, cost, billing, billing_zone, quantum)
    return EgressBill(billing, billing_zone, tuple(c for c, _ in charges),
                      _quantity(_gb(steps.integral(steps.start_s, steps.end_s))))


def _share(steps: _Steps, c: _Charge, a: int, b: int, quantum: Decimal) -> Decimal:
    """Part of a billing-period charge falling in [a, b), by cumulative rounding over covered
    seconds: round(C F(b)) - round(C F(a)); pieces of a partition add up to C exactly."""
    if c.covered_s == 0 or b <= c.start_s or a >= c.end_s:
        return Decimal(0).quantize(quantum)
    base = steps.covered(steps.start_s, c.start_s)
    fa, fb = (Fraction(steps.covered(steps.start_s, min(max(t, c.start_s), c.end_s)) - base, c.covered_s)
              for t in (a, b))
    C = Fraction(c.charge)
    return round_money(C * fb, quantum) - round_money(C * fa, quantum)


# --------------------------------------------------------------------------- breakdowns
@dataclass(frozen=True)
class Period:
    """A report period [start, end): a local day (`window` None) or an event window (its name)."""

    date: date
    start: datetime
    end: datetime
    window: str | None = None

    @property
    def label(self) -> str:
        return self.window if self.window is not None else self.date.isoformat()


@dataclass(frozen=True)
class CostLine:
    """One cost object in one period: quantities (6 decimals) and money (rounded once per
    component). Egress lines: namespace "", kind "CDN"; transcoding: namespace "", kind
    "Transcoding"; `controller` is then the timeline's name."""

    period: Period
    namespace: str
    controller_kind: str
    controller: str
    workload: str
    cpu_core_hours: Decimal
    ram_gib_hours: Decimal
    egress_gb: Decimal
    transcoding_rung_hours: Decimal
    costs: ComponentCosts

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.controller_kind, self.controller)


@dataclass(frozen=True)
class CostBreakdown:
    """Cost lines of one strategy, by period (days in `zone`, or event windows) and cost object.
    Invariant: every aggregate is a sum of lines, so they all add up exactly."""

    strategy: str
    currency: str
    quantum: Decimal
    zone: str
    billing: EgressBilling
    billing_zone: str
    periods: tuple[Period, ...]
    lines: tuple[CostLine, ...]
    notes: tuple[str, ...] = ()

    def total(self) -> ComponentCosts:
        return _sum(ln.costs for ln in self.lines)

    def by_period(self) -> dict[str, ComponentCosts]:
        out = {p.label: ComponentCosts() for p in self.periods}
        for ln in self.lines:
            out[ln.period.label] = out[ln.period.label] + ln.costs
        return out

    def by_workload(self) -> dict[tuple[str, str, str], ComponentCosts]:
        """(namespace, controller kind, controller) -> costs over all periods."""
        out: dict[tuple[str, str, str], ComponentCosts] = {}
        for ln in self.lines:
            out[ln.key] = out.get(ln.key, ComponentCosts()) + ln.costs
        return out

    def by_namespace(self) -> dict[str, ComponentCosts]:
        out: dict[str, ComponentCosts] = {}
        for ln in self.lines:
            out[ln.namespace] = out.get(ln.namespace, ComponentCosts()) + ln.costs
        return out

    def rows(self) -> list[dict[str, object]]:
        """One dict per line with the keys of CSV_COLUMNS (money and quantities as Decimal)."""
        return [{
            "strategy": self.strategy,
            "date": ln.period.date.isoformat(),
            "window": ln.period.window or "",
            "start": _iso(ln.period.start),
            "end": _iso(ln.period.end),
            "namespace": ln.namespace,
            "controller_kind": ln.controller_kind,
            "controller": ln.controller,
            "cpu_core_hours": ln.cpu_core_hours,
            "ram_gib_hours": ln.ram_gib_hours,
            "egress_gb": ln.egress_gb,
            "transcoding_rung_hours": ln.transcoding_rung_hours,
            "cpu_cost": ln.costs.cpu,
            "ram_cost": ln.costs.ram,
            "egress_cost": ln.costs.egress,
            "transcoding_cost": ln.costs.transcoding,
            "total_cost": ln.costs.total,
            "currency": self.currency,
        } for ln in self.lines]


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


Window = tuple[str, datetime, datetime]


def _periods(by: Literal["day"] | Sequence[Window], zone: zoneinfo.ZoneInfo, t0: int, t1: int
             ) -> list[tuple[Period, int, int]]:
    if isinstance(by, str):
        if by != "day":
            raise EbbtideError(f"cost breakdown by {by!r}: use 'day' or a list of (name, start, end) windows")
        return [(Period(d, _utc(a), _utc(b)), a, b) for d, a, b in _days(t0, t1, zone)]
    out = []
    names: set[str] = set()
    for w in by:
        name, start, end = w
        a, b = _epoch_s(start, f"window {name}"), _epoch_s(end, f"window {name}")
        if b <= a:
            raise EbbtideError(f"window {name}: end {end} must be after start {start}")
        if name in names:
            raise EbbtideError(f"window {name!r} is listed twice")
        names.add(name)
        out.append((Period(_local_date(a, zone), _utc(a), _utc(b), name), a, b))
    return out


def cost_breakdown(
    strategy: str,
    cost: Cost,
    *,
    replicas: Sequence[ReplicaTimeline] = (),
    egress: Sequence[EgressTimeline] = (),
    transcoding: Sequence[TranscodingTimeline] = (),
    by: Literal["day"] | Sequence[Window] = "day",
    zone: str = "UTC",
    billing: EgressBilling | None = None,
    billing_zone: str = "UTC",
    quantum: Decimal = CENT,
) -> CostBreakdown:
    """Cost lines of one strategy (`actual`, `ebbtide`, `hpa`, `static`, ...).

    `by="day"`: local days in `zone` from the earliest timeline start to the latest end;
    otherwise event windows `(name, start, end)` (may overlap, need not cover the data). A line
    per (period, cost object) whose timeline overlaps the period. Egress is billed under
    `billing` (default `cost.egress_billing`) in `billing_zone`; bandwidth charges are split into
    periods by covered seconds with cumulative rounding (docs/cost-model.md section 4).
    """
    if not (replicas or egress or transcoding):
        raise EbbtideError("cost breakdown: no timelines given")
    report_zone = _zone(zone, "zone")
    billing = billing or cost.egress_billing
    rep = [(t, t._steps()) for t in replicas]
    egr = [(t, t._steps()) for t in egress]
    trc = [(t, t._steps()) for t in transcoding]
    keys = [(t.namespace, t.kind, t.name) for t, _ in rep] + [("", "CDN", t.name) for t, _ in egr] + [
        ("", "Transcoding", t.name) for t, _ in trc]
    dup = sorted({"/".join(k) for k in keys if keys.count(k) > 1})
    if dup:
        raise EbbtideError(f"cost breakdown: timeline(s) given twice: {', '.join(dup)}")
    all_steps = [s for _, s in rep + egr + trc]
    t0, t1 = min(s.start_s for s in all_steps), max(s.end_s for s in all_steps)
    periods = _periods(by, report_zone, t0, t1)
    zero = Decimal(0).quantize(quantum)
    lines: list[CostLine] = []
    notes: list[str] = []

    for t, s in rep:
        for p, a, b in periods:
            if not s.overlaps(a, b):
                continue
            core_h, gib_h, c = _compute(s, t.resources, cost, a, b, quantum)
            lines.append(CostLine(p, t.namespace, t.kind, t.name, t.workload, c.cpu_core_hours, c.ram_gib_hours,
                                  NO_QUANTITY, NO_QUANTITY, ComponentCosts(c.cpu_cost, c.ram_cost, zero, zero)))
    for t, s in egr:
        charges = [c for _, c in _bandwidth_charges(s, cost, billing, billing_zone, quantum)]
        p_gb = _exact(cost.egress_per_gb)
        for p, a, b in periods:
            if not s.overlaps(a, b):
                continue
            gb = _gb(s.integral(a, b))
            if billing == "per_gb":
                money = round_money(gb * p_gb, quantum)
            else:
                money = sum((_share(s, c, a, b, quantum) for c in charges), zero)
            lines.append(CostLine(p, "", "CDN", t.name, t.name, NO_QUANTITY, NO_QUANTITY, _quantity(gb), NO_QUANTITY,
                                  ComponentCosts(zero, zero, money, zero)))
    for t, s in trc:
        for p, a, b in periods:
            if not s.overlaps(a, b):
                continue
            tc = _transcoding(s, cost, a, b, quantum)
            lines.append(CostLine(p, "", "Transcoding", t.name, t.name, NO_QUANTITY, NO_QUANTITY, NO_QUANTITY,
                                  tc.rung_hours, ComponentCosts(zero, zero, zero, tc.cost)))
    labelled = ([(f"replicas of {t.namespace}/{t.name}", s) for t, s in rep] + [(f"egress {t.name}", s) for t, s in egr]
                + [(f"transcoding {t.name}", s) for t, s in trc])
    for what, s in labelled:
        if s.unknown_s():
            notes.append(f"{what}: {s.unknown_s() / 3600:g} h without data (NaN) cost nothing")
    return CostBreakdown(strategy, cost.currency, quantum, zone, billing, billing_zone,
                         tuple(p for p, _, _ in periods), tuple(lines), tuple(notes))


# --------------------------------------------------------------------------- savings
@dataclass(frozen=True)
class Savings:
    """`baseline - actual`, per component, per period, per cost object and in total (money,
    exact). Positive = the actual strategy cost less. Compute savings are *potential* unless
    `compute_realised` (nodes are released by a cluster autoscaler); egress and transcoding are
    billed by usage and their savings are realised."""

    actual_strategy: str
    baseline_strategy: str
    currency: str
    actual: ComponentCosts
    baseline: ComponentCosts
    total: ComponentCosts
    by_period: dict[str, ComponentCosts]
    by_workload: dict[tuple[str, str, str], ComponentCosts]
    compute_realised: bool = False

    @property
    def compute_status(self) -> Literal["potential", "realised"]:
        return "realised" if self.compute_realised else "potential"

    def statement(self) -> str:
        """The savings in words, saying honestly which part is money already and which is not."""
        t, cur = self.total, self.currency
        usage = t.egress + t.transcoding
        outcome = f"saved {cur} {t.total}" if t.total >= 0 else f"cost {cur} {-t.total} more"
        text = (f"Against {self.baseline_strategy}, {self.actual_strategy} {outcome} in total: "
                f"compute {cur} {t.compute} ({self.compute_status}), egress {cur} {t.egress} and transcoding "
                f"{cur} {t.transcoding} (realised: billed by usage, {cur} {usage}).")
        if not self.compute_realised:
            text += (" Compute savings are potential: freed pod requests become money only when nodes are "
                     "released (cluster autoscaler scale-down); committed or reserved capacity is paid either way.")
        return text


def savings(actual: CostBreakdown, baseline: CostBreakdown, *, compute_realised: bool = False) -> Savings:
    """Savings of `actual` against `baseline` (same currency, quantum and periods)."""
    if actual.currency != baseline.currency:
        raise EbbtideError(f"savings: {actual.strategy} is in {actual.currency}, {baseline.strategy} in "
                           f"{baseline.currency}")
    if actual.quantum != baseline.quantum:
        raise EbbtideError(f"savings: {actual.strategy} is rounded to {actual.quantum}, {baseline.strategy} to "
                           f"{baseline.quantum}")
    if [(p.label, p.start, p.end) for p in actual.periods] != [(p.label, p.start, p.end) for p in baseline.periods]:
        raise EbbtideError(f"savings: {actual.strategy} and {baseline.strategy} cover different periods; "
                           f"cost both over the same range and grouping")
    ap, bp = actual.by_period(), baseline.by_period()
    aw, bw = actual.by_workload(), baseline.by_workload()
    return Savings(
        actual.strategy, baseline.strategy, actual.currency, actual.total(), baseline.total(),
        baseline.total() - actual.total(),
        {k: bp[k] - ap[k] for k in bp},
        {k: bw.get(k, ComponentCosts()) - aw.get(k, ComponentCosts()) for k in sorted(set(aw) | set(bw))},
        compute_realised,
    )


# --------------------------------------------------------------------------- CSV
def spreadsheet_safe(text: str) -> str:
    """`text` with a leading `'` when it starts with a formula character (policies.events.FORMULA_STARTS:
    = + - @ tab CR), so a spreadsheet shows it as text instead of evaluating it (OWASP, "CSV
    Injection"); other text unchanged. Numbers are not text: `-5.00` stays a number."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Mapping[str, object]]) -> tuple[str, int]:
    """Rows (CostBreakdown.rows(), possibly of several strategies) as CSV text with the header
    CSV_COLUMNS (RFC 4180: CRLF records, quoted where needed); Decimals as plain decimals, text
    cells made spreadsheet-safe (`spreadsheet_safe`). Returns (text, number of rows)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="raise")
    w.writeheader()
    n = 0
    for row in rows:
        w.writerow({k: (format(v, "f") if isinstance(v, Decimal) else spreadsheet_safe(v) if isinstance(v, str)
                        else v) for k, v in row.items()})
        n += 1
    return buf.getvalue(), n


def rows_to_csv(rows: Iterable[Mapping[str, object]], path: str | Path) -> int:
    """Write rows as `csv_text` does (UTF-8, no BOM). Returns the number of rows written."""
    text, n = csv_text(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(text)
    return n
