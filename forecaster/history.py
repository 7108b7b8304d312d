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
  `MetricsError` naming the server, the query and the cause; never a bare requests traceback,
  never a credential (the token, the password, their base64 are replaced by `<redacted>`).
- Partial answers: the `warnings` Prometheus (or Thanos, Mimir) adds to an answer are logged,
  one WARNING per `range`/`instant` call, and kept on `InstantValue.warnings`.
"""

from __future__ import annotations

import ast
import base64
import contextvars
import functools
import json
import logging
import math
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np
import pandas as pd

from forecaster.series import Series
from policies.errors import EbbtideError
from policies.tls import ca_bundle_problem

log = logging.getLogger(__name__)

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
    recording rule's series); for a computed expression (`sum(...)`, `rate(...)`, `scalar(...)`)
    it is the newest sample of the quietest selector the expression reads (see
    `PrometheusSource.instant`), and for a literal (`vector(1)`) the evaluation time.
    `warnings`: what the server said about the answer besides the value (Prometheus's
    `warnings`, e.g. Thanos's "partial response": a store did not answer, so a `sum()` may
    under-count); empty when there was nothing to say.
    """

    value: float
    timestamp: datetime
    warnings: tuple[str, ...] = ()


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
_REDACTED = "<redacted>"

#: HTTP statuses retried (with backoff, within `timeout_s`). Not 503: Prometheus answers 503 when
#: a query hit its own timeout, and repeating that would multiply the wait; the next tick tries again.
_RETRY_STATUSES = (429, 502, 504)
_BACKOFF_S = 0.2
_READ_CHUNK_BYTES = 64 * 1024


def _redact_url(url: str) -> str:
    """The URL without user:password@, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _status_and_body(exc: Exception, redact: Callable[[str], str] = lambda text: text) -> tuple[int | None, str]:
    """Parse prometheus-api-client's `HTTP Status Code 400 (b'...')` into (400, error text).

    `redact` runs before the excerpt is cut, so a credential the body echoes (a proxy repeating
    the Authorization header) is never shown, not even its first characters."""
    m = _STATUS_RE.match(str(exc))
    if not m:
        return None, _excerpt(redact(str(exc)))
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
    return status, _excerpt(redact(str(body)))


def _excerpt(text: str, limit: int = _BODY_EXCERPT_CHARS) -> str:
    """`text` on one line, cut at `limit` characters."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[:limit] + "..."


# -- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretFile:
    """A credential kept in a file (a mounted Secret, a projected service-account token).

    `PrometheusSource` reads it when it is built: a file that is missing, unreadable or unusable
    (a token of two lines, with a non-ASCII character) is an error then, naming `setting` (e.g.
    `prometheus.bearer_token_file`) and `path`. Before each request it looks at the file again
    (modification time, size, inode) and re-reads it when it changed, so a rotated token is used
    without a restart; after an HTTP 401 it re-reads it once more and retries when the content
    changed. A UTF-8 byte order mark and surrounding whitespace (the trailing newline) are dropped.
    """

    path: str | Path
    setting: str = ""


class _CredentialError(Exception):
    """A credential file became unusable after the source was built (a rotation gone wrong)."""


def _token_problem(token: str) -> str | None:
    """Why `token` cannot be sent as `Authorization: Bearer <token>`, else None. Never repeats it."""
    if not token:
        return "is empty"
    for i, ch in enumerate(token):
        if ch in "\r\n":
            return "holds a line break: a bearer token is a single line"
        if ch in " \t":
            return f"holds a space or a tab (character {i + 1}): a bearer token is a single word"
        if not ch.isascii():
            return f"holds a non-ASCII character (character {i + 1}): a bearer token is ASCII"
        if not ch.isprintable():
            return f"holds a control character (character {i + 1})"
    return None


class _Credential:
    """One secret (a bearer token or a password), given as a string or a SecretFile; thread-safe.

    `value()` is the current secret (re-read from its file when the file changed); `reload()`
    re-reads it whatever the file's times say and tells whether it changed; `seen` holds every
    value it has had, for redaction."""

    def __init__(self, given: str | SecretFile, kind: Literal["bearer token", "password"], where: str):
        self.kind = kind
        self._file = given if isinstance(given, SecretFile) else None
        self._where = where  # "prometheus <url>", for messages without a setting name
        self._lock = threading.Lock()
        self._stat: tuple[int, int, int, int] | None = None
        self.seen: list[str] = []
        if self._file is not None:
            self._value = self._read(self._stat_of())
        else:
            self._value = self._checked(str(given).lstrip("\ufeff"), f"{where}: the {kind}")
        self.seen.append(self._value)

    def _label(self) -> str:
        assert self._file is not None
        return self._file.setting or f"{self._where}: {self.kind} file"

    def _stat_of(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self._file.path)  # type: ignore[union-attr]  (follows the symlinks Kubernetes swaps)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)

    def _read(self, stat: tuple[int, int, int, int] | None) -> str:
        """Read and check the file; raises MetricsError naming the setting and the path."""
        path = self._file.path  # type: ignore[union-attr]
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise MetricsError(f"{self._label()}: cannot read {path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8-sig").strip()  # utf-8-sig drops a byte order mark (Windows editors)
        except UnicodeDecodeError:
            raise MetricsError(f"{self._label()}: {path} is not UTF-8 text") from None
        value = self._checked(text, f"{self._label()}: {path}: the token")
        self._stat = stat
        return value

    def _checked(self, value: str, what: str) -> str:
        if self.kind == "bearer token" and (problem := _token_problem(value)) is not None:
            raise MetricsError(f"{what} {problem}")
        return value

    def value(self) -> str:
        if self._file is None:
            return self._value
        stat = self._stat_of()
        if stat is not None and stat == self._stat:
            return self._value
        self.reload(stat)
        return self._value

    def reload(self, stat: tuple[int, int, int, int] | None = None) -> bool:
        """Re-read the file now; True when the secret changed. Raises _CredentialError."""
        if self._file is None:
            return False
        with self._lock:
            try:
                new = self._read(stat if stat is not None else self._stat_of())
            except MetricsError as exc:
                raise _CredentialError(str(exc)) from None
            changed = new != self._value
            if changed:
                log.info("%s: %s changed on disk: using the new one", self._label(), self.kind)
                self._value = new
                self.seen = (self.seen + [new])[-4:]
            return changed


class _Authorization:
    """requests' `auth` hook: sets `Authorization` from the current credential on every request
    (a bearer token, or basic auth with user and password sent as UTF-8, as Prometheus's web
    config expects; requests itself would send latin-1 and fail on any other character)."""

    def __init__(self, username: str | None, secret: _Credential):
        self.username = username
        self.secret = secret

    def header(self) -> str:
        if self.username is None:
            return f"Bearer {self.secret.value()}"
        pair = self.username.encode("utf-8") + b":" + self.secret.value().encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __call__(self, request):
        request.headers["Authorization"] = self.header()
        return request

    def secrets(self) -> list[str]:
        """Every value a message must not show: the secrets and (basic auth) their base64."""
        out = list(self.secret.seen)
        if self.username is not None:
            user = self.username.encode("utf-8")
            out += [base64.b64encode(user + b":" + s.encode("utf-8")).decode("ascii") for s in self.secret.seen]
        return out


# -- one HTTP request under a deadline --------------------------------------------------------


@dataclass
class _AnswerNotes:
    """What prometheus-api-client drops from an answer (it returns `data.result` only), kept by
    the session for the PrometheusSource call running in this context."""

    result_type: str | None = None
    warnings: list[str] = field(default_factory=list)
    retry_after_s: float | None = None  # Retry-After of the last answer, when it had one
    deadline: float | None = None  # time.monotonic() by which the whole call ends (all its requests)


_ANSWER: contextvars.ContextVar[_AnswerNotes | None] = contextvars.ContextVar("prometheus_answer", default=None)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds of a Retry-After header (a number or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


def _read_body(response, deadline: float, timeout_s: float) -> None:
    """Read the whole body of a streamed `response` by `deadline` (time.monotonic()), or raise
    requests' ReadTimeout. Each read waits at most the time left, so a server sending its answer
    a byte at a time cannot hold the call past the deadline (a plain read timeout restarts with
    every byte). The status line and headers are read before this (see docs/history.md)."""
    import requests
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    read = getattr(raw, "read1", None) or raw.read
    parts: list[bytes] = []
    done = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise requests.exceptions.ReadTimeout(f"the answer was not complete within {timeout_s:g}s")
            if sock is not None:
                sock.settimeout(left)
            chunk = read(_READ_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            parts.append(chunk)
        done = True
    except (ReadTimeoutError, TimeoutError) as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    finally:
        if not done:
            response.close()
    response._content = b"".join(parts)
    response._content_consumed = True


def _keep_notes(response) -> None:
    """Note the answer's resultType and warnings for the running call, and hand the library the
    document parsed here (it would parse the body again)."""
    notes = _ANSWER.get()
    if notes is None:
        return
    notes.retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
    if response.status_code != 200:
        return
    try:
        doc = json.loads(response.content)
    except ValueError:
        return  # the library's own response.json() fails the same way: "not a Prometheus API response"
    if isinstance(doc, dict):
        data = doc.get("data")
        if isinstance(data, dict) and isinstance(data.get("resultType"), str):
            notes.result_type = data["resultType"]
        warnings = doc.get("warnings")
        if isinstance(warnings, list):
            notes.warnings.extend(str(w) for w in warnings)
    response.json = lambda **_: doc


def _connect_failed(exc: Exception) -> bool:
    """The request never reached the server: refused, reset while connecting, name not resolved.
    Not a connect timeout (it has used the time already) nor a TLS failure (it would fail again)."""
    from urllib3.exceptions import NewConnectionError

    return any(isinstance(e, NewConnectionError) for e in _exception_chain(exc))


class _Watch:
    """The connections one HTTP request is using, cut (shut down) when its deadline passes before
    its status line and headers are in: a server sending them a byte at a time would otherwise
    hold the request (each socket read waits the time left, and restarts with every byte)."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.fired = False
        self._done = False
        self._lock = threading.Lock()

    def cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for conn in self.connections:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def done(self) -> bool:
        """Stop watching; True when the watch fired first (the answer is cut: a timeout)."""
        with self._lock:
            self._done = True
            return self.fired


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("prometheus_watch", default=None)


@functools.cache
def _watched_adapter_class():
    """requests' HTTPAdapter whose connections tell the running request's `_Watch` they are in use
    (urllib3 calls `request()` on a connection for each request, a reused keep-alive one too)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def watched(base):
        class Watched(base):
            def request(self, *args, **kwargs):  # type: ignore[override]
                watch = _WATCH.get()
                if watch is not None:
                    watch.connections.append(self)
                return super().request(*args, **kwargs)
        return Watched

    class WatchedHTTPPool(HTTPConnectionPool):
        ConnectionCls = watched(HTTPConnection)

    class WatchedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = watched(HTTPSConnection)

    pools = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy, **kwargs):
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return WatchedAdapter


@functools.cache
def _deadline_session_class():
    """requests.Session whose every request, retries and the reading of the answer included,
    ends within `timeout_s`, and within the deadline of the PrometheusSource call it is part of
    (`_AnswerNotes.deadline`); a request whose status line and headers are not in by then is cut
    (`_Watch`). The class is made on first use: requests is imported lazily."""
    import requests

    class DeadlineSession(requests.Session):
        def __init__(self, timeout_s: float, retries: int, on_unauthorized: Callable[[], bool] | None):
            super().__init__()
            self.timeout_s = timeout_s
            self.retries = retries
            self.on_unauthorized = on_unauthorized

        def mount(self, prefix, adapter):  # type: ignore[override]
            """Every adapter mounted is a watched one (requests.Session.__init__ mounts plain
            HTTPAdapters for http:// and https://, prometheus-api-client one on its URL); its retry
            setting is kept."""
            watched = _watched_adapter_class()
            if not isinstance(adapter, watched):
                adapter = watched(max_retries=adapter.max_retries)
            super().mount(prefix, adapter)

        def request(self, method, url, **kwargs):  # type: ignore[override]
            deadline = time.monotonic() + self.timeout_s
            call = _ANSWER.get()
            if call is not None and call.deadline is not None:  # a PrometheusSource call's later request
                deadline = min(deadline, call.deadline)
            kwargs["stream"] = True  # the body is read below, under the deadline
            attempt = 0
            reauthorized = False
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise requests.exceptions.Timeout(f"no time left of {self.timeout_s:g}s")
                kwargs["timeout"] = (left, left)
                response = self._watched(method, url, left, kwargs)
                if isinstance(response, Exception):
                    if attempt < self.retries and _connect_failed(response) \
                            and self._pause(attempt, None, deadline):
                        attempt += 1
                        continue
                    raise response
                status = response.status_code
                if status == 401 and not reauthorized and self.on_unauthorized is not None \
                        and self.on_unauthorized():  # the credential file changed: one more try
                    reauthorized = True
                    response.close()
                    continue
                if status in _RETRY_STATUSES and attempt < self.retries:
                    wait = _retry_after_s(response.headers.get("Retry-After"))
                    if self._pause(attempt, wait, deadline, before=response.close):
                        attempt += 1
                        continue
                _read_body(response, deadline, self.timeout_s)
                _keep_notes(response)
                return response

        def _watched(self, method, url, left: float, kwargs):
            """One request whose status line and headers must be in within `left` seconds (a
            `_Watch` cuts its connection then): the response, or the ConnectionError to handle;
            a cut one raises ReadTimeout."""
            watch = _Watch()
            token = _WATCH.set(watch)
            timer = threading.Timer(left, watch.cut)
            timer.daemon = True
            timer.start()
            try:
                response = super().request(method, url, **kwargs)
            except requests.exceptions.RequestException as exc:
                if watch.done():
                    raise requests.exceptions.ReadTimeout(
                        f"no answer within {self.timeout_s:g}s (the headers were not complete)") from None
                if isinstance(exc, requests.exceptions.ConnectionError):
                    return exc
                raise
            finally:
                timer.cancel()
                _WATCH.reset(token)
            if watch.done():
                response.close()
                raise requests.exceptions.ReadTimeout(f"no answer within {self.timeout_s:g}s")
            return response

        @staticmethod
        def _pause(attempt: int, retry_after_s: float | None, deadline: float, before=None) -> bool:
            """Sleep the backoff (or the server's Retry-After when longer) and return True, or
            return False at once when the wait would not end before the deadline."""
            wait = max(_BACKOFF_S * 2 ** attempt, retry_after_s or 0.0)
            if time.monotonic() + wait >= deadline:
                return False
            if before is not None:
                before()
            time.sleep(wait)
            return True

    return DeadlineSession


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps, outermost first: urllib3's `reason`, exceptions among `args`
    (ProtocolError('Connection aborted.', RemoteDisconnected(...))), then cause and context."""
    chain: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if any(e is seen for seen in chain):
            continue
        chain.append(e)
        reason = getattr(e, "reason", None)
        inner = [reason] if isinstance(reason, BaseException) else []
        inner += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        inner += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo.extend(inner)
    return chain


_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)\s*$")


def _connection_reason(exc: Exception, timeout_s: float) -> str:
    """Why a request got no HTTP answer, from the innermost cause (never the URL, which is most
    of urllib3's own text for a long query)."""
    import http.client
    import ssl

    import requests
    from urllib3.exceptions import NameResolutionError, NewConnectionError, TimeoutError as Urllib3Timeout

    chain = _exception_chain(exc)
    text = str(exc)
    connecting = any(isinstance(e, NewConnectionError) for e in chain)
    timed_out = isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(e, (TimeoutError, Urllib3Timeout)) and not isinstance(e, NewConnectionError) for e in chain)
    if timed_out or (len(chain) == 1 and "timed out" in text.lower()):
        return f"timed out after {timeout_s:g}s"
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        detail = _SSL_LOCATION.sub("", str(tls))
        if isinstance(tls, ssl.SSLCertVerificationError) and tls.verify_message and tls.verify_message not in detail:
            detail += f" ({tls.verify_message})"
        return f"TLS error: {detail}"
    if isinstance(exc, requests.exceptions.SSLError):  # no ssl exception kept: the text then
        found = re.search(r"\[SSL[^\]]*\][^\"()]*", text)
        return f"TLS error: {found.group(0).strip() if found else _excerpt(_without_url(text))}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return "connection refused"
    if any(isinstance(e, NameResolutionError) for e in chain) or "Name or service not known" in text \
            or "nodename nor servname" in text or "getaddrinfo" in text or "Failed to resolve" in text:
        host = urlsplit(getattr(getattr(exc, "request", None), "url", "") or "").hostname
        return f"host name not found ({host})" if host else "host name not found"
    cause = chain[-1]
    if isinstance(cause, http.client.RemoteDisconnected):
        return "no answer: the server closed the connection without a response (RemoteDisconnected)"
    if isinstance(cause, ConnectionResetError) and not connecting:
        return "no answer: the server reset the connection (ConnectionResetError)"
    what = "cannot connect" if connecting or len(chain) == 1 else "connection failed"
    said = _excerpt(_without_url(str(cause)))
    if cause is not exc:  # a wrapped cause: its type says most (ConnectionAbortedError, ...)
        said = f"{type(cause).__name__}: {said}" if said else type(cause).__name__
    return f"{what}: {said}"


def _without_url(text: str) -> str:
    """urllib3's "Pool(...): Max retries exceeded with url: /api/v1/query_range?query=... (Caused
    by X)" -> "X": the cause, not the URL-encoded query."""
    caused = re.search(r"\(Caused by (.*)\)\s*$", text, re.S)
    if caused:
        text = caused.group(1)
    return re.sub(r"(with )?url: \S+", "", text).strip()


class PrometheusSource:
    """MetricsSource on a Prometheus server through prometheus-api-client 0.7.2.

    Options (keyword-only):
    - `timeout_s` (30): the time limit of each `range` or `instant` call, client side: every
      HTTP request it makes (a long range's chunks, an instant's sample-time queries), connecting,
      retries and their waits, and reading the whole answer (a body sent a byte at a time is cut
      at the deadline). The time the call has left (up to the whole second) is sent as each
      request's server-side `timeout` so Prometheus stops working on a query nobody waits for.
    - `bearer_token`: sent as `Authorization: Bearer <token>`; a string, or a `SecretFile` that is
      re-read when it changes (rotated tokens). `basic_auth`: (user, password), the password a
      string or a SecretFile; sent as UTF-8. At most one of the two. A credential that cannot be
      sent (a token with a line break or a non-ASCII character, an unreadable file) is a
      MetricsError when the source is built; messages never show a credential.
    - `ca_bundle`: PEM file of CAs to trust for https (instead of the system store).
      `insecure_skip_verify`: do not verify the server certificate (testing only).
    - `reducer`: None (default) refuses a query returning several series; "sum", "max", "min"
      or "mean" combine them point by point, ignoring NaN.
    - `max_points_per_query` (11,000): range queries longer than this many grid points are split
      into several requests and stitched (Prometheus refuses more than 11,000 per series).
    - `retries` (2): retries when the connection could not be made (refused, name not resolved)
      and on HTTP 429/502/504, 0.2 s backoff doubling (or the answer's Retry-After when longer),
      only while the wait ends within `timeout_s`. Never retried: 503 (Prometheus's own query
      timeout), other 4xx (bad PromQL), a timed-out request, a TLS failure. After a 401 a
      credential file is re-read once and the request repeated when the file changed.
    - `client`: anything with PrometheusConnect's `custom_query`/`custom_query_range` (tests).

    Start and end are always passed explicitly (the library's defaults are frozen at import).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        bearer_token: str | SecretFile | None = None,
        basic_auth: tuple[str, str | SecretFile] | None = None,
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
        where = f"prometheus {self.display_url}"
        self._auth: _Authorization | None = None
        if bearer_token:
            self._auth = _Authorization(None, _Credential(bearer_token, "bearer token", where))
        elif basic_auth:
            self._auth = _Authorization(str(basic_auth[0]), _Credential(basic_auth[1], "password", where))
        self._url_secrets = _url_secrets(self.url)
        self._client = client if client is not None else self._connect(ca_bundle, insecure_skip_verify, retries)

    def _connect(self, ca_bundle, insecure, retries) -> PrometheusQueryClient:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        session = _deadline_session_class()(self.timeout_s, retries, self._reauthorize)
        if insecure:
            session.verify = False
        elif ca_bundle is not None:
            session.verify = str(ca_bundle)
        session.auth = self._auth
        return PrometheusConnect(
            url=self.url,
            # Retries are the session's (within the deadline). urllib3's own would wait out any
            # Retry-After (up to 6 h) and retry 503 whatever the status list says.
            retry=Retry(total=0, respect_retry_after_header=False, raise_on_status=False),
            session=session,
            timeout=self.timeout_s,
        )

    # -- helpers --------------------------------------------------------------------------

    def _reauthorize(self) -> bool:
        """After a 401: re-read a credential file; True when it changed (worth one more try)."""
        return self._auth is not None and self._auth.secret.reload()

    def _redact(self, text: str) -> str:
        """`text` without any credential this source sends (longest first: a base64 before its parts)."""
        secrets = list(self._url_secrets) + (self._auth.secrets() if self._auth is not None else [])
        for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
            text = text.replace(secret, _REDACTED)
        return text

    def _error(self, query: str, reason: str, status: int | None = None) -> MetricsError:
        return MetricsError(
            f"prometheus {self.display_url}: query {query!r} failed: {self._redact(reason)}",
            url=self.display_url, query=query, status=status,
        )

    def _call(self, query: str, answer: _AnswerNotes, fn, *args, **kwargs) -> Any:
        """Run one client call; turn every failure into a MetricsError naming server and query.
        `answer` collects what the library drops (warnings added, resultType of this answer)."""
        import requests
        from prometheus_api_client import PrometheusApiClientException

        answer.result_type = answer.retry_after_s = None
        params = kwargs.get("params")
        if answer.deadline is not None and isinstance(params, dict) and "timeout" in params:
            # Prometheus stops at the time the call has left, up to the whole second, not a fresh
            # timeout_s (the client cuts at the exact deadline).
            left = math.ceil(min(answer.deadline - time.monotonic(), self.timeout_s) - 1e-6)
            kwargs["params"] = {**params, "timeout": f"{max(left, 1)}"}
        token = _ANSWER.set(answer)
        try:
            result = fn(*args, **kwargs)
        except _CredentialError as exc:
            raise self._error(query, str(exc)) from None
        except PrometheusApiClientException as exc:
            status, body = _status_and_body(exc, self._redact)
            reason = f"HTTP {status}: {body}" if status is not None else body
            if answer.retry_after_s is not None and status in (429, 503):
                reason += (f" (the server asked to retry after {answer.retry_after_s:g}s; not waited for, "
                           f"the timeout is {self.timeout_s:g}s)")
            raise self._error(query, reason, status) from None
        except requests.exceptions.RequestException as exc:
            if isinstance(exc, requests.exceptions.JSONDecodeError):  # 200 but not JSON
                raise self._error(query, _NOT_PROMETHEUS) from None
            raise self._error(query, _connection_reason(exc, self.timeout_s)) from None
        except UnicodeEncodeError as exc:  # a ValueError, but about the request, not the answer
            raise self._error(query, f"the request cannot be encoded ({exc.reason}: {exc.object[exc.start:exc.end]!r} "
                                     f"is not latin-1)") from None
        except (ValueError, KeyError, TypeError):  # 200, JSON, but not a Prometheus API answer
            raise self._error(query, _NOT_PROMETHEUS) from None
        finally:
            _ANSWER.reset(token)
        return result

    def _warned(self, query: str, notes: Sequence[str]) -> tuple[str, ...]:
        """The distinct warnings of one call, redacted and cut; logged once as a WARNING."""
        if not notes:
            return ()
        shown = tuple(dict.fromkeys(_excerpt(self._redact(str(w))) for w in notes))
        log.warning("prometheus %s: query %r: the server warned that the answer may be incomplete: %s",
                    self.display_url, query, "; ".join(shown))
        return shown

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
        """See MetricsSource.range; long ranges are fetched in chunks of max_points_per_query.
        Server warnings (a partial answer) are logged once for the call."""
        idx = grid(start, end, step)
        step_s = _whole_seconds(step, "step")
        start_s = idx[0].value // 1_000_000_000
        n = len(idx)
        rows: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        labels_of: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        notes = _AnswerNotes(deadline=time.monotonic() + self.timeout_s)
        for first, last in plan_chunks(start, end, step, self.max_points_per_query):
            result = self._call(
                query, notes, self._client.custom_query_range, query,
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
        self._warned(query, notes.warnings)
        if not rows:
            values = np.full(n, np.nan)
        elif len(rows) == 1:
            values = next(iter(rows.values()))
        else:
            values = _reduce(np.vstack(list(rows.values())), self.reducer)  # type: ignore[arg-type]
        return Series(pd.Series(values, index=idx, name="value"), step, query)

    def instant(self, query: str, at: datetime) -> InstantValue | None:
        """See MetricsSource.instant.

        Two requests or more when the answer has a value: the query itself, then the sample
        times (`_sample_time_s`: a bare selector's `timestamp(query)`, with a reducer the oldest
        of the combined samples' times; an expression's, a vector's or a `scalar(...)`'s alike,
        one `max(timestamp(selector))` per selector it reads, the oldest counting). Server
        warnings (a partial answer) are logged and kept on `InstantValue.warnings`.
        """
        at_ts = _utc(at, "at")
        at_s = at_ts.value / 1e9
        params = {"time": f"{at_s:.3f}", "timeout": f"{self.timeout_s:g}"}
        notes = _AnswerNotes(deadline=time.monotonic() + self.timeout_s)
        result = self._call(query, notes, self._client.custom_query, query, params=params)
        # A scalar or string answer is [ts, "value"]; a vector is a list of {metric, value}.
        if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
            if notes.result_type == "string":
                raise self._error(query, f"returned a string result ({_excerpt(str(result[1]), 60)!r}), not a "
                                         f"number: a demand or SLI query must give a number")
            try:
                value, eval_ts_s = _to_float(result[1]), float(result[0])
            except (TypeError, ValueError) as exc:
                raise self._error(query, f"malformed scalar result ({exc})") from None
            sample_ts_s = self._sample_time_s(query, params, eval_ts_s, notes, scalar=True)
            return InstantValue(value, _from_epoch(sample_ts_s), self._warned(query, notes.warnings))
        if not isinstance(result, list):
            raise self._error(query, f"expected an instant result (vector), got {type(result).__name__}")
        if not result:
            self._warned(query, notes.warnings)
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
        sample_ts_s = self._sample_time_s(query, params, eval_ts_s, notes)
        return InstantValue(value, _from_epoch(sample_ts_s), self._warned(query, notes.warnings))

    def _sample_time_s(self, query: str, params: dict, default: float, notes: _AnswerNotes,
                       scalar: bool = False) -> float:
        """Sample time (epoch s) behind `query`'s answer. A bare selector: the oldest of its
        series' samples, `timestamp(query)`. Anything else (an aggregation, `rate()`, a ratio,
        `scalar(...)`) answers at the evaluation time however old its inputs are
        (`timestamp(sum(x))` is the evaluation time), so: for each selector it reads
        (policies.promql.source_selectors), its newest sample, `max(timestamp(selector))`, and the
        oldest of those, the source that went quiet first. Without selectors (a literal) the
        evaluation time. When the selectors cannot be told (`offset`, `@`, unparsable):
        `timestamp(query)` as for a selector, or for a scalar answer (which `timestamp()` refuses)
        the evaluation time."""
        from policies.promql import is_selector, source_selectors

        sources = source_selectors(query)
        if sources == () or (sources is None and scalar):
            return default
        if sources is None or is_selector(query):
            return self._stamp(query, f"timestamp({query})", params, min, default, notes)
        stamps = [self._stamp(query, f"max(timestamp({sel}))", params, max, math.nan, notes) for sel in sources]
        stamps = [t for t in stamps if math.isfinite(t)]
        return min(stamps) if stamps else default

    def _stamp(self, query: str, stamp_query: str, params: dict, pick, default: float,
               notes: _AnswerNotes) -> float:
        """`pick` (min or max) of the sample times `stamp_query` answers, else `default`."""
        stamped = self._call(query, notes, self._client.custom_query, stamp_query, params=params)
        try:
            times = [float(item["value"][1]) for item in stamped]
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            return default
        times = [t for t in times if math.isfinite(t)]
        return pick(times) if times else default


def _url_secrets(url: str) -> list[str]:
    """The password in `url`'s user:password@ (raw and decoded) and the base64 requests sends."""
    parts = urlsplit(url)
    if not parts.password:
        return []
    user, password = unquote(parts.username or ""), unquote(parts.password)
    pair = f"{user}:{password}".encode("latin-1", "replace")
    return [parts.password, password, base64.b64encode(pair).decode("ascii")]


def _from_epoch(ts_s: float) -> datetime:
    """Epoch seconds (ms precision, as Prometheus sends) -> aware UTC datetime."""
    return datetime.fromtimestamp(round(ts_s * 1000) / 1000, tz=timezone.utc)
