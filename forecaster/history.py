"""History and live values from a metrics store: the `MetricsSource` protocol and its adapters.

The controller reads demand history with `range(...)` and quality SLIs with `instant(...)`.
Everything behind these two methods is replaceable: `PrometheusSource` talks to a real server
(prometheus-api-client), `StaticMetricsSource` serves in-memory Series (tests, demo, replay).

Rules every source follows (docs/history.md explains them for people writing PromQL):

- Grid: `range(query, start, end, step)` returns a Series on exactly the grid
  `start + k * step` for k = 0, 1, ... while `<= end` (both ends inclusive, Prometheus's own
  semantics), UTC, name = the query. `start`/`end` must carry a zone; Prometheus works in whole
  seconds, so `start` and `step` must be whole seconds.
- Gaps: a grid point without a sample is NaN. NaN and +/-Inf samples are NaN too.
- No data: a query that matches nothing still returns the full grid, all NaN. Tell "no data"
  apart with `has_data(series)` (False) or `data_fraction(series)` (0.0).
- Several series: refused with a `MetricsError` listing the label sets and suggesting
  `sum(...)`, unless the source was built with a `reducer` (sum, max, min, mean), which then
  combines the series point by point, ignoring NaN (a point where every series is NaN stays NaN).
- `instant(query, at)` returns `InstantValue(value, timestamp)` or None when the query returns
  nothing (Prometheus returns nothing once the newest sample is older than its 5-minute
  lookback delta).
- Every failure (connection, timeout, TLS, HTTP status, malformed answer, several series) is a
  `MetricsError` naming the server and the query; never a bare requests traceback.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Mapping, Protocol, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from forecaster.series import Series
from policies.errors import EbbtideError
from policies.tls import ca_bundle_problem

#: Prometheus refuses a range query when (end - start) / step > 11,000 (HTTP 400). We stay one
#: point under it: a chunk holds at most this many grid points, so (end - start) / step <= 10,999.
PROMETHEUS_MAX_POINTS_PER_QUERY = 11_000

#: Prometheus's default lookback delta: an instant query sees no sample older than this.
PROMETHEUS_LOOKBACK = timedelta(minutes=5)

#: Steps people recognise, in seconds; `choose_step` rounds up to one of these (then whole days).
NICE_STEPS_S: tuple[int, ...] = (
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400,
)

Reducer = Literal["sum", "max", "min", "mean"]
REDUCERS: tuple[str, ...] = ("sum", "max", "min", "mean")


class MetricsError(EbbtideError):
    """A metrics query failed; the message names the server and the query.

    `status` is the HTTP status when the server answered (else None); `query` and `url` are kept
    for callers that record them (Plans, logs).
    """

    def __init__(self, message: str, *, url: str = "", query: str = "", status: int | None = None):
        super().__init__(message)
        self.url = url
        self.query = query
        self.status = status


@dataclass(frozen=True)
class InstantValue:
    """One current value of a query.

    `value`: the number (NaN when the sample itself is NaN or +/-Inf).
    `timestamp`: UTC time of the sample, so callers can judge staleness (`now - timestamp`).
    For Prometheus this is the sample's own time when the query is a plain selector (or a
    recording rule's series); for computed expressions (`sum(...)`, `rate(...)`) Prometheus
    stamps the result with the evaluation time `at`, so the age reads as 0 and only Prometheus's
    5-minute lookback bounds staleness.
    """

    value: float
    timestamp: datetime


class MetricsSource(Protocol):
    """Where history and live values come from. Two methods; small enough to fake."""

    def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> Series:
        """Values of `query` on the grid start + k*step <= end (UTC); missing points NaN.

        A query that matches nothing returns the full grid, all NaN (see `has_data`).
        """
        ...

    def instant(self, query: str, at: datetime) -> InstantValue | None:
        """The value of `query` at `at`, with its sample time; None when there is none."""
        ...


# --------------------------------------------------------------------------------------------
# Grid, step and chunk rules (pure).


def _utc(t: datetime, what: str) -> pd.Timestamp:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must carry a zone (got naive {t.isoformat()})")
    return pd.Timestamp(t).tz_convert("UTC")


def _whole_seconds(td: timedelta, what: str) -> int:
    us = td // timedelta(microseconds=1)
    if us <= 0 or us % 1_000_000:
        raise ValueError(f"{what} must be a positive whole number of seconds, got {td}")
    return us // 1_000_000


def grid(start: datetime, end: datetime, step: timedelta) -> pd.DatetimeIndex:
    """The evaluation grid of a range query: start + k*step for k >= 0 while <= end (UTC).

    `start` must be a whole second (Prometheus's API rounds to seconds) and `step` a positive
    whole number of seconds. Raises ValueError when end < start.
    """
    start_ts = _utc(start, "start")
    end_ts = _utc(end, "end")
    step_s = _whole_seconds(step, "step")
    if start_ts.value % 1_000_000_000:
        raise ValueError(f"start must be a whole second, got {start_ts.isoformat()}")
    if end_ts < start_ts:
        raise ValueError(f"end {end_ts.isoformat()} is before start {start_ts.isoformat()}")
    n_points = (end_ts - start_ts) // pd.Timedelta(seconds=step_s) + 1
    return pd.date_range(start_ts, periods=int(n_points), freq=pd.Timedelta(seconds=step_s))


def choose_step(
    lookback: timedelta,
    preferred_step: timedelta | None = None,
    max_points: int = PROMETHEUS_MAX_POINTS_PER_QUERY,
) -> timedelta:
    """The step for reading `lookback` of history in one query of at most `max_points` points.

    Returns `preferred_step` unchanged when the lookback fits in `max_points` grid points at it
    (points = lookback / step + 1). Otherwise (or with no preference) returns the smallest step
    from NICE_STEPS_S (then whole days) that is >= the preferred step and fits. Examples:
    28 d at a preferred 5 min -> 5 min (8,065 points); 28 d at 1 min -> 5 min; 7 d, no
    preference -> 1 min; 365 d at 1 min -> 1 h.
    """
    if lookback <= timedelta(0):
        raise ValueError(f"lookback must be positive, got {lookback}")
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    lookback_s = lookback.total_seconds()
    min_step_s = lookback_s / (max_points - 1)
    if preferred_step is not None:
        preferred_s = preferred_step.total_seconds()
        if preferred_s <= 0:
            raise ValueError(f"preferred_step must be positive, got {preferred_step}")
        if preferred_s >= min_step_s:
            return preferred_step
        min_step_s = max(min_step_s, preferred_s)
    for nice_s in NICE_STEPS_S:
        if nice_s >= min_step_s:
            return timedelta(seconds=nice_s)
    return timedelta(days=math.ceil(min_step_s / 86400))


def plan_chunks(
    start: datetime,
    end: datetime,
    step: timedelta,
    max_points: int = PROMETHEUS_MAX_POINTS_PER_QUERY,
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split the grid of (start, end, step) into consecutive queries of <= max_points points.

    Each chunk is (first, last) grid point, both inclusive; chunk i+1 starts one step after
    chunk i ends, so stitching the chunks gives every grid point exactly once. Example: 26
    points with max_points 10 -> points [0..9], [10..19], [20..25].
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    g = grid(start, end, step)
    return [(g[i], g[min(i + max_points, len(g)) - 1]) for i in range(0, len(g), max_points)]


def has_data(series: Series) -> bool:
    """True when at least one grid point has a value: False means "no data" for this range."""
    return bool(series.values.notna().any())


def data_fraction(series: Series) -> float:
    """Fraction of grid points that have a value, in [0, 1]; 0.0 for an empty grid."""
    n = len(series)
    return float(series.values.notna().sum()) / n if n else 0.0


def _reduce(rows: np.ndarray, reducer: str) -> np.ndarray:
    """Combine series (rows) point by point ignoring NaN; all-NaN columns stay NaN."""
    present = ~np.isnan(rows)
    any_present = present.any(axis=0)
    out = np.full(rows.shape[1], np.nan)
    if not any_present.any():
        return out
    cols = rows[:, any_present]
    if reducer == "sum":
        out[any_present] = np.nansum(cols, axis=0)
    elif reducer == "max":
        out[any_present] = np.nanmax(cols, axis=0)
    elif reducer == "min":
        out[any_present] = np.nanmin(cols, axis=0)
    elif reducer == "mean":
        out[any_present] = np.nanmean(cols, axis=0)
    else:  # guarded at construction
        raise ValueError(f"unknown reducer {reducer!r}")
    return out


def _check_reducer(reducer: str | None) -> None:
    if reducer is not None and reducer not in REDUCERS:
        raise ValueError(f"reducer must be one of {', '.join(REDUCERS)} or None, got {reducer!r}")


def _to_float(text: Any) -> float:
    """A sample value as Prometheus sends it ("1.5", "NaN", "+Inf") -> float; Inf -> NaN."""
    v = float(text)
    return v if math.isfinite(v) else math.nan


def _label_text(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


# --------------------------------------------------------------------------------------------
# In-memory source.


class StaticMetricsSource:
    """A MetricsSource over in-memory Series keyed by query text (tests, demo, replay).

    `range`: the value at grid time t is the stored point whose interval [ts, ts + its step)
    contains t (Series are left-labelled); no such point -> NaN. An unknown query behaves like a
    Prometheus query that matches nothing: the full grid, all NaN.
    `instant`: the newest non-NaN point with ts <= at and at - ts <= lookback, where lookback
    defaults to max(5 min, the series' step) (Prometheus's lookback, widened for coarse series);
    its own ts is the InstantValue's timestamp.
    """

    def __init__(self, series_by_query: Mapping[str, Series], lookback: timedelta | None = None):
        self._series = dict(series_by_query)
        self._lookback = lookback

    def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> Series:
        idx = grid(start, end, step)
        stored = self._series.get(query)
        if stored is None or len(stored) == 0:
            return Series(pd.Series(np.nan, index=idx, name="value"), step, query)
        src = pd.DataFrame({"ts": stored.index.as_unit("ns"), "value": stored.values.to_numpy(dtype=float)})
        tolerance = pd.Timedelta(stored.step) - pd.Timedelta(nanoseconds=1)
        merged = pd.merge_asof(
            pd.DataFrame({"ts": idx.as_unit("ns")}), src, on="ts", direction="backward", tolerance=tolerance
        )
        values = np.where(np.isfinite(merged["value"].to_numpy(dtype=float)), merged["value"], np.nan)
        return Series(pd.Series(values, index=idx, name="value"), step, query)

    def instant(self, query: str, at: datetime) -> InstantValue | None:
        at_ts = _utc(at, "at")
        stored = self._series.get(query)
        if stored is None:
            return None
        lookback = self._lookback if self._lookback is not None else max(PROMETHEUS_LOOKBACK, stored.step)
        v = stored.values
        window = v[(v.index <= at_ts) & (v.index >= at_ts - pd.Timedelta(lookback))]
        window = window[np.isfinite(window.to_numpy(dtype=float))]
        if window.empty:
            return None
        return InstantValue(float(window.iloc[-1]), window.index[-1].to_pydatetime())


# --------------------------------------------------------------------------------------------
# Prometheus adapter.


class PrometheusQueryClient(Protocol):
    """The two calls of prometheus_api_client.PrometheusConnect that PrometheusSource uses."""

    def custom_query(self, query: str, params: dict | None = None) -> Any: ...

    def custom_query_range(
        self, query: str, start_time: datetime, end_time: datetime, step: str, params: dict | None = None
    ) -> Any: ...


_STATUS_RE = re.compile(r"HTTP Status Code (\d+) \((.*)\)\s*$", re.S)
_BODY_EXCERPT_CHARS = 300
_NOT_PROMETHEUS = "the answer is not a Prometheus API response (is the URL the Prometheus server?)"


def _redact_url(url: str) -> str:
    """The URL without user:password@, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _status_and_body(exc: Exception) -> tuple[int | None, str]:
    """Parse prometheus-api-client's `HTTP Status Code 400 (b'...')` into (400, error text)."""
    m = _STATUS_RE.match(str(exc))
    if not m:
        return None, str(exc)
    status = int(m.group(1))
    body: Any = m.group(2)
    try:
        raw = ast.literal_eval(body)
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except (ValueError, SyntaxError):
        pass
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and doc.get("error"):
            body = f"{doc.get('errorType', 'error')}: {doc['error']}"
    except ValueError:
        pass
    body = " ".join(str(body).split())
    if len(body) > _BODY_EXCERPT_CHARS:
        body = body[:_BODY_EXCERPT_CHARS] + "..."
    return status, body


def _connection_reason(exc: Exception, timeout_s: float) -> str:
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"timed out after {timeout_s:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        detail = re.search(r"\[SSL[^\]]*\][^'\"()]*", text)
        return f"TLS error: {detail.group(0).strip() if detail else text[:200]}"
    if "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host name not found"
    return f"cannot connect: {text[:200]}"


class PrometheusSource:
    """MetricsSource on a Prometheus server through prometheus-api-client 0.7.2.

    Options (keyword-only):
    - `timeout_s` (30): per HTTP request, client side; also sent as the query's server-side
      `timeout` so Prometheus stops working on a query nobody waits for.
    - `bearer_token`: sent as `Authorization: Bearer <token>`. `basic_auth`: (user, password).
      At most one of the two.
    - `ca_bundle`: PEM file of CAs to trust for https (instead of the system store).
      `insecure_skip_verify`: do not verify the server certificate (testing only).
    - `reducer`: None (default) refuses a query returning several series; "sum", "max", "min"
      or "mean" combine them point by point, ignoring NaN.
    - `max_points_per_query` (11,000): range queries longer than this many grid points are split
      into several requests and stitched (Prometheus refuses more than 11,000 per series).
    - `retries` (2): retries on connection errors and HTTP 429/502/504, 0.2 s backoff
      doubling; a 4xx answer (bad PromQL) and a timed-out request are never retried.
    - `client`: anything with PrometheusConnect's `custom_query`/`custom_query_range` (tests).

    Start and end are always passed explicitly (the library's defaults are frozen at import).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_bundle: str | Path | None = None,
        insecure_skip_verify: bool = False,
        reducer: Reducer | None = None,
        max_points_per_query: int = PROMETHEUS_MAX_POINTS_PER_QUERY,
        retries: int = 2,
        client: PrometheusQueryClient | None = None,
    ):
        self.url = url.rstrip("/")
        self.display_url = _redact_url(self.url)
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise MetricsError(
                f"prometheus {self.display_url!r}: not an http(s) URL (e.g. http://prometheus:9090)",
                url=self.display_url,
            )
        if timeout_s <= 0:
            raise MetricsError(f"prometheus {self.display_url}: timeout must be positive, got {timeout_s}",
                               url=self.display_url)
        if bearer_token and basic_auth:
            raise MetricsError(
                f"prometheus {self.display_url}: both a bearer token and basic auth are set; choose one",
                url=self.display_url,
            )
        if ca_bundle is not None and (problem := ca_bundle_problem(ca_bundle)) is not None:
            raise MetricsError(f"prometheus {self.display_url}: CA bundle {ca_bundle}: {problem}",
                               url=self.display_url)
        if max_points_per_query < 1:
            raise ValueError(f"max_points_per_query must be >= 1, got {max_points_per_query}")
        _check_reducer(reducer)
        self.timeout_s = float(timeout_s)
        self.reducer = reducer
        self.max_points_per_query = max_points_per_query
        self._client = client if client is not None else self._connect(
            bearer_token, basic_auth, ca_bundle, insecure_skip_verify, retries
        )

    def _connect(self, bearer_token, basic_auth, ca_bundle, insecure, retries) -> PrometheusQueryClient:
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        session = requests.Session()
        if insecure:
            session.verify = False
        elif ca_bundle is not None:
            session.verify = str(ca_bundle)
        retry = Retry(
            total=retries,
            read=0,  # a query that timed out would time out again: report it at once
            backoff_factor=0.2,
            # Not 503: Prometheus answers 503 when a query hit its own timeout, and repeating
            # that would multiply the wait; the next tick tries again anyway.
            status_forcelist=(429, 502, 504),
            raise_on_status=False,  # after the last retry, hand back the answer: we report it
        )
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None
        return PrometheusConnect(
            url=self.url,
            headers=headers,
            auth=tuple(basic_auth) if basic_auth else None,
            retry=retry,
            session=session,
            timeout=self.timeout_s,
        )

    # -- helpers --------------------------------------------------------------------------

    def _error(self, query: str, reason: str, status: int | None = None) -> MetricsError:
        return MetricsError(
            f"prometheus {self.display_url}: query {query!r} failed: {reason}",
            url=self.display_url, query=query, status=status,
        )

    def _call(self, query: str, fn, *args, **kwargs) -> Any:
        """Run one client call; turn every failure into a MetricsError naming server and query."""
        import requests
        from prometheus_api_client import PrometheusApiClientException

        try:
            return fn(*args, **kwargs)
        except PrometheusApiClientException as exc:
            status, body = _status_and_body(exc)
            reason = f"HTTP {status}: {body}" if status is not None else body
            raise self._error(query, reason, status) from None
        except requests.exceptions.RequestException as exc:
            if isinstance(exc, requests.exceptions.JSONDecodeError):  # 200 but not JSON
                raise self._error(query, _NOT_PROMETHEUS) from None
            raise self._error(query, _connection_reason(exc, self.timeout_s)) from None
        except (ValueError, KeyError, TypeError):  # 200, JSON, but not a Prometheus API answer
            raise self._error(query, _NOT_PROMETHEUS) from None

    def _several_series_error(self, query: str, label_sets: Sequence[Mapping[str, str]]) -> MetricsError:
        shown = [_label_text(ls) for ls in label_sets[:5]]
        more = f" and {len(label_sets) - 5} more" if len(label_sets) > 5 else ""
        return self._error(
            query,
            f"returned {len(label_sets)} series, expected one: {'; '.join(shown)}{more}. "
            f"Aggregate in PromQL, e.g. sum({query}), or configure a reducer (sum, max, min, mean)",
        )

    # -- MetricsSource --------------------------------------------------------------------

    def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> Series:
        """See MetricsSource.range; long ranges are fetched in chunks of max_points_per_query."""
        idx = grid(start, end, step)
        step_s = _whole_seconds(step, "step")
        start_s = idx[0].value // 1_000_000_000
        n = len(idx)
        rows: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        labels_of: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for first, last in plan_chunks(start, end, step, self.max_points_per_query):
            result = self._call(
                query, self._client.custom_query_range, query,
                start_time=first.to_pydatetime(), end_time=last.to_pydatetime(),
                step=f"{step_s}s", params={"timeout": f"{self.timeout_s:g}"},
            )
            if not isinstance(result, list):
                raise self._error(query, f"expected a range result (matrix), got {type(result).__name__}")
            for item in result:
                try:
                    labels = dict(item.get("metric", {}))
                    pairs = item["values"]
                    ts_s = np.array([float(p[0]) for p in pairs], dtype=float)
                    vals = np.array([_to_float(p[1]) for p in pairs], dtype=float)
                except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
                    raise self._error(query, f"malformed range result ({exc})") from None
                key = tuple(sorted(labels.items()))
                row = rows.get(key)
                if row is None:
                    row = rows[key] = np.full(n, np.nan)
                    labels_of[key] = labels
                k = np.rint((ts_s - start_s) / step_s).astype(np.int64)
                inside = (k >= 0) & (k < n)
                row[k[inside]] = vals[inside]
        if len(rows) > 1 and self.reducer is None:
            raise self._several_series_error(query, list(labels_of.values()))
        if not rows:
            values = np.full(n, np.nan)
        elif len(rows) == 1:
            values = next(iter(rows.values()))
        else:
            values = _reduce(np.vstack(list(rows.values())), self.reducer)  # type: ignore[arg-type]
        return Series(pd.Series(values, index=idx, name="value"), step, query)

    def instant(self, query: str, at: datetime) -> InstantValue | None:
        """See MetricsSource.instant.

        Two requests or more when the answer is a vector: the query itself, then the sample
        times (`_sample_time_s`: a bare selector's `timestamp(query)`, with a reducer the oldest
        of the combined samples' times; an expression's, one `max(timestamp(selector))` per
        selector it reads, the oldest counting).
        """
        at_ts = _utc(at, "at")
        at_s = at_ts.value / 1e9
        params = {"time": f"{at_s:.3f}", "timeout": f"{self.timeout_s:g}"}
        result = self._call(query, self._client.custom_query, query, params=params)
        # A scalar or string answer is [ts, "value"]; a vector is a list of {metric, value}.
        if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
            try:
                return InstantValue(_to_float(result[1]), _from_epoch(float(result[0])))
            except (TypeError, ValueError) as exc:
                raise self._error(query, f"malformed scalar result ({exc})") from None
        if not isinstance(result, list):
            raise self._error(query, f"expected an instant result (vector), got {type(result).__name__}")
        if not result:
            return None
        if isinstance(result[0], dict) and "values" in result[0]:
            raise self._error(query, "returned a range vector; an instant query needs an instant vector "
                                     "(drop the [range] selector or wrap it, e.g. in rate(...))")
        try:
            labels = [dict(item.get("metric", {})) for item in result]
            values = np.array([_to_float(item["value"][1]) for item in result], dtype=float)
            eval_ts_s = float(result[0]["value"][0])
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise self._error(query, f"malformed instant result ({exc})") from None
        if len(result) > 1 and self.reducer is None:
            raise self._several_series_error(query, labels)
        if len(values) == 1:
            value = float(values[0])
        else:  # one row per series, one column: reduce across the series
            value = float(_reduce(values[:, None], self.reducer)[0])  # type: ignore[arg-type]
        sample_ts_s = self._sample_time_s(query, params, default=eval_ts_s)
        return InstantValue(value, _from_epoch(sample_ts_s))

    def _sample_time_s(self, query: str, params: dict, default: float) -> float:
        """Sample time (epoch s) behind `query`'s answer. A bare selector: the oldest of its
        series' samples, `timestamp(query)`. Anything else (an aggregation, `rate()`, a ratio)
        answers at the evaluation time however old its inputs are (`timestamp(sum(x))` is the
        evaluation time), so: for each selector it reads (policies.promql.source_selectors), its
        newest sample, `max(timestamp(selector))`, and the oldest of those, the source that
        went quiet first. Without selectors (a literal), or when they cannot be told (`offset`,
        `@`, unparsable), `timestamp(query)` as for a selector."""
        from policies.promql import is_selector, source_selectors

        sources = source_selectors(query)
        if sources == ():
            return default
        if sources is None or is_selector(query):
            return self._stamp(query, f"timestamp({query})", params, min, default)
        stamps = [self._stamp(query, f"max(timestamp({sel}))", params, max, math.nan) for sel in sources]
        stamps = [t for t in stamps if math.isfinite(t)]
        return min(stamps) if stamps else default

    def _stamp(self, query: str, stamp_query: str, params: dict, pick, default: float) -> float:
        """`pick` (min or max) of the sample times `stamp_query` answers, else `default`."""
        stamped = self._call(query, self._client.custom_query, stamp_query, params=params)
        try:
            times = [float(item["value"][1]) for item in stamped]
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            return default
        times = [t for t in times if math.isfinite(t)]
        return pick(times) if times else default


def _from_epoch(ts_s: float) -> datetime:
    """Epoch seconds (ms precision, as Prometheus sends) -> aware UTC datetime."""
    return datetime.fromtimestamp(round(ts_s * 1000) / 1000, tz=timezone.utc)
